"""TLD price change detection and intel refresh, measured on generated data.

    .venv/bin/python bench/tld_detection.py [--dbname pounce] [--runs 3] [--plans]

Run after `pounce bench generate` (bench/generate/30_tld.sql). Prints, in one run:

- full detection: LAG over the whole history (price_change_events(0, max id));
- incremental detection of the last day's rows (price_change_events(id a day ago, max));
- the pg_cron job over that day (detect_price_changes(): events, fan-out, watermark),
  inside a transaction that is rolled back, so the run can be repeated;
- the original N+1: every distinct (tld, registrar, kind), then one query per pair for
  its last two prices, from this client over the Unix socket (prepared statements);
- REFRESH of the TLD intel materialized view;
- with --plans, EXPLAIN (ANALYZE, BUFFERS) of the statements inside the functions
  (auto_explain, nested statements), printed.

Timings are wall-clock from this client, milliseconds. The figures (and the plans) go
to bench/results/tld.md, which RESULTS.md includes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pounce import bench, cluster  # noqa: E402
from pounce.config import settings as load_settings  # noqa: E402


def timed(conn, query: str, params=()) -> tuple[float, tuple]:
    start = time.perf_counter()
    row = conn.execute(query, params).fetchone()
    return (time.perf_counter() - start) * 1000, row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dbname", default=None)
    ap.add_argument("--runs", type=int, default=3, help="runs of the full detection and the refresh")
    ap.add_argument("--plans", action="store_true", help="print EXPLAIN (ANALYZE, BUFFERS) of the inner statements")
    args = ap.parse_args()
    s = load_settings()
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(f"- {text}")

    with cluster.connect(s, args.dbname or s.dbname) as conn:
        max_id, day_id, rows, offers = conn.execute("""
            SELECT (SELECT max(id) FROM pounce.tld_prices),
                   (SELECT max(id) FROM pounce.tld_prices WHERE observed_at < now() - interval '1 day'),
                   (SELECT count(*) FROM pounce.tld_prices),
                   (SELECT count(*) FROM (SELECT DISTINCT tld, registrar, kind FROM pounce.tld_prices) AS o)
        """).fetchone()
        say(f"history: {rows:,} price rows, {offers:,} offers; last day: ids {day_id + 1:,}..{max_id:,} "
              f"({max_id - day_id:,} rows)")

        full = []
        for _ in range(args.runs):
            ms, (events, moves) = timed(conn, """
                SELECT count(*), count(*) FILTER (WHERE direction IN ('up', 'down'))
                FROM pounce.price_change_events(0, %s)""", [max_id])
            full.append(ms)
        say(f"full detection (LAG over all rows): {events:,} events ({moves:,} up/down); "
              f"runs {', '.join(f'{m:,.0f}' for m in full)} ms; median {statistics.median(full):,.0f} ms")

        inc = []
        for _ in range(20):
            ms, (day_events,) = timed(conn, "SELECT count(*) FROM pounce.price_change_events(%s, %s)",
                                      [day_id, max_id])
            inc.append(ms)
        say(f"incremental detection, last day: {day_events:,} events; 20 runs p50 "
              f"{statistics.median(inc):,.1f} ms, p95 {bench.percentile(sorted(inc), 95):,.1f} ms, max {max(inc):,.1f} ms")

        job = []
        for _ in range(5):
            with conn.transaction(force_rollback=True):
                conn.execute("DELETE FROM pounce.price_changes WHERE price_id > %s", [day_id])
                conn.execute("UPDATE pounce.price_change_watermark SET last_price_id = %s", [day_id])
                ms, (changes, notes) = timed(conn, "SELECT * FROM pounce.detect_price_changes()")
                job.append(ms)
        say(f"job detect_price_changes() over the last day: {changes:,} changes, {notes:,} notifications; "
              f"5 runs p50 {statistics.median(job):,.1f} ms, max {max(job):,.1f} ms")

        start = time.perf_counter()
        pairs = conn.execute("SELECT DISTINCT tld, registrar, kind FROM pounce.tld_prices").fetchall()
        n1_changes = 0
        with conn.cursor() as cur:
            for tld, registrar, kind in pairs:
                last_two = cur.execute(
                    "SELECT price FROM pounce.tld_prices WHERE tld = %s AND registrar = %s AND kind = %s "
                    "ORDER BY observed_at DESC LIMIT 2", [tld, registrar, kind], prepare=True).fetchall()
                if len(last_two) == 2 and last_two[0][0] != last_two[1][0]:
                    n1_changes += 1
        n1 = (time.perf_counter() - start) * 1000
        say(f"N+1 baseline: {len(pairs):,} pairs + {len(pairs):,} queries, {n1_changes:,} latest changes; "
              f"{n1:,.0f} ms")
        say(f"ratio: N+1 / full LAG = {n1 / statistics.median(full):,.1f}x; "
              f"N+1 / incremental LAG (one day) = {n1 / statistics.median(inc):,.0f}x")

        refresh = []
        for _ in range(args.runs):
            ms, _row = timed(conn, "SELECT pounce.refresh_tld_intel()")
            refresh.append(ms)
        say(f"REFRESH MATERIALIZED VIEW CONCURRENTLY pounce.tld_intel: runs "
              f"{', '.join(f'{m:,.0f}' for m in refresh)} ms")

        if args.plans:
            plans: list[str] = []
            conn.add_notice_handler(lambda d: plans.append(d.message_primary))
            conn.execute("LOAD 'auto_explain'")
            for name, value in (("log_min_duration", "0"), ("log_analyze", "on"), ("log_buffers", "on"),
                                ("log_nested_statements", "on"), ("log_level", "notice")):
                conn.execute("SELECT set_config(%s, %s, false)", [f"auto_explain.{name}", value])
            for title, query, params in (
                    ("incremental detection, last day", "SELECT count(*) FROM pounce.price_change_events(%s, %s)",
                     [day_id, max_id]),
                    ("full detection", "SELECT count(*) FROM pounce.price_change_events(0, %s)", [max_id]),
                    ("intel refresh", "SELECT pounce.refresh_tld_intel()", [])):
                plans.clear()
                conn.execute(query, params)
                print(f"\n### EXPLAIN (ANALYZE, BUFFERS): {title}\n")
                for p in plans:
                    print(p)
                lines.append(f"\n`EXPLAIN (ANALYZE, BUFFERS)`, {title}:\n")
                lines += ["```text", *plans, "```"]
            conn.execute("SET auto_explain.log_min_duration = -1")
        bench.write_script_results(conn, "tld", "TLD change detection and intel",
                                   f"on {rows:,} price rows of {offers:,} offers", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
