"""HTTP: PostgREST's request semantics over the `api` schema.

Per request, one transaction on a pooled `authenticator` connection, exactly as
PostgREST does it (DESIGN.md): BEGIN (READ ONLY for GET/HEAD and for STABLE/IMMUTABLE
functions), set_config of role, request.jwt.claims, request.method, request.path,
request.headers, request.cookies and search_path; the db-pre-request function; then one
statement that builds the JSON body in SQL; then COMMIT (ROLLBACK when a singular
response does not find exactly one row). Statements are prepared on first use, as
PostgREST does; the response GUCs are read in the main statement's own projection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import socket
import time
from dataclasses import dataclass

import jwt
import psycopg
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST
from psycopg import pq, sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from . import catalog as catalog_mod
from . import openapi
from .catalog import Catalog, Function, Relation
from .dialect import (LOGIC_KEYS, RESERVED, ApiError, Params, Source, columns_param, order_sql,
                      page_range, parse_error, select_sql, where_sql)

log = logging.getLogger("pounce.api")
access_log = logging.getLogger("pounce.api.access")

JSON_CT = "application/json; charset=utf-8"
OBJECT_MT = "application/vnd.pgrst.object+json"
OPENAPI_MT = "application/openapi+json"

SET_CONFIG = sql.SQL(
    "SELECT set_config('role', %s, true), set_config('request.jwt.claims', %s, true),"
    " set_config('request.method', %s, true), set_config('request.path', %s, true),"
    " set_config('request.headers', %s, true), set_config('request.cookies', %s, true),"
    " set_config('search_path', %s, true)")
# Read in the main statement's own projection, after its FROM (the function call) ran.
RESPONSE_GUCS = sql.SQL(
    "nullif(current_setting('response.headers', true), '') AS pgrst_response_headers,"
    " nullif(current_setting('response.status', true), '') AS pgrst_response_status")

CORS_EXPOSE = "Content-Encoding, Content-Location, Content-Range, Content-Type, Date, Location, Server, " \
              "Transfer-Encoding, Range-Unit"


# --------------------------------------------------------------------------------------
# PostgreSQL errors -> HTTP (PostgREST's table, references/errors)
# --------------------------------------------------------------------------------------

_EXACT = {"23503": 409, "23505": 409, "25006": 405, "P0001": 400, "42883": 404, "42P01": 404, "42P17": 500}
_PREFIX = {"08": 503, "09": 500, "0L": 403, "0P": 403, "25": 500, "28": 403, "2D": 500, "38": 500,
           "39": 500, "3B": 500, "40": 500, "53": 503, "54": 500, "55": 500, "57": 500, "58": 500,
           "F0": 500, "HV": 500, "P0": 500, "XX": 500}


def http_status(sqlstate: str, anonymous: bool) -> int:
    if sqlstate == "42501":
        return 401 if anonymous else 403
    if sqlstate in _EXACT:
        return _EXACT[sqlstate]
    if re.fullmatch(r"PT\d{3}", sqlstate):
        return int(sqlstate[2:])
    return _PREFIX.get(sqlstate[:2], 400)


def from_pg(e: psycopg.Error, anonymous: bool) -> ApiError:
    diag = e.diag
    if not diag.sqlstate and isinstance(e, psycopg.DataError):
        # refused by the driver before it reached the server, e.g. a NUL byte in a value
        return ApiError(400, "22021", str(e).strip())
    code = diag.sqlstate or "08000"
    if code == "PGRST":  # RAISE SQLSTATE 'PGRST': message and detail are JSON (references/errors)
        try:
            body = json.loads(diag.message_primary or "")
            extra = json.loads(diag.message_detail or "{}")
            return ApiError(int(extra.get("status", 400)), str(body.get("code", "")), str(body.get("message", "")),
                            body.get("details"), body.get("hint"), {k: str(v) for k, v in extra.get("headers", {}).items()})
        except (ValueError, AttributeError, TypeError):
            return ApiError(500, "PGRST121", "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error",
                            diag.message_primary)
    status = http_status(code, anonymous)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    message = diag.message_primary or str(e).strip()
    return ApiError(status, code, message, diag.message_detail, diag.message_hint, headers)


def error_response(err: ApiError, cors: dict[str, str] | None = None) -> web.Response:
    headers = {**err.headers, **(cors or {})}
    return web.Response(status=err.status, text=json.dumps(err.body()), content_type="application/json",
                        charset="utf-8", headers=headers)


# --------------------------------------------------------------------------------------
# request context
# --------------------------------------------------------------------------------------

@dataclass
class Ctx:
    role: str
    claims: dict
    anonymous: bool
    method: str
    path: str
    headers_json: str
    cookies_json: str
    prefer: dict[str, str]
    accept: str            # "json" | "object" | "openapi"


def parse_prefer(request: web.Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for h in request.headers.getall("Prefer", []):
        for item in h.split(","):
            item = item.strip()
            if item:
                k, _, v = item.partition("=")
                out[k.strip().lower()] = v.strip()
    return out


def negotiate(request: web.Request, root: bool = False) -> str:
    accept = request.headers.get("Accept", "").strip()
    if not accept:
        return "openapi" if root else "json"
    offered = []
    for part in accept.split(","):
        mt = part.split(";")[0].strip().lower()
        q = 1.0
        m = re.search(r";\s*q=([0-9.]+)", part)
        if m:
            try:
                q = float(m.group(1))
            except ValueError:
                q = 1.0
        offered.append((q, mt))
    offered.sort(key=lambda t: -t[0])
    for q, mt in offered:
        if q <= 0:
            continue
        if root and mt in (OPENAPI_MT, "application/json", "*/*", "application/*"):
            return "openapi"
        if mt in ("application/json", "*/*", "application/*"):
            return "json"
        if mt == OBJECT_MT:
            return "object"
    raise ApiError(406, "PGRST107", "None of these media types are available: "
                   + ", ".join(mt for _, mt in offered))


class _DeadConnection(Exception):
    pass


async def _configure_connection(conn: psycopg.AsyncConnection) -> None:
    # Every statement is prepared on first use (as PostgREST's db-prepared-statements);
    # the query shapes a frontend sends are few, so keep plenty of them.
    conn.prepared_max = 1000


class Server:
    def __init__(self, conf: dict, *, pool_size: int | None = None):
        self.conf = conf
        self.schema = str(conf.get("db-schemas", "api"))
        self.anon_role = str(conf.get("db-anon-role", "anon"))
        self.secret = str(conf["jwt-secret"])
        self.audience = conf.get("jwt-aud") or None
        self.role_claim = [k for k in str(conf.get("jwt-role-claim-key", ".role")).split(".") if k]
        self.max_rows = int(conf["db-max-rows"]) if conf.get("db-max-rows") else None
        extra = [s.strip() for s in str(conf.get("db-extra-search-path", "public")).split(",") if s.strip()]
        self.search_path = ", ".join('"' + s.replace('"', '""') + '"' for s in [self.schema, *extra])
        pre = conf.get("db-pre-request")
        # Its own statement, after the role is set: names and EXECUTE are checked as that role.
        self.pre_request = sql.SQL("SELECT {}()").format(sql.Identifier(*str(pre).split("."))) if pre else None
        self.dburi = str(conf["db-uri"])
        self.pool_size = pool_size or int(conf.get("db-pool", 10))
        self.pool: AsyncConnectionPool | None = None
        self.catalog: Catalog | None = None
        self.registry = CollectorRegistry()
        self.m_requests = Counter("pounce_api_requests", "HTTP requests", ["method", "status"], registry=self.registry)
        self.m_duration = Histogram("pounce_api_request_duration_seconds", "Request duration", ["method"],
                                    registry=self.registry,
                                    buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
        self.m_pool = Gauge("pounce_api_pool_connections", "Pool connections", ["state"], registry=self.registry,
                            multiprocess_mode="livesum")
        self.m_reloads = Counter("pounce_api_schema_cache_loads", "Schema cache loads", registry=self.registry)
        self._listener: asyncio.Task | None = None
        self._jwt_cache: dict[str, tuple] = {}

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self.pool = AsyncConnectionPool(
            self.dburi, min_size=self.pool_size, max_size=self.pool_size, open=False,
            timeout=float(self.conf.get("db-pool-acquisition-timeout", 10)), configure=_configure_connection,
            kwargs={"autocommit": True, "prepare_threshold": 1,
                    "application_name": os.environ.get("POUNCE_API_APPNAME", "pounce-api")})
        await self.pool.open(wait=True, timeout=30)
        await self.reload_schema()
        if self.conf.get("db-channel-enabled", True):
            self._listener = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._listener:
            self._listener.cancel()
        if self.pool:
            await self.pool.close()

    async def reload_schema(self) -> None:
        async with self.pool.connection() as conn:
            self.catalog = await catalog_mod.load_async(conn, self.schema)
        self.m_reloads.inc()
        log.info("schema cache loaded: %d relations, %d functions",
                 len(self.catalog.relations), sum(len(v) for v in self.catalog.functions.values()))

    async def _listen(self) -> None:
        """NOTIFY pgrst, 'reload schema' refreshes the schema cache (as PostgREST)."""
        channel = str(self.conf.get("db-channel", "pgrst"))
        first = True
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.dburi, autocommit=True) as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    if not first:  # notifications may have been missed while disconnected
                        await self.reload_schema()
                    first = False
                    async for n in conn.notifies():
                        if n.payload in ("", "reload schema"):
                            await self.reload_schema()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # reconnect after a lost connection
                log.warning("schema listener: %s; retrying in 1 s", e)
                await asyncio.sleep(1)

    def update_pool_gauges(self) -> None:
        if self.pool is not None:
            stats = self.pool.get_stats()
            self.m_pool.labels("size").set(stats.get("pool_size", 0))
            self.m_pool.labels("available").set(stats.get("pool_available", 0))
            self.m_pool.labels("waiting").set(stats.get("requests_waiting", 0))

    # ---------------------------------------------------------------- auth
    def authenticate(self, request: web.Request) -> tuple[str, dict]:
        auth = request.headers.get("Authorization")
        if not auth:
            return self.anon_role, {"role": self.anon_role}
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer":
            return self.anon_role, {"role": self.anon_role}
        token = token.strip()
        cached = self._jwt_cache.get(token)
        if cached is not None:
            role, claims, not_after, not_before = cached
            now = time.time()
            if not_before <= now <= not_after:
                return role, claims
            del self._jwt_cache[token]   # expired (or not yet valid): verify again for the error

        def fail(code: str, message: str) -> ApiError:
            return ApiError(401, code, message, headers={
                "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{message}"'})

        if not token:
            raise fail("PGRST301", "Empty JWT is sent in Authorization header")
        if token.count(".") != 2:
            raise fail("PGRST301", f"Expected 3 parts in JWT; got {token.count('.') + 1}")
        try:
            claims = jwt.decode(token, self.secret, algorithms=["HS256"], leeway=30, audience=self.audience,
                                options={"verify_aud": self.audience is not None, "require": []})
        except jwt.ExpiredSignatureError:
            raise fail("PGRST303", "JWT expired") from None
        except jwt.ImmatureSignatureError:
            raise fail("PGRST303", "JWT not yet valid") from None
        except (jwt.InvalidAudienceError, jwt.MissingRequiredClaimError):
            raise fail("PGRST303", "JWT not in audience") from None
        except jwt.InvalidIssuedAtError:
            raise fail("PGRST303", "JWT issued at future") from None
        except jwt.InvalidSignatureError:
            raise fail("PGRST301", "JWT cryptographic operation failed") from None
        except jwt.InvalidTokenError:
            raise fail("PGRST301", "JWT could not be decoded") from None
        if not isinstance(claims, dict):
            raise fail("PGRST303", "Parsing claims failed")
        role: object = claims
        for k in self.role_claim:
            role = role.get(k) if isinstance(role, dict) else None
        role = role if isinstance(role, str) and role else self.anon_role
        # Verified tokens are remembered (as PostgREST's jwt-cache-max-lifetime) until
        # exp/nbf, with the same 30 s of leeway, say otherwise.
        if len(self._jwt_cache) > 10_000:
            self._jwt_cache.clear()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        self._jwt_cache[token] = (role, claims,
                                  float(exp) + 30 if isinstance(exp, (int, float)) else float("inf"),
                                  float(nbf) - 30 if isinstance(nbf, (int, float)) else 0.0)
        return role, claims

    # ---------------------------------------------------------------- transaction
    async def transact(self, ctx: Ctx, read_only: bool, main: sql.Composable, params: dict,
                       before: list[tuple[sql.Composable, dict]] = (), decide=None):
        """Run the request's transaction; returns (main row, [before rows], response GUCs).
        A pooled connection found dead before COMMIT was sent (the database restarted) is
        replaced and the transaction retried once: nothing of it can have committed."""
        for attempt in (1, 2):
            try:
                return await self._transact(ctx, read_only, main, params, before, decide)
            except _DeadConnection as e:
                if attempt == 2:
                    raise ApiError(503, "PGRST001", "Database client error. Retrying the connection.",
                                   str(e.__cause__ or e).strip()) from None
                await self.pool.check()  # drop every other dead idle connection too

    async def _transact(self, ctx, read_only, main, params, before, decide):
        try:
            async with self.pool.connection() as conn:
                committing = False
                try:
                    # Round trips, not SQL, bound a request's cost on loopback: the set-up
                    # goes in one pipeline (one flush, one wait). Nothing in it is prepared:
                    # a statement skipped after an error in a pipeline would leave psycopg
                    # believing it prepared a statement the server never saw.
                    async with conn.pipeline():
                        await conn.execute(b"BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY" if read_only
                                           else b"BEGIN ISOLATION LEVEL READ COMMITTED", prepare=False)
                        await conn.execute(SET_CONFIG, [ctx.role, json.dumps(ctx.claims), ctx.method, ctx.path,
                                                        ctx.headers_json, ctx.cookies_json, self.search_path],
                                           prepare=False)
                        if self.pre_request is not None:
                            await conn.execute(self.pre_request, prepare=False)
                    brows = [await (await conn.execute(q, p)).fetchall() for q, p in before]
                    if decide is None:
                        # Nothing to decide: the main statement (prepared; first in its
                        # pipeline, so never skipped) and COMMIT go together.
                        committing = True
                        async with conn.pipeline():
                            cur = await conn.execute(main, params)
                            await conn.execute(b"COMMIT", prepare=False)
                        row = await cur.fetchone()
                        err = None
                    else:
                        cur = await conn.execute(main, params)
                        row = await cur.fetchone()
                    row, gucs = (row[:-2], row[-2:]) if row is not None else ((None, 0, None), None)
                    if decide is not None:
                        commit = True
                        err = None
                        try:
                            decide(row)
                        except ApiError as e:
                            commit, err = False, e
                        committing = commit
                        await conn.execute(b"COMMIT" if commit else b"ROLLBACK", prepare=False)
                    if err:
                        raise err
                    return row, brows, gucs
                except psycopg.Error as e:
                    if conn.closed or conn.broken:
                        if isinstance(e, psycopg.OperationalError) and not committing:
                            raise _DeadConnection() from e
                        raise ApiError(503, "PGRST001", "Database client error. Retrying the connection.",
                                       str(e).strip()) from None
                    if conn.info.transaction_status in (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR):
                        try:
                            await conn.execute(b"ROLLBACK", prepare=False)
                        except psycopg.Error:
                            pass
                    raise from_pg(e, ctx.anonymous) from None
        except PoolTimeout:
            raise ApiError(504, "PGRST003", "Timed out acquiring connection from connection pool.") from None

    # ---------------------------------------------------------------- responses
    def finish(self, status: int, body: str | None, headers: dict[str, str], gucs, ctype: str = JSON_CT) -> web.Response:
        guc_headers, guc_status = gucs if gucs else (None, None)
        if guc_headers:
            try:
                items = json.loads(guc_headers)
                assert isinstance(items, list)
                for obj in items:
                    assert isinstance(obj, dict)
                    for k, v in obj.items():
                        headers[str(k)] = str(v)
            except (ValueError, AssertionError):
                raise ApiError(500, "PGRST111", "response.headers guc must be a JSON array composed of objects "
                                                "with a single key and a string value") from None
        if guc_status:
            if not re.fullmatch(r"\d{3}", guc_status.strip()):
                raise ApiError(500, "PGRST112", "response.status guc must be a valid status code")
            status = int(guc_status)
        if body is None:
            return web.Response(status=status, headers=headers)
        headers.setdefault("Content-Type", ctype)
        return web.Response(status=status, body=body.encode(), headers=headers)

    # ---------------------------------------------------------------- handlers
    def context(self, request: web.Request, accept: str) -> Ctx:
        for h in ("Accept-Profile", "Content-Profile"):
            prof = request.headers.get(h)
            if prof is not None and prof != self.schema:
                raise ApiError(406, "PGRST106", f"The schema must be one of the following: {self.schema}")
        role, claims = self.authenticate(request)
        if "role" not in claims:
            claims = {**claims, "role": role}
        hdrs = {k.lower(): v for k, v in request.headers.items()}
        cookies = {k: v for k, v in request.cookies.items()}
        return Ctx(role, claims, role == self.anon_role, request.method, request.path,
                   json.dumps(hdrs), json.dumps(cookies), parse_prefer(request), accept)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.catalog is None:
            raise ApiError(503, "PGRST002", "Could not query the database for the schema cache. Retrying.")
        path = request.path
        method = request.method
        if method == "OPTIONS":
            return web.Response(status=200, headers={
                "Allow": "OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE"})
        if path == "/":
            if method not in ("GET", "HEAD"):
                raise ApiError(405, "PGRST117", f"Unsupported HTTP method: {method}")
            return await self.root(request)
        m = re.fullmatch(r"/rpc/([^/]+)/?", path)
        if m:
            return await self.rpc(request, m.group(1))
        m = re.fullmatch(r"/([^/]+)/?", path)
        if not m:
            raise ApiError(404, "PGRST125", "Invalid path specified in request URL")
        return await self.relation(request, m.group(1))

    def query_items(self, request: web.Request) -> list[tuple[str, str]]:
        return list(request.rel_url.query.items())

    # ---- GET / (OpenAPI)
    async def root(self, request: web.Request) -> web.Response:
        ctx = self.context(request, negotiate(request, root=True))
        main = sql.SQL("SELECT ({}), {}").format(sql.SQL(openapi.PRIVILEGES_SQL), RESPONSE_GUCS)
        row, _, gucs = await self.transact(ctx, True, main, {"schema": self.schema})
        doc = openapi.document(self.catalog, row[0], self.conf, self.schema)
        body = None if request.method == "HEAD" else json.dumps(doc)
        return self.finish(200, body, {}, gucs, ctype="application/openapi+json; charset=utf-8")

    # ---- reads (views and SETOF functions share this)
    def read_statement(self, ctx: Ctx, src: Source, from_sql: sql.Composable, with_sql: sql.Composable | None,
                       filters: list[tuple[str, str]], query: dict[str, str], request: web.Request, p: Params):
        if ctx.prefer.get("count") not in (None, "exact", "planned", "estimated"):
            ctx.prefer.pop("count")
        select = select_sql(src, self.catalog, query.get("select"), p)
        where = where_sql(src, filters, p)
        order = order_sql(src, query.get("order"), p)
        offset, limit = page_range(query, request.headers.get("Range"), request.headers.get("Range-Unit"),
                                   self.max_rows)
        inner = sql.SQL("SELECT {} FROM {} AS pgrst_source WHERE {}").format(select, from_sql, where)
        if order is not None:
            inner = sql.SQL("{} ORDER BY {}").format(inner, order)
        if limit is not None:
            inner = sql.SQL("{} LIMIT {}").format(inner, p.add(limit))
        if offset:
            inner = sql.SQL("{} OFFSET {}").format(inner, p.add(offset))
        count = ctx.prefer.get("count")
        count_sql = sql.SQL("(SELECT count(*) FROM {} AS pgrst_source WHERE {})").format(from_sql, where) \
            if count in ("exact", "estimated") else sql.SQL("NULL::bigint")
        body = self.body_sql(ctx)
        main = sql.SQL("{}SELECT {} AS total, count(*) AS n, {} AS body, {} FROM ({}) AS pgrst_t").format(
            sql.SQL("WITH pgrst_fn AS ({}) ").format(with_sql) if with_sql is not None else sql.SQL(""),
            count_sql, body, RESPONSE_GUCS, inner)
        before = []
        if count in ("planned", "estimated"):
            explain = sql.SQL("EXPLAIN (FORMAT JSON) {}SELECT 1 FROM {} AS pgrst_source WHERE {}").format(
                sql.SQL("WITH pgrst_fn AS ({}) ").format(with_sql) if with_sql is not None else sql.SQL(""),
                from_sql, where)
            before.append((explain, p.values))
        return main, before, offset, count

    def body_sql(self, ctx: Ctx) -> sql.Composable:
        if ctx.accept == "object":
            return sql.SQL("CASE WHEN count(*) = 1 THEN (json_agg(pgrst_t) -> 0)::text "
                           "ELSE coalesce(json_agg(pgrst_t), '[]')::text END")
        return sql.SQL("coalesce(json_agg(pgrst_t), '[]')::text")

    def singular_check(self, ctx: Ctx):
        """For a singular response (Accept: vnd.pgrst.object), the check that decides
        COMMIT or ROLLBACK; None otherwise, so the main statement and COMMIT go together."""
        if ctx.accept != "object":
            return None

        def decide(row):
            if row[1] != 1:
                raise ApiError(406, "PGRST116", "JSON object requested, multiple (or no) rows returned",
                               f"The result contains {row[1]} rows")
        return decide

    def read_response(self, ctx: Ctx, request: web.Request, row, brows, gucs, offset: int, count) -> web.Response:
        total, n, body = row
        if count == "planned" or (count == "estimated" and total is not None and self.max_rows
                                  and total > self.max_rows):
            try:
                total = int(brows[0][0][0][0]["Plan"]["Plan Rows"])
            except (IndexError, KeyError, TypeError, ValueError):
                total = None
        lower, upper = offset, offset + n - 1
        status = 200
        if total is not None:
            if lower > total:
                raise ApiError(416, "PGRST103", "Requested range not satisfiable",
                               f"An offset of {offset} was requested, but there are only {total} rows.",
                               headers={"Content-Range": f"*/{total}"})
            if (1 + upper - lower) < total:
                status = 206
        rng = f"{lower}-{upper}" if (total != 0 and lower <= upper) else "*"
        headers = {"Content-Range": f"{rng}/{'*' if total is None else total}"}
        ctype = (OBJECT_MT + "; charset=utf-8") if ctx.accept == "object" else JSON_CT
        return self.finish(status, None if request.method == "HEAD" else body, headers, gucs, ctype)

    # ---- /relation
    async def relation(self, request: web.Request, name: str) -> web.Response:
        rel = self.catalog.relations.get(name)
        method = request.method
        if method not in ("GET", "HEAD", "POST", "PATCH", "DELETE"):
            raise ApiError(405, "PGRST117", f"Unsupported HTTP method: {method}")
        ctx = self.context(request, negotiate(request))
        if rel is None:
            raise ApiError(404, "PGRST205", f"Could not find the table '{self.schema}.{name}' in the schema cache")
        src = Source(rel.name, rel.columns)
        items = self.query_items(request)
        query = {k: v for k, v in items if k in RESERVED}
        filters = [(k, v) for k, v in items if k not in RESERVED]
        p = Params()
        if method in ("GET", "HEAD"):
            main, before, offset, count = self.read_statement(ctx, src, rel.ident, None, filters, query, request, p)
            row, brows, gucs = await self.transact(ctx, True, main, p.values, before, self.singular_check(ctx))
            return self.read_response(ctx, request, row, brows, gucs, offset, count)
        return await self.mutate(request, ctx, rel, src, query, filters, p)

    async def read_json(self, request: web.Request):
        if not request.can_read_body:
            return None
        ctype = request.content_type
        raw = await request.read()
        if ctype == "application/x-www-form-urlencoded":
            from urllib.parse import parse_qsl
            return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        if ctype not in ("application/json", "application/octet-stream", "text/plain", "") and \
                not ctype.endswith("+json"):
            raise ApiError(415, "PGRST107", f"None of these media types are available: {ctype}")
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError as e:
            raise ApiError(400, "PGRST102", "Empty or invalid json", str(e)) from None

    async def mutate(self, request, ctx: Ctx, rel: Relation, src: Source, query, filters, p: Params) -> web.Response:
        method = request.method
        ret = ctx.prefer.get("return", "minimal")
        if ret not in ("minimal", "representation", "headers-only"):
            ret = "minimal"
        returning = select_sql(src, self.catalog, query.get("select"), p) if ret == "representation" \
            else sql.SQL("1 AS one")
        payload = await self.read_json(request) if method in ("POST", "PATCH") else None
        if method == "POST":
            if not rel.insertable:
                raise ApiError(405, "PGRST117", "Unsupported HTTP method: POST",
                               f"{self.schema}.{rel.name} is not insertable")
            if payload is None:
                payload = []
            rows = payload if isinstance(payload, list) else [payload]
            if not all(isinstance(r, dict) for r in rows):
                raise ApiError(400, "PGRST102", "All object keys must match",
                               "the body must be a JSON object or an array of objects")
            if "columns" in query:
                cols = columns_param(src, query["columns"])
            else:
                cols = []
                for r in rows:
                    for k in r:
                        if k not in cols:
                            cols.append(k)
                columns_param(src, ",".join('"' + c.replace('"', '\\"') + '"' for c in cols)) if cols else None
            if not rows:
                stmt = sql.SQL("SELECT {} FROM {} WHERE false").format(returning, rel.ident)
            elif not cols:
                stmt = sql.SQL("INSERT INTO {} DEFAULT VALUES RETURNING {}").format(rel.ident, returning)
                if len(rows) > 1:
                    raise ApiError(400, "PGRST102", "All object keys must match")
            else:
                idents = sql.SQL(", ").join(sql.Identifier(c) for c in cols)
                stmt = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM json_populate_recordset(NULL::{}, {}::json) "
                               "{} RETURNING {}").format(rel.ident, idents, idents, rel.ident,
                                                         p.add(json.dumps(rows)),
                                                         self.on_conflict(ctx, src, query, cols), returning)
            ok_status = 201
        elif method == "PATCH":
            if not rel.updatable:
                raise ApiError(405, "PGRST117", "Unsupported HTTP method: PATCH",
                               f"{self.schema}.{rel.name} is not updatable")
            if "limit" in query or "offset" in query:
                raise parse_error("limit/offset on PATCH is not supported by the local API server")
            if payload is None:
                payload = {}
            if not isinstance(payload, dict):
                raise ApiError(400, "PGRST102", "Empty or invalid json", "PATCH takes one JSON object")
            cols = list(payload)
            if "columns" in query:
                cols = columns_param(src, query["columns"])
            else:
                columns_param(src, ",".join('"' + c.replace('"', '\\"') + '"' for c in cols)) if cols else None
            where = where_sql(src, filters, p)
            if not cols:
                stmt = sql.SQL("SELECT {} FROM {} WHERE false").format(returning, rel.ident)
            else:
                idents = sql.SQL(", ").join(sql.Identifier(c) for c in cols)
                target = sql.SQL("({})").format(idents) if len(cols) > 1 else idents
                stmt = sql.SQL("UPDATE {} SET {} = (SELECT {} FROM json_populate_record(NULL::{}, {}::json)) "
                               "WHERE {} RETURNING {}").format(
                    rel.ident, target, idents, rel.ident, p.add(json.dumps(payload)), where, returning)
            ok_status = 200 if ret == "representation" else 204
        else:  # DELETE
            if not rel.deletable:
                raise ApiError(405, "PGRST117", "Unsupported HTTP method: DELETE",
                               f"{self.schema}.{rel.name} is not deletable")
            if "limit" in query or "offset" in query:
                raise parse_error("limit/offset on DELETE is not supported by the local API server")
            where = where_sql(src, filters, p)
            stmt = sql.SQL("DELETE FROM {} WHERE {} RETURNING {}").format(rel.ident, where, returning)
            ok_status = 200 if ret == "representation" else 204
        body = self.body_sql(ctx) if ret == "representation" else sql.SQL("NULL::text")
        main = sql.SQL("WITH pgrst_source AS ({}) SELECT NULL::bigint, count(*), {}, {} FROM pgrst_source AS pgrst_t"
                       ).format(stmt, body, RESPONSE_GUCS)
        row, _, gucs = await self.transact(ctx, False, main, p.values, (), self.singular_check(ctx))
        n = row[1]
        if method == "POST":
            rng = "*/*"
        else:
            rng = f"0-{n - 1}/*" if n else "*/*"
        if ctx.prefer.get("count") == "exact":
            rng = rng[:-1] + str(n)
        headers = {"Content-Range": rng}
        applied = [f"return={ret}"] if ret != "minimal" else []
        if method == "POST" and ctx.prefer.get("resolution") in ("merge-duplicates", "ignore-duplicates"):
            applied.insert(0, f"resolution={ctx.prefer['resolution']}")
        if applied:
            headers["Preference-Applied"] = ", ".join(applied)
        if ret == "representation":
            ctype = (OBJECT_MT + "; charset=utf-8") if ctx.accept == "object" else JSON_CT
            return self.finish(ok_status, row[2], headers, gucs, ctype)
        return self.finish(ok_status if method == "POST" else 204, None, headers, gucs)

    def on_conflict(self, ctx: Ctx, src: Source, query: dict, cols: list[str]) -> sql.Composable:
        """Upserts: Prefer: resolution=merge-duplicates|ignore-duplicates with on_conflict=
        naming the unique columns (a view has no primary key of its own to default to)."""
        resolution = ctx.prefer.get("resolution")
        if resolution not in ("merge-duplicates", "ignore-duplicates"):
            return sql.SQL("")
        if "on_conflict" not in query:
            raise parse_error("on_conflict is required with Prefer: resolution",
                              "name the unique column(s): ?on_conflict=col1,col2")
        target = columns_param(src, query["on_conflict"])
        if not target:
            raise parse_error("on_conflict names no column")
        conflict = sql.SQL(", ").join(sql.Identifier(c) for c in target)
        if resolution == "ignore-duplicates":
            return sql.SQL("ON CONFLICT ({}) DO NOTHING").format(conflict)
        updates = [c for c in cols if c not in target] or target[:1]
        return sql.SQL("ON CONFLICT ({}) DO UPDATE SET {}").format(conflict, sql.SQL(", ").join(
            sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in updates))

    # ---- /rpc/fn
    def pick_function(self, name: str, given: set[str], get: bool, single_body: bool) -> Function:
        candidates = self.catalog.functions.get(name, [])
        fits = []
        for f in candidates:
            if single_body and f.single_unnamed_json:
                fits.append(f)
                continue
            names = {a.name for a in f.args}
            if "" in names:
                continue
            provided = given & names if get else given
            required = {a.name for a in f.args if not a.has_default}
            if provided <= names and required <= provided:
                fits.append(f)
        if not fits:
            raise ApiError(404, "PGRST202", f"Could not find the function {self.schema}.{name}"
                           f"({', '.join(sorted(given))}) in the schema cache",
                           "Searched for the function with the given parameter names, but no matches were found "
                           "in the schema cache.")
        if len(fits) > 1:
            # the overload that uses the most of the given names wins when it is unique
            best = max(len(given & {a.name for a in f.args}) for f in fits)
            top = [f for f in fits if len(given & {a.name for a in f.args}) == best]
            if len(top) > 1:
                raise ApiError(300, "PGRST203", "Could not choose the best candidate function between: "
                               + ", ".join(f"{self.schema}.{f.name}({', '.join(a.name + ' => ' + a.type.display for a in f.args)})"
                                           for f in top))
            fits = top
        return fits[0]

    async def rpc(self, request: web.Request, name: str) -> web.Response:
        method = request.method
        if method not in ("GET", "HEAD", "POST"):
            raise ApiError(405, "PGRST101", f"Cannot use the {method} method on RPC")
        ctx = self.context(request, negotiate(request))
        items = self.query_items(request)
        p = Params()
        if method == "POST":
            payload = await self.read_json(request)
            if payload is None:
                payload = {}
            single = False
            if not isinstance(payload, dict):
                fns = self.catalog.functions.get(name, [])
                if not any(f.single_unnamed_json for f in fns):
                    raise ApiError(400, "PGRST102", "Empty or invalid json", "RPC takes a JSON object of arguments")
                single = True
            elif any(f.single_unnamed_json for f in self.catalog.functions.get(name, [])) and \
                    not any(f.args and all(a.name for a in f.args) for f in self.catalog.functions.get(name, [])):
                single = True
            fn = self.pick_function(name, set(payload) if isinstance(payload, dict) else set(), False, single)
            args = {} if fn.single_unnamed_json else payload
            rest = items
        else:
            given = {k for k, _ in items if k not in RESERVED and k not in LOGIC_KEYS}
            fn = self.pick_function(name, given, True, False)
            names = {a.name for a in fn.args}
            args = {k: v for k, v in items if k in names}
            rest = [(k, v) for k, v in items if k not in names]
            payload = None
        read_only = method in ("GET", "HEAD") or fn.read_only
        call = self.call_sql(fn, args, payload, p, typed_text=method != "POST")
        query = {k: v for k, v in rest if k in RESERVED}
        filters = [(k, v) for k, v in rest if k not in RESERVED]
        shape = fn.shape
        if shape == "rows":
            src = Source(fn.name, fn.result_columns or {})
            main, before, offset, count = self.read_statement(
                ctx, src, sql.Identifier("pgrst_fn"), sql.SQL("SELECT pgrst_call.* FROM {}").format(call),
                filters, query, request, p)
            row, brows, gucs = await self.transact(ctx, read_only, main, p.values, before, self.singular_check(ctx))
            return self.read_response(ctx, request, row, brows, gucs, offset, count)
        if filters or any(k in query for k in ("select", "order")):
            raise parse_error("filters, select and order apply only to functions that return rows",
                              f"{self.schema}.{fn.name} returns {fn.return_type.display}")
        if shape == "scalars":
            main = sql.SQL("SELECT NULL::bigint, count(*), coalesce(json_agg(pgrst_call), '[]')::text, {} FROM {}"
                           ).format(RESPONSE_GUCS, call)
        elif shape == "row":
            main = sql.SQL("SELECT NULL::bigint, 1, row_to_json(pgrst_call)::text, {} FROM {}"
                           ).format(RESPONSE_GUCS, call)
        else:  # scalar or void
            main = sql.SQL("SELECT NULL::bigint, 1, to_json(pgrst_call)::text, {} FROM {}").format(RESPONSE_GUCS, call)
        row, _, gucs = await self.transact(ctx, read_only, main, p.values)
        if shape == "void":
            return self.finish(204, None, {}, gucs)
        body = row[2] if row and row[2] is not None else "null"
        headers = {"Content-Range": "0-0/*" if shape != "scalars" else (f"0-{row[1] - 1}/*" if row[1] else "*/*")}
        return self.finish(200, None if method == "HEAD" else body, headers, gucs)

    def call_sql(self, fn: Function, args: dict, payload, p: Params, typed_text: bool = False) -> sql.Composable:
        """`api.fn(a => ..., ...) AS pgrst_call`: JSON arguments (POST) typed through
        json_to_record, as PostgREST does; query-string arguments (GET) are text given to
        each type's input function."""
        if fn.single_unnamed_json:
            return sql.SQL("{}({}::{}) AS pgrst_call").format(fn.ident, p.add(json.dumps(payload)),
                                                               fn.args[0].type.ident)
        used = [a for a in fn.args if a.name in args]
        if not used:
            return sql.SQL("{}() AS pgrst_call").format(fn.ident)
        if typed_text:
            named = sql.SQL(", ").join(sql.SQL("{} => CAST({} AS {})").format(
                sql.Identifier(a.name), p.add(str(args[a.name])), a.type.ident) for a in used)
            return sql.SQL("{}({}) AS pgrst_call").format(fn.ident, named)
        named = sql.SQL(", ").join(sql.SQL("{} => pgrst_args.{}").format(sql.Identifier(a.name), sql.Identifier(a.name))
                                  for a in used)
        coldefs = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(a.name), a.type.ident) for a in used)
        values = {a.name: args[a.name] for a in used}
        return sql.SQL("json_to_record({}::json) AS pgrst_args({}) CROSS JOIN LATERAL {}({}) AS pgrst_call").format(
            p.add(json.dumps(values)), coldefs, fn.ident, named)


