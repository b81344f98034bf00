"""Row-level security, tested the way PostgREST calls the database: as authenticator,
inside a transaction, with set_config('role') and set_config('request.jwt.claims').

Two members (alice, bob) and anon. No one reads or changes another user's rows through
any api object; the sweep at the bottom visits every api view and function, so an
object added later without a policy fails here."""

from __future__ import annotations

import pytest
from psycopg import errors


@pytest.fixture
def two_members(db, make_user):
    alice, _ = make_user("alice@example.com")
    bob, _ = make_user("bob@example.com")
    db.execute("""
        INSERT INTO pounce.notifications (user_id, kind, payload)
        SELECT u, 'test.note', jsonb_build_object('n', n, 'owner', u)
        FROM unnest(%s::uuid[]) AS u, generate_series(1, 3) AS n""", [[alice, bob]])
    return alice, bob


def ids_of(db, user_id):
    return {r[0] for r in db.execute("SELECT id FROM pounce.notifications WHERE user_id = %s", [user_id])}


def test_members_see_only_their_own_notifications(db, two_members, api_request):
    alice, bob = two_members
    with api_request("member", alice) as conn:
        seen = {r[0] for r in conn.execute("SELECT id FROM api.notifications")}
    assert seen == ids_of(db, alice) and len(seen) == 3
    with api_request("member", bob) as conn:
        assert {r[0] for r in conn.execute("SELECT id FROM api.notifications")} == ids_of(db, bob)


def test_members_cannot_change_or_delete_others_notifications(db, two_members, api_request):
    alice, bob = two_members
    bobs = sorted(ids_of(db, bob))
    with api_request("member", alice, "PATCH", "/notifications") as conn:
        cur = conn.execute("UPDATE api.notifications SET read_at = now() WHERE id = ANY(%s)", [bobs])
        assert cur.rowcount == 0
    with api_request("member", alice, "DELETE", "/notifications") as conn:
        assert conn.execute("DELETE FROM api.notifications WHERE id = ANY(%s)", [bobs]).rowcount == 0
    with api_request("member", alice, "POST", "/rpc/mark_notifications_read") as conn:
        assert conn.execute("SELECT api.mark_notifications_read()").fetchone()[0] == 3
    assert db.execute("SELECT count(*) FROM pounce.notifications WHERE user_id = %s AND read_at IS NULL",
                      [bob]).fetchone()[0] == 3
    assert db.execute("SELECT count(*) FROM pounce.notifications WHERE user_id = %s AND read_at IS NOT NULL",
                      [alice]).fetchone()[0] == 3


def test_members_mark_and_delete_their_own(db, two_members, api_request):
    alice, _ = two_members
    mine = sorted(ids_of(db, alice))
    with api_request("member", alice, "PATCH", "/notifications") as conn:
        assert conn.execute("UPDATE api.notifications SET read_at = now() WHERE id = %s", [mine[0]]).rowcount == 1
        assert conn.execute("SELECT count(*) FROM api.notifications WHERE read_at IS NULL").fetchone()[0] == 2
    with api_request("member", alice, "DELETE", "/notifications") as conn:
        assert conn.execute("DELETE FROM api.notifications WHERE id = %s", [mine[1]]).rowcount == 1
    assert len(ids_of(db, alice)) == 2


def test_members_cannot_forge_or_reassign_notifications(two_members, api_request):
    alice, bob = two_members
    with pytest.raises(errors.InsufficientPrivilege):
        with api_request("member", alice, "POST", "/notifications") as conn:
            conn.execute("INSERT INTO api.notifications (kind, payload) VALUES ('x', '{}')")
    with pytest.raises(errors.InsufficientPrivilege):
        with api_request("member", alice, "PATCH", "/notifications") as conn:
            conn.execute("UPDATE api.notifications SET payload = '{\"forged\": true}'")
    with pytest.raises(errors.InsufficientPrivilege):  # user_id is not even visible
        with api_request("member", alice) as conn:
            conn.execute("UPDATE pounce.notifications SET user_id = %s", [bob])


def test_me_is_only_me(two_members, api_request):
    alice, bob = two_members
    with api_request("member", alice) as conn:
        assert [r[0] for r in conn.execute("SELECT id FROM api.me")] == [alice]
        # Even a filter naming bob returns nothing: the policy applies beneath the view.
        assert conn.execute("SELECT count(*) FROM api.me WHERE id = %s", [bob]).fetchone()[0] == 0


def test_admin_reads_every_account_but_not_others_notifications(db, two_members, make_user, api_request):
    alice, bob = two_members
    admin, _ = make_user("root@example.com", role="admin")
    with api_request("admin", admin) as conn:
        assert conn.execute("SELECT count(*) FROM api.notifications").fetchone()[0] == 0
        assert [r[0] for r in conn.execute("SELECT id FROM api.me")] == [admin]


def test_anon_reads_nothing_private(two_members, api_request):
    for statement in ("SELECT * FROM api.notifications", "SELECT * FROM api.me",
                      "SELECT api.mark_notifications_read()",
                      "SELECT * FROM pounce.users", "SELECT * FROM pounce.notifications",
                      "SELECT * FROM pounce.settings"):
        with pytest.raises(errors.InsufficientPrivilege):
            with api_request("anon") as conn:
                conn.execute(statement)


def test_no_web_role_reads_secrets_or_password_hashes(two_members, make_user, api_request):
    alice, _ = two_members
    admin, _ = make_user("root@example.com", role="admin")
    for role, user_id in (("member", alice), ("admin", admin)):
        for statement in ("SELECT password_hash FROM pounce.users", "SELECT value FROM pounce.settings",
                          "SELECT pounce.setting('jwt_secret')", "SELECT pounce.jwt_sign('{}')"):
            with pytest.raises(errors.InsufficientPrivilege):
                with api_request(role, user_id) as conn:
                    conn.execute(statement)


def test_every_api_view_keeps_other_users_rows_out(db, two_members, api_request):
    """Sweep: whatever alice can select from any api view contains nothing of bob's
    (his id appears in his account and in every one of his rows' payloads), and anon
    either may not read a view or sees nothing of either member."""
    alice, bob = two_members
    views = [r[0] for r in db.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'api' AND c.relkind = 'v' ORDER BY 1")]
    assert {"notifications", "me"} <= set(views)
    seen_alice = False
    for view in views:
        if not db.execute("SELECT has_table_privilege('member', %s, 'SELECT')", [f'api."{view}"']).fetchone()[0]:
            continue  # admin-only (api.job_queue): members may not read it at all
        query = f'SELECT coalesce(string_agg(to_jsonb(v)::text, \' \'), \'\') FROM api."{view}" AS v'
        with api_request("member", alice) as conn:
            text = conn.execute(query).fetchone()[0]
        assert str(bob) not in text and "bob@example.com" not in text, f"api.{view} shows bob's rows to alice"
        seen_alice |= str(alice) in text
        try:
            with api_request("anon") as conn:
                text = conn.execute(query).fetchone()[0]
        except errors.InsufficientPrivilege:
            continue
        assert str(bob) not in text and str(alice) not in text, f"api.{view} shows members' rows to anon"
    assert seen_alice, "alice should at least see her own rows somewhere"
