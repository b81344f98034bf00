"""Helpers for the HTTP suites (test_api_*.py): a small HTTP client, the local API
server as a real subprocess, and JWTs. The fixtures that use them are at the end of
conftest.py.

Conformance mode: set POUNCE_API_TEST_URL to the base URL of a running PostgREST (or
any server of the dialect), POUNCE_API_TEST_DSN to a superuser connection string of the
database it serves (migrated, with tests/api/fixture.sql applied) and POUNCE_JWT_SECRET
to its jwt-secret; the same tests then run against it. Tests of this server's own
operations (metrics, access log, shutdown) are skipped in that mode.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import jwt

REPO = Path(__file__).resolve().parent.parent
FIXTURE_SQL = REPO / "tests" / "api" / "fixture.sql"
REMOTE_URL = os.environ.get("POUNCE_API_TEST_URL")


@dataclass
class Response:
    status: int
    headers: dict[str, str]     # lower-cased names
    text: str

    def json(self):
        return json.loads(self.text)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def __repr__(self):
        return f"<{self.status} {self.text[:300]!r}>"


class Http:
    """One keep-alive connection per client; JSON in, Response out."""

    def __init__(self, base_url: str, token: str | None = None):
        u = urlsplit(base_url)
        self.host, self.port = u.hostname, u.port
        self.token = token
        self.conn: http.client.HTTPConnection | None = None

    def as_(self, token: str | None) -> "Http":
        return Http(f"http://{self.host}:{self.port}", token)

    def request(self, method: str, path: str, body=None, headers: dict | None = None,
                raw: bytes | str | None = None, timeout: float = 30) -> Response:
        hdrs = {}
        if self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        data = raw
        if body is not None:
            data = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        if isinstance(data, str):
            data = data.encode()
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                r = self.conn.getresponse()
                text = r.read().decode()
                return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, text)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def head(self, path, **kw):
        return self.request("HEAD", path, **kw)

    def close(self):
        if self.conn:
            self.conn.close()


def q(value: str) -> str:
    """URL-encode a query value (the dialect's reserved characters stay meaningful)."""
    return quote(value, safe="")


def make_token(secret: str, sub=None, role: str = "member", **extra) -> str:
    now = int(time.time())
    claims = {"role": role, "iat": now, "exp": now + 3600, **extra}
    if sub is not None:
        claims["sub"] = str(sub)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, algorithm="HS256")


class ServerProcess:
    """`pounce api serve` as a subprocess on free ports, for one database."""

    def __init__(self, db_uri: str, jwt_secret: str, workdir: Path, conf: Path | None = None,
                 extra_env: dict | None = None, args: list[str] = ()):
        self.workdir = workdir
        self.announce = workdir / f"api-{uuid.uuid4().hex[:6]}.json"
        self.log_path = workdir / (self.announce.stem + ".log")
        env = {**os.environ, "POUNCE_API_DB_URI": db_uri, "POUNCE_JWT_SECRET": jwt_secret,
               "POUNCE_API_URL": "http://127.0.0.1:3000", **(extra_env or {})}
        argv = [sys.executable, "-m", "pounce", "api", "serve", "--port", "0", "--admin-port", "0",
                "--announce-file", str(self.announce)]
        if conf:
            argv += ["--conf", str(conf)]
        argv += list(args)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.time() + 30
        while not (self.announce.exists() and self.announce.read_text().strip()):
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError("api server did not start:\n" + self.log_path.read_text())
            time.sleep(0.05)
        info = json.loads(self.announce.read_text())
        self.url, self.admin_url = info["url"], info["admin_url"]
        self.info = info

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@dataclass
class ApiTarget:
    url: str
    dsn: str                    # superuser, for set-up and for reading the catalog
    jwt_secret: str
    local: ServerProcess | None  # None in conformance mode (a real PostgREST)
    db_uri: str | None = None    # what the local server connects with (authenticator)

    def client(self, token: str | None = None) -> Http:
        return Http(self.url, token)
