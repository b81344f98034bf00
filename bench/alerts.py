"""Alert measurements that are not one pgbench transaction, on generated data.

    .venv/bin/python bench/alerts.py [--dbname pounce] [--runs 3] [--baseline-alerts 500]

Run after bench/generate/60_alerts.sql (10,000 active sniper alerts, 100,000 members
with news for a daily digest; `pounce bench generate --scale 1`, or that file with
10_core.sql through psql). Measures, each run inside a transaction that is rolled back
(so runs repeat on the same data):

- one matching run: 20,000 new or changed auctions (10,000 active ones re-priced 10%
  lower plus 10,000 new ones when the market has them, else 20,000 new) written with
  updated_at = now(), then pounce.match_alerts(), the pg_cron job: the set-based join
  of those items with all active alerts, the matches, notifications and instant
  e-mails it writes. Target: <= 2 s.
- the original approach in the same transaction: one query per alert over the same
  changed items (the alert's criteria as parameters, pounce.alert_accepts as the
  filter), only fetching the matches (the original also wrote them one by one). With
  --baseline-alerts N < the number of alerts, N alerts spread over the id range are
  queried and the total is extrapolated linearly (said so in the output).
- the daily digest outbox build for every member: pounce.queue_digests('daily').
  Target: <= 30 s for 100,000 members.

Timings are wall-clock from this client over the Unix socket. The figures and the
command go to bench/results/alerts.md, which RESULTS.md includes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pounce import bench, cluster  # noqa: E402
from pounce.config import settings as load_settings  # noqa: E402

WORDS = """
CREATE TEMP TABLE bench_item_words ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY word)::int AS i, word FROM pounce.words WHERE length(word) BETWEEN 3 AND 9;
ALTER TABLE bench_item_words ADD PRIMARY KEY (i);
"""

# Names of the market's kinds (a word, two words, word + digits, hyphenated), a .com-heavy
# TLD mix, prices $10-$1,033. (%% is a literal percent sign: the statement has parameters.)
NEW_AUCTIONS = """
INSERT INTO pounce.auctions (platform, platform_id, domain, sld, tld, auction_type, current_price, currency, bids,
                             end_time, url)
SELECT 'bench-alerts', 'bench-alerts-' || g.n, l.sld || '.' || t.tld, l.sld, t.tld, 'bid',
       (10 + (hashint4(g.n * 3) & 1023))::numeric, 'USD', g.n %% 5,
       now() + interval '1 hour' + (g.n %% 240) * interval '1 hour', 'https://bench-alerts.example/' || g.n
FROM generate_series(1, %(n)s) AS g(n)
CROSS JOIN (SELECT count(*)::int AS words FROM bench_item_words) AS c
CROSS JOIN LATERAL (
  SELECT CASE g.n %% 4 WHEN 0 THEN w1.word WHEN 1 THEN left(w1.word || w2.word, 20)
                      WHEN 2 THEN w1.word || (g.n %% 100) ELSE w1.word || '-' || w2.word END AS sld
  FROM bench_item_words AS w1, bench_item_words AS w2
  WHERE w1.i = 1 + (hashint4(g.n) & 2147483647) %% c.words
    AND w2.i = 1 + (hashint4(g.n * 7 + 1) & 2147483647) %% c.words) AS l
CROSS JOIN LATERAL (SELECT (ARRAY['com', 'com', 'com', 'net', 'org', 'io', 'ai', 'de', 'xyz', 'co'])[1 + g.n %% 10]
                    AS tld) AS t
ON CONFLICT (platform, platform_id) DO NOTHING
"""

CHANGED_AUCTIONS = """
UPDATE pounce.auctions AS a SET current_price = round(a.current_price * 0.9, 2), updated_at = now()
FROM (SELECT id FROM pounce.auctions WHERE status = 'active' AND platform <> 'bench-alerts'
        AND (end_time IS NULL OR end_time > now() + interval '1 hour')
      ORDER BY id LIMIT %(n)s) AS c
WHERE a.id = c.id
"""

CHANGED_ITEMS = """
SELECT a.id FROM pounce.auctions AS a
WHERE a.updated_at > %(since)s AND a.status = 'active' AND (a.end_time > now() OR a.end_time IS NULL)
  AND pounce.alert_accepts(%(keywords)s, %(excluded_keywords)s, %(tlds)s, %(platforms)s, %(kind)s, %(max_price)s,
                           %(max_length)s, %(min_score)s, %(no_digits)s, %(no_hyphens)s, %(ending_within)s,
                           'auction', a.platform, a.sld, a.tld, a.price_usd, a.sld_length, a.pounce_score,
                           a.has_digit, a.has_hyphen, a.end_time)
