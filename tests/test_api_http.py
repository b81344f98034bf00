"""The REST dialect over HTTP, feature by feature, against the local API server (or a
real PostgREST: see tests/api_support.py). Read tests use the ten fixed rows of
api.conformance_items (tests/api/fixture.sql); write tests make their own rows."""

from __future__ import annotations

import time
import uuid

import pytest

from api_support import make_token, q

ITEMS = "/conformance_items"


def ids(r) -> list[int]:
    assert r.status in (200, 206), r
    return [row["id"] for row in r.json()]


def assert_error(r, status: int, code: str | None = None):
    assert r.status == status, r
    body = r.json()
    assert set(body) == {"code", "message", "details", "hint"}, body
    if code:
        assert body["code"] == code, body
    return body


# --------------------------------------------------------------------------------------
# filters
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("query, expected", [
    ("id=eq.3", [3]),
    ("id=neq.3&id=lte.4", [1, 2, 4]),
    ("price=gt.4", [5, 8]),
    ("price=gte.4", [4, 5, 8]),
    ("qty=lt.5", [3, 8]),
    ("qty=lte.5", [3, 5, 8]),
    ("name=like.*an*", [2]),
    ("name=like.G*", [7]),
    ("name=ilike.g*", [7]),
    ("name=ilike.*E*&id=lt.4", [1, 3]),
    ("id=in.(1,3,5)", [1, 3, 5]),
    ("name=in.(" + q('"date, dried"') + ",apple)", [1, 4]),
    ("name=in.(" + q('"elder (berry)"') + ")", [5]),
    ("name=in.()", []),
    ("price=is.null", [3, 10]),
    ("price=not.is.null&id=lt.4", [1, 2]),
    ("active=is.true", [1, 2, 5, 7, 8]),
    ("active=is.false", [3, 6, 10]),
    ("active=is.null", [4, 9]),
    ("id=not.in.(1,2,3,4,5,6,7,8)", [9, 10]),
    ("name=not.like.*e*", [2, 6, 9]),
    ("name=eq." + q("date, dried"), [4]),
    ("name=eq." + q('fig "black"'), [6]),
    ("name=eq.kiwi.gold", [9]),
    ("tags=cs.{red}", [1, 3]),
    ("tags=cd.{fruit,red,green}", [1, 3, 4, 5, 7, 10]),
    ("tags=ov.{melon,purple}", [6, 8]),
    ("name=match.^[a-c]", [1, 2, 3]),
    ("name=imatch.^g", [7]),
    ("id=eq(any).{2,4}", [2, 4]),
    ("name=like(any).{a*,b*}", [1, 2]),
    ("data->>color=eq.green", [7, 8]),
    ("data->n=gt.8", [9]),
    ("created_at=gte.2026-01-09T00:00:00Z", [9, 10]),
    ("id=isdistinct.1&id=lt.3", [2]),
])
def test_filters(anon_http, query, expected):
    assert ids(anon_http.get(f"{ITEMS}?{query}&order=id")) == expected


def test_long_in_lists(anon_http):
    values = ",".join(str(i) for i in range(3, 3000))          # a request line of ~14 KB
    assert ids(anon_http.get(f"{ITEMS}?select=id&id=in.({values})&order=id")) == [3, 4, 5, 6, 7, 8, 9, 10]


@pytest.mark.parametrize("query, expected", [
    ("or=(id.eq.1,id.eq.10)", [1, 10]),
    ("or=(price.gt.5,qty.is.null)", [4, 5, 8, 10]),
    ("and=(active.is.true,price.lt.2)", [1, 2]),
    ("or=(id.eq.1,and(price.gt.5,qty.lt.5))", [1, 8]),
    ("not.or=(id.lt.9,price.is.null)", [9]),
    ("or=(id.eq.2,not.and(id.gt.1,id.lt.10))", [1, 2, 10]),
    ("or=(name.eq." + q('"date, dried"') + ",name.eq." + q('"elder (berry)"') + ")", [4, 5]),
    ("or=(name.in.(" + q('"date, dried"') + ",lime),id.eq.1)", [1, 4, 10]),
    ("or=(tags.cs.{melon},data->>color.eq.purple)", [6, 8]),
    ("or=(name.like.*i*)&or=(id.eq.1,id.eq.9)", [9]),
    ("id=gt.5&or=(active.is.false,active.is.null)", [6, 9, 10]),
])
def test_logic_trees(anon_http, query, expected):
    assert ids(anon_http.get(f"{ITEMS}?{query}&order=id")) == expected


