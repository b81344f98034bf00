"""Pending-delete lists: one domain name per line, the drop date in the file's name
(`pending_delete_2026-12-09.txt`, `20261209.txt`); lines starting with # are comments.

Each name becomes a `bid` auction of the platform ending at the drop:
options.drop_time (default 19:00 UTC, when .com names drop), at options.price (default
0, a backorder's opening bid). A line with more than a name on it means the list's
format changed, and the fetch fails with that error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, time, timezone
from typing import BinaryIO

from .csvfile import text_lines
from .fetch import FormatError

DATE_IN_NAME = re.compile(r"(20\d\d)[-_.]?(0[1-9]|1[0-2])[-_.]?(0[1-9]|[12]\d|3[01])")


def drop_date(filename: str) -> date:
    m = DATE_IN_NAME.search(filename)
    if not m:
        raise FormatError(f"pending-delete list: no drop date (YYYY-MM-DD) in the file name {filename!r}")
    return date(int(m[1]), int(m[2]), int(m[3]))


def parse(stream: BinaryIO, filename: str = "", options: dict | None = None) -> Iterator[dict]:
    options = options or {}
    drop_at = datetime.combine(drop_date(filename), time.fromisoformat(options.get("drop_time") or "19:00"),
                               timezone.utc).isoformat()
    price = options.get("price", 0)
    for number, line in enumerate(text_lines(stream), 1):
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        if re.search(r"[\s,;|]", name):
            raise FormatError(f"pending-delete list: line {number} is not one domain name ({name[:80]!r}); "
                              "the format changed")
        yield {"id": name.lower(), "domain": name, "type": "bid", "price": price, "currency": "USD", "bids": 0,
               "end_time": drop_at}
