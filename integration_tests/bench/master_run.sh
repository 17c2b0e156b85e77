#!/usr/bin/env bash
# The master-side benchmarks, run inside integration_tests/with_servers.sh (which exports
# PGCQRS_TEST_PG_URL, PGCQRS_TEST_AMQP_URL, ...). Start it through integration_tests/bench_master.sh,
# which builds bin/pgcqrs and bin/bench_amqp first; the knobs are documented there.
#
# Phases (BENCH_PHASES, default "capture micro explain commit drain bloat"):
#   capture  pgbench write throughput: plain table vs pgcqrs capture vs a naive row trigger
#   micro    CPU per statement of capture and of its parts (sql/capture_probe.sql), no commit
#   explain  auto_explain (ANALYZE, BUFFERS, WAL) of a large INSERT, plain and captured
#   commit   one client, synchronous commit: latency and WAL bytes per 1-row transaction
#   drain    agent drain rate of a pre-filled outbox vs the broker's raw confirmed-publish rate
#   bloat    outbox size, rows and dead tuples every few seconds under sustained writes
# Prints markdown tables; writes them, the raw pgbench/agent output and samples to BENCH_OUT.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${PGCQRS_TEST_PG_URL:?run me through integration_tests/with_servers.sh}"
: "${PGCQRS_TEST_AMQP_URL:?run me through integration_tests/with_servers.sh}"
BIN="${BENCH_BIN:?BENCH_BIN: the folder holding pgcqrs and bench_amqp}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
OUT="${BENCH_OUT:?BENCH_OUT: a folder for results}"
mkdir -p "$OUT"

quick="${BENCH_QUICK:-0}"
dflt() { if [ "$quick" = 1 ]; then echo "$2"; else echo "$1"; fi; }
PHASES="${BENCH_PHASES:-capture micro explain commit drain bloat}"
SECONDS_PER_RUN="${BENCH_SECONDS:-$(dflt 8 3)}"
CLIENTS="${BENCH_CLIENTS:-2}"
WORKLOADS="${BENCH_WORKLOADS:-ins1 ins100stmt ins100tx upd1 ins1async ins1c8}"
MANY_CLIENTS="${BENCH_MANY_CLIENTS:-8}"
VARIANTS="${BENCH_VARIANTS:-plain capture rowtrg none}"
REPEAT="${BENCH_REPEAT:-$(dflt 2 1)}"
UPDATE_ROWS="${BENCH_UPDATE_ROWS:-$(dflt 100000 10000)}"
DRAIN_ROWS="${BENCH_DRAIN_ROWS:-$(dflt 200000 20000)}"
NOTE_BYTES="${BENCH_NOTE_BYTES:-35}"
# rows per INSERT statement of the drain's pre-fill; 0: one statement (batches of 1000 events)
DRAIN_STMT_ROWS="${BENCH_DRAIN_STATEMENT_ROWS:-0}"
WINDOW="${BENCH_CONFIRM_WINDOW:-1000}"
BLOAT_SECONDS="${BENCH_BLOAT_SECONDS:-$(dflt 120 15)}"
BLOAT_TPS="${BENCH_BLOAT_TPS:-500}"
SAMPLE_EVERY="${BENCH_SAMPLE_EVERY:-5}"
OUTBOX_REUSE="${BENCH_OUTBOX_REUSE:-0}"
WARMUP_SECONDS="${BENCH_WARMUP_SECONDS:-$(dflt 3 0)}"

base_url="${PGCQRS_TEST_PG_URL%/*}"
results="$OUT/results.md"
: > "$results"
say() { echo "$*" | tee -a "$results"; }
log() { echo "bench: $*" >&2; }
loadavg() { echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"; }

sql() { psql -X -q -v ON_ERROR_STOP=1 "$DB" "$@" >/dev/null; }
val() { psql -X -Atq -v ON_ERROR_STOP=1 -c "$1" "$DB"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
fmt() { awk -v a="$1" 'BEGIN { printf "%.0f", a }'; }

make_db() {  # make_db NAME SCHEMA_FILE -> sets DB
  psql -X -q -v ON_ERROR_STOP=1 "$PGCQRS_TEST_PG_URL" -c "SET client_min_messages = warning" \
    -c "DROP DATABASE IF EXISTS $1" \
    -c "CREATE DATABASE $1" >/dev/null
  DB="$base_url/$1"
  sql -f "$2"
}

write_config() {  # write_config FILE EXCHANGE CQRS_ID TABLE
  cat > "$1" <<EOF
[broker]
url = "$PGCQRS_TEST_AMQP_URL"
exchange = "$2"

[master]
database = "$DB"
confirm_window = $WINDOW
poll_interval_ms = 200

[[master.model]]
cqrs_id = "$3"
table = "$4"
EOF
}

AGENT_PID=""
start_agent() {  # start_agent CONFIG LOG
  "$BIN/pgcqrs" --config "$1" master 2>"$2" &
  AGENT_PID=$!
}
stop_agent() {
  [ -n "$AGENT_PID" ] || return 0
  kill -TERM "$AGENT_PID" 2>/dev/null || true
  wait "$AGENT_PID" 2>/dev/null || true
  AGENT_PID=""
}
PGBENCH_PID=""
cleanup() {
  [ -n "$PGBENCH_PID" ] && kill -TERM "$PGBENCH_PID" 2>/dev/null
  [ -n "${AWAKE_HOLDER:-}" ] && kill -TERM "$AWAKE_HOLDER" 2>/dev/null
  stop_agent
}
trap cleanup EXIT

# --------------------------------------------------------------------------------------------
# Phase 1: capture cost
# --------------------------------------------------------------------------------------------
NOTE="a note of forty characters, give or take"

# variant awake: pgcqrs capture while another session holds the advisory lock an agent holds
# while it polls after work (kAgentAwakeLockKey in master/capture.hpp), so that writers skip
# their notifications, as they do while a running agent keeps up
AWAKE_LOCK_KEY=8099551793751719939
table_of() { case "$1" in awake) echo "bench.t_capture" ;; *) echo "bench.t_$1" ;; esac; }