# --------------------------------------------------------------------------------------
# select, order
# --------------------------------------------------------------------------------------

def test_select_columns_alias_and_cast(anon_http):
    r = anon_http.get(f"{ITEMS}?select=id,label:name,price::text,cost:price::float8,color:data->>color&id=eq.1")
    assert r.status == 200
    assert r.json() == [{"id": 1, "label": "apple", "price": "1.50", "cost": 1.5, "color": "red"}]
    r = anon_http.get(f"{ITEMS}?select=*&id=eq.2")
    assert set(r.json()[0]) == {"id", "name", "price", "qty", "tags", "data", "active", "created_at"}
    assert r.json()[0]["tags"] == ["fruit", "yellow"] and r.json()[0]["data"] == {"color": "yellow", "n": 2}


def test_order_directions_nulls_and_several_keys(anon_http):
    assert ids(anon_http.get(f"{ITEMS}?order=price.desc.nullslast,id")) == [5, 8, 4, 7, 6, 1, 9, 2, 3, 10]
    assert ids(anon_http.get(f"{ITEMS}?order=price.asc.nullsfirst,id")) == [3, 10, 2, 9, 1, 6, 7, 4, 8, 5]
    assert ids(anon_http.get(f"{ITEMS}?order=active.desc,id.desc&select=id")) == [9, 4, 8, 7, 5, 2, 1, 10, 6, 3]
    assert ids(anon_http.get(f"{ITEMS}?order=data->>color.desc.nullslast,id&limit=3")) == [2, 1, 3]


# --------------------------------------------------------------------------------------
# ranges, counts, statuses
# --------------------------------------------------------------------------------------

def test_limit_offset_and_content_range(anon_http):
    r = anon_http.get(f"{ITEMS}?order=id&limit=3&offset=2")
    assert ids(r) == [3, 4, 5] and r.status == 200
    assert r.header("Content-Range") == "2-4/*"
    r = anon_http.get(f"{ITEMS}?order=id&limit=3&offset=2", headers={"Prefer": "count=exact"})
    assert r.status == 206 and r.header("Content-Range") == "2-4/10"
    r = anon_http.get(f"{ITEMS}?order=id", headers={"Prefer": "count=exact"})
    assert r.status == 200 and r.header("Content-Range") == "0-9/10"
    r = anon_http.get(f"{ITEMS}?id=gt.100", headers={"Prefer": "count=exact"})
    assert r.status == 200 and r.json() == [] and r.header("Content-Range") == "*/0"
    r = anon_http.get(f"{ITEMS}?id=gt.100")
    assert r.header("Content-Range") == "*/*"


def test_range_header(anon_http):
    r = anon_http.get(f"{ITEMS}?order=id", headers={"Range": "0-1", "Range-Unit": "items", "Prefer": "count=exact"})
    assert ids(r) == [1, 2] and r.status == 206 and r.header("Content-Range") == "0-1/10"
    r = anon_http.get(f"{ITEMS}?order=id", headers={"Range": "8-"})
    assert ids(r) == [9, 10] and r.header("Content-Range") == "8-9/*"
    # the header and limit/offset intersect
    r = anon_http.get(f"{ITEMS}?order=id&limit=1", headers={"Range": "3-6"})
    assert ids(r) == [4]


def test_range_past_the_end_is_416(anon_http):
    r = anon_http.get(f"{ITEMS}?offset=20", headers={"Prefer": "count=exact"})
    body = assert_error(r, 416, "PGRST103")
    assert "20" in body["details"] and r.header("Content-Range") == "*/10"
    r = anon_http.get(f"{ITEMS}?order=id", headers={"Range": "15-20", "Prefer": "count=exact"})
    assert_error(r, 416, "PGRST103")


@pytest.mark.parametrize("count", ["planned", "estimated"])
def test_planned_and_estimated_counts(anon_http, count):
    r = anon_http.get(f"{ITEMS}?limit=2&order=id", headers={"Prefer": f"count={count}"})
    assert r.status in (200, 206)
    lo_hi, total = r.header("Content-Range").split("/")
    assert lo_hi == "0-1" and int(total) > 0


def test_head_has_headers_but_no_body(anon_http):
    r = anon_http.head(f"{ITEMS}?limit=2", headers={"Prefer": "count=exact"})
    assert r.status == 206 and r.text == "" and r.header("Content-Range") == "0-1/10"


