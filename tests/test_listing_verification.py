"""Listing verification end to end: a seller asks for a check (api.verify_listing), the
job queue hands it to `pounce worker`, which reads the TXT record at _pounce.<domain>
from a real DNS server on loopback (NSD), and the listing is verified in SQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from local_servers import dns_server  # noqa: F401
from psycopg import errors

from pounce.config import REPO

POUNCE = str(Path(sys.executable).with_name("pounce"))


def run_worker(db_name, resolver) -> dict:
    env = dict(os.environ, POUNCE_RESOLVER=resolver, POUNCE_CHECK_TIMEOUT="3")
    proc = subprocess.run([POUNCE, "worker", "--dbname", db_name, "--kinds", "verify_listing", "--burst"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def listing(api_request, user, domain):
    with api_request("member", user, "POST") as conn:
        return conn.execute("INSERT INTO api.listings (domain, asking_price) VALUES (%s, 900)"
                            " RETURNING id, verification_value", [domain]).fetchone()


def verify(api_request, user, listing_id):
    with api_request("member", user, "POST", "/rpc/verify_listing") as conn:
        return conn.execute("SELECT api.verify_listing(%s)", [listing_id]).fetchone()[0]


def test_a_listing_is_verified_from_its_dns_record(db, db_name, make_user, api_request, dns_server):
    seller, _ = make_user()
    good_id, token = listing(api_request, seller, "sell-me.com")
    dns_server.set_zone("sell-me.com", ["@ A 127.0.0.1", f'_pounce TXT "v=spf1 -all"', f'_pounce TXT "{token}"'])
    dns_server.set_zone("not-yet.com", ["@ A 127.0.0.1"])  # no _pounce record at all
    seller2, _ = make_user()
    missing_id, _ = listing(api_request, seller2, "not-yet.com")

    asked = verify(api_request, seller, good_id)
    assert asked["record"] == "_pounce.sell-me.com" and asked["value"] == token and asked["job_id"]
    assert verify(api_request, seller, good_id)["job_id"] == asked["job_id"]  # pending: the same job
    verify(api_request, seller2, missing_id)

    stats = run_worker(db_name, dns_server.address)
    assert stats["completed"] == 2 and stats["failed"] == 0
    verified = dict(db.execute("SELECT domain, verified_at IS NOT NULL FROM pounce.listings").fetchall())
    assert verified == {"sell-me.com": True, "not-yet.com": False}

    with api_request("member", seller, "PATCH") as conn:
        conn.execute("UPDATE api.listings SET status = 'active' WHERE id = %s", [good_id])
    with api_request("anon") as conn:
        assert conn.execute("SELECT domain FROM api.market_feed WHERE kind = 'listing'").fetchall() == \
            [("sell-me.com",)]
    # verified already: nothing to queue
    assert verify(api_request, seller, good_id)["job_id"] is None


def test_only_the_seller_can_ask(make_user, api_request):
    seller, _ = make_user()
    other, _ = make_user()
    listing_id, _ = listing(api_request, seller, "mine.com")
    with pytest.raises(errors.NoDataFound, match=f"no listing {listing_id} of yours"):
        verify(api_request, other, listing_id)
