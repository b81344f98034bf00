"""SnapNames-style auction CSV exports: two preamble lines (a title and the export
time), then a header and one auction per line:

    SnapNames Auction Inventory
    Exported 12/04/2026 12:00 AM ET
    Domain name,Auction end date,Current bid,Bidders
    cloudpeak.com,12/07/2026 02:30 PM,"$1,250.00",7

Required columns: Domain name, Auction end date, Current bid; Bidders, Domain age and
Auction type are optional; any other column means the export changed (the fetch fails
with that error). End dates are local times of options.timezone (default
America/New_York, as SnapNames shows them) and are sent as UTC. The auction id is the
domain name (SnapNames auctions one name once at a time). options.preamble (default 2)
is the number of lines before the header.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import BinaryIO
from zoneinfo import ZoneInfo

from .csvfile import check_header, records, text_lines
from .fetch import FormatError

REQUIRED = ("Domain name", "Auction end date", "Current bid")
OPTIONAL = ("Bidders", "Domain age", "Auction type")
DATE_FORMATS = ("%m/%d/%Y %I:%M %p", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")


def end_time(text: str, zone: ZoneInfo) -> str:
    """The end date as ISO 8601 UTC, or the text unchanged (the database rejects it)."""
    for fmt in DATE_FORMATS:
        try:
            local = datetime.strptime(text.strip(), fmt).replace(tzinfo=zone)
        except ValueError:
            continue
        return local.astimezone(timezone.utc).isoformat()
    return text


def parse(stream: BinaryIO, filename: str = "", options: dict | None = None) -> Iterator[dict]:
    options = options or {}
    zone = ZoneInfo(options.get("timezone") or "America/New_York")
    lines = text_lines(stream)
    for _ in range(int(options.get("preamble", 2))):
        if next(lines, None) is None:
            raise FormatError("SnapNames export: the file ends inside its preamble")
    reader = records(lines)
    header = next(reader, None)
    if header is None:
        raise FormatError("SnapNames export: no header line after the preamble")
    col = check_header("SnapNames export", header, REQUIRED, OPTIONAL)

    def cell(rec: list[str], name: str) -> str | None:
        i = col.get(name)
        return rec[i].strip() if i is not None and i < len(rec) else None

    for rec in reader:
        if not rec or not any(c.strip() for c in rec):
            continue
        domain = cell(rec, "domain name")
        ends = cell(rec, "auction end date")
        kind = (cell(rec, "auction type") or "bid").replace(" ", "_").lower()
        yield {"id": domain.lower() if domain else None, "domain": domain, "type": kind,
               "price": cell(rec, "current bid"), "currency": "USD", "bids": cell(rec, "bidders") or 0,
               "end_time": end_time(ends, zone) if ends else None}