write_script() {  # write_script WORKLOAD VARIANT FILE
  local t
  t="$(table_of "$2")"
  case "$1" in
    ins1 | ins1async | ins1c8)
      echo "INSERT INTO $t (name, price, qty, note) VALUES ('item', 12.34, 1, '$NOTE');" ;;
    ins100stmt)
      echo "INSERT INTO $t (name, price, qty, note) SELECT 'item ' || g, g * 0.01, g, '$NOTE'" \
           "FROM generate_series(1, 100) g;" ;;
    ins100tx)
      echo "BEGIN;"
      for i in $(seq 1 100); do
        echo "INSERT INTO $t (name, price, qty, note) VALUES ('item $i', $i.25, $i, '$NOTE');"
      done
      echo "COMMIT;" ;;
    upd1)
      echo "\\set id random(1, $UPDATE_ROWS)"
      echo "UPDATE $t SET qty = qty + 1, price = price + 0.01 WHERE id = :id;" ;;
    *) echo "unknown workload $1" >&2; return 2 ;;
  esac > "$3"
}

rows_per_tx() { case "$1" in ins100stmt | ins100tx) echo 100 ;; *) echo 1 ;; esac; }
workload_title() {
  case "$1" in
    ins1) echo "1-row INSERT tx" ;;
    ins1async) echo "1-row INSERT tx, synchronous_commit off" ;;
    ins1c8) echo "1-row INSERT tx, $MANY_CLIENTS clients" ;;
    ins100stmt) echo "100-row INSERT statement" ;;
    ins100tx) echo "100 single-row INSERTs in one tx" ;;
    upd1) echo "1-row UPDATE tx" ;;
  esac
}
target_of() { case "$1" in ins1 | upd1 | ins1c8) echo "≤ 1.15×" ;; ins100stmt) echo "≤ 1.5×" ;; *) echo "—" ;; esac; }
target_max() { case "$1" in ins1 | upd1 | ins1c8) echo 1.15 ;; ins100stmt) echo 1.5 ;; *) echo "" ;; esac; }

reset_tables() {  # reset_tables WORKLOAD VARIANT: empty every table, refill for updates, vacuum
  # session_replication_role = replica skips the triggers: TRUNCATE of a captured table is
  # otherwise refused, and the refill should publish nothing
  # shellcheck disable=SC2016  # $$ quotes SQL, not the shell
  sql -c "SET session_replication_role = replica" -c 'DO $do$ BEGIN
         EXECUTE (SELECT $$TRUNCATE cqrs.outbox, $$ || string_agg(format($$%I.%I$$, schemaname,
                  tablename), $$, $$) || $$ RESTART IDENTITY$$
                  FROM pg_tables WHERE schemaname = $$bench$$); END $do$'
  if [ "$1" = upd1 ]; then
    sql -c "SET session_replication_role = replica" \
        -c "INSERT INTO $(table_of "$2") (name, price, qty, note)
            SELECT 'item ' || g, g * 0.01, g, '$NOTE' FROM generate_series(1, $UPDATE_ROWS) g"
  fi
  if [ "$OUTBOX_REUSE" -gt 0 ]; then
    # the outbox as a running agent leaves it: pages freed by its deletes and VACUUM, which the
    # next events reuse instead of extending the file (the naive trigger's outbox likewise);
    # VACUUM would otherwise truncate the emptied pages away
    sql -c "ALTER TABLE cqrs.outbox SET (vacuum_truncate = false)" \
        -c "ALTER TABLE bench.naive_outbox SET (vacuum_truncate = false)" \
        -c "INSERT INTO cqrs.outbox (cqrs_id, signal, batch_layout, events)
            SELECT 'bench_free', 'SAVE', repeat('x', 400), 1 FROM generate_series(1, $OUTBOX_REUSE)" \
        -c "DELETE FROM cqrs.outbox" \
        -c "INSERT INTO bench.naive_outbox (cqrs_id, signal, pk, revision, data)
            SELECT 'bench_free', 'SAVE', to_jsonb(g), 0, to_jsonb(repeat('x', 300))
            FROM generate_series(1, $OUTBOX_REUSE) g" \
        -c "DELETE FROM bench.naive_outbox"
  fi
  sql -c "VACUUM ANALYZE"
  [ "${3:-}" = nocheckpoint ] || sql -c "CHECKPOINT"
}

events_of() {  # events the variant's capture wrote during the run ("" = it writes none)
  case "$1" in
    capture | nonotify | notifyall | min | onerow | awake) val "SELECT coalesce(sum(events), 0) FROM cqrs.outbox" ;;
    nocheck) val "SELECT count(*) FROM bench.outbox_nocheck" ;;
    agg) val "SELECT coalesce(sum(json_array_length(events)), 0) FROM bench.outbox_agg" ;;
    keys) val "SELECT coalesce(sum(cardinality(pks)), 0) FROM bench.outbox_keys" ;;
    rowagg) val "SELECT coalesce(sum(json_array_length(events)), 0) FROM bench.outbox_rowagg" ;;
    rowtext) val "SELECT coalesce(sum(cardinality(events)), 0) FROM bench.outbox_rowtext" ;;
    colarrays) val "SELECT coalesce(sum(cardinality(id_a)), 0) FROM bench.outbox_colarrays" ;;
    batch | batchnw | batchns) val "SELECT coalesce(sum(events), 0) FROM bench.outbox_batch" ;;
    rowtrg) val "SELECT count(*) FROM bench.naive_outbox" ;;
    ctrgh) val "SELECT count(*) FROM bench.outbox_h" ;;
    ctrgi) val "SELECT count(*) FROM bench.outbox_i" ;;
    *) echo "" ;;
  esac
}

