-- Master side of bench_deleted.sh: the same rows but every :gap-th one (those were deleted on
-- the master and the DELETEs never reached the replica). psql -v rows=... -v gap=1000 -f ...
CREATE TABLE bench_item (
  id             integer PRIMARY KEY,
  name           text NOT NULL,
  price          numeric(12,2) NOT NULL,
  created_at     timestamptz NOT NULL,
  attrs          jsonb NOT NULL,
  cqrs_revision  integer NOT NULL DEFAULT 0,
  cqrs_updated   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO bench_item
SELECT i, 'item ' || i || ' ' || md5(i::text), (i % 100000) / 100.0,
       timestamptz '2026-01-01 00:00:00+00' + make_interval(secs => i),
       jsonb_build_object('n', i, 'tag', 't' || (i % 97)), 1, now()
FROM generate_series(1, :rows) AS i
WHERE i % :gap <> 0;
VACUUM (ANALYZE) bench_item;
