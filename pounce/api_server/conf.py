"""PostgREST's config-file syntax: `key = value`, strings in double quotes, `#` comments,
and "$(NAME)" replaced by the environment variable NAME (as PostgREST does)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..config import REPO

DEFAULT_CONF = REPO / "api_config" / "postgrest.conf"

_LINE = re.compile(r'([a-z][a-z0-9.*_-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^#\s]+)\s*(#.*)?')
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


class ConfError(SystemExit):
    pass


def parse(text: str, env: dict[str, str] | None = None) -> dict[str, str | int | bool]:
    env = os.environ if env is None else env
    out: dict[str, str | int | bool] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.fullmatch(line)
        if not m:
            raise ConfError(f"postgrest.conf line {n}: not `key = value`: {raw!r}")
        key, value = m.group(1), m.group(2)
        if value.startswith('"'):
            s = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")

            def sub(v: re.Match) -> str:
                if v.group(1) not in env:
                    raise ConfError(f"postgrest.conf: {key} needs the environment variable {v.group(1)}")
                return env[v.group(1)]

            out[key] = _VAR.sub(sub, s)
        elif value in ("true", "false"):
            out[key] = value == "true"
        else:
            try:
                out[key] = int(value)
            except ValueError:
                raise ConfError(f"postgrest.conf line {n}: unquoted value {value!r} is not a number") from None
    return out


def load(path: Path | str | None = None, env: dict[str, str] | None = None) -> dict:
    path = Path(path or os.environ.get("POUNCE_API_CONF") or DEFAULT_CONF)
    conf = parse(path.read_text(), env)
    secret = str(conf.get("jwt-secret", ""))
    if len(secret) < 32:
        raise ConfError("postgrest.conf: jwt-secret must be at least 32 characters")
    if str(conf.get("db-schemas", "")).split(",") != ["api"]:
        raise ConfError("postgrest.conf: the local API server serves exactly one schema (db-schemas)")
    return conf