# --------------------------------------------------------------------------------------
# the aiohttp application, admin server, and running it
# --------------------------------------------------------------------------------------

def make_app(server: Server) -> web.Application:
    @web.middleware
    async def middleware(request: web.Request, handler):
        t0 = time.perf_counter()
        cors = {}
        if "Origin" in request.headers:
            cors = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": CORS_EXPOSE}
            if request.method == "OPTIONS":
                cors["Access-Control-Allow-Methods"] = "GET, POST, PATCH, PUT, DELETE, OPTIONS, HEAD"
                cors["Access-Control-Allow-Headers"] = request.headers.get(
                    "Access-Control-Request-Headers", "Authorization, Content-Type, Accept, Prefer, Range")
                cors["Access-Control-Max-Age"] = "86400"
        try:
            resp = await server.handle(request)
            resp.headers.update(cors)
        except ApiError as e:
            resp = error_response(e, cors)
        except web.HTTPException as e:
            resp = error_response(ApiError(e.status, "PGRST000", e.reason), cors)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug of ours: logged with its traceback, never shown to the client
            log.exception("unhandled error on %s %s", request.method, request.path_qs)
            resp = error_response(ApiError(500, "PGRST000", "Internal server error"), cors)
        dt = time.perf_counter() - t0
        server.m_requests.labels(request.method, str(resp.status)).inc()
        server.m_duration.labels(request.method).observe(dt)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info('%s "%s %s" %d %.1fms', request.remote, request.method, request.path_qs,
                            resp.status, dt * 1000)
        return resp

    # Long query strings are normal here (in.(...) with many ids): 64 KiB request lines.
    app = web.Application(middlewares=[middleware], client_max_size=16 * 1024 * 1024,
                          handler_args={"max_line_size": 65536, "max_field_size": 65536})

    async def catch_all(request):  # the middleware answers every request
        raise AssertionError("unreachable")

    app.router.add_route("*", "/{tail:.*}", catch_all)
    return app