declare -A TPS TXS EVENTS ROUND_TPS ROUND_CPU
# CPU time the whole machine spent busy (user, nice, system, irq, softirq; not idle, iowait or
# steal), in clock ticks: per transaction, what a variant costs whether or not the run was
# waiting on the disk, which moves the tps of commit-bound runs by tens of percent
CLK_TCK="$(getconf CLK_TCK)"
busy_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat; }
median() {  # median PRINTF_FORMAT: the median of the numbers on stdin, one a line, or n/a
  sort -g | awk -v f="$1" '{ r[NR] = $1 } END { if (NR == 0) { print "n/a"; exit }
                             printf f, NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2 }'
}
median_of() {  # median_of "v1 v2 ..." -> median, or n/a
  tr ' ' '\n' <<< "$1" | sed '/^$/d;/n\/a/d' | median "%.0f"
}
c_trigger_ready() {  # builds bench/c_trigger/ctrg.c and creates the ctrgh and ctrgi tables
  local inc
  inc="$(pg_config --includedir-server 2>/dev/null || true)"
  if [ -z "$inc" ] || [ ! -f "$inc/postgres.h" ]; then
    echo "bench: the variants ctrgh and ctrgi build a C trigger and need the PostgreSQL" \
         "server headers: apt-get install postgresql-server-dev-15" >&2
    return 1
  fi
  gcc -O2 -fPIC -shared -I"$inc" -o "$OUT/ctrg.so" "$HERE/c_trigger/ctrg.c"
  chmod a+rx "$OUT" "$OUT/ctrg.so"
  sql -v so="$OUT/ctrg.so" -f "$HERE/sql/c_trigger.sql"
}
capture_db_ready() {
  if [ "${CAPTURE_DB_READY:-0}" = 1 ]; then DB="$base_url/bench_capture"; return 0; fi
  make_db bench_capture "$HERE/sql/capture_schema.sql"
  write_config "$OUT/capture.toml" bench_capture bench_capture bench.t_capture
  "$BIN/pgcqrs" --config "$OUT/capture.toml" migrate > "$OUT/capture-migrate.log" 2>&1
  sql -f "$HERE/sql/capture_probe.sql"
  case " $VARIANTS " in *" ctrgh "* | *" ctrgi "*) c_trigger_ready ;; esac
  CAPTURE_DB_READY=1
}

# pg_locks rows of the agent's awake lock granted in this database
AWAKE_LOCKS="FROM pg_locks WHERE locktype = 'advisory' AND granted
       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND ((classid::bigint << 32) | objid::bigint) = $AWAKE_LOCK_KEY"
awake_holders() { val "SELECT count(*) $AWAKE_LOCKS"; }
AWAKE_HOLDER=""
release_awake() {  # ends the session holding the lock (in pg_sleep, it would not see psql go)
  [ -n "$AWAKE_HOLDER" ] || return 0
  val "SELECT pg_terminate_backend(pid) $AWAKE_LOCKS" >/dev/null
  wait "$AWAKE_HOLDER" 2>/dev/null || true
  AWAKE_HOLDER=""
  local i
  for i in $(seq 1 50); do [ "$(awake_holders)" = 0 ] && return 0; sleep 0.1; done
  echo "bench: the awake lock is still held after its session was ended" >&2; return 1
}

BUSY_TICKS=0  # busy clock ticks of the last capture_pgbench's pgbench, see busy_jiffies
capture_pgbench() {  # capture_pgbench WORKLOAD VARIANT SECONDS LOG
  local opts="" clients="$CLIENTS" rc=0 busy0 i
  [ "$1" = ins1async ] && opts="-c synchronous_commit=off"
  [ "$1" = ins1c8 ] && clients="$MANY_CLIENTS"
  if [ "$2" = awake ]; then
    psql -X -q "$DB" -c "SELECT pg_advisory_lock($AWAKE_LOCK_KEY), pg_sleep(3600)" >/dev/null 2>&1 &
    AWAKE_HOLDER=$!
    for i in $(seq 1 100); do
      [ "$(awake_holders)" = 1 ] && break
      kill -0 "$AWAKE_HOLDER" 2>/dev/null || { echo "bench: the awake lock's session ended" >&2; return 1; }
      sleep 0.1
    done
    [ "$(awake_holders)" = 1 ] || { echo "bench: no awake lock after 10 s" >&2; return 1; }
  fi
  busy0="$(busy_jiffies)"
  PGOPTIONS="$opts" "$PG_BIN/pgbench" -n -M prepared -c "$clients" -j "$CLIENTS" \
    -T "$3" -f "$OUT/pgbench/$1-$2.sql" "$DB" > "$4" 2>&1 || rc=$?
  BUSY_TICKS=$(( $(busy_jiffies) - busy0 ))
  release_awake
  [ "$rc" = 0 ] || { cat "$4" >&2; return 1; }
}

run_capture() {
  CAPTURE_LOAD="$(loadavg)"
  capture_db_ready
  mkdir -p "$OUT/pgbench"
  local reversed=""
  for v in $VARIANTS; do reversed="$v $reversed"; done
  for w in $WORKLOADS; do
    # a round of each variant that is not counted: the first writes of a fresh server fault in
    # its shared memory and extend files the next rounds find ready, as a running server does
    if [ "$WARMUP_SECONDS" -gt 0 ]; then
      for v in $VARIANTS; do
        write_script "$w" "$v" "$OUT/pgbench/$w-$v.sql"
        reset_tables "$w" "$v"
        log "capture: $w $v warm-up (${WARMUP_SECONDS} s)"
        capture_pgbench "$w" "$v" "$WARMUP_SECONDS" "$OUT/pgbench/$w-$v-warmup.log"
      done
    fi
    for r in $(seq 1 "$REPEAT"); do
      # interleaved, and every other round in reverse order: load from elsewhere on the machine
      # then hits every variant alike instead of the one that happened to run at that moment
      local order="$VARIANTS"
      [ $((r % 2)) = 0 ] && order="$reversed"
      for v in $order; do
        local script="$OUT/pgbench/$w-$v.sql" out="$OUT/pgbench/$w-$v-$r.log"
        write_script "$w" "$v" "$script"
        reset_tables "$w" "$v"
        log "capture: $w $v run $r (${SECONDS_PER_RUN} s)"
        capture_pgbench "$w" "$v" "$SECONDS_PER_RUN" "$out"
        local tps txs events cpu
        tps="$(awk '/^tps = / { print $3 }' "$out")"
        txs="$(awk -F': ' '/^number of transactions actually processed/ { print $2 }' "$out")"
        txs="${txs%%/*}"
        cpu="$(awk -v j="$BUSY_TICKS" -v hz="$CLK_TCK" -v n="$txs" \
                   'BEGIN { if (n > 0) printf "%.1f", j * 1e6 / hz / n; else print "n/a" }')"
        ROUND_CPU[$w/$v]="${ROUND_CPU[$w/$v]:-} $cpu"
        events="$(events_of "$v")"
        # best of the repeats: interference on a shared machine only ever slows a run down
        if [ -z "${TPS[$w/$v]:-}" ] || awk -v a="$tps" -v b="${TPS[$w/$v]}" 'BEGIN { exit !(a > b) }'; then
          TPS[$w/$v]="$tps"; TXS[$w/$v]="$txs"; EVENTS[$w/$v]="$events"
        fi
        ROUND_TPS[$w/$v]="${ROUND_TPS[$w/$v]:-} $tps"
        echo "capture workload=$w variant=$v run=$r tps=$tps transactions=$txs events=$events cpu_us_per_tx=$cpu" \
          >> "$OUT/raw.txt"
      done
    done
  done
  reset_tables none none
  print_capture_tables
}

