"""pounce: the command line for the embedded database, migrations and tools.

  pounce up                    start the embedded cluster and migrate the app database
  pounce db start|stop|status  run the project's own PostgreSQL (pg_cron, pgvector, ...)
  pounce db psql [args]        psql into the app database
  pounce db url                print the connection URL
  pounce db migrate            alembic upgrade head, then secrets, reference data, cron
  pounce db reset              drop and rebuild the app database
  pounce db destroy            stop and delete the whole cluster
  pounce db snapshot           print sql/ as one script (body of a baseline revision)
  pounce worker                run a collector: claim and run queued jobs (collectors/worker.py)
  pounce mailer                send the e-mail outbox through SMTP (collectors/mailer.py)
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import cluster, schema
from .config import Settings, load_secrets, settings


def _migrate(s: Settings, dbname: str | None = None) -> dict:
    """alembic upgrade head, then the post-schema steps, on the app database (or dbname)."""
    if not (s.external_url and dbname is None):
        cluster.start(s, quiet=True)
        cluster.ensure_database(s, dbname)
    return schema.migrate(s.url(dbname, driver="postgresql+psycopg"), s.conninfo(dbname), load_secrets(s))


def cmd_up(s: Settings, args) -> int:
    print(cluster.start(s), file=sys.stderr)
    loaded = _migrate(s)
    print(f"pounce: database {s.dbname} migrated ({json.dumps(loaded)})", file=sys.stderr)
    print(f"pounce: connect with: psql '{s.url()}'", file=sys.stderr)
    print(s.url())
    return 0


def cmd_start(s: Settings, args) -> int:
    print(cluster.start(s))
    return 0


def cmd_stop(s: Settings, args) -> int:
    print(cluster.stop(s))
    return 0


def cmd_status(s: Settings, args) -> int:
    info = cluster.status(s)
    print(json.dumps(info, indent=2, default=str))
    return 0 if info["running"] else 3


def cmd_url(s: Settings, args) -> int:
    print(s.url(args.dbname))
    return 0


def cmd_psql(s: Settings, args) -> int:
    psql = s.bin("psql") if os.path.exists(s.bin("psql")) else "psql"
    extra = args.psql_args[1:] if args.psql_args[:1] == ["--"] else args.psql_args
    os.execvp(psql, [psql, s.url(args.dbname), *extra])
    return 0  # not reached


def cmd_migrate(s: Settings, args) -> int:
    loaded = _migrate(s, args.dbname)
    print(json.dumps(loaded))
    return 0


def cmd_reset(s: Settings, args) -> int:
    if s.external_url:
        raise SystemExit("pounce: reset only works on the embedded cluster")
    cluster.start(s, quiet=True)
    cluster.drop_database(s, s.dbname)
    cluster.ensure_database(s)
    cluster.ensure_cron_scheduler(s)  # dropping its database stopped pg_cron's scheduler
    print(json.dumps(_migrate(s)))
    return 0


def cmd_destroy(s: Settings, args) -> int:
    cluster.destroy(s)
    print(f"deleted {s.home}")
    return 0


def cmd_snapshot(s: Settings, args) -> int:
    sys.stdout.write(schema.snapshot())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pounce", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("up", help="start the embedded cluster and migrate").set_defaults(fn=cmd_up)

    db = sub.add_parser("db", help="the embedded PostgreSQL cluster").add_subparsers(dest="db_command", required=True)
    db.add_parser("start", help="create if needed and start (no-op when running)").set_defaults(fn=cmd_start)
    db.add_parser("stop", help="stop the cluster").set_defaults(fn=cmd_stop)
    db.add_parser("status", help="JSON status; exit 3 when not running").set_defaults(fn=cmd_status)
    u = db.add_parser("url", help="print the connection URL")
    u.add_argument("--dbname")
    u.set_defaults(fn=cmd_url)
    q = db.add_parser("psql", help="psql into the app database")
    q.add_argument("--dbname")
    q.add_argument("psql_args", nargs=argparse.REMAINDER)
    q.set_defaults(fn=cmd_psql)
    m = db.add_parser("migrate", help="alembic upgrade head, secrets, reference data, cron jobs")
    m.add_argument("--dbname", help="another database of the embedded cluster (created if missing)")
    m.set_defaults(fn=cmd_migrate)
    db.add_parser("reset", help="drop and rebuild the app database").set_defaults(fn=cmd_reset)
    db.add_parser("destroy", help="stop and delete the cluster, data and secrets").set_defaults(fn=cmd_destroy)
    db.add_parser("snapshot", help="print sql/ as one script").set_defaults(fn=cmd_snapshot)

    for register in _plugins():
        register(sub)
    return p


def _plugins():
    """Sub-command groups that live in their own modules."""
    from collectors import mailer, worker
    from collectors.sources import demo

    from . import bench
    from .api_server import cli as api_cli

    return [bench.register, worker.register, mailer.register, api_cli.register, demo.register_cli]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(settings(), args)


if __name__ == "__main__":
    sys.exit(main())
