"""The collector loop: claims jobs from the PostgreSQL queue, runs their handlers with
bounded concurrency, and reports through collector.* functions only.

  pounce worker [--kinds check_domain,...] [--concurrency 50] [--batch 50] [--burst]

Any number of workers may run (processes, hosts): collector.claim() hands each job to
exactly one (FOR UPDATE SKIP LOCKED). An idle worker sleeps until NOTIFY pounce_jobs
(or --poll seconds). SIGTERM / SIGINT stop claiming, let running jobs finish for up to
--grace seconds, then release the rest back to the queue unfinished.

Job kinds are handlers in a registry. To add one, write a module with

    from collectors.worker import handler

    @handler("verify_listing", report="SELECT collector.record_listing_checks(%s::jsonb)")
    async def verify_listing(job, ctx):
        ...            # network work; return a JSON-able result, or raise
        return {...}

and add the module to HANDLER_MODULES below. Results of finished jobs are reported in
batches: the `report` statement receives a JSON array of the results and runs in the
same transaction as collector.complete(), so a job is complete exactly when its result
is stored. Raise Retry(message, after_seconds) to retry later (e.g. Retry-After),
Permanent(message) to dead-letter at once; any other exception retries with
exponential backoff until max_attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

log = logging.getLogger("pounce.worker")

# Modules whose import registers handlers (each with @handler). Add new kinds here.
HANDLER_MODULES = ["collectors.domain_check", "collectors.listing_check", "collectors.source_fetch"]


# =============================================================================
# Registry
# =============================================================================

@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    payload: dict
    attempts: int
    max_attempts: int


class Retry(Exception):
    """Retry this job after `after` seconds (e.g. a server's Retry-After)."""

    def __init__(self, message: str, after: float):
        super().__init__(message)
        self.after = after


class Permanent(Exception):
    """The job can never succeed (malformed payload): dead-letter it at once."""


@dataclass(frozen=True)
class Handler:
    kind: str
    run: Callable[[Job, Context], Awaitable[Any]]
    report: str | None = None    # SQL with one %s: the JSON array of results
    setup: Callable[[Context], Awaitable[None]] | None = None


HANDLERS: dict[str, Handler] = {}


def handler(kind: str, report: str | None = None, setup: Callable[[Context], Awaitable[None]] | None = None):
    """Register `fn(job, ctx)` as the handler of job kind `kind`."""
    def register(fn):
        if kind in HANDLERS and HANDLERS[kind].run is not fn:
            raise ValueError(f"job kind {kind!r} has two handlers")
        HANDLERS[kind] = Handler(kind, fn, report, setup)
        return fn
    return register


def load_handlers() -> dict[str, Handler]:
    for name in HANDLER_MODULES:
        importlib.import_module(name)
    return HANDLERS


@dataclass
class Context:
    """What handlers share within one worker: configuration and long-lived clients
    (handlers' setup functions put theirs in `state`)."""
    config: dict
    conninfo: str = ""
    state: dict = field(default_factory=dict)


# A built-in kind for tests, benchmarks and smoke checks: sleeps payload.sleep seconds
# (default 0; payload.sleep_first: only on the first attempt, like a job that hung
# once) and reports nothing; payload.fail makes it raise.
@handler("noop")
async def noop(job: Job, ctx: Context) -> None:
    seconds = float(job.payload.get("sleep", 0))
    if job.attempts == 1:
        seconds += float(job.payload.get("sleep_first", 0))
    await asyncio.sleep(seconds)
    if job.payload.get("fail"):
        raise RuntimeError(str(job.payload["fail"]))


# =============================================================================
# The loop
# =============================================================================

@dataclass
class Outcome:
    job: Job
    result: Any = None
    error: str | None = None
    retry_after: float | None = None
    permanent: bool = False


class Worker:
    def __init__(self, conninfo: str, kinds: list[str] | None = None, concurrency: int = 50, batch: int = 50,
                 poll: float = 5.0, grace: float = 20.0, burst: bool = False, config: dict | None = None,
                 trace: str | None = None, heartbeat: float = 60.0, name: str | None = None):
        handlers = load_handlers()
        unknown = [k for k in kinds or () if k not in handlers]
        if unknown:
            raise SystemExit(f"pounce worker: no handler for kind(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(handlers))}")
        self.conninfo = conninfo
        self.kinds = kinds or sorted(handlers)
        self.handlers = {k: handlers[k] for k in self.kinds}
        self.concurrency = max(1, concurrency)
        self.batch = max(1, batch)
        self.poll = poll
        self.grace = grace
        self.burst = burst
        self.heartbeat_every = heartbeat
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.ctx = Context(config=config or {}, conninfo=conninfo)
        self.trace = open(trace, "a", buffering=1) if trace else None
        self.stopping = asyncio.Event()
        self.running: dict[int, asyncio.Task] = {}
        self.finished: list[Outcome] = []
        self.wake = asyncio.Event()
        self.stats = {"claimed": 0, "completed": 0, "failed": 0, "released": 0}

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    async def run(self) -> dict:
        async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as conn, \
                   await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as listener:
            await listener.execute("LISTEN pounce_jobs")
            listen_task = asyncio.create_task(self._listen(listener))
            for h in self.handlers.values():
                if h.setup:
                    await h.setup(self.ctx)
            try:
                await self._loop(conn)
            finally:
                listen_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, psycopg.Error):
                    await listen_task
                await self._shutdown(conn)
                for resource in self.ctx.state.values():
                    if hasattr(resource, "close"):
                        with contextlib.suppress(Exception):
                            await resource.close()
                if self.trace:
                    self.trace.close()
        return self.stats

    async def _listen(self, listener: psycopg.AsyncConnection) -> None:
        async for note in listener.notifies():
            if note.payload in self.handlers:
                self.wake.set()

    async def _loop(self, conn: psycopg.AsyncConnection) -> None:
        last_beat = time.monotonic()
        while not self.stopping.is_set():
            self.wake.clear()
            claimed = 0
            free = self.concurrency - len(self.running)
            if free > 0:
                jobs = await self._claim(conn, min(free, self.batch))
                claimed = len(jobs)
                for job in jobs:
                    self._start(job)
            await self._flush(conn)
            if self.heartbeat_every and time.monotonic() - last_beat > self.heartbeat_every and self.running:
                await conn.execute("SELECT collector.heartbeat(%s, %s)", [self.name, list(self.running)])
                last_beat = time.monotonic()
            if claimed and len(self.running) < self.concurrency:
                continue  # there may be more ready jobs: claim again at once
            if self.burst and not claimed and not self.running and not self.finished:
                return  # nothing ready that another worker has not claimed
            # Wait for a job to finish, a NOTIFY, a stop, or the poll interval.
            timeout = self.poll if not self.running else min(self.poll, 0.05 if self.finished else 1.0)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout)

    async def _claim(self, conn, n: int) -> list[Job]:
        cur = await conn.execute("SELECT id, kind, payload, attempts, max_attempts FROM collector.claim(%s, %s, %s)",
                                 [self.name, n, self.kinds])
        jobs = [Job(*row) for row in await cur.fetchall()]
        self.stats["claimed"] += len(jobs)
        return jobs

    def _start(self, job: Job) -> None:
        task = asyncio.create_task(self._execute(job))
        self.running[job.id] = task

    async def _execute(self, job: Job) -> None:
        if self.trace:
            self.trace.write(f"{job.id}\n")
        outcome = Outcome(job)
        try:
            outcome.result = await self.handlers[job.kind].run(job, self.ctx)
        except asyncio.CancelledError:
            self.running.pop(job.id, None)
            raise
        except Retry as e:
            outcome.error, outcome.retry_after = str(e) or type(e).__name__, e.after
        except Permanent as e:
            outcome.error, outcome.permanent = str(e) or type(e).__name__, True
        except Exception as e:  # noqa: BLE001 - any failure of a job is reported, never fatal
            outcome.error = f"{type(e).__name__}: {e}"
            log.debug("job %s (%s) failed", job.id, job.kind, exc_info=True)
        self.running.pop(job.id, None)
        self.finished.append(outcome)
        self.wake.set()

    async def _flush(self, conn) -> None:
        """Report finished jobs: per kind, the results and the completion in one
        transaction; failures grouped by their retry delay."""
        if not self.finished:
            return
        done, self.finished = self.finished, []
        ok = [o for o in done if o.error is None]
        for kind in {o.job.kind for o in ok}:
            group = [o for o in ok if o.job.kind == kind]
            report = self.handlers[kind].report
            try:
                async with conn.transaction():
                    if report:
                        await conn.execute(report, [Jsonb([o.result for o in group])])
                    await conn.execute("SELECT collector.complete(%s, %s)", [self.name, [o.job.id for o in group]])
                self.stats["completed"] += len(group)
            except psycopg.Error as e:
                log.error("reporting %d %s result(s) failed: %s", len(group), kind, e)
                for o in group:
                    o.error = f"report failed: {e}"
                    done.append(o)
        failed = [o for o in done if o.error is not None]
        groups: dict[tuple, list[Outcome]] = {}
        for o in failed:
            groups.setdefault((o.retry_after, o.permanent), []).append(o)
        for (after, permanent), group in groups.items():
            await self._with_retry(conn, "SELECT collector.fail(%s, %s, %s, %s, %s)",
                                   [self.name, [o.job.id for o in group], [o.error for o in group],
                                    timedelta(seconds=after) if after is not None else None, permanent])
            self.stats["failed"] += len(group)

    async def _with_retry(self, conn, query: str, params: list) -> None:
        # A concurrent enqueue of the same dedup key can make requeueing collide once;
        # the second try merges into the new job.
        for attempt in range(3):
            try:
                await conn.execute(query, params)
                return
            except psycopg.errors.UniqueViolation:
                if attempt == 2:
                    raise

    async def _shutdown(self, conn) -> None:
        if self.running:
            log.info("stopping: waiting up to %.0f s for %d running job(s)", self.grace, len(self.running))
            _, pending = await asyncio.wait(list(self.running.values()), timeout=self.grace)
            unfinished = [jid for jid, t in self.running.items() if t in pending]
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if unfinished:
                await self._with_retry(conn, "SELECT collector.release(%s, %s)", [self.name, unfinished])
                self.stats["released"] += len(unfinished)
        await self._flush(conn)


