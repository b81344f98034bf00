"""Registrar price sheets as CSV: one TLD per line, a price per kind of offer.

    TLD,Registration,Renewal,Transfer,Restore,Currency
    .com,10.28,14.98,10.28,80.00,USD

Required columns: TLD, Registration, Renewal; Transfer, Restore and Currency are
optional (Currency defaults to options.currency, else USD); any other column means
the sheet changed and the fetch fails with that error. An empty cell is an offer the
registrar does not make. Prices pass through as strings: the database validates them
and rejects bad rows with their reason. The sheet is the registrar's whole list, so it
is ingested with complete => true (options.registrar names the registrar, default
the source's platform).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from .csvfile import check_header, records, text_lines
from .fetch import FormatError

REQUIRED = ("TLD", "Registration", "Renewal")
OPTIONAL = ("Transfer", "Restore", "Currency")
KINDS = ("registration", "renewal", "transfer", "restore")


def parse(stream: BinaryIO, filename: str = "", options: dict | None = None) -> Iterator[dict]:
    options = options or {}
    reader = records(text_lines(stream))
    header = next(reader, None)
    if header is None:
        raise FormatError("price sheet: the file is empty")
    col = check_header("price sheet", header, REQUIRED, OPTIONAL)
    extra = {"registrar": options["registrar"]} if options.get("registrar") else {}
    for rec in reader:
        if not rec or not any(c.strip() for c in rec):
            continue
        cells = {name: rec[i].strip() if i < len(rec) else "" for name, i in col.items()}
        currency = cells.get("currency") or options.get("currency") or "USD"
        for kind in KINDS:
            if cells.get(kind):
                yield {"tld": cells["tld"], "kind": kind, "price": cells[kind], "currency": currency, **extra}
