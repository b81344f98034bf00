"""The local API server as a process: its configuration file, admin server (/live,
/ready, /metrics), access log, db-max-rows, schema reloads and graceful shutdown.
These are about this server, not the dialect, so they skip in conformance mode."""

from __future__ import annotations

import re
import threading
from pathlib import Path
import time
import urllib.request

import psycopg
import pytest

from api_support import REMOTE_URL, Http, ServerProcess
from pounce.api_server import conf as conf_mod

pytestmark = pytest.mark.skipif(bool(REMOTE_URL), reason="about the local server, not the dialect")


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


# --------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------

def test_conf_interpolates_environment_and_checks_the_secret(tmp_path):
    text = conf_mod.DEFAULT_CONF.read_text()
    env = {"POUNCE_API_DB_URI": "postgres://authenticator:pw@db:5432/pounce",
           "POUNCE_JWT_SECRET": "s" * 32, "POUNCE_API_URL": "https://api.example.com"}
    p = tmp_path / "c.conf"
    p.write_text(text)
    conf = conf_mod.load(p, env)
    assert conf["db-uri"] == env["POUNCE_API_DB_URI"] and conf["jwt-secret"] == "s" * 32
    assert conf["db-schemas"] == "api" and conf["db-anon-role"] == "anon"
    assert conf["db-max-rows"] == 1000 and conf["server-port"] == 3000
    with pytest.raises(SystemExit, match="at least 32"):
        conf_mod.load(p, {**env, "POUNCE_JWT_SECRET": "short"})
    with pytest.raises(SystemExit, match="POUNCE_API_URL"):
        conf_mod.load(p, {k: v for k, v in env.items() if k != "POUNCE_API_URL"})
    p.write_text('db-uri = "x"\nnot a line\n')
    with pytest.raises(SystemExit, match="line 2"):
        conf_mod.load(p, env)


# --------------------------------------------------------------------------------------
# the session's server: admin endpoints and the access log
# --------------------------------------------------------------------------------------

def test_live_ready_and_metrics_on_the_admin_port(api_target, anon_http):
    admin = api_target.local.admin_url
    assert admin != api_target.url
    assert fetch(admin + "/live")[0] == 200
    assert fetch(admin + "/ready")[0] == 200
    anon_http.get("/tiers?limit=1")
    anon_http.get("/no_such_thing")
    status, text = fetch(admin + "/metrics")
    assert status == 200
    assert re.search(r'pounce_api_requests_total\{method="GET",status="200"\} [1-9]', text), text[:2000]
    assert re.search(r'pounce_api_requests_total\{method="GET",status="404"\} [1-9]', text)
    assert "pounce_api_request_duration_seconds_bucket" in text
    assert re.search(r'pounce_api_pool_connections\{state="size"\} [1-9]', text)
    # metrics are not served on the API port
    assert anon_http.get("/metrics").status == 404


def test_access_log_has_one_line_per_request_with_duration(api_target, anon_http):
    marker = f"marker{time.time_ns()}"
    anon_http.get(f"/tiers?select=tier&tier=neq.{marker}")
    deadline = time.time() + 5
    while marker not in api_target.local.log_text() and time.time() < deadline:
        time.sleep(0.05)
    line = next(ln for ln in api_target.local.log_text().splitlines() if marker in ln)
    assert re.search(r'"GET /tiers\?select=tier&tier=neq\.' + marker + r' HTTP/1\.1"|"GET /tiers\?select=tier&tier=neq\.'
                     + marker + '"', line), line
    assert re.search(r" 200 \d+\.\dms", line), line


def test_schema_cache_reloads_on_notify(api_target, anon_http):
    assert anon_http.get("/conformance_late").status == 404
    with psycopg.connect(api_target.dsn, autocommit=True) as conn:
        conn.execute("CREATE VIEW api.conformance_late WITH (security_invoker = true) AS SELECT 1 AS one")
        conn.execute("COMMENT ON VIEW api.conformance_late IS 'Conformance fixture: added at run time.'")
        conn.execute("GRANT SELECT ON api.conformance_late TO anon, member")
        conn.execute("NOTIFY pgrst, 'reload schema'")
        try:
            deadline = time.time() + 10
            while anon_http.get("/conformance_late").status == 404 and time.time() < deadline:
                time.sleep(0.1)
            r = anon_http.get("/conformance_late")
            assert r.status == 200 and r.json() == [{"one": 1}]
        finally:
            conn.execute("DROP VIEW api.conformance_late")
            conn.execute("NOTIFY pgrst, 'reload schema'")
    deadline = time.time() + 10
    while anon_http.get("/conformance_late").status != 404 and time.time() < deadline:
        time.sleep(0.1)
    assert anon_http.get("/conformance_late").status == 404


# --------------------------------------------------------------------------------------
# a second server with its own configuration
# --------------------------------------------------------------------------------------

@pytest.fixture
def small_server(api_target, tmp_path):
    conf = tmp_path / "small.conf"
    conf.write_text(conf_mod.DEFAULT_CONF.read_text().replace("db-max-rows = 1000", "db-max-rows = 3"))
    server = ServerProcess(api_target.db_uri, api_target.jwt_secret, tmp_path, conf=conf)
    yield server
    server.stop()


