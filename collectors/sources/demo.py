"""The demo sample: recorded source files (tests/fixtures/sources/demo/) loaded through
the real collectors, so a fresh `./dev up` shows a populated feed and TLD pages.

    pounce demo load        (run by ./dev up; safe to run again)

The files were recorded on RECORDED_ON. Auctions end, so each load first moves the
files' dates forward by the whole days since then (`rebase`: the JSON's
auctionEndTime, the CSV's dates, the pending-delete file's name), writes them in their
upstream packaging (the GoDaddy inventory zipped), registers them as disabled sources
with file:// URLs (`demo-*`; enabled sources are what pg_cron schedules, and these are
on disk only) and queues a fetch_source job for each; then a collector
(`collectors.worker.Worker`, burst mode, the collector login) claims and runs them as
it would in production.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import zipfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import psycopg

from pounce.config import REPO

RECORDED_ON = date(2026, 12, 4)
DEMO_DIR = REPO / "tests" / "fixtures" / "sources" / "demo"
US_DATE = re.compile(r"\b(\d{2})/(\d{2})/(\d{4})\b")
ISO_DATE = re.compile(r"(20\d\d)-(\d\d)-(\d\d)")


def shift_iso(value: str, days: int) -> str:
    t = datetime.fromisoformat(value.replace("Z", "+00:00")) + timedelta(days=days)
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def shift_us_dates(text: str, days: int) -> str:
    """Every MM/DD/YYYY in a text, `days` later."""
    def move(m: re.Match) -> str:
        d = date(int(m[3]), int(m[1]), int(m[2])) + timedelta(days=days)
        return d.strftime("%m/%d/%Y")
    return US_DATE.sub(move, text)


def shift_name(name: str, days: int) -> str:
    def move(m: re.Match) -> str:
        return (date(int(m[1]), int(m[2]), int(m[3])) + timedelta(days=days)).isoformat()
    return ISO_DATE.sub(move, name, count=1)


def rebase(source: Path, target_dir: Path, days: int) -> Path:
    """A copy of a recorded file with its dates `days` later, packaged as upstream
    serves it. Returns the new file."""
    target_dir.mkdir(parents=True, exist_ok=True)
    if source.suffix == ".json" and source.name.startswith("godaddy"):
        doc = json.loads(source.read_text())
        for record in doc.get("data", []):
            if isinstance(record, dict) and isinstance(record.get("auctionEndTime"), str):
                record["auctionEndTime"] = shift_iso(record["auctionEndTime"], days)
        target = target_dir / f"{source.stem}.json.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(source.name, json.dumps(doc))
        return target
    if source.name.startswith("snapnames"):
        target = target_dir / source.name
        target.write_text(shift_us_dates(source.read_text(), days), newline="")
        return target
    if source.name.startswith("pending_delete"):
        target = target_dir / shift_name(source.name, days)
        shutil.copyfile(source, target)
        return target
    target = target_dir / source.name
    shutil.copyfile(source, target)
    return target


# name -> (kind, format, recorded file, platform, options)
DEMO_SOURCES = {
    "demo-godaddy": ("auction", "godaddy_json", DEMO_DIR / "godaddy_inventory.json", "godaddy", {}),
    "demo-snapnames": ("auction", "snapnames_csv", DEMO_DIR / "snapnames.csv", "snapnames", {}),
    "demo-pending-delete": ("auction", "pending_delete", DEMO_DIR / "pending_delete_2026-12-06.txt",
                            "pendingdelete", {"price": 69}),
    "demo-porkbun": ("tld_price", "porkbun_json", REPO / "tests" / "fixtures" / "porkbun_pricing.json",
                     "porkbun", {}),
    "demo-examplereg": ("tld_price", "price_sheet_csv", DEMO_DIR / "price_sheet_examplereg.csv", "examplereg", {}),
}


def register(admin: psycopg.Connection, workdir: Path, today: date | None = None) -> list[str]:
    """Write the rebased files into workdir and (re)register the demo sources."""
    days = ((today or datetime.now(timezone.utc).date()) - RECORDED_ON).days
    for old in workdir.glob("*"):
        if old.is_file():
            old.unlink()
    names = []
    for name, (kind, fmt, recorded, platform, options) in DEMO_SOURCES.items():
        path = rebase(recorded, workdir, days)
        admin.execute(
            "INSERT INTO pounce.sources (name, kind, format, url, platform, options, enabled, schedule)"
            " VALUES (%s, %s, %s, %s, %s, %s, false, interval '1 day')"
            " ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, format = excluded.format, url = excluded.url,"
            " platform = excluded.platform, options = excluded.options, etag = NULL, last_modified = NULL",
            [name, kind, fmt, path.resolve().as_uri(), platform, json.dumps(options)])
        admin.execute("SELECT pounce.fetch_source_now(%s)", [name])
        names.append(name)
    return names


def load(admin_conninfo: str, collector_conninfo: str, workdir: Path) -> list[tuple]:
    """Register the demo sources, run a collector until their jobs are done, and return
    each source's (name, last_error, last_counts)."""
    from collectors.worker import Worker

    with psycopg.connect(admin_conninfo, autocommit=True) as admin:
        names = register(admin, workdir)
        asyncio.run(Worker(collector_conninfo, kinds=["fetch_source"], burst=True, poll=0.2).run())
        # what pg_cron would do within 15 minutes: the TLD pages show the new prices now
        admin.execute("SELECT pounce.refresh_tld_intel()")
        return admin.execute("SELECT name, last_error, last_counts FROM pounce.sources WHERE name = ANY (%s)"
                             " ORDER BY name", [names]).fetchall()


def cmd_demo_load(s, args) -> int:
    from collectors.worker import collector_conninfo

    rows = load(s.conninfo(args.dbname), collector_conninfo(s, args.dbname), s.home / "demo-sources")
    failed = False
    for name, error, counts in rows:
        failed |= error is not None
        print(f"pounce: demo source {name}: " + (f"FAILED: {error}" if error else json.dumps(counts)))
    return 1 if failed else 0


def register_cli(sub) -> None:
    demo = sub.add_parser("demo", help="demo data").add_subparsers(dest="demo_command", required=True)
    d = demo.add_parser("load", help="load the recorded demo sources through the collectors")
    d.add_argument("--dbname", help="another database of the embedded cluster")
    d.set_defaults(fn=cmd_demo_load)
