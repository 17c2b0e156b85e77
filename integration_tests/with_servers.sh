#!/usr/bin/env bash
# Run a command with a private PostgreSQL 15 and RabbitMQ started for it, then stop them.
#
# usage: integration_tests/with_servers.sh COMMAND [ARGS...]
#
# Both servers run under one temporary folder, on free loopback ports, and are always stopped
# and wiped when COMMAND ends, fails or is interrupted (trap). Leftovers of an earlier run that
# was killed (its owner process is gone) are stopped and wiped first. Servers this run did not
# start are never touched.
#
# COMMAND sees:
#   PGCQRS_TEST_PG_URL    postgresql://postgres@127.0.0.1:PORT/postgres
#   PGCQRS_TEST_AMQP_URL  amqp://guest:guest@127.0.0.1:PORT/
#   PGCQRS_TEST_PG_PORT PGCQRS_TEST_PG_BASE PGCQRS_TEST_RMQ_PORT PGCQRS_TEST_RMQ_BASE
#   PGCQRS_TEST_SERVERS   folder of pg-up.sh, pg-down.sh, rmq-up.sh, rmq-down.sh (restarts)
# env: PGCQRS_SERVERS_ROOT  where run folders live (default ${TMPDIR:-/tmp}/pgcqrs-runs)
#      PGCQRS_KEEP_SERVERS=1 leave the servers running at the end (debugging; prints how to stop)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SERVERS="$HERE/servers"
ROOT="${PGCQRS_SERVERS_ROOT:-${TMPDIR:-/tmp}/pgcqrs-runs}"
mkdir -p "$ROOT"

[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

alive() { [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }

stop_run() {   # stop the servers recorded in run folder $1 and wipe it
  local dir="$1" pg_port rmq_port
  pg_port="$(cat "$dir/pg.port" 2>/dev/null || true)"
  rmq_port="$(cat "$dir/rmq.port" 2>/dev/null || true)"
  [ -n "$rmq_port" ] && RMQ_BASE="$dir/rmq" RMQ_FAST=1 "$SERVERS/rmq-down.sh" "$rmq_port" >/dev/null 2>&1
  [ -n "$pg_port" ] && PG_BASE="$dir/pg" "$SERVERS/pg-down.sh" "$pg_port" >/dev/null 2>&1
  rm -rf "$dir"
}

if [ "$1" = --stop ]; then stop_run "${2:?usage: $0 --stop RUN_FOLDER}"; exit 0; fi

# 1. leftovers of killed runs: their owner PID (recorded at start) is no longer alive
for dir in "$ROOT"/run.*; do
  [ -d "$dir" ] || continue
  owner="$(cat "$dir/owner.pid" 2>/dev/null || true)"
  if [ -z "$owner" ] || ! alive "$owner"; then
    echo "with_servers: cleaning up leftovers of an earlier run in $dir" >&2
    stop_run "$dir"
  fi
done

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {  # a port P such that P..P+$1 are all free on 127.0.0.1
  local span="$1" p i ok
  for _ in $(seq 1 200); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 20000 ))
    ok=1
    for i in $(seq 0 "$span"); do port_free $((p + i)) || { ok=0; break; }; done
    [ "$ok" = 1 ] && { echo "$p"; return 0; }
  done
  echo "with_servers: no free port range found" >&2; return 1
}

RUN="$(mktemp -d "$ROOT/run.XXXXXX")"
chmod 755 "$RUN"        # the postgres OS user must reach its data folder below
echo $$ > "$RUN/owner.pid"

cleanup() {
  local rc=$?
  if [ "${PGCQRS_KEEP_SERVERS:-0}" = 1 ]; then
    echo "with_servers: servers left running in $RUN; stop with: $0 --stop $RUN" >&2
    return $rc
  fi
  stop_run "$RUN"
  return $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PG_PORT="$(pick_port 0)"; echo "$PG_PORT" > "$RUN/pg.port"
RMQ_PORT="$(pick_port 19)"; echo "$RMQ_PORT" > "$RUN/rmq.port"

echo "with_servers: starting PostgreSQL on 127.0.0.1:$PG_PORT and RabbitMQ on 127.0.0.1:$RMQ_PORT ($RUN)" >&2
# the two start in parallel: RabbitMQ takes 5-20 s, PostgreSQL 1-2 s
PG_BASE="$RUN/pg" PG_CONF="${PGCQRS_PG_CONF:-}" "$SERVERS/pg-up.sh" "$PG_PORT" > "$RUN/pg.url" 2> "$RUN/pg-up.err" &
pg_job=$!
rmq_ok=0
for attempt in 1 2; do
  if RMQ_BASE="$RUN/rmq" "$SERVERS/rmq-up.sh" "$RMQ_PORT" > "$RUN/rmq.url" 2> "$RUN/rmq-up.err"; then
    rmq_ok=1; break
  fi
  echo "with_servers: RabbitMQ did not start (attempt $attempt):" >&2
  tail -n 20 "$RUN/rmq-up.err" >&2 || true
done
wait "$pg_job" || { echo "with_servers: PostgreSQL did not start:" >&2; cat "$RUN/pg-up.err" >&2; exit 1; }
[ "$rmq_ok" = 1 ] || exit 1

export PGCQRS_TEST_PG_URL="$(tail -n1 "$RUN/pg.url")"
export PGCQRS_TEST_AMQP_URL="$(tail -n1 "$RUN/rmq.url")"
export PGCQRS_TEST_PG_PORT="$PG_PORT" PGCQRS_TEST_PG_BASE="$RUN/pg"
export PGCQRS_TEST_RMQ_PORT="$RMQ_PORT" PGCQRS_TEST_RMQ_BASE="$RUN/rmq"
export PGCQRS_TEST_SERVERS="$SERVERS"
echo "with_servers: PostgreSQL $PGCQRS_TEST_PG_URL, RabbitMQ $PGCQRS_TEST_AMQP_URL" >&2

# run the command as a child (not exec) so that the trap cleans up after it
set +e
"$@"
rc=$?
set -e
exit $rc
