"""Test harness: the real embedded PostgreSQL cluster, a migrated template database built
once per session, and a fresh clone of it for every test.

Requests are made the way PostgREST makes them: log in as `authenticator`, and inside
one transaction set_config the role, the JWT claims and the request GUCs, run the
db-pre-request function, then the statement (see `api_request`).
"""

from __future__ import annotations

import contextlib
import json
import sys
import uuid

import psycopg
import pytest
from psycopg import sql

from pounce import cluster, schema
from pounce.config import Settings, load_secrets
from pounce.config import settings as load_settings

TEMPLATE = "pounce_test_template"


@pytest.fixture(scope="session")
def settings() -> Settings:
    s = load_settings()
    if s.external_url:
        pytest.exit("tests run against the embedded cluster; unset POUNCE_DATABASE_URL", returncode=2)
    cluster.start(s, quiet=True)
    return s


@pytest.fixture(scope="session")
def secrets(settings) -> dict[str, str]:
    return load_secrets(settings)


@pytest.fixture(scope="session")
def template_db(settings, secrets) -> str:
    """Built the way production is: alembic upgrade head, then `configure` (secrets,
    role passwords, reference data). Rebuilt every session so it matches the tree."""
    # a session that was killed leaves its template behind, still flagged as one
    with cluster.connect(settings, "postgres") as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [TEMPLATE]).fetchone():
            conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(TEMPLATE)))
    cluster.drop_database(settings, TEMPLATE)
    cluster.ensure_database(settings, TEMPLATE)
    schema.migrate(settings.url(TEMPLATE, driver="postgresql+psycopg"), settings.conninfo(TEMPLATE), secrets)
    with cluster.connect(settings, "postgres") as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
                     .format(sql.Identifier(TEMPLATE)))
    yield TEMPLATE
    with cluster.connect(settings, "postgres") as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false ALLOW_CONNECTIONS true")
                     .format(sql.Identifier(TEMPLATE)))
    cluster.drop_database(settings, TEMPLATE)


@contextlib.contextmanager
def scratch_database(settings: Settings, template: str | None = None, prefix: str = "t"):
    name = f"pounce_{prefix}_{uuid.uuid4().hex[:10]}"
    with cluster.connect(settings, "postgres") as conn:
        if template:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)))
        else:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        cluster.drop_database(settings, name)


@pytest.fixture(scope="session")
def scratch_db(settings):
    """scratch_db(template=None, prefix='t') -> context manager yielding a new database
    name in the test cluster (empty, or cloned from template), dropped on exit."""
    return lambda template=None, prefix="t": scratch_database(settings, template, prefix)


@pytest.fixture
def db_name(settings, template_db) -> str:
    """A fresh database cloned from the migrated template, dropped after the test."""
    with scratch_database(settings, template_db) as name:
        yield name


@pytest.fixture
def db(settings, db_name) -> psycopg.Connection:
    """Superuser connection (autocommit) to the test's own database."""
    with cluster.connect(settings, db_name) as conn:
        yield conn


@pytest.fixture
def authenticator(settings, secrets, db_name) -> psycopg.Connection:
    """Connection as PostgREST makes it: the authenticator role, over TCP, by password."""
    conn = psycopg.connect(host="127.0.0.1", port=settings.port, dbname=db_name, user="authenticator",
                           password=secrets["POUNCE_AUTHENTICATOR_PASSWORD"], autocommit=True)
    with conn:
        yield conn


class Request:
    """One PostgREST-style request transaction on the authenticator connection."""

    def __init__(self, conn: psycopg.Connection, role: str, user_id, method: str, path: str):
        self.conn, self.role, self.user_id, self.method, self.path = conn, role, user_id, method, path

    def __enter__(self) -> psycopg.Connection:
        claims = {} if self.role == "anon" else {"role": self.role, "sub": str(self.user_id)}
        self.tx = self.conn.transaction()
        self.tx.__enter__()
        try:
            self.conn.execute(
                "SELECT set_config('role', %s, true), set_config('request.jwt.claims', %s, true),"
                " set_config('request.method', %s, true), set_config('request.path', %s, true),"
                " set_config('request.headers', '{}', true)",
                [self.role, json.dumps(claims), self.method, self.path])
            self.conn.execute("SELECT api.check_request()")
        except BaseException:
            self.tx.__exit__(*sys.exc_info())
            raise
        return self.conn

    def __exit__(self, *exc):
        # Leave the transaction block as PostgREST does: commit, or roll back on error.
        return self.tx.__exit__(*exc)


