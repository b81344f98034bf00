"""Sign-up, sign-in, JWTs signed in the database, plans, and the db-pre-request check."""

from __future__ import annotations

import time
import uuid

import jwt
import psycopg
import pytest
from psycopg import errors


def test_signup_returns_a_jwt_that_postgrest_would_accept(db, secrets):
    session = db.execute("SELECT api.signup('Alice@Example.com', 'correct horse 42')").fetchone()[0]
    claims = jwt.decode(session["token"], secrets["POUNCE_JWT_SECRET"], algorithms=["HS256"])
    assert claims["sub"] == session["user_id"]
    assert claims["role"] == "member"
    assert claims["email"] == "Alice@Example.com"
    assert claims["exp"] - claims["iat"] == 12 * 3600
    assert abs(claims["iat"] - time.time()) < 60
    assert jwt.get_unverified_header(session["token"]) == {"alg": "HS256", "typ": "JWT"}
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(session["token"], "x" * 32 + "not the secret", algorithms=["HS256"])
    row = db.execute("SELECT tier, role, password_hash FROM pounce.users WHERE id = %s",
                     [session["user_id"]]).fetchone()
    assert row[0] == "scout" and row[1] == "member"
    assert row[2].startswith("$2a$10$") and "correct horse" not in row[2]


def test_login_is_case_insensitive_on_email_and_updates_last_login(db, make_user, secrets):
    user_id, _ = make_user("bob@example.com", "quiet lake 19")
    session = db.execute("SELECT api.login(' BOB@example.COM ', 'quiet lake 19')").fetchone()[0]
    assert session["user_id"] == str(user_id)
    claims = jwt.decode(session["token"], secrets["POUNCE_JWT_SECRET"], algorithms=["HS256"])
    assert claims["sub"] == str(user_id)
    assert db.execute("SELECT last_login_at IS NOT NULL FROM pounce.users WHERE id = %s", [user_id]).fetchone()[0]


@pytest.mark.parametrize("email, reason", [
    ("", "an email address is required"),
    ("not-an-email", "not an email address"),
    ("a@b", "not an email address"),
    ("two@@example.com", "not an email address"),
    ("spaces in@example.com", "not an email address"),
    (".dot@example.com", "misplaced dot"),
    ("x" * 250 + "@example.com", "at most 254 characters"),
])
def test_signup_rejects_malformed_email(db, email, reason):
    with pytest.raises(errors.InvalidParameterValue, match="invalid email: .*" + reason):
        db.execute("SELECT api.signup(%s, 'correct horse 42')", [email])


@pytest.mark.parametrize("password, reason", [
    ("short1!", "at least 10 characters"),
    ("aaaaaaaaaaaa", "repeat one character"),
    ("onlyletterspassword", "mix letters with digits or symbols"),
    ("12345678901234", "mix letters with digits or symbols"),
    ("carol-the-great-1", "must not contain the email"),
    ("é" * 37, "at most 72 bytes"),
])
def test_signup_rejects_weak_password(db, password, reason):
    with pytest.raises(errors.InvalidParameterValue, match="weak password: .*" + reason):
        db.execute("SELECT api.signup('carol@example.com', %s)", [password])
    assert db.execute("SELECT count(*) FROM pounce.users").fetchone()[0] == 0


def test_duplicate_email_is_a_unique_violation_with_a_clear_message(db, make_user):
    make_user("dave@example.com")
    with pytest.raises(errors.UniqueViolation, match="an account with this email already exists"):
        db.execute("SELECT api.signup('DAVE@example.com', 'another pass 7')")


def test_wrong_password_and_unknown_email_fail_alike(db, make_user):
    make_user("erin@example.com", "tulip garden 31")
    failures = []
    for email, password in (("erin@example.com", "wrong password 1"), ("nobody@example.com", "tulip garden 31")):
        started = time.perf_counter()
        with pytest.raises(errors.InvalidPassword) as exc:
            db.execute("SELECT api.login(%s, %s)", [email, password])
        failures.append((exc.value.sqlstate, str(exc.value.diag.message_primary), time.perf_counter() - started))
    assert failures[0][:2] == failures[1][:2] == ("28P01", "invalid email or password")
    # Both paths do one bcrypt of the same cost: the same order of time, not a fast path.
    slow, fast = max(failures[0][2], failures[1][2]), min(failures[0][2], failures[1][2])
    assert fast > slow / 4, f"timing differs too much: {failures}"


def test_disabled_account_cannot_sign_in(db, make_user):
    user_id, _ = make_user("frank@example.com", "maple syrup 77")
    db.execute("UPDATE pounce.users SET disabled = true WHERE id = %s", [user_id])
    with pytest.raises(errors.InvalidAuthorizationSpecification, match="account disabled"):
        db.execute("SELECT api.login('frank@example.com', 'maple syrup 77')")