def test_db_max_rows_caps_every_response(small_server):
    c = Http(small_server.url)
    r = c.get("/conformance_items?order=id", headers={"Prefer": "count=exact"})
    assert [x["id"] for x in r.json()] == [1, 2, 3]
    assert r.status == 206 and r.header("Content-Range") == "0-2/10"
    assert len(c.get("/conformance_items?limit=50").json()) == 3
    assert len(c.get("/rpc/conformance_squares?n=10").json()) == 3
    assert [x["id"] for x in c.get("/conformance_items?order=id&offset=8").json()] == [9, 10]
    c.close()


def test_graceful_shutdown_finishes_in_flight_requests(small_server):
    result = {}

    def slow():
        c = Http(small_server.url)
        result["r"] = c.post("/rpc/conformance_sleep", {"seconds": 1.5})

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)
    t0 = time.time()
    rc = small_server.stop()
    t.join(10)
    assert rc == 0, small_server.log_text()
    assert result["r"].status == 200 and result["r"].json() == 1.5
    assert time.time() - t0 >= 0.5
    # and it no longer accepts connections
    with pytest.raises(OSError):
        Http(small_server.url).get("/tiers")
    assert "stopped" in small_server.log_text()


def test_requests_survive_lost_database_connections(api_target, tmp_path):
    """Pooled connections killed under the server (a database restart): the next request
    gets a fresh connection and succeeds, nothing of it having run on the dead one."""
    appname = f"pounce-api-test-{time.time_ns()}"
    server = ServerProcess(api_target.db_uri, api_target.jwt_secret, tmp_path,
                           extra_env={"POUNCE_API_APPNAME": appname})
    try:
        c = Http(server.url)
        assert c.get("/tiers").status == 200
        with psycopg.connect(api_target.dsn, autocommit=True) as conn:
            n = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                             "WHERE usename = 'authenticator' AND application_name = %s", [appname]).fetchone()[0]
        assert n >= 2
        time.sleep(0.2)
        for _ in range(3):
            r = c.get("/tiers?select=tier")
            assert r.status == 200, r
    finally:
        server.stop()


def test_unreachable_database_is_503_not_500(api_target, tmp_path):
    """The pool keeps trying; a request that cannot get a connection in time is a 504
    (PGRST003) and /ready says 503, as PostgREST does."""
    conf = tmp_path / "t.conf"
    conf.write_text(conf_mod.DEFAULT_CONF.read_text().replace("db-pool-acquisition-timeout = 10",
                                                               "db-pool-acquisition-timeout = 1"))
    appname = f"pounce-api-test-{time.time_ns()}"
    server = ServerProcess(api_target.db_uri, api_target.jwt_secret, tmp_path, conf=conf,
                           extra_env={"POUNCE_API_APPNAME": appname})
    try:
        with psycopg.connect(api_target.dsn, autocommit=True) as conn:
            # every pooled connection of this server is killed; new ones are refused by a
            # connection limit on the role for the moment
            conn.execute("ALTER ROLE authenticator CONNECTION LIMIT 0")
            try:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE usename = 'authenticator' AND application_name = %s", [appname])
                time.sleep(0.3)
                r = Http(server.url).get("/tiers")
                assert r.status in (503, 504), r
                assert r.json()["code"] in ("PGRST001", "PGRST003")
                assert fetch(server.admin_url + "/ready")[0] == 503
            finally:
                conn.execute("ALTER ROLE authenticator CONNECTION LIMIT -1")
        deadline = time.time() + 15
        while time.time() < deadline and Http(server.url).get("/tiers").status != 200:
            time.sleep(0.3)
        assert Http(server.url).get("/tiers").status == 200
    finally:
        server.stop()


def test_several_workers_share_the_port_and_the_metrics(api_target, tmp_path):
    server = ServerProcess(api_target.db_uri, api_target.jwt_secret, tmp_path, args=["--workers", "2"])
    try:
        assert server.info["workers"] == 2
        kids = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()
        assert len(kids) == 2
        clients = [Http(server.url) for _ in range(6)]   # separate connections, spread by the kernel
        for _ in range(5):
            for c in clients:
                assert c.get("/tiers?select=tier").status == 200
        assert fetch(server.admin_url + "/live")[0] == 200
        assert fetch(server.admin_url + "/ready")[0] == 200
        status, text = fetch(server.admin_url + "/metrics")
        m = re.search(r'pounce_api_requests_total\{method="GET",status="200"\} ([0-9.]+)', text)
        assert m and float(m.group(1)) == 30.0, text[:1500]
        # a slow request in flight is finished before the workers exit
        result = {}
        t = threading.Thread(target=lambda: result.update(r=Http(server.url).post("/rpc/conformance_sleep",
                                                                                   {"seconds": 1.0})))
        t.start()
        time.sleep(0.4)
        assert server.stop() == 0, server.log_text()
        t.join(10)
        assert result["r"].status == 200
        assert not any(Path(f"/proc/{k}").exists() and b"pounce" in Path(f"/proc/{k}/cmdline").read_bytes()
                       for k in kids)
    finally:
        server.stop()
