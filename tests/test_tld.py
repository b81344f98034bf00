"""TLD intelligence (sql/tld/): ingestion of registrar prices, LAG change detection and
its watermark under concurrency, price alerts, the intel view, the Porkbun parser."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from collectors.sources import porkbun

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def ago(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


def D(x) -> Decimal | None:
    return None if x is None else Decimal(str(x))


@pytest.fixture
def collector(settings, secrets, db_name):
    """The collectors' login: it may only execute collector.* functions."""
    conn = psycopg.connect(host="127.0.0.1", port=settings.port, dbname=db_name, user="collector",
                           password=secrets["POUNCE_COLLECTOR_PASSWORD"], autocommit=True)
    with conn:
        yield conn


def ingest(conn, rows, source="alpha", complete=False) -> dict:
    cur = conn.execute("SELECT * FROM collector.ingest_tld_prices(%s, %s::jsonb, %s)",
                       [source, json.dumps(rows), complete])
    return dict(zip([c.name for c in cur.description], cur.fetchone()))


def obs(tld, kind, price, when, registrar=None, currency="USD", **extra) -> dict:
    row = {"tld": tld, "kind": kind, "price": price, "currency": currency, "observed_at": when, **extra}
    if registrar:
        row["registrar"] = registrar
    return row


def detect(conn) -> tuple[int, int]:
    return tuple(conn.execute("SELECT changes, notifications FROM pounce.detect_price_changes()").fetchone())


EVENT_COLUMNS = "tld, registrar, kind, old_price, new_price, change, change_pct, direction"


def logged_events(db) -> list[tuple]:
    return db.execute(f"SELECT {EVENT_COLUMNS} FROM pounce.price_changes ORDER BY observed_at, registrar, kind"
                      ).fetchall()


# ---------------------------------------------------------------------------
# Ingestion
# ---------------------------------------------------------------------------

def test_unchanged_prices_create_no_rows(db, collector):
    batch = [obs("com", "registration", "9.68", ago(3)), obs("com", "renewal", "10.88", ago(3))]
    assert ingest(collector, batch) == dict(inserted=2, updated=0, unchanged=0, rejected=0, withdrawn=0)
    assert ingest(collector, batch) == dict(inserted=0, updated=0, unchanged=2, rejected=0, withdrawn=0)

    # a later observation of the same prices only moves last_seen_at
    later = [obs("com", "registration", "9.68", ago(1)), obs("com", "renewal", 10.88, ago(1))]
    assert ingest(collector, later) == dict(inserted=0, updated=2, unchanged=0, rejected=0, withdrawn=0)
    rows = db.execute("SELECT kind, price, observed_at, last_seen_at FROM pounce.tld_prices ORDER BY kind").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("registration", D("9.68")), ("renewal", D("10.88"))]
    assert all(r[2] == NOW - timedelta(days=3) and r[3] == NOW - timedelta(days=1) for r in rows)
    assert ingest(collector, later)["unchanged"] == 2

    # a changed price is one new row
    assert ingest(collector, [obs("com", "renewal", "11.00", ago(0.5))])["inserted"] == 1
    assert db.execute("SELECT count(*) FROM pounce.tld_prices").fetchone()[0] == 3


def test_rejects_carry_reasons_and_good_rows_are_kept(db, collector):
    rows = [
        obs("com", "registration", "9.68", ago(1)),
        obs("notatld", "registration", "9.68", ago(1)),
        obs("net", "registration", "$1,2x4", ago(1)),
        obs("org", "registration", "-1.00", ago(1)),
        obs("io", "registration", "30", ago(1), currency="XQQ"),
        obs("io", "bogus", "30", ago(1)),
        obs("io", "registration", "30", "yesterday-ish"),
        obs("io", "renewal", "30", (NOW + timedelta(days=2)).isoformat()),
        {"tld": "dev", "kind": "registration", "currency": "USD"},
        "not an object",
        obs(".DEV", "Registration", 10.81, ago(1), currency="usd"),  # normalised, kept
    ]
    counts = ingest(collector, rows, source="alpha")
    assert counts == dict(inserted=2, updated=0, unchanged=0, rejected=9, withdrawn=0)
    reasons = [r[0] for r in db.execute("SELECT reason FROM pounce.ingest_rejects WHERE source = 'tld_prices:alpha' ORDER BY id")]
    assert reasons == [
        'unknown TLD "notatld"',
        'unparseable price "$1,2x4"',
        'negative price -1.00',
        'unknown currency "XQQ"',
        'unknown kind "bogus" (expected registration, renewal, transfer or restore)',
        'unparseable observed_at "yesterday-ish"',
        f'observed_at {(NOW + timedelta(days=2)).isoformat()} is in the future',
        'missing price',
        'not a JSON object',
    ]
    raw = db.execute("SELECT raw FROM pounce.ingest_rejects WHERE reason LIKE 'unparseable price%'").fetchone()[0]
    assert raw["price"] == "$1,2x4"
    assert db.execute("SELECT tld, kind FROM pounce.tld_prices ORDER BY tld").fetchall() == [
        ("com", "registration"), ("dev", "registration")]
    # the registrar was created on first sight
    assert db.execute("SELECT name FROM pounce.registrars WHERE registrar = 'alpha'").fetchone() == ("alpha",)