"""


def write_items(conn: psycopg.Connection) -> tuple[int, int, object]:
    """20,000 new or changed auctions in the open transaction; returns (changed, new, since)."""
    since = conn.execute("SELECT now() - interval '1 second'").fetchone()[0]
    existing = conn.execute("SELECT count(*) FROM (SELECT 1 FROM pounce.auctions WHERE status = 'active' "
                            "AND platform <> 'bench-alerts' LIMIT 10000) AS x").fetchone()[0]
    changed = conn.execute(CHANGED_AUCTIONS, {"n": 10000}).rowcount if existing >= 10000 else 0
    conn.execute(WORDS)
    new = conn.execute(NEW_AUCTIONS, {"n": 20000 - changed}).rowcount
    conn.execute("UPDATE pounce.alert_match_watermark SET matched_through = %s", [since])
    return changed, new, since


def baseline(conn: psycopg.Connection, since, sample: int) -> tuple[float, int, int, int]:
    """One query per alert, as the original did. Returns (seconds, alerts queried, total alerts, matches)."""
    alerts = conn.execute(
        """SELECT keywords, excluded_keywords, tlds, platforms, kind, max_price, max_length, min_score, no_digits,
                  no_hyphens, ending_within FROM pounce.sniper_alerts WHERE active ORDER BY id""").fetchall()
    total = len(alerts)
    if sample and sample < total:
        step = total / sample
        alerts = [alerts[int(i * step)] for i in range(sample)]
    keys = ("keywords", "excluded_keywords", "tlds", "platforms", "kind", "max_price", "max_length", "min_score",
            "no_digits", "no_hyphens", "ending_within")
    found = 0
    start = time.perf_counter()
    for row in alerts:
        found += len(conn.execute(CHANGED_ITEMS, {"since": since, **dict(zip(keys, row))}).fetchall())
    return time.perf_counter() - start, len(alerts), total, found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dbname")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--baseline-alerts", type=int, default=500,
                    help="alerts the one-query-per-alert baseline queries (0: all); the rest is extrapolated")
    args = ap.parse_args()
    s = load_settings()
    with cluster.connect(s, args.dbname or s.dbname) as conn:
        conn.autocommit = False
        alerts, members = conn.execute(
            """SELECT (SELECT count(*) FROM pounce.sniper_alerts WHERE active),
                      (SELECT count(*) FROM pounce.users WHERE NOT disabled)""").fetchone()
        conn.rollback()
        if alerts == 0:
            raise SystemExit("no sniper alerts: run bench/generate/60_alerts.sql first (pounce bench generate)")
        print(f"{alerts:,} active alerts, {members:,} members")

        steps: list[str] = []
        conn.add_notice_handler(lambda d: steps.append(d.message_primary)
                                if (d.message_primary or "").startswith("match_alerts ms") else None)
        conn.execute("SET client_min_messages = debug1")
        conn.commit()
        match_times, base_times, lines = [], [], []
        for run in range(args.runs):
            changed, new, since = write_items(conn)
            start = time.perf_counter()
            items, matches, notes, emails = conn.execute("SELECT * FROM pounce.match_alerts(interval '0')").fetchone()
            took = time.perf_counter() - start
            match_times.append(took)
            secs, queried, total, found = baseline(conn, since, args.baseline_alerts)
            projected = secs * total / queried
            base_times.append(projected)
            print(f"run {run + 1}: {changed:,} changed + {new:,} new auctions ({items:,} items read): "
                  f"match_alerts {took * 1000:,.0f} ms -> {matches:,} matches, {notes:,} notifications, "
                  f"{emails:,} instant e-mails ({steps[-1] if steps else 'no step timings'}); one query per alert: {queried:,} alerts in {secs:,.2f} s "
                  f"({found:,} matches) -> {projected:,.1f} s for {total:,}")
            conn.rollback()

        digest_times = []
        for run in range(args.runs):
            start = time.perf_counter()
            queued = conn.execute("SELECT pounce.queue_digests('daily')").fetchone()[0]
            took = time.perf_counter() - start
            digest_times.append(took)
            size = conn.execute("SELECT pg_size_pretty(sum(octet_length(body_text) + octet_length(body_html))) "
                                "FROM pounce.email_outbox WHERE category = 'digest'").fetchone()[0]
            print(f"digest run {run + 1}: {queued:,} daily digests queued for {members:,} members in "
                  f"{took:,.2f} s ({size} rendered)")
            conn.rollback()

        m, b, d = statistics.median(match_times), statistics.median(base_times), statistics.median(digest_times)
        sampled = (f"{args.baseline_alerts:,} of {alerts:,} alerts queried, total extrapolated"
                   if args.baseline_alerts and args.baseline_alerts < alerts else f"all {alerts:,} alerts queried")
        lines = [
            "| measurement | median | runs | target |",
            "|---|---|---|---|",
            f"| one matching run: {alerts:,} alerts x 20,000 new/changed auctions (`pounce.match_alerts()`, "
            f"incl. {matches:,} matches, notifications, instant e-mails) | {m * 1000:,.0f} ms "
            f"| {', '.join(f'{t * 1000:,.0f}' for t in match_times)} ms | <= 2 s |",
            f"| original approach: one query per alert over the same items ({sampled}) | {b:,.1f} s "
            f"| {', '.join(f'{t:,.1f}' for t in base_times)} s | |",
            f"| where one matching run's time went (last run) | {steps[-1] if steps else ''} | | |",
            f"| ratio original / set-based | {b / m:,.0f}x | | |",
            f"| daily digest outbox build, {members:,} members (`pounce.queue_digests('daily')`, {queued:,} "
            f"digests rendered) | {d:,.2f} s | {', '.join(f'{t:,.2f}' for t in digest_times)} s | <= 30 s |",
        ]
        print("\n".join(lines))
        context = (f"{alerts:,} active sniper alerts, {members:,} members, each run in a rolled-back transaction "
                   f"over the Unix socket")
        conn.autocommit = True
        bench.write_script_results(conn, "alerts", "Sniper alert matching and digests", context, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