def test_pre_request_rejects_tokens_of_disabled_deleted_or_demoted_accounts(db, make_user, api_request):
    user_id, _ = make_user()
    with api_request("member", user_id) as conn:
        assert conn.execute("SELECT id FROM api.me").fetchone()[0] == user_id

    db.execute("UPDATE pounce.users SET disabled = true WHERE id = %s", [user_id])
    with pytest.raises(errors.InsufficientPrivilege, match="account disabled"):
        with api_request("member", user_id):
            pass

    db.execute("UPDATE pounce.users SET disabled = false WHERE id = %s", [user_id])
    with pytest.raises(errors.InsufficientPrivilege, match="token role is out of date"):
        with api_request("admin", user_id):
            pass

    with pytest.raises(errors.InsufficientPrivilege, match="account disabled"):
        with api_request("member", uuid.uuid4()):
            pass

    with api_request("anon") as conn:  # anon passes: there is no account to check
        assert conn.execute("SELECT count(*) FROM api.tiers").fetchone()[0] == 3


def test_me_shows_the_plan_limits(make_user, api_request, db):
    user_id, _ = make_user()
    db.execute("UPDATE pounce.users SET tier = 'trader' WHERE id = %s", [user_id])
    with api_request("member", user_id) as conn:
        rows = conn.execute("SELECT tier, watchlist_limit, check_interval::text FROM api.me").fetchall()
    assert rows == [("trader", 50, "01:00:00")]


def test_plans_are_ordered_and_limits_grow(db):
    rows = db.execute("SELECT tier, watchlist_limit, check_interval, sniper_alert_limit FROM api.tiers ORDER BY rank").fetchall()
    assert [r[0] for r in rows] == ["scout", "trader", "tycoon"]
    assert rows[0][1] < rows[1][1] < rows[2][1]
    assert rows[0][2] > rows[1][2] > rows[2][2]
    assert rows[0][3] < rows[1][3] < rows[2][3]


def test_tokens_expire_as_configured(db, secrets):
    db.execute("UPDATE pounce.settings SET value = '5 minutes' WHERE name = 'jwt_ttl'")
    session = db.execute("SELECT api.signup('gina@example.com', 'river stone 55')").fetchone()[0]
    claims = jwt.decode(session["token"], secrets["POUNCE_JWT_SECRET"], algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 300


def test_missing_secret_is_a_clear_error(db):
    db.execute("DELETE FROM pounce.settings WHERE name = 'jwt_secret'")
    with pytest.raises(psycopg.errors.NoDataFound, match='setting "jwt_secret" is not configured'):
        db.execute("SELECT api.signup('hank@example.com', 'cloud nine 808')")


def test_refresh_token_extends_the_session(make_user, api_request, secrets, db):
    user_id, first = make_user()
    db.execute("UPDATE pounce.settings SET value = '2 hours' WHERE name = 'jwt_ttl'")
    with api_request("member", user_id, "POST", "/rpc/refresh_token") as conn:
        session = conn.execute("SELECT api.refresh_token()").fetchone()[0]
    old = jwt.decode(first["token"], secrets["POUNCE_JWT_SECRET"], algorithms=["HS256"])
    new = jwt.decode(session["token"], secrets["POUNCE_JWT_SECRET"], algorithms=["HS256"])
    assert new["sub"] == old["sub"] == str(user_id)
    assert new["exp"] - new["iat"] == 7200
    with pytest.raises(errors.InsufficientPrivilege):  # anon has no session to refresh
        with api_request("anon") as conn:
            conn.execute("SELECT api.refresh_token()")


def test_change_password(make_user, api_request, db):
    user_id, _ = make_user("ivy@example.com", "first secret 11")
    with pytest.raises(errors.InvalidPassword, match="current password is wrong"):
        with api_request("member", user_id, "POST") as conn:
            conn.execute("SELECT api.change_password('not it 12345', 'second secret 22')")
    with pytest.raises(errors.InvalidParameterValue, match="weak password: a password needs at least 10"):
        with api_request("member", user_id, "POST") as conn:
            conn.execute("SELECT api.change_password('first secret 11', 'short1')")
    with api_request("member", user_id, "POST") as conn:
        conn.execute("SELECT api.change_password('first secret 11', 'second secret 22')")
    assert db.execute("SELECT api.login('ivy@example.com', 'second secret 22')").fetchone()[0]["user_id"] == str(user_id)
    with pytest.raises(errors.InvalidPassword):
        db.execute("SELECT api.login('ivy@example.com', 'first secret 11')")
