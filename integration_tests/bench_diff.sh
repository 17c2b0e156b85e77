#!/usr/bin/env bash
# Diff pipeline benchmark (docs/benchmarks.md, "Diff pipeline"): `pgcqrs diff-master | pgcqrs diff-replica |
# pgcqrs diff-sync` end to end over a 1,000,000-row master table (int pk, text, numeric,
# timestamptz, jsonb) and its replica copy with 1,000 differences (400 rows missing on the
# replica, 300 stale, 300 newer on the replica). A `pgcqrs consume` replica is running, so the
# SYNCs are applied as in production; afterwards the pipeline is run again and must find nothing.
# Builds bin/pgcqrs in Release, runs against a private PostgreSQL 15 and RabbitMQ
# (integration_tests/with_servers.sh). Installs nothing.
#
# usage: integration_tests/bench_diff.sh              # 1,000,000 rows, 3 timed runs
#        BENCH_ROWS=100000 integration_tests/bench_diff.sh
# env knobs: BENCH_ROWS 1000000, BENCH_RUNS 3, BENCH_BATCH 10000 (--batch of every stage),
#   PGCQRS_BENCH_BUILD_DIR ./build-bench-diff, PGCQRS_JOBS 2,
#   BENCH_OUT BUILD/bench-results/diff-<date> (logs and results.md)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
SQL="$HERE/bench/sql"

