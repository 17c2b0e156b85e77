#!/usr/bin/env bash
# Consumer benchmark steps, run by integration_tests/bench_consume.sh inside with_servers.sh.
# usage: consume_run.sh BIN_DIR OUT_DIR
set -euo pipefail
BIN="$1"
OUT="$2"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
N="${BENCH_EVENTS:-200000}"
WORKERS="${BENCH_WORKERS:-1 2}"
base="${PGCQRS_TEST_PG_URL%/*}"
db="$base/bench_replica"
sql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

sql "$PGCQRS_TEST_PG_URL" -c "CREATE DATABASE bench_replica"
sql "$db" -f "$HERE/sql/consume_schema.sql"

port=$(( 20000 + RANDOM % 20000 ))
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$(( 20000 + RANDOM % 20000 )); done
conf="$OUT/pgcqrs.toml"
cat >"$conf" <<TOML
[broker]
exchange = "cqrs"
[replica]
queue = "bench_replica"
http_port = $port
[[replica.model]]
cqrs_id = "product"
table = "public.product"
TOML
export PGCQRS_CONFIG="$conf" PGCQRS_BROKER_URL="$PGCQRS_TEST_AMQP_URL" PGCQRS_REPLICA_DATABASE="$db"
"$BIN/pgcqrs" replica install >"$OUT/install.log"

echo "==> $N SAVE bodies in django-cqrs format, one per row, revisions 0..6"
sql "$db" -At -c "SELECT body FROM bench_bodies($N)" >"$OUT/bodies.jsonl"
echo "  $(wc -l <"$OUT/bodies.jsonl") bodies, average $(( $(wc -c <"$OUT/bodies.jsonl") / N )) bytes"

consumer=""
trap '[ -n "$consumer" ] && kill "$consumer" 2>/dev/null; true' EXIT
start_consumer() {  # start_consumer WORKERS LOG
  "$BIN/pgcqrs" consume -w "$1" >"$2" 2>&1 &
  consumer=$!
  for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0; sleep 0.05
  done
  echo "consumer did not become ready:" >&2; cat "$2" >&2; exit 1
}
stop_consumer() { kill -TERM "$consumer"; wait "$consumer" || true; consumer=""; }
publish() {
  "$BIN/bench_amqp" publish-lines --url "$PGCQRS_TEST_AMQP_URL" --exchange cqrs \
    --routing-key product --file "$OUT/bodies.jsonl" --window 1000
}

echo "==> the consumer declares its topology (queue bench_replica bound to product)"
start_consumer 1 "$OUT/declare.log"
stop_consumer

echo "==> ceiling 1: RabbitMQ delivery to one consumer (prefetch 1000, ack every 500, no database)"
publish | tee "$OUT/publish-raw.txt"
"$BIN/bench_amqp" drain --url "$PGCQRS_TEST_AMQP_URL" --queue bench_replica --count "$N" \
  | tee "$OUT/drain.txt"
raw_rate="$(sed -n 's/.* rate=\([0-9]*\).*/\1/p' "$OUT/drain.txt")"

echo "==> ceiling 2: PostgreSQL set-based upsert, 500 rows per transaction, server-side"
sql "$db" -c "TRUNCATE product" \
  -c "INSERT INTO bench_body_store SELECT row_number() OVER (), body::jsonb FROM bench_bodies($N)" \
  -c "VACUUM ANALYZE bench_body_store" -c "CHECKPOINT"
t0="$(now)"
sql "$db" -c "CALL bench_sql_apply(500)"
t1="$(now)"
sql_seconds="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
sql_rate="$(rate "$N" "$sql_seconds")"
echo "  $N rows in ${sql_seconds}s = $sql_rate rows/s"

declare -A w_rate
for w in $WORKERS; do
  echo "==> pgcqrs consume -w $w from a queue of $N SAVEs"
  sql "$db" -c "TRUNCATE product, cqrs.tombstone; CHECKPOINT"
  publish >"$OUT/publish-w$w.txt"
  t0="$(now)"
  start_consumer "$w" "$OUT/consume-w$w.log"
  while [ "$(sql "$db" -At -c "SELECT count(*) FROM product")" -lt "$N" ]; do sleep 0.1; done
  t1="$(now)"
  stop_consumer
  secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
  w_rate[$w]="$(rate "$N" "$secs")"
  left="$("$BIN/bench_amqp" sample --url "$PGCQRS_TEST_AMQP_URL" --queue bench_replica 2>/dev/null || echo empty)"
  echo "  $N rows applied in ${secs}s (start-up included) = ${w_rate[$w]} rows/s; queue after: $left"
  bad="$(sql "$db" -At -c "SELECT count(*) FROM product p JOIN bench_expected e USING (id)
                            WHERE (p.name, p.price, p.cqrs_revision) IS DISTINCT FROM
                                  (e.name, e.price, e.cqrs_revision)")"
  [ "$bad" = 0 ] || { echo "  $bad rows differ from the events!" >&2; exit 1; }
done

{
  echo "| run | rows/s | vs RabbitMQ delivery | vs SQL set-based |"
  echo "|---|---|---|---|"
  echo "| RabbitMQ delivery, 1 consumer, no database | $raw_rate | 1.00 | |"
  echo "| SQL set-based upsert, 500 rows/tx, no broker | $sql_rate | | 1.00 |"
  for w in $WORKERS; do
    echo "| \`pgcqrs consume -w $w\` | ${w_rate[$w]} | $(ratio "${w_rate[$w]}" "$raw_rate") | $(ratio "${w_rate[$w]}" "$sql_rate") |"
  done
} | tee "$OUT/results.md"
echo "reproduce: BENCH_EVENTS=$N BENCH_WORKERS=\"$WORKERS\" integration_tests/bench_consume.sh"