def test_a_batch_with_history_keeps_one_row_per_price(db, collector):
    series = [("9", 10), ("10", 8), ("10", 6), ("12", 4), ("12", 3), ("10", 2)]
    rows = [obs("com", "registration", p, ago(d)) for p, d in series]
    assert ingest(collector, rows) == dict(inserted=4, updated=2, unchanged=0, rejected=0, withdrawn=0)
    stored = db.execute("SELECT price, observed_at, last_seen_at FROM pounce.tld_prices ORDER BY observed_at").fetchall()
    assert stored == [
        (D(9), NOW - timedelta(days=10), NOW - timedelta(days=10)),
        (D(10), NOW - timedelta(days=8), NOW - timedelta(days=6)),
        (D(12), NOW - timedelta(days=4), NOW - timedelta(days=3)),
        (D(10), NOW - timedelta(days=2), NOW - timedelta(days=2)),
    ]
    # the same batch again changes nothing
    assert ingest(collector, rows) == dict(inserted=0, updated=0, unchanged=6, rejected=0, withdrawn=0)
    # an old observation that contradicts the stored history is refused, not appended
    assert ingest(collector, [obs("com", "registration", "99", ago(5))])["rejected"] == 1
    assert db.execute("SELECT count(*) FROM pounce.tld_prices").fetchone()[0] == 4
    # two observations of one offer at one time: the first counts
    twice = [obs("com", "renewal", "11", ago(1)), obs("com", "renewal", "12", ago(1))]
    assert ingest(collector, twice) == dict(inserted=1, updated=0, unchanged=0, rejected=1, withdrawn=0)


def test_complete_price_list_withdraws_missing_offers(db, collector):
    ingest(collector, [obs("com", "registration", "9", ago(5)), obs("com", "transfer", "8", ago(5)),
                       obs("net", "registration", "11", ago(5))], complete=True)
    # the next list lacks com transfer; net's row is malformed, so net is not withdrawn
    counts = ingest(collector, [obs("com", "registration", "9", ago(1)),
                                obs("net", "registration", "eleven", ago(1))], complete=True)
    assert counts == dict(inserted=0, updated=1, unchanged=0, rejected=1, withdrawn=1)
    current = db.execute("""SELECT tld, kind, price FROM api.tld_offers ORDER BY tld, kind""").fetchall()
    assert current == [("com", "registration", D(9)), ("net", "registration", D(11))]
    # withdrawn once: the same list again withdraws nothing more
    assert ingest(collector, [obs("com", "registration", "9", ago(1)), obs("net", "registration", "eleven", ago(1))],
                  complete=True)["withdrawn"] == 0
    # another registrar's offers are not touched by alpha's list
    ingest(collector, [obs("com", "transfer", "7", ago(1))], source="beta")
    assert ingest(collector, [obs("com", "registration", "9", ago(0.5)), obs("net", "registration", "11", ago(0.5))],
                  complete=True)["withdrawn"] == 0
    assert db.execute("SELECT price FROM api.tld_offers WHERE registrar = 'beta'").fetchall() == [(D(7),)]


