"""The embedded PostgreSQL cluster: a project-owned data directory, port and socket.

PostgreSQL refuses to run as root, so when we are root every server binary runs as the
`postgres` system user (runuser) and the state directory belongs to it; as an ordinary
user everything runs as that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

from .config import SUPERUSER, Settings, is_root

SERVER_CONF = """\
# Written by `pounce db start` on every start; edit POUNCE_* variables, not this file.
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sockdir}'
unix_socket_permissions = 0700
shared_preload_libraries = 'pg_cron,pg_stat_statements'
cron.database_name = '{dbname}'
# Jobs run in background workers: no libpq login (and so no password) is needed.
cron.use_background_workers = on
max_worker_processes = 32
cron.max_running_jobs = 16
pg_stat_statements.track = all
timezone = 'UTC'
log_timezone = 'UTC'
log_min_duration_statement = 1000
# Sizing for an API workload: the hot tables and their indexes stay in shared buffers
# (a 1M-auction market is ~1.2 GB with indexes); short queries are never JIT-compiled.
shared_buffers = 2GB
effective_cache_size = 12GB
work_mem = 16MB
maintenance_work_mem = 512MB
random_page_cost = 1.1
jit = off
"""


class ClusterError(SystemExit):
    pass


def _run(s: Settings, argv: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    if is_root():
        argv = ["runuser", "-u", "postgres", "--", *argv]
    return subprocess.run(argv, check=check, text=True, capture_output=True, **kw)


def _prepare_home(s: Settings) -> None:
    s.home.mkdir(parents=True, exist_ok=True)
    s.sockdir.mkdir(exist_ok=True)
    if is_root():
        for p in (s.home, s.sockdir):
            _give_to_postgres(p)
        # the postgres user must be able to traverse to the home directory
        for parent in s.home.parents:
            if parent == Path("/"):
                break
            mode = parent.stat().st_mode
            if not mode & 0o001:
                raise ClusterError(f"pounce: {parent} is not searchable by the postgres user; set POUNCE_HOME elsewhere")
    s.home.chmod(0o700)
    s.sockdir.chmod(0o700)


def initialized(s: Settings) -> bool:
    return (s.datadir / "PG_VERSION").exists()


def init(s: Settings) -> bool:
    """Create the cluster if it does not exist. Returns True if it was created."""
    if initialized(s):
        return False
    _prepare_home(s)
    res = _run(s, [s.bin("initdb"), "-D", str(s.datadir), "-U", SUPERUSER,
                   "--encoding=UTF8", "--locale=C.UTF-8",
                   "--auth-local=trust", "--auth-host=scram-sha-256"], check=False)
    if res.returncode != 0:
        raise ClusterError(f"pounce: initdb failed:\n{res.stdout}{res.stderr}")
    with open(s.datadir / "postgresql.conf", "a") as f:
        f.write("\ninclude_if_exists = 'pounce.conf'\n")
    return True


def _give_to_postgres(path: Path) -> None:
    if is_root():
        pg = pwd.getpwnam("postgres")
        os.chown(path, pg.pw_uid, pg.pw_gid)


def _write_server_conf(s: Settings) -> None:
    conf = s.datadir / "pounce.conf"
    conf.write_text(SERVER_CONF.format(port=s.port, sockdir=s.sockdir, dbname=s.dbname))
    _give_to_postgres(conf)


def _postmaster_pid(s: Settings) -> int | None:
    try:
        return int((s.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def running(s: Settings) -> bool:
    """A postmaster of this data directory is alive (not merely a pid file whose pid is
    alive: after a crash it may belong to another program, which fools pg_ctl status)."""
    pid = _postmaster_pid(s)
    return pid is not None and _pid_alive_as_postmaster(pid, s.datadir)


def _pid_alive_as_postmaster(pid: int, datadir: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and b"postgres" in cmdline[0] and str(datadir).encode() in b" ".join(cmdline)


def _clear_stale_pid(s: Settings) -> bool:
    """After a crash postmaster.pid stays behind. PostgreSQL itself recovers when the pid
    is dead (and refuses, rightly, while orphaned backends still hold shared memory); it
    cannot tell when the pid has since been reused by another program, and refuses to
    start. Remove the pid file and socket locks in exactly that case."""
    pidfile = s.datadir / "postmaster.pid"
    if not pidfile.exists():
        return False
    pid = _postmaster_pid(s) or -1
    if pid > 0 and (not Path(f"/proc/{pid}").exists() or _pid_alive_as_postmaster(pid, s.datadir)):
        return False
    pidfile.unlink()
    for lock in s.sockdir.glob(".s.PGSQL.*.lock"):
        lock.unlink(missing_ok=True)
    return True


def start(s: Settings, quiet: bool = False) -> str:
    """Start the cluster (creating it first if needed). A second start is a no-op."""
    say = (lambda m: None) if quiet else (lambda m: print(m, file=sys.stderr))
    created = init(s)
    if created:
        say(f"pounce: created cluster in {s.datadir}")
    if running(s):
        ensure_database(s)
        ensure_cron_scheduler(s)
        return "already running"
    _prepare_home(s)
    if _clear_stale_pid(s):
        say("pounce: removed a stale postmaster.pid left by a crash")
    _write_server_conf(s)
    if _port_in_use(s.port):
        raise ClusterError(
            f"pounce: port {s.port} on 127.0.0.1 is in use (another checkout's cluster, or another "
            f"server); stop it, or choose another port with POUNCE_PG_PORT")
    res = _run(s, [s.bin("pg_ctl"), "start", "-D", str(s.datadir), "-l", str(s.logfile),
                   "-w", "-t", "60"], check=False)
    if res.returncode != 0:
        tail = ""
        if s.logfile.exists():
            tail = "\n".join(s.logfile.read_text(errors="replace").splitlines()[-15:])
        raise ClusterError(f"pounce: server did not start:\n{res.stdout}{res.stderr}\n{tail}")
    ensure_database(s)
    ensure_cron_scheduler(s)
    say(f"pounce: PostgreSQL running on 127.0.0.1:{s.port} (socket {s.sockdir})")
    return "started"


def _port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def cron_scheduler_running(s: Settings) -> bool:
    with connect(s, "postgres") as conn:
        return conn.execute(
            "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'pg_cron launcher')").fetchone()[0]


def ensure_cron_scheduler(s: Settings, wait: float = 5.0) -> bool:
    """pg_cron's scheduler retries until its database exists, but exits for good when
    that database is dropped (pounce db reset, DROP DATABASE ... WITH (FORCE)). Restart
    the server in that case. Returns True if a restart was needed."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if cron_scheduler_running(s):
            return False
        time.sleep(0.25)
    res = _run(s, [s.bin("pg_ctl"), "restart", "-D", str(s.datadir), "-l", str(s.logfile),
                   "-m", "fast", "-w", "-t", "60"], check=False)
    if res.returncode != 0:
        raise ClusterError(f"pounce: restart for pg_cron failed:\n{res.stdout}{res.stderr}")
    deadline = time.monotonic() + wait
    while not cron_scheduler_running(s):
        if time.monotonic() > deadline:
            raise ClusterError(f"pounce: pg_cron's scheduler did not start; see {s.logfile}")
        time.sleep(0.25)
    return True


