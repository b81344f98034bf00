"""Collector measurement: a GoDaddy-shape inventory of 500,000 auctions, fetched,
unzipped, parsed as a stream and ingested by a real collector process.

    .venv/bin/python bench/collectors.py [--dbname pounce] [--auctions 500000] [--batch-size 5000]

What it does:
1. generates `inventory.json.zip` (the GoDaddy export's shape: {"meta", "data": [...]},
   prices as "$1,234" strings, ids at the end of the link) into a temporary directory,
   written as a stream (never whole in memory), deleted afterwards;
2. serves it on loopback (a threaded HTTP server in this process, with an ETag);
3. registers the source `bench-godaddy` (platform `bench-godaddy`, so no other data is
   touched), queues it with pounce.fetch_source_now and runs `pounce worker --kinds
   fetch_source --burst` as a subprocess: the figures are that process's wall time, rows
   per second and peak RSS (getrusage of the child), first with every auction new, then
   a second fetch of the same file under a new ETag (every auction unchanged, the
   hourly case);
4. the parser alone (download excluded) in this process, for where the time goes;
5. deletes the platform's auctions, rejects and the source, so a rerun repeats.

Targets (issue 8): at most 60 s and 300 MB peak for the 500,000 new auctions. The
figures go to bench/results/collectors.md.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.sources import godaddy  # noqa: E402
from collectors.sources.fetch import open_unpacked  # noqa: E402
from pounce import bench, cluster  # noqa: E402
from pounce.config import REPO  # noqa: E402
from pounce.config import settings as load_settings  # noqa: E402

SOURCE = PLATFORM = "bench-godaddy"
TLDS = ["com"] * 6 + ["net", "org", "io", "co"]


def generate(path: Path, n: int) -> int:
    """Write a zipped GoDaddy-shape inventory of n auctions; returns the unzipped size."""
    words = [w.strip() for w in (REPO / "data" / "words.txt").read_text().splitlines()
             if w.strip().isalpha() and w.strip().islower() and 3 <= len(w.strip()) <= 9]
    rnd = random.Random(500)
    now = datetime.now(timezone.utc)
    size = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z, \
            z.open("inventory.json", "w", force_zip64=True) as out:
        def write(text: str) -> None:
            nonlocal size
            data = text.encode()
            size += len(data)
            out.write(data)

        write(json.dumps({"meta": {"exportedAt": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "count": n}})[:-1]
              + ', "data": [\n')
        chunk = []
        for i in range(n):
            word = words[i % len(words)]
            sld = word if i < len(words) else f"{word}{i // len(words)}"
            price = max(5, int(rnd.lognormvariate(5, 1.3)))
            bid = rnd.random() < 0.75
            chunk.append(json.dumps({
                "domainName": f"{sld}.{TLDS[i % len(TLDS)]}",
                "link": f"https://auctions.godaddy.com/trpItemListing.aspx/{600000000 + i}",
                "auctionType": "Bid" if bid else "BuyNow",
                "auctionEndTime": (now + timedelta(minutes=60 + rnd.randint(0, 60 * 24 * 10))
                                   ).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "price": f"${price:,}", "valuation": f"${int(price * rnd.uniform(0.5, 4)):,}",
                "numberOfBids": rnd.randint(0, 40) if bid else 0, "domainAge": rnd.randint(0, 25),
                "pageviews": rnd.randint(0, 5000), "isAdult": False}))
            if len(chunk) == 10000 or i == n - 1:
                write(",\n".join(chunk) + (",\n" if i < n - 1 else "\n"))
                chunk = []
        write("]}\n")
    return size


def serve(path: Path) -> tuple[http.server.ThreadingHTTPServer, dict]:
    state = {"etag": '"1"'}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802
            if self.headers.get("If-None-Match") == state["etag"]:
                self.send_response(304)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(path.stat().st_size))
            self.send_header("ETag", state["etag"])
            self.end_headers()
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    self.wfile.write(chunk)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, state


def clean(conn) -> None:
    conn.execute("DELETE FROM pounce.jobs WHERE kind = 'fetch_source' AND payload ->> 'source' = %s", [SOURCE])
    conn.execute("DELETE FROM pounce.auctions WHERE platform = %s", [PLATFORM])
    conn.execute("DELETE FROM pounce.ingest_rejects WHERE source = %s", [f"auctions:{PLATFORM}"])
    conn.execute("DELETE FROM pounce.sources WHERE name = %s", [SOURCE])


def run_worker(dbname: str) -> tuple[float, float]:
    """Run one burst collector; returns (wall seconds, peak RSS MiB) of the process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run([str(Path(sys.executable).with_name("pounce")), "worker", "--kinds", "fetch_source",
                           "--burst", "--dbname", dbname], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"worker failed: {proc.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux, max over children
    return wall, max(peak, before) / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dbname", default=None)
    ap.add_argument("--auctions", type=int, default=500_000)
    ap.add_argument("--batch-size", type=int, default=5000)
    ap.add_argument("--keep", action="store_true", help="keep the ingested auctions")
    args = ap.parse_args()
    s = load_settings()
    dbname = args.dbname or s.dbname
    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    with tempfile.TemporaryDirectory(prefix="pounce-bench-collectors-") as tmp, \
            cluster.connect(s, dbname) as conn:
        conn.autocommit = True
        path = Path(tmp) / "inventory.json.zip"
        start = time.perf_counter()
        unzipped = generate(path, args.auctions)
        print(f"generated {args.auctions:,} auctions: {path.stat().st_size / 2**20:,.1f} MiB zipped, "
              f"{unzipped / 2**20:,.1f} MiB unzipped, in {time.perf_counter() - start:.1f} s", flush=True)
        httpd, state = serve(path)
        clean(conn)
        others = conn.execute("SELECT count(*) FROM pounce.auctions").fetchone()[0]
        try:
            conn.execute("INSERT INTO pounce.sources (name, kind, format, url, platform, options, enabled)"
                         " VALUES (%s, 'auction', 'godaddy_json', %s, %s, %s, false)",
                         [SOURCE, f"http://127.0.0.1:{httpd.server_address[1]}/inventory.json.zip", PLATFORM,
                          json.dumps({"batch_size": args.batch_size})])
            for label, etag in (("new auctions", '"1"'), ("the same file again (all unchanged)", '"2"')):
                state["etag"] = etag
                conn.execute("SELECT pounce.fetch_source_now(%s)", [SOURCE])
                wall, peak = run_worker(dbname)
                error, counts = conn.execute("SELECT last_error, last_counts FROM pounce.sources WHERE name = %s",
                                             [SOURCE]).fetchone()
                if error:
                    raise SystemExit(f"the fetch failed: {error}")
                say(f"- {args.auctions:,} auctions, {label}: {wall:.1f} s wall for the collector process "
                    f"(fetch, unzip, stream-parse, {args.auctions // args.batch_size} batches of "
                    f"{args.batch_size:,} to collector.ingest_auctions, finish_snapshot), "
                    f"{counts['rows'] / wall:,.0f} rows/s, peak RSS {peak:,.0f} MiB; counts {json.dumps(counts)}")
            start = time.perf_counter()
            with open_unpacked(path, path.name) as (stream, _):
                parsed = sum(1 for _ in godaddy.parse(stream))
            parse_s = time.perf_counter() - start
            say(f"- the parser alone (unzip + ijson + row mapping, no database): {parsed:,} records in "
                f"{parse_s:.1f} s, {parsed / parse_s:,.0f} records/s")
        finally:
            httpd.shutdown()
            if not args.keep:
                clean(conn)
        bench.write_script_results(
            conn, "collectors", "Collectors",
            f"a generated GoDaddy-shape file of {args.auctions:,} auctions "
            f"({path.stat().st_size / 2**20:,.1f} MiB zipped, {unzipped / 2**20:,.1f} MiB unzipped) served on "
            f"loopback, into a database holding {others:,} other auctions; batches over 2 connections", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