def test_offers_are_numbered_once_and_follow_a_registrar_rename(db, collector):
    ingest(collector, [obs("com", "registration", "9", ago(5)), obs("com", "renewal", "11", ago(5))])
    ingest(collector, [obs("com", "registration", "10", ago(1)), obs("net", "registration", "12", ago(1))])
    offers = db.execute("SELECT offer_id, tld, registrar, kind FROM pounce.tld_offers ORDER BY tld, kind").fetchall()
    assert [o[1:] for o in offers] == [("com", "alpha", "registration"), ("com", "alpha", "renewal"),
                                       ("net", "alpha", "registration")]
    assert len({o[0] for o in offers}) == 3
    # every history row carries its offer's number
    assert db.execute("""SELECT count(*) FROM pounce.tld_prices AS p
                         JOIN pounce.tld_offers AS o USING (offer_id)
                         WHERE (o.tld, o.registrar, o.kind) = (p.tld, p.registrar, p.kind)""").fetchone()[0] == 4
    # a row whose number names another offer is refused by the key
    with pytest.raises(psycopg.errors.ForeignKeyViolation), db.transaction():
        db.execute("""INSERT INTO pounce.tld_prices (offer_id, tld, registrar, kind, price, currency, observed_at,
                                                     last_seen_at, source)
                      SELECT offer_id, 'net', registrar, kind, 1, 'USD', now(), now(), 'x'
                      FROM pounce.tld_offers WHERE tld = 'com' AND kind = 'renewal'""")
    # a registrar's new slug reaches its offers and their history
    db.execute("UPDATE pounce.registrars SET registrar = 'alpha-registrar' WHERE registrar = 'alpha'")
    assert db.execute("SELECT DISTINCT registrar FROM pounce.tld_prices").fetchall() == [("alpha-registrar",)]
    assert [o[0] for o in db.execute("SELECT offer_id FROM pounce.tld_offers ORDER BY tld, kind")] == \
        [o[0] for o in offers]
    # and ingestion under the new slug continues the same offers
    assert ingest(collector, [obs("com", "registration", "10", ago(0.5), registrar="alpha-registrar")]
                  )["updated"] == 1


# ---------------------------------------------------------------------------
# Change detection
# ---------------------------------------------------------------------------

def hand_made_history(collector, db, detect_between: bool):
    steps = [
        ("alpha", [obs("com", "registration", "10.00", ago(100)), obs("com", "transfer", "8.00", ago(100))], False),
        ("alpha", [obs("com", "registration", "12.00", ago(80))], False),
        ("alpha", [obs("com", "registration", "12.00", ago(60))], False),   # unchanged
        ("beta", [obs("com", "registration", "9.00", ago(50))], False),     # a new registrar
        ("alpha", [obs("com", "registration", "10.00", ago(40))], False),   # back down
        ("alpha", [obs("com", "registration", "10.00", ago(30))], True),    # transfer withdrawn
    ]
    for source, rows, complete in steps:
        ingest(collector, rows, source=source, complete=complete)
        if detect_between:
            detect(db)


EXPECTED_EVENTS = [
    ("com", "alpha", "registration", None, D("10.00"), None, None, "added"),
    ("com", "alpha", "transfer", None, D("8.00"), None, None, "added"),
    ("com", "alpha", "registration", D("10.00"), D("12.00"), D("2.00"), D("20.00"), "up"),
    ("com", "beta", "registration", None, D("9.00"), None, None, "added"),
    ("com", "alpha", "registration", D("12.00"), D("10.00"), D("-2.00"), D("-16.67"), "down"),
    ("com", "alpha", "transfer", D("8.00"), None, None, None, "withdrawn"),
]


def test_lag_events_are_exact_on_a_hand_made_history(db, collector):
    hand_made_history(collector, db, detect_between=True)
    assert logged_events(db) == EXPECTED_EVENTS
    # the same events in one full pass over the history
    full = db.execute(f"""SELECT {EVENT_COLUMNS} FROM pounce.price_change_events(0, 1000000)
                          ORDER BY observed_at, registrar, kind""").fetchall()
    assert full == EXPECTED_EVENTS


def test_detection_in_one_run_equals_detection_step_by_step(db, collector):
    hand_made_history(collector, db, detect_between=False)
    assert detect(db) == (6, 0)
    assert logged_events(db) == EXPECTED_EVENTS
    assert detect(db) == (0, 0)  # the watermark moved: a second run finds nothing
    assert db.execute("SELECT last_price_id = (SELECT max(id) FROM pounce.tld_prices) "
                      "FROM pounce.price_change_watermark").fetchone()[0]


