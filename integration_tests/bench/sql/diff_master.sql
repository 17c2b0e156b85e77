-- bench_diff.sh: the master table, 1,000,000 rows (int pk, text, numeric, timestamptz, jsonb).
-- The cqrs columns exist before the fill so that `pgcqrs migrate` (capture) adds only triggers.
CREATE TABLE bench_item (
  id             integer PRIMARY KEY,
  name           text NOT NULL,
  price          numeric(12,2) NOT NULL,
  seen_at        timestamptz NOT NULL,
  attrs          jsonb NOT NULL,
  cqrs_revision  integer NOT NULL DEFAULT 0,
  cqrs_updated   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO bench_item (id, name, price, seen_at, attrs)
SELECT g, 'item number ' || g, (g % 100000) / 100.0,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
       jsonb_build_object('n', g, 'tags', jsonb_build_array('a', 'b'))
FROM generate_series(1, :rows) g;
VACUUM ANALYZE bench_item;
