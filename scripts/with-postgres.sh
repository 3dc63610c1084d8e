#!/usr/bin/env bash
# Runs a command against a throw-away PostgreSQL server from Debian's packages, on a loopback
# port, and stops it afterwards:  scripts/with-postgres.sh cargo test -p server
# The command gets ONRAMP_TEST_DATABASE_URL=postgres://onramp@127.0.0.1:PORT/postgres.
set -euo pipefail
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$BIN/initdb" ] || { echo "with-postgres: PostgreSQL is not installed (scripts/setup.sh --test installs it)" >&2; exit 2; }
DIR=$(mktemp -d /tmp/onramp-pg.XXXXXX)
# PostgreSQL refuses to run as root: run it as the postgres user when we are root.
run() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$DIR"
stop() {
  run "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop > /dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap stop EXIT
run "$BIN/initdb" -D "$DIR/data" -U onramp --auth=trust --no-sync > "$DIR/initdb.log" 2>&1 ||
  { cat "$DIR/initdb.log" >&2; exit 2; }
# A port below Linux's ephemeral range (32768 and up), where the tests' own client sockets live:
# one of those in TIME_WAIT once kept PostgreSQL from binding. Another port is tried when one is
# taken anyway.
started=
for _ in 1 2 3 4 5 6 7 8; do
  PORT=${ONRAMP_PG_PORT:-$((20000 + RANDOM % 12000))}
  if run "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c max_connections=300" start > /dev/null; then
    started=1
    break
  fi
  [ -n "${ONRAMP_PG_PORT:-}" ] && break
done
[ -n "$started" ] || { cat "$DIR/server.log" >&2; exit 2; }
echo "with-postgres: PostgreSQL on 127.0.0.1:$PORT" >&2
ONRAMP_TEST_DATABASE_URL="postgres://onramp@127.0.0.1:$PORT/postgres" "$@"
