#!/usr/bin/env bash
# Installs the system packages Pounce needs: PostgreSQL with pg_cron and pgvector,
# the Public Suffix List, and the tools CI uses. Idempotent: a second run only checks.
#
#   Debian 12 (bookworm): postgresql-15 + postgresql-15-cron from apt; pgvector built
#                         from Debian 13's own pgvector source package against
#                         postgresql-server-dev-15 (apt's sources are never edited: a
#                         temporary source list is passed with -o options).
#   Debian 13 (trixie):   postgresql-17 + postgresql-17-cron + postgresql-17-pgvector.
set -euo pipefail

log() { printf '[install-system] %s\n' "$*" >&2; }

if [ -r /etc/os-release ]; then . /etc/os-release; fi
case "${ID:-}:${VERSION_ID:-}" in
  debian:12) PG=15 ;;
  debian:13) PG=17 ;;
  *)
    cat >&2 <<MSG
[install-system] unsupported system: ${PRETTY_NAME:-unknown}.
Pounce's installer knows Debian 12 and Debian 13. Elsewhere install by hand:
  PostgreSQL 15 or newer with its server binaries (initdb, pg_ctl),
  pg_cron (1.4+) and pgvector (0.7+) for that PostgreSQL, pg_trgm/pgcrypto/citext/
  pg_stat_statements (contrib), the Public Suffix List, Python 3.11+ with venv;
then set POUNCE_PG_BINDIR to the directory holding initdb and pg_ctl.
MSG
    exit 1 ;;
esac

# Only installing needs root: an ordinary user on a prepared machine passes the checks.
SUDO=""
need_root() {
  if [ "$(id -u)" != 0 ] && [ -z "$SUDO" ]; then
    command -v sudo >/dev/null || { log "$1 needs root: run scripts/install-system.sh as root once"; exit 1; }
    SUDO="sudo"
  fi
}

pkgs=(postgresql-$PG postgresql-contrib postgresql-$PG-cron publicsuffix
      python3-venv python3-dev build-essential docker-compose ca-certificates wrk
      # the collectors' tests run real servers on loopback (the suite starts its own
      # instances; the packages' system services are not used): an authoritative DNS
      # server, and nginx with the echo module (slow responses)
      nsd nginx-light libnginx-mod-http-echo)
# Node runs the API client test (@supabase/postgrest-js); a machine that already has
# node and npm (e.g. from another source) keeps them: mixing packages would conflict.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then pkgs+=(nodejs npm); fi
[ "$PG" = 17 ] && pkgs+=(postgresql-17-pgvector)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  need_root "installing ${missing[*]}"
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's package creates and starts a system cluster; Pounce runs its own and never
  # touches that one.
fi

PG_BINDIR=/usr/lib/postgresql/$PG/bin
PG_CONFIG=$PG_BINDIR/pg_config
[ -x "$PG_CONFIG" ] || PG_CONFIG=/usr/bin/pg_config
EXT_DIR=/usr/share/postgresql/$PG/extension

# pgvector's installed version, or nothing.
vector_version() { sed -n "s/^default_version = '\(.*\)'/\1/p" "$EXT_DIR/vector.control" 2>/dev/null; }
vector_ok() {  # 0.7 or newer
  local v; v=$(vector_version)
  [ -n "$v" ] && [ "$(printf '%s\n0.7.0\n' "$v" | sort -V | head -n1)" = 0.7.0 ]
}

if [ "$PG" = 15 ] && ! vector_ok; then
  need_root "building pgvector"
  log "building pgvector from Debian's source package against postgresql-server-dev-15"
  dpkg-query -W -f='${Status}' postgresql-server-dev-15 2>/dev/null | grep -q "install ok installed" \
    || $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-server-dev-15 dpkg-dev >/dev/null
  command -v dpkg-source >/dev/null || $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dpkg-dev >/dev/null
  work=$(mktemp -d /tmp/pounce-pgvector.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/src"
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" > "$work/sources.list"
  aptopts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=-"
           -o "Dir::State::Lists=$work/lists" -o "Dir::Cache::Archives=$work/archives"
           -o "APT::Sandbox::User=root")
  $SUDO apt-get "${aptopts[@]}" update -qq
  # apt checks the files against the signed Sources index; dpkg-source need not verify
  # the uploader's signature again (that would need debian-keyring).
  (cd "$work/src" && $SUDO apt-get "${aptopts[@]}" source -qq --download-only pgvector \
     && $SUDO dpkg-source -x --no-check ./pgvector_*.dsc pgvector >/dev/null)
  # OPTFLAGS="": no -march=native, so the build runs on any CPU of the architecture.
  $SUDO make -s -C "$work/src/pgvector" PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >/dev/null
  $SUDO make -s -C "$work/src/pgvector" PG_CONFIG="$PG_CONFIG" install >/dev/null
  vector_ok || { log "pgvector build did not install a usable version"; exit 1; }
  log "pgvector $(vector_version) installed"
fi

log "system ready: PostgreSQL $PG at $PG_BINDIR with pg_cron and pgvector"
