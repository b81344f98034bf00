"""Benchmarks: synthetic data at a chosen scale, and a pgbench runner that sweeps client
counts and records throughput and latency percentiles (the job pgbench-tools does).

  pounce bench generate [--scale N] [--reset]           generated rows (bench/generate/*.sql)
  pounce bench run [--clients 1,2,4] [--time 10] [--workload NAME ...] [--note TEXT]
                                                        pgbench sweep -> bench.results, RESULTS.md
  pounce bench explain [--workload NAME ...]            EXPLAIN (ANALYZE, BUFFERS) of each workload

Everything runs as the superuser over the embedded cluster's Unix socket. bench/README.md
says how to read the results and how an area adds its generator and workloads.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psycopg

from . import cluster
from .config import REPO, SUPERUSER, Settings

BENCH_DIR = REPO / "bench"
GENERATE_DIR = BENCH_DIR / "generate"
WORKLOADS_DIR = BENCH_DIR / "workloads"
DEFINES_SQL = BENCH_DIR / "defines.sql"
RESULTS_MD = BENCH_DIR / "RESULTS.md"
SCRIPT_RESULTS_DIR = BENCH_DIR / "results"  # figures of bench/*.py scripts, one file each

USERS_PER_SCALE = 1000
# Marks the statement(s) of a workload whose plan RESULTS.md shows. A block comment,
# because pgbench drops `--` comment lines but sends comments inside a statement; no
# colon, which pgbench would read as a variable even there.
EXPLAIN_MARKER = "/* bench-explain */"

# The runner's own bookkeeping, beside (never inside) the application's schemas. Kept
# across runs so results have a history; RESULTS.md shows the latest of each.
RESULTS_DDL = """
CREATE SCHEMA IF NOT EXISTS bench;
CREATE TABLE IF NOT EXISTS bench.results (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_at          timestamptz NOT NULL,         -- start of the sweep: shared by its rows
  git_commit      text,
  workload        text NOT NULL,
  clients         integer NOT NULL CHECK (clients > 0),
  threads         integer NOT NULL CHECK (threads > 0),
  duration_s      integer NOT NULL CHECK (duration_s > 0),  -- pgbench -T
  transactions    bigint NOT NULL CHECK (transactions > 0),
  failed          bigint NOT NULL CHECK (failed >= 0),      -- serialization/deadlock failures
  tps             numeric(12,1) NOT NULL,
  p50_ms          numeric(12,3) NOT NULL,
  p95_ms          numeric(12,3) NOT NULL,
  p99_ms          numeric(12,3) NOT NULL,
  max_ms          numeric(12,3) NOT NULL,
  scale           numeric(10,3) NOT NULL,       -- generated members / 1,000
  note            text,
  command         text NOT NULL,                -- the pounce command that ran the sweep
  server_version  text NOT NULL,
  cpus            integer NOT NULL,
  cpu_busy_before numeric(5,1) NOT NULL         -- % of CPUs busy in the second before, runner idle
);
CREATE INDEX IF NOT EXISTS results_latest ON bench.results (workload, clients, run_at DESC);
CREATE TABLE IF NOT EXISTS bench.plans (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_at      timestamptz NOT NULL,
  git_commit  text,
  workload    text NOT NULL,
  position    integer NOT NULL,                 -- which marked statement of the workload
  scale       numeric(10,3) NOT NULL,
  statement   text NOT NULL,
  plan        text NOT NULL
);
CREATE INDEX IF NOT EXISTS plans_latest ON bench.plans (workload, run_at DESC);
"""


class BenchError(SystemExit):
    """A problem the user can fix (no data, unknown workload, pgbench failed)."""


# =============================================================================
# Data generation
# =============================================================================

@dataclass(frozen=True)
class GenerateStep:
    name: str
    seconds: float
    rows: list[tuple[str, int]]


def users_for_scale(scale: float) -> int:
    return round(USERS_PER_SCALE * scale)


def generate(s: Settings, dbname: str | None = None, scale: float = 1.0,
             reset: bool = False) -> list[GenerateStep]:
    """Run every bench/generate/*.sql in name order, in one transaction, with
    bench.scale and bench.reset set; then VACUUM (ANALYZE). Returns one step per file
    (its time and the (relation, rows) its last statement reported), then the vacuum."""
    if users_for_scale(scale) < 1:
        raise BenchError(f"pounce: --scale {scale} generates no users; the smallest scale is 0.001")
    files = sorted(GENERATE_DIR.glob("*.sql"))
    steps: list[GenerateStep] = []
    with _connect(s, dbname) as conn:
        with conn.transaction():
            conn.execute("SELECT set_config('bench.scale', %s, true), set_config('bench.reset', %s, true)",
                         [str(scale), "on" if reset else "off"])
            for f in files:
                started = time.monotonic()
                try:
                    rows = _last_result(conn.execute(f.read_text()))
                except psycopg.Error as e:
                    raise BenchError(f"pounce: {f.relative_to(REPO)}: {e}") from e
                steps.append(GenerateStep(f.name, time.monotonic() - started, rows))
        # Freshly loaded tables have no visibility map, so index-only scans would visit
        # the heap; in steady state autovacuum has set it, and the plans should show that.
        started = time.monotonic()
        conn.execute("VACUUM (ANALYZE)")
        steps.append(GenerateStep("VACUUM (ANALYZE)", time.monotonic() - started, []))
    return steps


def _last_result(cur: psycopg.Cursor) -> list[tuple[str, int]]:
    """The (relation, rows) a generator script reports with its last statement."""
    while cur.nextset():
        pass
    if cur.description is None or len(cur.description) != 2:
        return []
    return [(str(relation), int(rows)) for relation, rows in cur.fetchall()]


# =============================================================================
# Running workloads
# =============================================================================

@dataclass(frozen=True)
class Measurement:
    transactions: int
    failed: int
    tps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True)
class Result:
    workload: str
    clients: int
    threads: int
    duration_s: int
    measurement: Measurement


def workload_files(names: Sequence[str] | None = None) -> list[Path]:
    """The workload scripts to run (all of bench/workloads by default), checked to carry
    the EXPLAIN marker before any time is spent measuring."""
    available = {p.stem: p for p in sorted(WORKLOADS_DIR.glob("*.sql"))}
    unknown = [n for n in names or () if n not in available]
    if unknown:
        raise BenchError(f"pounce: unknown workload(s) {', '.join(unknown)}; "
                         f"available: {', '.join(available) or 'none'}")
    chosen = [available[n] for n in dict.fromkeys(names)] if names else list(available.values())
    unmarked = [p.name for p in chosen if EXPLAIN_MARKER not in p.read_text()]
    if unmarked:
        raise BenchError(f"pounce: {', '.join(unmarked)}: mark the main statement with {EXPLAIN_MARKER}")
    return chosen


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence: the smallest value with at
    least p% of the values at or below it (always an observed latency)."""
    if not ordered:
        raise ValueError("percentile of no values")
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def parse_transaction_logs(paths: Iterable[Path]) -> Measurement:
    """Throughput and latency from pgbench's per-transaction logs (-l), one file per
    thread. Each line: client_id transaction_no time script_no time_epoch time_us, where
    time is the transaction's latency in microseconds (or `failed`) and the epoch pair
    is when it ended. TPS counts successful transactions over the span from the first
    start to the last end, so connection set-up is not counted (as pgbench's own tps)."""
    latencies_us: list[int] = []
    failed = 0
    first_start = math.inf
    last_end = -math.inf
    for path in paths:
        with path.open() as f:
            for line in f:
                fields = line.split()
                if fields[2] == "failed":
                    failed += 1
                    continue
                latency = int(fields[2])
                end = int(fields[4]) + int(fields[5]) / 1e6
                latencies_us.append(latency)
                first_start = min(first_start, end - latency / 1e6)
                last_end = max(last_end, end)
    if not latencies_us:
        raise BenchError("pounce: pgbench completed no transaction")
    latencies_us.sort()
    ms = [v / 1000 for v in latencies_us]
    return Measurement(
        transactions=len(ms), failed=failed, tps=len(ms) / (last_end - first_start),
        p50_ms=percentile(ms, 50), p95_ms=percentile(ms, 95), p99_ms=percentile(ms, 99), max_ms=ms[-1])


def run(s: Settings, dbname: str | None = None, clients: Sequence[int] = (1, 2, 4), seconds: int = 10,
        workloads: Sequence[str] | None = None, note: str | None = None,
        results_path: Path | None = RESULTS_MD) -> list[Result]:
    """For each workload and client count, run pgbench for `seconds`, store a row in
    bench.results, then EXPLAIN each workload into bench.plans and rewrite results_path
    (None: leave the file alone)."""
    dbname = dbname or s.dbname
    files = workload_files(workloads)
    if seconds < 1 or any(c < 1 for c in clients):
        raise BenchError("pounce: --time and --clients must be positive")
    run_at = datetime.now(timezone.utc)
    commit = git_commit()
    cpus = os.cpu_count() or 1
    command = shlex.join(["pounce", "bench", "run", "--clients", ",".join(map(str, clients)),
                          "--time", str(seconds), "--dbname", dbname,
                          *(["--workload", *workloads] if workloads else []),
                          *(["--note", note] if note else [])])
    results: list[Result] = []
    with _connect(s, dbname) as conn:
        conn.execute(RESULTS_DDL)
        max_clients = conn.execute(
            "SELECT current_setting('max_connections')::int"
            " - current_setting('superuser_reserved_connections')::int").fetchone()[0]
        if max(clients) >= max_clients:
            raise BenchError(f"pounce: at most {max_clients - 1} clients (max_connections)")
        defines = read_defines(conn)
        scale = defines["users"] / USERS_PER_SCALE
        version = conn.execute("SHOW server_version").fetchone()[0]
        _say(f"pounce: {len(files)} workload(s) x {len(clients)} client count(s) x {seconds} s "
             f"at scale {scale:g} on {dbname}")
        for path in files:
            for c in clients:
                threads = min(c, cpus)
                # Start each run from a clean slate of dirty buffers, as pgbench-tools does,
                # so one run's checkpoint does not land in the next one's latencies.
                conn.execute("CHECKPOINT")
                # Other work on the machine skews the figures (pgbench shares the CPUs with
                # the server): record how busy it was just before, while we were idle.
                busy = cpu_busy_percent()
                m = _pgbench(s, dbname, path, c, threads, seconds, defines)
                results.append(Result(path.stem, c, threads, seconds, m))
                conn.execute(
                    """INSERT INTO bench.results (run_at, git_commit, workload, clients, threads, duration_s,
                         transactions, failed, tps, p50_ms, p95_ms, p99_ms, max_ms, scale, note, command,
                         server_version, cpus, cpu_busy_before)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                    [run_at, commit, path.stem, c, threads, seconds, m.transactions, m.failed, m.tps,
                     m.p50_ms, m.p95_ms, m.p99_ms, m.max_ms, scale, note, command, version, cpus, busy])
                print(f"{path.stem:<24} clients {c:>3}  tps {m.tps:>10.1f}  p50 {m.p50_ms:8.3f} ms  "
                      f"p95 {m.p95_ms:8.3f} ms  p99 {m.p99_ms:8.3f} ms  max {m.max_ms:8.3f} ms  "
                      f"cpu busy before {busy:4.1f}%" + (f"  failed {m.failed}" if m.failed else ""), flush=True)
        for path in files:
            for position, (statement, plan) in enumerate(explain(s, dbname, path, defines), 1):
                conn.execute(
                    """INSERT INTO bench.plans (run_at, git_commit, workload, position, scale, statement, plan)
                       VALUES (%s, %s, %s, %s, %s, %s, %s)""",
                    [run_at, commit, path.stem, position, scale, statement, plan])
        if results_path is not None:
            results_path.write_text(render_results(conn))
            _say(f"pounce: wrote {results_path}")
    return results


def read_defines(conn: psycopg.Connection) -> dict[str, int]:
    """pgbench -D variables for every workload (bench/defines.sql)."""
    defines = {str(name): int(value) for name, value in conn.execute(DEFINES_SQL.read_text())}
    if not defines.get("users"):
        raise BenchError("pounce: no generated data in this database; run `pounce bench generate` first")
    return defines


def _pgbench_base(s: Settings, path: Path, defines: dict[str, int]) -> list[str]:
    argv = [s.bin("pgbench"), "-n", "-f", str(path), "-h", str(s.sockdir), "-p", str(s.port), "-U", SUPERUSER]
    for name, value in defines.items():
        argv += ["-D", f"{name}={value}"]
    return argv


def _pgbench(s: Settings, dbname: str, path: Path, clients: int, threads: int, seconds: int,
             defines: dict[str, int]) -> Measurement:
    # Prepared statements, as PostgREST uses by default (db-prepared-statements).
    argv = [*_pgbench_base(s, path, defines), "-M", "prepared",
            "-c", str(clients), "-j", str(threads), "-T", str(seconds)]
    with tempfile.TemporaryDirectory(prefix="pounce-bench-") as tmp:
        prefix = Path(tmp) / path.stem
        proc = subprocess.run([*argv, "-l", "--log-prefix", str(prefix), dbname],
                              capture_output=True, text=True, timeout=seconds + 120)
        if proc.returncode != 0:
            raise BenchError(f"pounce: pgbench failed on {path.name} with {clients} client(s):\n"
                             f"{proc.stderr.strip()[-2000:]}")
        return parse_transaction_logs(sorted(Path(tmp).glob(f"{path.stem}.*")))


# =============================================================================
# Plans
# =============================================================================

_SENDING = re.compile(r"^pgbench: (?:debug: )?client \d+ sending ")
_BEGIN = re.compile(r"^\s*(BEGIN|START\s+TRANSACTION)\b", re.IGNORECASE)
_END = re.compile(r"^\s*(COMMIT|END|ROLLBACK|ABORT)\b", re.IGNORECASE)


def sent_statements(debug_output: str) -> list[str]:
    """The SQL statements a pgbench -d run sent, with its variables substituted."""
    statements: list[str] = []
    current: list[str] | None = None
    for line in debug_output.splitlines():
        if _SENDING.match(line):
            if current is not None:
                statements.append("\n".join(current))
            current = [_SENDING.sub("", line)]
        elif line.startswith("pgbench: "):
            if current is not None:
                statements.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    if current is not None:
        statements.append("\n".join(current))
    return [st.strip().rstrip(";").rstrip() for st in statements]


def explain(s: Settings, dbname: str, path: Path, defines: dict[str, int]) -> list[tuple[str, str]]:
    """(statement, plan) for each marked statement of one transaction of the workload.

    pgbench itself picks the random values: one transaction runs with -d (debug), which
    prints each statement as sent (that transaction commits, like every benchmark one).
    Those statements are then replayed in a transaction that is rolled back, the marked
    ones under EXPLAIN (ANALYZE, BUFFERS), so the plan is of the exact statement the
    benchmark sends, run as the request's role with its claims."""
    proc = subprocess.run([*_pgbench_base(s, path, defines), "-M", "simple", "-d",
                           "-c", "1", "-t", "1", dbname], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise BenchError(f"pounce: pgbench failed on {path.name}:\n{proc.stderr.strip()[-2000:]}")
    statements = sent_statements(proc.stderr)
    plans: list[tuple[str, str]] = []
    with cluster.connect(s, dbname) as conn:
        if not statements or not _BEGIN.match(statements[0]):
            conn.execute("BEGIN")
        try:
            for st in statements:
                if _END.match(st):
                    break  # the first transaction is enough; nothing it did is kept
                if EXPLAIN_MARKER in st:
                    rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + st).fetchall()
                    plans.append((st, "\n".join(r[0] for r in rows)))
                else:
                    conn.execute(st)
        finally:
            conn.execute("ROLLBACK")
    if not plans:
        raise BenchError(f"pounce: {path.name}: no statement marked {EXPLAIN_MARKER} in its first transaction")
    return plans


# =============================================================================
# RESULTS.md
# =============================================================================

RESULTS_HEADER = """\
# Benchmark results

Generated by `pounce bench run` (see [README.md](README.md)); do not edit by hand. Every
run appends to the `bench.results` and `bench.plans` tables of the database it measured,
then rewrites this file with the latest result for each (workload, clients) and the latest
plan of each workload.

Each cell is one pgbench run: `pgbench -n -M prepared -f bench/workloads/<workload>.sql
-c <clients> -j min(<clients>, CPUs) -T <seconds> -D users=<generated users> -l`, as the
superuser over the Unix socket. TPS counts successful transactions from pgbench's
per-transaction log, from the first start to the last end; latency percentiles are
nearest-rank over that log's per-transaction latencies. One transaction is one API
request framed as PostgREST frames it (role and JWT claims, db-pre-request, one statement).
pgbench runs on the same machine as the server and competes with it for the CPUs; "CPU
busy before" is how busy the CPUs were in the second before the run, while the runner
itself was idle (well above 0: something else was running, so distrust that row).
"""


def render_results(conn: psycopg.Connection) -> str:
    """RESULTS.md from bench.results and bench.plans."""
    rows = conn.execute(
        """SELECT DISTINCT ON (workload, clients)
                  workload, clients, tps, p50_ms, p95_ms, p99_ms, max_ms, transactions, failed, duration_s,
                  cpu_busy_before, scale, run_at, git_commit, note, command, server_version, cpus
           FROM bench.results
           ORDER BY workload, clients, run_at DESC, id DESC""").fetchall()
    plans = conn.execute(
        """SELECT workload, position, scale, run_at, git_commit, statement, plan
           FROM bench.plans AS p
           WHERE run_at = (SELECT max(run_at) FROM bench.plans WHERE workload = p.workload)
           ORDER BY workload, position""").fetchall()
    settings = dict(conn.execute(
        "SELECT name, current_setting(name) FROM unnest(ARRAY['server_version', 'shared_buffers',"
        " 'work_mem', 'effective_cache_size', 'max_connections']) AS name").fetchall())

    # The sweeps that produced the rows shown, numbered in the order of first appearance.
    runs: dict[tuple, int] = {}
    for *_, run_at, commit, note, command, version, cpus in rows:
        runs.setdefault((run_at, command, commit, version, cpus, note), len(runs) + 1)

    out = [RESULTS_HEADER]
    out.append(f"Rendered {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine_facts()}; "
               f"PostgreSQL {settings['server_version']} (shared_buffers {settings['shared_buffers']}, "
               f"work_mem {settings['work_mem']}, effective_cache_size {settings['effective_cache_size']}, "
               f"max_connections {settings['max_connections']}).\n")
    out.append("## Throughput and latency\n")
    out.append("| workload | clients | TPS | p50 ms | p95 ms | p99 ms | max ms | transactions | failed "
               "| seconds | CPU busy before % | scale | run |")
    out.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for (workload, clients, tps, p50, p95, p99, mx, n, failed, dur, busy, scale, run_at, commit, note,
         command, version, cpus) in rows:
        run_no = runs[(run_at, command, commit, version, cpus, note)]
        out.append(f"| {workload} | {clients} | {tps:,.1f} | {p50:.3f} | {p95:.3f} | {p99:.3f} | {mx:.3f} "
                   f"| {n:,} | {failed:,} | {dur} | {busy:.1f} | {float(scale):g} | {run_no} |")
    if not rows:
        out.append("| (no results yet) | | | | | | | | | | | | |")
    out.append("\nRuns:\n")
    for (run_at, command, commit, version, cpus, note), run_no in runs.items():
        out.append(f"{run_no}. `{command}` at {run_at.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC, "
                   f"commit {commit or 'none'}, PostgreSQL {version}, {cpus} CPUs" + (f": {note}" if note else ""))
    scripts = sorted(SCRIPT_RESULTS_DIR.glob("*.md"))
    if scripts:
        out.append("\n## Measured by scripts\n")
        out.append("What is not one request per transaction (ingestion, baselines, refreshes) is measured "
                   "by the scripts in bench/; each writes its latest figures and its command to "
                   "bench/results/<area>.md, included here.\n")
        out += [f.read_text().rstrip() + "\n" for f in scripts]
    out.append("\n## Plans\n")
    out.append("`EXPLAIN (ANALYZE, BUFFERS)` of each workload's main statement, with the random values "
               "of one transaction, as the request's role and claims (row-level security applied), "
               "after the sweep.\n")
    for workload, position, scale, run_at, commit, statement, plan in plans:
        out.append(f"### {workload}" + (f" ({position})" if position > 1 else "") + "\n")
        out.append(f"Scale {float(scale):g}, {run_at.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC, "
                   f"commit {commit or 'none'}.\n")
        out.append(f"```sql\n{statement}\n```\n")
        out.append(f"```text\n{plan}\n```\n")
    return "\n".join(out)


def write_script_results(conn: psycopg.Connection, area: str, title: str, context: str,
                         lines: Sequence[str]) -> Path:
    """bench/results/<area>.md for a bench/ script (its command, when, commit, data, CPU, figures),
    then RESULTS.md re-rendered so it includes the new figures."""
    script = os.path.relpath(sys.argv[0], BENCH_DIR.parent)
    command = ("python " if script.endswith(".py") else "") + shlex.join([script, *sys.argv[1:]])
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = SCRIPT_RESULTS_DIR / f"{area}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        f"### {title} (`{command}`)\n\n"
        f"Measured {when}, commit {git_commit() or 'unknown'}, {context}; "
        f"CPU busy right after: {cpu_busy_percent():.0f}%, load average {os.getloadavg()[0]:.1f}.\n\n"
        + "\n".join(lines) + "\n")
    conn.execute(RESULTS_DDL)
    RESULTS_MD.write_text(render_results(conn))
    _say(f"wrote {out} and {RESULTS_MD}")
    return out


def machine_facts() -> str:
    """CPU count and model, memory and kernel of this machine, for the reader."""
    facts = [f"{os.cpu_count()} CPUs"]
    cpuinfo = _read("/proc/cpuinfo")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    if model:
        facts[0] += f" ({model.group(1).strip()})"
    mem = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.MULTILINE)
    if mem:
        facts.append(f"{int(mem.group(1)) / 1024 ** 2:.1f} GiB RAM")
    facts.append(f"{platform.system()} {platform.release()}")
    return ", ".join(facts)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


# =============================================================================
# Helpers and the command line
# =============================================================================

def git_commit() -> str | None:
    """Short commit of the checkout, or None outside git or before the first commit."""
    try:
        proc = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (proc.stdout.strip() or None) if proc.returncode == 0 else None


def _connect(s: Settings, dbname: str | None) -> psycopg.Connection:
    if s.external_url:
        raise BenchError("pounce: bench runs against the embedded cluster; unset POUNCE_DATABASE_URL")
    cluster.start(s, quiet=True)
    return cluster.connect(s, dbname or s.dbname)


def cpu_busy_percent(seconds: float = 1.0) -> float:
    """Percent of all CPUs busy over the next `seconds` (Linux /proc/stat: every state
    but idle and iowait counts as busy)."""
    def sample() -> tuple[int, int]:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return sum(ticks), ticks[3] + ticks[4]

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 100 * (1 - (idle1 - idle0) / (total1 - total0)) if total1 > total0 else 0.0


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _positive_scale(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or users_for_scale(value) < 1:
        raise argparse.ArgumentTypeError("a scale of at least 0.001 (1 user)")
    return value


def _client_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("comma-separated client counts, e.g. 1,2,4") from None
    if not counts or any(c < 1 for c in counts):
        raise argparse.ArgumentTypeError("comma-separated positive client counts, e.g. 1,2,4")
    return counts


def _seconds(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 3600:
        raise argparse.ArgumentTypeError("between 1 and 3600 seconds")
    return value


def cmd_generate(s: Settings, args: argparse.Namespace) -> int:
    started = time.monotonic()
    steps = generate(s, args.dbname, args.scale, args.reset)
    for step in steps:
        print(f"{step.name:<32} {step.seconds:8.2f} s")
        for relation, rows in step.rows:
            print(f"  {relation:<30} {rows:>12,}")
    print(f"generated scale {args.scale:g} in {time.monotonic() - started:.2f} s")
    return 0


def cmd_run(s: Settings, args: argparse.Namespace) -> int:
    run(s, args.dbname, args.clients, args.time, args.workload, args.note, args.results)
    return 0


def cmd_explain(s: Settings, args: argparse.Namespace) -> int:
    dbname = args.dbname or s.dbname
    with _connect(s, dbname) as conn:
        defines = read_defines(conn)
    for path in workload_files(args.workload):
        for statement, plan in explain(s, dbname, path, defines):
            print(f"-- {path.stem}\n{statement};\n\n{plan}\n")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("bench", help="generate data, run pgbench sweeps, record results",
                           description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench = group.add_subparsers(dest="bench_command", required=True)

    g = bench.add_parser("generate", help="fill the database with generated rows (set-based SQL)")
    g.add_argument("--scale", type=_positive_scale, default=1.0,
                   help="1 = 1,000 users and 100,000 notifications; fractions allowed (default 1)")
    g.add_argument("--reset", action="store_true", help="delete previously generated rows first")
    g.add_argument("--dbname", help="database of the embedded cluster (default: the app database)")
    g.set_defaults(fn=cmd_generate)

    r = bench.add_parser("run", help="pgbench sweep over workloads and client counts")
    r.add_argument("--clients", type=_client_counts, default=[1, 2, 4], help="comma-separated (default 1,2,4)")
    r.add_argument("--time", type=_seconds, default=10, help="seconds per run (default 10)")
    r.add_argument("--workload", action="extend", nargs="+", metavar="NAME",
                   help="bench/workloads/NAME.sql (default: all)")
    r.add_argument("--dbname", help="database of the embedded cluster (default: the app database)")
    r.add_argument("--note", help="free text stored with the results")
    r.add_argument("--results", type=Path, default=RESULTS_MD,
                   help="markdown file to rewrite (default bench/RESULTS.md)")
    r.set_defaults(fn=cmd_run)

    e = bench.add_parser("explain", help="EXPLAIN (ANALYZE, BUFFERS) of each workload's main statement")
    e.add_argument("--workload", action="extend", nargs="+", metavar="NAME")
    e.add_argument("--dbname")
    e.set_defaults(fn=cmd_explain)

    from .api_server import bench_http  # `pounce bench http`: the API server under HTTP load
    bench_http.register(bench)
