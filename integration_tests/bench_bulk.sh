#!/usr/bin/env bash
# Bulk dump/load benchmarks (docs/benchmarks.md, "Bulk dump and load"): `pgcqrs bulk-dump` against
# `COPY (SELECT ...) TO STDOUT` of the same rows, and `pgcqrs bulk-load` against `COPY FROM`
# into the same table, in the same run, on a private PostgreSQL 15 and RabbitMQ
# (integration_tests/with_servers.sh). Builds bin/pgcqrs in Release first.
#
# usage: integration_tests/bench_bulk.sh                 # 1,000,000 rows, best of 3
#        BENCH_ROWS=100000 BENCH_REPEAT=1 integration_tests/bench_bulk.sh   # smoke run
#
# env knobs: BENCH_ROWS 1000000   BENCH_REPEAT 3 (runs of each measurement, interleaved; the
#            best is kept)   BENCH_BATCH 10000 (--batch of both commands)
#            BENCH_OUT BUILD/bench-results/bulk-<date>   PGCQRS_BENCH_BUILD_DIR ./build-bench
#            PGCQRS_JOBS 2
# Goals (issue 5): dump rows/s >= 0.8 x COPY TO; load rows/s >= 0.5 x COPY FROM.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
export PATH="$PG_BIN:$PATH"

if [ "${1:-}" != --inner ]; then
  BUILD="${PGCQRS_BENCH_BUILD_DIR:-$ROOT/build-bench}"
  echo "==> building pgcqrs (Release) in $BUILD"
  PGCQRS_JOBS="${PGCQRS_JOBS:-2}" "$HERE/build.sh" "$BUILD" -DCMAKE_BUILD_TYPE=Release -- pgcqrs
  export BENCH_BIN="$BUILD/bin"
  export BENCH_OUT="${BENCH_OUT:-$BUILD/bench-results/bulk-$(date +%Y%m%d-%H%M%S)}"
  export PGCQRS_PG_CONF="${PGCQRS_PG_CONF:-$'max_wal_size = 4GB\ncheckpoint_timeout = 30min'}"
  mkdir -p "$BENCH_OUT"
  {
    echo "pgcqrs bulk benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)," \
         "$("$PG_BIN/postgres" --version), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" \
         "$( [ -n "$(git -C "$ROOT" status --porcelain -- master replica tools 2>/dev/null)" ] && echo '(uncommitted changes)')"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  } | tee "$BENCH_OUT/header.txt"
  "$HERE/with_servers.sh" "$0" --inner
  echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  exit 0
fi

# ---- inside with_servers.sh --------------------------------------------------------------
: "${PGCQRS_TEST_PG_URL:?run me through integration_tests/bench_bulk.sh}"
BIN="${BENCH_BIN:?}"
OUT="${BENCH_OUT:?}"
ROWS="${BENCH_ROWS:-1000000}"
REPEAT="${BENCH_REPEAT:-3}"
BATCH="${BENCH_BATCH:-10000}"
SQL="$HERE/bench/sql"
base="${PGCQRS_TEST_PG_URL%/*}"
MASTER="$base/bench_bulk_master"
REPLICA="$base/bench_bulk_replica"
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

psql_q "$PGCQRS_TEST_PG_URL" -c "CREATE DATABASE bench_bulk_master" -c "CREATE DATABASE bench_bulk_replica"
psql_q "$MASTER" -f "$SQL/bulk_schema.sql"
psql_q "$REPLICA" -f "$SQL/bulk_schema.sql"
echo "==> filling $ROWS rows"
psql_q "$MASTER" -v rows="$ROWS" -f "$SQL/bulk_fill.sql"
cat >"$OUT/pgcqrs.toml" <<EOF
[broker]
url = "$PGCQRS_TEST_AMQP_URL"

[master]
database = "$MASTER"

[[master.model]]
cqrs_id = "item"
table = "bulk_item"

[replica]
database = "$REPLICA"
queue = "bench_bulk"

[[replica.model]]
cqrs_id = "item"
table = "bulk_item"
EOF
"$BIN/pgcqrs" --config "$OUT/pgcqrs.toml" migrate >"$OUT/migrate.log" 2>&1
psql_q "$MASTER" -c "CHECKPOINT"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
best() { sort -g | head -1; }
rate() { awk -v n="$ROWS" -v s="$1" 'BEGIN { printf "%.0f", n / s }'; }

