"""The mailer: sends what pounce.email_outbox holds, through SMTP, each e-mail once.

  pounce mailer [--smtp-host H] [--smtp-port 25] [--batch 20] [--poll 5] [--burst]

The database renders every e-mail (sql/alerts/email.sql); this only moves bytes:
collector.claim_emails() hands it a batch (state sending, locked by this mailer's
name), it sends each over one SMTP connection and reports with collector.emails_sent()
/ collector.emails_failed(). A permanent refusal (5xx) bounces the e-mail; anything
else is retried with backoff by the database until max_attempts.

Exactly once. Each e-mail carries its Message-ID from the outbox row, fixed when the
row was made. The moment the server accepts a message (250 after DATA) its Message-ID
is appended to the journal file and fsynced, before the database is told. A mailer
killed between the server's 250 and the database's commit (or cut off from the
database) finds, on restart, its journal naming what was accepted:
collector.recover_emails() marks those sent and queues only the others again, so a
restart sends nothing twice and loses nothing. The journal is emptied once the
database has recorded its entries. A mailer's name must therefore be stable across
restarts (--name, default the host name) and its journal must survive them.

Environment: POUNCE_SMTP_HOST, POUNCE_SMTP_PORT, POUNCE_SMTP_USER, POUNCE_SMTP_PASSWORD,
POUNCE_SMTP_STARTTLS (1), POUNCE_MAILER_JOURNAL, POUNCE_MAILER_NAME.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import smtplib
import socket
import time
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

import psycopg

log = logging.getLogger("pounce.mailer")


class Journal:
    """Message-IDs the SMTP server accepted and the database may not know yet."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "a+", encoding="ascii")

    def read(self) -> list[str]:
        self.file.seek(0)
        return [line.strip() for line in self.file if line.strip()]

    def add(self, message_id: str) -> None:
        self.file.write(message_id + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())

    def clear(self) -> None:
        self.file.truncate(0)
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()


