"""`pounce api ...`: run the local API server (foreground or in the background)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..config import Settings, load_secrets


def api_env(s: Settings) -> dict[str, str]:
    """The variables postgrest.conf reads: from the environment when set (production),
    otherwise for the embedded cluster (its authenticator password and JWT secret)."""
    env = dict(os.environ)
    if not env.get("POUNCE_API_DB_URI") or not env.get("POUNCE_JWT_SECRET"):
        secrets = load_secrets(s)
        env.setdefault("POUNCE_JWT_SECRET", secrets["POUNCE_JWT_SECRET"])
        if not env.get("POUNCE_API_DB_URI"):
            if s.external_url:
                raise SystemExit("pounce api: set POUNCE_API_DB_URI (postgres://authenticator:...) for an external database")
            env["POUNCE_API_DB_URI"] = s.tcp_url("authenticator", secrets["POUNCE_AUTHENTICATOR_PASSWORD"])
    return env


def _ports(args, conf: dict) -> tuple[int, int]:
    port = args.port if args.port is not None else int(os.environ.get("POUNCE_API_PORT") or conf.get("server-port", 3000))
    admin = args.admin_port if args.admin_port is not None else int(
        os.environ.get("POUNCE_API_ADMIN_PORT") or conf.get("admin-server-port", port + 1))
    return port, admin


def cmd_serve(s: Settings, args) -> int:
    workers = args.workers if args.workers is not None else int(os.environ.get("POUNCE_API_WORKERS") or 1)
    if workers > 1:
        # prometheus_client reads this when imported: each worker writes its metrics to
        # files there, and the admin server in the parent adds them up.
        import tempfile
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="pounce-api-metrics-")
    from . import app, conf as conf_mod

    env = api_env(s)
    env.setdefault("POUNCE_API_URL", f"http://127.0.0.1:{args.port or env.get('POUNCE_API_PORT') or 3000}")
    conf = conf_mod.load(args.conf, env)
    port, admin = _ports(args, conf)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")

    def announce(line: str) -> None:
        print(line, flush=True)
        if args.announce_file:
            Path(args.announce_file).write_text(line + "\n")

    try:
        import uvloop  # optional
        uvloop.install()
    except ImportError:
        pass
    if workers > 1:
        try:
            app.serve_workers(conf, args.host, port, admin, workers, announce, args.shutdown_timeout)
        finally:
            import shutil
            shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
    else:
        asyncio.run(app.serve(conf, args.host, port, admin, announce, args.shutdown_timeout))
    return 0


def _state(s: Settings) -> tuple[Path, Path, Path]:
    return s.home / "api.pid", s.home / "api.json", s.home / "api.log"


def _alive(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"api" in cmdline and b"serve" in cmdline else None


def cmd_start(s: Settings, args) -> int:
    pidfile, info, logfile = _state(s)
    if _alive(pidfile):
        print(json.loads(info.read_text())["url"])
        return 0
    info.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "pounce", "api", "serve", "--announce-file", str(info)]
    if args.port is not None:
        argv += ["--port", str(args.port)]
    if args.admin_port is not None:
        argv += ["--admin-port", str(args.admin_port)]
    with open(logfile, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    pidfile.write_text(str(proc.pid))
    deadline = time.time() + 30
    while time.time() < deadline:
        if info.exists() and info.read_text().strip():
            print(json.loads(info.read_text())["url"])
            return 0
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    text = logfile.read_text(errors="replace")
    tail = text.splitlines()[-15:]
    print("pounce api: the server did not start; end of " + str(logfile) + ":\n" + "\n".join(tail), file=sys.stderr)
    if "Address already in use" in text[-3000:]:
        print("pounce api: a port is taken; choose others with POUNCE_API_PORT and POUNCE_API_ADMIN_PORT",
              file=sys.stderr)
    return 1


def cmd_stop(s: Settings, args) -> int:
    pidfile, info, _ = _state(s)
    pid = _alive(pidfile)
    if pid:
        os.kill(pid, signal.SIGTERM)
        for _ in range(200):
            if not Path(f"/proc/{pid}").exists() or _alive(pidfile) is None:
                break
            time.sleep(0.1)
        print("api server stopped")
    pidfile.unlink(missing_ok=True)
    info.unlink(missing_ok=True)
    return 0


def cmd_status(s: Settings, args) -> int:
    pidfile, info, logfile = _state(s)
    pid = _alive(pidfile)
    out = {"running": bool(pid), "pid": pid, "log": str(logfile)}
    if pid and info.exists():
        out.update(json.loads(info.read_text()))
    print(json.dumps(out, indent=2))
    return 0 if pid else 3


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("api", help="the local API server (PostgREST's dialect over the api schema)")
    api = group.add_subparsers(dest="api_command", required=True)
    sv = api.add_parser("serve", help="run in the foreground (SIGTERM: graceful shutdown)")
    sv.add_argument("--conf", help="config file (default api_config/postgrest.conf)")
    sv.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1; '*' for all)")
    sv.add_argument("--port", type=int, help="API port (default $POUNCE_API_PORT or server-port)")
    sv.add_argument("--admin-port", type=int, help="/live, /ready, /metrics (default admin-server-port)")
    sv.add_argument("--announce-file", help="write {url, admin_url} here once listening")
    sv.add_argument("--shutdown-timeout", type=float, default=10.0)
    sv.add_argument("--quiet", action="store_true", help="no access log")
    sv.add_argument("--workers", type=int, help="processes sharing the port (default $POUNCE_API_WORKERS or 1); "
                                                "db-pool is divided between them")
    sv.set_defaults(fn=cmd_serve)
    st = api.add_parser("start", help="run in the background (no-op when running); prints the URL")
    st.add_argument("--port", type=int)
    st.add_argument("--admin-port", type=int)
    st.set_defaults(fn=cmd_start)
    api.add_parser("stop", help="stop the background server").set_defaults(fn=cmd_stop)
    api.add_parser("status", help="JSON status; exit 3 when not running").set_defaults(fn=cmd_status)
