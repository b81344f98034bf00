"""Watch and job-queue measurements that pgbench cannot make. Each prints its figures;
`all` runs the four in turn and writes them to bench/results/watch.md (in RESULTS.md).

  .venv/bin/python bench/watch.py all [--dbname pounce]

  .venv/bin/python bench/watch.py enqueue [--domains 100000] [--runs 3] [--dbname pounce_bench]
      pounce.enqueue_due_checks() (the pg_cron job) over N due domains: one statement.
  .venv/bin/python bench/watch.py queue [--jobs 50000] [--workers 4] [--dbname pounce_bench]
      claim + complete throughput of N `noop` jobs with W `pounce worker` processes;
      duplicates are counted from the workers' traces, not assumed.
  .venv/bin/python bench/watch.py watchlist [--requests 200] [--dbname pounce_bench]
      the watchlist request of bench/workloads/watch_watchlist.sql (Tycoons, 500 domains)
      in one session: wall p50/p95 and the server process's own CPU time per request,
      which a busy machine does not inflate the way it inflates wall time.
  .venv/bin/python bench/watch.py health [--checks 1000] [--concurrency 100]
      full checks (DNS + RDAP + HTTP + TLS) of distinct domains against NSD, nginx and
      the RDAP server of the test suite, started on loopback for the run.

The database is one of the embedded cluster (POUNCE_PG_PORT), `pounce` unless --dbname
names another, with generated data (`pounce bench generate`; bench/generate/40_watch.sql
gives the Tycoons their 500 domains). Rows a measurement adds are removed after it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from pounce import bench, cluster  # noqa: E402
from pounce.config import settings  # noqa: E402

POUNCE = str(Path(sys.executable).with_name("pounce"))


LINES: list[str] = []


def say(text: str) -> None:
    """Print a figure and keep it for bench/results/watch.md."""
    print(text, flush=True)
    LINES.append(f"- {text}" if not text.startswith(" ") else f"  - {text.strip()}")


def connect(dbname):
    return cluster.connect(settings(), dbname)


# =============================================================================
# enqueue
# =============================================================================

def bench_enqueue(args) -> None:
    with connect(args.dbname) as db:
        results, cpus = [], []
        for run in range(args.runs):
            db.execute("DELETE FROM pounce.jobs WHERE kind = 'check_domain' AND payload ->> 'domain' LIKE 'enqueue-bench-%'")
            db.execute("DELETE FROM pounce.monitored_domains WHERE domain LIKE 'enqueue-bench-%'")
            db.execute("""
                INSERT INTO pounce.monitored_domains (domain, domain_unicode, suffix, watchers, check_interval,
                                                      next_check_at)
                SELECT 'enqueue-bench-' || n || '.com', 'enqueue-bench-' || n || '.com', 'com', 1,
                       interval '1 hour', now() - interval '1 minute'
                FROM generate_series(1, %s) AS n""", [args.domains])
            # only the synthetic domains are due (the generated ones wait for their interval)
            db.execute("UPDATE pounce.monitored_domains SET next_check_at = now() + check_interval"
                       " WHERE next_check_at <= now() AND domain NOT LIKE 'enqueue-bench-%'")
            db.execute("VACUUM (ANALYZE) pounce.monitored_domains")
            db.execute("VACUUM (ANALYZE) pounce.jobs")
            busy = bench.cpu_busy_percent()
            backend = db.execute("SELECT pg_backend_pid()").fetchone()[0]
            cpu_before = backend_cpu_seconds(backend)
            started = time.perf_counter()
            queued = db.execute("SELECT pounce.enqueue_due_checks()").fetchone()[0]  # autocommit: one transaction
            seconds = time.perf_counter() - started
            cpu = backend_cpu_seconds(backend) - cpu_before
            results.append(seconds)
            cpus.append(cpu)
            say(f"enqueue run {run + 1}: {queued:,} jobs in {seconds:.3f} s, backend CPU {cpu:.3f} s "
                f"(cpu busy before {busy:.0f}%)")
        db.execute("DELETE FROM pounce.jobs WHERE kind = 'check_domain' AND payload ->> 'domain' LIKE 'enqueue-bench-%'")
        db.execute("DELETE FROM pounce.monitored_domains WHERE domain LIKE 'enqueue-bench-%'")
    say(f"enqueue of {args.domains:,} due domains: median {statistics.median(results):.3f} s, "
          f"best {min(results):.3f} s over {args.runs} runs; the backend's own CPU time (what the "
          f"statement costs, whatever else runs): median {statistics.median(cpus):.3f} s")


def backend_cpu_seconds(pid: int) -> float:
    """user + system CPU time of a server process (the embedded cluster runs here)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# =============================================================================
# queue throughput
# =============================================================================

