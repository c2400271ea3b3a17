#!/usr/bin/env bash
# Start or stop the PostgreSQL server the tests use: 127.0.0.1 only, data under the repo.
# Writes .pg.env with FLYWHEEL_TEST_POSTGRES_URL; leaves it empty (tests skip) when PostgreSQL
# cannot be installed, which CI refuses (the tests fail under CI=true without it).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
PORT=${FLYWHEEL_TEST_PG_PORT:-54329}
DATA="$REPO/.pgdata"
LOG="$REPO/.pgdata.log"

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_postgres() {
  if [ -n "$(pg_bin)" ]; then return 0; fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "postgres.sh: PostgreSQL is not installed and cannot be (needs root and apt-get)." >&2
    return 1
  fi
  echo "postgres.sh: installing PostgreSQL from Debian packages…"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

start() {
  : > .pg.env
  if ! install_postgres; then
    echo "postgres.sh: the PostgreSQL half of the suite will be skipped." >&2
    return 0
  fi
  local bin; bin=$(pg_bin)
  # The server user must be able to reach the data folder; fall back to /tmp when the repo is private.
  if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$REPO"; then
    DATA="/tmp/flywheel-pgdata-$(echo "$REPO" | sha1sum | cut -c1-8)"
    LOG="$DATA.log"
  fi
  stop_quietly
  rm -rf "$DATA"; mkdir -p "$DATA"; : > "$LOG"
  if [ "$(id -u)" = 0 ]; then chown postgres "$DATA" "$LOG"; fi
  as_postgres "$bin/initdb" -D "$DATA" -A trust -U postgres >/dev/null
  as_postgres "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 30 \
    -o "-h 127.0.0.1 -p $PORT -k $DATA -c fsync=off -c synchronous_commit=off -c max_connections=200" start >/dev/null
  echo "FLYWHEEL_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres" > .pg.env
  echo "FLYWHEEL_TEST_PGDATA=$DATA" >> .pg.env
  echo "postgres.sh: PostgreSQL is up on 127.0.0.1:$PORT (data in $DATA)."
}

stop_quietly() {
  local bin; bin=$(pg_bin)
  [ -n "$bin" ] || return 0
  for d in "$REPO/.pgdata" /tmp/flywheel-pgdata-*; do
    [ -f "$d/postmaster.pid" ] && as_postgres "$bin/pg_ctl" -D "$d" -m fast -w stop >/dev/null 2>&1
  done
  return 0
}

case "${1:-}" in
  start) start ;;
  stop) stop_quietly; echo "postgres.sh: PostgreSQL stopped." ;;
  *) echo "usage: scripts/postgres.sh start|stop" >&2; exit 2 ;;
esac
