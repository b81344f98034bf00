"""`pounce bench http`: HTTP load on the local API server from a second process (wrk),
and the same requests through pgbench in the same run, so the server's overhead is a
ratio measured under the same conditions.

  pounce bench generate --scale 1
  pounce bench http --connections 16,64 --time 30

Targets: the market feed's first 20-row page (GET /rpc/feed?page_size=20, anon), a
member's 20-row notifications page (GET /notifications?order=...&limit=20, a random
generated member per request) and one small RPC (GET /rpc/parse_domain?name=..., anon).
pgbench runs bench/workloads/api_feed_page20.sql, api_notifications_page20.sql and
parse_domain.sql (the same SQL, framed as the server frames a request) with as many
clients as connections. --target picks some.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import jwt

from .. import bench
from ..config import Settings, load_secrets

LUA_COMMON = r"""
math.randomseed(os.time())
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests": %d, "duration_us": %d, "errors": %d, "non2xx": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""

LUA_NOTIFICATIONS = r"""
local tokens = {%(tokens)s}
request = function()
  local t = tokens[math.random(#tokens)]
  return wrk.format("GET", "/notifications?order=created_at.desc,id.desc&limit=20", {["Authorization"] = "Bearer " .. t})
end
"""

LUA_PARSE_DOMAIN = r"""
local kinds = {"shop-%%d.co.uk", "m%%%%C3%%%%BCnchen-%%d.de", "www.city-%%d.kawasaki.jp"}
request = function()
  local n = math.random(1, 1000000)
  return wrk.format("GET", "/rpc/parse_domain?name=" .. string.format(kinds[1 + n %% 3], n))
end
"""

LUA_FEED = r"""
request = function()
  return wrk.format("GET", "/rpc/feed?page_size=20")
end
"""

TARGETS = {
    # name: (lua body, pgbench workload, description)
    "feed_page20": (LUA_FEED, "api_feed_page20", "GET /rpc/feed?page_size=20 (anon)"),
    "notifications_page20": (LUA_NOTIFICATIONS, "api_notifications_page20",
                             "GET /notifications?order=created_at.desc,id.desc&limit=20 (member)"),
    "rpc_parse_domain": (LUA_PARSE_DOMAIN, "parse_domain", "GET /rpc/parse_domain?name=... (anon)"),
}


def _tokens(secret: str, users: int, count: int) -> list[str]:
    now = int(time.time())
    out = []
    for n in range(1, min(users, count) + 1):
        sub = uuid.UUID(hashlib.md5(f"bench-user-{n * max(1, users // count)}".encode()).hexdigest())
        out.append(jwt.encode({"sub": str(sub), "role": "member", "iat": now, "exp": now + 86400},
                              secret, algorithm="HS256"))
    return out


def _wrk(url: str, script: Path, connections: int, threads: int, seconds: int) -> dict:
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s",
            "-s", str(script), url]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise bench.BenchError(f"pounce: wrk failed:\n{proc.stdout}\n{proc.stderr}")
    r = json.loads(line[5:])
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


