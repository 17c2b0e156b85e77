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

step "pgcqrs --help (the django-cqrs command names are links to pgcqrs)"
pgcqrs --help
ls -l "$BIN" | grep -- '-> pgcqrs' | awk '{print "  " $(NF-2), $(NF-1), $NF}'

step "done; the servers are stopped and removed now"
