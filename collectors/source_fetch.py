"""The `fetch_source` job: fetch one market-data source (pounce.sources) and ingest it.

Queued by pounce.enqueue_due_sources() (pg_cron, every minute) or
pounce.fetch_source_now(name); payload {"source": name}. The work (download, unpack,
stream-parse, batched ingestion) is blocking and CPU-heavy, so it runs in a thread with
its own connection (the collector's login) and leaves the worker's event loop free.

One fetch of a source runs at a time (a session advisory lock, released when the
connection closes); a job that finds its source busy completes without fetching.

Outcomes reach the source row through collector.record_source_fetches(): a success or
a lasting failure (changed format, HTTP 4xx, size limit) as the job's reported result;
a transient failure (timeout, HTTP 5xx, truncated file) is recorded at once and then
raised, so the job queue retries it with exponential backoff.
"""

from __future__ import annotations

import asyncio
import contextlib

import psycopg

from .sources.fetch import TransientError
from .sources.pipeline import load_source, record, run_source
from .worker import Context, Job, Permanent, Retry, handler


def fetch(conninfo: str, name: str) -> dict:
    def connect() -> psycopg.Connection:
        return psycopg.connect(conninfo, autocommit=True, application_name=f"pounce fetch_source {name}")

    with connect() as conn:
        source = load_source(conn, name)
        if source is None:
            return {"source": name, "status": "gone"}  # deleted since it was queued: nothing to do
        # one fetch of a source at a time, whichever collector runs it (a slow fetch may
        # outlast its schedule; the dedup key covers only pending jobs)
        if not conn.execute("SELECT pg_try_advisory_lock(hashtext('pounce.sources'), hashtext(%s))",
                            [name]).fetchone()[0]:
            return {"source": name, "status": "busy"}
        extra: list[psycopg.Connection] = []
        try:
            if source["kind"] == "auction":
                extra = [connect() for _ in range(max(1, int(source["options"].get("connections") or 2)) - 1)]
            return run_source(conn, source, extra_conns=extra)
        except Exception as e:  # transient, or the database refused: stored, then retried by the queue
            message = str(e) if isinstance(e, TransientError) else f"{type(e).__name__}: {e}"
            with contextlib.suppress(psycopg.Error):
                record(conn, [{"source": name, "status": "error", "error": message}])
            raise
        finally:
            for c in extra:
                c.close()


@handler("fetch_source", report="SELECT collector.record_source_fetches(%s::jsonb)")
async def fetch_source(job: Job, ctx: Context) -> dict:
    name = job.payload.get("source")
    if not isinstance(name, str) or not name:
        raise Permanent(f"bad payload {job.payload!r}: expected {{\"source\": name}}")
    try:
        return await asyncio.to_thread(fetch, ctx.conninfo, name)
    except TransientError as e:
        if e.retry_after:
            raise Retry(str(e), e.retry_after) from None
        raise RuntimeError(str(e)) from None  # retried with the queue's backoff