def test_singular_object(anon_http):
    obj = {"Accept": "application/vnd.pgrst.object+json"}
    r = anon_http.get(f"{ITEMS}?id=eq.2&select=id,name", headers=obj)
    assert r.status == 200 and r.json() == {"id": 2, "name": "banana"}
    assert r.header("Content-Type").startswith("application/vnd.pgrst.object+json")
    body = assert_error(anon_http.get(f"{ITEMS}?id=gt.5", headers=obj), 406, "PGRST116")
    assert "5 rows" in body["details"]
    assert_error(anon_http.get(f"{ITEMS}?id=eq.99", headers=obj), 406, "PGRST116")


def test_unsupported_accept_is_406(anon_http):
    assert_error(anon_http.get(ITEMS, headers={"Accept": "application/xml"}), 406, "PGRST107")


# --------------------------------------------------------------------------------------
# bad requests: PostgREST-style errors, never a 500
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("query, status, code", [
    ("nope=eq.1", 400, "42703"),
    ("select=id,nope", 400, "42703"),
    ("order=nope.desc", 400, "42703"),
    ("id=xx.1", 400, "PGRST100"),
    ("id=eq", 400, "PGRST100"),
    ("id=in.1,2", 400, "PGRST100"),
    ("id=in.(1,2", 400, "PGRST100"),
    ("or=(id.eq.1", 400, "PGRST100"),
    ("or=id.eq.1", 400, "PGRST100"),
    ("or=(id.eq.1,)", 400, "PGRST100"),
    ("active=is.maybe", 400, "PGRST100"),
    ("limit=-1", 400, "PGRST100"),
    ("limit=ten", 400, "PGRST100"),
    ("offset=x", 400, "PGRST100"),
    ("id=eq.abc", 400, "22P02"),
    ("created_at=gt.yesterday-ish", 400, None),
    ("select=id::nosuchtype", 400, "42704"),
    ("select=id,other(*)", 400, "PGRST200"),
    ("name=match.(", 400, "2201B"),
])
def test_bad_requests_are_4xx_with_postgrest_error_bodies(anon_http, query, status, code):
    assert_error(anon_http.get(f"{ITEMS}?{query}"), status, code)


def test_unknown_relation_and_function_are_404(anon_http):
    assert_error(anon_http.get("/no_such_view"), 404, "PGRST205")
    assert_error(anon_http.post("/rpc/no_such_function", {}), 404, "PGRST202")
    assert_error(anon_http.post("/rpc/conformance_add", {"zz": 1}), 404, "PGRST202")


def test_invalid_json_body_is_400(api_user):
    _, _, member = api_user()
    r = member.request("POST", "/conformance_notes", raw="{not json", headers={"Content-Type": "application/json"})
    assert_error(r, 400, "PGRST102")
    assert_error(member.post("/rpc/conformance_add", [1, 2]), 400, "PGRST102")
    assert_error(member.post("/conformance_notes", {"body": "nul \u0000 byte"}), 400)
    assert_error(member.post("/rpc/conformance_echo", {"payload": "x", "tags": "not an array"}), 400)


def test_unsupported_methods(anon_http):
    assert anon_http.request("PUT", f"{ITEMS}?id=eq.1", {"id": 1}).status in (400, 405)
    assert_error(anon_http.request("PATCH", "/rpc/conformance_add", {}), 405, "PGRST101")


# --------------------------------------------------------------------------------------
# writes on a view
# --------------------------------------------------------------------------------------

def test_insert_return_variants(api_user):
    uid, _, member = api_user()
    tag = uuid.uuid4().hex[:8]
    r = member.post("/conformance_notes", {"body": f"min {tag}", "n": 1})
    assert r.status == 201 and r.text == ""
    r = member.post("/conformance_notes?select=body,n,author", [{"body": f"rep1 {tag}", "n": 2}, {"body": f"rep2 {tag}"}],
                    headers={"Prefer": "return=representation"})
    assert r.status == 201, r
    assert r.json() == [{"body": f"rep1 {tag}", "n": 2, "author": str(uid)},
                        {"body": f"rep2 {tag}", "n": None, "author": str(uid)}]
    r = member.post("/conformance_notes", {"body": f"hdr {tag}"}, headers={"Prefer": "return=headers-only"})
    assert r.status == 201 and r.text == ""
    r = member.get(f"/conformance_notes?body=like.*{tag}&select=body&order=body")
    assert [x["body"] for x in r.json()] == [f"hdr {tag}", f"min {tag}", f"rep1 {tag}", f"rep2 {tag}"]


