-- pgcqrs master schema, version 1: the outbox the capture triggers write and the agent drains,
-- and the helpers the generated trigger functions call.

CREATE SCHEMA IF NOT EXISTS cqrs;

-- One row per event, written in the transaction that changed the tracked row; deleted by the
-- agent once the broker confirmed the publish. `id` order is publish order: for one row it is
-- revision order, because a writer holds the row lock until it commits.
CREATE TABLE cqrs.outbox (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  cqrs_id         text        NOT NULL,
  signal          text        NOT NULL CHECK (signal IN ('SAVE', 'DELETE')),
  instance_pk     json        NOT NULL,
  revision        integer     NOT NULL,
  updated         timestamptz NOT NULL,
  instance_data   json,        -- NULL until a serializer fills it at commit
  previous_data   json,
  meta            json,
  correlation_id  text,
  created_at      timestamptz NOT NULL DEFAULT now()
);
-- rows are inserted and deleted at the same rate: vacuum often so the table stays small
ALTER TABLE cqrs.outbox SET (autovacuum_vacuum_scale_factor = 0.0,
                             autovacuum_vacuum_threshold = 5000,
                             autovacuum_vacuum_insert_scale_factor = 0.0,
                             autovacuum_vacuum_insert_threshold = 5000,
                             fillfactor = 90);

-- Python's str(datetime) of an aware UTC datetime, as django-cqrs sends timestamps:
-- 'YYYY-MM-DD HH:MM:SS[.ffffff]+00:00' (fraction omitted when it is zero).
CREATE FUNCTION cqrs.django_ts(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN t IS NULL THEN NULL
    WHEN t = 'infinity'::timestamptz OR t = '-infinity'::timestamptz THEN t::text
    WHEN date_part('microseconds', t)::bigint % 1000000 = 0
      THEN to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00:00'
    ELSE to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00:00'
  END
$$;

-- Same for a naive timestamp (no offset), as Python prints a naive datetime.
CREATE FUNCTION cqrs.django_ts_naive(t timestamp) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN t IS NULL THEN NULL
    WHEN t = 'infinity'::timestamp OR t = '-infinity'::timestamp THEN t::text
    WHEN date_part('microseconds', t)::bigint % 1000000 = 0
      THEN to_char(t, 'YYYY-MM-DD HH24:MI:SS')
    ELSE to_char(t, 'YYYY-MM-DD HH24:MI:SS.US')
  END
$$;

-- The correlation id an application set with SET LOCAL pgcqrs.correlation_id = '...'.
CREATE FUNCTION cqrs.correlation_id() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT nullif(current_setting('pgcqrs.correlation_id', true), '')
$$;

-- What `pgcqrs migrate` installed for each model, so re-runs update and uninstall removes it.
CREATE TABLE cqrs.capture (
  cqrs_id      text PRIMARY KEY,
  table_schema text NOT NULL,
  table_name   text NOT NULL,
  config_hash  text NOT NULL,
  installed_at timestamptz NOT NULL DEFAULT now()
);
