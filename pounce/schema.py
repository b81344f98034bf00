"""Building a database: from sql/ (the current definition) or with alembic (the history),
then the steps every database needs after its schema: secrets, reference data, cron."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from psycopg import sql

from .config import DATA_DIR, MIGRATIONS_DIR, REPO, SQL_DIR


def manifest() -> list[Path]:
    """The sql/ files in the order they apply (sql/manifest.txt)."""
    lines = (SQL_DIR / "manifest.txt").read_text().splitlines()
    files = [SQL_DIR / ln.split("#", 1)[0].strip() for ln in lines if ln.split("#", 1)[0].strip()]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise SystemExit(f"pounce: sql/manifest.txt names missing files: {', '.join(missing)}")
    return files


def run_sql_file(conn: psycopg.Connection, path: Path) -> None:
    """Run one file of plain SQL (several statements, no parameters: simple protocol)."""
    try:
        conn.execute(path.read_text())
    except psycopg.Error as e:
        raise SystemExit(f"pounce: {path.relative_to(REPO)}: {e.diag.severity}: {e}") from e


def apply_sql(conninfo: str) -> None:
    """Build the schema from sql/ in one transaction (an empty database expected)."""
    with psycopg.connect(conninfo) as conn:
        for f in manifest():
            run_sql_file(conn, f)
        conn.execute("RESET ROLE")


def snapshot() -> str:
    """sql/ as one script: the body of a baseline migration."""
    parts = []
    for f in manifest():
        parts.append(f"-- ---- sql/{f.relative_to(SQL_DIR)} ----\n{f.read_text().rstrip()}\n")
    return "\n".join(parts)


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config(str(REPO / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["url"] = url
    return cfg


def alembic_upgrade(url: str, revision: str = "head") -> None:
    """alembic upgrade; url is a SQLAlchemy URL with the psycopg (3) driver."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def migrate(url: str, conninfo: str, secrets: dict[str, str]) -> dict:
    """What production runs on every deploy: alembic upgrade head (url: SQLAlchemy URL with
    the psycopg driver), then the post-schema steps on the same database (conninfo)."""
    alembic_upgrade(url)
    return configure(conninfo, secrets)


def configure(conninfo: str, secrets: dict[str, str], set_role_passwords: bool = True) -> dict:
    """Post-schema steps, idempotent: secrets into pounce.settings, login passwords,
    reference data (Public Suffix List, IANA TLDs, ISO 4217 currencies, English words), and pg_cron jobs."""
    psl = (DATA_DIR / "public_suffix_list.dat").read_text(encoding="utf-8")
    tlds = (DATA_DIR / "whoisservers.json").read_text(encoding="utf-8")
    currencies = (DATA_DIR / "iso_4217.json").read_text(encoding="utf-8")
    words = (DATA_DIR / "words.txt").read_text(encoding="utf-8")
    json.loads(tlds), json.loads(currencies)  # fail here, clearly, on a damaged data file
    out: dict = {}
    with psycopg.connect(conninfo) as conn:
        conn.execute(
            """INSERT INTO pounce.settings (name, value, is_secret) VALUES ('jwt_secret', %s, true)
               ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = now()
               WHERE settings.value IS DISTINCT FROM excluded.value""",
            [secrets["POUNCE_JWT_SECRET"]],
        )
        if set_role_passwords:
            for role, key in (("authenticator", "POUNCE_AUTHENTICATOR_PASSWORD"),
                              ("collector", "POUNCE_COLLECTOR_PASSWORD")):
                conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(secrets[key])))
        out["public_suffixes"] = conn.execute("SELECT pounce.load_public_suffixes(%s)", [psl]).fetchone()[0]
        out["tlds"] = conn.execute("SELECT pounce.load_tlds(%s::jsonb)", [tlds]).fetchone()[0]
        out["currencies"] = conn.execute("SELECT pounce.load_currencies(%s::jsonb)", [currencies]).fetchone()[0]
        out["words"] = conn.execute("SELECT pounce.load_words(%s)", [words]).fetchone()[0]
        out["cron_jobs"] = conn.execute("SELECT pounce.sync_cron()").fetchone()[0]
        # A running PostgREST reloads its schema cache after a migration.
        conn.execute("NOTIFY pgrst, 'reload schema'")
    return out


def run_revision_sql(name: str) -> None:
    """Run migrations/sql/<name> on alembic's connection (called by revisions).

    Revisions are frozen SQL: sql/ is the current definition and changes freely, a
    released revision never changes. The catalog test proves both build the same
    database."""
    from alembic import op

    # The raw psycopg connection runs a multi-statement script with the simple protocol
    # (no parameter parsing, so '%' in SQL is just a character).
    dbapi = op.get_bind().connection.driver_connection
    dbapi.execute((MIGRATIONS_DIR / "sql" / name).read_text())
    dbapi.execute("RESET ROLE")
