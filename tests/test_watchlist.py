"""Watchlists: CRUD through api under RLS, normalisation, the plan's limit (race-safe),
bulk import, shared monitoring of a domain by several members, scheduling by plan, and
the manual refresh limit."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest


def watch(api_request, user, domain, note=None, tags=()):
    with api_request("member", user, "POST", "/watched_domains") as conn:
        return conn.execute("INSERT INTO api.watched_domains (domain, note, tags) VALUES (%s, %s, %s) RETURNING id, domain",
                            [domain, note, list(tags)]).fetchone()


def test_crud_under_rls(api_request, make_user, db):
    alice, _ = make_user()
    bob, _ = make_user()
    assert watch(api_request, alice, " WWW.Example.COM. ", note="mine", tags=["brand"])[1] == "example.com"
    watch(api_request, alice, "münchen.de")
    watch(api_request, bob, "example.com")
    with api_request("member", alice) as conn:
        rows = conn.execute("SELECT domain, note, tags FROM api.watched_domains ORDER BY domain").fetchall()
        assert rows == [("example.com", "mine", ["brand"]), ("xn--mnchen-3ya.de", None, [])]
        assert conn.execute("SELECT domain_unicode FROM api.watchlist WHERE domain LIKE 'xn--%'").fetchone()[0] == "münchen.de"
    with api_request("member", alice, "PATCH") as conn:
        assert conn.execute("UPDATE api.watched_domains SET note = 'renew!' WHERE domain = 'example.com'").rowcount == 1
    with api_request("member", bob, "PATCH") as conn:  # bob cannot touch alice's rows
        assert conn.execute("UPDATE api.watched_domains SET note = 'x' WHERE note = 'renew!'").rowcount == 0
        assert conn.execute("DELETE FROM api.watched_domains WHERE note = 'renew!'").rowcount == 0
    with pytest.raises(psycopg.errors.UniqueViolation), api_request("member", alice, "POST") as conn:
        conn.execute("INSERT INTO api.watched_domains (domain) VALUES ('EXAMPLE.com')")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="label"), api_request("member", alice) as conn:
        conn.execute("INSERT INTO api.watched_domains (domain) VALUES ('-bad-.com')")
    with pytest.raises(psycopg.errors.InsufficientPrivilege), api_request("anon") as conn:
        conn.execute("SELECT * FROM api.watchlist")
    # both watch example.com: it is monitored once, with two watchers
    assert db.execute("SELECT watchers FROM pounce.monitored_domains WHERE domain = 'example.com'").fetchone() == (2,)
    with api_request("member", bob, "DELETE") as conn:
        conn.execute("DELETE FROM api.watched_domains")
    assert db.execute("SELECT watchers FROM pounce.monitored_domains WHERE domain = 'example.com'").fetchone() == (1,)


def test_limit_is_enforced(api_request, make_user):
    user, _ = make_user()  # Scout: 5 domains
    for i in range(5):
        watch(api_request, user, f"name{i}.com")
    with pytest.raises(psycopg.errors.RaiseException, match="at most 5 domains"):
        watch(api_request, user, "one-more.com")


def test_limit_is_race_safe(settings, secrets, db_name, make_user, api_request):
    """Two connections insert at the same moment with one slot left, and each keeps its
    transaction open a while before committing (so a count that ignored the other's
    uncommitted row would let both through): exactly one wins."""
    user, _ = make_user()
    for i in range(4):
        watch(api_request, user, f"name{i}.com")
    barrier = threading.Barrier(2, timeout=10)
    outcomes = []

    def insert(domain):
        with psycopg.connect(host="127.0.0.1", port=settings.port, dbname=db_name, user="authenticator",
                             password=secrets["POUNCE_AUTHENTICATOR_PASSWORD"]) as conn:
            conn.execute("SELECT set_config('role', 'member', true), set_config('request.jwt.claims', %s, true)",
                         [f'{{"role": "member", "sub": "{user}"}}'])
            barrier.wait()
            try:
                conn.execute("INSERT INTO api.watched_domains (domain) VALUES (%s)", [domain])
                time.sleep(0.5)
                conn.commit()
                outcomes.append("ok")
            except psycopg.errors.RaiseException:
                conn.rollback()
                outcomes.append("limit")

    threads = [threading.Thread(target=insert, args=(d,)) for d in ("race-a.com", "race-b.com")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["limit", "ok"], outcomes
    with api_request("member", user) as conn:
        assert conn.execute("SELECT count(*) FROM api.watched_domains").fetchone()[0] == 5


def test_bulk_import_reports_each_name(api_request, make_user):
    user, _ = make_user()
    watch(api_request, user, "have.com")
    names = ["New.com", "have.com", "bad..name", "new.com", "a.com", "b.com", "c.com", "d.com", "com"]
    with api_request("member", user, "POST", "/rpc/import_watchlist") as conn:
        rows = conn.execute("SELECT name, domain, result FROM api.import_watchlist(%s)", [names]).fetchall()
    assert rows == [("New.com", "new.com", "added"), ("have.com", "have.com", "already_watched"),
                    ("bad..name", None, "invalid"), ("new.com", "new.com", "duplicate"),
                    ("a.com", "a.com", "added"), ("b.com", "b.com", "added"), ("c.com", "c.com", "added"),
                    ("d.com", "d.com", "limit_reached"), ("com", None, "invalid")]
    with api_request("member", user) as conn:
        assert conn.execute("SELECT count(*) FROM api.watched_domains").fetchone()[0] == 5


def test_scheduling_by_plan_checks_each_domain_once(db, api_request, make_user):
    scout, _ = make_user()
    trader, _ = make_user()
    watch(api_request, scout, "shared.com")
    watch(api_request, trader, "shared.com")
    watch(api_request, scout, "scout-only.com")
    intervals = dict(db.execute("SELECT domain, check_interval::text FROM pounce.monitored_domains").fetchall())
    assert intervals == {"shared.com": "24:00:00", "scout-only.com": "24:00:00"}
    db.execute("UPDATE pounce.users SET tier = 'trader' WHERE id = %s", [trader])  # plan change: reschedule
    assert db.execute("SELECT check_interval::text FROM pounce.monitored_domains WHERE domain = 'shared.com'"
                      ).fetchone()[0] == "01:00:00"
    assert db.execute("SELECT pounce.enqueue_due_checks()").fetchone()[0] == 2
    jobs = db.execute("SELECT payload ->> 'domain' FROM pounce.jobs WHERE kind = 'check_domain' ORDER BY 1").fetchall()
    assert jobs == [("scout-only.com",), ("shared.com",)]  # once, though two members watch it
    due = dict(db.execute("SELECT domain, round(extract(epoch FROM next_check_at - now()) / 3600)"
                          " FROM pounce.monitored_domains").fetchall())
    assert due == {"shared.com": 1, "scout-only.com": 24}
    assert db.execute("SELECT pounce.enqueue_due_checks()").fetchone()[0] == 0  # nothing due now
    # still pending when due again (collectors down): not queued twice
    db.execute("UPDATE pounce.monitored_domains SET next_check_at = now() - interval '1 second'")
    assert db.execute("SELECT pounce.enqueue_due_checks()").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM pounce.jobs").fetchone()[0] == 2
    # once a result arrives, it is due again at its interval...
    db.execute("UPDATE pounce.monitored_domains SET last_result_at = now() WHERE domain = 'shared.com'")
    assert db.execute("SELECT pounce.enqueue_due_checks()").fetchone()[0] == 1
    # ...and a check queued 6 hours ago without an answer counts as lost
    db.execute("UPDATE pounce.monitored_domains SET last_enqueued_at = now() - interval '7 hours',"
               " next_check_at = now() - interval '1 second' WHERE domain = 'scout-only.com'")
    assert db.execute("SELECT pounce.enqueue_due_checks()").fetchone()[0] == 1
    db.execute("DELETE FROM pounce.jobs")
    # nobody watches it any more: no longer scheduled
    db.execute("DELETE FROM pounce.watched_domains WHERE domain = 'scout-only.com'")
    assert db.execute("SELECT next_check_at FROM pounce.monitored_domains WHERE domain = 'scout-only.com'"
                      ).fetchone() == (None,)


def test_refresh_health_is_limited_per_hour(db, api_request, make_user):
    user, _ = make_user()  # Scout: 2 manual refreshes per hour
    other, _ = make_user()
    watch(api_request, user, "mine.com")
    with pytest.raises(psycopg.errors.NoDataFound, match="not on your watchlist"), \
            api_request("member", other, "POST") as conn:
        conn.execute("SELECT api.refresh_health('mine.com')")
    results = []
    for _ in range(2):
        with api_request("member", user, "POST") as conn:
            results.append(conn.execute("SELECT api.refresh_health('MINE.com')").fetchone()[0])
    assert [r["refreshes_left"] for r in results] == [1, 0]
    assert results[0]["job_id"] == results[1]["job_id"]  # still pending: the same job
    assert db.execute("SELECT priority FROM pounce.jobs WHERE id = %s", [results[0]["job_id"]]).fetchone()[0] == -10
    with pytest.raises(psycopg.Error, match="refresh limit reached") as e, api_request("member", user, "POST") as conn:
        conn.execute("SELECT api.refresh_health('mine.com')")
    assert e.value.sqlstate == "PT429"
