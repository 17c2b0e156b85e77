#!/usr/bin/env bash
# Deleted-rows pipeline benchmark (docs/benchmarks.md, "Deleted-rows pipeline"): a 1,000,000-row replica table
# (int key, text, numeric, timestamptz, jsonb), a master that lacks 1,000 of those rows, and
#   pgcqrs deleted-diff-replica -cid item | pgcqrs deleted-diff-master | pgcqrs deleted-sync-replica
# timed end to end, then each stage alone, with `COPY (SELECT id ... ORDER BY id) TO STDOUT` of
# the same keys as a floor. Builds bin/pgcqrs in Release, then runs itself inside
# integration_tests/with_servers.sh (private PostgreSQL 15 and RabbitMQ). Installs nothing.
#
# usage: integration_tests/bench_deleted.sh                 # ~3 min on 2 cores
#        BENCH_QUICK=1 integration_tests/bench_deleted.sh   # 100,000 rows, one run
#
# env knobs (defaults; BENCH_QUICK=1 values in brackets):
#   BENCH_ROWS      1000000 [100000]  replica rows
#   BENCH_GAP       1000 [100]        every GAP-th row is missing on the master
#   BENCH_BATCH     10000             deleted-diff-replica --batch
#   BENCH_REPEAT    3 [1]             runs of each measurement; best and median are reported
#   BENCH_OUT       BUILD/bench-results/deleted-<date>   results.md and raw outputs
#   PGCQRS_BENCH_BUILD_DIR  ./build-bench     PGCQRS_JOBS  2 (compile jobs)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"

if [ "${1:-}" != --inside ]; then
  BUILD="${PGCQRS_BENCH_BUILD_DIR:-$ROOT/build-bench}"
  echo "==> building pgcqrs (Release) in $BUILD"
  PGCQRS_JOBS="${PGCQRS_JOBS:-2}" "$HERE/build.sh" "$BUILD" -DCMAKE_BUILD_TYPE=Release -- pgcqrs
  export BENCH_BIN="$BUILD/bin"
  export BENCH_OUT="${BENCH_OUT:-$BUILD/bench-results/deleted-$(date +%Y%m%d-%H%M%S)}"
  mkdir -p "$BENCH_OUT"
  {
    echo "pgcqrs deleted-rows pipeline benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)," \
         "$(sed -n 's/^PRETTY_NAME="\(.*\)"/\1/p' /etc/os-release)," \
         "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" \
         "$( [ -n "$(git -C "$ROOT" status --porcelain -- replica master tools common 2>/dev/null)" ] \
             && echo '(uncommitted changes in the source)')"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  } | tee "$BENCH_OUT/header.txt"
  start=$SECONDS
  "$HERE/with_servers.sh" "$0" --inside
  echo ""
  echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg); $((SECONDS - start)) s;" \
       "results in $BENCH_OUT/results.md"
  exit 0
fi

# ---- inside with_servers.sh ------------------------------------------------------------------
: "${PGCQRS_TEST_PG_URL:?run me through integration_tests/bench_deleted.sh}"
: "${PGCQRS_TEST_AMQP_URL:?run me through integration_tests/bench_deleted.sh}"
BIN="${BENCH_BIN:?BENCH_BIN: the folder holding pgcqrs}"
OUT="${BENCH_OUT:?BENCH_OUT: a folder for results}"
SQL="$HERE/bench/sql"
quick="${BENCH_QUICK:-0}"
dflt() { if [ "$quick" = 1 ]; then echo "$2"; else echo "$1"; fi; }
ROWS="${BENCH_ROWS:-$(dflt 1000000 100000)}"
GAP="${BENCH_GAP:-$(dflt 1000 100)}"
BATCH="${BENCH_BATCH:-10000}"
REPEAT="${BENCH_REPEAT:-$(dflt 3 1)}"
MISSING=$((ROWS / GAP))

base_url="${PGCQRS_TEST_PG_URL%/*}"
results="$OUT/results.md"
: > "$results"
say() { echo "$*" | tee -a "$results"; }
log() { echo "bench: $*" >&2; }
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@" >/dev/null; }
val() { psql -X -Atq -v ON_ERROR_STOP=1 -c "$2" "$1"; }

make_db() {  # make_db NAME -> prints its URL
  psql_q "$PGCQRS_TEST_PG_URL" -c "SET client_min_messages = warning" \
    -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
  echo "$base_url/$1"
}

REPLICA_DB="$(make_db bench_deleted_replica)"
MASTER_DB="$(make_db bench_deleted_master)"
cat > "$OUT/replica.toml" <<EOF
[broker]
url = "$PGCQRS_TEST_AMQP_URL"

[replica]
database = "$REPLICA_DB"
queue = "bench_deleted"

[[replica.model]]
cqrs_id = "item"
table = "bench_item"
EOF
cat > "$OUT/master.toml" <<EOF
[broker]
url = "$PGCQRS_TEST_AMQP_URL"

[master]
database = "$MASTER_DB"

[[master.model]]
cqrs_id = "item"
table = "bench_item"
EOF
R="$BIN/pgcqrs --config $OUT/replica.toml"
M="$BIN/pgcqrs --config $OUT/master.toml"

