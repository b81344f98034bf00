"""pg_cron really runs jobs in this cluster, and the declared jobs reach pg_cron."""

from __future__ import annotations

import time

import pytest

from pounce import cluster


@pytest.mark.slow
def test_a_scheduled_job_really_runs(settings, db, db_name):
    """Schedule a job from the cron database into this test's database and wait for
    pg_cron (1.4 schedules by the minute) to run it. Bounded: gives up after 150 s."""
    db.execute("CREATE TABLE public.cron_smoke (ran_at timestamptz NOT NULL DEFAULT now(), db text)")
    jobname = f"smoke-{db_name}"
    with cluster.connect(settings) as cron_db:
        assert cron_db.execute("SELECT current_setting('cron.database_name')").fetchone()[0] == settings.dbname
        jobid = cron_db.execute(
            "SELECT cron.schedule_in_database(%s, '* * * * *', "
            "'INSERT INTO public.cron_smoke (db) VALUES (current_database())', %s)",
            [jobname, db_name]).fetchone()[0]
        try:
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline:
                rows = db.execute("SELECT db FROM public.cron_smoke").fetchall()
                if rows:
                    break
                time.sleep(1)
            # pg_cron records the run's end after the command committed: wait for it
            while True:
                status = cron_db.execute(
                    "SELECT status, return_message FROM cron.job_run_details WHERE jobid = %s"
                    " ORDER BY start_time DESC LIMIT 1", [jobid]).fetchone()
                if not rows or (status and status[0] not in ("starting", "running")) \
                        or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
        finally:
            cron_db.execute("SELECT cron.unschedule(%s)", [jobid])
            cron_db.execute("DELETE FROM cron.job_run_details WHERE jobid = %s", [jobid])
    assert rows == [(db_name,)], f"pg_cron did not run the job within 150 s (last run: {status})"
    assert status[0] == "succeeded"


def test_sync_cron_matches_declared_jobs_in_the_cron_database(settings):
    """`pounce db migrate` ran sync_cron in the app database: pg_cron holds exactly the
    declared pounce.* jobs, with the declared schedule and command."""
    with cluster.connect(settings) as conn:
        if conn.execute("SELECT to_regclass('pounce.cron_jobs')").fetchone()[0] is None:
            pytest.fail("the app database is not migrated: run `pounce db migrate` (./dev test does)")
        declared = set(conn.execute("SELECT jobname, schedule, command FROM pounce.cron_jobs").fetchall())
        scheduled = set(conn.execute(
            "SELECT jobname, schedule, command FROM cron.job WHERE jobname LIKE 'pounce.%'").fetchall())
        assert declared and declared == scheduled


def test_sync_cron_is_a_no_op_outside_the_cron_database(db):
    assert db.execute("SELECT pounce.sync_cron()").fetchone()[0] is None
    assert db.execute("SELECT to_regnamespace('cron')").fetchone()[0] is None


def test_prune_notifications_keeps_unread_and_recent(db, make_user):
    user_id, _ = make_user()
    db.execute("""
        INSERT INTO pounce.notifications (user_id, kind, created_at, read_at) VALUES
          (%(u)s, 'old.read', now() - interval '200 days', now() - interval '190 days'),
          (%(u)s, 'old.unread', now() - interval '200 days', NULL),
          (%(u)s, 'new.read', now() - interval '10 days', now())""", {"u": user_id})
    assert db.execute("SELECT pounce.prune_notifications()").fetchone()[0] == 1
    kinds = {r[0] for r in db.execute("SELECT kind FROM pounce.notifications")}
    assert kinds == {"old.unread", "new.read"}
