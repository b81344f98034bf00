"""The mailer (`pounce mailer`, collectors/mailer.py) against a real SMTP server on
loopback (aiosmtpd, started by the suite on a free port): instant and digest e-mails
arrive with the right content and headers; a mailer that dies mid-batch, between the
server's acceptance and the database's record or at a random point, sends nothing twice
and loses nothing after a restart; a 550 bounces without retries, a 451 is retried with
backoff. And the issue's end-to-end path over the HTTP API."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from aiosmtpd.controller import Controller
from local_servers import free_port
from psycopg.types.json import Jsonb

from pounce.config import REPO

POUNCE = str(Path(sys.executable).with_name("pounce"))


class Recorder:
    """An SMTP server's handler: keeps every accepted message. Recipients starting with
    "bounce" are refused permanently (550), "later" temporarily (451)."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.lock = threading.Lock()
        self.rcpt_delay = 0.0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_delay:
            await asyncio.sleep(self.rcpt_delay)
        if address.startswith("bounce"):
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if address.startswith("later"):
            return "451 4.7.1 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(msg)
        return "250 2.0.0 Ok: queued"

    def ids(self) -> list[str]:
        with self.lock:
            return [m["Message-ID"] for m in self.messages]


@pytest.fixture
def smtp_server():
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    recorder.port = controller.port
    try:
        yield recorder
    finally:
        controller.stop()


def mailer_args(db_name, smtp, journal: Path, *extra):
    return [POUNCE, "mailer", "--dbname", db_name, "--smtp-host", "127.0.0.1", "--smtp-port", str(smtp.port),
            "--journal", str(journal), "--name", "test-mailer", "--burst", *extra]


def run_mailer(db_name, smtp, journal: Path, *extra, env=None, check=True, timeout=60):
    proc = subprocess.run(mailer_args(db_name, smtp, journal, *extra), cwd=REPO, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])
    return proc


def ingest(db, platform, rows):
    return db.execute("SELECT * FROM collector.ingest_auctions(%s, %s)", [platform, Jsonb(rows)]).fetchone()


def urgent_notifications(db, user_id, n, prefix="d"):
    db.execute("""INSERT INTO pounce.notifications (user_id, kind, payload, dedup_key)
                  SELECT %s, 'watch.available', jsonb_build_object('domain', %s || g || '.com'), %s || g
                  FROM generate_series(1, %s) AS g""", [user_id, prefix, prefix, n])
    return db.execute("SELECT pounce.queue_instant_emails()").fetchone()[0]


def statuses(db):
    return dict(db.execute("SELECT status, count(*) FROM pounce.email_outbox GROUP BY 1").fetchall())


@pytest.fixture
def member(tycoon):
    return tycoon


def test_instant_and_digest_emails_arrive_with_their_headers(db, db_name, member, smtp_server, tmp_path):
    address = db.execute("SELECT email::text FROM pounce.users WHERE id = %s", [member]).fetchone()[0]
    db.execute("""INSERT INTO pounce.sniper_alerts (user_id, name, keywords, delivery) VALUES
                  (%(u)s, 'rockets', '{rocket}', 'instant'), (%(u)s, 'comets', '{comet}', 'daily')""", {"u": member})
    ingest(db, "godaddy", [{"id": "1", "domain": "rocket.com", "price": 10, "end_time": "2031-01-01T00:00:00Z"},
                           {"id": "2", "domain": "comet.io", "price": 20, "end_time": "2031-01-01T00:00:00Z"}])
    assert db.execute("SELECT emails FROM pounce.match_alerts()").fetchone()[0] == 1
    assert db.execute("SELECT pounce.queue_digests('daily')").fetchone()[0] == 1
    stats = run_mailer(db_name, smtp_server, tmp_path / "journal")
    assert stats["sent"] == 2
    by_subject = {m["Subject"]: m for m in smtp_server.messages}
    assert set(by_subject) == {'Pounce alert "rockets": rocket.com for 10.00 USD',
                               "Your Pounce daily digest: 1 updates"}
    outbox = {r[0]: r[1:] for r in db.execute(
        "SELECT subject, message_id, unsubscribe_url, status, sent_at IS NOT NULL FROM pounce.email_outbox")}
    for subject, msg in by_subject.items():
        message_id, unsubscribe_url, status, has_sent_at = outbox[subject]
        assert (status, has_sent_at) == ("sent", True)
        assert msg["Message-ID"] == message_id
        assert msg["To"] == address
        assert msg["List-Unsubscribe"] == f"<{unsubscribe_url}>"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg.get_content_type() == "multipart/alternative"
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        assert unsubscribe_url in text and unsubscribe_url in html
    digest = by_subject["Your Pounce daily digest: 1 updates"]
    assert "comet.io" in digest.get_body(("plain",)).get_content()
    assert "<li>Match: comet.io on godaddy" in digest.get_body(("html",)).get_content()
    # the link in the e-mail unsubscribes, anonymously
    token = outbox["Your Pounce daily digest: 1 updates"][1].split("token=")[1]
    assert db.execute("SELECT api.unsubscribe(%s) ->> 'category'", [token]).fetchone()[0] == "digest"
    # nothing left: a second run sends nothing
    assert run_mailer(db_name, smtp_server, tmp_path / "journal")["sent"] == 0
    assert len(smtp_server.messages) == 2


