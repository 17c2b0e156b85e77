-- pgcqrs replica schema, version 1: delete tombstones, so that a SAVE older than a DELETE that
-- arrives after it (redelivery, retry, another worker) cannot bring the row back.

CREATE SCHEMA IF NOT EXISTS cqrs;

-- One row per deleted (cqrs_id, primary key). `pk` is the key's PostgreSQL text form (the
-- replica column's value cast to text), `revision` the highest DELETE revision seen. A SAVE
-- whose revision is <= `revision` is skipped; a SYNC applies anyway and removes the row here.
-- Rows older than replica.tombstone_ttl are pruned by `deleted_at`.
CREATE TABLE cqrs.tombstone (
  cqrs_id     text        NOT NULL,
  pk          text        NOT NULL,
  revision    bigint      NOT NULL,
  deleted_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (cqrs_id, pk)
);
CREATE INDEX tombstone_deleted_at ON cqrs.tombstone (deleted_at);