def test_insert_with_columns_parameter_like_postgrest_js(api_user):
    _, _, member = api_user()
    tag = uuid.uuid4().hex[:8]
    r = member.post('/conformance_notes?columns="body","n"&select=body,n',
                    [{"body": f"a {tag}", "n": 1, "ignored": True}, {"body": f"b {tag}"}],
                    headers={"Prefer": "return=representation"})
    assert r.status == 201, r
    assert r.json() == [{"body": f"a {tag}", "n": 1}, {"body": f"b {tag}", "n": None}]
    assert_error(member.post("/conformance_notes", {"body": "x", "nope": 1}), 400, "PGRST204")


def test_insert_errors_map_to_statuses(api_user, anon_http):
    _, _, member = api_user()
    tag = uuid.uuid4().hex[:8]
    assert member.post("/conformance_notes", {"body": f"dup {tag}"}).status == 201
    body = assert_error(member.post("/conformance_notes", {"body": f"dup {tag}"}), 409, "23505")
    assert "duplicate key" in body["message"] and body["details"]
    assert_error(member.post("/conformance_notes", {"body": ""}), 400, "23514")
    assert_error(member.post("/conformance_notes", {"n": 1}), 400, "23502")
    r = anon_http.post("/conformance_notes", {"body": f"anon {tag}"})
    assert_error(r, 401, "42501")
    assert r.header("WWW-Authenticate", ) is not None


def test_upserts(api_user):
    _, _, member = api_user()
    tag = uuid.uuid4().hex[:8]
    merge = {"Prefer": "resolution=merge-duplicates,return=representation"}
    r = member.post("/conformance_notes?on_conflict=body&select=body,n", [{"body": f"up {tag}", "n": 1}], headers=merge)
    assert r.status == 201 and r.json() == [{"body": f"up {tag}", "n": 1}]
    r = member.post("/conformance_notes?on_conflict=body&select=body,n",
                    [{"body": f"up {tag}", "n": 2}, {"body": f"up2 {tag}", "n": 3}], headers=merge)
    assert r.status == 201 and r.json() == [{"body": f"up {tag}", "n": 2}, {"body": f"up2 {tag}", "n": 3}]
    assert "resolution=merge-duplicates" in r.header("Preference-Applied")
    r = member.post("/conformance_notes?on_conflict=body&select=body,n", {"body": f"up {tag}", "n": 9},
                    headers={"Prefer": "resolution=ignore-duplicates,return=representation"})
    assert r.status == 201 and r.json() == []
    assert [x["n"] for x in member.get(f"/conformance_notes?body=like.*{tag}&order=body").json()] == [2, 3]
    assert_error(member.post("/conformance_notes", {"body": f"up {tag}"}, headers=merge), 400, "PGRST100")
    assert_error(member.post("/conformance_notes?on_conflict=nope", {"body": "x"}, headers=merge), 400, "PGRST204")
    # a conflict target without a unique index is PostgreSQL's 42P10, a 400
    assert_error(member.post("/conformance_notes?on_conflict=n", {"body": f"z {tag}", "n": 1}, headers=merge), 400, "42P10")


def test_singular_insert_rolls_back_when_not_exactly_one(api_user):
    _, _, member = api_user()
    tag = uuid.uuid4().hex[:8]
    r = member.post("/conformance_notes", [{"body": f"s1 {tag}"}, {"body": f"s2 {tag}"}],
                    headers={"Prefer": "return=representation", "Accept": "application/vnd.pgrst.object+json"})
    assert_error(r, 406, "PGRST116")
    assert member.get(f"/conformance_notes?body=like.*{tag}").json() == []


def test_update_and_delete(api_user):
    _, _, member = api_user()
    tag = uuid.uuid4().hex[:8]
    member.post("/conformance_notes", [{"body": f"u{i} {tag}", "n": i} for i in range(4)])
    r = member.patch(f"/conformance_notes?body=like.*{tag}&n=lt.2", {"n": 10})
    assert r.status == 204 and r.text == ""
    r = member.patch(f"/conformance_notes?body=eq.{q('u3 ' + tag)}&select=n,body", {"n": 33, "body": f"u3x {tag}"},
                     headers={"Prefer": "return=representation"})
    assert r.status == 200 and r.json() == [{"n": 33, "body": f"u3x {tag}"}]
    assert sorted(x["n"] for x in member.get(f"/conformance_notes?body=like.*{tag}").json()) == [2, 10, 10, 33]
    r = member.patch(f"/conformance_notes?body=like.*{tag}&n=eq.10", {"n": 11},
                     headers={"Prefer": "return=representation,count=exact"})
    assert r.status == 200 and len(r.json()) == 2
    assert_error(member.patch(f"/conformance_notes?body=like.*{tag}", {"body": ""}), 400, "23514")
    r = member.delete(f"/conformance_notes?body=like.*{tag}&n=gt.10&select=n",
                      headers={"Prefer": "return=representation"})
    assert r.status == 200 and sorted(x["n"] for x in r.json()) == [11, 11, 33]
    assert member.delete(f"/conformance_notes?body=like.*{tag}").status == 204
    assert member.get(f"/conformance_notes?body=like.*{tag}").json() == []


