"""Sniper alerts, matching, the outbox, digests and unsubscribe, in SQL, the way PostgREST
calls it (sql/alerts/). The mailer and the SMTP side are in test_alerts_mail.py."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg.types.json import Jsonb

from pounce import cluster

FAR = "2031-01-01T00:00:00Z"


def ingest(db, platform, rows):
    return db.execute("SELECT * FROM collector.ingest_auctions(%s, %s)", [platform, Jsonb(rows)]).fetchone()


def auction(pid, domain, price, end=FAR, **kw):
    return {"id": str(pid), "domain": domain, "price": price, "end_time": end, **kw}


def create_alert(api_request, user_id, **criteria):
    cols = list(criteria)
    with api_request("member", user_id, "POST", "/sniper_alerts") as c:
        return c.execute(
            f"INSERT INTO api.sniper_alerts ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))}) RETURNING id",
            [criteria[k] for k in cols]).fetchone()[0]


def match(db):
    return db.execute("SELECT * FROM pounce.match_alerts()").fetchone()


def matched(db, alert_id):
    return sorted(r[0] for r in db.execute(
        "SELECT domain FROM pounce.alert_matches WHERE alert_id = %s", [alert_id]).fetchall())


# ---- criteria are exact -------------------------------------------------------------

def test_matching_is_exact_on_every_criterion(db, api_request, tycoon):
    alerts = {
        "keywords": create_alert(api_request, tycoon, name="kw", keywords=["Cloud", "sky"]),
        "excluded": create_alert(api_request, tycoon, name="ex", keywords=["cloud"], excluded_keywords=["my"]),
        "tlds": create_alert(api_request, tycoon, name="tld", tlds=[".IO", "ai"]),
        "price": create_alert(api_request, tycoon, name="price", keywords=["cloud"], max_price=100),
        "length": create_alert(api_request, tycoon, name="len", keywords=["cloud"], max_length=6),
        "digits": create_alert(api_request, tycoon, name="dig", keywords=["cloud"], no_digits=True),
        "hyphens": create_alert(api_request, tycoon, name="hyp", keywords=["cloud"], no_hyphens=True),
        "score": create_alert(api_request, tycoon, name="score", keywords=["cloud"], min_score=60),
        "platforms": create_alert(api_request, tycoon, name="plat", keywords=["cloud"], platforms=["Dropcatch"]),
        "ending": create_alert(api_request, tycoon, name="end", keywords=["cloud"], ending_within="2 days"),
        "listing_only": create_alert(api_request, tycoon, name="lst", keywords=["cloud"], kind="listing"),
    }
    soon = db.execute("SELECT (now() + interval '1 day')::text").fetchone()[0]
    ingest(db, "godaddy", [
        auction(1, "cloud.com", 50), auction(2, "mycloud.io", 500), auction(3, "cloud9.com", 20),
        auction(4, "cloud-x.com", 20), auction(5, "skyline.ai", 5000), auction(6, "other.net", 1),
        auction(7, "cloud.io", 80, end=soon)])
    ingest(db, "dropcatch", [auction(1, "bigcloud.net", 300)])
    scores = dict(db.execute("SELECT domain, pounce_score FROM pounce.auctions").fetchall())
    counts = match(db)
    assert counts[0] == 8  # items read

    cloudy = ["bigcloud.net", "cloud-x.com", "cloud.com", "cloud.io", "cloud9.com", "mycloud.io"]
    assert matched(db, alerts["keywords"]) == sorted(cloudy + ["skyline.ai"])
    assert matched(db, alerts["excluded"]) == sorted(set(cloudy) - {"mycloud.io"})
    assert matched(db, alerts["tlds"]) == ["cloud.io", "mycloud.io", "skyline.ai"]
    assert matched(db, alerts["price"]) == ["cloud-x.com", "cloud.com", "cloud.io", "cloud9.com"]
    assert matched(db, alerts["length"]) == ["cloud.com", "cloud.io", "cloud9.com"]
    assert matched(db, alerts["digits"]) == sorted(set(cloudy) - {"cloud9.com"})
    assert matched(db, alerts["hyphens"]) == sorted(set(cloudy) - {"cloud-x.com"})
    assert matched(db, alerts["score"]) == sorted(d for d in cloudy if scores[d] >= 60)
    assert 0 < len(matched(db, alerts["score"])) < len(cloudy)  # the threshold splits the set
    assert matched(db, alerts["platforms"]) == ["bigcloud.net"]
    assert matched(db, alerts["ending"]) == ["cloud.io"]
    assert matched(db, alerts["listing_only"]) == []
    # every match notified its owner once
    assert counts[1] == counts[2] == db.execute("SELECT count(*) FROM pounce.alert_matches").fetchone()[0]


def test_a_rerun_or_overlap_never_duplicates_and_a_price_drop_is_a_new_match(db, api_request, tycoon):
    alert = create_alert(api_request, tycoon, name="cheap cloud", keywords=["cloud"], max_price=300)
    ingest(db, "godaddy", [auction(1, "cloudbase.com", 400), auction(2, "cloudy.com", 200)])
    assert match(db)[1:3] == (1, 1)
    # the overlap window re-reads the same items: nothing new
    assert match(db)[1:3] == (0, 0)
    db.execute("UPDATE pounce.alert_match_watermark SET matched_through = now() - interval '1 day'")
    assert match(db)[1:3] == (0, 0)
    # above the maximum, then below it: a first match
    ingest(db, "godaddy", [auction(1, "cloudbase.com", 250), auction(2, "cloudy.com", 200)])
    assert match(db)[1:3] == (1, 1)
    # a matched item drops further: a new match (times 2), notified again
    ingest(db, "godaddy", [auction(1, "cloudbase.com", 250), auction(2, "cloudy.com", 150)])
    assert match(db)[1:3] == (1, 1)
    # a price rise is no news
    ingest(db, "godaddy", [auction(1, "cloudbase.com", 260), auction(2, "cloudy.com", 150)])
    assert match(db)[1:3] == (0, 0)
    rows = db.execute("SELECT domain, price_usd, times FROM pounce.alert_matches WHERE alert_id = %s ORDER BY domain",
                      [alert]).fetchall()
    assert [(d, float(p), t) for d, p, t in rows] == [("cloudbase.com", 250.0, 1), ("cloudy.com", 150.0, 2)]
    notes = db.execute("SELECT payload FROM pounce.notifications WHERE kind = 'sniper.match' ORDER BY id").fetchall()
    assert [(n[0]["domain"], n[0]["price_drop"]) for n in notes] == [
        ("cloudy.com", False), ("cloudbase.com", False), ("cloudy.com", True)]


def test_overlapping_runs_serialise_and_do_not_duplicate(settings, db, db_name, api_request, tycoon):
    create_alert(api_request, tycoon, name="all com", tlds=["com"])
    ingest(db, "godaddy", [auction(n, f"name{n}x.com", 10) for n in range(50)])

    def run(_):
        with psycopg.connect(settings.conninfo(db_name), autocommit=True) as c:
            return c.execute("SELECT matches FROM pounce.match_alerts()").fetchone()[0]

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(run, range(3)))
    assert sum(results) == 50
    assert db.execute("SELECT count(*) FROM pounce.notifications WHERE kind = 'sniper.match'").fetchone()[0] == 50


def test_inactive_alerts_disabled_members_and_listings(db, api_request, tycoon, make_user):
    active = create_alert(api_request, tycoon, name="on", keywords=["shop"])
    off = create_alert(api_request, tycoon, name="off", keywords=["shop"])
    with api_request("member", tycoon, "PATCH", "/sniper_alerts") as c:
        c.execute("UPDATE api.sniper_alerts SET active = false WHERE id = %s", [off])
    other, _ = make_user()
    gone = create_alert(api_request, other, name="disabled", keywords=["shop"])
    db.execute("UPDATE pounce.users SET disabled = true WHERE id = %s", [other])
    # a member's listing becomes active (verified), so it is a new market item
    seller, _ = make_user()
    with api_request("member", seller, "POST", "/listings") as c:
        lid = c.execute("INSERT INTO api.listings (domain, asking_price) VALUES ('shopfast.com', 900) RETURNING id"
                        ).fetchone()[0]
    db.execute("UPDATE pounce.listings SET verified_at = now(), status = 'active' WHERE id = %s", [lid])
    match(db)
    assert matched(db, active) == ["shopfast.com"]
    assert matched(db, off) == [] and matched(db, gone) == []
    kind = db.execute("SELECT item_kind FROM pounce.alert_matches WHERE alert_id = %s", [active]).fetchone()[0]
    assert kind == "listing"


# ---- the API: CRUD under RLS, limits, validation, preview ------------------------------

def test_members_see_only_their_alerts_and_matches(db, api_request, tycoon, make_user):
    mine = create_alert(api_request, tycoon, name="mine", keywords=["zebra"])
    other, _ = make_user()
    theirs = create_alert(api_request, other, name="theirs", keywords=["zebra"])
    ingest(db, "godaddy", [auction(1, "zebra.com", 10)])
    match(db)
    with api_request("member", tycoon) as c:
        assert [r[0] for r in c.execute("SELECT id FROM api.sniper_alerts").fetchall()] == [mine]
        assert [r[0] for r in c.execute("SELECT alert_id FROM api.alert_matches").fetchall()] == [mine]
        assert c.execute("UPDATE api.sniper_alerts SET name = 'x' WHERE id = %s", [theirs]).rowcount == 0
        assert c.execute("DELETE FROM api.sniper_alerts WHERE id = %s", [theirs]).rowcount == 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege), api_request("anon") as c:
        c.execute("SELECT * FROM api.sniper_alerts")


def test_the_plan_limit_holds_under_concurrent_inserts(settings, secrets, db, db_name, make_user):
    uid, _ = make_user()  # scout: 2 alerts
    limit = db.execute("SELECT sniper_alert_limit FROM pounce.tiers WHERE tier = 'scout'").fetchone()[0]

    def insert(n):
        with psycopg.connect(host="127.0.0.1", port=settings.port, dbname=db_name, user="authenticator",
                             password=secrets["POUNCE_AUTHENTICATOR_PASSWORD"]) as c:
            c.execute("SELECT set_config('role', 'member', true), set_config('request.jwt.claims', %s, true)",
                      [json.dumps({"role": "member", "sub": str(uid)})])
            try:
                c.execute("INSERT INTO api.sniper_alerts (name) VALUES (%s)", [f"a{n}"])
                c.commit()
                return "ok"
            except psycopg.errors.RaiseException as e:
                assert "sniper alert limit reached" in str(e)
                return "limit"

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(insert, range(6)))
    assert results.count("ok") == limit
    assert db.execute("SELECT count(*) FROM pounce.sniper_alerts WHERE user_id = %s", [uid]).fetchone()[0] == limit


def test_criteria_are_normalised_and_validated(api_request, tycoon):
    aid = create_alert(api_request, tycoon, name="  norm ", keywords=["Cloud ", "cloud", ""], tlds=[".COM", "münchen"],
                       platforms=[" GoDaddy"])
    with api_request("member", tycoon) as c:
        row = c.execute("SELECT name, keywords, tlds, platforms FROM api.sniper_alerts WHERE id = %s", [aid]).fetchone()
    assert row == ("norm", ["cloud"], ["com", "xn--mnchen-3ya"], ["godaddy"])
    for bad, message in ((dict(keywords=["no spaces"]), "invalid keyword"), (dict(tlds=["c_m"]), "invalid TLD"),
                         (dict(delivery="hourly"), "sniper_alerts_delivery_check"),
                         (dict(max_price=-1), "sniper_alerts_max_price_check")):
        with pytest.raises(psycopg.Error, match=message):
            create_alert(api_request, tycoon, name="bad", **bad)


def test_alert_preview_shows_what_would_match_now(db, api_request, tycoon):
    ingest(db, "godaddy", [auction(1, "cloud.com", 50), auction(2, "cloud9.com", 20), auction(3, "other.com", 5)])
    with api_request("member", tycoon, "POST", "/rpc/alert_preview") as c:
        rows = c.execute("SELECT domain FROM api.alert_preview(%s)",
                         [Jsonb({"keywords": ["CLOUD"], "no_digits": True})]).fetchall()
        assert rows == [("cloud.com",)]
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="invalid keyword"):
            c.execute("SELECT * FROM api.alert_preview(%s)", [Jsonb({"keywords": ["a b"]})])
    # the preview saves nothing
    assert db.execute("SELECT count(*) FROM pounce.sniper_alerts").fetchone()[0] == 0


# ---- e-mail: instant, digests, unsubscribe ----------------------------------------------

def outbox(db):
    return db.execute("SELECT user_id, category, subject, body_text, body_html FROM pounce.email_outbox ORDER BY id"
                      ).fetchall()


def test_instant_and_digest_emails_are_rendered_and_never_twice(db, api_request, tycoon):
    create_alert(api_request, tycoon, name="now", keywords=["rocket"], delivery="instant")
    create_alert(api_request, tycoon, name="later <b>", keywords=["comet"], delivery="daily")
    create_alert(api_request, tycoon, name="weekly", keywords=["meteor"], delivery="weekly")
    ingest(db, "godaddy", [auction(1, "rocket.com", 10), auction(2, "comet.io", 20), auction(3, "meteor.ai", 30)])
    assert match(db)[3] == 1  # one instant e-mail
    assert db.execute("SELECT pounce.queue_instant_emails()").fetchone()[0] == 0
    [(uid, cat, subject, text, html)] = outbox(db)
    assert (uid, cat) == (tycoon, "sniper")
    assert subject == 'Pounce alert "now": rocket.com for 10.00 USD'
    assert "rocket.com" in text and "/unsubscribe?token=" in text and "<" not in text.split("--")[0]
    assert html.startswith("<!doctype html>") and "<strong>rocket.com</strong>" in html

    assert db.execute("SELECT pounce.queue_digests('daily')").fetchone()[0] == 1
    assert db.execute("SELECT pounce.queue_digests('daily')").fetchone()[0] == 0  # nothing new since
    _, cat, subject, text, html = outbox(db)[1]
    assert cat == "digest" and subject == "Your Pounce daily digest: 1 updates"
    assert "comet.io" in text and "rocket.com" not in text and "meteor" not in text
    assert 'alert "later <b>"' in text and "later &lt;b&gt;" in html and "<b>" not in html
    assert db.execute("SELECT pounce.queue_digests('weekly')").fetchone()[0] == 1
    assert "meteor.ai" in outbox(db)[2][3]


def test_watch_events_are_instant_and_other_notifications_follow_the_digest_preference(db, tycoon):
    db.execute("""INSERT INTO pounce.notifications (user_id, kind, payload, dedup_key) VALUES
                  (%(u)s, 'watch.available', '{"domain": "free.com"}', 'a'),
                  (%(u)s, 'watch.pending_delete', '{"domain": "drop.com", "predicted_drop_on": "2026-12-09"}', 'b'),
                  (%(u)s, 'watch.expiring', '{"domain": "old.com", "within_days": 7}', 'c')""", {"u": tycoon})
    assert db.execute("SELECT pounce.queue_instant_emails()").fetchone()[0] == 2
    subjects = [r[2] for r in outbox(db)]
    assert subjects == ["free.com is available to register", "drop.com entered pendingDelete"]
    assert "2026-12-09" in outbox(db)[1][3]
    db.execute("INSERT INTO pounce.email_settings (user_id, digest) VALUES (%s, 'weekly')", [tycoon])
    assert db.execute("SELECT pounce.queue_digests('daily')").fetchone()[0] == 0
    assert db.execute("SELECT pounce.queue_digests('weekly')").fetchone()[0] == 1
    assert "old.com expires within 7 days" in outbox(db)[2][3]


def test_a_queue_run_beside_another_skips_instead_of_waiting(settings, db, db_name, tycoon):
    db.execute("INSERT INTO pounce.notifications (user_id, kind, payload, dedup_key)"
               " VALUES (%s, 'watch.available', '{\"domain\": \"free.com\"}', 'a')", [tycoon])
    with cluster.connect(settings, db_name, autocommit=False) as other:
        # another run in flight: it holds the queue's lock until its transaction ends
        other.execute("SELECT pg_advisory_xact_lock(hashtext('pounce.queue_instant_emails'))")
        assert db.execute("SELECT pounce.queue_instant_emails()").fetchone()[0] == 0
        other.rollback()
    assert db.execute("SELECT pounce.queue_instant_emails()").fetchone()[0] == 1
    assert db.execute("SELECT pounce.queue_instant_emails()").fetchone()[0] == 0


def test_unsubscribe_is_anonymous_idempotent_and_refuses_forgeries(db, api_request, tycoon):
    token = db.execute("SELECT pounce.unsubscribe_token(%s, 'sniper')", [tycoon]).fetchone()[0]
    for _ in range(2):
        with api_request("anon", method="POST", path="/rpc/unsubscribe") as c:
            assert c.execute("SELECT api.unsubscribe(%s)", [token]).fetchone()[0] == {
                "unsubscribed": True, "category": "sniper"}
    assert db.execute("SELECT unsubscribed FROM pounce.email_settings WHERE user_id = %s", [tycoon]
                      ).fetchone()[0] == ["sniper"]
    part, sig = token.split(".")
    other = db.execute("SELECT pounce.unsubscribe_token(gen_random_uuid(), 'digest')").fetchone()[0]
    forged = [f"{part}.{sig[:-2]}AA", f"{other.split('.')[0]}.{sig}", part, "", "x.y", token + "x"]
    for bad in forged:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="invalid unsubscribe token"), \
                api_request("anon") as c:
            c.execute("SELECT api.unsubscribe(%s)", [bad])
    # unsubscribed from instant alert e-mails: the match is still notified, not e-mailed
    create_alert(api_request, tycoon, name="x", keywords=["quiet"])
    ingest(db, "godaddy", [auction(1, "quiet.com", 10)])
    assert match(db)[1:] == (1, 1, 0)


def test_email_settings_api(api_request, tycoon):
    with api_request("member", tycoon, "POST", "/rpc/set_email_settings") as c:
        out = c.execute("SELECT api.set_email_settings(digest => 'weekly', unsubscribe => '{watch,digest}')"
                        ).fetchone()[0]
        assert out == {"digest": "weekly", "unsubscribed": ["digest", "watch"]}
        out = c.execute("SELECT api.set_email_settings(subscribe => '{digest}')").fetchone()[0]
        assert out == {"digest": "weekly", "unsubscribed": ["watch"]}
        assert c.execute("SELECT digest, unsubscribed FROM api.email_settings").fetchone() == ("weekly", ["watch"])
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            c.execute("SELECT api.set_email_settings(digest => 'hourly')")
