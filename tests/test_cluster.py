"""The embedded cluster's CLI, on a cluster of its own (own home, port and socket), so
these tests can stop, crash and restart it without disturbing the suite's cluster."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from alembic.script import ScriptDirectory

from pounce import config, schema

# the newest revision in migrations/ (what a migrated database reports)
HEAD = ScriptDirectory.from_config(schema.alembic_config("")).get_current_head()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def own_cluster():
    # World-traversable parent: as root the server runs as `postgres`, which must reach it.
    parent = Path(tempfile.mkdtemp(prefix="pounce-clitest-", dir="/tmp"))
    parent.chmod(0o755)
    env = {**os.environ, "POUNCE_HOME": str(parent / "home"), "POUNCE_PG_PORT": str(free_port())}
    env.pop("POUNCE_DATABASE_URL", None)

    def pounce(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run([sys.executable, "-m", "pounce", *args], env=env, text=True,
                             capture_output=True, timeout=300)
        if check and res.returncode != 0:
            raise AssertionError(f"pounce {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        return res

    yield pounce, env
    pounce("db", "destroy", check=False)
    shutil.rmtree(parent, ignore_errors=True)


def test_start_creates_then_is_a_no_op(own_cluster):
    pounce, env = own_cluster
    assert pounce("db", "start").stdout.strip() == "started"
    assert pounce("db", "start").stdout.strip() == "already running"
    info = json.loads(pounce("db", "status").stdout)
    assert info["running"] and info["port"] == int(env["POUNCE_PG_PORT"])
    assert info["home"] == env["POUNCE_HOME"]
    assert info["server_version"].startswith(("15", "16", "17"))
    assert "pg_cron" in info["extensions"]


def test_server_settings_and_access(own_cluster):
    pounce, env = own_cluster
    url = pounce("db", "url").stdout.strip()
    assert env["POUNCE_HOME"] in url and env["POUNCE_PG_PORT"] in url
    with psycopg.connect(url) as conn:
        settings = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN ('shared_preload_libraries', "
            "'cron.database_name', 'listen_addresses', 'server_encoding', 'lc_ctype', 'TimeZone')").fetchall())
    assert settings["shared_preload_libraries"] == "pg_cron,pg_stat_statements"
    assert settings["cron.database_name"] == "pounce"
    assert settings["listen_addresses"] == "127.0.0.1"
    assert settings["server_encoding"] == "UTF8" and settings["lc_ctype"] == "C.UTF-8"
    assert settings["TimeZone"] == "UTC"
    # TCP needs a password: loopback is not trusted.
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(host="127.0.0.1", port=int(env["POUNCE_PG_PORT"]), user="postgres", dbname="postgres",
                        password="wrong").close()


def test_migrate_creates_every_extension_and_is_idempotent(own_cluster):
    pounce, env = own_cluster
    first = json.loads(pounce("db", "migrate").stdout)
    assert first["tlds"] > 1400 and first["public_suffixes"] > 5000 and first["cron_jobs"] >= 1
    second = json.loads(pounce("db", "migrate").stdout)
    assert second == first
    info = json.loads(pounce("db", "status").stdout)
    ext = info["extensions"]
    assert {"pg_cron", "vector", "pg_trgm", "pgcrypto", "citext", "pg_stat_statements"} <= set(ext)
    assert tuple(int(x) for x in ext["vector"].split(".")[:2]) >= (0, 7)
    assert info["migration"] == HEAD
    # the login roles got the generated passwords: authenticator can log in over TCP
    assert Path(env["POUNCE_HOME"], "secrets.env").exists()
    secrets = config.load_secrets(replace(config.settings(), home=Path(env["POUNCE_HOME"])))
    with psycopg.connect(host="127.0.0.1", port=int(env["POUNCE_PG_PORT"]), dbname="pounce",
                         user="authenticator", password=secrets["POUNCE_AUTHENTICATOR_PASSWORD"]) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == "authenticator"


def cron_scheduler_alive(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT EXISTS (SELECT FROM pg_stat_activity "
                            "WHERE backend_type = 'pg_cron launcher')").fetchone()[0]


def test_pg_cron_scheduler_comes_back_after_its_database_is_dropped(own_cluster):
    """pg_cron's scheduler exits for good when its database is dropped; start (and reset)
    bring it back."""
    pounce, env = own_cluster
    admin_url = pounce("db", "url", "--dbname", "postgres").stdout.strip()
    assert cron_scheduler_alive(admin_url)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE pounce WITH (FORCE)")
    deadline = time.monotonic() + 10
    while cron_scheduler_alive(admin_url) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not cron_scheduler_alive(admin_url)
    pounce("db", "start")
    assert cron_scheduler_alive(admin_url)
    pounce("db", "reset")
    assert cron_scheduler_alive(admin_url)
    assert json.loads(pounce("db", "status").stdout)["migration"] == HEAD


def test_stale_pid_file_after_a_crash_is_recovered(own_cluster):
    pounce, env = own_cluster
    home = Path(env["POUNCE_HOME"])
    pid = int((home / "data" / "postmaster.pid").read_text().split("\n", 1)[0])
    os.kill(pid, signal.SIGKILL)  # a crash: no shutdown, the pid file stays behind
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.1)
    # Children notice the postmaster's death and exit; wait until none holds the socket.
    time.sleep(1)
    assert (home / "data" / "postmaster.pid").exists()
    res = pounce("db", "start")
    assert res.stdout.strip() == "started"
    assert json.loads(pounce("db", "status").stdout)["running"]


def test_pid_file_naming_a_reused_pid_is_recovered(own_cluster):
    """After a crash the old pid may belong to another program by the time we restart."""
    pounce, env = own_cluster
    pidfile = Path(env["POUNCE_HOME"]) / "data" / "postmaster.pid"
    assert pounce("db", "stop").stdout.strip() == "stopped"
    other = subprocess.Popen(["sleep", "60"])
    try:
        pidfile.write_text(f"{other.pid}\n{env['POUNCE_HOME']}/data\n")
        if os.geteuid() == 0:
            shutil.chown(pidfile, "postgres")
        assert pounce("db", "start").stdout.strip() == "started"
        assert int(pidfile.read_text().split("\n", 1)[0]) != other.pid
    finally:
        other.kill()


def test_a_taken_port_is_a_clear_error(own_cluster):
    pounce, env = own_cluster
    assert pounce("db", "stop").stdout.strip() in ("stopped", "not running")
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT, as PostgreSQL binds
        squatter.bind(("127.0.0.1", int(env["POUNCE_PG_PORT"])))
        squatter.listen()
        res = pounce("db", "start", check=False)
    assert res.returncode != 0
    assert f"port {env['POUNCE_PG_PORT']} on 127.0.0.1 is in use" in res.stderr and "POUNCE_PG_PORT" in res.stderr
    assert pounce("db", "start").stdout.strip() == "started"


def test_stop_then_status(own_cluster):
    pounce, env = own_cluster
    assert pounce("db", "stop").stdout.strip() == "stopped"
    assert pounce("db", "stop").stdout.strip() == "not running"
    res = pounce("db", "status", check=False)
    assert res.returncode == 3 and json.loads(res.stdout)["running"] is False
