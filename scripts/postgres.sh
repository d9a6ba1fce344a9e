#!/usr/bin/env bash
# A throw-away PostgreSQL on 127.0.0.1 for the test suite, from Debian's package.
#   scripts/postgres.sh start   install if needed, init a cluster, start it, print nothing
#   scripts/postgres.sh stop    stop it and delete its data
set -euo pipefail
port=${DAC_POSTGRES_PORT:-25432}
data=${DAC_POSTGRES_DIR:-/tmp/dac-postgres-$port}

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  if [ -z "$(bindir)" ]; then
    if [ "$(id -u)" != 0 ]; then echo "PostgreSQL is not installed; run as root or: apt-get install postgresql" >&2; exit 1; fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  local bin; bin=$(bindir)
  stop >/dev/null 2>&1 || true
  mkdir -p "$data"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$data"
  as_postgres "$bin/initdb" -D "$data/db" -U postgres --auth=trust -E UTF8 >/dev/null
  as_postgres "$bin/pg_ctl" -D "$data/db" -l "$data/log" -w \
    -o "-h 127.0.0.1 -p $port -k $data -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null
}

stop() {
  local bin; bin=$(bindir)
  if [ -n "$bin" ] && [ -d "$data/db" ]; then
    as_postgres "$bin/pg_ctl" -D "$data/db" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$data"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
