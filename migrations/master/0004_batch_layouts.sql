-- pgcqrs master schema, version 4: batch rows name their layout by a key.
--
-- A batch row carried its layout's whole text (about 110 bytes for a model of eight fields),
-- written again, with its WAL, by every captured statement: for a stream of 1-row statements, a
-- third of each outbox row. The triggers now write the layout's key ('#' and 16 hex digits of
-- a hash of its text) and `pgcqrs migrate` stores the layout under it here. The agent reads the
-- text through the key; a batch_layout that does not start with '#' is still a layout's text
-- (rows written before this migration). Layouts are few (one per model and configuration) and
-- are kept: a batch written before a `pgcqrs migrate` still names its own.
CREATE TABLE cqrs.batch_layout (
  key        text PRIMARY KEY,
  layout     text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