variant_title() {
  case "$1" in
    plain) echo "plain" ;;
    capture) echo "pgcqrs capture" ;;
    rowtrg) echo "naive row trigger" ;;
    none) echo "transition tables, empty body" ;;
    notify) echo "pg_notify only" ;;
    bump) echo "revision bump row trigger only" ;;
    min) echo "outbox row without JSON" ;;
    nocheck) echo "same, outbox without CHECK" ;;
    agg) echo "other design: 1 outbox row per statement, JSON array" ;;
    keys) echo "other design: 1 outbox row per statement, keys only" ;;
    rowagg) echo "other design: 1 outbox row per statement, json_agg of ROWs" ;;
    rowtext) echo "other design: 1 outbox row per statement, ROW texts" ;;
    colarrays) echo "other design: 1 row per statement, a typed array per column" ;;
    nonotify) echo "pgcqrs capture minus pg_notify" ;;
    onerow) echo "its 1-row INSERT alone" ;;
    awake) echo "pgcqrs capture, agent polling (writers skip NOTIFY)" ;;
    notifyall) echo "pgcqrs capture, pg_notify at every commit (as before)" ;;
    ctrgh) echo "C row trigger, outbox heap row only" ;;
    ctrgi) echo "C row trigger, outbox heap row and index entry" ;;
    *) echo "$1" ;;
  esac
}

# The median over the rounds of plain's tps / the variant's tps in the same round: the rounds
# interleave the variants, so a slow moment of the machine weighs on both sides of a ratio,
# where the best of each variant's rounds may compare outliers of different moments.
round_median() {  # workload variant
  local p="${ROUND_TPS[$1/plain]:-}" v="${ROUND_TPS[$1/$2]:-}"
  [ -n "$p" ] && [ -n "$v" ] || { echo n/a; return; }
  paste <(tr ' ' '\n' <<< "$p" | sed '/^$/d') <(tr ' ' '\n' <<< "$v" | sed '/^$/d') \
    | awk '$2 > 0 { print $1 / $2 }' | median "%.2f"
}

variant_table_head() {  # the head of a table with a column per variant
  local head="| workload |" rule="|---|" v
  for v in $VARIANTS; do head="$head $(variant_title "$v") |"; rule="$rule---|"; done
  say "$head"; say "$rule"
}

print_capture_tables() {
  say ""
  say "### Capture cost (pgbench -M prepared -c $CLIENTS -j $CLIENTS -T $SECONDS_PER_RUN, best of $REPEAT; $CAPTURE_LOAD at start)"
  say ""
  say "| workload | plain tps | plain rows/s | capture tps | capture rows/s | plain/capture | target | median of rounds | naive row trigger tps | plain/naive | median of rounds | events written = rows written |"
  say "|---|---|---|---|---|---|---|---|---|---|---|---|"
  for w in $WORKLOADS; do
    local n p c t rc rt ok verdict tmax
    n="$(rows_per_tx "$w")"
    p="${TPS[$w/plain]:-0}"; c="${TPS[$w/capture]:-0}"; t="${TPS[$w/rowtrg]:-0}"
    rc="$(ratio "$p" "$c")"; rt="$(ratio "$p" "$t")"
    tmax="$(target_max "$w")"
    verdict=""
    if [ -n "$tmax" ] && [ "$rc" != n/a ]; then
      if awk -v a="$rc" -v b="$tmax" 'BEGIN { exit !(a <= b) }'; then verdict=" met"; else verdict=" **missed**"; fi
    fi
    ok="yes"
    for v in $VARIANTS; do
      [ -n "${EVENTS[$w/$v]:-}" ] || continue                 # writes no events
      case "$v/$w" in min/upd1 | onerow/upd1 | nocheck/upd1 | agg/upd1 | keys/upd1 | rowagg/upd1 | rowtext/upd1 | colarrays/upd1) continue ;; esac  # inserts only
      [ "${EVENTS[$w/$v]}" = "$(( TXS[$w/$v] * n ))" ] || ok="NO (${v}: ${EVENTS[$w/$v]} events for $(( TXS[$w/$v] * n )) rows)"
    done
    say "| $(workload_title "$w") | $(fmt "$p") | $(fmt "$(awk -v a="$p" -v n="$n" 'BEGIN { print a * n }')") | $(fmt "$c") | $(fmt "$(awk -v a="$c" -v n="$n" 'BEGIN { print a * n }')") | ${rc}× | $(target_of "$w")$verdict | $(round_median "$w" capture)× | $(fmt "$t") | ${rt}× | $(round_median "$w" rowtrg)× | $ok |"
  done
  say ""
  say "Machine CPU per transaction, µs (busy time of both cores from /proc/stat: PostgreSQL, pgbench"
  say "and the kernel; median of the rounds; in brackets the difference to plain and the ratio):"
  say ""
  variant_table_head
  for w in $WORKLOADS; do
    local line pc vc
    line="| $(workload_title "$w") |"
    pc="$(median_of "${ROUND_CPU[$w/plain]:-}")"
    for v in $VARIANTS; do
      vc="$(median_of "${ROUND_CPU[$w/$v]:-}")"
      if [ "$v" = plain ] || [ "$pc" = n/a ] || [ "$vc" = n/a ]; then line="$line $vc |"
      else line="$line $vc ($(awk -v a="$vc" -v b="$pc" 'BEGIN { printf "%+d", a - b }'), $(ratio "$vc" "$pc")×) |"; fi
    done
    say "$line"
  done
  [ "$VARIANTS" = "plain capture rowtrg" ] && return 0
  say ""
  say "Every variant, tps (plain/variant):"
  say ""
  variant_table_head
  for w in $WORKLOADS; do
    local line p
    line="| $(workload_title "$w") |"
    p="${TPS[$w/plain]:-0}"
    for v in $VARIANTS; do line="$line $(fmt "${TPS[$w/$v]:-0}") ($(ratio "$p" "${TPS[$w/$v]:-0}")×) |"; done
    say "$line"
  done
}

