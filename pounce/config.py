"""Where the embedded cluster lives and how to reach it.

Everything is derived from the environment, with defaults that keep a checkout's cluster
to itself: its own data directory, port and socket directory, never the system's.

  POUNCE_HOME          state directory (data, socket, log, secrets). Default: <repo>/.pounce,
                       or /var/lib/pounce/<checkout>-<hash> when run as root, because the
                       server then runs as the `postgres` system user, which may not be
                       able to enter a checkout under /root.
  POUNCE_PG_PORT       TCP port on 127.0.0.1 (default 54320).
  POUNCE_PG_BINDIR     directory holding initdb/pg_ctl (default: newest /usr/lib/postgresql/N/bin).
  POUNCE_DB            application database name (default pounce; pg_cron runs there).
  POUNCE_DATABASE_URL  use an external database instead of the embedded one (production).
"""

from __future__ import annotations

import glob
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SQL_DIR = REPO / "sql"
DATA_DIR = REPO / "data"
MIGRATIONS_DIR = REPO / "migrations"

SUPERUSER = "postgres"
SECRET_NAMES = ("POUNCE_JWT_SECRET", "POUNCE_AUTHENTICATOR_PASSWORD", "POUNCE_COLLECTOR_PASSWORD")


def is_root() -> bool:
    return os.geteuid() == 0


def _default_home() -> Path:
    if is_root():
        tag = hashlib.sha1(str(REPO).encode()).hexdigest()[:8]
        return Path("/var/lib/pounce") / f"{REPO.name}-{tag}"
    return REPO / ".pounce"


def _default_bindir() -> Path:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    if not candidates:
        raise SystemExit(
            "pounce: no PostgreSQL server binaries found under /usr/lib/postgresql/*/bin; "
            "run scripts/install-system.sh or set POUNCE_PG_BINDIR"
        )
    return Path(candidates[-1]).parent


@dataclass(frozen=True)
class Settings:
    home: Path
    port: int
    bindir_override: Path | None
    dbname: str
    external_url: str | None

    @property
    def bindir(self) -> Path:
        # Looked up only when a server binary is needed: a client of an external
        # database (the production app image) has no PostgreSQL server installed.
        return self.bindir_override or _default_bindir()

    @property
    def datadir(self) -> Path:
        return self.home / "data"

    @property
    def sockdir(self) -> Path:
        return self.home / "run"

    @property
    def logfile(self) -> Path:
        return self.home / "postgresql.log"

    @property
    def secrets_file(self) -> Path:
        return self.home / "secrets.env"

    def bin(self, name: str) -> str:
        return str(self.bindir / name)

    def conninfo(self, dbname: str | None = None, user: str = SUPERUSER) -> str:
        """libpq conninfo for the embedded cluster over its Unix socket (trust auth)."""
        if self.external_url and dbname is None:
            return self.external_url
        return f"host={self.sockdir} port={self.port} dbname={dbname or self.dbname} user={user}"

    def url(self, dbname: str | None = None, driver: str = "postgresql") -> str:
        """URL form (for psql, alembic with driver='postgresql+psycopg', and humans)."""
        if self.external_url and dbname is None:
            url = self.external_url
            if driver != "postgresql":
                url = driver + url[url.index("://"):]
            return url
        return f"{driver}://{SUPERUSER}@/{dbname or self.dbname}?host={self.sockdir}&port={self.port}"

    def tcp_url(self, user: str, password: str, dbname: str | None = None) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{dbname or self.dbname}"


def settings() -> Settings:
    bindir = os.environ.get("POUNCE_PG_BINDIR")
    return Settings(
        home=Path(os.environ.get("POUNCE_HOME") or _default_home()),
        port=int(os.environ.get("POUNCE_PG_PORT", "54320")),
        bindir_override=Path(bindir) if bindir else None,
        dbname=os.environ.get("POUNCE_DB", "pounce"),
        external_url=os.environ.get("POUNCE_DATABASE_URL") or None,
    )


def load_secrets(s: Settings) -> dict[str, str]:
    """The JWT secret and login passwords: from the environment when set (production),
    otherwise generated once into POUNCE_HOME/secrets.env (mode 0600) and reused."""
    stored: dict[str, str] = {}
    if s.secrets_file.exists():
        for line in s.secrets_file.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                stored[k.strip()] = v.strip()
    out: dict[str, str] = {}
    changed = False
    for name in SECRET_NAMES:
        value = os.environ.get(name) or stored.get(name)
        if not value:
            value = secrets.token_urlsafe(48)
            changed = True
        out[name] = value
    if len(out["POUNCE_JWT_SECRET"]) < 32:
        raise SystemExit("pounce: POUNCE_JWT_SECRET must be at least 32 characters (PostgREST requires it)")
    if changed and not s.external_url:
        s.home.mkdir(parents=True, exist_ok=True)
        s.secrets_file.touch(mode=0o600)
        s.secrets_file.write_text(
            "# generated by pounce; shared by the database, the API server and PostgREST\n"
            + "".join(f"{k}={v}\n" for k, v in out.items())
        )
    return out
