"""The job queue: enqueue with de-duplication, claim, complete, fail with backoff, dead
letters, rescue of stale locks, release, NOTIFY, the admin view; and real `pounce
worker` processes: four of them run 1,000 jobs exactly once, a SIGKILLed one's jobs
are rescued and completed, SIGTERM finishes or releases running jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from pounce.config import REPO

POUNCE = str(Path(sys.executable).with_name("pounce"))


def enqueue(db, kind="noop", payload=None, dedup=None, run_at=None, priority=0) -> int:
    return db.execute("SELECT pounce.enqueue(%s, %s, %s, coalesce(%s, now()), %s)",
                      [kind, json.dumps(payload or {}), dedup, run_at, priority]).fetchone()[0]


def claim(db, worker="w1", n=10, kinds=None):
    return db.execute("SELECT id, kind, payload, attempts FROM collector.claim(%s, %s, %s)",
                      [worker, n, kinds]).fetchall()


def job(db, job_id):
    return db.execute("SELECT attempts, locked_by, run_at - now() AS wait, last_error FROM pounce.jobs WHERE id = %s",
                      [job_id]).fetchone()


# ----------------------------------------------------------------------------
# SQL
# ----------------------------------------------------------------------------

def test_enqueue_deduplicates_pending_jobs_only(db):
    a = enqueue(db, dedup="example.com")
    assert enqueue(db, dedup="example.com") == a
    assert enqueue(db, kind="other", dedup="example.com") != a   # keys are per kind
    assert enqueue(db) != enqueue(db)                             # no key: no dedup
    # a later, more urgent request speeds the pending job up rather than adding one
    later = enqueue(db, dedup="x.com", run_at="2100-01-01")
    assert enqueue(db, dedup="x.com", priority=-5) == later
    assert db.execute("SELECT priority, run_at <= now() FROM pounce.jobs WHERE id = %s", [later]).fetchone() == (-5, True)
    # once running, the key is free again: a change during the run gets a new job
    claimed = claim(db, kinds=["noop"], n=100)
    assert a in {r[0] for r in claimed}
    assert enqueue(db, dedup="example.com") != a


def test_claim_order_kinds_and_future_jobs(db):
    low = enqueue(db, priority=5)
    high = enqueue(db, priority=-5)
    future = enqueue(db, run_at="2100-01-01")
    other = enqueue(db, kind="other")
    got = claim(db, n=2, kinds=["noop"])
    assert [r[0] for r in got] == [high, low]
    assert all(r[3] == 1 for r in got)  # the claim counts as an attempt
    assert claim(db, n=10, kinds=["noop"]) == []  # the future job waits
    assert [r[0] for r in claim(db, n=10)] == [other]
    assert job(db, future)[1] is None


def test_complete_only_by_the_worker_holding_the_job(db):
    a = enqueue(db)
    claim(db, worker="w1")
    assert db.execute("SELECT collector.complete('w2', %s)", [[a]]).fetchone()[0] == 0
    assert db.execute("SELECT collector.complete('w1', %s)", [[a]]).fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM pounce.jobs").fetchone()[0] == 0


def test_fail_backs_off_exponentially_then_dead_letters(db):
    a = enqueue(db)
    db.execute("UPDATE pounce.jobs SET max_attempts = 3 WHERE id = %s", [a])
    waits = []
    for attempt in (1, 2):
        claim(db)
        r = db.execute("SELECT collector.fail('w1', %s, %s)", [[a], [f"boom {attempt}"]]).fetchone()[0]
        assert r == {"requeued": 1, "dead": 0, "merged": 0}
        attempts, locked_by, wait, error = job(db, a)
        assert (attempts, locked_by, error) == (attempt, None, f"boom {attempt}")
        waits.append(wait.total_seconds())
        db.execute("UPDATE pounce.jobs SET run_at = now() WHERE id = %s", [a])  # skip the wait
    assert 2 <= waits[0] <= 2.5 and 4 <= waits[1] <= 5  # 2^attempts seconds, plus jitter
    claim(db)
    r = db.execute("SELECT collector.fail('w1', %s, %s)", [[a], ["boom 3"]]).fetchone()[0]
    assert r == {"requeued": 0, "dead": 1, "merged": 0}
    assert db.execute("SELECT attempts, last_error FROM pounce.dead_jobs WHERE id = %s", [a]).fetchone() == (3, "boom 3")
    assert db.execute("SELECT pounce.retry_dead_jobs('noop')").fetchone()[0] == 1
    assert db.execute("SELECT attempts FROM pounce.jobs WHERE kind = 'noop'").fetchone()[0] == 0


def test_fail_with_retry_in_and_permanent(db):
    a, b = enqueue(db), enqueue(db)
    claim(db)
    db.execute("SELECT collector.fail('w1', %s, %s, interval '120 seconds')", [[a], ["429"]])
    assert 119 <= job(db, a)[2].total_seconds() <= 120
    db.execute("SELECT collector.fail('w1', %s, %s, NULL, true)", [[b], ["bad payload"]])
    assert db.execute("SELECT count(*) FROM pounce.dead_jobs WHERE id = %s", [b]).fetchone()[0] == 1


def test_a_failed_job_merges_into_its_pending_twin(db):
    a = enqueue(db, dedup="k")
    claim(db)
    twin = enqueue(db, dedup="k")
    assert twin != a
    r = db.execute("SELECT collector.fail('w1', %s, %s)", [[a], ["x"]]).fetchone()[0]
    assert r == {"requeued": 0, "dead": 0, "merged": 1}
    assert [r[0] for r in db.execute("SELECT id FROM pounce.jobs")] == [twin]


def test_two_running_twins_failing_together_keep_one(db):
    a = enqueue(db, dedup="k")
    claim(db)
    b = enqueue(db, dedup="k")
    claim(db, worker="w1")
    db.execute("UPDATE pounce.jobs SET locked_at = now() - interval '1 hour'")
    r = db.execute("SELECT pounce.rescue_stale_jobs()").fetchone()[0]
    assert r == {"requeued": 1, "dead": 0, "merged": 1}
    assert [r[0] for r in db.execute("SELECT id FROM pounce.jobs")] == [a]
    assert b != a


def test_rescue_requeues_only_stale_locks(db):
    stale, fresh = enqueue(db), enqueue(db)
    claim(db, worker="dead-worker")
    db.execute("UPDATE pounce.jobs SET locked_at = now() - interval '10 minutes' WHERE id = %s", [stale])
    assert db.execute("SELECT pounce.rescue_stale_jobs()").fetchone()[0] == {"requeued": 1, "dead": 0, "merged": 0}
    assert job(db, stale)[:2] == (1, None)
    assert "dead-worker" in job(db, stale)[3]
    assert job(db, fresh)[1] == "dead-worker"
    # the dead worker's late completion is refused: the job is no longer its own
    assert db.execute("SELECT collector.complete('dead-worker', %s)", [[stale]]).fetchone()[0] == 0


def test_release_returns_jobs_without_counting_the_attempt(db):
    a = enqueue(db)
    claim(db)
    assert db.execute("SELECT collector.release('w1', %s)", [[a]]).fetchone()[0] == 1
    assert job(db, a)[:2] == (0, None)
    assert [r[0] for r in claim(db)] == [a]


def test_heartbeat_keeps_a_long_job_from_rescue(db):
    a = enqueue(db)
    claim(db, worker="slow")
    db.execute("UPDATE pounce.jobs SET locked_at = now() - interval '4 minutes'")
    assert db.execute("SELECT collector.heartbeat('other', %s)", [[a]]).fetchone()[0] == 0
    assert db.execute("SELECT collector.heartbeat('slow', %s)", [[a]]).fetchone()[0] == 1
    db.execute("SELECT pg_sleep(0.01)")
    assert db.execute("SELECT pounce.rescue_stale_jobs('1 minute')").fetchone()[0]["requeued"] == 0
    assert job(db, a)[1] == "slow"


def test_enqueue_notifies_listeners(settings, db, db_name):
    with psycopg.connect(settings.conninfo(db_name), autocommit=True) as listener:
        listener.execute("LISTEN pounce_jobs")
        db.execute("INSERT INTO pounce.jobs (kind) SELECT 'noop' FROM generate_series(1, 50)")
        notes = list(listener.notifies(timeout=2, stop_after=1))
        assert [n.payload for n in notes] == ["noop"]  # once per kind per statement, not 50 times


def test_admin_view_and_privileges(db, make_user, api_request, settings, secrets, db_name):
    enqueue(db)
    enqueue(db, run_at="2100-01-01")
    b = enqueue(db, kind="other")
    claim(db, kinds=["other"])
    db.execute("SELECT collector.fail('w1', %s, %s, NULL, true)", [[b], ["broken"]])
    admin, _ = make_user(role="admin")
    member, _ = make_user()
    with api_request("admin", admin) as conn:
        rows = {r[0]: r[1:] for r in conn.execute(
            "SELECT kind, ready, scheduled, running, dead, last_dead_error FROM api.job_queue")}
    assert rows == {"noop": (1, 1, 0, 0, None), "other": (0, 0, 0, 1, "broken")}
    with pytest.raises(psycopg.errors.InsufficientPrivilege), api_request("member", member) as conn:
        conn.execute("SELECT * FROM api.job_queue")
    # the collector role reaches the queue only through collector.* functions
    with psycopg.connect(host="127.0.0.1", port=settings.port, dbname=db_name, user="collector",
                         password=secrets["POUNCE_COLLECTOR_PASSWORD"], autocommit=True) as c:
        assert len(c.execute("SELECT * FROM collector.claim('c', 5)").fetchall()) == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT * FROM pounce.jobs")


# ----------------------------------------------------------------------------
# Real worker processes
# ----------------------------------------------------------------------------

def start_worker(db_name, tmp_path, name, *args, env=None):
    trace = tmp_path / f"{name}.trace"
    out = open(tmp_path / f"{name}.out", "w")
    proc = subprocess.Popen([POUNCE, "worker", "--dbname", db_name, "--trace", str(trace), *args],
                            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env or dict(os.environ))
    proc.trace, proc.out = trace, tmp_path / f"{name}.out"
    return proc


def traced(*procs) -> Counter:
    return Counter(int(line) for p in procs if p.trace.exists() for line in p.trace.read_text().split())


def wait_until(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def listeners(db) -> int:
    return db.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                      " AND usename = 'collector' AND query = 'LISTEN pounce_jobs'").fetchone()[0]


def stop(proc, sig=signal.SIGTERM, timeout=30):
    if proc.poll() is None:
        proc.send_signal(sig)
    proc.wait(timeout)
    return proc.returncode


def test_four_workers_run_each_of_1000_jobs_exactly_once(db, db_name, tmp_path):
    workers = [start_worker(db_name, tmp_path, f"w{i}", "--kinds", "noop", "--concurrency", "20", "--batch", "10")
               for i in range(4)]
    try:
        wait_until(lambda: listeners(db) == 4, 30, "4 workers listening")
        ids = [r[0] for r in db.execute(
            "SELECT pounce.enqueue('noop', jsonb_build_object('sleep', 0.01, 'n', n)) FROM generate_series(1, 1000) n")]
        wait_until(lambda: db.execute("SELECT count(*) = 0 FROM pounce.jobs").fetchone()[0], 60, "an empty queue")
    finally:
        codes = [stop(w) for w in workers]
    assert codes == [0, 0, 0, 0]
    runs = traced(*workers)
    assert set(runs) == set(ids) and len(ids) == 1000
    duplicates = {i: n for i, n in runs.items() if n > 1}
    assert duplicates == {}
    assert db.execute("SELECT count(*) FROM pounce.dead_jobs").fetchone()[0] == 0
    stats = [json.loads(w.out.read_text().strip().splitlines()[-1]) for w in workers]
    assert sum(s["completed"] for s in stats) == 1000
    assert sum(1 for s in stats if s["completed"] > 0) >= 2, stats  # the work was shared


def test_a_killed_workers_jobs_are_rescued_and_completed(db, db_name, tmp_path):
    ids = [r[0] for r in db.execute(
        "SELECT pounce.enqueue('noop', '{\"sleep_first\": 60}') FROM generate_series(1, 20)")]
    victim = start_worker(db_name, tmp_path, "victim", "--kinds", "noop", "--concurrency", "20", "--batch", "20")
    try:
        wait_until(lambda: db.execute("SELECT count(*) = 20 FROM pounce.jobs WHERE locked_by IS NOT NULL")
                   .fetchone()[0], 30, "the victim to claim all jobs")
        wait_until(lambda: len(traced(victim)) == 20, 10, "the victim to start all jobs")
    finally:
        stop(victim, signal.SIGKILL)
    assert db.execute("SELECT count(*) FROM pounce.jobs WHERE locked_by IS NOT NULL").fetchone()[0] == 20
    # what the pg_cron job does every minute (with its 5 minute timeout shortened)
    time.sleep(1.1)
    assert db.execute("SELECT pounce.rescue_stale_jobs('1 second')").fetchone()[0] == \
        {"requeued": 20, "dead": 0, "merged": 0}
    rescuer = start_worker(db_name, tmp_path, "rescuer", "--kinds", "noop", "--burst")
    assert rescuer.wait(60) == 0
    assert set(traced(rescuer)) == set(ids)
    assert db.execute("SELECT count(*) FROM pounce.jobs").fetchone()[0] == 0


def test_sigterm_finishes_running_jobs_and_leaves_the_rest(db, db_name, tmp_path):
    running = [r[0] for r in db.execute(
        "SELECT pounce.enqueue('noop', '{\"sleep\": 1.5}') FROM generate_series(1, 3)")]
    w = start_worker(db_name, tmp_path, "graceful", "--kinds", "noop", "--concurrency", "3", "--grace", "20")
    try:
        wait_until(lambda: len(traced(w)) == 3, 30, "three running jobs")
        waiting = [r[0] for r in db.execute("SELECT pounce.enqueue('noop', '{}') FROM generate_series(1, 5)")]
    finally:
        assert stop(w) == 0
    stats = json.loads(w.out.read_text().strip().splitlines()[-1])
    assert stats["completed"] == 3 and stats["released"] == 0
    left = {r[0]: r[1] for r in db.execute("SELECT id, locked_by FROM pounce.jobs")}
    assert set(left) == set(waiting) and set(left.values()) == {None}
    assert not set(running) & set(left)


def test_sigterm_past_the_grace_period_releases_jobs(db, db_name, tmp_path):
    ids = [r[0] for r in db.execute("SELECT pounce.enqueue('noop', '{\"sleep\": 60}') FROM generate_series(1, 4)")]
    w = start_worker(db_name, tmp_path, "impatient", "--kinds", "noop", "--grace", "0.5")
    try:
        wait_until(lambda: len(traced(w)) == 4, 30, "four running jobs")
    finally:
        assert stop(w) == 0
    rows = db.execute("SELECT id, attempts, locked_by FROM pounce.jobs ORDER BY id").fetchall()
    assert rows == [(i, 0, None) for i in ids]


def test_a_worker_reconnects_after_losing_the_database(db, db_name, tmp_path):
    w = start_worker(db_name, tmp_path, "reconnecting", "--kinds", "noop")
    try:
        wait_until(lambda: listeners(db) == 1, 30, "the worker listening")
        killed = db.execute("SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE datname = current_database() AND usename = 'collector') AS t").fetchone()[0]
        assert killed == 2  # its query connection and its LISTEN connection
        wait_until(lambda: listeners(db) == 1, 30, "the worker listening again")
        a = enqueue(db)
        wait_until(lambda: traced(w)[a] == 1, 30, "the job to run")
        wait_until(lambda: db.execute("SELECT count(*) = 0 FROM pounce.jobs").fetchone()[0], 10, "completion")
    finally:
        assert stop(w) == 0
    assert "reconnecting in" in w.out.read_text()