# --------------------------------------------------------------------------------------------
# Phase "micro": CPU cost per statement of each capture variant, inside one transaction
# --------------------------------------------------------------------------------------------
# One backend runs N statements in a DO loop (one transaction: no commit, no fsync, no network),
# so the difference to `plain` is what the triggers cost in CPU. pg_notify's commit-time work
# (a global lock and the notification queue) is not in here: the capture phase's
# "synchronous_commit off" row shows it.
MICRO_VARIANTS="${BENCH_MICRO_VARIANTS:-plain none notify bump min nocheck nonotify capture rowtrg agg keys}"
MICRO_WORKLOADS="${BENCH_MICRO_WORKLOADS:-ins1 ins100stmt upd1}"
MICRO_N="${BENCH_MICRO_STATEMENTS:-$(dflt 20000 5000)}"
MICRO_REPEAT="${BENCH_MICRO_REPEAT:-$(dflt 3 1)}"

micro_applies() {  # micro_applies VARIANT WORKLOAD: does the variant capture this workload?
  case "$1/$2" in
    bump/ins1 | bump/ins100stmt | min/upd1 | onerow/upd1 | nocheck/upd1 | agg/upd1 | keys/upd1 | rowagg/upd1 | rowtext/upd1 | colarrays/upd1 | batch/upd1 | batchnw/upd1 | batchns/upd1) return 1 ;;
    *) return 0 ;;
  esac
}

micro_block() {  # micro_block WORKLOAD TABLE: a DO block that prints "MICRO <us per statement>"
  local stmt n="$MICRO_N"
  case "$1" in
    ins1) stmt="INSERT INTO $2 (name, price, qty, note) VALUES ('item', 12.34, 1, '$NOTE');" ;;
    ins100stmt)
      n=$((MICRO_N / 50))
      stmt="INSERT INTO $2 (name, price, qty, note) SELECT 'item ' || g, g * 0.01, g, '$NOTE'
            FROM generate_series(1, 100) g;" ;;
    upd1)
      stmt="v := 1 + floor(random() * $UPDATE_ROWS)::bigint;
            UPDATE $2 SET qty = qty + 1, price = price + 0.01 WHERE id = v;" ;;
  esac
  cat <<EOF
DO \$\$
DECLARE t0 timestamptz; v bigint;
BEGIN
  t0 := clock_timestamp();
  FOR i IN 1..$n LOOP
    $stmt
  END LOOP;
  RAISE NOTICE 'MICRO %', extract(epoch FROM clock_timestamp() - t0) * 1e6 / $n;
END \$\$;
EOF
}

declare -A MICRO
run_micro() {
  local load
  load="$(loadavg)"
  capture_db_ready
  local w v r us
  for w in $MICRO_WORKLOADS; do
    for r in $(seq 1 "$MICRO_REPEAT"); do
      for v in $MICRO_VARIANTS; do
        micro_applies "$v" "$w" || continue
        reset_tables "$w" "$v" nocheckpoint
        log "micro: $w $v run $r"
        us="$(micro_block "$w" "$(table_of "$v")" | psql -X -q -v ON_ERROR_STOP=1 "$DB" 2>&1 \
              | sed -n 's/.*MICRO \([0-9.]*\).*/\1/p')"
        [ -n "$us" ] || { echo "micro $w $v failed" >&2; return 1; }
        echo "micro workload=$w variant=$v run=$r us_per_statement=$us" >> "$OUT/raw.txt"
        if [ -z "${MICRO[$w/$v]:-}" ] || awk -v a="$us" -v b="${MICRO[$w/$v]}" 'BEGIN { exit !(a < b) }'; then
          MICRO[$w/$v]="$us"
        fi
      done
    done
  done
  reset_tables none none

  say ""
  say "### CPU per statement inside one transaction (µs, best of $MICRO_REPEAT, $MICRO_N statements; in brackets: added per row vs plain; $load at start)"
  say ""
  local head="| variant |" rule="|---|"
  for w in $MICRO_WORKLOADS; do head="$head $(workload_title "$w" | sed 's/ tx$/ statement/') |"; rule="$rule---|"; done
  say "$head"; say "$rule"
  for v in $MICRO_VARIANTS; do
    local line
    line="| $(variant_title "$v") |"
    for w in $MICRO_WORKLOADS; do
      if [ -z "${MICRO[$w/$v]:-}" ]; then line="$line — |"; continue; fi
      line="$line $(awk -v a="${MICRO[$w/$v]}" -v p="${MICRO[$w/plain]:-0}" -v n="$(rows_per_tx "$w")" \
        'BEGIN { printf "%.1f (%+.1f)", a, (a - p) / n }') |"
    done
    say "$line"
  done
}

# --------------------------------------------------------------------------------------------
# Phase "explain": the capture trigger's own statement, timed by auto_explain
# --------------------------------------------------------------------------------------------
EXPLAIN_ROWS="${BENCH_EXPLAIN_ROWS:-10000}"

run_explain() {
  capture_db_ready
  reset_tables none none nocheckpoint
  local stmt out="$OUT/explain.txt"
  stmt="SELECT 'item ' || g, g * 0.01, g, '$NOTE' FROM generate_series(1, $EXPLAIN_ROWS) g"
  # warm-up: the first call plans the trigger's statement
  sql -c "INSERT INTO bench.t_capture (name, price, qty, note) $stmt" \
      -c "INSERT INTO bench.t_plain (name, price, qty, note) $stmt"
  reset_tables none none nocheckpoint
  psql -X -q -v ON_ERROR_STOP=1 "$DB" > "$out" 2>&1 <<EOF
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_analyze = on;
SET auto_explain.log_buffers = on;
SET auto_explain.log_wal = on;
SET auto_explain.log_level = notice;
INSERT INTO bench.t_plain (name, price, qty, note) $stmt;
INSERT INTO bench.t_capture (name, price, qty, note) $stmt;
EOF
  reset_tables none none nocheckpoint
  say ""
  say "### auto_explain of one $EXPLAIN_ROWS-row INSERT statement, plain then captured (inner statements first)"
  say ""
  say '```'
  # keep the plan lines, drop the long query texts
  sed -e 's/^psql:<stdin>:[0-9]*: //' -e '/^Query Text:/d' -e '/^  SELECT /d' -e '/^  FROM /d' \
    "$out" | tee -a "$results"
  say '```'
}