def cmd_http(s: Settings, args) -> int:
    if not shutil.which("wrk"):
        raise bench.BenchError("pounce: wrk is not installed (scripts/install-system.sh installs it)")
    dbname = args.dbname or s.dbname
    secrets = load_secrets(s)
    with bench._connect(s, dbname) as conn:
        defines = bench.read_defines(conn)
    cpus = os.cpu_count() or 1
    threads = max(1, min(args.threads, cpus))
    env = {**os.environ,
           "POUNCE_API_DB_URI": s.tcp_url("authenticator", secrets["POUNCE_AUTHENTICATOR_PASSWORD"], dbname),
           "POUNCE_JWT_SECRET": secrets["POUNCE_JWT_SECRET"], "POUNCE_API_URL": "http://127.0.0.1"}
    results = []
    with tempfile.TemporaryDirectory(prefix="pounce-http-bench-") as tmp:
        tmpd = Path(tmp)
        announce = tmpd / "api.json"
        log = open(tmpd / "api.log", "wb")
        server = subprocess.Popen([sys.executable, "-m", "pounce", "api", "serve", "--port", "0", "--admin-port", "0",
                                   "--announce-file", str(announce), "--quiet", "--workers", str(args.workers)],
                                  env=env, stdout=log,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            deadline = time.time() + 30
            while not (announce.exists() and announce.read_text().strip()):
                if server.poll() is not None or time.time() > deadline:
                    raise bench.BenchError("pounce: the API server did not start:\n" + (tmpd / "api.log").read_text())
                time.sleep(0.05)
            url = json.loads(announce.read_text())["url"]
            tokens = _tokens(secrets["POUNCE_JWT_SECRET"], defines["users"], args.tokens)
            scripts = {}
            for name, (body, _, _) in TARGETS.items():
                p = tmpd / f"{name}.lua"
                p.write_text(LUA_COMMON + (body % {"tokens": ", ".join(f'"{t}"' for t in tokens)}
                                           if name == "notifications_page20" else body % {}))
                scripts[name] = p
            # a warm-up that also checks each target answers 200
            for name in TARGETS:
                if args.target and name not in args.target:
                    continue
                r = _wrk(url, scripts[name], 2, 1, 1)
                if r["non2xx"] or r["errors"]:
                    raise bench.BenchError(f"pounce: {name} answered errors during warm-up: {r}")
            print(f"pounce bench http: scale {defines['users'] / bench.USERS_PER_SCALE:g}, {args.time} s per run, "
                  f"{args.workers} server process(es), wrk -t{threads}, pgbench -M prepared -j{threads}; "
                  f"{cpus} CPUs shared by server, database and load generator", file=sys.stderr)
            for name, (_, workload, desc) in TARGETS.items():
                if args.target and name not in args.target:
                    continue
                for c in args.connections:
                    h = _wrk(url, scripts[name], c, threads, args.time)
                    path = bench.WORKLOADS_DIR / f"{workload}.sql"
                    m = bench._pgbench(s, dbname, path, c, threads, args.time, defines)
                    row = {"target": name, "request": desc, "connections": c,
                           "http_rps": round(h["rps"], 1), "http_p50_ms": h["p50_us"] / 1000,
                           "http_p95_ms": h["p95_us"] / 1000, "http_p99_ms": h["p99_us"] / 1000,
                           "http_errors": h["errors"] + h["non2xx"],
                           "pgbench_workload": workload, "pgbench_tps": round(m.tps, 1),
                           "pgbench_p50_ms": m.p50_ms, "pgbench_p95_ms": m.p95_ms, "pgbench_p99_ms": m.p99_ms,
                           "overhead_ratio": round(m.tps / h["rps"], 2) if h["rps"] else None}
                    results.append(row)
                    print(f"{name:<22} conns {c:>3}  HTTP {row['http_rps']:>8.1f} req/s  p50 {row['http_p50_ms']:7.2f}  "
                          f"p95 {row['http_p95_ms']:7.2f}  p99 {row['http_p99_ms']:7.2f} ms  errors {row['http_errors']}  |  "
                          f"pgbench {row['pgbench_tps']:>8.1f} tps  p50 {m.p50_ms:6.2f}  p95 {m.p95_ms:6.2f}  "
                          f"p99 {m.p99_ms:6.2f} ms  |  SQL/HTTP {row['overhead_ratio']}x", flush=True)
        finally:
            server.terminate()
            server.wait(30)
            log.close()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    lines = ["| request | connections | HTTP req/s | HTTP p50 / p95 / p99 ms | errors "
             "| pgbench workload (same SQL) | TPS | p50 / p95 / p99 ms | SQL / HTTP |",
             "|---|--:|--:|--:|--:|---|--:|--:|--:|"]
    lines += [f"| {r['request']} | {r['connections']} | {r['http_rps']:,.0f} "
              f"| {r['http_p50_ms']:.2f} / {r['http_p95_ms']:.2f} / {r['http_p99_ms']:.2f} | {r['http_errors']} "
              f"| {r['pgbench_workload']} | {r['pgbench_tps']:,.0f} "
              f"| {r['pgbench_p50_ms']:.2f} / {r['pgbench_p95_ms']:.2f} / {r['pgbench_p99_ms']:.2f} "
              f"| {r['overhead_ratio']}x |" for r in results]
    with bench._connect(s, dbname) as conn:
        bench.write_script_results(
            conn, "api", "REST API over HTTP",
            f"scale {defines['users'] / bench.USERS_PER_SCALE:g}, {args.time} s per run, {args.workers} server "
            f"process(es), wrk -t{threads} and pgbench -M prepared -j{threads} from this machine "
            f"({cpus} CPUs shared by server, database and load generator)", lines)
    return 0


def _counts(text: str) -> list[int]:
    try:
        out = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("comma-separated positive integers") from None
    if not out or any(c < 1 for c in out):
        raise argparse.ArgumentTypeError("comma-separated positive integers")
    return out


def register(bench_sub: argparse._SubParsersAction) -> None:
    h = bench_sub.add_parser("http", help="HTTP load (wrk) on the local API server vs the same SQL via pgbench",
                             description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    h.add_argument("--connections", type=_counts, default=[16, 64], help="comma-separated (default 16,64)")
    h.add_argument("--time", type=int, default=30, help="seconds per run (default 30)")
    h.add_argument("--threads", type=int, default=2, help="wrk and pgbench threads (default 2, at most CPUs)")
    h.add_argument("--tokens", type=int, default=200, help="distinct members the page requests rotate over")
    h.add_argument("--dbname", help="database of the embedded cluster (default: the app database)")
    h.add_argument("--workers", type=int, default=1, help="API server processes (default 1)")
    h.add_argument("--json", help="also write the figures to this file")
    h.add_argument("--target", action="append", choices=sorted(TARGETS), help="only these targets (repeatable)")
    h.set_defaults(fn=cmd_http)