def test_a_backlog_is_detected_in_batches_without_loss(db, collector):
    hand_made_history(collector, db, detect_between=False)
    runs = [tuple(db.execute("SELECT * FROM pounce.detect_price_changes(batch_rows => 2)").fetchone())
            for _ in range(4)]
    assert runs == [(2, 0), (2, 0), (2, 0), (0, 0)]  # 6 history rows, 2 a run, then nothing left
    assert logged_events(db) == EXPECTED_EVENTS


def test_a_currency_change_is_compared_through_usd_rates(db, collector):
    db.execute("UPDATE pounce.currencies SET usd_rate = 1.25, rate_as_of = current_date WHERE code = 'EUR'")
    ingest(collector, [obs("de", "registration", "10.00", ago(10))])
    ingest(collector, [obs("de", "registration", "10.00", ago(5), currency="EUR")])  # 12.50 USD
    detect(db)
    assert db.execute("SELECT old_price, old_currency, new_price, new_currency, change, change_pct, direction "
                      "FROM pounce.price_changes WHERE direction <> 'added'").fetchall() == [
        (D(10), "USD", D(10), "EUR", D("2.00"), D("25.00"), "up")]


def waiting_for_lock(settings, db_name, needle: str, timeout: float = 10.0) -> None:
    with psycopg.connect(settings.conninfo(db_name), autocommit=True) as watcher:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if watcher.execute("""SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                                  AND wait_event_type = 'Lock' AND query LIKE %s""", [f"%{needle}%"]).fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError(f"no session waited on a lock running {needle}")


def run_in_thread(settings, db_name, query: str) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def work():
        try:
            with psycopg.connect(settings.conninfo(db_name), autocommit=True) as conn:
                out["row"] = conn.execute(query).fetchone()
        except Exception as e:  # reported by the test
            out["error"] = e

    t = threading.Thread(target=work)
    t.start()
    return t, out


def test_overlapping_runs_neither_lose_nor_double_events(settings, db_name, db, collector):
    hand_made_history(collector, db, detect_between=False)
    with psycopg.connect(settings.conninfo(db_name)) as first:
        assert tuple(first.execute("SELECT * FROM pounce.detect_price_changes()").fetchone()) == (6, 0)
        # a second run starts while the first has not committed: it waits for it
        t, out = run_in_thread(settings, db_name, "SELECT * FROM pounce.detect_price_changes()")
        waiting_for_lock(settings, db_name, "detect_price_changes")
        first.commit()
        t.join(10)
    assert "error" not in out and tuple(out["row"]) == (0, 0)
    assert logged_events(db) == EXPECTED_EVENTS


def test_detection_waits_for_ingestion_in_flight(settings, db_name, db, collector):
    ingest(collector, [obs("com", "registration", "10", ago(2))])
    detect(db)
    with psycopg.connect(settings.conninfo(db_name)) as ingesting:
        # an ingestion has taken ids but not committed when the job starts
        ingest(ingesting, [obs("com", "registration", "11", ago(1))])
        t, out = run_in_thread(settings, db_name, "SELECT * FROM pounce.detect_price_changes()")
        waiting_for_lock(settings, db_name, "detect_price_changes")
        # a later ingestion that commits first (higher ids) waits behind the job
        ingesting.commit()
        t.join(10)
    assert "error" not in out and tuple(out["row"]) == (1, 0)
    assert logged_events(db)[-1][3:] == (D(10), D(11), D(1), D(10), "up")
    assert detect(db) == (0, 0)