# --------------------------------------------------------------------------------------------
# Phase "commit": one client, synchronous commit: latency and WAL bytes per 1-row transaction
# --------------------------------------------------------------------------------------------
COMMIT_VARIANTS="${BENCH_COMMIT_VARIANTS:-plain capture nonotify rowtrg}"
COMMIT_TX="${BENCH_COMMIT_TX:-$(dflt 3000 1000)}"
COMMIT_REPEAT="${BENCH_COMMIT_REPEAT:-$(dflt 3 1)}"

declare -A COMMIT_LAT COMMIT_WAL
run_commit() {
  local load
  load="$(loadavg)"
  capture_db_ready
  mkdir -p "$OUT/pgbench"
  local w v r script out l0 l1 lat
  for w in ins1 upd1; do
    for r in $(seq 1 "$COMMIT_REPEAT"); do
    for v in $COMMIT_VARIANTS; do
      script="$OUT/pgbench/commit-$w-$v.sql"; out="$OUT/pgbench/commit-$w-$v.log"
      write_script "$w" "$v" "$script"
      # no CHECKPOINT: the refill already wrote every page since the last one, so the measured
      # transactions log no full-page images
      reset_tables "$w" "$v" nocheckpoint
      log "commit: $w $v run $r ($COMMIT_TX transactions, 1 client)"
      "$PG_BIN/pgbench" -n -M prepared -c 1 -t 1000 -f "$script" "$DB" > /dev/null 2>&1
      l0="$(val "SELECT pg_current_wal_lsn()")"
      "$PG_BIN/pgbench" -n -M prepared -c 1 -t "$COMMIT_TX" -f "$script" "$DB" > "$out" 2>&1 \
        || { cat "$out" >&2; return 1; }
      l1="$(val "SELECT pg_current_wal_lsn()")"
      lat="$(awk '/^latency average/ { print $4 * 1000 }' "$out")"
      COMMIT_WAL[$w/$v]="$(val "SELECT round(pg_wal_lsn_diff('$l1', '$l0') / $COMMIT_TX)")"
      if [ -z "${COMMIT_LAT[$w/$v]:-}" ] || awk -v a="$lat" -v b="${COMMIT_LAT[$w/$v]}" 'BEGIN { exit !(a < b) }'; then
        COMMIT_LAT[$w/$v]="$lat"
      fi
      echo "commit workload=$w variant=$v run=$r latency_us=$lat wal_bytes_per_tx=${COMMIT_WAL[$w/$v]}" >> "$OUT/raw.txt"
    done
    done
  done
  reset_tables none none nocheckpoint

  say ""
  say "### One client, synchronous commit: latency and WAL per transaction ($COMMIT_TX transactions, best of $COMMIT_REPEAT; $load at start)"
  say ""
  say "| variant | 1-row INSERT µs | ×plain | WAL bytes | 1-row UPDATE µs | ×plain | WAL bytes |"
  say "|---|---|---|---|---|---|---|"
  for v in $COMMIT_VARIANTS; do
    local line
    line="| $(variant_title "$v") |"
    for w in ins1 upd1; do
      line="$line $(fmt "${COMMIT_LAT[$w/$v]}") | $(ratio "${COMMIT_LAT[$w/$v]}" "${COMMIT_LAT[$w/plain]:-0}")× | ${COMMIT_WAL[$w/$v]} |"
    done
    say "$line"
  done
}

# --------------------------------------------------------------------------------------------
# Phase 2: agent drain rate vs raw broker rate
# --------------------------------------------------------------------------------------------
EXCHANGE=bench_agent
QUEUE=bench_agent_q
KEY=bench_event

amqp() { "$BIN/bench_amqp" "$@" --url "$PGCQRS_TEST_AMQP_URL" 2>>"$OUT/bench_amqp.log"; }

