"""bench/: the data generator, the pgbench runner, the results it records and renders.

The runner test measures for one second only to prove the plumbing (pgbench runs, its
log is read, a row is stored, RESULTS.md is written); the figures themselves belong in
bench/RESULTS.md, not in assertions."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pounce import bench, cluster
from pounce.cli import build_parser

BENCH_USERS = "SELECT count(*) FROM pounce.users WHERE email LIKE '%@bench.pounce.test'"
BENCH_NOTIFICATIONS = """
    SELECT count(*), count(*) FILTER (WHERE n.read_at IS NULL)
    FROM pounce.notifications AS n JOIN pounce.users AS u ON u.id = n.user_id
    WHERE u.email LIKE '%@bench.pounce.test'"""


def counts(db) -> tuple[int, int, int]:
    users = db.execute(BENCH_USERS).fetchone()[0]
    notifications, unread = db.execute(BENCH_NOTIFICATIONS).fetchone()
    return users, notifications, unread


def test_generate_fills_a_fractional_scale(settings, db_name, db):
    steps = bench.generate(settings, dbname=db_name, scale=0.01)

    users, notifications, unread = counts(db)
    assert (users, notifications) == (10, 1000)
    assert 0.2 < unread / notifications < 0.4
    reported = dict(steps[0].rows)
    assert reported["pounce.users"] == 10 and reported["pounce.notifications"] == 1000
    assert steps[-1].name == "VACUUM (ANALYZE)"

    facts = db.execute("""
        SELECT count(DISTINCT u.password_hash), bool_and(u.role = 'member'),
               array_agg(DISTINCT u.tier ORDER BY u.tier),
               bool_and(u.id = md5('bench-user-' || substring(u.email FROM '^bench-(\\d+)@'))::uuid)
        FROM pounce.users AS u WHERE u.email LIKE '%@bench.pounce.test'""").fetchone()
    assert facts == (1, True, ["scout", "trader", "tycoon"], True)
    spread = db.execute("""
        SELECT bool_and(created_at BETWEEN now() - interval '90 days' AND now()),
               bool_and(read_at IS NULL OR read_at BETWEEN created_at AND now()),
               bool_and(jsonb_typeof(payload) = 'object'), count(DISTINCT kind)
        FROM pounce.notifications""").fetchone()
    assert spread == (True, True, True, 3)
    # VACUUM (ANALYZE) ran: the planner knows the table's size.
    assert db.execute("SELECT reltuples FROM pg_class WHERE oid = 'pounce.notifications'::regclass"
                      ).fetchone()[0] == db.execute("SELECT count(*) FROM pounce.notifications").fetchone()[0]


def test_generate_is_idempotent_and_reset_regenerates_only_bench_rows(settings, db_name, db):
    own = db.execute("""INSERT INTO pounce.users (email, password_hash)
                        VALUES ('someone@example.com', public.crypt('x', public.gen_salt('bf', 4)))
                        RETURNING id""").fetchone()[0]
    db.execute("INSERT INTO pounce.notifications (user_id, kind) VALUES (%s, 'test.note')", [own])

    bench.generate(settings, dbname=db_name, scale=0.01)
    first = counts(db)
    first_ids = db.execute("SELECT min(id), max(id) FROM pounce.notifications WHERE dedup_key LIKE 'bench-%'"
                           ).fetchone()

    bench.generate(settings, dbname=db_name, scale=0.01)  # again, without --reset: nothing new
    assert counts(db) == first

    bench.generate(settings, dbname=db_name, scale=0.01, reset=True)
    assert counts(db) == first  # same data (seeded), in new rows
    assert db.execute("SELECT min(id) FROM pounce.notifications WHERE dedup_key LIKE 'bench-%'"
                      ).fetchone()[0] > first_ids[1]
    bench.generate(settings, dbname=db_name, scale=0.01, reset=True)
    assert counts(db) == first

    bench.generate(settings, dbname=db_name, scale=0.02)  # a larger scale tops up
    assert counts(db)[:2] == (20, 2000)

    assert db.execute("SELECT count(*) FROM pounce.notifications WHERE user_id = %s", [own]).fetchone()[0] == 1


def test_generate_refuses_a_scale_without_users(settings, db_name):
    with pytest.raises(bench.BenchError, match="smallest scale"):
        bench.generate(settings, dbname=db_name, scale=0.0001)


def test_run_records_results_plans_and_renders_them(settings, db_name, db, tmp_path):
    bench.generate(settings, dbname=db_name, scale=0.01)
    results_md = tmp_path / "RESULTS.md"

    results = bench.run(settings, dbname=db_name, clients=[1], seconds=1,
                        workloads=["notifications_page", "unread_count"], note="test run",
                        results_path=results_md)

    assert [(r.workload, r.clients) for r in results] == [("notifications_page", 1), ("unread_count", 1)]
    rows = db.execute("""SELECT workload, clients, threads, duration_s, transactions, failed, tps,
                                p50_ms, p95_ms, p99_ms, max_ms, scale, note, command
                         FROM bench.results ORDER BY workload""").fetchall()
    assert len(rows) == 2
    for (_workload, clients, threads, duration, transactions, failed, tps, p50, p95, p99, mx, scale, note,
         command) in rows:
        assert (clients, threads, duration, failed, float(scale), note) == (1, 1, 1, 0, 0.01, "test run")
        assert transactions > 0 and tps > 0
        assert 0 < p50 <= p95 <= p99 <= mx
        # One client for one second: TPS is about the transaction count, and half the
        # transactions took at least p50 each, within that second (ms, not us or s).
        assert 0.5 < float(tps) / transactions < 2
        assert transactions / 2 * float(p50) / 1000 <= 1 + float(mx) / 1000
        assert command.startswith("pounce bench run --clients 1 --time 1 ")

    plans = dict(db.execute("SELECT workload, plan FROM bench.plans").fetchall())
    assert set(plans) == {"notifications_page", "unread_count"}
    for plan in plans.values():
        # Buffers: the ANALYZE/BUFFERS options; current_user_id(): the row-level security
        # of the member the request switched to (the superuser would bypass it).
        assert "Buffers:" in plan and "pounce.current_user_id()" in plan

    text = results_md.read_text()
    assert "| notifications_page | 1 |" in text and "| unread_count | 1 |" in text
    assert "### notifications_page" in text and "### unread_count" in text
    assert "`pounce bench run --clients 1 --time 1 " in text
    assert f"PostgreSQL {db.execute('SHOW server_version').fetchone()[0]}" in text


def test_results_keep_their_history_and_render_the_latest(settings, db_name, db, tmp_path):
    bench.generate(settings, dbname=db_name, scale=0.01)
    for note in ("first", "second"):
        bench.run(settings, dbname=db_name, clients=[1], seconds=1, workloads=["unread_count"],
                  note=note, results_path=tmp_path / "RESULTS.md")
    assert db.execute("SELECT count(*) FROM bench.results").fetchone()[0] == 2
    text = (tmp_path / "RESULTS.md").read_text()
    assert "UTC, commit" in text and ": second" in text and ": first" not in text


def test_run_needs_generated_data(settings, db_name, tmp_path):
    with pytest.raises(bench.BenchError, match="bench generate"):
        bench.run(settings, dbname=db_name, clients=[1], seconds=1, results_path=tmp_path / "RESULTS.md")
    assert not (tmp_path / "RESULTS.md").exists()


def test_unknown_workloads_are_refused_before_anything_runs():
    with pytest.raises(bench.BenchError, match="unknown workload"):
        bench.workload_files(["no_such_workload"])


def test_every_workload_marks_a_statement_to_explain():
    assert bench.workload_files() == sorted(bench.WORKLOADS_DIR.glob("*.sql"))


def write_log(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_transaction_logs_give_tps_and_nearest_rank_percentiles(tmp_path):
    # Two threads' logs: latencies 1..100 ms, the last ending 2 s after the first began.
    start = 1_700_000_000
    lines = [[], []]
    for i in range(1, 101):
        end_us = 1_000_000 + i * 10_000  # the i-th ends at start + 1 s + i*10 ms
        lines[i % 2].append(f"{i % 2} {i} {i * 1000} 0 {start + end_us // 1_000_000} {end_us % 1_000_000}")
    lines[0].append("0 101 failed 0 1700000001 500000")
    logs = [write_log(tmp_path / "w.1", lines[0]), write_log(tmp_path / "w.1.1", lines[1])]

    m = bench.parse_transaction_logs(logs)

    assert (m.transactions, m.failed) == (100, 1)
    assert (m.p50_ms, m.p95_ms, m.p99_ms, m.max_ms) == (50.0, 95.0, 99.0, 100.0)
    # first start: transaction 1 ends at 1.01 s after 1 ms, so began at 1.009 s; last end 2.0 s
    assert m.tps == pytest.approx(100 / (2.0 - 1.009))


def test_percentile_is_an_observed_value():
    assert bench.percentile([5.0], 99) == 5.0
    assert bench.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert bench.percentile([1.0, 2.0, 3.0, 4.0], 51) == 3.0
    assert bench.percentile([1.0, 2.0, 3.0, 4.0], 100) == 4.0


def test_statements_are_read_back_from_pgbench_debug_output():
    debug = "\n".join([
        "pgbench: client 0 executing \\set n",
        "pgbench: client 0 sending BEGIN;",
        "pgbench: client 0 receiving",
        "pgbench: client 0 sending SELECT 7::int AS x,",
        "       'a' AS y;",
        "pgbench: client 0 receiving",
        "pgbench: debug: client 0 sending COMMIT;",
    ])
    assert bench.sent_statements(debug) == ["BEGIN", "SELECT 7::int AS x,\n       'a' AS y", "COMMIT"]


def test_cli_defaults_are_bounded():
    args = build_parser().parse_args(["bench", "run", "--workload", "a", "b", "--workload", "c"])
    assert (args.clients, args.time, args.workload, args.results) == ([1, 2, 4], 10, ["a", "b", "c"],
                                                                     bench.RESULTS_MD)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "run", "--time", "0"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "run", "--clients", "0,2"])
    assert build_parser().parse_args(["bench", "generate", "--scale", "0.01"]).scale == 0.01


def test_every_workload_runs_prepared_on_generated_data(settings, db_name):
    """Each workload, as `bench run` sends it (prepared statements, the defines), runs
    without error on a small generated database: a broken script fails here, not in a
    long benchmark run."""
    bench.generate(settings, dbname=db_name, scale=0.01)
    with cluster.connect(settings, db_name) as conn:
        defines = bench.read_defines(conn)
    failures = {}
    for path in bench.workload_files():
        proc = subprocess.run([*bench._pgbench_base(settings, path, defines), "-M", "prepared", "-c", "1",
                               "-t", "3", db_name], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0 or "error" in proc.stderr.lower():
            failures[path.name] = proc.stderr.strip()[-500:]
    assert failures == {}


def test_script_results_are_included_in_results_md(settings, db_name, db, tmp_path, monkeypatch):
    scripts = tmp_path / "results"
    scripts.mkdir()
    (scripts / "zz_area.md").write_text("### Area (`python bench/area.py`)\n\n- a figure: 1.5 s\n")
    monkeypatch.setattr(bench, "SCRIPT_RESULTS_DIR", scripts)
    db.execute(bench.RESULTS_DDL)
    text = bench.render_results(db)
    assert "## Measured by scripts" in text and "- a figure: 1.5 s" in text
    assert text.index("## Measured by scripts") < text.index("## Plans")