def bench_queue(args) -> None:
    with connect(args.dbname) as db, tempfile.TemporaryDirectory(prefix="pounce-queue-bench-") as tmp:
        db.execute("DELETE FROM pounce.jobs WHERE kind = 'noop'")
        workers = []
        for i in range(args.workers):
            trace = Path(tmp) / f"w{i}.trace"
            out = open(Path(tmp) / f"w{i}.out", "w")
            p = subprocess.Popen([POUNCE, "worker", "--dbname", args.dbname, "--kinds", "noop",
                                  "--concurrency", str(args.concurrency), "--batch", str(args.batch),
                                  "--trace", str(trace)], cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
            p.trace, p.out = trace, Path(tmp) / f"w{i}.out"
            workers.append(p)
        try:
            deadline = time.monotonic() + 60
            while db.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                             " AND query = 'LISTEN pounce_jobs'").fetchone()[0] < args.workers:
                if time.monotonic() > deadline:
                    raise SystemExit("workers did not start")
                time.sleep(0.1)
            busy = bench.cpu_busy_percent()
            started = time.perf_counter()
            db.execute("INSERT INTO pounce.jobs (kind) SELECT 'noop' FROM generate_series(1, %s)", [args.jobs])
            enqueued = time.perf_counter()
            while db.execute("SELECT EXISTS (SELECT FROM pounce.jobs WHERE kind = 'noop')").fetchone()[0]:
                time.sleep(0.02)
            finished = time.perf_counter()
        finally:
            for p in workers:
                p.send_signal(signal.SIGTERM)
            for p in workers:
                p.wait(60)
        runs = Counter(int(x) for p in workers if p.trace.exists() for x in p.trace.read_text().split())
        stats = [json.loads(p.out.read_text().strip().splitlines()[-1]) for p in workers]
    duplicates = sum(n - 1 for n in runs.values() if n > 1)
    seconds = finished - enqueued
    say(f"queue: {args.jobs:,} jobs enqueued in {enqueued - started:.3f} s (one statement), claimed and completed "
          f"by {args.workers} worker processes in {seconds:.2f} s = {args.jobs / seconds:,.0f} jobs/s; "
          f"jobs run: {len(runs):,} distinct, {duplicates} duplicate runs; per worker completed "
          f"{[s['completed'] for s in stats]}  (cpu busy before {busy:.0f}%)")


# =============================================================================
# watchlist request cost
# =============================================================================

def bench_watchlist(args) -> None:
    body = (REPO / "bench" / "workloads" / "watch_watchlist.sql").read_text()
    statement = body[body.index("WITH pgrst_source"):body.index("COMMIT;")].replace("/* bench-explain */", "")
    with connect(args.dbname) as db:
        tycoons = [r[0] for r in db.execute(
            "SELECT u.id FROM pounce.users AS u JOIN pounce.watched_domains AS w ON w.user_id = u.id"
            " WHERE u.tier = 'tycoon' GROUP BY u.id HAVING count(*) = 500 ORDER BY u.id")]
        if not tycoons:
            raise SystemExit("no Tycoon with 500 domains: run `pounce bench generate --dbname ...` first")
        backend = db.execute("SELECT pg_backend_pid()").fetchone()[0]
        walls = []
        busy = bench.cpu_busy_percent()
        cpu_before = backend_cpu_seconds(backend)
        for i in range(args.requests):
            with db.transaction():
                db.execute("SELECT set_config('role', 'member', true), set_config('request.jwt.claims', %s, true)",
                           [json.dumps({"sub": str(tycoons[i % len(tycoons)]), "role": "member"})])
                db.execute("SELECT api.check_request()")
                started = time.perf_counter()
                page_total = db.execute(statement).fetchone()[1]
                walls.append(time.perf_counter() - started)
                assert page_total == 500, page_total
        cpu = (backend_cpu_seconds(backend) - cpu_before) / args.requests
    walls.sort()
    say(f"watchlist of 500 domains, {args.requests} requests: wall p50 {bench.percentile(walls, 50) * 1000:.1f} ms, "
          f"p95 {bench.percentile(walls, 95) * 1000:.1f} ms; server CPU {cpu * 1000:.2f} ms per request "
          f"(cpu busy before {busy:.0f}%)")


# =============================================================================
# health checks
# =============================================================================

