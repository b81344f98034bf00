"""Collectors against real servers on loopback (NSD, nginx, an RDAP server, a test CA),
end to end: members watch domains -> the scheduler enqueues -> `pounce worker` checks
them -> status, health, history, changes and notifications appear in the API."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import sys
from pathlib import Path

import pytest
from local_servers import (dns_server, rdap_domain, rdap_server, test_ca, watch_world,  # noqa: F401
                           web_server, worker_env)

from collectors.domain_check import Dns, epp_status, hostname_matches, parse_rdap
from pounce.config import REPO

POUNCE = str(Path(sys.executable).with_name("pounce"))

DOMAINS = ["good.com", "soon.com", "expired.com", "wronghost.com", "selfsigned.com", "redirect.com", "broken.com",
           "parked.com", "slow.com", "down.com", "mailonly.com", "dropping.com", "redeem.com", "expiring.com",
           "garbled.com", "delegated.net", "nothere.com", "nothere.net", "limited.com", "ghost.com", "moved.com"]


def run_worker(db_name, config, *args, timeout=90) -> dict:
    proc = subprocess.run([POUNCE, "worker", "--dbname", db_name, "--kinds", "check_domain", "--burst", *args],
                          cwd=REPO, env=worker_env(config), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_end_to_end_against_local_servers(db, db_name, tycoon, api_request, watch_world):
    with api_request("member", tycoon, "POST") as conn:
        results = conn.execute("SELECT result FROM api.import_watchlist(%s)", [DOMAINS]).fetchall()
    assert {r[0] for r in results} == {"added"}
    assert db.execute("SELECT pounce.enqueue_due_checks()").fetchone()[0] == len(DOMAINS)  # what pg_cron runs

    stats = run_worker(db_name, watch_world["collector_config"], "--concurrency", "40")
    assert stats["completed"] == len(DOMAINS) - 1 and stats["failed"] == 1

    latest = {r[0]: r for r in db.execute(
        "SELECT c.domain, c.registration, c.registration_source, c.registrar, c.health_status, c.health_issues,"
        " c.http_status, c.http_final_url, c.parked, c.tls_issuer, c.tls_chain_ok, c.tls_hostname_ok,"
        " c.tls_days_left, c.predicted_drop_on, c.expires_at, c.epp_statuses, c.nameservers"
        " FROM pounce.monitored_domains AS m JOIN pounce.domain_checks AS c ON c.id = m.last_check_id")}
    with api_request("member", tycoon) as conn:
        page = {r[0]: r[1:] for r in conn.execute(
            "SELECT domain, latest ->> 'status', latest ->> 'health',"
            " array(SELECT jsonb_array_elements_text(nullif(latest -> 'health_issues', 'null'))), latest IS NOT NULL"
            " FROM api.watchlist")}
        good_history = conn.execute("SELECT a, mx, txt, caa, http_redirects, tls_sans, errors"
                                    " FROM api.domain_history('good.com')").fetchall()
        notes = conn.execute("SELECT kind, payload ->> 'domain' FROM api.notifications ORDER BY 1, 2").fetchall()
    # the page shows what the latest stored check says, for every domain
    assert page == {d: (latest[d][1], latest[d][4], latest[d][5] or [], True) if d in latest
                    else (None, None, [], False) for d in DOMAINS}
    rows = {d: latest.get(d, (d,) + (None,) * 16) for d in DOMAINS}

    def get(domain, *cols):
        names = ["domain", "status", "source", "registrar", "health", "issues", "http", "final_url", "parked",
                 "issuer", "chain_ok", "host_ok", "tls_days", "drop", "expires", "epp", "ns"]
        return tuple(rows[domain][names.index(c)] for c in cols)

    assert get("good.com", "status", "source", "registrar", "health", "issues", "http", "final_url", "chain_ok",
               "host_ok", "issuer", "ns") == (
        "registered", "rdap", "Example Registrar, Inc.", "ok", [], 200, "https://good.com/", True, True,
        "Pounce Test CA, Pounce Tests", ["ns1.good.com", "ns2.good.com"])
    assert good_history == [(["127.0.0.1"], ["10 mail.example.net"], ["v=spf1 -all"], ["0 issue letsencrypt.org"],
                             ["301 http://good.com/"], ["good.com", "www.good.com"], {})]
    assert get("soon.com", "health", "issues") == ("warning", ["tls_expires_soon"])
    assert 9 <= get("soon.com", "tls_days")[0] <= 10  # the certificate ends 10 days after it was issued
    assert get("expired.com", "health", "issues", "chain_ok") == ("critical", ["tls_expired"], False)
    assert get("wronghost.com", "issues", "host_ok", "chain_ok") == (["tls_wrong_host"], False, True)
    assert get("selfsigned.com", "issues", "chain_ok") == (["tls_untrusted"], False)
    assert get("redirect.com", "http", "final_url", "health") == (200, "https://good.com/landing", "ok")
    assert get("broken.com", "health", "issues", "http") == ("critical", ["http_5xx"], 500)
    assert get("parked.com", "parked", "issues") == (True, ["parked"])
    assert get("slow.com", "issues", "http") == (["slow"], 200)
    assert get("down.com", "health", "issues", "http") == ("critical", ["site_down", "no_tls"], None)
    assert get("mailonly.com", "health", "issues", "http") == ("warning", ["no_address"], None)
    assert get("dropping.com", "status", "epp", "health") == ("pending_delete", ["pendingDelete"], "critical")
    assert get("redeem.com", "status", "epp") == ("redemption", ["redemptionPeriod"])
    assert get("dropping.com", "drop")[0] is not None and get("redeem.com", "drop")[0] > get("dropping.com", "drop")[0]
    assert get("expiring.com", "issues") == (["expires_soon", "no_address", "no_mx"],)  # no zone in DNS
    assert get("garbled.com", "status", "source") == ("registered", "dns")  # malformed RDAP: DNS decides
    assert get("delegated.net", "status", "source") == ("registered", "dns")  # no RDAP for .net here
    assert get("nothere.com", "status", "source", "health") == ("available", "rdap", None)
    assert get("nothere.net", "status", "source") == ("available", "dns")
    assert get("ghost.com", "status", "source") == ("registered", "dns")  # RDAP 404, DNS delegated: not free
    assert get("moved.com", "registrar", "source") == ("Registrar Behind A Redirect", "rdap")  # followed the 302
    assert get("limited.com", "status") == (None,)  # not checked yet: RDAP said 429
    garbled = db.execute("SELECT errors ->> 'rdap' FROM pounce.domain_checks WHERE domain = 'garbled.com'").fetchone()[0]
    assert garbled.startswith("malformed RDAP answer")

    # 429: back in the queue after Retry-After, the attempt counted, the reason kept
    job = db.execute("SELECT attempts, locked_by, round(extract(epoch FROM run_at - now())), last_error"
                     " FROM pounce.jobs WHERE payload ->> 'domain' = 'limited.com'").fetchone()
    assert job[:2] == (1, None) and 100 <= job[2] <= 120 and "429" in job[3]

    assert ("watch.available", "nothere.com") in notes and ("watch.available", "nothere.net") in notes
    assert ("watch.pending_delete", "dropping.com") in notes and ("watch.redemption", "redeem.com") in notes
    assert ("watch.expiring", "expiring.com") in notes and ("watch.tls_expiring", "soon.com") in notes


def test_changes_are_detected_between_runs(db, db_name, tycoon, api_request, watch_world):
    dns, rdap = watch_world["dns"], watch_world["rdap"]
    with api_request("member", tycoon, "POST") as conn:
        conn.execute("INSERT INTO api.watched_domains (domain) VALUES ('moving.com')")
    dns.set_zone("moving.com", ["@ A 127.0.0.1", "@ MX 10 mx1.moving.com."])
    rdap.set("moving.com", 200, rdap_domain("moving.com", registrar="First Registrar", expires="2030-01-01T00:00:00Z"))
    db.execute("SELECT pounce.enqueue_due_checks()")
    run_worker(db_name, watch_world["collector_config"])

    dns.set_zone("moving.com", ["@ A 127.0.0.9", "@ MX 10 mx2.moving.com."])
    rdap.set("moving.com", 200, rdap_domain("moving.com", registrar="Second Registrar", expires="2030-01-01T00:00:00Z"))
    with api_request("member", tycoon, "POST") as conn:
        conn.execute("SELECT api.refresh_health('moving.com')")
    run_worker(db_name, watch_world["collector_config"])
    dns.remove_zone("moving.com")

    with api_request("member", tycoon) as conn:
        changes = conn.execute("SELECT field, old_value, new_value FROM api.domain_changes('moving.com')"
                               " ORDER BY field").fetchall()
        notes = conn.execute("SELECT kind FROM api.notifications ORDER BY kind").fetchall()
        history = conn.execute("SELECT count(*) FROM api.domain_history('moving.com')").fetchone()[0]
    assert changes == [("addresses", "127.0.0.1", "127.0.0.9"), ("mx", "10 mx1.moving.com", "10 mx2.moving.com"),
                       ("registrar", "First Registrar", "Second Registrar"), ("site", "up", "down")]
    assert notes == [("watch.registrar_changed",), ("watch.site_down",)]
    assert history == 2


def test_dns_fixture_serves_zones_a_test_writes(dns_server):
    """The fixture other areas use (listing verification reads TXT tokens)."""
    dns_server.set_zone("shop-for-sale.com", ['@ TXT "pounce-verify=abc123"', '_pounce TXT "token-2"'])
    try:
        resolver = Dns(dns_server.address, 3)
        records, nxdomain, error = asyncio.run(resolver.records("shop-for-sale.com"))
        assert records["txt"] == ["pounce-verify=abc123"] and not nxdomain and error is None
        assert asyncio.run(resolver.query("_pounce.shop-for-sale.com", "TXT")) == (["token-2"], False, None)
        assert asyncio.run(resolver.records("unknown-name.com"))[1] is True  # NXDOMAIN
    finally:
        dns_server.remove_zone("shop-for-sale.com")


def test_rdap_parsing_details():
    doc = rdap_domain("x.com", statuses=["client transfer prohibited", "auto renew period", "active"],
                      registrar="R", expires="2030-01-01T00:00:00Z", changed="2026-01-02T03:04:05Z",
                      nameservers=("NS1.X.COM.", "ns2.x.com"))
    from datetime import datetime, timezone
    facts = parse_rdap(doc, datetime(2026, 6, 1, tzinfo=timezone.utc))
    assert facts["registration"] == "grace"  # autoRenewPeriod
    assert facts["epp_statuses"] == ["autoRenewPeriod", "clientTransferProhibited", "ok"]
    assert facts["last_changed_at"] == "2026-01-02T03:04:05+00:00"
    assert facts["rdap_nameservers"] == ["ns1.x.com", "ns2.x.com"]
    assert epp_status("pending delete") == "pendingDelete"
    with pytest.raises(ValueError):
        parse_rdap({"objectClassName": "entity"}, datetime.now(timezone.utc))
    assert hostname_matches("www.x.com", ["*.x.com"]) and not hostname_matches("a.b.x.com", ["*.x.com"])


@pytest.mark.slow
def test_pg_cron_enqueues_and_a_collector_checks(settings, db, db_name, tycoon, api_request, watch_world):
    """Done-when, literally: add a domain -> pg_cron runs the declared scheduling job ->
    a collector checks it against the local servers -> the watchlist shows it. pg_cron
    lives in the app database; it runs the declared command in this test's database
    (schedule_in_database), so this waits for pg_cron's next minute (at most ~75 s)."""
    from pounce import cluster

    with api_request("member", tycoon, "POST") as conn:
        conn.execute("INSERT INTO api.watched_domains (domain) VALUES ('good.com'), ('nothere.com')")
    command = db.execute("SELECT command FROM pounce.cron_jobs WHERE jobname = 'pounce.enqueue_due_checks'"
                         ).fetchone()[0]
    with cluster.connect(settings) as cron_db:
        jobid = cron_db.execute("SELECT cron.schedule_in_database(%s, '* * * * *', %s, %s)",
                                [f"watch-e2e-{db_name}", command, db_name]).fetchone()[0]
        try:
            deadline = time.monotonic() + 75
            while time.monotonic() < deadline and not db.execute(
                    "SELECT count(*) FROM pounce.jobs WHERE kind = 'check_domain'").fetchone()[0]:
                time.sleep(0.5)
        finally:
            cron_db.execute("SELECT cron.unschedule(%s)", [jobid])
            cron_db.execute("DELETE FROM cron.job_run_details WHERE jobid = %s", [jobid])
    queued = db.execute("SELECT payload ->> 'domain' FROM pounce.jobs ORDER BY 1").fetchall()
    assert queued == [("good.com",), ("nothere.com",)], "pg_cron did not enqueue the due checks within 75 s"
    run_worker(db_name, watch_world["collector_config"])
    with api_request("member", tycoon) as conn:
        rows = conn.execute("SELECT domain, latest ->> 'status', latest ->> 'health' FROM api.watchlist"
                            " ORDER BY domain").fetchall()
        notes = conn.execute("SELECT kind FROM api.notifications").fetchall()
    assert rows == [("good.com", "registered", "ok"), ("nothere.com", "available", None)]
    assert notes == [("watch.available",)]