# --------------------------------------------------------------------------------------
# RPC
# --------------------------------------------------------------------------------------

def test_rpc_scalar_post_and_get(anon_http):
    r = anon_http.post("/rpc/conformance_add", {"a": 2, "b": 40})
    assert r.status == 200 and r.text.strip() == "42"
    assert anon_http.get("/rpc/conformance_add?a=2&b=3").json() == 5
    assert anon_http.get("/rpc/conformance_add?a=2").json() == 3      # default b
    assert_error(anon_http.get("/rpc/conformance_add?a=x"), 400, "22P02")


def test_rpc_typed_arguments(anon_http):
    r = anon_http.post("/rpc/conformance_echo", {"payload": {"k": [1, "two"]}, "tags": ["a", "b,c"],
                                                 "at": "2026-05-01T12:00:00Z"})
    assert r.json() == {"payload": {"k": [1, "two"]}, "tags": ["a", "b,c"], "at": "2026-05-01T12:00:00+00:00"}
    r = anon_http.get("/rpc/conformance_echo?payload=" + q('{"x":1}') + "&tags=" + q("{a,b}"))
    assert r.json() == {"payload": {"x": 1}, "tags": ["a", "b"], "at": None}


def test_rpc_setof_rows_accept_filters_order_limit(anon_http):
    r = anon_http.post("/rpc/conformance_cheaper?select=id,name&order=id.desc&limit=2&id=gt.1", {"max_price": 3})
    assert r.status == 200 and r.json() == [{"id": 9, "name": "kiwi.gold"}, {"id": 7, "name": "Grape"}]
    r = anon_http.get("/rpc/conformance_cheaper?max_price=3&or=(id.eq.1,id.eq.2)&order=id",
                      headers={"Prefer": "count=exact"})
    assert ids(r) == [1, 2] and r.header("Content-Range") == "0-1/2"
    r = anon_http.get("/rpc/conformance_squares?n=4&sq=gt.3&order=i.desc")
    assert r.json() == [{"i": 4, "sq": 16}, {"i": 3, "sq": 9}, {"i": 2, "sq": 4}]
    assert anon_http.get("/rpc/conformance_squares").json() == [{"i": 1, "sq": 1}, {"i": 2, "sq": 4}, {"i": 3, "sq": 9}]


def test_rpc_setof_scalar_row_and_void(anon_http):
    assert anon_http.get("/rpc/conformance_series?n=3").json() == [1, 2, 3]
    r = anon_http.get("/rpc/conformance_item?item_id=5")
    assert r.json()["name"] == "elder (berry)" and isinstance(r.json(), dict)
    r = anon_http.post("/rpc/conformance_fail", {"kind": "none"})
    assert r.status == 204 and r.text == ""
    r = anon_http.get("/rpc/conformance_item?item_id=2", headers={"Accept": "application/vnd.pgrst.object+json"})
    assert r.json()["id"] == 2


def test_rpc_get_runs_read_only(api_user):
    _, _, member = api_user()
    tag = uuid.uuid4().hex[:8]
    r = member.get(f"/rpc/conformance_write?body={tag}")
    assert_error(r, 405, "25006")
    r = member.post("/rpc/conformance_write", {"body": tag})
    assert r.status == 200 and isinstance(r.json(), int)
    assert member.get("/rpc/conformance_whoami").json()["read_only"] == "on"
    assert member.post("/rpc/conformance_whoami", {}).json()["read_only"] == "on"   # STABLE: read only


