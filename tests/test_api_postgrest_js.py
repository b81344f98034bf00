"""The official JavaScript client, @supabase/postgrest-js (pinned in tests/js/package.json
and installed by ./dev setup, never at test time), drives the API under Node: a real
frontend client works against this server unchanged."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

JS = Path(__file__).resolve().parent / "js"


def test_postgrest_js_client(api_target):
    node = shutil.which("node")
    assert node, "node is not installed (scripts/install-system.sh installs it)"
    assert (JS / "node_modules" / "@supabase" / "postgrest-js").is_dir(), \
        "tests/js/node_modules is missing: run ./dev setup (it runs npm ci in tests/js)"
    res = subprocess.run([node, str(JS / "client.mjs"), api_target.url], cwd=JS, text=True,
                         capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)

    def ok(name, status=200):
        r = out[name]
        assert r["error"] is None and r["status"] == status, (name, r)
        return r["data"]

    assert ok("filtered", 206) == [{"id": 7, "label": "Grape"}, {"id": 4, "label": "date, dried"}]
    assert out["filtered"]["count"] == 3
    assert ok("or") == [{"id": 1}, {"id": 4}, {"id": 5}]
    assert ok("nulls") == [{"id": 3}, {"id": 10}]
    assert ok("not") == [{"id": 3}, {"id": 4}, {"id": 6}, {"id": 9}, {"id": 10}]   # NOT (active IS TRUE)
    assert ok("ilike") == [{"name": "Grape"}]
    assert ok("contains") == [{"id": 1}, {"id": 3}]
    assert ok("single") == {"id": 2, "name": "banana"}
    assert ok("maybe") is None
    assert out["head"]["count"] == 10 and out["head"]["data"] is None
    assert ok("rpc_scalar") == 3
    assert ok("rpc_rows") == [{"id": 2}, {"id": 6}]
    assert ok("rpc_get")["registrable"] == "example.co.uk"
    assert [t["tier"] for t in ok("tiers")] == ["scout", "trader", "tycoon"]

    assert ok("signup")["token"] and out["login_status"] == 200
    assert ok("me")["tier"] == "scout"
    tag = out["insert"]["data"][0]["body"].split()[1]
    assert ok("insert", 201) == [{"body": f"js1 {tag}", "n": 1}, {"body": f"js2 {tag}", "n": None}]
    assert ok("insert_minimal", 201) is None
    assert sorted(ok("upsert", 201), key=str) == [{"body": f"js1 {tag}", "n": 7}, {"body": f"js4 {tag}", "n": 4}]
    assert out["duplicate"]["status"] == 409 and out["duplicate"]["error"]["code"] == "23505"
    # a mutation's representation comes in RETURNING order, as in PostgREST (order= is not applied)
    assert sorted(ok("update"), key=str) == [{"body": f"js1 {tag}", "n": 10}, {"body": f"js3 {tag}", "n": 10}]
    assert sorted(ok("delete"), key=str) == [{"body": f"js1 {tag}"}, {"body": f"js2 {tag}"}, {"body": f"js3 {tag}"}]
    assert out["delete"]["count"] == 3
    assert ok("after") == []
    assert out["anon_denied"]["status"] == 401 and out["anon_denied"]["error"]["code"] == "42501"
    assert ok("member_notifications") == []
    assert out["bad_filter"]["status"] == 400 and out["bad_filter"]["error"]["code"] == "42703"
