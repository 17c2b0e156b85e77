-- bench_bulk.sh: the benchmark table (int pk, text, numeric, timestamptz, jsonb) with the two
-- cqrs columns, on the master (filled) and on the replica (empty), and the COPY FROM twin.
-- psql variables: rows (master only: how many rows to create).
CREATE TABLE bulk_item (
  id            integer PRIMARY KEY,
  name          text NOT NULL,
  price         numeric(12,2),
  at            timestamptz,
  doc           jsonb,
  cqrs_revision integer NOT NULL DEFAULT 0,
  cqrs_updated  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE bulk_item_copy (LIKE bulk_item INCLUDING ALL);