def test_a_crash_between_sending_and_marking_sends_nothing_twice(db, db_name, member, smtp_server, tmp_path):
    assert urgent_notifications(db, member, 12) == 12
    journal = tmp_path / "journal"
    # dies right after the server accepted the 7th message, before telling the database
    proc = run_mailer(db_name, smtp_server, journal, "--batch", "5", env={"POUNCE_MAILER_CRASH_AFTER": "7"},
                      check=False)
    assert proc.returncode == 75, proc.stderr[-2000:]
    assert len(smtp_server.ids()) == 7
    assert statuses(db) == {"sent": 5, "sending": 5, "queued": 2}
    assert len(journal.read_text().split()) == 2
    stats = run_mailer(db_name, smtp_server, journal, "--batch", "5")
    assert (stats["recovered"], stats["requeued"], stats["sent"]) == (2, 3, 5)
    ids = smtp_server.ids()
    assert len(ids) == len(set(ids)) == 12
    assert set(ids) == {r[0] for r in db.execute("SELECT message_id FROM pounce.email_outbox")}
    assert statuses(db) == {"sent": 12}
    assert journal.read_text() == ""


def test_a_mailer_killed_mid_batch_and_restarted_sends_each_message_once(db, db_name, member, smtp_server, tmp_path):
    assert urgent_notifications(db, member, 20) == 20
    smtp_server.rcpt_delay = 0.1
    journal = tmp_path / "journal"
    proc = subprocess.Popen(mailer_args(db_name, smtp_server, journal, "--batch", "6"), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(smtp_server.ids()) < 8 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    before = len(smtp_server.ids())
    assert 8 <= before < 20
    smtp_server.rcpt_delay = 0
    run_mailer(db_name, smtp_server, journal, "--batch", "6")
    ids = smtp_server.ids()
    assert len(ids) == len(set(ids)) == 20
    assert statuses(db) == {"sent": 20}


def test_a_bounce_is_marked_and_not_retried_and_a_deferral_backs_off(db, db_name, make_user, smtp_server, tmp_path):
    bouncing, _ = make_user(email="bounce-me@example.com")
    deferred, _ = make_user(email="later-me@example.com")
    fine, _ = make_user()
    for uid in (bouncing, deferred, fine):
        urgent_notifications(db, uid, 1, prefix=str(uid)[:8])
    stats = run_mailer(db_name, smtp_server, tmp_path / "journal")
    assert (stats["sent"], stats["bounced"], stats["retried"]) == (1, 1, 1)
    rows = {r[0]: r[1:] for r in db.execute(
        """SELECT u.email::text, o.status, o.attempts, o.last_error, o.run_at > now() + interval '1 second'
           FROM pounce.email_outbox o JOIN pounce.users u ON u.id = o.user_id""")}
    status, attempts, error, later = rows["bounce-me@example.com"]
    assert (status, attempts) == ("bounced", 1) and "550" in error
    status, attempts, error, later = rows["later-me@example.com"]
    assert (status, attempts, later) == ("queued", 1, True) and "451" in error
    assert db.execute("SELECT bounced_at IS NOT NULL FROM pounce.email_settings WHERE user_id = %s",
                      [bouncing]).fetchone()[0]
    # the bounce is never tried again, and the bouncing address gets no new e-mail queued
    assert urgent_notifications(db, bouncing, 1, prefix="again") == 0
    db.execute("UPDATE pounce.email_outbox SET run_at = now()")
    run_mailer(db_name, smtp_server, tmp_path / "journal")
    assert [m["To"] for m in smtp_server.messages] == [db.execute(
        "SELECT email::text FROM pounce.users WHERE id = %s", [fine]).fetchone()[0]]
    # the deferral is retried until max_attempts, then failed
    db.execute("UPDATE pounce.email_outbox SET run_at = now(), max_attempts = 3 WHERE status = 'queued'")
    assert db.execute("SELECT attempts FROM pounce.email_outbox WHERE status = 'queued'").fetchone()[0] == 2
    run_mailer(db_name, smtp_server, tmp_path / "journal")
    assert statuses(db) == {"sent": 1, "bounced": 1, "failed": 1}


# ---- the "done when", over the HTTP API ---------------------------------------------

def test_an_alert_made_over_http_matches_an_ingested_auction_and_the_email_arrives(
        api_target, api_user, settings, secrets, smtp_server, tmp_path):
    user_id, _, member = api_user()
    r = member.post("/sniper_alerts", {"name": "snipe", "keywords": ["falcon"], "tlds": ["com"], "max_price": 900},
                    headers={"Prefer": "return=representation"})
    assert r.status == 201, r
    assert r.json()[0]["keywords"] == ["falcon"]
    r = member.post("/rpc/alert_preview", {"criteria": {"keywords": ["falcon"]}})
    assert r.status == 200 and r.json() == []

    dbname = psycopg.conninfo.conninfo_to_dict(api_target.dsn)["dbname"]
    with psycopg.connect(host="127.0.0.1", port=settings.port, dbname=dbname, user="collector",
                         password=secrets["POUNCE_COLLECTOR_PASSWORD"], autocommit=True) as collector:
        got = collector.execute("SELECT * FROM collector.ingest_auctions('namejet', %s)", [Jsonb([
            {"id": "done-when-1", "domain": "falconry.com", "price": "$450", "end_time": "2031-01-01T00:00:00Z",
             "url": "https://namejet.example/falconry.com"}])]).fetchone()
        assert got[0] == 1
    # one pg_cron cycle: the declared job's command, as pg_cron runs it
    with psycopg.connect(api_target.dsn, autocommit=True) as db:
        command = db.execute("SELECT command FROM pounce.cron_jobs WHERE jobname = 'pounce.match_alerts'"
                             ).fetchone()[0]
        db.execute(command)

    r = member.get("/notifications?kind=eq.sniper.match")
    assert r.status == 200
    [note] = r.json()
    assert note["payload"]["domain"] == "falconry.com" and note["payload"]["alert_name"] == "snipe"
    r = member.get("/alert_matches")
    assert [m["domain"] for m in r.json()] == ["falconry.com"]

    run_mailer(dbname, smtp_server, tmp_path / "journal")
    mine = [m for m in smtp_server.messages if m["To"] == member.email]
    assert len(mine) == 1
    assert mine[0]["Subject"] == 'Pounce alert "snipe": falconry.com for 450.00 USD'
    assert "https://namejet.example/falconry.com" in mine[0].get_body(("plain",)).get_content()
    token = mine[0]["List-Unsubscribe"].strip("<>").split("token=")[1]
    anon = api_target.client()
    r = anon.post("/rpc/unsubscribe", {"token": token})
    assert r.status == 200 and r.json() == {"unsubscribed": True, "category": "sniper"}
    r = anon.post("/rpc/unsubscribe", {"token": token[:-1] + ("A" if token[-1] != "A" else "B")})
    assert r.status == 400 and "invalid unsubscribe token" in r.json()["message"]
    anon.close()
