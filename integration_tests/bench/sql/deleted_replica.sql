-- Replica side of bench_deleted.sh: a read-model table of :rows rows (int key, text, numeric,
-- timestamptz, jsonb) at revision 1. psql -v rows=1000000 -f deleted_replica.sql
CREATE TABLE bench_item (
  id             integer PRIMARY KEY,
  name           text NOT NULL,
  price          numeric(12,2) NOT NULL,
  created_at     timestamptz NOT NULL,
  attrs          jsonb NOT NULL,
  cqrs_revision  integer NOT NULL,
  cqrs_updated   timestamptz NOT NULL
);
INSERT INTO bench_item
SELECT i, 'item ' || i || ' ' || md5(i::text), (i % 100000) / 100.0,
       timestamptz '2026-01-01 00:00:00+00' + make_interval(secs => i),
       jsonb_build_object('n', i, 'tag', 't' || (i % 97)), 1, now()
FROM generate_series(1, :rows) AS i;
VACUUM (ANALYZE) bench_item;
