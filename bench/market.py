"""Market measurements that are not one pgbench transaction, on generated data.

    .venv/bin/python bench/market.py [--dbname pounce] [--runs 30] [--sizes 10000,100000,1000000]

Run after `pounce bench generate` (bench/generate/20_market.sql). Measures, in one run:

- ingestion: 100,000 auctions of one platform, half already stored with a new price and
  half new, sent as 10 batches of 10,000 to collector.ingest_auctions (one transaction
  each, as a collector does), over one connection and over two; afterwards the new rows
  are deleted and the prices put back, so the run repeats;
- the original approach as the baseline: load every active auction and listing into
  Python, score each, sort, take the first page — at each size of --sizes (the first N
  rows), against api.feed's first page measured the same way;
- materialized view or plain view: the feed as a materialized view (build time, REFRESH
  CONCURRENTLY time) against the plain view, first page and a filtered page on both.

Timings are wall-clock from this client over the Unix socket, in milliseconds. The
figures and the command go to bench/results/market.md, which RESULTS.md includes.
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pounce import bench, cluster  # noqa: E402
from pounce.config import settings as load_settings  # noqa: E402

FIRST_PAGE = "SELECT * FROM api.feed()"
FILTERED = "SELECT * FROM api.feed(keyword => 'cloud', tlds => '{com}', min_price => 20, max_price => 2000)"


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def sample(conn: psycopg.Connection, query: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        conn.execute(query).fetchall()
        times.append(ms_since(start))
    return times


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    return (f"p50 {statistics.median(ordered):,.2f} ms, p95 {bench.percentile(ordered, 95):,.2f} ms "
            f"({len(ordered)} runs)")


# --- the original approach ---------------------------------------------------------------

def python_score(sld: str, tld: str, bids: int, price: float, est: float | None) -> int:
    """The scoring the original did per item in Python (same rules as the SQL)."""
    n = len(sld)
    length = next(points for limit, points in ((2, 25), (3, 24), (4, 22), (5, 19), (6, 16), (7, 13), (8, 10),
                                                (9, 8), (10, 6), (12, 4), (15, 2), (10**9, 0)) if n <= limit)
    chars = (2 if sld.startswith("xn--") else 15 if sld.isalpha() else 10 if sld.isdigit()
             else 4 if sld.isalnum() else 3 if re.fullmatch(r"[a-z-]+", sld) else 0)
    last = tld.rsplit(".", 1)[-1]
    tld_points = (20 if last == "com" else 14 if last in ("net", "org", "io", "ai", "co")
                  else 10 if last in ("app", "dev", "me", "de", "uk", "ca") else 8 if len(last) == 2 else 5)
    bid_points = min(10, round(3 * math.log(1 + bids)))
    deal = 0 if not est or not price else 5 if est / price >= 3 else 3 if est / price >= 1.5 else 1 if est >= price else 0
    return min(100, length + chars + tld_points + bid_points + deal)


def original_feed(conn: psycopg.Connection, limit: int) -> tuple[float, int]:
    start = time.perf_counter()
    rows = conn.execute(
        """SELECT id, sld, tld, bids, price_usd::float8, est_value::float8 FROM (
             SELECT id, sld, tld, bids, price_usd, est_value FROM pounce.auctions
             WHERE status = 'active' AND (end_time > now() OR end_time IS NULL)
             UNION ALL
             SELECT id, sld, tld, 0, price_usd, est_value FROM pounce.listings WHERE status = 'active') AS items
           LIMIT %s""", [limit]).fetchall()
    scored = sorted(((python_score(sld, tld, bids, price, est), i) for i, sld, tld, bids, price, est in rows),
                    reverse=True)
    page = scored[:50]
    assert len(page) == min(50, len(rows))
    return ms_since(start), len(rows)


# --- measurements ---------------------------------------------------------------------------

def ingest_rows(conn: psycopg.Connection, label: str) -> tuple[list[dict], int, int]:
    """100,000 auction rows of platform godaddy: half stored ones with a new price, half new."""
    existing = conn.execute(
        """SELECT platform_id, domain, current_price + 1, bids, end_time, url FROM pounce.auctions
           WHERE platform = 'godaddy' AND status = 'active' AND end_time > now() + interval '1 hour'
           ORDER BY id LIMIT 50000""").fetchall()
    new = [(f"bench-ingest-{label}-{n}", f"{label}{n}x{chr(97 + n % 26)}name.com", 10 + n % 500, n % 4, None, None)
           for n in range(100000 - len(existing))]
    end = conn.execute("SELECT now() + interval '3 days'").fetchone()[0]
    rows = [{"id": pid, "domain": dom, "price": float(price), "bids": bids, "type": "bid",
             "end_time": (et or end).isoformat(), "url": url or f"https://godaddy.example/auction/{pid}"}
            for pid, dom, price, bids, et, url in existing + new]
    rows.sort(key=lambda r: r["id"])  # interleaved, as a platform's export is not sorted by novelty
    return rows, len(existing), len(new)


def ingest_batches(conninfo: str, batches: list[list[dict]]) -> list[int]:
    """Send batches over one connection, one transaction each, as a collector does."""
    totals = [0, 0, 0, 0]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for batch in batches:
            got = conn.execute("SELECT * FROM collector.ingest_auctions('godaddy', %s)", [Jsonb(batch)]).fetchone()
            totals = [a + b for a, b in zip(totals, got)]
    return totals


def measure_ingest(conn: psycopg.Connection, conninfo: str) -> list[str]:
    lines = []
    for workers in (1, 2):
        label = f"w{workers}"
        rows, changed, new = ingest_rows(conn, label)
        batches = [rows[i:i + 10000] for i in range(0, len(rows), 10000)]
        started_at = conn.execute("SELECT now()").fetchone()[0]
        start = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(lambda k: ingest_batches(conninfo, batches[k::workers]), range(workers)))
        total_ms = ms_since(start)
        totals = [sum(p[i] for p in parts) for i in range(4)]
        lines.append(f"- ingest of {len(rows):,} auctions ({changed:,} with a new price, {new:,} new), 10 batches "
                     f"of 10,000 over {workers} connection{'s' if workers > 1 else ''}: **{total_ms / 1000:,.2f} s** "
                     f"({len(rows) / total_ms * 1000:,.0f} rows/s); inserted {totals[0]:,}, updated {totals[1]:,}, "
                     f"unchanged {totals[2]:,}, rejected {totals[3]:,} (budget: 10 s)")
        # back to the generated state for the next measurement
        conn.execute("DELETE FROM pounce.auctions WHERE platform = 'godaddy' AND platform_id LIKE %s",
                     [f"bench-ingest-{label}-%"])
        conn.execute("""UPDATE pounce.auctions SET current_price = current_price - 1
                        WHERE platform = 'godaddy' AND status = 'active' AND updated_at >= %s""", [started_at])
    return lines


def measure_baseline(conn: psycopg.Connection, sizes: list[int], runs: int) -> list[str]:
    feed = sample(conn, FIRST_PAGE, runs)
    feed_p50 = statistics.median(feed)
    lines = [f"- `api.feed()` first page (50 rows, default sort) from this client: {summary(feed)}"]
    for size in sizes:
        times, loaded = [], 0
        for _ in range(max(1, min(5, runs // 6))):
            t, loaded = original_feed(conn, size)
            times.append(t)
        p50 = statistics.median(times)
        lines.append(f"- original approach over {loaded:,} rows (load, score in Python, sort, slice): "
                     f"p50 {p50:,.1f} ms — **{p50 / feed_p50:,.0f}×** the feed's p50")
    return lines


def measure_matview(conn: psycopg.Connection, runs: int) -> list[str]:
    lines = []
    with conn.transaction(force_rollback=True):
        start = time.perf_counter()
        conn.execute("CREATE MATERIALIZED VIEW pounce.bench_feed_mv AS SELECT * FROM api.market_feed")
        conn.execute("CREATE UNIQUE INDEX ON pounce.bench_feed_mv (id)")
        conn.execute("CREATE INDEX ON pounce.bench_feed_mv (pounce_score DESC, id DESC)")
        conn.execute("CREATE INDEX ON pounce.bench_feed_mv (tld, pounce_score DESC, id DESC)")
        conn.execute("CREATE INDEX ON pounce.bench_feed_mv USING gin (sld gin_trgm_ops)")
        conn.execute("ANALYZE pounce.bench_feed_mv")
        build = ms_since(start)
        rows = conn.execute("SELECT count(*) FROM pounce.bench_feed_mv").fetchone()[0]
        # what a freshness of 60 s would cost: one refresh per minute (1% of rows changed)
        conn.execute("""UPDATE pounce.auctions SET current_price = current_price + 1
                        WHERE id IN (SELECT id FROM pounce.auctions WHERE status = 'active'
                                     ORDER BY id LIMIT (SELECT count(*) / 100 FROM pounce.auctions))""")
        start = time.perf_counter()
        conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY pounce.bench_feed_mv")
        refresh = ms_since(start)
        mv_first = sample(conn, "SELECT * FROM pounce.bench_feed_mv ORDER BY pounce_score DESC, id DESC LIMIT 50",
                          runs)
        mv_filtered = sample(conn, """SELECT * FROM pounce.bench_feed_mv WHERE sld LIKE '%cloud%' AND tld = 'com'
                                      AND price_usd BETWEEN 20 AND 2000 ORDER BY pounce_score DESC, id DESC LIMIT 50""",
                             runs)
    view_first = sample(conn, "SELECT * FROM api.market_feed ORDER BY pounce_score DESC, id DESC LIMIT 50", runs)
    view_filtered = sample(conn, """SELECT * FROM api.market_feed WHERE sld LIKE '%cloud%' AND tld = 'com'
                                    AND price_usd BETWEEN 20 AND 2000 ORDER BY pounce_score DESC, id DESC LIMIT 50""",
                           runs)
    lines += [
        f"- materialized view of the feed ({rows:,} rows): build with 4 indexes {build / 1000:,.1f} s; "
        f"REFRESH CONCURRENTLY after 1% of auctions changed **{refresh / 1000:,.1f} s** (a 60 s freshness "
        f"would run this every minute)",
        f"- first page: materialized view {summary(mv_first)}; plain view {summary(view_first)}",
        f"- filtered page (keyword, TLD, price range): materialized view {summary(mv_filtered)}; "
        f"plain view {summary(view_filtered)}",
    ]
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dbname", default=None)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--skip", default="", help="comma-separated: ingest, baseline, matview")
    args = ap.parse_args()
    s = load_settings()
    skip = set(filter(None, args.skip.split(",")))
    with cluster.connect(s, args.dbname or s.dbname) as conn:
        counts = conn.execute("""SELECT (SELECT count(*) FROM pounce.auctions WHERE status = 'active'),
                                        (SELECT count(*) FROM pounce.listings WHERE status = 'active'),
                                        (SELECT count(*) FROM pounce.sales)""").fetchone()
        print(f"data: {counts[0]:,} active auctions, {counts[1]:,} active listings, {counts[2]:,} sales",
              flush=True)
        lines: list[str] = []
        for name, fn in (("ingest", lambda: measure_ingest(conn, s.conninfo(args.dbname or s.dbname))),
                         ("baseline", lambda: measure_baseline(conn, [int(x) for x in args.sizes.split(",")],
                                                               args.runs)),
                         ("matview", lambda: measure_matview(conn, args.runs))):
            if name in skip:
                continue
            got = fn()
            for line in got:
                print(line, flush=True)
            lines += got
        bench.write_script_results(
            conn, "market", "Market",
            f"on {counts[0]:,} active auctions, {counts[1]:,} active listings and {counts[2]:,} sales", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
