#!/usr/bin/env bash
# Master-side benchmarks (docs/benchmarks.md): capture cost, agent drain rate, outbox bloat.
# Builds bin/pgcqrs and bin/bench_amqp in Release, then runs integration_tests/bench/master_run.sh
# against a private PostgreSQL 15 and RabbitMQ (integration_tests/with_servers.sh). Installs
# nothing: run integration_tests/install_deps.sh first on a fresh machine.
#
# usage: integration_tests/bench_master.sh                  # full run, ~10 min on 2 cores
#        BENCH_QUICK=1 integration_tests/bench_master.sh    # smoke run, ~2 min
#        BENCH_PHASES=drain integration_tests/bench_master.sh   # one phase
#
# env knobs (defaults; BENCH_QUICK=1 values in brackets):
#   BENCH_PHASES          "capture micro explain commit drain bloat"   which phases, in order
#   capture: pgbench writes to a plain table, the same table with pgcqrs capture, and with a
#   naive row trigger; sync commit on unless the workload says otherwise
#   BENCH_SECONDS         8 [3]      pgbench -T of each run
#   BENCH_REPEAT          2 [1]      runs per workload and variant, interleaved; the best is kept
#   BENCH_CLIENTS         2          pgbench -c and -j
#   BENCH_MANY_CLIENTS    8          pgbench -c of the ins1c8 workload
#   BENCH_WORKLOADS       "ins1 ins100stmt ins100tx upd1 ins1async ins1c8"
#   BENCH_VARIANTS        "plain capture rowtrg none" (none: a statement trigger with transition
#                         tables and an empty body, the cost of having a trigger; more: notify
#                         bump min nocheck nonotify notifyall onerow awake agg rowagg rowtext colarrays
#                         keys batch batchnw batchns, see bench/sql/capture_probe.sql; INSERT
#                         workloads only: ctrgh ctrgi, a C row trigger writing the outbox row
#                         without executor, bench/c_trigger/ctrg.c, needs
#                         postgresql-server-dev-15)
#   BENCH_UPDATE_ROWS     100000 [10000]  rows the UPDATE workloads pick from
#   BENCH_WARMUP_SECONDS  3 [0]      an uncounted pgbench run of each variant before a workload's
#                         rounds (0: none)
#   BENCH_OUTBOX_REUSE    0          rows written to and deleted from cqrs.outbox and the naive
#                         trigger's outbox before every run (then VACUUM, which keeps the empty
#                         pages): they reuse freed pages, as with a running agent, instead of
#                         growing (0: they start empty and grow)
#   micro: CPU per statement of capture and of its parts, one backend, one transaction
#   BENCH_MICRO_STATEMENTS 20000 [5000]   BENCH_MICRO_REPEAT 3 [1]
#   BENCH_MICRO_VARIANTS  "plain none notify bump min nocheck nonotify capture rowtrg agg keys"
#   BENCH_MICRO_WORKLOADS "ins1 ins100stmt upd1"
#   explain: auto_explain (ANALYZE, BUFFERS, WAL) of one large INSERT, plain and captured
#   BENCH_EXPLAIN_ROWS    10000
#   commit: one client, sync commit: latency and WAL bytes per 1-row INSERT / UPDATE tx
#   BENCH_COMMIT_TX       3000 [1000]    BENCH_COMMIT_REPEAT 3 [1]
#   BENCH_COMMIT_VARIANTS "plain capture nonotify rowtrg"
#   drain: the agent empties a pre-filled outbox; raw confirmed publishing for comparison
#   BENCH_DRAIN_ROWS      200000 [20000]  events pre-filled into the outbox
#   BENCH_NOTE_BYTES      35         text column width; 35 gives ~390-byte events
#   BENCH_DRAIN_STATEMENT_ROWS 0     rows per INSERT of the pre-fill (0: one statement, so
#                         batch rows of 1000 events; 1: one batch row per event)
#   BENCH_CONFIRM_WINDOW  1000       agent confirm_window and raw publisher window
#   bloat: outbox size while the agent keeps up with a steady writer
#   BENCH_BLOAT_SECONDS   120 [15]   sustained-write duration (autovacuum_naptime is 60 s)
#   BENCH_BLOAT_TPS       500        pgbench -R (2 events per tx); 0 = as fast as possible
#   BENCH_SAMPLE_EVERY    5          seconds between outbox samples
#   BENCH_OUT             BUILD/bench-results/<date>   where results.md and raw logs go
#   PGCQRS_BENCH_BUILD_DIR  ./build-bench               PGCQRS_JOBS  2 (compile jobs)
#   PGCQRS_PG_CONF        extra postgresql.conf lines (default: max_wal_size = 4GB,
#                         checkpoint_timeout = 30min, so that no checkpoint starts inside a run;
#                         every run starts after an explicit CHECKPOINT)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BUILD="${PGCQRS_BENCH_BUILD_DIR:-$ROOT/build-bench}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"

[ -x "$PG_BIN/pgbench" ] || {
  echo "bench_master: $PG_BIN/pgbench not found (package postgresql-15 or postgresql-client-15;" \
       "integration_tests/install_deps.sh installs it)" >&2
  exit 1
}

echo "==> building pgcqrs and bench_amqp (Release) in $BUILD"
PGCQRS_JOBS="${PGCQRS_JOBS:-2}" "$HERE/build.sh" "$BUILD" -DCMAKE_BUILD_TYPE=Release -- \
  pgcqrs bench_amqp

export BENCH_BIN="$BUILD/bin" PG_BIN
export BENCH_OUT="${BENCH_OUT:-$BUILD/bench-results/$(date +%Y%m%d-%H%M%S)}"
export PGCQRS_PG_CONF="${PGCQRS_PG_CONF:-$'max_wal_size = 4GB\ncheckpoint_timeout = 30min'}"
mkdir -p "$BENCH_OUT"
{
  echo "pgcqrs master benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)," \
       "$(sed -n 's/^PRETTY_NAME="\(.*\)"/\1/p' /etc/os-release), $("$PG_BIN/postgres" --version)," \
       "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" \
       "$( [ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ] && echo '(uncommitted changes)')"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$BENCH_OUT/header.txt"

start=$SECONDS
"$HERE/with_servers.sh" "$HERE/bench/master_run.sh"
echo ""
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg); $((SECONDS - start)) s;" \
     "results in $BENCH_OUT/results.md"