def test_a_failed_run_changes_nothing_and_the_next_run_does_it_all(db, collector, make_user):
    user, _ = make_user()
    db.execute("INSERT INTO pounce.tld_price_alerts (user_id, tld) VALUES (%s, 'com')", [user])
    ingest(collector, [obs("com", "registration", "10", ago(2))])
    ingest(collector, [obs("com", "registration", "11", ago(1))])
    db.execute("""CREATE FUNCTION pg_temp.fail() RETURNS trigger LANGUAGE plpgsql AS
                  $$ BEGIN RAISE EXCEPTION 'mail server on fire'; END $$""")
    db.execute("CREATE TRIGGER fail BEFORE INSERT ON pounce.notifications FOR EACH ROW EXECUTE FUNCTION pg_temp.fail()")
    with pytest.raises(psycopg.errors.RaiseException, match="on fire"):
        detect(db)
    assert db.execute("SELECT count(*) FROM pounce.price_changes").fetchone()[0] == 0
    assert db.execute("SELECT last_price_id FROM pounce.price_change_watermark").fetchone()[0] == 0
    db.execute("DROP TRIGGER fail ON pounce.notifications")
    assert detect(db) == (2, 1)
    assert detect(db) == (0, 0)


# ---------------------------------------------------------------------------
# Price alerts
# ---------------------------------------------------------------------------

def test_alerts_reach_exactly_the_right_members(db, collector, make_user):
    users = {name: make_user()[0] for name in
             ("any_com", "other_registrar", "only_down", "io_only", "big_moves", "twice", "renewals", "disabled")}
    alerts = [
        ("any_com", "com", None, None, "any", 0),
        ("other_registrar", "com", "beta", None, "any", 0),
        ("only_down", "com", None, None, "down", 0),
        ("io_only", "io", None, None, "any", 0),
        ("big_moves", "com", None, None, "any", 50),
        ("twice", "com", None, None, "up", 0),
        ("twice", "com", "alpha", "registration", "any", 10),
        ("renewals", "com", None, "renewal", "any", 0),
        ("disabled", "com", None, None, "any", 0),
    ]
    db.execute("INSERT INTO pounce.registrars (registrar, name) VALUES ('alpha', 'Alpha'), ('beta', 'Beta')")
    for name, tld, registrar, kind, direction, pct in alerts:
        db.execute("INSERT INTO pounce.tld_price_alerts (user_id, tld, registrar, kind, direction, min_change_pct) "
                   "VALUES (%s, %s, %s, %s, %s, %s)", [users[name], tld, registrar, kind, direction, pct])
    db.execute("UPDATE pounce.users SET disabled = true WHERE id = %s", [users["disabled"]])

    ingest(collector, [obs("com", "registration", "9.00", ago(30)), obs("io", "renewal", "40", ago(2))])
    ingest(collector, [obs("com", "registration", "10.00", ago(20))])
    assert detect(db) == (3, 0)  # new offers are logged, not alerted; a change weeks ago is no news
    ingest(collector, [obs("com", "registration", "10.00", ago(2))])
    ingest(collector, [obs("com", "registration", "12.00", ago(1))])  # +20%
    assert detect(db) == (1, 2)
    got = db.execute("SELECT user_id, kind, payload, dedup_key FROM pounce.notifications").fetchall()
    assert sorted(r[0] for r in got) == sorted([users["any_com"], users["twice"]])
    payload = got[0][2]
    assert (payload["tld"], payload["registrar"], payload["kind"], payload["direction"]) == \
        ("com", "alpha", "registration", "up")
    assert (D(payload["old_price"]), D(payload["new_price"]), D(payload["change_pct"])) == (D(10), D(12), D(20))
    assert {r[1] for r in got} == {"tld.price_change"}
    assert detect(db) == (0, 0)
    assert db.execute("SELECT count(*) FROM pounce.notifications").fetchone()[0] == 2