# =============================================================================
# Command line
# =============================================================================

def collector_conninfo(s, dbname: str | None = None) -> str:
    """Production: POUNCE_DATABASE_URL (the collector's own login). Embedded cluster:
    the collector role over TCP with its generated password, so the worker runs with
    exactly the privileges it has in production."""
    if s.external_url and dbname is None:
        return s.external_url
    from pounce.config import load_secrets

    return s.tcp_url("collector", load_secrets(s)["POUNCE_COLLECTOR_PASSWORD"], dbname)


def config_from_args(args) -> dict:
    cfg = {}
    for key in ("resolver", "rdap_bootstrap", "ca_bundle", "http_port", "https_port", "timeout", "host_rate"):
        value = getattr(args, key, None)
        if value is not None:
            cfg[key] = value
    return cfg


def cmd_worker(s, args) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    conninfo = collector_conninfo(s, args.dbname)

    def make() -> Worker:
        return Worker(conninfo, kinds=args.kinds, concurrency=args.concurrency, batch=args.batch, poll=args.poll,
                      grace=args.grace, burst=args.burst, config=config_from_args(args), trace=args.trace)

    async def main() -> tuple[Worker, dict]:
        # A lost database connection (restart, failover) is not the end: start over
        # with a new worker after a pause; the jobs the old one held are rescued by
        # pounce.rescue_stale_jobs() once their lock times out.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        pause = 1.0
        while True:
            worker = make()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, lambda w=worker: (stop.set(), w.stop()))
            try:
                return worker, await worker.run()
            except psycopg.OperationalError as e:
                if args.burst or stop.is_set():
                    raise
                log.error("database connection lost (%s); reconnecting in %.0f s", e, pause)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
                if stop.is_set():
                    return worker, worker.stats
                pause = min(pause * 2, 60.0)

    worker, stats = asyncio.run(main())
    print(json.dumps({"worker": worker.name, **stats}))
    return 0