def stop(s: Settings) -> str:
    if not running(s):
        _clear_stale_pid(s) if initialized(s) else None
        return "not running"
    res = _run(s, [s.bin("pg_ctl"), "stop", "-D", str(s.datadir), "-m", "fast", "-w", "-t", "60"], check=False)
    if res.returncode != 0:
        raise ClusterError(f"pounce: stop failed:\n{res.stdout}{res.stderr}")
    return "stopped"


def destroy(s: Settings) -> None:
    """Stop and delete the whole cluster (data and secrets)."""
    stop(s)
    shutil.rmtree(s.home, ignore_errors=True)


def connect(s: Settings, dbname: str | None = None, autocommit: bool = True, **kw) -> psycopg.Connection:
    return psycopg.connect(s.conninfo(dbname), autocommit=autocommit, **kw)


def ensure_database(s: Settings, dbname: str | None = None) -> bool:
    """Create the application database (with pg_cron, which can only live in the
    database named by cron.database_name) if it is missing."""
    dbname = dbname or s.dbname
    with connect(s, "postgres") as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    if dbname == s.dbname:
        with connect(s, dbname) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
    return not exists


def drop_database(s: Settings, dbname: str) -> None:
    with connect(s, "postgres") as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def status(s: Settings) -> dict:
    """What is running and what it holds. With POUNCE_DATABASE_URL, the external database."""
    if s.external_url:
        info = {"database": _redact(s.external_url), "running": False}
        try:
            with psycopg.connect(s.external_url, connect_timeout=10) as conn:
                info["running"] = True
                info.update(_database_facts(conn))
        except psycopg.OperationalError as e:
            info["error"] = str(e).strip()
        return info
    info = {
        "home": str(s.home),
        "datadir": str(s.datadir),
        "port": s.port,
        "socket": str(s.sockdir),
        "initialized": initialized(s),
        "running": running(s),
        "url": s.url(),
    }
    if info["running"]:
        with connect(s, "postgres") as conn:
            info["databases"] = [r[0] for r in conn.execute(
                "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1")]
        try:
            with connect(s) as conn:
                info.update(_database_facts(conn))
        except psycopg.OperationalError:
            pass
    return info


def _redact(url: str) -> str:
    return psycopg.conninfo.make_conninfo(url, password="***") if "password" in psycopg.conninfo.conninfo_to_dict(url) else url


def _database_facts(conn: psycopg.Connection) -> dict:
    return {
        "server_version": conn.execute("SHOW server_version").fetchone()[0],
        "extensions": {r[0]: r[1] for r in conn.execute("SELECT extname, extversion FROM pg_extension ORDER BY 1")},
        "migration": _alembic_version(conn),
    }


def _alembic_version(conn: psycopg.Connection) -> str | None:
    row = conn.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL").fetchone()
    if not row[0]:
        return None
    r = conn.execute("SELECT version_num FROM public.alembic_version").fetchone()
    return r[0] if r else None


def wait_ready(s: Settings, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with connect(s, "postgres"):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