@pytest.fixture
def api_request(authenticator):
    """api_request(role, user_id=None, method='GET', path='/') -> context manager giving the
    connection inside the request's transaction (rolled back on error)."""

    def make(role: str = "anon", user_id=None, method: str = "GET", path: str = "/") -> Request:
        return Request(authenticator, role, user_id, method, path)

    return make


@pytest.fixture
def make_user(db):
    """make_user(email=None, password=..., role=..., tier=...) -> (user_id, session) via
    api.signup, as anon would; role and plan set afterwards as an admin would."""
    counter = iter(range(1, 10_000))

    def make(email: str | None = None, password: str = "correct horse 42", role: str = "member",
             tier: str = "scout"):
        email = email or f"user{next(counter)}-{uuid.uuid4().hex[:6]}@example.com"
        session = db.execute("SELECT api.signup(%s, %s)", [email, password]).fetchone()[0]
        if role != "member" or tier != "scout":
            db.execute("UPDATE pounce.users SET role = %s, tier = %s WHERE id = %s",
                       [role, tier, session["user_id"]])
        return uuid.UUID(session["user_id"]), session

    return make


@pytest.fixture
def tycoon(make_user):
    """A member on the Tycoon plan (the highest limits)."""
    return make_user(tier="tycoon")[0]


# ======================================================================================
# HTTP API suites (test_api_*.py): one scratch database (the migrated template plus
# tests/api/fixture.sql) and one local API server for the session; or, with
# POUNCE_API_TEST_URL set, a real PostgREST (see tests/api_support.py).
# ======================================================================================

@pytest.fixture(scope="session")
def api_target(request, tmp_path_factory):
    import os

    from api_support import FIXTURE_SQL, REMOTE_URL, ApiTarget, ServerProcess

    if REMOTE_URL:
        yield ApiTarget(REMOTE_URL, os.environ["POUNCE_API_TEST_DSN"], os.environ["POUNCE_JWT_SECRET"], None)
        return
    s = request.getfixturevalue("settings")
    secrets = request.getfixturevalue("secrets")
    template = request.getfixturevalue("template_db")
    with scratch_database(s, template, prefix="api") as name:
        with cluster.connect(s, name) as conn:
            conn.execute(FIXTURE_SQL.read_text())
        db_uri = s.tcp_url("authenticator", secrets["POUNCE_AUTHENTICATOR_PASSWORD"], name)
        server = ServerProcess(db_uri, secrets["POUNCE_JWT_SECRET"], tmp_path_factory.mktemp("api"))
        try:
            yield ApiTarget(server.url, s.conninfo(name), secrets["POUNCE_JWT_SECRET"], server, db_uri)
        finally:
            server.stop()


@pytest.fixture(scope="session")
def api_dsn(api_target):
    return api_target.dsn


@pytest.fixture
def anon_http(api_target):
    c = api_target.client()
    yield c
    c.close()


@pytest.fixture
def api_user(api_target):
    """api_user() -> (user_id, token, Http as that member), signed up over HTTP."""
    from api_support import Http

    made = []

    def make(password: str = "correct horse 42"):
        c = api_target.client()
        email = f"api-{uuid.uuid4().hex[:10]}@example.com"
        r = c.post("/rpc/signup", {"email": email, "password": password})
        assert r.status == 200, r
        session = r.json()
        client = Http(api_target.url, session["token"])
        made.append(client)
        client.email = email
        return uuid.UUID(session["user_id"]), session["token"], client

    yield make
    for c in made:
        c.close()
