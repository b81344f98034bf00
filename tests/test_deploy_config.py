"""The production deployment: docker-compose.yml, the images under docker/, and
api_config/postgrest.conf.

No Docker engine is needed: Debian's `docker-compose` (1.29) validates and interpolates
the file on its own. It is a required tool (scripts/install-system.sh installs it), so
these tests fail, never skip, when it is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
POSTGREST_CONF = REPO / "api_config" / "postgrest.conf"
DB_DOCKERFILE = REPO / "docker" / "db" / "Dockerfile"
DB_CONF = REPO / "docker" / "db" / "pounce.conf"
APP_DOCKERFILE = REPO / "docker" / "app" / "Dockerfile"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERIGNORE = REPO / ".dockerignore"

# Dummy values, recognisable in the interpolated output; never real secrets.
SECRETS = {
    "POSTGRES_PASSWORD": "dummy-postgres-pw-7Qx2",
    "POUNCE_JWT_SECRET": "dummy-jwt-secret-0123456789-abcdefghijklmnop",
    "POUNCE_AUTHENTICATOR_PASSWORD": "dummy-authenticator-pw-4Lm9",
    "POUNCE_COLLECTOR_PASSWORD": "dummy-collector-pw-8Rt5",
}
SERVICES = {"db", "migrate", "postgrest", "collectors", "mailer"}


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------

def docker_compose() -> str:
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is not installed (scripts/install-system.sh installs it)"
    return exe


def compose(tmp_path: Path, *args: str, secrets: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run docker-compose on docker-compose.yml with exactly the given variables: nothing
    from the caller's environment or from a .env file in the checkout leaks in."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("POUNCE_", "POSTGRES_", "COMPOSE_", "DOCKER_"))}
    env.update(SECRETS if secrets is None else secrets)
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    return subprocess.run(
        [docker_compose(), "--env-file", str(empty_env_file), "-f", str(COMPOSE), *args],
        cwd=REPO, env=env, text=True, capture_output=True, timeout=120,
    )


def config(tmp_path: Path) -> dict:
    res = compose(tmp_path, "config")
    assert res.returncode == 0, res.stderr
    return yaml.safe_load(res.stdout)


def parse_postgrest_conf(text: str) -> dict[str, str | int | bool]:
    """PostgREST's config-file syntax as this project uses it: `key = value` lines,
    strings in double quotes, integers, booleans, `#` comments."""
    out: dict[str, str | int | bool] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r'([a-z][a-z0-9.*_-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^#\s]+)\s*(#.*)?', line)
        assert m, f"postgrest.conf line {n} is not `key = value`: {raw!r}"
        key, value = m.group(1), m.group(2)
        assert key not in out, f"postgrest.conf sets {key} twice"
        if value.startswith('"'):
            out[key] = value[1:-1]
        elif value in ("true", "false"):
            out[key] = value == "true"
        else:
            assert re.fullmatch(r"-?\d+", value), f"postgrest.conf line {n}: unquoted non-number {value!r}"
            out[key] = int(value)
    return out


def interpolated_vars(text: str) -> set[str]:
    """Variables a compose file interpolates (${NAME}, ${NAME:-x}, ${NAME:?x}, $NAME)."""
    code = "\n".join(line.split(" #", 1)[0] for line in text.splitlines()
                     if not line.lstrip().startswith("#"))
    return set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", code.replace("$$", "")))


def server_settings(text: str) -> dict[str, str]:
    """name -> value of a postgresql.conf fragment (quotes removed)."""
    out = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            k, v = (p.strip() for p in line.split("=", 1))
            out[k] = v.strip("'")
    return out


# --------------------------------------------------------------------------------------
# docker-compose.yml
# --------------------------------------------------------------------------------------

def test_compose_config_is_valid_with_secrets_from_environment(tmp_path):
    cfg = config(tmp_path)
    assert set(cfg["services"]) == SERVICES
    services = compose(tmp_path, "config", "--services")
    assert services.returncode == 0, services.stderr
    assert set(services.stdout.split()) == SERVICES

    s = cfg["services"]
    pw = SECRETS
    # The database: the app database is `pounce`, data on a named volume, a healthcheck.
    assert s["db"]["environment"]["POSTGRES_DB"] == "pounce"
    assert s["db"]["environment"]["POSTGRES_PASSWORD"] == pw["POSTGRES_PASSWORD"]
    assert Path(s["db"]["build"]["context"]) == REPO / "docker" / "db"
    assert any(v.startswith("pgdata:/var/lib/postgresql/data") for v in s["db"]["volumes"])
    assert "pgdata" in cfg["volumes"]
    assert "pg_isready" in s["db"]["healthcheck"]["test"]
    assert "ports" not in s["db"], "the database must not be published on the host"

    # migrate: superuser, all three secrets (pounce db migrate writes them), once.
    m = s["migrate"]
    assert m["command"] == ["pounce", "db", "migrate"]
    assert m["environment"]["POUNCE_DATABASE_URL"] == \
        f"postgresql://postgres:{pw['POSTGRES_PASSWORD']}@db:5432/pounce"
    for name in ("POUNCE_JWT_SECRET", "POUNCE_AUTHENTICATOR_PASSWORD", "POUNCE_COLLECTOR_PASSWORD"):
        assert m["environment"][name] == pw[name]
    assert m["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert m["restart"] == "no"

    # postgrest: the official image, started with api_config/postgrest.conf.
    p = s["postgrest"]
    assert p["image"].startswith("postgrest/postgrest:v")
    conf_in_container = p["command"][-1]
    assert f"{REPO / 'api_config' / 'postgrest.conf'}:{conf_in_container}:ro" in p["volumes"]
    assert p["environment"]["POUNCE_API_DB_URI"] == \
        f"postgres://authenticator:{pw['POUNCE_AUTHENTICATOR_PASSWORD']}@db:5432/pounce"
    assert p["environment"]["POUNCE_JWT_SECRET"] == pw["POUNCE_JWT_SECRET"]
    assert p["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}

    # postgrest reports healthy only when its admin server says ready (pool and schema cache).
    assert p["healthcheck"]["test"][:3] == ["CMD", "/bin/postgrest", "--ready"]
    assert p["healthcheck"]["test"][3] == conf_in_container
    assert p["restart"] == "unless-stopped"

    # collectors (scalable job-queue workers) and the mailer: the app image, the real CLI,
    # as the collector role, after the migration, restarted, with a health check.
    for name, argv in (("collectors", ["pounce", "worker"]), ("mailer", ["pounce", "mailer"])):
        c = s[name]
        assert c["image"] == m["image"] and c["build"] == m["build"]
        assert Path(c["build"]["context"]) == REPO
        assert c["build"]["dockerfile"] == "docker/app/Dockerfile"
        assert c["command"] == argv
        assert c["environment"]["POUNCE_DATABASE_URL"] == \
            f"postgresql://collector:{pw['POUNCE_COLLECTOR_PASSWORD']}@db:5432/pounce"
        assert c["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
        assert c["restart"] == "unless-stopped"
        assert c["healthcheck"]["test"][0] == "CMD" and c["healthcheck"]["test"][1] == "pounce"
        assert c["stop_grace_period"]
    assert int(s["collectors"]["deploy"]["replicas"]) == 2
    assert "deploy" not in s["mailer"] or int(s["mailer"]["deploy"].get("replicas", 1)) == 1


@pytest.mark.parametrize("missing", sorted(SECRETS))
@pytest.mark.parametrize("how", ["unset", "empty"])
def test_compose_refuses_to_run_without_each_secret(tmp_path, missing, how):
    secrets = dict(SECRETS)
    if how == "unset":
        del secrets[missing]
    else:
        secrets[missing] = ""
    res = compose(tmp_path, "config", secrets=secrets)
    assert res.returncode != 0
    assert f"set {missing}" in res.stderr, res.stderr
    if missing == "POUNCE_JWT_SECRET":
        assert "at least 32 characters" in res.stderr


def test_compose_file_holds_no_secret_literal():
    text = COMPOSE.read_text()
    raw = yaml.safe_load(text)  # not interpolated: what is written in the file
    secret_name = re.compile(r"PASSWORD|SECRET|TOKEN|KEY", re.I)
    required = re.compile(r"^\$\{([A-Z0-9_]+):\?[^}]+\}$")
    checked = 0
    for name, service in raw["services"].items():
        env = service.get("environment") or {}
        assert isinstance(env, dict), f"{name}: write environment as a mapping"
        for key, value in env.items():
            value = str(value)
            if secret_name.search(key):
                m = required.match(value)
                assert m and m.group(1) == key, f"{name}.{key} must be ${{{key}:?...}}, not {value!r}"
                checked += 1
            creds = re.match(r"^[a-z]+://([^:@/]+):([^@]*)@", value)
            if creds:
                assert required.match(creds.group(2)), \
                    f"{name}.{key}: the password in the URI must be a required variable"
                checked += 1
        for key in ("env_file", "secrets"):
            assert key not in service, f"{name}: secrets come from the environment only"
    assert checked >= 8
    # Nothing that looks like an assignment of a literal secret, anywhere in the file.
    for n, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0]
        assert not re.search(r"(?i)^\s*-?\s*\w*(password|secret)\w*\s*[:=]\s*(?!\$\{)\S", code), \
            f"docker-compose.yml line {n} looks like a literal secret: {line!r}"
        assert not re.search(r"://[^:/@\s]+:[^$@\s][^@\s]*@", code), \
            f"docker-compose.yml line {n} has a literal password in a URI: {line!r}"


def test_env_example_lists_every_variable_without_secret_values():
    listed = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            listed[k.strip()] = v.strip()
    assert interpolated_vars(COMPOSE.read_text()) <= set(listed)
    for name in SECRETS:
        assert listed[name] == "", f".env.example must not carry a value for {name}"
    # .env files never reach an image.
    ignore = DOCKERIGNORE.read_text().splitlines()
    assert "*" in ignore and "**/.env" in ignore


# --------------------------------------------------------------------------------------
# api_config/postgrest.conf
# --------------------------------------------------------------------------------------

REQUIRED_KEYS = {
    "db-uri", "db-schemas", "db-anon-role", "db-pre-request", "db-max-rows", "db-pool",
    "jwt-secret", "jwt-role-claim-key", "server-host", "server-port", "admin-server-port",
    "openapi-server-proxy-uri",
}


def test_postgrest_conf_has_the_required_settings():
    conf = parse_postgrest_conf(POSTGREST_CONF.read_text())
    assert REQUIRED_KEYS <= set(conf), sorted(REQUIRED_KEYS - set(conf))
    assert conf["db-schemas"] == "api"
    assert conf["db-anon-role"] == "anon"
    assert re.fullmatch(r"[a-z_]+\.[a-z_]+", str(conf["db-pre-request"])), "schema-qualified"
    assert conf["jwt-role-claim-key"] == ".role"
    assert isinstance(conf["db-max-rows"], int) and conf["db-max-rows"] > 0
    assert isinstance(conf["db-pool"], int) and conf["db-pool"] > 0
    assert conf["server-port"] != conf["admin-server-port"]
    # Secrets are interpolated from the environment, never written down.
    for key in ("db-uri", "jwt-secret", "openapi-server-proxy-uri"):
        assert re.fullmatch(r"\$\([A-Z][A-Z0-9_]*\)", str(conf[key])), f"{key} must be \"$(VAR)\""
    assert conf.get("jwt-secret-is-base64", False) is False


def test_postgrest_service_provides_what_postgrest_conf_reads(tmp_path):
    text = POSTGREST_CONF.read_text()
    conf = parse_postgrest_conf(text)
    wanted = set(re.findall(r"\$\(([A-Z][A-Z0-9_]*)\)", " ".join(str(v) for v in conf.values())))
    assert {"POUNCE_API_DB_URI", "POUNCE_JWT_SECRET"} <= wanted
    postgrest = config(tmp_path)["services"]["postgrest"]
    assert wanted <= set(postgrest["environment"]), sorted(wanted - set(postgrest["environment"]))
    assert len(postgrest["environment"]["POUNCE_JWT_SECRET"]) >= 32
    assert any(p["target"] == conf["server-port"] for p in postgrest["ports"])
    # The admin port stays inside the stack's network.
    assert all(p["target"] != conf["admin-server-port"] for p in postgrest["ports"])


def test_pre_request_function_exists_and_web_roles_may_call_it():
    """PostgREST calls db-pre-request as the request's role (anon, member or admin)."""
    name = str(parse_postgrest_conf(POSTGREST_CONF.read_text())["db-pre-request"])
    schema = name.split(".")[0]
    sql = "\n".join(f.read_text() for f in sorted((REPO / "sql").rglob("*.sql")))
    fn = re.escape(name) + r"\(\)"
    assert re.search(rf"CREATE (OR REPLACE )?FUNCTION {fn}", sql), f"sql/ does not define {name}()"
    assert re.search(rf"GRANT EXECUTE ON FUNCTION {fn} TO anon, member, admin;", sql), \
        f"{name}() must be executable by anon, member and admin"
    assert re.search(rf"GRANT USAGE ON SCHEMA {re.escape(schema)} TO anon, member, admin;", sql), \
        f"web roles need USAGE on schema {schema} to call {name}()"