proc_cpu_seconds() {  # utime + stime of a live process, in seconds
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}
proc_rss_mb() { awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

agent_db_ready() {
  if [ "${AGENT_DB_READY:-0}" = 1 ]; then return 0; fi
  make_db bench_agent "$HERE/sql/agent_schema.sql"
  write_config "$OUT/agent.toml" "$EXCHANGE" "$KEY" bench.t_event
  "$BIN/pgcqrs" --config "$OUT/agent.toml" migrate > "$OUT/agent-migrate.log" 2>&1
  AGENT_DB_READY=1
}

run_drain() {
  local load
  load="$(loadavg)"
  agent_db_ready
  amqp setup --exchange "$EXCHANGE" --queue "$QUEUE" --routing-key "$KEY"
  log "drain: pre-filling the outbox with $DRAIN_ROWS events (agent stopped)"
  local per="$DRAIN_STMT_ROWS"
  [ "$per" -gt 0 ] || per="$DRAIN_ROWS"
  # shellcheck disable=SC2016  # $$ quotes SQL, not the shell
  sql -c "TRUNCATE cqrs.outbox" \
      -c "DO \$\$ BEGIN FOR s IN 0 .. ($DRAIN_ROWS - 1) / $per LOOP
            INSERT INTO bench.t_event (name, price, qty, note)
            SELECT 'item ' || g, g * 0.01, g, repeat('x', $NOTE_BYTES)
            FROM generate_series(s * $per + 1, least((s + 1) * $per, $DRAIN_ROWS)) g;
          END LOOP; END \$\$" \
      -c "VACUUM ANALYZE cqrs.outbox" -c "CHECKPOINT"
  local size
  size="$(val "SELECT pg_size_pretty(pg_total_relation_size('cqrs.outbox'))")"

  # the broker gets faster over its first few hundred thousand messages: the raw publishes
  # after the agent's ran on a broker the agent had warmed up, so a first drain was measured
  # against a warmer broker than it had (runs A-F). Publish as many raw messages first (the
  # "before" rate), purge, then run the agent.
  log "drain: raw publish before the agent (warms the broker up), sliding window $WINDOW"
  local raw_pre
  raw_pre="$(amqp publish --exchange "$EXCHANGE" --queue "$QUEUE" --routing-key "$KEY" \
             --count "$DRAIN_ROWS" --body-bytes 390 --window "$WINDOW" --mode window)"
  echo "drain raw_before $raw_pre" >> "$OUT/raw.txt"
  amqp setup --exchange "$EXCHANGE" --queue "$QUEUE" --routing-key "$KEY"   # purge
  log "drain: agent publishing $DRAIN_ROWS events"
  # the agent's statements go to the server log with their durations (new sessions only)
  sql -c "ALTER DATABASE bench_agent SET log_min_duration_statement = 0"
  local pglog="${PGCQRS_TEST_PG_BASE:-}/log/postgres.log" pglog_from=0
  [ -r "$pglog" ] && pglog_from="$(wc -l < "$pglog")"
  local t0 t1="" t2 n cpu rss min0
  # progress from the primary key's first entry: a count(*) of the 79 MB outbox every 0.2 s
  # (runs A-C) took 30-40 ms each, ~15 % of a core the broker and the agent needed. The probe
  # goes through one psql session kept open (a coprocess): starting psql and a backend for
  # each probe took another ~12 % of a core (perf, 2026-12-01), which the raw publishers
  # measured beside the agent did not pay.
  min0="$(val "SELECT min(id) FROM cqrs.outbox")"
  local probe_in probe_out probe_pid pause
  coproc PROBE { psql -X -Atq -v ON_ERROR_STOP=1 "$DB"; }
  # copies: bash unsets PROBE and PROBE_PID once it has reaped the coprocess
  probe_in="${PROBE[1]}"; probe_out="${PROBE[0]}"; probe_pid="$PROBE_PID"
  exec {pause}<> <(:)  # a pipe nobody writes to: `read -t` on it sleeps without a process
  t0="$(date +%s.%N)"
  start_agent "$OUT/agent.toml" "$OUT/drain-agent.log"
  while :; do
    echo "SELECT coalesce(min(id), 0) FROM cqrs.outbox;" >&"$probe_in"
    read -r n <&"$probe_out" || { echo "bench: drain: the progress probe ended" >&2; return 1; }
    [ -z "$t1" ] && [ "$n" != "$min0" ] && t1="$(date +%s.%N)"
    [ "$n" = 0 ] && break
    kill -0 "$AGENT_PID" 2>/dev/null || { cat "$OUT/drain-agent.log" >&2; return 1; }
    read -r -t 0.2 -u "$pause" || true
  done
  t2="$(date +%s.%N)"
  exec {probe_in}>&- {probe_out}<&- {pause}>&-
  wait "$probe_pid" 2>/dev/null || true
  cpu="$(proc_cpu_seconds "$AGENT_PID")"; rss="$(proc_rss_mb "$AGENT_PID")"
  stop_agent
  sql -c "ALTER DATABASE bench_agent RESET log_min_duration_statement"
  local db_stats="rounds=0 fetch_ms=0 remove_ms=0 backlog_ms=0"
  if [ -r "$pglog" ]; then
    tail -n +"$((pglog_from + 1))" "$pglog" > "$OUT/drain-postgres.log"
    db_stats="$(awk '
      / execute outbox_fetch/   { for (i = 1; i < NF; i++) if ($i == "duration:") f += $(i + 1) }
      / execute outbox_remove/  { for (i = 1; i < NF; i++) if ($i == "duration:") r += $(i + 1); nr++ }
      / execute outbox_backlog/ { for (i = 1; i < NF; i++) if ($i == "duration:") b += $(i + 1) }
      END { printf "rounds=%d fetch_ms=%.0f remove_ms=%.0f backlog_ms=%.0f", nr, f, r, b }' \
      "$OUT/drain-postgres.log")"
  fi
  local agent_s agent_rate first_rate body
  agent_s="$(awk -v a="$t0" -v b="$t2" 'BEGIN { printf "%.2f", b - a }')"
  agent_rate="$(awk -v n="$DRAIN_ROWS" -v s="$agent_s" 'BEGIN { printf "%.0f", n / s }')"
  first_rate="$(awk -v n="$DRAIN_ROWS" -v a="$t1" -v b="$t2" 'BEGIN { printf "%.0f", n / (b - a) }')"
  body="$(amqp sample --queue "$QUEUE")"
  echo "drain agent rows=$DRAIN_ROWS seconds=$agent_s rate=$agent_rate rate_after_first=$first_rate cpu_s=$cpu peak_rss_mb=$rss body_bytes=$body outbox_size=$size $db_stats" >> "$OUT/raw.txt"

  log "drain: raw publish, sliding window $WINDOW"
  local raw_w raw_r
  raw_w="$(amqp publish --exchange "$EXCHANGE" --queue "$QUEUE" --routing-key "$KEY" \
           --count "$DRAIN_ROWS" --body-bytes "$body" --window "$WINDOW" --mode window)"
  log "drain: raw publish, rounds of $WINDOW"
  raw_r="$(amqp publish --exchange "$EXCHANGE" --queue "$QUEUE" --routing-key "$KEY" \
           --count "$DRAIN_ROWS" --body-bytes "$body" --window "$WINDOW" --mode rounds)"
  echo "drain raw $raw_w" >> "$OUT/raw.txt"
  echo "drain raw $raw_r" >> "$OUT/raw.txt"
  amqp setup --exchange "$EXCHANGE" --queue "$QUEUE" --routing-key "$KEY"   # purge
  local rw rr rp
  rp="$(echo "$raw_pre" | sed -n 's/.* rate=\([0-9]*\).*/\1/p')"
  rw="$(echo "$raw_w" | sed -n 's/.* rate=\([0-9]*\).*/\1/p')"
  rr="$(echo "$raw_r" | sed -n 's/.* rate=\([0-9]*\).*/\1/p')"

  say ""
  say "### Agent drain rate ($DRAIN_ROWS events of $body bytes written by INSERTs of ${per} rows, outbox $size, confirm_window $WINDOW; $load at start)"
  say ""
  say "| publisher | events/s | seconds | agent/raw |"
  say "|---|---|---|---|"
  say "| pgcqrs master agent (outbox → broker, from process start) | $agent_rate | $agent_s | $(ratio "$agent_rate" "$rw") (goal ≥ 0.8) |"
  say "| same, from the first deleted row | $first_rate | | $(ratio "$first_rate" "$rw") |"
  say "| raw publish, sliding window of $WINDOW unconfirmed (bench_amqp) | $rw | | 1.00 |"
  say "| raw publish, rounds of $WINDOW then wait for all confirms | $rr | | $(ratio "$rr" "$rw") |"
  say "| raw publish, sliding window, before the agent (broker warm-up) | $rp | | $(ratio "$rp" "$rw") (agent/this: $(ratio "$agent_rate" "$rp")) |"
  say ""
  say "Agent process during the drain: ${cpu} s CPU (user+sys) for ${agent_s} s wall, peak RSS ${rss} MB."
  local rounds raw_r_s
  rounds="$(echo "$db_stats" | sed -n 's/.*rounds=\([0-9]*\).*/\1/p')"
  raw_r_s="$(echo "$raw_r" | sed -n 's/.* seconds=\([0-9.]*\).*/\1/p')"
  if [ "${rounds:-0}" -gt 0 ]; then
    say ""
    say "Per $WINDOW events ($rounds delete statements; server-side statement times from the PostgreSQL log; the agent overlaps them with the broker's work, so the parts do not add up to its wall time):"
    say "$(echo "$db_stats" | awk -v s="$agent_s" -v c="$cpu" -v rr="$raw_r_s" -v n="$DRAIN_ROWS" -v w="$WINDOW" '{
      for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      k = n / w; br = rr * 1000 / k
      printf "agent %.1f ms wall; broker %.1f ms (raw rounds); agent CPU %.1f ms; fetch %.2f ms; delete %.2f ms; backlog metric %.2f ms",
        s * 1000 / k, br, c * 1000 / k, v["fetch_ms"] / k, v["remove_ms"] / k, v["backlog_ms"] / k }')"
  fi
}

