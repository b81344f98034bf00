"""Generic sweeps over whatever the api schema holds (every area's views and functions),
plus the foundation's objects end to end over HTTP. Nothing here names another area's
objects: each new api view or function is covered the day it lands."""

from __future__ import annotations

import psycopg
import pytest

from api_support import make_token

BAD_QUERIES = ["select=(", "order=no_such_column.desc", "{col}=eq", "{col}=zz.1", "or=({col}.eq.1",
               "limit=-1", "offset=abc", "{col}=in.(1,2", "and=()", "select={col}::no_such_type",
               "{col}=is.perhaps", "no_such_column=eq.1", "{col}=eq.%00", "{col}=in.(%00)",
               "order={col}.sideways", "select=%22", "{col}=like(any).x"]


def catalog(dsn: str):
    """(relations, functions) of the api schema with their comments and web-role grants."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rels = conn.execute("""
            SELECT c.relname, obj_description(c.oid, 'pg_class'),
                   (SELECT array_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a
                     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
                   has_any_column_privilege('anon', c.oid, 'SELECT'),
                   has_any_column_privilege('member', c.oid, 'SELECT')
            FROM pg_class c WHERE c.relnamespace = 'api'::regnamespace AND c.relkind IN ('v', 'm', 'r')
            ORDER BY 1""").fetchall()
        fns = conn.execute("""
            SELECT p.proname, obj_description(p.oid, 'pg_proc'), p.provolatile::text, p.pronargs,
                   p.pronargs - p.pronargdefaults AS required,
                   has_function_privilege('anon', p.oid, 'EXECUTE'),
                   has_function_privilege('member', p.oid, 'EXECUTE'),
                   p.prorettype = 'void'::regtype
            FROM pg_proc p WHERE p.pronamespace = 'api'::regnamespace AND p.prokind = 'f'
            ORDER BY 1""").fetchall()
    return rels, fns


@pytest.fixture(scope="module")
def api_catalog(api_target):
    return catalog(api_target.dsn)


@pytest.fixture
def clients(anon_http, api_user):
    _, _, member = api_user()
    return {"anon": anon_http, "member": member}


def test_every_api_view_answers_get_as_granted(api_catalog, clients):
    rels, _ = api_catalog
    assert len(rels) >= 3
    for name, _, columns, anon_ok, member_ok in rels:
        for role, granted in (("anon", anon_ok), ("member", member_ok)):
            r = clients[role].get(f"/{name}?limit=3")
            if granted:
                assert r.status == 200, (role, name, r)
                rows = r.json()
                assert isinstance(rows, list) and len(rows) <= 3, (role, name, r)
                assert all(set(row) == set(columns) for row in rows), (role, name, r)
                assert r.header("Content-Range"), (role, name)
                # and it counts
                r = clients[role].get(f"/{name}?limit=1", headers={"Prefer": "count=exact"})
                assert r.status in (200, 206) and r.header("Content-Range").split("/")[1].isdigit(), (name, r)
            else:
                assert r.status == (401 if role == "anon" else 403), (role, name, r)
                assert r.json()["code"] == "42501"


def test_every_api_view_refuses_bad_queries_with_4xx(api_catalog, clients):
    rels, _ = api_catalog
    for name, _, columns, anon_ok, member_ok in rels:
        if not (anon_ok or member_ok):
            continue
        client = clients["anon" if anon_ok else "member"]
        for bad in BAD_QUERIES:
            r = client.get(f"/{name}?" + bad.format(col=columns[0]))
            assert 400 <= r.status < 500, (name, bad, r)
            assert set(r.json()) == {"code", "message", "details", "hint"}, (name, bad, r)


def test_every_api_function_answers_without_a_500(api_catalog, clients):
    """Called with no arguments: a function that needs some is not found (404, as in
    PostgREST); one that needs none runs, or refuses with its own 4xx."""
    _, fns = api_catalog
    assert fns
    for name, _, volatility, nargs, required, anon_ok, member_ok, void in fns:
        for role, granted in (("anon", anon_ok), ("member", member_ok)):
            c = clients[role]
            r = c.get(f"/rpc/{name}") if volatility in ("s", "i") else c.post(f"/rpc/{name}", {})
            if required:
                assert r.status == 404 and r.json()["code"] == "PGRST202", (role, name, r)
            elif not granted:
                assert r.status == (401 if role == "anon" else 403), (role, name, r)
            else:
                assert r.status < 500, (role, name, r)
                if r.status == 204:
                    assert void and r.text == ""
                else:
                    body = r.json()  # a JSON value; an error has PostgREST's four keys
                    if r.status >= 400 and isinstance(body, dict) and "code" in body:
                        assert set(body) == {"code", "message", "details", "hint"}, (role, name, r)


def test_openapi_lists_every_api_object_with_its_comment(api_catalog, api_target, api_user):
    rels, fns = api_catalog
    _, _, member = api_user()
    for role, client in (("anon", api_target.client()), ("member", member)):
        r = client.get("/")
        assert r.status == 200 and "openapi" in r.header("Content-Type"), r
        doc = r.json()
        assert doc["swagger"] == "2.0"
        paths = doc["paths"]
        for name, comment, columns, anon_ok, member_ok in rels:
            granted = anon_ok if role == "anon" else member_ok
            assert (f"/{name}" in paths) == granted, (role, name)
            if granted:
                assert comment, f"api.{name} has no COMMENT ON"
                assert doc["definitions"][name]["description"] == comment
                assert set(doc["definitions"][name]["properties"]) == set(columns)
                get = paths[f"/{name}"]["get"]
                assert comment.startswith(get["summary"])
        comments: dict[str, list[str]] = {}
        for name, comment, volatility, nargs, required, anon_ok, member_ok, void in fns:
            granted = anon_ok if role == "anon" else member_ok
            if not granted:
                continue
            assert comment, f"api.{name}() has no COMMENT ON"
            comments.setdefault(name, []).append(comment)
            assert "post" in paths[f"/rpc/{name}"]
            if volatility in ("s", "i"):
                assert "get" in paths[f"/rpc/{name}"]
        for name, texts in comments.items():   # overloads share one path
            post = paths[f"/rpc/{name}"]["post"]
            assert any(t.startswith(post["summary"]) for t in texts), (name, post)


def test_openapi_follows_privileges(api_target, api_user):
    anon_paths = api_target.client().get("/").json()["paths"]
    _, _, member = api_user()
    member_paths = member.get("/").json()["paths"]
    assert "/notifications" not in anon_paths and "/notifications" in member_paths
    assert set(member_paths["/notifications"]) == {"get", "patch", "delete"}   # no INSERT grant
    assert "/tiers" in anon_paths and set(anon_paths["/tiers"]) == {"get"}
    assert "post" in anon_paths["/rpc/login"] and "get" not in anon_paths["/rpc/login"]   # VOLATILE
    assert "get" in anon_paths["/rpc/parse_domain"]


# --------------------------------------------------------------------------------------
# the foundation's api, end to end
# --------------------------------------------------------------------------------------

def test_signup_login_me(api_target):
    c = api_target.client()
    import uuid

    email = f"flow-{uuid.uuid4().hex[:8]}@example.com"
    r = c.post("/rpc/signup", {"email": email, "password": "correct horse 42"})
    assert r.status == 200 and set(r.json()) >= {"token", "user_id", "role", "tier", "expires_at"}
    assert c.post("/rpc/signup", {"email": email, "password": "correct horse 42"}).status == 409
    r = c.post("/rpc/signup", {"email": "x" + email, "password": "short"})
    assert r.status == 400 and "weak password" in r.json()["message"]
    r = c.post("/rpc/signup", {"email": "not-an-email", "password": "correct horse 42"})
    assert r.status == 400 and "invalid email" in r.json()["message"]
    r = c.post("/rpc/login", {"email": email, "password": "wrong password 1"})
    assert r.status == 403 and r.json()["code"] == "28P01"
    r = c.post("/rpc/login", {"email": email, "password": "correct horse 42"})
    assert r.status == 200
    session = r.json()
    me = api_target.client(session["token"])
    r = me.get("/me", headers={"Accept": "application/vnd.pgrst.object+json"})
    assert r.status == 200 and r.json()["email"] == email and r.json()["tier"] == "scout"
    assert me.get("/me").json()[0]["id"] == session["user_id"]
    r = me.post("/rpc/refresh_token", {})
    assert r.status == 200 and r.json()["token"]
    r = me.post("/rpc/change_password", {"current_password": "correct horse 42", "new_password": "battery staple 7"})
    assert r.status == 204
    assert c.post("/rpc/login", {"email": email, "password": "battery staple 7"}).status == 200
    assert c.get("/me").status == 401


def test_tiers_filters_and_order(anon_http):
    r = anon_http.get("/tiers?select=tier,price_usd_month&price_usd_month=gt.0&order=rank.desc")
    assert r.json() == [{"tier": "tycoon", "price_usd_month": 29.00}, {"tier": "trader", "price_usd_month": 9.00}]
    r = anon_http.get("/tiers?tier=eq.scout", headers={"Accept": "application/vnd.pgrst.object+json"})
    assert r.json()["name"] == "Scout"


def test_parse_domain_over_get(anon_http):
    from api_support import q

    r = anon_http.get("/rpc/parse_domain?name=" + q("www.münchen.de"))
    assert r.status == 200
    d = r.json()
    assert d["registrable"] == "xn--mnchen-3ya.de" and d["subdomain"] == "www" and d["tld"] == "de"
    r = anon_http.get("/rpc/parse_domain?name=" + q("bad..name"))
    assert 400 <= r.status < 500 and r.json()["message"]


def test_notifications_read_mark_and_dismiss(api_target, api_user):
    uid, _, member = api_user()
    other_uid, _, other = api_user()
    with psycopg.connect(api_target.dsn, autocommit=True) as conn:
        conn.execute("""INSERT INTO pounce.notifications (user_id, kind, payload)
                        SELECT u, 'test.kind', jsonb_build_object('i', i)
                        FROM unnest(%s::uuid[]) AS u, generate_series(1, 5) AS i""", [[uid, other_uid]])
    r = member.get("/notifications?read_at=is.null&order=id", headers={"Prefer": "count=exact"})
    assert r.status == 200 and len(r.json()) == 5 and r.header("Content-Range") == "0-4/5"
    first = r.json()[0]["id"]
    r = member.patch(f"/notifications?id=eq.{first}", {"read_at": "2099-01-01T00:00:00Z"},
                     headers={"Prefer": "return=representation"})
    assert r.status == 200 and r.json()[0]["read_at"].startswith("2099-01-01")
    # read_at is the only column a member may change
    assert member.patch(f"/notifications?id=eq.{first}", {"kind": "x.y"}).status == 403
    r = member.post("/rpc/mark_notifications_read", {})
    assert r.status == 200 and r.json() == 4
    assert member.get("/notifications?read_at=is.null").json() == []
    r = member.delete(f"/notifications?id=eq.{first}")
    assert r.status == 204
    assert len(member.get("/notifications").json()) == 4
    # the other member's rows were neither seen nor touched
    assert len(other.get("/notifications?read_at=is.null").json()) == 5
    assert member.delete("/notifications?kind=eq.test.kind").status == 204
    assert len(other.get("/notifications").json()) == 5


def test_member_token_signed_with_the_shared_secret(api_target, api_user):
    """A token made outside the database with the configured secret is accepted (PostgREST's
    jwt-secret is the same secret the database signs with)."""
    uid, _, _ = api_user()
    c = api_target.client(make_token(api_target.jwt_secret, uid))
    assert c.get("/me").json()[0]["id"] == str(uid)