def build_message(row: dict, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = row["to_address"]
    msg["Subject"] = row["subject"]
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = row["message_id"]
    # RFC 2369 and RFC 8058 (one-click): mail clients show an unsubscribe button
    msg["List-Unsubscribe"] = f"<{row['unsubscribe_url']}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(row["body_text"])
    msg.add_alternative(row["body_html"], subtype="html")
    return msg


def permanent(error: Exception) -> bool:
    """SMTP 5xx is a permanent refusal (a bounce); 4xx and lost connections are not."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code >= 500
    return False


class Mailer:
    def __init__(self, conninfo: str, smtp_host: str, smtp_port: int, journal: Path, name: str,
                 batch: int = 20, poll: float = 5.0, burst: bool = False, user: str | None = None,
                 password: str | None = None, starttls: bool = False, timeout: float = 30.0):
        self.conninfo, self.smtp_host, self.smtp_port = conninfo, smtp_host, smtp_port
        self.journal = Journal(journal)
        self.name, self.batch, self.poll, self.burst = name, batch, poll, burst
        self.user, self.password, self.starttls, self.timeout = user, password, starttls, timeout
        self.stopping = False
        self.stats = {"sent": 0, "bounced": 0, "retried": 0, "recovered": 0, "requeued": 0}
        # test hook: exit abruptly after this many accepted messages, before telling the
        # database (the crash that the journal exists for)
        crash = os.environ.get("POUNCE_MAILER_CRASH_AFTER")
        self.crash_after = int(crash) if crash else None

    def stop(self) -> None:
        self.stopping = True

    def run(self) -> dict:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            self.sender = conn.execute("SELECT collector.email_from()").fetchone()[0]
            recovered = conn.execute("SELECT collector.recover_emails(%s, %s)",
                                     [self.name, self.journal.read()]).fetchone()[0]
            self.journal.clear()
            self.stats["recovered"], self.stats["requeued"] = recovered["sent"], recovered["requeued"]
            if recovered["sent"] or recovered["requeued"]:
                log.info("recovered after a restart: %s", json.dumps(recovered))
            while not self.stopping:
                rows = [dict(zip(("id", "message_id", "to_address", "subject", "body_text", "body_html",
                                  "unsubscribe_url", "attempts"), r))
                        for r in conn.execute("SELECT * FROM collector.claim_emails(%s, %s)",
                                              [self.name, self.batch]).fetchall()]
                if not rows:
                    if self.burst:
                        break
                    self._sleep(self.poll)
                    continue
                self._send_batch(conn, rows)
        self.journal.close()
        return self.stats

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < end:
            time.sleep(min(0.2, end - time.monotonic()))

    def _connect(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout, local_hostname="pounce.localhost")
        if self.starttls:
            smtp.starttls()
        if self.user:
            smtp.login(self.user, self.password or "")
        return smtp

    def _send_batch(self, conn: psycopg.Connection, rows: list[dict]) -> None:
        sent: list[str] = []
        failed: list[tuple[int, str, bool]] = []
        smtp = None
        for row in rows:  # (a stop request lets the batch finish: it is small)
            try:
                if smtp is None:
                    smtp = self._connect()
                smtp.send_message(build_message(row, self.sender))
            except (smtplib.SMTPException, OSError) as e:
                failed.append((row["id"], f"{type(e).__name__}: {e}"[:1000], permanent(e)))
                if not isinstance(e, (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError,
                                      smtplib.SMTPSenderRefused)):
                    smtp = None  # the connection is in an unknown state: a new one for the next
                elif smtp is not None:
                    try:
                        smtp.rset()
                    except (smtplib.SMTPException, OSError):
                        smtp = None
                continue
            self.journal.add(row["message_id"])
            sent.append(row["message_id"])
            if self.crash_after is not None and self.stats["sent"] + len(sent) >= self.crash_after:
                os._exit(75)
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
        if sent:
            conn.execute("SELECT collector.emails_sent(%s, %s)", [self.name, sent])
            self.journal.clear()
            self.stats["sent"] += len(sent)
        if failed:
            conn.execute("SELECT collector.emails_failed(%s, %s, %s, %s)",
                         [self.name, [f[0] for f in failed], [f[1] for f in failed], [f[2] for f in failed]])
            self.stats["bounced"] += sum(1 for f in failed if f[2])
            self.stats["retried"] += sum(1 for f in failed if not f[2])
        for f in failed:
            log.warning("e-mail %s: %s%s", f[0], f[1], " (bounced)" if f[2] else " (will retry)")


def cmd_mailer(s, args) -> int:
    from collectors.worker import collector_conninfo

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    journal = Path(args.journal or (s.home / f"mailer-{args.name}.journal"))
    mailer = Mailer(collector_conninfo(s, args.dbname), args.smtp_host, args.smtp_port, journal, args.name,
                    batch=args.batch, poll=args.poll, burst=args.burst,
                    user=os.environ.get("POUNCE_SMTP_USER"), password=os.environ.get("POUNCE_SMTP_PASSWORD"),
                    starttls=os.environ.get("POUNCE_SMTP_STARTTLS", "") in ("1", "true", "yes"))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: mailer.stop())
    stats = mailer.run()
    print(json.dumps({"mailer": args.name, **stats}))
    return 0


def register(sub) -> None:
    m = sub.add_parser("mailer", help="send the e-mail outbox through SMTP (exactly once per message)",
                       description=__doc__.split("\n\n")[0])
    m.add_argument("--smtp-host", default=os.environ.get("POUNCE_SMTP_HOST", "localhost"))
    m.add_argument("--smtp-port", type=int, default=int(os.environ.get("POUNCE_SMTP_PORT", "25")))
    m.add_argument("--name", default=os.environ.get("POUNCE_MAILER_NAME") or f"mailer-{socket.gethostname()}",
                   help="stable name of this mailer (its claims and journal are found by it after a restart)")
    m.add_argument("--journal", default=os.environ.get("POUNCE_MAILER_JOURNAL"),
                   help="file of accepted Message-IDs not yet recorded (default: <POUNCE_HOME>/mailer-<name>.journal)")
    m.add_argument("--batch", type=int, default=20, help="e-mails claimed per round (default 20)")
    m.add_argument("--poll", type=float, default=5.0, help="seconds between looks at an empty outbox")
    m.add_argument("--burst", action="store_true", help="exit when the outbox has nothing ready (tests, cron)")
    m.add_argument("--dbname", help="another database of the embedded cluster")
    m.add_argument("-v", "--verbose", action="store_true")
    m.set_defaults(fn=cmd_mailer)
