"""Porkbun's pricing API: every TLD's registration, renewal and transfer price in one
JSON document (POST https://api.porkbun.com/api/json/v3/pricing/get, no key needed):

    {"status": "SUCCESS",
     "pricing": {"com": {"registration": "9.68", "renewal": "10.88", "transfer": "9.68",
                         "coupons": {"registration": {"code": "...", "max_per_user": 1,
                                     "first_year_only": "yes", "type": "amount", "amount": 1}}},
                 "design": {..., "coupons": []}, ...}}

Prices are US dollars as strings. `coupons` is an empty list when a TLD has none. Entries
with a "specialType" (Handshake names) are not TLDs of the DNS root and are skipped.

`parse_pricing` turns the document into rows for `collector.ingest_tld_prices`, passing
the price strings through untouched: validation (unknown TLD, unparseable or negative
price) happens in the database, which rejects bad rows with their reason. The document is
Porkbun's complete price list, so it is ingested with complete => true: an offer missing
from it is recorded as withdrawn.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import psycopg

SOURCE = "porkbun"
KINDS = ("registration", "renewal", "transfer")


class PricingDocumentError(ValueError):
    """The document is not a successful Porkbun pricing answer (nothing to ingest)."""


def _coupon_price(price: Any, coupon: dict) -> str | None:
    """The price with a coupon applied, or None when either is not understood."""
    try:
        base = Decimal(str(price))
        amount = Decimal(str(coupon.get("amount")))
    except (InvalidOperation, ValueError):
        return None
    if coupon.get("type") == "amount":
        reduced = base - amount
    elif coupon.get("type") == "percent":
        reduced = base * (100 - amount) / 100
    else:
        return None
    return str(max(reduced, Decimal(0)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def parse_pricing(document: str | bytes | dict, observed_at: datetime | None = None) -> list[dict]:
    """Rows for collector.ingest_tld_prices from a pricing document (text or parsed).

    One row per TLD and kind. A coupon on a kind becomes a promotional price for it
    (promo, promo_terms first_year_only when the coupon says so, regular_price)."""
    doc = json.loads(document) if isinstance(document, (str, bytes)) else document
    if not isinstance(doc, dict) or doc.get("status") != "SUCCESS":
        message = doc.get("message") if isinstance(doc, dict) else None
        raise PricingDocumentError(f"not a successful Porkbun pricing answer: {message or 'no status SUCCESS'}")
    pricing = doc.get("pricing")
    if not isinstance(pricing, dict) or not pricing:
        raise PricingDocumentError("the pricing object is missing or empty")

    stamp = {"observed_at": observed_at.isoformat()} if observed_at else {}
    rows: list[dict] = []
    for tld, entry in pricing.items():
        if not isinstance(entry, dict):
            rows.append({"tld": tld, "raw": entry, **stamp})  # the database rejects it, with the raw value
            continue
        if entry.get("specialType"):
            continue
        coupons = entry.get("coupons") if isinstance(entry.get("coupons"), dict) else {}
        for kind in KINDS:
            if kind not in entry:
                continue
            row = {"tld": tld, "kind": kind, "price": entry[kind], "currency": "USD", **stamp}
            coupon = coupons.get(kind)
            if isinstance(coupon, dict):
                promo_price = _coupon_price(entry[kind], coupon)
                if promo_price is not None:
                    row.update(price=promo_price, promo=True, regular_price=entry[kind],
                               promo_terms="first_year_only" if coupon.get("first_year_only") == "yes"
                               else "coupon")
            rows.append(row)
    return rows


def ingest(conn: psycopg.Connection, document: str | bytes | dict,
           observed_at: datetime | None = None) -> dict[str, int]:
    """Parse a pricing document and store it; returns the ingestion counts."""
    rows = parse_pricing(document, observed_at)
    cur = conn.execute(
        "SELECT * FROM collector.ingest_tld_prices(%s, %s::jsonb, complete => true)",
        [SOURCE, json.dumps(rows)])
    names = [c.name for c in cur.description]
    return dict(zip(names, cur.fetchone()))