if [ "${1:-}" != --inner ]; then
  BUILD="${PGCQRS_BENCH_BUILD_DIR:-$ROOT/build-bench-diff}"
  echo "==> building pgcqrs (Release) in $BUILD"
  PGCQRS_JOBS="${PGCQRS_JOBS:-2}" "$HERE/build.sh" "$BUILD" -DCMAKE_BUILD_TYPE=Release -- pgcqrs
  export BENCH_BIN="$BUILD/bin"
  export BENCH_OUT="${BENCH_OUT:-$BUILD/bench-results/diff-$(date +%Y%m%d-%H%M%S)}"
  mkdir -p "$BENCH_OUT"
  {
    echo "pgcqrs diff pipeline benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)," \
         "$("$PG_BIN/postgres" --version), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  } | tee "$BENCH_OUT/results.md"
  exec "$HERE/with_servers.sh" "$0" --inner
fi

# ---- inner: the servers are up (PGCQRS_TEST_PG_URL, PGCQRS_TEST_AMQP_URL)
ROWS="${BENCH_ROWS:-1000000}"
RUNS="${BENCH_RUNS:-3}"
BATCH="${BENCH_BATCH:-10000}"
OUT="$BENCH_OUT"
PGCQRS="$BENCH_BIN/pgcqrs"
base="${PGCQRS_TEST_PG_URL%/*}"
MASTER_URL="$base/bench_master"
REPLICA_URL="$base/bench_replica"
psql_m() { psql -X -q -v ON_ERROR_STOP=1 "$MASTER_URL" "$@"; }
psql_r() { psql -X -q -v ON_ERROR_STOP=1 "$REPLICA_URL" "$@"; }
say() { echo "$@" | tee -a "$OUT/results.md"; }

psql -X -q -v ON_ERROR_STOP=1 "$PGCQRS_TEST_PG_URL" -c "CREATE DATABASE bench_master" \
  -c "CREATE DATABASE bench_replica"

cat > "$OUT/master.toml" <<EOF
[broker]
url = "$PGCQRS_TEST_AMQP_URL"
exchange = "cqrs"

[master]
database = "$MASTER_URL"

[[master.model]]
cqrs_id = "bench"
table = "bench_item"
EOF
cat > "$OUT/replica.toml" <<EOF
[broker]
url = "$PGCQRS_TEST_AMQP_URL"
exchange = "cqrs"

[replica]
database = "$REPLICA_URL"
queue = "bench_replica"

[[replica.model]]
cqrs_id = "bench"
table = "bench_item"
EOF

t0=$SECONDS
echo "==> filling the master with $ROWS rows"
psql_m -v rows="$ROWS" -f "$SQL/diff_master.sql"
"$PGCQRS" --config "$OUT/master.toml" migrate > "$OUT/migrate-master.log"
echo "==> copying them to the replica"
psql_r -f "$SQL/diff_replica.sql"
psql_m -c "COPY bench_item TO STDOUT" | psql_r -c "COPY bench_item FROM STDIN"
"$PGCQRS" --config "$OUT/replica.toml" migrate > "$OUT/migrate-replica.log"
echo "==> 1,000 differences: 400 missing and 300 newer on the replica, 300 stale"
psql_r -v missing=400 -v newer=300 -f "$SQL/diff_diverge.sql"
psql_m -v stale=300 -f "$SQL/diff_diverge_master.sql"
echo "    setup took $((SECONDS - t0)) s"

# the replica consumer declares and binds its queue and applies the SYNCs
"$PGCQRS" --config "$OUT/replica.toml" consume > "$OUT/consume.log" 2>&1 &
consumer=$!
trap 'kill "$consumer" 2>/dev/null || true; wait "$consumer" 2>/dev/null || true' EXIT
sleep 3  # its queue is declared and bound before the first SYNC is published

now_ms() { date +%s%3N; }
secs() { awk -v ms="$1" 'BEGIN { printf "%.2f", ms / 1000 }'; }
master_cmd="$PGCQRS --config $OUT/master.toml diff-master --cqrs-id bench --batch $BATCH"
replica_cmd="$PGCQRS --config $OUT/replica.toml diff-replica"
sync_cmd="$PGCQRS --config $OUT/master.toml diff-sync --batch $BATCH"

say ""
say "rows: $ROWS, differences: 1000 (400 missing, 300 stale, 300 newer on the replica), batch $BATCH"
say ""
say "| run | diff-master alone | diff-replica alone | diff-sync alone | pipeline end to end | pks resynced |"
say "|---|---|---|---|---|---|"
best=""
for run in $(seq 1 "$RUNS"); do
  # each stage alone (files between them), then the three piped together
  a=$(now_ms); $master_cmd > "$OUT/master.out"; b=$(now_ms)
  $replica_cmd < "$OUT/master.out" > "$OUT/replica.out" 2> "$OUT/replica.err"; c=$(now_ms)
  # the alone diff-sync publishes the SYNCs; the consumer applies them, so the replica is
  # made to diverge again before the end-to-end run
  $sync_cmd < "$OUT/replica.out" > "$OUT/sync.out"; d=$(now_ms)
  count=$(sed -n 's/^\([0-9]*\) instance(s) synced\./\1/p' "$OUT/sync.out" | awk '{ s += $1 } END { print s + 0 }')
  # wait until the consumer applied them, then diverge again for the end-to-end run
  for _ in $(seq 1 300); do
    left=$($replica_cmd < "$OUT/master.out" 2>/dev/null | tail -n +2 | wc -l)
    [ "$left" = 0 ] && break
    sleep 0.2
  done
  psql_r -v missing=400 -v newer=300 -f "$SQL/diff_diverge.sql"
  psql_r -c "UPDATE bench_item SET cqrs_revision = 0 WHERE id IN (SELECT 1000 * g + 3 FROM generate_series(0, 299) g)"
  e=$(now_ms)
  bash -c "set -o pipefail; $master_cmd | $replica_cmd 2> '$OUT/pipe-replica.err' | $sync_cmd > '$OUT/pipe-sync.out'"
  f=$(now_ms)
  pipe_count=$(sed -n 's/^\([0-9]*\) instance(s) synced\./\1/p' "$OUT/pipe-sync.out" | awk '{ s += $1 } END { print s + 0 }')
  say "| $run | $(secs $((b - a))) s | $(secs $((c - b))) s | $(secs $((d - c))) s ($count synced) | **$(secs $((f - e))) s** | $pipe_count |"
  [ -z "$best" ] || [ $((f - e)) -lt "$best" ] && best=$((f - e))
  # let the consumer apply, then restore the divergence for the next run
  for _ in $(seq 1 300); do
    left=$($replica_cmd < "$OUT/master.out" 2>/dev/null | tail -n +2 | wc -l)
    [ "$left" = 0 ] && break
    sleep 0.2
  done
  if [ "$run" -lt "$RUNS" ]; then
    psql_r -v missing=400 -v newer=300 -f "$SQL/diff_diverge.sql"
    psql_r -c "UPDATE bench_item SET cqrs_revision = 0 WHERE id IN (SELECT 1000 * g + 3 FROM generate_series(0, 299) g)"
  fi
done

# after the last run the consumer has applied every SYNC: the pipeline must find nothing
final=$($master_cmd | $replica_cmd 2>/dev/null | tail -n +2 | wc -l)
say ""
say "best end-to-end: $(secs "$best") s (goal <= 10 s); after the consumer applied the SYNCs the"
say "pipeline finds $final differing line(s) (must be 0)"
say "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
say ""
say "reproduce: integration_tests/bench_diff.sh   (BENCH_ROWS=$ROWS BENCH_RUNS=$RUNS BENCH_BATCH=$BATCH)"
[ "$final" = 0 ] || { echo "bench_diff: the replica still differs after the resync" >&2; exit 1; }
