"""Market (sql/market/): pounce_score, ingestion, snapshots, closing, valuation, name
vectors, the feed with filters, sorts and keyset pages, and listings under RLS.
Feed and RPC calls go through api_request, i.e. as PostgREST makes them."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import psycopg
import pytest
from psycopg import errors
from psycopg.types.json import Jsonb

NOW = datetime.now(timezone.utc)


def iso(dt: datetime) -> str:
    return dt.isoformat()


def ingest(db, platform, rows):
    return db.execute("SELECT * FROM collector.ingest_auctions(%s, %s)", [platform, Jsonb(rows)]).fetchone()


def score(db, domain):
    return db.execute("SELECT api.score_breakdown(%s)", [domain]).fetchone()[0]


def auction(i, domain, price, *, bids=0, hours=24, type_="bid", **extra):
    row = {"id": str(i), "domain": domain, "price": price, "bids": bids, "type": type_,
           "end_time": iso(NOW + timedelta(hours=hours)), "url": f"https://auctions.example/{i}"}
    row.update(extra)
    return row


# --- pounce_score ------------------------------------------------------------------------

def test_named_score_examples(db):
    assert score(db, "ai.com")["pounce_score"] > score(db, "best-cheap-loans-2024.xyz")["pounce_score"]
    # a hyphen costs: the same words, the same TLD
    plain, hyphen = score(db, "cloudking.com"), score(db, "cloud-king.com")
    assert plain["pounce_score"] > hyphen["pounce_score"]
    assert plain["components"]["characters"]["points"] > hyphen["components"]["characters"]["points"]
    # a dictionary word helps: same length, same letters class, equally pronounceable
    word, nonword = score(db, "cloud.com"), score(db, "cloux.com")
    assert word["components"]["dictionary"]["points"] == 15 and nonword["components"]["dictionary"]["points"] == 0
    assert word["pounce_score"] - nonword["pounce_score"] == 15
    # digits cost against letters; .com beats .xyz
    assert score(db, "cloud.com")["pounce_score"] > score(db, "cloud1.com")["pounce_score"]
    assert score(db, "cloud.com")["pounce_score"] > score(db, "cloud.xyz")["pounce_score"]


def test_breakdown_components_sum_to_the_stored_score(db):
    ingest(db, "dropcatch", [auction(1, "sunrise.io", 40, bids=5)])
    db.execute("UPDATE pounce.auctions SET est_value = 500")  # deal component: 500 / 40 >= 3
    b = score(db, "sunrise.io")
    stored = db.execute("SELECT pounce_score FROM pounce.auctions").fetchone()[0]
    parts = b["components"]
    assert b["on_market"] is True and b["item"]["kind"] == "auction"
    assert sum(p["points"] for p in parts.values()) == b["pounce_score"] == stored
    assert parts["bids"] == {"points": 5, "max": 10, "value": 5}
    assert parts["deal"]["points"] == 5
    assert {k: p["max"] for k, p in parts.items()} == {
        "length": 25, "characters": 15, "tld": 20, "pronounceable": 10, "dictionary": 15, "bids": 10, "deal": 5}


def test_word_quality_levels(db):
    got = dict(db.execute(
        "SELECT w, pounce.word_quality(w) FROM unnest(%s::text[]) AS w",
        [["cloud", "cloudking", "best-cheap-loans", "cloudzq", "xqzt", "cloud9"]]).fetchall())
    assert got == {"cloud": 100, "cloudking": 80, "best-cheap-loans": 60, "cloudzq": 40, "xqzt": 0, "cloud9": 0}


# --- ingestion ---------------------------------------------------------------------------

def test_ingest_stores_good_rows_and_rejects_bad_ones_with_reasons(db):
    rows = [
        auction(1, "Cloud.COM", "$1,234", bids="3"),
        auction(2, "bad..com", 5),
        auction(3, "fine.com", "$1,2x4"),
        auction(4, "neg.com", -5),
        auction(5, "cur.com", 5, currency="XYZ"),
        {"id": "6", "domain": "noend.com", "price": 5, "type": "bid"},
        auction(1, "dup.com", 5),
        auction(7, "buynow.io", 50, type_="buy_now", end_time=None),
        auction(8, "Shop.Co.UK.", 50),
        auction(9, "münchen.de", "99.50 USD"),
        auction(10, "x.notatld", 5),
        "not an object",
    ]
    counts = ingest(db, "godaddy", rows)
    assert counts == (4, 0, 0, 8), db.execute("SELECT reason FROM pounce.ingest_rejects").fetchall()
    stored = db.execute("SELECT platform_id, domain, sld, tld, current_price, bids FROM pounce.auctions"
                        " ORDER BY platform_id::int").fetchall()
    assert stored == [("1", "cloud.com", "cloud", "com", Decimal("1234.00"), 3),
                      ("7", "buynow.io", "buynow", "io", Decimal("50.00"), 0),
                      ("8", "shop.co.uk", "shop", "co.uk", Decimal("50.00"), 0),
                      ("9", "xn--mnchen-3ya.de", "xn--mnchen-3ya", "de", Decimal("99.50"), 0)]
    reasons = db.execute("SELECT source, reason, raw FROM pounce.ingest_rejects ORDER BY id").fetchall()
    assert {r[0] for r in reasons} == {"auctions:godaddy"}
    texts = [r[1] for r in reasons]
    assert texts[0].startswith('invalid domain name "bad..com"')
    assert texts[1] == 'price "$1,2x4" is not a number'
    assert texts[2] == "price -5 is negative"
    assert texts[3] == 'unknown currency "XYZ"'
    assert texts[4] == "a bid auction needs an end_time"
    assert texts[5] == "duplicate of id 1 earlier in this batch"
    assert texts[6].startswith('unknown top-level domain "notatld"')
    assert texts[7] == "row is not a JSON object"
    # the raw row is kept verbatim for inspection
    assert reasons[1][2]["price"] == "$1,2x4"


def test_www_names_are_accepted_as_their_registrable_domain_only_when_exact(db):
    # a subdomain is not an auction of the registrable name: rejected with the hint
    ingest(db, "godaddy", [auction(1, "www.cloud.com", 10)])
    reason = db.execute("SELECT reason FROM pounce.ingest_rejects").fetchone()[0]
    assert reason == '"www.cloud.com" is not a registrable domain (did you mean cloud.com?)'


def test_ingest_is_idempotent_and_detects_changes(db):
    rows = [auction(i, f"name{i}.com", 10 * i + 0.004, bids=i) for i in range(1, 6)]  # stored as 10.00, ...
    assert ingest(db, "sedo", rows) == (5, 0, 0, 0)
    before = db.execute("SELECT id, current_price, bids, updated_at, status FROM pounce.auctions ORDER BY id").fetchall()
    assert ingest(db, "sedo", rows) == (0, 0, 5, 0)
    after = db.execute("SELECT id, current_price, bids, updated_at, status FROM pounce.auctions ORDER BY id").fetchall()
    assert after == before
    rows[0]["price"], rows[1]["bids"] = 999, 42
    assert ingest(db, "sedo", rows + [auction(6, "name6.com", 60)]) == (1, 2, 3, 0)
    changed = db.execute("SELECT platform_id FROM pounce.auctions WHERE updated_at > %s ORDER BY 1",
                         [before[0][3]]).fetchall()
    assert [r[0] for r in changed] == ["1", "2", "6"]
    # the same platform id on another platform is another auction
    assert ingest(db, "namejet", [auction(1, "name1.com", 10)]) == (1, 0, 0, 0)


def test_finish_snapshot_ends_only_unseen_auctions_of_that_platform(db):
    ingest(db, "godaddy", [auction(i, f"snap{i}.com", 10) for i in range(1, 5)])
    ingest(db, "sedo", [auction(1, "other.com", 10)])
    started = db.execute("SELECT clock_timestamp()").fetchone()[0]
    ingest(db, "godaddy", [auction(i, f"snap{i}.com", 10) for i in (1, 2)])
    assert db.execute("SELECT collector.finish_snapshot('godaddy', %s)", [started]).fetchone()[0] == 2
    status = dict(db.execute("SELECT domain, status FROM pounce.auctions").fetchall())
    assert status == {"snap1.com": "active", "snap2.com": "active", "snap3.com": "ended",
                      "snap4.com": "ended", "other.com": "active"}
    # an ended auction that reappears (a snapshot ended it early) is active again
    ingest(db, "godaddy", [auction(3, "snap3.com", 10)])
    assert db.execute("SELECT status FROM pounce.auctions WHERE domain = 'snap3.com'").fetchone()[0] == "active"


def test_closing_ended_auctions_records_sales(db):
    ingest(db, "godaddy", [auction(1, "sold.com", 500, bids=4), auction(2, "unsold.com", 50, bids=0),
                           auction(3, "later.com", 70, bids=2)])
    db.execute("UPDATE pounce.auctions SET end_time = now() - interval '1 minute' WHERE domain <> 'later.com'")
    # past its end the auction is out of the feed even before the job runs
    feed = {r[0] for r in db.execute("SELECT domain FROM api.market_feed")}
    assert feed == {"later.com"}
    assert db.execute("SELECT pounce.close_ended_auctions()").fetchone()[0] == 2
    assert db.execute("SELECT pounce.close_ended_auctions()").fetchone()[0] == 0
    status = dict(db.execute("SELECT domain, status FROM pounce.auctions").fetchall())
    assert status == {"sold.com": "sold", "unsold.com": "ended", "later.com": "active"}
    sales = db.execute("SELECT domain, price_usd, venue, auction_id IS NOT NULL FROM pounce.sales").fetchall()
    assert sales == [("sold.com", Decimal("500.00"), "godaddy", True)]


def test_other_currencies_need_a_rate(db):
    ingest(db, "sedo", [auction(1, "euro.de", 100, currency="EUR")])
    assert db.execute("SELECT reason FROM pounce.ingest_rejects").fetchone()[0] == \
        "no exchange rate for currency EUR"
    db.execute("UPDATE pounce.currencies SET usd_rate = 1.10, rate_as_of = current_date WHERE code = 'EUR'")
    assert ingest(db, "sedo", [auction(1, "euro.de", 100, currency="EUR")])[0] == 1
    assert db.execute("SELECT price_usd FROM pounce.auctions").fetchone()[0] == Decimal("110.00")


# --- the feed ----------------------------------------------------------------------------

FEED_ROWS = [
    # domain, price, bids, hours left, platform
    ("cloud.com", 900, 12, 5, "godaddy"),
    ("cloudking.io", 120, 3, 30, "godaddy"),
    ("cloud-king.net", 15, 0, 2, "sedo"),
    ("kingdom.org", 300, 1, 50, "sedo"),
    ("data4u.com", 60, 0, 200, "namejet"),
    ("zq.ai", 2500, 8, 1, "namejet"),
    ("sunrise.io", 45, 2, 12, "dropcatch"),
    ("bestcloudhosting.com", 25, 0, 70, "dropcatch"),
    ("a1-b2.xyz", 5, 0, 100, "godaddy"),
    ("river.co.uk", 80, 1, 20, "sedo"),
    ("stone.com", 700, 5, 40, "godaddy"),
    ("apple7.net", 33, 0, 8, "namejet"),
]


@pytest.fixture
def feed_db(db):
    by_platform: dict[str, list] = {}
    for i, (domain, price, bids, hours, platform) in enumerate(FEED_ROWS, 1):
        by_platform.setdefault(platform, []).append(auction(i, domain, price, bids=bids, hours=hours))
    for platform, rows in by_platform.items():
        ingest(db, platform, rows)
    db.execute("SELECT pounce.value_market_items()")
    return db


def feed(api_request, **args):
    names = ", ".join(f"{k} => %({k})s" for k in args)
    with api_request("anon", path="/rpc/feed") as conn:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        return cur.execute(f"SELECT * FROM api.feed({names})", args).fetchall()


def all_active(db):
    return db.execute("SELECT * FROM api.market_feed").fetchall()


@pytest.mark.parametrize(("args", "expected"), [
    ({"keyword": "cloud"}, {"cloud.com", "cloudking.io", "cloud-king.net", "bestcloudhosting.com"}),
    ({"keyword": "KING"}, {"cloudking.io", "cloud-king.net", "kingdom.org"}),
    ({"tlds": ["io", "ai"]}, {"cloudking.io", "zq.ai", "sunrise.io"}),
    ({"tlds": ["co.uk"]}, {"river.co.uk"}),
    ({"min_price": 100, "max_price": 900}, {"cloud.com", "cloudking.io", "kingdom.org", "stone.com"}),
    ({"ending_within": "6 hours"}, {"cloud.com", "cloud-king.net", "zq.ai"}),
    ({"sources": ["sedo"]}, {"cloud-king.net", "kingdom.org", "river.co.uk"}),
    ({"no_digits": True, "no_hyphens": True, "max_length": 5},
     {"cloud.com", "zq.ai", "river.co.uk", "stone.com"}),
    ({"no_hyphens": True, "tlds": ["xyz", "net"]}, {"apple7.net"}),
    ({"dictionary_only": True}, {"cloud.com", "cloudking.io", "kingdom.org", "sunrise.io", "river.co.uk",
                                 "stone.com"}),
    ({"kinds": ["listing"]}, set()),
    ({"keyword": "cloud", "tlds": ["com"], "min_price": 20, "max_price": 1000},
     {"cloud.com", "bestcloudhosting.com"}),
])
def test_feed_filters(feed_db, api_request, args, expected):
    got = {r["domain"] for r in feed(api_request, **args)}
    assert got == expected


def test_feed_min_score_filter_matches_the_scores(feed_db, api_request):
    scores = {r[0]: r[1] for r in feed_db.execute("SELECT domain, pounce_score FROM api.market_feed")}
    threshold = sorted(scores.values())[len(scores) // 2]
    got = {r["domain"] for r in feed(api_request, min_score=threshold)}
    assert got == {d for d, s in scores.items() if s >= threshold} and 0 < len(got) < len(scores)


SORTS = {
    "score": (lambda r: (-r["pounce_score"], -r["id"])),
    "price_asc": (lambda r: (r["price_usd"], r["id"])),
    "price_desc": (lambda r: (-r["price_usd"], -r["id"])),
    "ending": (lambda r: (r["end_time"], r["id"])),
    "newest": (lambda r: (-r["listed_at"].timestamp(), -r["id"])),
}


@pytest.mark.parametrize("sort", SORTS)
def test_feed_sorts_and_keyset_pages_cover_everything_once(feed_db, api_request, sort):
    everything = feed(api_request, sort=sort, page_size=200)
    assert [r["id"] for r in everything] == [r["id"] for r in sorted(everything, key=SORTS[sort])]
    assert len(everything) == len(FEED_ROWS)
    pages, cursor = [], None
    while True:
        page = feed(api_request, sort=sort, page_size=5, cursor=cursor)
        if not page:
            break
        pages.append(page)
        cursor = page[-1]["next_cursor"]
    assert [len(p) for p in pages] == [5, 5, 2]
    assert [r["id"] for p in pages for r in p] == [r["id"] for r in everything]


def test_cursor_is_stable_when_items_arrive_between_pages(feed_db, api_request):
    first = feed(api_request, sort="price_asc", page_size=4)
    # new auctions, cheaper and dearer than the first page's last row, arrive meanwhile
    ingest(feed_db, "godaddy", [auction(100, "newcheap.com", 1), auction(101, "newdear.com", 5000)])
    rest, cursor = [], first[-1]["next_cursor"]
    while page := feed(api_request, sort="price_asc", page_size=4, cursor=cursor):
        rest += page
        cursor = page[-1]["next_cursor"]
    seen = [r["domain"] for r in first + rest]
    assert len(seen) == len(set(seen))  # nothing twice
    assert set(seen) == {r[0] for r in FEED_ROWS} | {"newdear.com"}  # nothing skipped
    assert "newcheap.com" not in seen  # sorts before the cursor: the next first page has it


def test_freshness_new_and_changed_auctions_show_at_once(feed_db, api_request):
    ingest(feed_db, "godaddy", [auction(200, "fresh.com", 10)])
    assert "fresh.com" in {r["domain"] for r in feed(api_request, keyword="fresh")}
    ingest(feed_db, "godaddy", [auction(200, "fresh.com", 20)])
    assert [r["price"] for r in feed(api_request, keyword="fresh")] == [Decimal("20.00")]


@pytest.mark.parametrize(("args", "message"), [
    ({"sort": "cheapest"}, "unknown sort 'cheapest'"),
    ({"cursor": "not-a-cursor"}, "invalid cursor"),
    ({"cursor": "eyJzIjoic2NvcmUifQ"}, "invalid cursor"),  # {"s":"score"}: no key, no id
    ({"cursor": "abc"}, "invalid cursor"),  # not base64
    ({"page_size": 0}, "page_size must be between 1 and 200"),
    ({"keyword": "50%"}, "invalid keyword '50%'"),
])
def test_feed_rejects_bad_arguments_clearly(feed_db, api_request, args, message):
    with pytest.raises(errors.InvalidParameterValue, match=message.replace("(", r"\(")):
        feed(api_request, **args)


def test_a_cursor_belongs_to_its_sort(feed_db, api_request):
    cursor = feed(api_request, sort="score", page_size=2)[-1]["next_cursor"]
    with pytest.raises(errors.InvalidParameterValue, match="this cursor belongs to sort 'score'"):
        feed(api_request, sort="newest", cursor=cursor)


def test_feed_view_has_values_and_deal_ratio(feed_db):
    rows = feed_db.execute("SELECT domain, est_value, price_usd, deal_ratio FROM api.market_feed").fetchall()
    assert all(r[1] is not None and r[1] > 0 for r in rows)
    assert all(r[3] == (r[1] / r[2]).quantize(Decimal('0.01'), ROUND_HALF_UP) for r in rows)


# --- valuation and name vectors ------------------------------------------------------------

def test_valuation_uses_similar_sales(db):
    ingest(db, "godaddy", [auction(1, "cloudkings.com", 100)])
    db.execute("SELECT pounce.value_market_items()")
    alone = db.execute("SELECT est_value FROM pounce.auctions").fetchone()[0]
    db.execute("""INSERT INTO pounce.sales (domain, sld, tld, price, currency, price_usd, sold_on, venue) VALUES
                  ('cloudking.com', 'cloudking', 'com', 250000, 'USD', 250000, current_date - 10, 'sedo'),
                  ('cloudkingdom.com', 'cloudkingdom', 'com', 90000, 'USD', 90000, current_date - 30, 'afternic'),
                  ('zebra.com', 'zebra', 'com', 5, 'USD', 5, current_date - 5, 'sedo')""")
    db.execute("UPDATE pounce.auctions SET valued_at = now() - interval '8 days'")  # stale: revalued
    assert db.execute("SELECT pounce.value_market_items()").fetchone()[0] == 1
    with_sales = db.execute("SELECT est_value FROM pounce.auctions").fetchone()[0]
    assert with_sales > alone * 5
    v = db.execute("SELECT api.valuation('cloudkings.com')").fetchone()[0]
    comparables = [c["domain"] for c in v["comparables"]]
    assert comparables[0] == "cloudking.com" and "zebra.com" not in comparables
    assert Decimal(str(v["est_value"])) == with_sales == Decimal(str(v["stored_est_value"]))
    assert v["prior_usd"] > 0 and v["features"]["word_quality"] == 80


def test_similar_domains_are_nearest_by_spelling(feed_db, api_request):
    with api_request("anon", path="/rpc/similar_domains") as conn:
        got = conn.execute("SELECT similar_domain, similarity FROM api.similar_domains('cloudkings.com', 3)").fetchall()
    assert [g[0] for g in got][:2] == ["cloudking.io", "cloud-king.net"] or got[0][0] == "cloudking.io"
    assert got[0][0] == "cloudking.io"
    assert [g[1] for g in got] == sorted((g[1] for g in got), reverse=True)
    with api_request("anon") as conn:  # the name itself is not "similar"
        names = {r[0] for r in conn.execute("SELECT similar_domain FROM api.similar_domains('cloud.com', 20)")}
    assert "cloud.com" not in names and "cloudking.io" in names


# --- listings ----------------------------------------------------------------------------

def create_listing(api_request, user, domain, price=500, **extra):
    cols = ["domain", "asking_price", *extra]
    with api_request("member", user, method="POST", path="/listings") as conn:
        return conn.execute(
            f"INSERT INTO api.listings ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})"
            " RETURNING id, domain, status, verification_record, verification_value",
            [domain, price, *extra.values()]).fetchone()


def test_listing_flow_draft_verify_activate(db, make_user, api_request):
    alice, _ = make_user()
    lid, domain, status, record, value = create_listing(api_request, alice, "Example-Shop.COM")
    assert (domain, status, record) == ("example-shop.com", "draft", "_pounce.example-shop.com")
    with pytest.raises(errors.RaiseException, match="not verified yet"):
        with api_request("member", alice, method="PATCH") as conn:
            conn.execute("UPDATE api.listings SET status = 'active' WHERE id = %s", [lid])
    def record(*results):
        return db.execute("SELECT collector.record_listing_verifications(%s)", [Jsonb(list(results))]).fetchone()[0]

    assert record({"listing_id": lid, "txt_records": ["pounce-verify=wrong", "v=spf1 -all"]}) == 0
    assert db.execute("SELECT verified_at FROM pounce.listings").fetchone()[0] is None
    assert record({"listing_id": lid, "txt_records": ["v=spf1 -all", value]}, {"listing_id": 999, "txt_records": []}) == 1
    assert record({"listing_id": lid, "txt_records": []}) == 0  # stays verified
    with api_request("member", alice, method="PATCH") as conn:
        conn.execute("UPDATE api.listings SET status = 'active' WHERE id = %s", [lid])
    with api_request("anon") as conn:
        row = conn.execute("SELECT kind, source, price FROM api.market_feed WHERE id = %s", [lid]).fetchone()
    assert row == ("listing", "pounce", Decimal("500.00"))
    # the public face follows the listing: a new price, then withdrawal, then deletion
    with api_request("member", alice, method="PATCH") as conn:
        conn.execute("UPDATE api.listings SET asking_price = 450 WHERE id = %s", [lid])
    with api_request("anon") as conn:
        assert conn.execute("SELECT price FROM api.market_feed WHERE id = %s", [lid]).fetchone() == (Decimal("450.00"),)
    with api_request("member", alice, method="PATCH") as conn:
        conn.execute("UPDATE api.listings SET status = 'withdrawn' WHERE id = %s", [lid])
    assert db.execute("SELECT count(*) FROM pounce.listing_offers").fetchone()[0] == 0
    with api_request("member", alice, method="PATCH") as conn:
        conn.execute("UPDATE api.listings SET status = 'active' WHERE id = %s", [lid])
    assert db.execute("SELECT count(*) FROM pounce.listing_offers").fetchone()[0] == 1
    with api_request("member", alice, method="DELETE") as conn:
        conn.execute("DELETE FROM api.listings WHERE id = %s", [lid])
    assert db.execute("SELECT count(*) FROM pounce.listing_offers").fetchone()[0] == 0


def test_listings_are_private_to_their_seller(db, make_user, api_request):
    alice, _ = make_user()
    bob, _ = make_user()
    lid = create_listing(api_request, alice, "alices.com")[0]
    with api_request("member", bob) as conn:
        assert conn.execute("SELECT count(*) FROM api.listings").fetchone()[0] == 0
        assert conn.execute("UPDATE api.listings SET asking_price = 1 WHERE id = %s", [lid]).rowcount == 0
        assert conn.execute("DELETE FROM api.listings WHERE id = %s", [lid]).rowcount == 0
        # a draft is not in the feed either
        assert conn.execute("SELECT count(*) FROM api.market_feed WHERE id = %s", [lid]).fetchone()[0] == 0
    with api_request("anon") as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM api.listings")
    # members cannot set what the system owns
    with api_request("member", alice) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("UPDATE api.listings SET verified_at = now() WHERE id = %s", [lid])
    assert db.execute("SELECT asking_price, verified_at FROM pounce.listings").fetchone() == (Decimal("500.00"), None)


def test_listing_rejects_bad_names_with_the_reason(make_user, api_request):
    alice, _ = make_user()
    with pytest.raises(errors.InvalidParameterValue, match='label "-bad" starts or ends with a hyphen'):
        create_listing(api_request, alice, "-bad.com")
    with pytest.raises(errors.InvalidParameterValue, match="not a registrable domain"):
        create_listing(api_request, alice, "shop.example.com")


def test_listing_limit_is_race_safe(settings, secrets, db, db_name, make_user):
    alice, _ = make_user()  # scout: one open listing
    assert db.execute("SELECT listing_limit FROM pounce.tiers WHERE tier = 'scout'").fetchone()[0] == 1
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt(domain):
        with psycopg.connect(host="127.0.0.1", port=settings.port, dbname=db_name, user="authenticator",
                             password=secrets["POUNCE_AUTHENTICATOR_PASSWORD"]) as conn:
            conn.execute("SELECT set_config('role', 'member', true), set_config('request.jwt.claims', %s, true)",
                         [json.dumps({"role": "member", "sub": str(alice)})])
            barrier.wait()
            try:
                conn.execute("INSERT INTO api.listings (domain, asking_price) VALUES (%s, 100)", [domain])
                conn.commit()
                outcomes.append("ok")
            except errors.RaiseException as e:
                outcomes.append(str(e).splitlines()[0])

    threads = [threading.Thread(target=attempt, args=(d,)) for d in ("first.com", "second.com")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["listing limit reached: your plan allows 1 open listings", "ok"]
    assert db.execute("SELECT count(*) FROM pounce.listings").fetchone()[0] == 1


# --- jobs ----------------------------------------------------------------------------------

def test_market_jobs_are_declared(db):
    jobs = dict(db.execute("SELECT jobname, command FROM pounce.cron_jobs").fetchall())
    assert jobs["pounce.value_market_items"] == "SELECT pounce.value_market_items(2000)"
    assert jobs["pounce.close_ended_auctions"] == "SELECT pounce.close_ended_auctions()"
    assert jobs["pounce.prune_ingest_rejects"] == "SELECT pounce.prune_ingest_rejects()"
    assert "pounce.prune_market_names" in jobs


def test_prune_jobs_keep_what_is_current(feed_db):
    feed_db.execute("INSERT INTO pounce.ingest_rejects (source, reason, raw, received_at) VALUES"
                    " ('t', 'old', '{}', now() - interval '31 days'), ('t', 'new', '{}', now())")
    assert feed_db.execute("SELECT pounce.prune_ingest_rejects()").fetchone()[0] == 1
    names = feed_db.execute("SELECT count(*) FROM pounce.market_names").fetchone()[0]
    assert names == len(FEED_ROWS)
    feed_db.execute("UPDATE pounce.auctions SET status = 'ended' WHERE domain = 'stone.com'")
    assert feed_db.execute("SELECT pounce.prune_market_names()").fetchone()[0] == 1


def test_valuation_starts_from_the_tlds_registration_cost(db):
    """The prior scales with the cheapest registration price the TLD intel knows."""
    before = db.execute("SELECT api.valuation('cloudzz.io')").fetchone()[0]
    assert before["registration_cost_usd"] is None  # no prices yet: $10 assumed
    db.execute("""SELECT * FROM collector.ingest_tld_prices('porkbun', '[
                    {"tld": "io", "kind": "registration", "price": "38.00", "currency": "USD"},
                    {"tld": "io", "kind": "renewal", "price": "50.00", "currency": "USD"}]'::jsonb, false)""")
    db.execute("SELECT pounce.refresh_tld_intel()")
    after = db.execute("SELECT api.valuation('cloudzz.io')").fetchone()[0]
    assert after["registration_cost_usd"] == 38
    assert after["prior_usd"] == pytest.approx(before["prior_usd"] * 3.8, rel=0.01)
