-- bench_diff.sh: the replica's read model of bench_item (filled by COPY from the master).
CREATE TABLE bench_item (
  id             integer PRIMARY KEY,
  name           text NOT NULL,
  price          numeric(12,2) NOT NULL,
  seen_at        timestamptz NOT NULL,
  attrs          jsonb NOT NULL,
  cqrs_revision  integer NOT NULL,
  cqrs_updated   timestamptz NOT NULL
);
