"""GoDaddy Auctions inventory exports: a zipped JSON document

    {"meta": {"exportedAt": "2026-12-04T00:00:00Z", ...},
     "data": [{"domainName": "cloudpeak.com",
               "link": "https://auctions.godaddy.com/trpItemListing.aspx/563123456",
               "auctionType": "Bid",                  # or "BuyNow"
               "auctionEndTime": "2026-12-07T18:05:00Z",
               "price": "$1,234", "valuation": "$2,400",
               "numberOfBids": 12, "domainAge": 9, "pageviews": 310, "isAdult": false}, ...]}

Real files are hundreds of MB unzipped, so the document is read as a stream (ijson)
and each record becomes one row for collector.ingest_auctions as it is read; the
auction id is the last segment of the link's path. Prices pass through as the strings
the file has ("$1,234"): the database parses and validates them (a bad row becomes a
reject with its reason). `valuation`, `domainAge`, `pageviews` and `isAdult` are not
stored: Pounce values and scores names itself.

The shape is checked on the first record: a missing required field means the export
changed, and the fetch fails with that error before anything is ingested.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import ijson

from .fetch import FormatError, TransientError

REQUIRED = ("domainName", "link", "auctionType", "auctionEndTime", "price")
TYPES = {"bid": "bid", "buynow": "buy_now", "buy_now": "buy_now", "buyitnow": "buy_now"}


def auction_id(link) -> str | None:
    """The auction id: the last segment of the link's path (query and fragment dropped)."""
    if not isinstance(link, str) or not link.strip():
        return None
    path = link.strip().split("#", 1)[0].split("?", 1)[0].rstrip("/")
    return path.rsplit("/", 1)[-1] or None


def row(record) -> dict:
    """One ingest_auctions row from one inventory record (anything else passes as is,
    for the database to reject with its reason)."""
    if not isinstance(record, dict):
        return {"raw": record}
    kind = record.get("auctionType")
    link = record.get("link")
    return {"id": auction_id(link), "domain": record.get("domainName"),
            "type": TYPES.get(str(kind).replace(" ", "").lower(), kind) if kind is not None else None,
            "price": record.get("price"), "currency": "USD", "bids": record.get("numberOfBids") or 0,
            "end_time": record.get("auctionEndTime"), "url": link if isinstance(link, str) and link else None}


def parse(stream: BinaryIO, filename: str = "", options: dict | None = None) -> Iterator[dict]:
    first = True
    for record in _records(stream):
        if first:
            missing = [f for f in REQUIRED if not isinstance(record, dict) or f not in record]
            if missing:
                present = ", ".join(sorted(record)) if isinstance(record, dict) else type(record).__name__
                raise FormatError(f"GoDaddy inventory: the records lack {', '.join(missing)} "
                                  f"(they have: {present}); the export format changed")
            first = False
        yield row(record)
    if first:
        raise FormatError("GoDaddy inventory: no records under \"data\" (an empty or reshaped export; "
                          "nothing is ingested, and no auction is ended)")


def _records(stream: BinaryIO) -> Iterator:
    items = ijson.items(stream, "data.item", use_float=True)
    while True:
        try:
            record = next(items)
        except StopIteration:
            return
        except ijson.IncompleteJSONError as e:
            raise TransientError(f"GoDaddy inventory: the document ends early (truncated download?): "
                                 f"{str(e).splitlines()[0]}") from None
        except ijson.JSONError as e:
            raise FormatError(f"GoDaddy inventory: not valid JSON: {str(e).splitlines()[0]}") from None
        yield record
