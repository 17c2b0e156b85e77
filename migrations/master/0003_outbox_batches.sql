-- pgcqrs master schema, version 3: one outbox row per captured statement.
--
-- The INSERT and UPDATE capture of a model without a serializer writes one row per statement
-- (per 1000 rows or 16 MB of it) instead of one per changed row: `batch` holds, for each
-- changed row, the text output of its captured columns (a two-dimensional text[], one row per
-- table row), and `batch_layout` says what each position is: a text[] literal of
-- '<kind>:<name>' (see master/batch.hpp), kept as text so that reading it back costs nothing.
-- The agent builds each row's django-cqrs event from them when it publishes, so the writer no
-- longer builds JSON nor inserts an outbox row per changed row (docs/benchmarks.md, "Batched
-- capture").
-- `events` is the number of events a row carries (1 for the per-event rows, which DELETEs,
-- primary-key changes and serializer models still write); instance_pk, revision and updated are
-- NULL in a batch row.
ALTER TABLE cqrs.outbox
  ALTER COLUMN instance_pk DROP NOT NULL,
  ALTER COLUMN revision DROP NOT NULL,
  ALTER COLUMN updated DROP NOT NULL,
  ADD COLUMN batch text[],
  ADD COLUMN batch_layout text,
  ADD COLUMN events integer NOT NULL DEFAULT 1;

-- A batch of 100 rows is a value of about 10 kB: compressed when stored, decompressed when the
-- agent reads it. lz4 does both at a fraction of pglz's CPU; a server built without lz4 keeps
-- pglz.
DO $$
BEGIN
  ALTER TABLE cqrs.outbox ALTER COLUMN batch SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  NULL;
END $$;