def test_alert_crud_under_rls_with_the_plan_limit(db, api_request, make_user):
    alice, _ = make_user()
    bob, _ = make_user()
    with api_request("member", alice, "POST", "/tld_price_alerts") as conn:
        conn.execute("INSERT INTO api.tld_price_alerts (tld, direction, min_change_pct) VALUES ('.COM', 'up', 5)")
        conn.execute("INSERT INTO api.tld_price_alerts (tld, kind) VALUES ('рф', 'renewal')")
    with api_request("member", alice) as conn:
        rows = conn.execute("SELECT tld, registrar, kind, direction, min_change_pct FROM api.tld_price_alerts "
                            "ORDER BY id").fetchall()
    assert rows == [("com", None, None, "up", D(5)), ("xn--p1ai", None, "renewal", "any", D(0))]
    with api_request("member", bob) as conn:
        assert conn.execute("SELECT count(*) FROM api.tld_price_alerts").fetchone()[0] == 0
        assert conn.execute("UPDATE api.tld_price_alerts SET min_change_pct = 1").rowcount == 0
        assert conn.execute("DELETE FROM api.tld_price_alerts").rowcount == 0
    with api_request("member", alice, "PATCH") as conn:
        assert conn.execute("UPDATE api.tld_price_alerts SET min_change_pct = 9 WHERE tld = 'com'").rowcount == 1
    with pytest.raises(psycopg.errors.UniqueViolation):
        with api_request("member", alice, "POST") as conn:
            conn.execute("INSERT INTO api.tld_price_alerts (tld, direction) VALUES ('com', 'up')")
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        with api_request("member", alice, "POST") as conn:
            conn.execute("INSERT INTO api.tld_price_alerts (tld) VALUES ('notatld')")
    # Scout allows 5 alerts
    limit = db.execute("SELECT tld_price_alert_limit FROM pounce.tiers WHERE tier = 'scout'").fetchone()[0]
    assert limit == 5
    with api_request("member", alice, "POST") as conn:
        for tld in ("net", "org", "io"):
            conn.execute("INSERT INTO api.tld_price_alerts (tld) VALUES (%s)", [tld])
    with pytest.raises(psycopg.errors.RaiseException, match="your plan allows 5 price alerts"):
        with api_request("member", alice, "POST") as conn:
            conn.execute("INSERT INTO api.tld_price_alerts (tld) VALUES ('dev')")
    with api_request("member", alice) as conn:
        assert conn.execute("SELECT tld_price_alert_limit FROM api.me").fetchone()[0] == 5
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with api_request("anon") as conn:
            conn.execute("SELECT * FROM api.tld_price_alerts")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with api_request("member", alice) as conn:
            conn.execute("UPDATE api.tld_price_alerts SET tld = 'io'")


# ---------------------------------------------------------------------------
# TLD intel
# ---------------------------------------------------------------------------

def intel_fixture(db, collector):
    db.execute("UPDATE pounce.currencies SET usd_rate = 1.10, rate_as_of = current_date WHERE code = 'EUR'")
    ingest(collector, [obs("dev", "registration", "20.00", ago(400)), obs("dev", "renewal", "15.00", ago(400)),
                       obs("dev", "transfer", "14.00", ago(400))], source="r1")
    ingest(collector, [obs("dev", "registration", "10.00", ago(20), promo=True, promo_terms="first_year_only",
                           regular_price="20.00")], source="r1")
    ingest(collector, [obs("dev", "registration", "13.00", ago(400)), obs("dev", "transfer", "12.00", ago(400)),
                       obs("dev", "renewal", "12.00", ago(400), promo=True, promo_terms="first_year_only",
                           regular_price="14.00")], source="r2")
    ingest(collector, [obs("dev", "registration", "12.00", ago(100))], source="r2")
    ingest(collector, [obs("dev", k, p, ago(10), currency="EUR")
                       for k, p in (("registration", "10.00"), ("renewal", "20.00"), ("transfer", "10.00"))],
           source="r3")
    # no USD rate for JPY: left out of the comparisons
    ingest(collector, [obs("dev", "registration", "500", ago(10), currency="JPY")], source="r4")