def make_admin_app(server: Server) -> web.Application:
    async def live(request):
        return web.Response(status=200)

    async def ready(request):
        ok = server.catalog is not None and server.pool is not None
        if ok:
            try:
                async with server.pool.connection(timeout=2) as conn:
                    await conn.execute(b"SELECT 1")
            except Exception:
                ok = False
        return web.Response(status=200 if ok else 503)

    async def metrics(request):
        server.update_pool_gauges()
        return web.Response(body=generate_latest(server.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/live", live)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    return app


def bind(host: str, port: int) -> socket.socket:
    host = {"*": "0.0.0.0", "*4": "0.0.0.0", "!4": "0.0.0.0", "*6": "::", "!6": "::"}.get(host, host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(1024)
    s.setblocking(False)
    return s


async def serve(conf: dict, host: str, port: int, admin_port: int | None, announce=print,
                shutdown_timeout: float = 10.0) -> None:
    """Run until SIGTERM/SIGINT, then stop accepting, let in-flight requests finish
    (up to shutdown_timeout seconds), and close the pool."""
    server = Server(conf)
    await server.start()
    sock = bind(host, port)
    runner = web.AppRunner(make_app(server), access_log=None, handle_signals=False,
                           shutdown_timeout=shutdown_timeout)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    admin_runner = None
    admin_url = None
    if admin_port is not None:
        asock = bind(host, admin_port)
        admin_runner = web.AppRunner(make_admin_app(server), access_log=None, handle_signals=False)
        await admin_runner.setup()
        await web.SockSite(admin_runner, asock).start()
        admin_url = _url(asock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: asyncio.ensure_future(server.reload_schema()))
    announce(json.dumps({"url": _url(sock), "admin_url": admin_url}))
    await stop.wait()
    log.info("shutting down: finishing in-flight requests")
    await runner.cleanup()
    if admin_runner:
        await admin_runner.cleanup()
    await server.stop()
    log.info("stopped")


# --------------------------------------------------------------------------------------
# several worker processes (both cores): one listening socket shared by forked workers,
# the admin server in the parent, which supervises them and aggregates their metrics
# (prometheus_client's multiprocess mode: PROMETHEUS_MULTIPROC_DIR is set before import).
# --------------------------------------------------------------------------------------

def serve_workers(conf: dict, host: str, port: int, admin_port: int | None, workers: int, announce=print,
                  shutdown_timeout: float = 10.0) -> None:
    from prometheus_client import multiprocess

    sock = bind(host, port)
    asock = bind(host, admin_port) if admin_port is not None else None
    pool_each = max(1, -(-int(conf.get("db-pool", 10)) // workers))   # db-pool is the total

    def spawn() -> int:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                if asock is not None:
                    asock.close()
                asyncio.run(_worker(conf, sock, pool_each, shutdown_timeout))
            except BaseException:
                log.exception("worker failed")
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        return pid

    children = {spawn() for _ in range(workers)}

    async def parent() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, lambda: [os.kill(c, signal.SIGUSR1) for c in children])
        admin_runner = None
        if asock is not None:
            admin_runner = web.AppRunner(_parent_admin_app(conf, children, multiprocess), access_log=None,
                                         handle_signals=False)
            await admin_runner.setup()
            await web.SockSite(admin_runner, asock).start()
        announce(json.dumps({"url": url, "admin_url": _url(asock) if asock else None, "workers": workers}))
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
            for c in list(children):   # a worker that died is replaced
                done, status = os.waitpid(c, os.WNOHANG)
                if done and not stop.is_set():
                    log.error("worker %d exited (status %d); starting another", c, status)
                    multiprocess.mark_process_dead(c)
                    children.discard(c)
                    children.add(spawn())
        log.info("shutting down %d workers", len(children))
        for c in children:
            os.kill(c, signal.SIGTERM)
        deadline = time.time() + shutdown_timeout + 10
        pending = set(children)
        while pending and time.time() < deadline:
            for c in list(pending):
                if os.waitpid(c, os.WNOHANG)[0]:
                    pending.discard(c)
                    multiprocess.mark_process_dead(c)
            await asyncio.sleep(0.05)
        for c in pending:
            os.kill(c, signal.SIGKILL)
        if admin_runner:
            await admin_runner.cleanup()
        log.info("stopped")

    url = _url(sock)
    sock.close()   # the parent never accepts; the workers hold the socket
    asyncio.run(parent())


async def _worker(conf: dict, sock: socket.socket, pool_size: int, shutdown_timeout: float) -> None:
    server = Server(conf, pool_size=pool_size)
    await server.start()
    runner = web.AppRunner(make_app(server), access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, lambda: None)   # the parent decides
    loop.add_signal_handler(signal.SIGUSR1, lambda: asyncio.ensure_future(server.reload_schema()))
    while not stop.is_set():
        server.update_pool_gauges()
        try:
            await asyncio.wait_for(stop.wait(), 5.0)
        except asyncio.TimeoutError:
            pass
    await runner.cleanup()
    await server.stop()


def _parent_admin_app(conf: dict, children: set[int], multiprocess) -> web.Application:
    def all_alive() -> bool:
        return bool(children) and all(os.path.exists(f"/proc/{c}") for c in children)

    async def live(request):
        return web.Response(status=200 if all_alive() else 500)

    async def ready(request):
        ok = all_alive()
        if ok:
            try:
                async with await psycopg.AsyncConnection.connect(str(conf["db-uri"]), connect_timeout=2) as c:
                    await c.execute(b"SELECT 1")
            except Exception:
                ok = False
        return web.Response(status=200 if ok else 503)

    async def metrics(request):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/live", live)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    return app


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"
