"""The `verify_listing` job: reads the TXT records at _pounce.<domain> for a marketplace
listing and reports them to collector.record_listing_verifications(), which decides in
SQL whether one of them carries the listing's token.

Enqueued by api.verify_listing(listing_id). Configuration as for check_domain
(`resolver`, `timeout`): see collectors/domain_check.py.
"""

from __future__ import annotations

from .domain_check import Dns
from .worker import Context, Job, Permanent, handler


@handler("verify_listing", report="SELECT collector.record_listing_verifications(%s::jsonb)")
async def verify_listing(job: Job, ctx: Context) -> dict:
    try:
        listing_id, domain = int(job.payload["listing_id"]), str(job.payload["domain"])
    except (KeyError, TypeError, ValueError):
        raise Permanent(f"bad payload {job.payload!r}") from None
    dns = ctx.state.get("listing_dns")
    if dns is None:
        dns = ctx.state["listing_dns"] = Dns(ctx.config.get("resolver"), float(ctx.config.get("timeout") or 10))
    records, _nxdomain, error = await dns.query(f"_pounce.{domain}", "TXT")
    if error:
        raise RuntimeError(f"TXT _pounce.{domain}: {error}")  # retried with backoff
    # no record (NXDOMAIN or no TXT) is an answer too: not verified yet
    return {"listing_id": listing_id, "txt_records": records}
