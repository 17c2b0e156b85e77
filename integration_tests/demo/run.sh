#!/usr/bin/env bash
# Demo steps, run by demo.sh inside with_servers.sh (PGCQRS_TEST_* point at private servers).
set -euo pipefail
BIN="$1"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PATH="$BIN:$PATH"
base="${PGCQRS_TEST_PG_URL%/*}"
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
sql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

step "PostgreSQL and RabbitMQ are running privately for this demo"
echo "  PostgreSQL: $PGCQRS_TEST_PG_URL"
echo "  RabbitMQ:   $PGCQRS_TEST_AMQP_URL"

step "create the master database (shop) and the replica database (reads)"
sql "$PGCQRS_TEST_PG_URL" -c "CREATE DATABASE demo_master" -c "CREATE DATABASE demo_replica"
sql "$base/demo_master" -f "$HERE/master.sql"
sql "$base/demo_replica" -f "$HERE/replica.sql"
sql "$base/demo_master" -c "TABLE author" -c "TABLE product"

step "connection strings come from the environment, the rest from pgcqrs.toml"
export PGCQRS_BROKER_URL="$PGCQRS_TEST_AMQP_URL"
export PGCQRS_MASTER_DATABASE="$base/demo_master"
export PGCQRS_REPLICA_DATABASE="$base/demo_replica"
export PGCQRS_CONFIG="$HERE/pgcqrs.toml"
# the /metrics ports of the agent and of the consumer: free ones, set in a copy of the config
free_port() {
  local p="$(( 20000 + RANDOM % 20000 ))"
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p="$(( 20000 + RANDOM % 20000 ))"; done
  echo "$p"
}
MASTER_HTTP_PORT="$(free_port)"
REPLICA_HTTP_PORT="$(free_port)"
while [ "$REPLICA_HTTP_PORT" = "$MASTER_HTTP_PORT" ]; do REPLICA_HTTP_PORT="$(free_port)"; done
conf="$(mktemp --suffix=.toml)"
sed -e "s/^message_ttl = 86400 .*/&\nhttp_port = $MASTER_HTTP_PORT/" \
    -e "s/^max_retries = 5.*/&\nhttp_port = $REPLICA_HTTP_PORT/" "$HERE/pgcqrs.toml" > "$conf"
export PGCQRS_CONFIG="$conf"
echo "  PGCQRS_CONFIG=$PGCQRS_CONFIG"

step "pgcqrs check-config: the effective configuration, secrets masked"
pgcqrs check-config

step "a configuration mistake is reported with file, line, key and fix (exit code 2)"
bad="$(mktemp)"
sed 's/^max_retries = 5/max_retries = -1/' "$PGCQRS_CONFIG" > "$bad"
set +e
pgcqrs --config "$bad" check-config
echo "  exit code: $?"
set -e
rm -f "$bad"

step "pgcqrs migrate: schema cqrs (outbox) and capture triggers on the master; tombstones on the replica"
pgcqrs migrate
sql "$base/demo_master" -c '\d author'

step "start the master agent (publishes the outbox to RabbitMQ with publisher confirms)"
work="$(mktemp -d)"
pgcqrs master >"$work/agent.log" 2>&1 &
agent=$!
consumer=""
trap 'kill $agent $consumer 2>/dev/null || true; rm -rf "$work"' EXIT

step "start the replica consumer: cqrs_consume -w 2 (batches, revision guard, retries, dead letters)"
cqrs_consume -w 2 >"$work/consumer.log" 2>&1 &
consumer=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$REPLICA_HTTP_PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1
done
echo "  consumer pid $consumer, queue demo_replica bound to author and product"
# a private queue that shows what is published (events nobody is bound to are dropped by
# RabbitMQ: the watcher must be bound before the writes)
pgcqrs watch --cqrs-id author --cqrs-id product --count 6 >"$work/events" 2>"$work/watch.err" &
watcher=$!
for _ in $(seq 1 100); do grep -q watching "$work/watch.err" && break; sleep 0.1; done

step "write on the master with plain SQL: insert, multi-row update, delete, a correlation id"
sql "$base/demo_master" <<'SQL'
INSERT INTO author VALUES (3, 'Octavia E. Butler');
UPDATE product SET in_stock = NOT in_stock;
UPDATE product SET price = 11.55 WHERE id = 1;
DELETE FROM product WHERE id = 2;
BEGIN;
SET LOCAL pgcqrs.correlation_id = 'demo-request-1';
INSERT INTO product (id, name, price, sku, author)
  VALUES (3, 'Kindred', 15.00, 'b8f3c7a0-0000-4000-8000-000000000003', 3);
COMMIT;
SQL
sql "$base/demo_master" -c "SELECT id, name, price, cqrs_revision, cqrs_updated FROM product ORDER BY id"

step "the events RabbitMQ delivered (routing key, then the django-cqrs body)"
wait "$watcher"
cat "$work/events"