COPY_SELECT="SELECT id, name, price, at, doc, cqrs_revision, cqrs_updated FROM bulk_item"
copy_to=(); dump=(); copy_from=(); load=()
for i in $(seq 1 "$REPEAT"); do
  echo "==> run $i of $REPEAT"
  t0=$(now); psql_q "$MASTER" -c "COPY ($COPY_SELECT) TO STDOUT" >"$OUT/copy.txt"; t1=$(now)
  copy_to+=("$(secs "$t0" "$t1")")
  t0=$(now)
  "$BIN/pgcqrs" --config "$OUT/pgcqrs.toml" bulk-dump -c item -f -b "$BATCH" -o "$OUT/item.dump" \
    2>"$OUT/dump.err"
  t1=$(now); dump+=("$(secs "$t0" "$t1")")
  grep -q "^$ROWS instance(s) saved.$" "$OUT/dump.err" || { cat "$OUT/dump.err"; exit 1; }

  psql_q "$REPLICA" -c "TRUNCATE bulk_item_copy" -c "CHECKPOINT"
  t0=$(now); psql_q "$REPLICA" -c "COPY bulk_item_copy FROM STDIN" <"$OUT/copy.txt"; t1=$(now)
  copy_from+=("$(secs "$t0" "$t1")")
  psql_q "$REPLICA" -c "TRUNCATE bulk_item" -c "DELETE FROM cqrs.tombstone" -c "CHECKPOINT"
  t0=$(now)
  "$BIN/pgcqrs" --config "$OUT/pgcqrs.toml" bulk-load -i "$OUT/item.dump" -b "$BATCH" \
    2>"$OUT/load.err"
  t1=$(now); load+=("$(secs "$t0" "$t1")")
  grep -q "^$ROWS instance(s) loaded.$" "$OUT/load.err" || { cat "$OUT/load.err"; exit 1; }
  echo "   COPY TO ${copy_to[-1]} s, dump ${dump[-1]} s, COPY FROM ${copy_from[-1]} s, load ${load[-1]} s"
done

# the replica equals the master after the load
diff <(psql_q -At "$MASTER" -c "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM ($COPY_SELECT) t") \
     <(psql_q -At "$REPLICA" -c "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM ($COPY_SELECT) t") \
  >/dev/null || { echo "bench_bulk: replica differs from master after the load" >&2; exit 1; }

ct=$(printf '%s\n' "${copy_to[@]}" | best); d=$(printf '%s\n' "${dump[@]}" | best)
cf=$(printf '%s\n' "${copy_from[@]}" | best); l=$(printf '%s\n' "${load[@]}" | best)
bytes_copy=$(stat -c %s "$OUT/copy.txt"); bytes_dump=$(stat -c %s "$OUT/item.dump")
{
  echo ""
  echo "| $ROWS rows, best of $REPEAT | seconds | rows/s | ratio | goal |"
  echo "|---|---|---|---|---|"
  echo "| \`COPY ($COPY_SELECT) TO STDOUT\` ($bytes_copy bytes) | $ct | $(rate "$ct") | | |"
  echo "| \`pgcqrs bulk-dump -c item -b $BATCH\` ($bytes_dump bytes) | $d | $(rate "$d") | **$(awk -v a="$ct" -v b="$d" 'BEGIN { printf "%.2f", a / b }')** × COPY TO | ≥ 0.8 |"
  echo "| \`COPY bulk_item_copy FROM STDIN\` (empty table, same indexes) | $cf | $(rate "$cf") | | |"
  echo "| \`pgcqrs bulk-load -i item.dump -b $BATCH\` (empty table) | $l | $(rate "$l") | **$(awk -v a="$cf" -v b="$l" 'BEGIN { printf "%.2f", a / b }')** × COPY FROM | ≥ 0.5 |"
  echo ""
  echo "all runs (s): COPY TO ${copy_to[*]}; dump ${dump[*]}; COPY FROM ${copy_from[*]}; load ${load[*]}"
  echo "reproduce: BENCH_ROWS=$ROWS BENCH_REPEAT=$REPEAT BENCH_BATCH=$BATCH integration_tests/bench_bulk.sh"
} | tee "$OUT/results.md"