def test_intel_numbers_match_hand_computed_values(db, collector):
    intel_fixture(db, collector)
    db.execute("SELECT pounce.refresh_tld_intel()")
    row = db.execute("SELECT * FROM api.tld_intel WHERE tld = 'dev'")
    intel = dict(zip([c.name for c in row.description], row.fetchone()))
    expected = {
        "registrars": 3,
        "cheapest_registration_usd": D("10.00"), "cheapest_registration_registrar": "r1",
        "cheapest_registration_promo": True,
        "cheapest_renewal_usd": D("12.00"), "cheapest_renewal_registrar": "r2",
        "median_registration_usd": D("11.00"),   # 10, 11 (10 EUR), 12
        "median_renewal_usd": D("15.00"),        # 12, 15, 22 (20 EUR)
        "median_transfer_usd": D("12.00"),       # 11, 12, 14
        "renewal_trap_ratio": D("1.50"),         # r1: renews at 15 after a first year at 10
        "three_year_cost_usd": D("38.00"),       # r2: 12 + 12 (promo renewal) + 14; r1 40; r3 55
        "three_year_leader": "r2",
        "cheapest_change_30d_pct": D("-16.67"),  # 12 (r2) -> 10 (r1's promotion)
        "cheapest_change_90d_pct": D("-16.67"),
        "cheapest_change_365d_pct": D("-23.08"),  # 13 -> 10
        "active_auctions": 0, "median_auction_price_usd": None,
    }
    assert {k: intel[k] for k in expected} == expected
    points = [r[0] for r in db.execute(
        "SELECT date_trunc('month', now()) - make_interval(months => m) FROM generate_series(11, 0, -1) AS m")]

    def cheapest_at(t):
        r1 = 20 if t < NOW - timedelta(days=20) else 10
        r2 = 13 if t < NOW - timedelta(days=100) else 12
        r3 = 11 if t >= NOW - timedelta(days=10) else 99
        return D(min(r1, r2, r3))

    assert intel["cheapest_registration_monthly"] == [cheapest_at(t) for t in points] + [D(10)]
    # a TLD nobody prices still has its row
    assert db.execute("SELECT registrars, cheapest_registration_usd FROM api.tld_intel WHERE tld = 'org'"
                      ).fetchone() == (0, None)
    assert db.execute("SELECT count(*) = (SELECT count(*) FROM pounce.tlds) FROM api.tld_intel").fetchone()[0]


def test_intel_counts_auctions_before_and_after_the_market_exists(db, collector):
    intel_fixture(db, collector)
    # before: without the market's table the auction columns are empty, not an error
    db.execute("ALTER TABLE pounce.auctions RENAME TO auctions_elsewhere")
    db.execute("SELECT pounce.refresh_tld_intel()")
    assert db.execute("SELECT active_auctions, median_auction_price_usd FROM api.tld_intel WHERE tld = 'dev'"
                      ).fetchone() == (0, None)
    db.execute("ALTER TABLE pounce.auctions_elsewhere RENAME TO auctions")
    # after: the market's auctions, active ones counted per TLD (co.uk counts for uk)
    db.execute("""INSERT INTO pounce.auctions (platform, platform_id, domain, sld, tld, auction_type, current_price,
                                               currency, price_usd, end_time, status) VALUES
                    ('t', '1', 'a.dev', 'a', 'dev', 'bid', 10, 'USD', 10, now() + interval '1 day', 'active'),
                    ('t', '2', 'b.dev', 'b', 'dev', 'bid', 40, 'USD', 40, now() + interval '2 days', 'active'),
                    ('t', '3', 'c.dev', 'c', 'dev', 'bid', 10, 'EUR', 11, now() + interval '1 day', 'active'),
                    ('t', '4', 'f.dev', 'f', 'dev', 'buy_now', 12, 'USD', 12, NULL, 'active'),
                    ('t', '5', 'g.dev', 'g', 'dev', 'bid', 12, 'USD', 12, now() - interval '1 hour', 'active'),
                    ('t', '6', 'd.dev', 'd', 'dev', 'bid', 500, 'USD', 500, now() - interval '1 day', 'ended'),
                    ('t', '7', 'e.dev', 'e', 'dev', 'bid', 900, 'USD', 900, now() - interval '1 day', 'sold'),
                    ('t', '8', 'x.co.uk', 'x', 'co.uk', 'bid', 30, 'USD', 30, now() + interval '1 day', 'active')""")
    db.execute("SELECT pounce.refresh_tld_intel()")
    assert db.execute("SELECT tld, active_auctions, median_auction_price_usd FROM api.tld_intel "
                      "WHERE tld IN ('dev', 'uk') ORDER BY tld").fetchall() == [
        ("dev", 4, D("11.50")), ("uk", 1, D("30.00"))]  # dev: 10, 11 (10 EUR), 12, 40


