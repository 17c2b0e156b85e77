#!/usr/bin/env bash
# Replica-side benchmark (docs/benchmarks.md, "Consumer"): the apply rate of `pgcqrs consume`
# from a full queue of SAVE events, with -w 1 and -w 2, beside two ceilings measured in the same
# run on the same servers and bodies: RabbitMQ's delivery rate to one consumer (prefetch 1000,
# multiple-ack, no database) and PostgreSQL's set-based upsert rate (500 rows per transaction,
# server-side, no broker). Builds bin/pgcqrs and bin/bench_amqp in Release, then runs
# integration_tests/bench/consume_run.sh against a private PostgreSQL 15 and RabbitMQ.
# Installs nothing: run integration_tests/install_deps.sh first on a fresh machine.
#
# usage: integration_tests/bench_consume.sh                   # 200,000 events, ~3 min on 2 cores
#        BENCH_EVENTS=20000 integration_tests/bench_consume.sh   # smoke run
# env: BENCH_EVENTS (200000)  BENCH_WORKERS ("1 2")  BENCH_OUT (BUILD/bench-results/consume-<date>)
#      PGCQRS_BENCH_BUILD_DIR (./build-bench)  PGCQRS_JOBS (2)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BUILD="${PGCQRS_BENCH_BUILD_DIR:-$ROOT/build-bench}"

echo "==> building pgcqrs and bench_amqp (Release) in $BUILD"
PGCQRS_JOBS="${PGCQRS_JOBS:-2}" "$HERE/build.sh" "$BUILD" -DCMAKE_BUILD_TYPE=Release -- \
  pgcqrs bench_amqp

OUT="${BENCH_OUT:-$BUILD/bench-results/consume-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"
echo "==> results in $OUT"
exec "$HERE/with_servers.sh" "$HERE/bench/consume_run.sh" "$BUILD/bin" "$OUT"