# --------------------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------------------

def test_db_image_is_official_postgres_15_with_pg_cron_and_pgvector(tmp_path):
    dockerfile = DB_DOCKERFILE.read_text()
    assert re.search(r"^FROM postgres:15-bookworm\s*$", dockerfile, re.M)
    assert "postgresql-${PG_MAJOR}-cron" in dockerfile
    assert "postgresql-${PG_MAJOR}-pgvector" in dockerfile
    assert "COPY pounce.conf /etc/postgresql/pounce.conf" in dockerfile
    assert "include '/etc/postgresql/pounce.conf'" in dockerfile

    settings = server_settings(DB_CONF.read_text())
    assert settings["shared_preload_libraries"].split(",") == ["pg_cron", "pg_stat_statements"]
    db_env = config(tmp_path)["services"]["db"]["environment"]
    assert settings["cron.database_name"] == db_env["POSTGRES_DB"] == "pounce"


def test_db_image_settings_match_the_embedded_cluster():
    """Production and the embedded cluster (pounce/cluster.py) run pg_cron the same way."""
    from pounce import cluster

    embedded = server_settings(cluster.SERVER_CONF.format(port=5432, sockdir="/run", dbname="pounce"))
    for local_only in ("listen_addresses", "port", "unix_socket_directories", "unix_socket_permissions"):
        embedded.pop(local_only, None)
    assert server_settings(DB_CONF.read_text()) == embedded


