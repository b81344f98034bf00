"""Market-data sources end to end (sql/sources/, collectors/sources/): the registry and
its scheduler, then fetch_source jobs run by a real collector (`Worker`, the collector
login) against a real HTTP server on loopback serving the recorded fixture files
(tests/fixtures/sources/): normal files, a truncated zip and gzip, changed headers,
HTTP 304, 404, 500, a slow server and oversized files."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from local_servers import source_server  # noqa: F401

from collectors.sources import demo, godaddy, pending_delete
from collectors.sources.fetch import FormatError
from collectors.worker import Worker

FIXTURES = Path(__file__).parent / "fixtures" / "sources"
DAYS = (datetime.now(timezone.utc).date() - demo.RECORDED_ON).days  # recorded dates -> today's
GODADDY_DOMAINS = {"cloudpeak.com", "tinyfox.io", "quantumbakery.com", "greenledger.net", "solarmint.co",
                   "budgetnest.org"}


@pytest.fixture
def collector_url(settings, secrets, db_name) -> str:
    return settings.tcp_url("collector", secrets["POUNCE_COLLECTOR_PASSWORD"], db_name)


def add_source(db, name, kind, fmt, url, platform=None, **options) -> None:
    db.execute("INSERT INTO pounce.sources (name, kind, format, url, platform, options) VALUES (%s, %s, %s, %s, %s, %s)",
               [name, kind, fmt, url, platform, json.dumps(options)])


def fetch(db, conninfo, *names) -> dict:
    """Queue the sources (all due ones when none is named) and run a collector until no
    job is ready: what pg_cron and `pounce worker` do."""
    if names:
        for name in names:
            db.execute("SELECT pounce.fetch_source_now(%s)", [name])
    else:
        db.execute("SELECT pounce.enqueue_due_sources()")
    return asyncio.run(Worker(conninfo, kinds=["fetch_source"], burst=True, poll=0.1).run())


def source(db, name) -> dict:
    cur = db.execute("SELECT * FROM pounce.sources WHERE name = %s", [name])
    return dict(zip([c.name for c in cur.description], cur.fetchone()))


def auctions(db, platform) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in db.execute(
        "SELECT domain, status, current_price, bids, auction_type, end_time FROM pounce.auctions"
        " WHERE platform = %s", [platform])}


def rejects(db, source_name) -> list[str]:
    return [r[0] for r in db.execute("SELECT reason FROM pounce.ingest_rejects WHERE source = %s ORDER BY id",
                                     [source_name])]


def godaddy_zip(tmp_path, doc: dict | None = None) -> bytes:
    """The recorded GoDaddy inventory with its dates moved to today, zipped as served."""
    recorded = FIXTURES / "godaddy_inventory.json"
    if doc is not None:
        recorded = tmp_path / "godaddy_inventory.json"
        recorded.write_text(json.dumps(doc))
    return demo.rebase(recorded, tmp_path / "served", DAYS).read_bytes()


def godaddy_doc() -> dict:
    return json.loads((FIXTURES / "godaddy_inventory.json").read_text())


# =============================================================================
# Registry and scheduler
# =============================================================================

def test_scheduler_queues_each_due_enabled_source_once(db):
    add_source(db, "alpha", "auction", "godaddy_json", "https://example.com/a.zip")
    add_source(db, "beta", "tld_price", "porkbun_json", "https://example.com/p")
    add_source(db, "gamma", "auction", "snapnames_csv", "https://example.com/s.csv")
    db.execute("UPDATE pounce.sources SET enabled = false WHERE name = 'gamma'")
    assert db.execute("SELECT pounce.enqueue_due_sources()").fetchone()[0] == 2  # what pg_cron runs
    jobs = db.execute("SELECT payload ->> 'source', dedup_key FROM pounce.jobs WHERE kind = 'fetch_source'"
                      " ORDER BY 1").fetchall()
    assert jobs == [("alpha", "source:alpha"), ("beta", "source:beta")]
    # the next run moved one schedule ahead: nothing is due now
    assert db.execute("SELECT pounce.enqueue_due_sources()").fetchone()[0] == 0
    assert db.execute("SELECT next_run_at - now() > interval '59 minutes' FROM pounce.sources"
                      " WHERE name = 'alpha'").fetchone()[0]
    # due again while its job still waits: the pending job is reused, not doubled
    db.execute("UPDATE pounce.sources SET next_run_at = now(), schedule = '5 minutes' WHERE name = 'alpha'")
    assert db.execute("SELECT pounce.enqueue_due_sources()").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM pounce.jobs WHERE kind = 'fetch_source'").fetchone()[0] == 2
    # operators fetch any source now, enabled or not
    db.execute("SELECT pounce.fetch_source_now('gamma')")
    assert db.execute("SELECT count(*) FROM pounce.jobs WHERE kind = 'fetch_source'").fetchone()[0] == 3
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="no source named"):
        db.execute("SELECT pounce.fetch_source_now('nope')")
    assert db.execute("SELECT schedule, command FROM pounce.cron_jobs WHERE jobname = 'pounce.enqueue_due_sources'"
                      ).fetchone() == ("* * * * *", "SELECT pounce.enqueue_due_sources()")


def test_registry_refuses_a_format_of_another_kind(db):
    with pytest.raises(psycopg.errors.CheckViolation):
        add_source(db, "bad", "tld_price", "godaddy_json", "https://example.com/a.zip")


def test_admin_reads_sources_and_members_do_not(db, make_user, api_request):
    add_source(db, "alpha", "auction", "godaddy_json", "https://example.com/a.zip")
    admin, _ = make_user("ops@example.com", role="admin")
    member, _ = make_user("ann@example.com")
    with api_request("admin", admin) as conn:
        assert conn.execute("SELECT name, platform, enabled FROM api.sources").fetchall() == [("alpha", "alpha", True)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with api_request("member", member) as conn:
            conn.execute("SELECT * FROM api.sources")


# =============================================================================
# GoDaddy: zipped JSON, streamed
# =============================================================================

def test_godaddy_zip_from_schedule_to_feed_then_304_then_idempotent_then_snapshot(
        db, collector_url, source_server, tmp_path, api_request):
    url = source_server.set("/gd1/inventory.json.zip", godaddy_zip(tmp_path), etag='"v1"')
    add_source(db, "gd1", "auction", "godaddy_json", url, platform="godaddy")
    stats = fetch(db, collector_url)
    assert (stats["completed"], stats["failed"]) == (1, 0)

    row = source(db, "gd1")
    assert row["last_error"] is None and row["last_success_at"] is not None and row["etag"] == '"v1"'
    assert row["last_counts"] == {"rows": 8, "inserted": 6, "updated": 0, "unchanged": 0, "rejected": 2, "ended": 0}
    with api_request("anon") as conn:
        feed = {r[0]: r[1:] for r in conn.execute(
            "SELECT domain, sale_type, price, bids, url FROM api.market_feed WHERE source = 'godaddy'")}
    assert set(feed) == GODADDY_DOMAINS
    assert feed["cloudpeak.com"] == ("bid", Decimal("1234.00"), 12,
                                     "https://auctions.godaddy.com/trpItemListing.aspx/563000001")
    assert feed["tinyfox.io"][:2] == ("buy_now", Decimal("2500.00"))
    assert db.execute("SELECT platform_id FROM pounce.auctions WHERE domain = 'cloudpeak.com'"
                      ).fetchone()[0] == "563000001"
    reasons = rejects(db, "auctions:godaddy")
    assert len(reasons) == 2 and 'price "$1,2x4" is not a number' in reasons
    assert any("not a domain" in r or "invalid" in r.lower() for r in reasons), reasons

    # unchanged upstream: a conditional request, answered 304, ingests nothing
    before = row["last_success_at"]
    assert fetch(db, collector_url, "gd1")["completed"] == 1
    assert source_server.requests["/gd1/inventory.json.zip"][-1]["if-none-match"] == '"v1"'
    row = source(db, "gd1")
    assert row["last_success_at"] > before and row["last_counts"]["inserted"] == 6 and row["last_error"] is None

    # the same file under a new ETag: nothing changes (idempotent)
    source_server.set("/gd1/inventory.json.zip", godaddy_zip(tmp_path), etag='"v2"')
    fetch(db, collector_url, "gd1")
    assert source(db, "gd1")["last_counts"] == {"rows": 8, "inserted": 0, "updated": 0, "unchanged": 6,
                                                "rejected": 2, "ended": 0}

    # a complete file without cloudpeak.com: the auction ended upstream
    doc = godaddy_doc()
    doc["data"] = [r for r in doc["data"] if r["domainName"] != "cloudpeak.com"]
    source_server.set("/gd1/inventory.json.zip", godaddy_zip(tmp_path, doc), etag='"v3"')
    fetch(db, collector_url, "gd1")
    assert source(db, "gd1")["last_counts"]["ended"] == 1
    assert {d: a[0] for d, a in auctions(db, "godaddy").items()} == {
        d: "ended" if d == "cloudpeak.com" else "active" for d in GODADDY_DOMAINS}


def test_truncated_files_end_no_auctions_and_keep_the_last_good_state(db, collector_url, source_server, tmp_path):
    url = source_server.set("/gd2/inventory.json.zip", godaddy_zip(tmp_path), etag='"good"')
    add_source(db, "gd2", "auction", "godaddy_json", url, platform="godaddy", retries=0)
    fetch(db, collector_url, "gd2")
    good = source(db, "gd2")
    assert good["last_counts"]["inserted"] == 6

    # a truncated zip (the download broke off): an error, retried later; nothing ends
    data = godaddy_zip(tmp_path)
    source_server.set("/gd2/inventory.json.zip", data[: len(data) // 2], etag='"cut"')
    stats = fetch(db, collector_url, "gd2")
    assert (stats["completed"], stats["failed"]) == (0, 1)
    row = source(db, "gd2")
    assert "zip file is damaged or truncated" in row["last_error"]
    assert (row["last_counts"], row["etag"], row["last_success_at"]) == (
        good["last_counts"], '"good"', good["last_success_at"])
    job = db.execute("SELECT attempts, run_at > now(), last_error FROM pounce.jobs WHERE kind = 'fetch_source'"
                     ).fetchone()
    assert job[:2] == (1, True) and "truncated" in job[2]  # retried with backoff by the queue
    assert {a[0] for a in auctions(db, "godaddy").values()} == {"active"}

    # a gzip cut inside the document, read in batches of 2: the rows before the cut
    # arrive (their last_seen moves), yet no auction missing from them is ended
    db.execute("DELETE FROM pounce.jobs")
    seen_before = dict(db.execute("SELECT domain, last_seen FROM pounce.auctions WHERE platform = 'godaddy'"))
    text = json.dumps(godaddy_doc() | {"data": [
        r | {"auctionEndTime": demo.shift_iso(r["auctionEndTime"], DAYS)} for r in godaddy_doc()["data"]]})
    cut = gzip.compress(text[: text.index('"quantumbakery.com"')].encode())
    source_server.set("/gd2/inventory.json.gz", cut)
    db.execute("UPDATE pounce.sources SET url = %s, options = '{\"retries\": 0, \"batch_size\": 2}'"
               " WHERE name = 'gd2'", [source_server.url("/gd2/inventory.json.gz")])
    assert fetch(db, collector_url, "gd2")["failed"] == 1
    assert "ends early" in source(db, "gd2")["last_error"] or "truncated" in source(db, "gd2")["last_error"]
    seen_after = dict(db.execute("SELECT domain, last_seen FROM pounce.auctions WHERE platform = 'godaddy'"))
    assert seen_after["cloudpeak.com"] > seen_before["cloudpeak.com"]  # the first batch was ingested
    assert {a[0] for a in auctions(db, "godaddy").values()} == {"active"}


def test_changed_formats_store_a_clear_error_and_keep_data(db, collector_url, source_server, tmp_path):
    url = source_server.set("/gd3/inventory.json.zip", godaddy_zip(tmp_path))
    add_source(db, "gd3", "auction", "godaddy_json", url, platform="godaddy")
    snap = source_server.set("/sn3/export.csv", (FIXTURES / "snapnames.csv").read_bytes())
    add_source(db, "sn3", "auction", "snapnames_csv", snap, platform="snapnames")
    fetch(db, collector_url, "gd3", "sn3")
    good = {n: source(db, n) for n in ("gd3", "sn3")}
    assert good["gd3"]["last_error"] is None and good["sn3"]["last_error"] is None

    changed = json.loads((FIXTURES / "godaddy_changed.json").read_text())
    source_server.set("/gd3/inventory.json.zip", godaddy_zip(tmp_path, changed))
    source_server.set("/sn3/export.csv", (FIXTURES / "snapnames_changed.csv").read_bytes())
    stats = fetch(db, collector_url, "gd3", "sn3")
    assert (stats["completed"], stats["failed"]) == (2, 0)  # not retried: the next schedule tries again
    assert not db.execute("SELECT count(*) FROM pounce.jobs").fetchone()[0]
    gd, sn = source(db, "gd3"), source(db, "sn3")
    assert "lack domainName" in gd["last_error"] and "format changed" in gd["last_error"]
    assert sn["last_error"].startswith("SnapNames export: unknown column(s) 'Reserve price'")
    for name, row in (("gd3", gd), ("sn3", sn)):
        assert (row["last_counts"], row["last_success_at"]) == (good[name]["last_counts"],
                                                                good[name]["last_success_at"])
    assert {a[0] for a in auctions(db, "godaddy").values()} == {"active"}
    assert len(auctions(db, "snapnames")) == 4


def test_http_failures_are_stored_on_the_source(db, collector_url, source_server):
    body = (FIXTURES / "snapnames.csv").read_bytes()
    add_source(db, "h500", "auction", "snapnames_csv", source_server.set("/h/500.csv", "oops", status=500),
               retries=2, backoff=0.01)
    add_source(db, "h404", "auction", "snapnames_csv", source_server.set("/h/404.csv", "gone", status=404))
    add_source(db, "slow", "auction", "snapnames_csv", source_server.set("/h/slow.csv", body, delay=1.5),
               timeout=0.3, retries=0)
    add_source(db, "big", "auction", "snapnames_csv", source_server.set("/h/big.csv", body), max_bytes=100)
    add_source(db, "bigchunked", "auction", "snapnames_csv",
               source_server.set("/h/bigchunked.csv", body * 40, chunked=True), max_bytes=5000)
    stats = fetch(db, collector_url)
    assert (stats["completed"], stats["failed"]) == (3, 2)
    errors = dict(db.execute("SELECT name, last_error FROM pounce.sources"))
    assert errors["h500"] == f"HTTP 500 from {source_server.url('/h/500.csv')}"
    assert source_server.hits["/h/500.csv"] == 3  # retried twice within the job, with backoff
    assert errors["h404"] == f"HTTP 404 from {source_server.url('/h/404.csv')}"
    assert errors["slow"].startswith("timed out fetching") and "ReadTimeout" in errors["slow"]
    assert errors["big"] == (f"file too large: Content-Length {len(body):,} bytes exceeds the limit of 100 "
                             "(options.max_bytes)")
    assert errors["bigchunked"].startswith("file too large: more than 5,000 bytes")
    # transient failures (500, timeout) go back to the queue with backoff; the others wait for their schedule
    assert dict(db.execute("SELECT payload ->> 'source', attempts FROM pounce.jobs")) == {"h500": 1, "slow": 1}
    assert not db.execute("SELECT count(*) FROM pounce.auctions").fetchone()[0]


def test_a_failing_source_keeps_its_last_good_data(db, collector_url, source_server):
    url = source_server.set("/k/export.csv", (FIXTURES / "snapnames.csv").read_bytes(), etag='"a"')
    add_source(db, "keep", "auction", "snapnames_csv", url, platform="snapnames", retries=0)
    fetch(db, collector_url)
    good = source(db, "keep")
    source_server.set("/k/export.csv", "upstream is down", status=503)
    assert fetch(db, collector_url, "keep")["failed"] == 1
    row = source(db, "keep")
    assert row["last_error"].startswith("HTTP 503")
    assert (row["last_counts"], row["etag"], row["last_success_at"]) == (
        good["last_counts"], '"a"', good["last_success_at"])
    assert {a[0] for a in auctions(db, "snapnames").values()} == {"active"}


def test_a_source_is_fetched_by_one_collector_at_a_time(db, collector_url, source_server):
    url = source_server.set("/busy/export.csv", (FIXTURES / "snapnames.csv").read_bytes())
    add_source(db, "busy", "auction", "snapnames_csv", url, platform="snapnames")
    with psycopg.connect(collector_url, autocommit=True) as other:  # another collector's fetch in progress
        other.execute("SELECT pg_advisory_lock(hashtext('pounce.sources'), hashtext('busy'))")
        assert fetch(db, collector_url)["completed"] == 1
        row = source(db, "busy")
        assert (row["last_attempt_at"], row["last_error"]) == (None, None) and "/busy/export.csv" not in source_server.hits
    fetch(db, collector_url, "busy")
    assert source(db, "busy")["last_counts"]["inserted"] == 4


# =============================================================================
# SnapNames CSV and pending-delete lists
# =============================================================================

def test_snapnames_csv_rows_and_rejects(db, collector_url, source_server):
    add_source(db, "sn", "auction", "snapnames_csv", source_server.set("/sn/export.csv",
               (FIXTURES / "snapnames.csv").read_bytes()), platform="snapnames")
    fetch(db, collector_url)
    assert source(db, "sn")["last_counts"] == {"rows": 6, "inserted": 4, "updated": 0, "unchanged": 0,
                                               "rejected": 2, "ended": 0}
    got = auctions(db, "snapnames")
    # 12/06/2026 09:24 AM Eastern (UTC-5 in December)
    assert got["brightharbor.com"] == ("active", Decimal("1250.00"), 7, "bid",
                                       datetime(2026, 12, 6, 14, 24, tzinfo=timezone.utc))
    reasons = rejects(db, "auctions:snapnames")
    assert reasons == ['price "call" is not a number', 'end_time "someday" is not a timestamp']


def test_pending_delete_list_takes_the_drop_date_from_the_file_name(db, collector_url, source_server):
    add_source(db, "pd", "auction", "pending_delete", source_server.set(
        "/pd/pending_delete_2026-12-09.txt", (FIXTURES / "pending_delete_2026-12-09.txt").read_bytes()),
        platform="pendingdelete", price=59)
    fetch(db, collector_url)
    assert source(db, "pd")["last_counts"]["inserted"] == 5
    got = auctions(db, "pendingdelete")
    assert set(got) == {"quietmeadow.com", "lunarcraft.net", "boldriver.com", "rapidowl.org", "zestful.io"}
    assert {a[1:] for a in got.values()} == {(Decimal("59.00"), 0, "bid", datetime(2026, 12, 9, 19, tzinfo=timezone.utc))}
    assert len(rejects(db, "auctions:pendingdelete")) == 1

    source_server.set("/pd/pending_delete_2026-12-09.txt", "quietmeadow.com,2026-12-09\nlunarcraft.net,2026-12-09\n")
    fetch(db, collector_url, "pd")
    assert "line 1 is not one domain name" in source(db, "pd")["last_error"]
    assert len(auctions(db, "pendingdelete")) == 5


def test_parsers_units():
    assert godaddy.auction_id("https://auctions.godaddy.com/trpItemListing.aspx/563000001?isc=x") == "563000001"
    assert godaddy.auction_id("https://auctions.godaddy.com/x/42/") == "42"
    assert godaddy.auction_id(None) is None and godaddy.auction_id("") is None
    assert pending_delete.drop_date("PendingDelete_20261209.txt") == date(2026, 12, 9)
    assert pending_delete.drop_date("drops-2026_12_10.zip") == date(2026, 12, 10)
    with pytest.raises(FormatError, match="no drop date"):
        pending_delete.drop_date("pending.txt")
    with pytest.raises(FormatError, match="no records"):
        list(godaddy.parse(io.BytesIO(b'{"meta": {}, "items": [{"domainName": "a.com"}]}')))
    # records are yielded as they are read: the first arrives before the document ends
    rows = godaddy.parse(io.BytesIO(json.dumps(godaddy_doc()).encode()[:1200]))
    assert next(rows)["domain"] == "cloudpeak.com"


# =============================================================================
# Registrar prices
# =============================================================================

def test_price_sources_porkbun_api_and_csv_sheet(db, collector_url, source_server, api_request):
    url = source_server.set("/api/json/v3/pricing/get", (FIXTURES.parent / "porkbun_pricing.json").read_bytes())
    add_source(db, "porkbun", "tld_price", "porkbun_json", url, method="POST", body="{}")
    add_source(db, "sheet", "tld_price", "price_sheet_csv", source_server.set(
        "/prices.csv", (FIXTURES / "price_sheet.csv").read_bytes()), platform="examplereg")
    assert fetch(db, collector_url)["completed"] == 2
    assert source(db, "porkbun")["last_counts"] == {"rows": 24, "inserted": 24, "updated": 0, "unchanged": 0,
                                                    "rejected": 0, "withdrawn": 0}
    assert source(db, "sheet")["last_counts"] == {"rows": 23, "inserted": 20, "updated": 0, "unchanged": 0,
                                                  "rejected": 3, "withdrawn": 0}
    assert source_server.requests["/api/json/v3/pricing/get"][-1]["content-length"] == "2"  # a POST with {}
    assert sorted(rejects(db, "tld_prices:examplereg")) == ['unknown TLD "notatld"', 'unknown TLD "notatld"',
                                                           'unparseable price "1,99"']
    with api_request("anon") as conn:
        offers = {(r[0], r[1]): r[2] for r in conn.execute(
            "SELECT tld, kind, price FROM api.tld_offers WHERE registrar = 'examplereg'")}
    assert offers[("com", "registration")] == Decimal("10.28") and offers[("io", "renewal")] == Decimal("59.98")
    assert ("io", "restore") not in offers and offers[("xyz", "renewal")] == Decimal("13.98")

    # the sheet changes: a column nobody knows
    source_server.set("/prices.csv", "TLD,Registration,Renewal,Premium\n.com,1,2,3\n")
    fetch(db, collector_url, "sheet")
    assert source(db, "sheet")["last_error"].startswith("price sheet: unknown column(s) 'Premium'")
    # a Porkbun error answer is a format error too, and the prices stay
    source_server.set("/api/json/v3/pricing/get", '{"status": "ERROR", "message": "rate limited"}')
    fetch(db, collector_url, "porkbun")
    assert "rate limited" in source(db, "porkbun")["last_error"]
    assert db.execute("SELECT count(*) FROM pounce.tld_prices WHERE registrar = 'porkbun' AND price IS NULL"
                      ).fetchone()[0] == 0


# =============================================================================
# The demo sample (./dev up)
# =============================================================================

def test_demo_load_fills_the_feed_and_the_tld_pages(settings, db, db_name, collector_url, tmp_path, api_request):
    loaded = demo.load(settings.conninfo(db_name), collector_url, tmp_path)
    assert [r[0] for r in loaded] == sorted(demo.DEMO_SOURCES) and all(r[1] is None for r in loaded), loaded
    counts = {r[0]: r[2] for r in loaded}
    assert counts["demo-godaddy"]["inserted"] == 400 and counts["demo-snapnames"]["inserted"] == 120
    with api_request("anon") as conn:
        feed = dict(conn.execute("SELECT source, count(*) FROM api.market_feed GROUP BY 1"))
        intel = conn.execute("SELECT count(*) FROM api.tld_intel WHERE cheapest_registration_usd IS NOT NULL"
                             ).fetchone()[0]
    # auctions ending later today than the recorded time of day may have ended already
    assert feed["godaddy"] > 300 and feed["snapnames"] > 90 and feed["pendingdelete"] == 150
    assert intel >= 20
    # a second load is idempotent for the auctions
    again = {r[0]: r[2] for r in demo.load(settings.conninfo(db_name), collector_url, tmp_path)}
    assert again["demo-godaddy"]["unchanged"] == 400 and again["demo-godaddy"]["inserted"] == 0
    assert not db.execute("SELECT count(*) FROM pounce.jobs").fetchone()[0]
    assert not db.execute("SELECT count(*) FROM pounce.sources WHERE enabled").fetchone()[0]