# --------------------------------------------------------------------------------------------
# Phase 3: outbox bloat under sustained writes with the agent running
# --------------------------------------------------------------------------------------------
bloat_sample() {  # bloat_sample FILE LABEL: t|rows|size|n_dead_tup|autovacuums|table rows|label
  echo "$(( $(date +%s) - BLOAT_T0 ))|$(val "$BLOAT_Q")|$2" >> "$1"
}

run_bloat() {
  local load
  load="$(loadavg)"
  agent_db_ready
  amqp setup --exchange "$EXCHANGE" --queue "$QUEUE" --routing-key "$KEY"
  sql -c "SET session_replication_role = replica" -c "TRUNCATE bench.t_event, cqrs.outbox" \
      -c "INSERT INTO bench.t_event (name, price, qty, note)
          SELECT 'item ' || g, g * 0.01, g, repeat('x', $NOTE_BYTES) FROM generate_series(1, 10000) g" \
      -c "RESET session_replication_role" -c "VACUUM ANALYZE" -c "SELECT pg_stat_reset()" -c "CHECKPOINT"
  local script="$OUT/pgbench/bloat.sql"
  mkdir -p "$OUT/pgbench"
  cat > "$script" <<EOF
\\set id random(1, 10000)
BEGIN;
INSERT INTO bench.t_event (name, price, qty, note) VALUES ('item', 1.25, 1, repeat('x', $NOTE_BYTES));
UPDATE bench.t_event SET qty = qty + 1 WHERE id = :id;
COMMIT;
EOF
  local rate_opt=() rate_text="as fast as possible"
  if [ "$BLOAT_TPS" != 0 ]; then rate_opt=(-R "$BLOAT_TPS"); rate_text="$BLOAT_TPS tx/s = $((BLOAT_TPS * 2)) events/s"; fi

  start_agent "$OUT/agent.toml" "$OUT/bloat-agent.log"
  sleep 1
  log "bloat: pgbench $rate_text for $BLOAT_SECONDS s, sampling every $SAMPLE_EVERY s"
  "$PG_BIN/pgbench" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" "${rate_opt[@]}" -T "$BLOAT_SECONDS" \
    -f "$script" "$DB" > "$OUT/pgbench/bloat.log" 2>&1 &
  PGBENCH_PID=$!
  local samples="$OUT/bloat-samples.txt"
  : > "$samples"
  BLOAT_T0="$(date +%s)"
  BLOAT_Q="SELECT (SELECT coalesce(sum(events), 0) FROM cqrs.outbox), pg_total_relation_size('cqrs.outbox'),
                  n_dead_tup, autovacuum_count, (SELECT count(*) FROM bench.t_event)
           FROM pg_stat_user_tables WHERE relid = 'cqrs.outbox'::regclass"
  while kill -0 "$PGBENCH_PID" 2>/dev/null; do
    bloat_sample "$samples" writing
    sleep "$SAMPLE_EVERY"
  done
  wait "$PGBENCH_PID" || { cat "$OUT/pgbench/bloat.log" >&2; return 1; }
  PGBENCH_PID=""
  # the backlog left when the writer stops, then the drained state
  for _ in $(seq 1 100); do
    [ "$(val "SELECT count(*) FROM cqrs.outbox")" = 0 ] && break
    sleep 0.2
  done
  bloat_sample "$samples" "writer stopped, outbox drained"
  stop_agent
  local tps
  tps="$(awk '/^tps = / { printf "%.0f", $3 }' "$OUT/pgbench/bloat.log")"
  echo "bloat tps=$tps" >> "$OUT/raw.txt"
  sed 's/^/bloat sample /' "$samples" >> "$OUT/raw.txt"
  amqp setup --exchange "$EXCHANGE" --queue "$QUEUE" --routing-key "$KEY"   # purge

  say ""
  say "### Outbox under sustained writes (agent running; pgbench $rate_text for $BLOAT_SECONDS s, achieved $tps tx/s, 1 INSERT + 1 UPDATE per tx; $load at start)"
  say ""
  say "| t (s) | outbox rows | outbox total size | n_dead_tup | autovacuums | when |"
  say "|---|---|---|---|---|---|"
  while IFS='|' read -r t rows size dead av _ when; do
    say "| $t | $rows | $(awk -v b="$size" 'BEGIN { printf "%.0f kB", b / 1024 }') | $dead | $av | $when |"
  done < "$samples"
}

for phase in $PHASES; do
  case "$phase" in
    capture) run_capture ;;
    micro) run_micro ;;
    explain) run_explain ;;
    commit) run_commit ;;
    drain) run_drain ;;
    bloat) run_bloat ;;
    *) echo "unknown phase $phase (capture, micro, explain, commit, drain, bloat)" >&2; exit 2 ;;
  esac
done
