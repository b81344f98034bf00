"""collector.record_checks(): history, health, drop prediction, the change log and the
notifications derived in SQL, each event once; rejects and idempotency."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)  # every check day below is in the past


def at(days: float) -> str:
    return (T0 + timedelta(days=days)).isoformat()


def check(domain="watched.com", day=0.0, **fields) -> dict:
    base = {"domain": domain, "checked_at": at(day), "registration": "registered", "registration_source": "rdap",
            "registrar": "Registrar A", "epp_statuses": ["ok"], "expires_at": at(300),
            "nameservers": ["ns2.host.net", "ns1.host.net"], "a": ["192.0.2.1"], "mx": ["10 mx.host.net"],
            "http_status": 200, "http_ms": 120, "parked": False, "tls_issuer": "R3, Let's Encrypt",
            "tls_not_after": at(80), "tls_hostname_ok": True, "tls_chain_ok": True, "errors": {}}
    base.update(fields)
    return base


def record(collector_db, *checks) -> dict:
    return collector_db.execute("SELECT collector.record_checks(%s::jsonb)", [json.dumps(list(checks))]).fetchone()[0]


@pytest.fixture
def collector_db(settings, secrets, db_name):
    with psycopg.connect(host="127.0.0.1", port=settings.port, dbname=db_name, user="collector",
                         password=secrets["POUNCE_COLLECTOR_PASSWORD"], autocommit=True) as conn:
        yield conn


@pytest.fixture
def watchers(db, make_user):
    a, _ = make_user()
    b, _ = make_user()
    db.execute("INSERT INTO pounce.watched_domains (user_id, domain) VALUES (%s, 'watched.com'), (%s, 'watched.com')",
               [a, b])
    return a, b


def kinds(db, user=None):
    q = "SELECT kind, count(*) FROM pounce.notifications" + (" WHERE user_id = %s" if user else "") + " GROUP BY kind"
    return dict(db.execute(q, [user] if user else []).fetchall())


def test_history_and_latest_state(db, collector_db, watchers, api_request):
    r = record(collector_db, check(day=0), check(day=1, http_ms=4000))
    assert r == {"inserted": 2, "unchanged": 0, "rejected": 0, "changes": 0, "notifications": 0}
    with api_request("member", watchers[0]) as conn:
        latest = conn.execute("SELECT latest FROM api.watchlist").fetchone()[0]
        assert latest == {"checked_at": "2025-06-02T12:00:00Z", "status": "registered", "status_source": "rdap",
                          "registrar": "Registrar A", "epp_statuses": ["ok"], "expires_at": "2026-03-28T12:00:00Z",
                          "predicted_drop_on": None, "health": "warning", "health_score": 90,
                          "health_issues": ["slow"], "http_status": 200, "tls_days_left": 79}
        assert conn.execute("SELECT nameservers FROM api.domain_history('watched.com') LIMIT 1").fetchone() == \
            (["ns1.host.net", "ns2.host.net"],)  # stored sorted
        history = conn.execute("SELECT checked_at, health FROM api.domain_history('WATCHED.com')").fetchall()
        assert history == [(T0 + timedelta(days=1), "warning"), (T0, "ok")]
    # the same batch again changes nothing
    assert record(collector_db, check(day=0), check(day=1, http_ms=4000))["unchanged"] == 2


def test_changes_and_notifications_each_once(db, collector_db, watchers, api_request):
    record(collector_db, check(day=0))
    changed = check(day=1, registrar="Registrar B", nameservers=["ns1.other.org"], a=["192.0.2.9"],
                    tls_issuer="Other CA")
    r = record(collector_db, changed)
    assert r["changes"] == 4 and r["notifications"] == 4  # 2 events x 2 watchers
    with api_request("member", watchers[1]) as conn:
        log = conn.execute("SELECT field, old_value, new_value FROM api.domain_changes('watched.com') ORDER BY field"
                           ).fetchall()
    assert log == [("addresses", "192.0.2.1", "192.0.2.9"), ("nameservers", "ns1.host.net ns2.host.net", "ns1.other.org"),
                   ("registrar", "Registrar A", "Registrar B"), ("tls_issuer", "R3, Let's Encrypt", "Other CA")]
    assert kinds(db, watchers[0]) == {"watch.registrar_changed": 1, "watch.nameservers_changed": 1}
    payload = db.execute("SELECT payload FROM pounce.notifications WHERE kind = 'watch.registrar_changed' LIMIT 1"
                         ).fetchone()[0]
    assert payload == {"domain": "watched.com", "from": "Registrar A", "to": "Registrar B"}
    # the same result again, or an unchanged check: no new change, no new notification
    record(collector_db, changed)
    record(collector_db, check(day=2, registrar="Registrar B", nameservers=["ns1.other.org"], a=["192.0.2.9"],
                               tls_issuer="Other CA"))
    assert db.execute("SELECT count(*) FROM pounce.domain_changes").fetchone()[0] == 4
    assert sum(kinds(db).values()) == 4
    # an unreadable part is not a change: DNS failed, so nameservers stay as they were
    record(collector_db, check(day=3, registrar="Registrar B", nameservers=[], a=[], mx=[], tls_issuer="Other CA",
                               errors={"dns": "Timeout"}))
    assert db.execute("SELECT count(*) FROM pounce.domain_changes").fetchone()[0] == 4


def test_drop_cycle_and_availability(db, collector_db, watchers, api_request):
    record(collector_db, check(day=0, expires_at=at(-40)))
    record(collector_db, check(day=1, registration="redemption", epp_statuses=["redemptionPeriod"],
                               expires_at=at(-41), last_changed_at=at(1)))
    record(collector_db, check(day=31, registration="pending_delete", epp_statuses=["pendingDelete"],
                               expires_at=at(-41), last_changed_at=at(31)))
    record(collector_db, check(day=36, registration="available", registrar=None, epp_statuses=[], expires_at=None,
                               nameservers=[], a=[], mx=[], http_status=None, tls_issuer=None, tls_not_after=None))
    drops = db.execute("SELECT registration, predicted_drop_on FROM pounce.domain_checks ORDER BY checked_at").fetchall()
    assert drops == [("registered", (T0 + timedelta(days=-40)).date() + timedelta(days=80)),
                     ("redemption", (T0 + timedelta(days=1)).date() + timedelta(days=35)),
                     ("pending_delete", (T0 + timedelta(days=31)).date() + timedelta(days=5)),
                     ("available", None)]
    assert kinds(db, watchers[0]) == {"watch.redemption": 1, "watch.pending_delete": 1, "watch.available": 1}
    with api_request("member", watchers[0]) as conn:
        assert conn.execute("SELECT latest ->> 'status', latest ->> 'health' FROM api.watchlist").fetchone() == \
            ("available", None)
        changes = conn.execute("SELECT new_value FROM api.domain_changes('watched.com') WHERE field = 'registration'"
                               " ORDER BY changed_at").fetchall()
    assert changes == [("redemption",), ("pending_delete",), ("available",)]


def test_expiry_and_tls_thresholds_notify_once_each(db, collector_db, watchers):
    # days before expiry at each check -> the threshold crossed: 40 none, 25 -> 30, 20 (30 again: no), 10 -> 14, 5 -> 7
    for left in [40, 25, 20, 10, 5]:
        record(collector_db, check(day=45 - left, expires_at=at(45), tls_not_after=at(45)))
    rows = db.execute("SELECT kind, payload ->> 'within_days' FROM pounce.notifications WHERE user_id = %s"
                      " ORDER BY kind, (payload ->> 'within_days')::int", [watchers[0]]).fetchall()
    assert rows == [("watch.expiring", "7"), ("watch.expiring", "14"), ("watch.expiring", "30"),
                    ("watch.tls_expiring", "7"), ("watch.tls_expiring", "14"), ("watch.tls_expiring", "21")]
    # renewed: a new expiry date starts its thresholds afresh
    record(collector_db, check(day=41, expires_at=at(45 + 365)))
    record(collector_db, check(day=45 + 365 - 20, expires_at=at(45 + 365)))
    assert db.execute("SELECT count(*) FROM pounce.notifications WHERE user_id = %s AND kind = 'watch.expiring'",
                      [watchers[0]]).fetchone()[0] == 4


def test_site_down_and_back_up(db, collector_db, watchers):
    record(collector_db, check(day=0))
    record(collector_db, check(day=1, http_status=None, errors={"http": "ConnectError"}))
    record(collector_db, check(day=2, http_status=None, errors={"http": "ConnectError"}))  # still down: no repeat
    record(collector_db, check(day=3, http_status=200))
    assert kinds(db, watchers[0]) == {"watch.site_down": 1, "watch.site_up": 1}
    site = db.execute("SELECT old_value, new_value FROM pounce.domain_changes WHERE field = 'site' ORDER BY changed_at"
                      ).fetchall()
    assert site == [("up", "down"), ("down", "up")]


@pytest.mark.parametrize("fields, status, score, issues", [
    ({}, "ok", 100, []),
    ({"http_status": 500}, "critical", 60, ["http_5xx"]),
    ({"http_status": None}, "critical", 60, ["site_down"]),
    ({"parked": True, "mx": []}, "warning", 80, ["parked", "no_mx"]),
    ({"tls_not_after": at(-1), "tls_chain_ok": False}, "critical", 60, ["tls_expired"]),
    ({"tls_chain_ok": False}, "critical", 60, ["tls_untrusted"]),
    ({"tls_hostname_ok": False}, "critical", 60, ["tls_wrong_host"]),
    ({"tls_not_after": at(10)}, "warning", 90, ["tls_expires_soon"]),
    ({"expires_at": at(-1), "registration": "grace"}, "critical", 60, ["expired"]),
    ({"a": [], "tls_not_after": None, "tls_issuer": None, "http_status": None}, "warning", 90, ["no_address"]),
    ({"registration": "available"}, None, None, None),
])
def test_health_from_stored_results(db, collector_db, watchers, fields, status, score, issues):
    record(collector_db, check(**fields))
    row = db.execute("SELECT health_status, health_score, health_issues"
                     " FROM pounce.domain_checks").fetchone()
    assert row == (status, score, issues)


def test_bad_results_are_rejected_and_the_rest_stored(db, collector_db, watchers):
    r = record(collector_db, check(day=0), check(domain="unwatched.com"), check(registration="sold"),
               check(day=1, checked_at="yesterday-ish"), {"registration": "registered"})
    assert r["inserted"] == 1 and r["rejected"] == 4
    reasons = sorted(x[0] for x in db.execute("SELECT reason FROM pounce.ingest_rejects WHERE source = 'record_checks'"))
    assert reasons == ["domain is not monitored", "no domain", "no valid checked_at",
                       "registration must be registered, available, grace, redemption, pending_delete or unknown"]


def test_history_is_only_for_watchers(db, collector_db, watchers, make_user, api_request):
    record(collector_db, check())
    stranger, _ = make_user()
    with api_request("member", stranger) as conn:
        assert conn.execute("SELECT count(*) FROM api.domain_history('watched.com')").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM api.domain_changes('watched.com')").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM api.watchlist").fetchone()[0] == 0


def test_prune_keeps_each_domains_latest(db, collector_db, watchers):
    record(collector_db, check(day=-900), check(day=-800))
    db.execute("UPDATE pounce.monitored_domains SET last_check_id = (SELECT max(id) FROM pounce.domain_checks)")
    assert db.execute("SELECT pounce.prune_domain_checks()").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM pounce.domain_checks").fetchone()[0] == 1


def test_rdap_bootstrap_comes_from_the_tld_table(collector_db):
    """What a production collector uses when no bootstrap file is given (IANA's data)."""
    bootstrap = collector_db.execute("SELECT collector.rdap_bootstrap()").fetchone()[0]
    assert bootstrap["com"] == ["https://rdap.verisign.com/com/v1/domain/"]
    assert "ac" not in bootstrap  # no RDAP server published: the collector falls back to DNS
    assert len(bootstrap) > 1000