log "filling: replica $ROWS rows, master $((ROWS - MISSING)) rows"
t0=$(date +%s.%N)
psql_q "$REPLICA_DB" -v rows="$ROWS" -f "$SQL/deleted_replica.sql"
psql_q "$MASTER_DB" -v rows="$ROWS" -v gap="$GAP" -f "$SQL/deleted_master.sql"
$R migrate > "$OUT/migrate.log"
log "filled in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
restore() { psql_q "$REPLICA_DB" -v rows="$ROWS" -v gap="$GAP" -f "$SQL/deleted_restore.sql"; }
stats() {  # stats V1 V2 ... -> "best median"
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.2f %.2f", v[1], v[int((NR + 1) / 2)] }'
}
checkpoint() { psql_q "$REPLICA_DB" -c CHECKPOINT; psql_q "$MASTER_DB" -c CHECKPOINT; }

declare -a t_pipe t_s1 t_s2 t_s3 t_copy
for run in $(seq 1 "$REPEAT"); do
  restore
  checkpoint
  # 1. the whole pipeline, as an operator runs it
  t=$(now)
  $R deleted-diff-replica -cid item -b "$BATCH" 2>"$OUT/pipe1.err" \
    | $M deleted-diff-master 2>"$OUT/pipe2.err" \
    | $R deleted-sync-replica 2>"$OUT/pipe3.err"
  t_pipe+=("$(since "$t")")
  left=$(val "$REPLICA_DB" "SELECT count(*) FROM bench_item")
  tomb=$(val "$REPLICA_DB" "SELECT count(*) FROM cqrs.tombstone WHERE cqrs_id = 'item'")
  if [ "$left" != $((ROWS - MISSING)) ] || [ "$tomb" != "$MISSING" ]; then
    log "run $run: replica has $left rows and $tomb tombstones, expected $((ROWS - MISSING)) and $MISSING"
    cat "$OUT"/pipe*.err >&2
    exit 1
  fi
  # 2. each stage alone, through files
  restore
  checkpoint
  t=$(now); $R deleted-diff-replica -cid item -b "$BATCH" > "$OUT/stage1.out"; t_s1+=("$(since "$t")")
  t=$(now); $M deleted-diff-master < "$OUT/stage1.out" > "$OUT/stage2.out" 2>"$OUT/stage2.err"
  t_s2+=("$(since "$t")")
  t=$(now); $R deleted-sync-replica < "$OUT/stage2.out" 2>"$OUT/stage3.err"; t_s3+=("$(since "$t")")
  # 3. the floor: the same keys in the same order, straight out of PostgreSQL
  t=$(now)
  psql -X -q "$REPLICA_DB" -c "COPY (SELECT id FROM bench_item ORDER BY id) TO STDOUT" > /dev/null
  t_copy+=("$(since "$t")")
  log "run $run: pipeline ${t_pipe[-1]} s; stages ${t_s1[-1]} / ${t_s2[-1]} / ${t_s3[-1]} s; COPY ${t_copy[-1]} s"
done

# the master and the replica now hold the same keys
m_hash=$(val "$MASTER_DB" "SELECT md5(string_agg(id::text, ',' ORDER BY id)) FROM bench_item")
r_hash=$(val "$REPLICA_DB" "SELECT md5(string_agg(id::text, ',' ORDER BY id)) FROM bench_item")
[ "$m_hash" = "$r_hash" ] || { log "master and replica keys differ after the pipeline"; exit 1; }

read -r pb pm <<<"$(stats "${t_pipe[@]}")"
read -r s1b s1m <<<"$(stats "${t_s1[@]}")"
read -r s2b s2m <<<"$(stats "${t_s2[@]}")"
read -r s3b s3m <<<"$(stats "${t_s3[@]}")"
read -r cb cm <<<"$(stats "${t_copy[@]}")"
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
lines1=$(($(wc -l < "$OUT/stage1.out") - 1))
bytes1=$(wc -c < "$OUT/stage1.out")

say "### Deleted-rows pipeline: $ROWS replica rows, $MISSING missing on the master"
say ""
say "--batch $BATCH ($lines1 lines, $bytes1 bytes from deleted-diff-replica); $REPEAT run(s), best and median"
say ""
say "| measurement | best s | median s | keys/s (best) |"
say "|---|---:|---:|---:|"
say "| pipeline end to end (\`deleted-diff-replica \\| deleted-diff-master \\| deleted-sync-replica\`) | $pb | $pm | $(rate "$ROWS" "$pb") |"
say "| deleted-diff-replica alone (keyset batches, to a file) | $s1b | $s1m | $(rate "$ROWS" "$s1b") |"
say "| deleted-diff-master alone (one anti-join per line) | $s2b | $s2m | $(rate "$ROWS" "$s2b") |"
say "| deleted-sync-replica alone ($MISSING deletes + tombstones) | $s3b | $s3m | $(rate "$MISSING" "$s3b") |"
say "| floor: \`COPY (SELECT id FROM bench_item ORDER BY id) TO STDOUT\` | $cb | $cm | $(rate "$ROWS" "$cb") |"
say ""
say "After every run the replica held $((ROWS - MISSING)) rows and $MISSING tombstones; the master's"
say "and the replica's key lists hash the same (md5 of the ordered ids)."