def bench_health(args) -> None:
    from local_servers import DnsServer, RdapServer, TestCA, WebServer, rdap_domain

    from collectors.domain_check import DomainChecker, load_bootstrap

    names = [f"health-bench-{i}.com" for i in range(args.checks)]
    with tempfile.TemporaryDirectory(prefix="pounce-health-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "ca").mkdir()
        ca = TestCA(tmp / "ca")
        dns = DnsServer(tmp / "nsd")
        for n in names:
            dns.set_zone(n, ["@ A 127.0.0.1", "@ MX 10 mx.example.net.", '@ TXT "v=spf1 -all"',
                             '@ CAA 0 issue "letsencrypt.org"'], restart=False)
        rdap = RdapServer()
        for n in names:
            rdap.set(n, 200, rdap_domain(n, nameservers=(f"ns1.{n}", f"ns2.{n}")))
        web = WebServer(tmp / "nginx", ca)
        # one certificate per site, as in the wild (a shared one naming every site would
        # make each handshake carry a thousand names)
        blocks = []
        for n in names:
            cert, key = ca.issue([n])
            blocks.append(f"""
  server {{ listen 127.0.0.1:{web.https_port} ssl; server_name {n};
           ssl_certificate {cert}; ssl_certificate_key {key}; return 200 "healthy\\n"; }}""")
        conf = (tmp / "nginx" / "nginx.conf").read_text().rstrip().rstrip("}")
        conf += "".join(blocks) + f"""
  server {{ listen 127.0.0.1:{web.http_port}; server_name ~^health-bench-[0-9]+\\.com$;
           return 301 https://$host/; }}
  server_names_hash_bucket_size 128;
  server_names_hash_max_size 4096;
}}
"""
        (tmp / "nginx" / "nginx.conf").write_text(conf)
        dns.start()
        web.start()
        # the RDAP server runs in its own process, so it does not share the checker's GIL
        import multiprocessing

        rdap_process = multiprocessing.get_context("fork").Process(target=rdap.httpd.serve_forever, daemon=True)
        rdap_process.start()
        try:
            config = {"resolver": dns.address, "ca_bundle": str(ca.bundle),
                      "rdap_bootstrap": str(rdap.bootstrap_file(tmp / "dns.json")), "http_port": web.http_port,
                      "https_port": web.https_port, "timeout": 20, "host_rate": 100000}
            results = asyncio.run(_run_checks(DomainChecker(config, load_bootstrap(config["rdap_bootstrap"])),
                                              names, args.concurrency))
        finally:
            rdap_process.terminate()
            rdap.httpd.server_close()
            web.stop()
            dns.stop()
    seconds, outcomes = results
    healthy = sum(1 for r in outcomes if isinstance(r, dict) and not r["errors"] and r.get("http_status") == 200
                  and r.get("tls_chain_ok") and r["registration"] == "registered")
    failed = [r for r in outcomes if not isinstance(r, dict)]
    problems = Counter(f"{part}: {str(err)[:80]}" for r in outcomes if isinstance(r, dict)
                       for part, err in r["errors"].items())
    say(f"health: {len(names):,} full checks (7 DNS queries, RDAP, HTTP with a redirect to HTTPS, TLS chain) "
          f"with concurrency {args.concurrency} in {seconds:.2f} s = {len(names) / seconds:,.0f} checks/s; "
          f"{healthy:,} complete and healthy, {len(failed)} raised"
          + (f" (first: {failed[0]!r})" if failed else ""))
    for problem, n in problems.most_common(5):
        say(f"  {n:5d} x {problem}")


async def _run_checks(checker, names, concurrency):
    gate = asyncio.Semaphore(concurrency)

    async def one(name):
        async with gate:
            return await checker.check(name)

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(one(n) for n in names), return_exceptions=True)
    seconds = time.perf_counter() - started
    await checker.close()
    return seconds, outcomes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    e = sub.add_parser("enqueue")
    e.add_argument("--domains", type=int, default=100_000)
    e.add_argument("--runs", type=int, default=3)
    e.add_argument("--dbname", default=None)
    q = sub.add_parser("queue")
    q.add_argument("--jobs", type=int, default=50_000)
    q.add_argument("--workers", type=int, default=4)
    q.add_argument("--concurrency", type=int, default=500)
    q.add_argument("--batch", type=int, default=250)
    q.add_argument("--dbname", default=None)
    w = sub.add_parser("watchlist")
    w.add_argument("--requests", type=int, default=200)
    w.add_argument("--dbname", default=None)
    h = sub.add_parser("health")
    h.add_argument("--checks", type=int, default=1000)
    h.add_argument("--concurrency", type=int, default=100)
    sub.add_parser("all").add_argument("--dbname", default=None)
    args = p.parse_args()
    if hasattr(args, "dbname"):
        args.dbname = args.dbname or settings().dbname
    steps = {"enqueue": bench_enqueue, "queue": bench_queue, "watchlist": bench_watchlist, "health": bench_health}
    if args.what != "all":
        steps[args.what](args)
        return
    defaults = {"domains": 100_000, "runs": 3, "jobs": 50_000, "workers": 4, "concurrency": 500, "batch": 250,
                "requests": 200, "checks": 1000}
    for name, step in steps.items():
        step(argparse.Namespace(**defaults, **vars(args)) if name != "health"
             else argparse.Namespace(**{**defaults, "concurrency": 100}))
    with connect(args.dbname) as db:
        watched = db.execute("SELECT count(*) FROM pounce.watched_domains").fetchone()[0]
        bench.write_script_results(db, "watch", "Watchlist, job queue and health checks",
                                   f"on {watched:,} watched domains", LINES)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
