"""One fetch of one source, end to end: download, unpack, parse as a stream, hand rows
to the database in batches, and say what happened.

    outcome = run_source(conn, source)     # conn: the collector's login, autocommit

Auction sources: rows go to collector.ingest_auctions in batches of
options.batch_size (default 5,000) while the file is still being read (parsing runs in
a thread beside the database round trips, at most two batches ahead), over
options.connections connections at once (default 2); only when the
whole file was read without error does collector.finish_snapshot end the platform's
auctions the file no longer lists. A truncated or damaged file therefore ends nothing:
the batches it did deliver only refresh the auctions in them.

Price sources: the list (small) goes to collector.ingest_tld_prices in one call with
complete => true.

The outcome is what collector.record_source_fetches() stores on the source row:
{"source", "status": "ok" | "not_modified" | "error", "counts", "etag",
"last_modified", "error"}. TransientError propagates (the job queue retries it); the
caller records it first.
"""

from __future__ import annotations

import json
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

import psycopg

from . import godaddy, pending_delete, porkbun, price_sheet, snapnames
from .fetch import FormatError, SourceError, download, open_unpacked


def _porkbun(stream: BinaryIO, filename: str = "", options: dict | None = None) -> Iterator[dict]:
    try:
        yield from porkbun.parse_pricing(stream.read())
    except (porkbun.PricingDocumentError, ValueError) as e:
        raise FormatError(f"Porkbun pricing: {e}") from None


# format -> (kind, parser(stream, filename, options) -> rows)
PARSERS: dict[str, tuple[str, Callable[..., Iterator[dict]]]] = {
    "godaddy_json": ("auction", godaddy.parse),
    "snapnames_csv": ("auction", snapnames.parse),
    "pending_delete": ("auction", pending_delete.parse),
    "porkbun_json": ("tld_price", _porkbun),
    "price_sheet_csv": ("tld_price", price_sheet.parse),
}
BATCH_SIZE = 5000


def batches(rows: Iterator[dict], size: int) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def read_ahead(items: Iterator, depth: int = 2) -> Iterator:
    """Iterate `items` in a thread, at most `depth` ahead of the consumer: parsing the
    next batch overlaps the database's work on this one. The producer's exception is
    raised in the consumer; a consumer that stops early stops the producer."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put((item, None), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((done, None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            q.put((done, e))

    thread = threading.Thread(target=produce, name="source-parser", daemon=True)
    thread.start()
    try:
        while True:
            item, error = q.get()
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                pass
            thread.join(0.05)


def ingest_auctions(conns: list[psycopg.Connection], platform: str, rows: Iterator[dict],
                    batch_size: int = BATCH_SIZE) -> dict[str, int]:
    """Stream rows into collector.ingest_auctions, one batch per transaction, over the
    given connections at once (batches of one file hold different auctions, so they do
    not wait on each other); finish_snapshot after the last one."""
    started_at = conns[0].execute("SELECT now()").fetchone()[0]  # before any batch's transaction
    counts = {"rows": 0, "inserted": 0, "updated": 0, "unchanged": 0, "rejected": 0}
    idle: queue.Queue = queue.Queue()
    for conn in conns:
        idle.put(conn)

    def send(batch: list[dict]) -> tuple:
        conn = idle.get()
        try:
            return conn.execute("SELECT inserted, updated, unchanged, rejected"
                                " FROM collector.ingest_auctions(%s, %s::jsonb)",
                                [platform, json.dumps(batch)]).fetchone() + (len(batch),)
        finally:
            idle.put(conn)

    def add(result: tuple) -> None:
        for key, value in zip(("inserted", "updated", "unchanged", "rejected", "rows"), result):
            counts[key] += value

    with ThreadPoolExecutor(len(conns), thread_name_prefix="source-ingest") as pool:
        pending: deque[Future] = deque()
        try:
            for batch in read_ahead(batches(rows, batch_size)):
                pending.append(pool.submit(send, batch))
                while len(pending) > len(conns) or (pending and pending[0].done()):
                    add(pending.popleft().result())
            while pending:
                add(pending.popleft().result())
        finally:
            for future in pending:
                future.cancel()
    # reached only when the whole file was read and stored: the platform's unseen auctions end
    counts["ended"] = conns[0].execute("SELECT collector.finish_snapshot(%s, %s)",
                                       [platform, started_at]).fetchone()[0]
    return counts


def ingest_prices(conn: psycopg.Connection, source: str, rows: Iterator[dict]) -> dict[str, int]:
    rows = list(rows)
    cur = conn.execute("SELECT * FROM collector.ingest_tld_prices(%s, %s::jsonb, complete => true)",
                       [source, json.dumps(rows)])
    counts = dict(zip([c.name for c in cur.description], cur.fetchone()))
    return {"rows": len(rows), **counts}


def run_source(conn: psycopg.Connection, source: dict, workdir: str | None = None,
               extra_conns: list[psycopg.Connection] = ()) -> dict:
    """Fetch and ingest one source (a row of collector.source()); auction batches go over
    conn and extra_conns at once. SourceError becomes an error outcome; TransientError
    propagates."""
    name, fmt, options = source["name"], source["format"], source.get("options") or {}
    outcome = {"source": name}
    try:
        if fmt not in PARSERS or PARSERS[fmt][0] != source["kind"]:
            raise SourceError(f"unknown format {fmt!r} for a {source['kind']} source")
        kind, parse = PARSERS[fmt]
        fetched = download(source["url"], options, source.get("etag"), source.get("last_modified"),
                           workdir=workdir)
        if fetched.path is None:
            return {**outcome, "status": "not_modified"}
        try:
            with open_unpacked(fetched.path, fetched.filename, options) as (stream, filename):
                rows = parse(stream, filename, options)
                if kind == "auction":
                    counts = ingest_auctions([conn, *extra_conns], source["platform"], rows,
                                             int(options.get("batch_size") or BATCH_SIZE))
                else:
                    counts = ingest_prices(conn, source["platform"], rows)
        finally:
            fetched.discard()
    except SourceError as e:
        return {**outcome, "status": "error", "error": str(e)}
    return {**outcome, "status": "ok", "counts": counts, "etag": fetched.etag, "last_modified": fetched.last_modified}


def record(conn: psycopg.Connection, outcomes: list[dict]) -> int:
    return conn.execute("SELECT collector.record_source_fetches(%s::jsonb)", [json.dumps(outcomes)]).fetchone()[0]


def load_source(conn: psycopg.Connection, name: str) -> dict | None:
    cur = conn.execute("SELECT * FROM collector.source(%s)", [name])
    found = cur.fetchone()
    return dict(zip([c.name for c in cur.description], found)) if found else None