def test_app_image_copies_only_what_exists_and_is_not_ignored():
    sources = []
    for line in APP_DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            sources += line.split()[1:-1]
    assert sources, "docker/app/Dockerfile copies nothing"
    allowed = {ln.strip().lstrip("!").rstrip("/") for ln in DOCKERIGNORE.read_text().splitlines()
               if ln.startswith("!")}
    for src in sources:
        assert (REPO / src).exists(), f"docker/app/Dockerfile copies {src}, which does not exist"
        assert src.rstrip("/") in allowed, f".dockerignore keeps {src} out of the build context"
    for needed in ("pyproject.toml", "alembic.ini", "pounce", "migrations", "data"):
        assert needed in {s.rstrip("/") for s in sources}, f"the app image needs {needed}"
    assert re.search(r"^FROM python:3\.11-slim-bookworm\s*$", APP_DOCKERFILE.read_text(), re.M)


# Commands the stack names before the issue that provides them has landed: the job
# queue's worker (watchlist issue) and the mailer (alerts/e-mail issue). Once the CLI has
# one, it is checked like any other; remove it from here then.
PENDING_COMMANDS: set[str] = set()


def test_compose_commands_exist_in_the_cli(tmp_path):
    from pounce.cli import build_parser

    parser = build_parser()
    known = set(next(a for a in parser._actions if a.dest == "command").choices)
    services = config(tmp_path)["services"]
    for name in ("migrate", "collectors", "mailer"):
        argv = services[name]["command"]
        assert argv[0] == "pounce"
        if argv[1] not in known:
            assert argv[1] in PENDING_COMMANDS, f"{name}: `{' '.join(argv)}` is not a pounce command"
            continue
        args = parser.parse_args(argv[1:])
        assert callable(args.fn), f"{name}: `{' '.join(argv)}` is not a pounce command"
    for name in ("collectors", "mailer"):   # their health checks run the real CLI
        args = parser.parse_args(services[name]["healthcheck"]["test"][2:])
        assert callable(args.fn)


def test_collectors_scale_with_an_environment_variable(tmp_path):
    res = compose(tmp_path, "config", secrets={**SECRETS, "POUNCE_COLLECTORS": "5"})
    assert res.returncode == 0, res.stderr
    assert int(yaml.safe_load(res.stdout)["services"]["collectors"]["deploy"]["replicas"]) == 5


def test_cli_runs_against_an_external_database_without_server_binaries(monkeypatch):
    """The app image has no PostgreSQL server: with POUNCE_DATABASE_URL set, the CLI must
    not look for initdb/pg_ctl."""
    import glob

    from pounce import config

    monkeypatch.setenv("POUNCE_DATABASE_URL", "postgresql://collector:pw@db:5432/pounce")
    monkeypatch.delenv("POUNCE_PG_BINDIR", raising=False)
    monkeypatch.setattr(glob, "glob", lambda *a, **k: [])
    s = config.settings()
    assert s.external_url == "postgresql://collector:pw@db:5432/pounce"
    assert s.conninfo() == s.external_url