def test_rpc_errors(anon_http):
    body = assert_error(anon_http.post("/rpc/conformance_fail", {"kind": "raise"}), 400, "P0001")
    assert body == {"code": "P0001", "message": "plain failure", "details": "some detail", "hint": "some hint"}
    assert_error(anon_http.post("/rpc/conformance_fail", {"kind": "payment"}), 402, "PT402")
    r = anon_http.post("/rpc/conformance_fail", {"kind": "pgrst"})
    assert r.status == 422 and r.json() == {"code": "POUNCE1", "message": "custom", "details": "d", "hint": "h"}
    assert r.header("X-Why") == "because"
    assert_error(anon_http.get("/rpc/conformance_pick?x=1"), 300, "PGRST203")


def test_rpc_honours_response_status_and_headers(anon_http):
    r = anon_http.post("/rpc/conformance_teapot", {})
    assert r.status == 418 and r.json() == "short and stout"
    assert r.header("X-Pounce") == "tea" and r.header("Cache-Control") == "no-store"


# --------------------------------------------------------------------------------------
# the request transaction and JWTs
# --------------------------------------------------------------------------------------

def test_transaction_is_set_up_as_postgrest_does(api_target, api_user):
    uid, token, member = api_user()
    r = member.get("/rpc/conformance_whoami", headers={"X-Test": "hello"})
    w = r.json()
    assert w["current_user"] == "member" and w["claims"]["sub"] == str(uid) and w["claims"]["role"] == "member"
    assert w["method"] == "GET" and w["path"] == "/rpc/conformance_whoami" and w["x_test"] == "hello"
    assert w["search_path"].replace('"', "").replace(" ", "").startswith("api,public")
    w = api_target.client().post("/rpc/conformance_whoami", {}).json()
    assert w["current_user"] == "anon" and w["method"] == "POST"


def test_jwt_validation(api_target, api_user):
    uid, _, _ = api_user()
    secret = api_target.jwt_secret
    c = api_target.client

    def auth(token):
        return c(token).get("/rpc/conformance_whoami")

    assert auth(make_token(secret, uid)).json()["current_user"] == "member"
    # exp and nbf with 30 s of clock skew
    assert auth(make_token(secret, uid, exp=int(time.time()) - 10)).status == 200
    r = auth(make_token(secret, uid, exp=int(time.time()) - 120))
    assert_error(r, 401, "PGRST303")
    assert r.header("WWW-Authenticate").startswith("Bearer") and "expired" in r.header("WWW-Authenticate")
    assert_error(auth(make_token(secret, uid, nbf=int(time.time()) + 120)), 401, "PGRST303")
    assert auth(make_token(secret, uid, nbf=int(time.time()) + 10)).status == 200
    assert_error(auth(make_token("x" * 40, uid)), 401, "PGRST301")
    assert_error(auth("not-a-token"), 401, "PGRST301")
    assert_error(auth("a.b.c"), 401, "PGRST301")
    # no role claim: anon
    assert auth(make_token(secret, None, role=None)).json()["current_user"] == "anon"
    # a role the authenticator may not become
    assert auth(make_token(secret, uid, role="postgres")).status in (400, 401, 403)


def test_pre_request_refuses_disabled_accounts(api_target, api_user):
    import psycopg

    uid, token, member = api_user()
    assert member.get("/me").status == 200
    with psycopg.connect(api_target.dsn, autocommit=True) as conn:
        conn.execute("UPDATE pounce.users SET disabled = true WHERE id = %s", [uid])
    body = assert_error(member.get("/tiers"), 403, "42501")
    assert body["message"] == "account disabled"


def test_permission_denied_is_401_for_anon_403_for_members(anon_http, api_user):
    r = anon_http.get("/notifications")
    assert_error(r, 401, "42501")
    assert r.header("WWW-Authenticate") == "Bearer"
    _, _, member = api_user()
    assert_error(member.post("/tiers", {"tier": "x"}), 403, "42501")


def test_profile_headers(anon_http):
    assert anon_http.get(ITEMS + "?limit=1", headers={"Accept-Profile": "api"}).status == 200
    assert_error(anon_http.get(ITEMS, headers={"Accept-Profile": "pounce"}), 406, "PGRST106")


def test_cors(anon_http):
    r = anon_http.request("OPTIONS", ITEMS, headers={"Origin": "http://example.com",
                                                     "Access-Control-Request-Method": "GET"})
    assert r.status == 200 and r.header("Access-Control-Allow-Origin") == "*"
    r = anon_http.get(ITEMS + "?limit=1", headers={"Origin": "http://example.com"})
    assert r.header("Access-Control-Allow-Origin") == "*" and "Content-Range" in r.header("Access-Control-Expose-Headers")