def test_the_api_reads_as_anon(db, collector, api_request):
    intel_fixture(db, collector)
    detect(db)
    db.execute("SELECT pounce.refresh_tld_intel()")
    with api_request("anon") as conn:
        page = conn.execute("SELECT tld, cheapest_registration_usd FROM api.tld_intel "
                            "ORDER BY cheapest_registration_usd NULLS LAST, tld LIMIT 2").fetchall()
        assert page[0] == ("dev", D("10.00"))
        assert [r[0] for r in conn.execute("SELECT tld FROM api.tld_compare(%s)", [["IO", ".dev", "xyz"]])] == \
            ["io", "dev", "xyz"]
        history = conn.execute("SELECT registrar, price, observed_at FROM api.tld_price_history('dev', 'r1', "
                               "'registration')").fetchall()
        assert [(r[0], r[1]) for r in history] == [("r1", D(20)), ("r1", D(10))]
        recent = conn.execute("""SELECT registrar, kind, price FROM api.tld_price_history('dev', "from" => %s)""",
                              [NOW - timedelta(days=15)]).fetchall()
        # what held in the last 15 days: the current prices (nothing newer ended before)
        assert len(recent) == 10 and ("r1", "registration", D(20)) not in recent
        changes = conn.execute("SELECT registrar, direction FROM api.price_changes WHERE direction IN ('up', 'down') "
                               "ORDER BY observed_at").fetchall()
        assert changes == [("r2", "down"), ("r1", "down")]
        offers = conn.execute("SELECT registrar, price, currency FROM api.tld_offers "
                              "WHERE tld = 'dev' AND kind = 'registration' ORDER BY registrar").fetchall()
        assert offers == [("r1", D(10), "USD"), ("r2", D(12), "USD"), ("r3", D(10), "EUR"), ("r4", D(500), "JPY")]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM pounce.price_change_events(0, 10)")


# ---------------------------------------------------------------------------
# The Porkbun-format parser
# ---------------------------------------------------------------------------

def test_porkbun_document_becomes_price_rows(db, collector):
    doc = (FIXTURES / "porkbun_pricing.json").read_text()
    rows = porkbun.parse_pricing(doc)
    assert len(rows) == 8 * 3  # the Handshake entry is skipped
    com = {r["kind"]: r for r in rows if r["tld"] == "com"}
    assert com["registration"] == {"tld": "com", "kind": "registration", "price": "8.68", "currency": "USD",
                                   "promo": True, "promo_terms": "first_year_only", "regular_price": "9.68"}
    assert com["renewal"]["price"] == "10.88" and "promo" not in com["renewal"]
    design = next(r for r in rows if r["tld"] == "design" and r["kind"] == "registration")
    assert design["price"] == "42.53"  # 10 percent off 47.25

    fetched = NOW - timedelta(hours=1)
    assert porkbun.ingest(collector, doc, fetched) == dict(inserted=24, updated=0, unchanged=0, rejected=0,
                                                           withdrawn=0)
    assert porkbun.ingest(collector, doc, fetched)["unchanged"] == 24  # the same delivery twice
    assert porkbun.ingest(collector, doc)["updated"] == 24  # a later fetch of the same prices
    assert db.execute("SELECT price, promo, promo_terms, regular_price FROM pounce.tld_prices "
                      "WHERE tld = 'com' AND kind = 'registration'").fetchone() == \
        (D("8.68"), True, "first_year_only", D("9.68"))
    assert db.execute("SELECT count(*) FROM pounce.tld_prices WHERE tld = 'xn--p1ai'").fetchone()[0] == 3


def test_porkbun_damaged_document_rejects_rows_and_keeps_the_rest(db, collector):
    porkbun.ingest(collector, (FIXTURES / "porkbun_pricing.json").read_text(), observed_at=NOW - timedelta(days=1))
    counts = porkbun.ingest(collector, (FIXTURES / "porkbun_pricing_damaged.json").read_text())
    # com: 2 unchanged prices + 1 without its coupon; net and org: one bad row each, the
    # rest seen again; notarealtld: 3 rejects; missing TLDs (io, xyz, dev, xn--p1ai, design) withdrawn
    assert counts == dict(inserted=1, updated=6, unchanged=0, rejected=5, withdrawn=15)
    reasons = {r[0] for r in db.execute("SELECT reason FROM pounce.ingest_rejects")}
    assert reasons == {'unparseable price "$1,2x4"', "negative price -10.74", 'unknown TLD "notarealtld"'}


def test_porkbun_error_answer_is_refused_before_the_database(collector):
    with pytest.raises(porkbun.PricingDocumentError, match="Rate limit exceeded"):
        porkbun.parse_pricing((FIXTURES / "porkbun_error.json").read_text())