step "the replica, applied by cqrs_consume (mapping: name -> title, author -> author_id)"
# what the replica must hold, read from the master through the mapping, and what it holds
master_state() {
  sql "$base/demo_master" -At -F ' | ' -c "
    SELECT 'author', id, name, '', '', cqrs_revision, cqrs_updated FROM author
    UNION ALL
    SELECT 'product', id, name, price::text, author::text, cqrs_revision, cqrs_updated FROM product
    ORDER BY 1, 2"
}
replica_state() {
  sql "$base/demo_replica" -At -F ' | ' -c "
    SELECT 'author', id, name, '', '', cqrs_revision, cqrs_updated FROM reads.author
    UNION ALL
    SELECT 'product', id, title, price::text, author_id::text, cqrs_revision, cqrs_updated
    FROM reads.\"Product\"
    ORDER BY 1, 2"
}
wait_equal() {  # wait_equal [only-products]: until the replica equals the master, or 10 s
  local filter="${1:-.}"
  for _ in $(seq 1 100); do
    [ "$(master_state | grep "$filter")" = "$(replica_state | grep "$filter")" ] && return 0
    sleep 0.1
  done
  echo "  the replica differs from the master:" >&2
  diff <(master_state) <(replica_state) >&2 || true
  cat "$work/consumer.log" >&2
  return 1
}
# authors 1 and 2 were written before capture was installed, so no event carried them: the
# diff pipeline below brings them (as cqrs_bulk_dump | cqrs_bulk_load would on a new replica)
wait_equal '^product'
sql "$base/demo_replica" -c "SELECT * FROM reads.author ORDER BY id" \
  -c "SELECT * FROM reads.\"Product\" ORDER BY id"
echo "  replica products equal the master's, column by column"
echo "  the deleted product 2 left a tombstone, so a late SAVE cannot bring it back:"
sql "$base/demo_replica" -c "SELECT * FROM cqrs.tombstone"

step "the consumer's metrics"
# (the counters that moved, and the lag: now - cqrs_updated of the last applied row)
curl -s "http://127.0.0.1:$REPLICA_HTTP_PORT/metrics" \
  | grep -E '^pgcqrs_replica_(applied_total|skipped_total|batch_size_(sum|count)|lag_seconds|dead_lettered_total)' \
  | grep -v ' 0$' || true

step "break the replica on purpose: a lost update, a lost row, a row the master deleted long ago"
sql "$base/demo_replica" <<'SQL'
UPDATE reads."Product" SET price = 0.01, cqrs_revision = 0 WHERE id = 1;
DELETE FROM reads.author WHERE id = 3;
INSERT INTO reads."Product" VALUES (99, 'Ghost', 1.00, NULL, 4, now());
SQL
diff <(master_state) <(replica_state) | sed 's/^/  /' || true

step "find what differs: cqrs_diff_master | cqrs_diff_replica (master rows, then the pks to resync)"
for id in author product; do cqrs_diff_master --cqrs-id "$id" | cqrs_diff_replica; done

step "repair: the diff pipeline (SYNCs through RabbitMQ) and the deleted-rows pipeline"
# on Kubernetes each stage runs in its own pod:
#   kubectl exec -i MASTER -- cqrs_diff_master --cqrs-id product \
#     | kubectl exec -i REPLICA -- cqrs_diff_replica | kubectl exec -i MASTER -- cqrs_diff_sync
for id in author product; do
  echo "  \$ cqrs_diff_master --cqrs-id $id | cqrs_diff_replica | cqrs_diff_sync"
  cqrs_diff_master --cqrs-id "$id" | cqrs_diff_replica | cqrs_diff_sync 2>&1 | sed 's/^/    /'
  echo "  \$ cqrs_deleted_diff_replica --cqrs-id $id | cqrs_deleted_diff_master | cqrs_deleted_sync_replica"
  cqrs_deleted_diff_replica --cqrs-id "$id" | cqrs_deleted_diff_master \
    | cqrs_deleted_sync_replica 2>&1 | sed 's/^/    /'
done
wait_equal
sql "$base/demo_replica" -c "SELECT * FROM reads.author ORDER BY id" \
  -c "SELECT * FROM reads.\"Product\" ORDER BY id"
echo "  the replica equals the master again, every row and column (authors 1 and 2 included)"

step "the agent removed what the broker confirmed; its metrics"
sql "$base/demo_master" -c "SELECT count(*) AS outbox_rows_left FROM cqrs.outbox"
curl -s "http://127.0.0.1:$MASTER_HTTP_PORT/metrics" | grep '^pgcqrs_master' || true

step "SIGTERM: the agent waits for outstanding confirms, the consumer finishes its batch; both exit 0"
kill -TERM "$agent" "$consumer"
set +e; wait "$agent"; rc=$?; wait "$consumer"; crc=$?; set -e
echo "  agent exit code: $rc, consumer exit code: $crc"
tail -n 2 "$work/agent.log"
tail -n 2 "$work/consumer.log"

step "pgcqrs --help (the django-cqrs command names are links to pgcqrs)"
pgcqrs --help
ls -l "$BIN" | grep -- '-> pgcqrs' | awk '{print "  " $(NF-2), $(NF-1), $NF}'

step "done; the servers are stopped and removed now"