def register(sub) -> None:
    w = sub.add_parser("worker", help="run a collector: claim and run queued jobs",
                       description=__doc__.split("\n\n")[0])
    w.add_argument("--kinds", type=lambda v: [k for k in v.split(",") if k], help="job kinds (default: all known)")
    w.add_argument("--concurrency", type=int, default=int(os.environ.get("POUNCE_WORKER_CONCURRENCY", 50)),
                   help="jobs run at once (default 50)")
    w.add_argument("--batch", type=int, default=50, help="jobs claimed per round trip (default 50)")
    w.add_argument("--poll", type=float, default=5.0, help="seconds between polls when idle (NOTIFY wakes sooner)")
    w.add_argument("--grace", type=float, default=20.0, help="seconds running jobs get to finish on SIGTERM")
    w.add_argument("--burst", action="store_true", help="exit when no job is ready (tests, batch runs)")
    w.add_argument("--dbname", help="another database of the embedded cluster")
    w.add_argument("--trace", help="append the id of every job run to this file")
    w.add_argument("--resolver", default=os.environ.get("POUNCE_RESOLVER"),
                   help="DNS server as IP[:PORT] (default: the system's resolvers)")
    w.add_argument("--rdap-bootstrap", default=os.environ.get("POUNCE_RDAP_BOOTSTRAP"),
                   help="RDAP bootstrap file (IANA dns.json format) used instead of pounce.tlds")
    w.add_argument("--ca-bundle", default=os.environ.get("POUNCE_CA_BUNDLE"),
                   help="CA certificates (PEM) that TLS chains are checked against (default: the system's)")
    w.add_argument("--http-port", type=int, default=_env_int("POUNCE_HTTP_PORT"), help=argparse_hidden())
    w.add_argument("--https-port", type=int, default=_env_int("POUNCE_HTTPS_PORT"), help=argparse_hidden())
    w.add_argument("--timeout", type=float, default=_env_float("POUNCE_CHECK_TIMEOUT"),
                   help="seconds per network operation (default 10)")
    w.add_argument("--host-rate", type=float, default=_env_float("POUNCE_HOST_RATE"),
                   help="requests per second per RDAP host (default 5)")
    w.add_argument("-v", "--verbose", action="store_true")
    w.set_defaults(fn=cmd_worker)


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS  # test-only: where plain HTTP / HTTPS are served


def _env_int(name: str) -> int | None:
    v = os.environ.get(name)
    return int(v) if v else None


def _env_float(name: str) -> float | None:
    v = os.environ.get(name)
    return float(v) if v else None
