-- Where the capture time goes: variants of the generated capture, each on its own table of the
-- bench.t_plain shape, for the `micro` phase and for BENCH_VARIANTS of the `capture` phase.
-- Run after `pgcqrs migrate`: `nonotify` copies the functions generated for bench.t_capture.
--   none      AFTER INSERT/UPDATE statement triggers with transition tables and an empty body
--   notify    AFTER INSERT/UPDATE statement triggers that only call pg_notify (what the
--             generated functions do after their INSERT)
--   bump      only the BEFORE UPDATE row trigger that bumps cqrs_revision (pgcqrs's)
--   min       the outbox INSERT with key, revision and timestamp only: no JSON built
--   nocheck   the same INSERT into a copy of cqrs.outbox without its CHECK constraint
--   nonotify  pgcqrs capture exactly as generated, minus the (throttled) pg_notify call
--   notifyall pgcqrs capture as generated, but notifying at every statement (no throttle),
--             as pgcqrs did before its NOTIFY throttle
--   onerow    the generated INSERT trigger's 1-row INSERT alone: no row-count test, no second
--             INSERT, no NOTIFY (right for 1-row statements only)
-- and two other designs, INSERT only, for comparison:
--   agg       one outbox row per statement holding the JSON array of its events (lz4)
--   keys      one outbox row per statement holding the array of its primary keys only
--   rowagg    one outbox row per statement holding json_agg of the captured columns as a ROW
--             (no keys, no timestamp formatting: what an agent would then reformat)
--   rowtext   one outbox row per statement holding the captured columns' ROW texts (text[])
--   colarrays one row per statement in a per-table outbox with one typed array per captured
--             column (array_agg of each column: values stay binary, no output function runs)
-- and the batched capture pgcqrs generates since migration 0003, as probes of its parts:
--   batch     as generated before the 16 MB cut, the 1-row path and the one-condition NOTIFY
--             throttle (and without NOTIFY): the rows' column texts in chunks of 1000, fixed
--             TimeZone/DateStyle
--   batchnw   without the row_number() window that cuts the chunks
--   batchns   without the SET clauses
CREATE TABLE bench.t_none (LIKE bench.t_plain INCLUDING ALL);
CREATE TABLE bench.t_notify (LIKE bench.t_plain INCLUDING ALL);
CREATE TABLE bench.t_bump (LIKE bench.t_plain INCLUDING ALL);
CREATE TABLE bench.t_min (LIKE bench.t_plain INCLUDING ALL);
CREATE TABLE bench.t_nocheck (LIKE bench.t_plain INCLUDING ALL);
CREATE TABLE bench.outbox_nocheck
  (LIKE cqrs.outbox INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING INDEXES);
CREATE TABLE bench.t_nonotify (LIKE bench.t_plain INCLUDING ALL);
CREATE TABLE bench.t_notifyall (LIKE bench.t_plain INCLUDING ALL);
CREATE TABLE bench.t_onerow (LIKE bench.t_plain INCLUDING ALL);
CREATE TABLE bench.t_agg (LIKE bench.t_plain INCLUDING ALL);
CREATE TABLE bench.t_keys (LIKE bench.t_plain INCLUDING ALL);
CREATE TABLE bench.outbox_agg (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  cqrs_id    text NOT NULL,
  events     json NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE bench.outbox_keys (LIKE bench.outbox_agg INCLUDING ALL);
CREATE TABLE bench.t_rowagg (LIKE bench.t_plain INCLUDING ALL);
CREATE TABLE bench.t_rowtext (LIKE bench.t_plain INCLUDING ALL);
CREATE TABLE bench.outbox_rowagg (LIKE bench.outbox_agg INCLUDING ALL);
CREATE TABLE bench.outbox_rowtext (LIKE bench.outbox_agg INCLUDING ALL);
CREATE TABLE bench.t_colarrays (LIKE bench.t_plain INCLUDING ALL);
CREATE TABLE bench.outbox_colarrays (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  correlation_id text,
  id_a           bigint[] NOT NULL,
  revision_a     integer[] NOT NULL,
  updated_a      timestamptz[] NOT NULL,
  name_a         text[],
  price_a        numeric[],
  qty_a          integer[],
  created_at_a   timestamptz[],
  note_a         text[]
);
ALTER TABLE bench.outbox_rowtext DROP COLUMN events, ADD COLUMN events text[] NOT NULL;
ALTER TABLE bench.outbox_keys DROP COLUMN events, ADD COLUMN pks bigint[] NOT NULL;
DO $$
BEGIN
  ALTER TABLE bench.outbox_agg ALTER COLUMN events SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  NULL;  -- a server built without lz4 keeps pglz
END $$;

CREATE FUNCTION bench.probe_none() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RETURN NULL;
END $$;

CREATE FUNCTION bench.probe_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('pgcqrs_outbox', '');
  RETURN NULL;
END $$;

CREATE FUNCTION bench.probe_min() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO cqrs.outbox (cqrs_id, signal, instance_pk, revision, updated)
  SELECT 'probe_min', 'SAVE', to_json(n.id), n.cqrs_revision, n.cqrs_updated FROM cqrs_new n;
  RETURN NULL;
END $$;

CREATE FUNCTION bench.probe_nocheck() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO bench.outbox_nocheck (cqrs_id, signal, instance_pk, revision, updated)
  SELECT 'probe_min', 'SAVE', to_json(n.id), n.cqrs_revision, n.cqrs_updated FROM cqrs_new n;
  RETURN NULL;
END $$;

CREATE FUNCTION bench.probe_agg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO bench.outbox_agg (cqrs_id, events)
  SELECT 'probe_agg', json_agg(json_build_object('id', n.id, 'cqrs_revision', n.cqrs_revision,
           'cqrs_updated', cqrs.django_ts(n.cqrs_updated), 'name', n.name, 'price', n.price,
           'qty', n.qty, 'created_at', cqrs.django_ts(n.created_at), 'note', n.note))
  FROM cqrs_new n;
  RETURN NULL;
END $$;

CREATE FUNCTION bench.probe_rowagg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO bench.outbox_rowagg (cqrs_id, events)
  SELECT 'probe_rowagg', json_agg(ROW(n.id, n.cqrs_revision, n.cqrs_updated, n.name, n.price,
                                      n.qty, n.created_at, n.note))
  FROM cqrs_new n;
  RETURN NULL;
END $$;

CREATE FUNCTION bench.probe_rowtext() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO bench.outbox_rowtext (cqrs_id, events)
  SELECT 'probe_rowtext', array_agg(ROW(n.id, n.cqrs_revision, n.cqrs_updated, n.name, n.price,
                                        n.qty, n.created_at, n.note)::text)
  FROM cqrs_new n;
  RETURN NULL;
END $$;

CREATE FUNCTION bench.probe_colarrays() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO bench.outbox_colarrays (correlation_id, id_a, revision_a, updated_a, name_a,
                                      price_a, qty_a, created_at_a, note_a)
  SELECT cqrs.correlation_id(), array_agg(n.id), array_agg(n.cqrs_revision),
         array_agg(n.cqrs_updated), array_agg(n.name), array_agg(n.price), array_agg(n.qty),
         array_agg(n.created_at), array_agg(n.note)
  FROM cqrs_new n;
  RETURN NULL;
END $$;

CREATE FUNCTION bench.probe_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO bench.outbox_keys (cqrs_id, pks) SELECT 'probe_keys', array_agg(n.id) FROM cqrs_new n;
  RETURN NULL;
END $$;

-- the generated functions, renamed: without their pg_notify block (nonotify), and notifying at
-- every statement (notifyall)
DO $$
DECLARE
  what text;
  def text;
  plain text;
BEGIN
  FOREACH what IN ARRAY ARRAY['insert', 'update'] LOOP
    def := pg_get_functiondef(format('cqrs.%I()', 'bench_capture__' || what)::regprocedure);
    plain := regexp_replace(def, 'IF FOUND AND .*?END IF;', '', 'g');
    plain := replace(plain, 'cqrs.bench_capture__' || what || '()', 'bench.probe_nonotify_' || what || '()');
    IF plain LIKE '%pg_notify%' THEN
      RAISE EXCEPTION 'capture_probe.sql: could not strip pg_notify from %', def;
    END IF;
    EXECUTE plain;
    plain := regexp_replace(def, 'IF FOUND AND .*? THEN', 'IF FOUND THEN', 'g');
    plain := replace(plain, 'cqrs.bench_capture__' || what || '()', 'bench.probe_notifyall_' || what || '()');
    IF plain NOT LIKE '%IF FOUND THEN%' THEN
      RAISE EXCEPTION 'capture_probe.sql: could not find the notify throttle in %', def;
    END IF;
    EXECUTE plain;
  END LOOP;
  def := pg_get_functiondef('cqrs.bench_capture__insert()'::regprocedure);
  plain := regexp_replace(def, ' WHERE NOT EXISTS \(SELECT FROM cqrs_new OFFSET 1\);.*RETURN NULL;',
                          '; RETURN NULL;');
  plain := replace(plain, 'cqrs.bench_capture__insert()', 'bench.probe_onerow()');
  IF plain LIKE '%pg_notify%' OR plain LIKE '%OFFSET 1%' THEN
    RAISE EXCEPTION 'capture_probe.sql: could not cut the 1-row INSERT out of %', def;
  END IF;
  EXECUTE plain;
END $$;

CREATE TRIGGER probe AFTER INSERT ON bench.t_onerow
  REFERENCING NEW TABLE AS cqrs_new FOR EACH STATEMENT EXECUTE FUNCTION bench.probe_onerow();

CREATE TRIGGER probe AFTER INSERT ON bench.t_none
  REFERENCING NEW TABLE AS cqrs_new FOR EACH STATEMENT EXECUTE FUNCTION bench.probe_none();
CREATE TRIGGER probe_u AFTER UPDATE ON bench.t_none
  REFERENCING OLD TABLE AS cqrs_old NEW TABLE AS cqrs_new
  FOR EACH STATEMENT EXECUTE FUNCTION bench.probe_none();

CREATE TRIGGER probe AFTER INSERT ON bench.t_notify
  FOR EACH STATEMENT EXECUTE FUNCTION bench.probe_notify();
CREATE TRIGGER probe_u AFTER UPDATE ON bench.t_notify
  FOR EACH STATEMENT EXECUTE FUNCTION bench.probe_notify();

CREATE TRIGGER probe AFTER INSERT ON bench.t_min
  REFERENCING NEW TABLE AS cqrs_new FOR EACH STATEMENT EXECUTE FUNCTION bench.probe_min();

CREATE TRIGGER probe AFTER INSERT ON bench.t_nocheck
  REFERENCING NEW TABLE AS cqrs_new FOR EACH STATEMENT EXECUTE FUNCTION bench.probe_nocheck();

CREATE TRIGGER probe AFTER INSERT ON bench.t_agg
  REFERENCING NEW TABLE AS cqrs_new FOR EACH STATEMENT EXECUTE FUNCTION bench.probe_agg();

CREATE TRIGGER probe AFTER INSERT ON bench.t_rowagg
  REFERENCING NEW TABLE AS cqrs_new FOR EACH STATEMENT EXECUTE FUNCTION bench.probe_rowagg();

CREATE TRIGGER probe AFTER INSERT ON bench.t_rowtext
  REFERENCING NEW TABLE AS cqrs_new FOR EACH STATEMENT EXECUTE FUNCTION bench.probe_rowtext();

CREATE TRIGGER probe AFTER INSERT ON bench.t_colarrays
  REFERENCING NEW TABLE AS cqrs_new FOR EACH STATEMENT EXECUTE FUNCTION bench.probe_colarrays();

CREATE TRIGGER probe AFTER INSERT ON bench.t_keys
  REFERENCING NEW TABLE AS cqrs_new FOR EACH STATEMENT EXECUTE FUNCTION bench.probe_keys();

CREATE TRIGGER zz_cqrs_bump BEFORE UPDATE ON bench.t_bump
  FOR EACH ROW EXECUTE FUNCTION cqrs.bench_capture__bump();

CREATE TRIGGER zz_cqrs_bump BEFORE UPDATE ON bench.t_nonotify
  FOR EACH ROW EXECUTE FUNCTION cqrs.bench_capture__bump();
CREATE TRIGGER probe AFTER INSERT ON bench.t_nonotify
  REFERENCING NEW TABLE AS cqrs_new FOR EACH STATEMENT
  EXECUTE FUNCTION bench.probe_nonotify_insert();
CREATE TRIGGER probe_u AFTER UPDATE ON bench.t_nonotify
  REFERENCING NEW TABLE AS cqrs_new FOR EACH STATEMENT
  EXECUTE FUNCTION bench.probe_nonotify_update();

CREATE TRIGGER zz_cqrs_bump BEFORE UPDATE ON bench.t_notifyall
  FOR EACH ROW EXECUTE FUNCTION cqrs.bench_capture__bump();
CREATE TRIGGER probe AFTER INSERT ON bench.t_notifyall
  REFERENCING NEW TABLE AS cqrs_new FOR EACH STATEMENT
  EXECUTE FUNCTION bench.probe_notifyall_insert();
CREATE TRIGGER probe_u AFTER UPDATE ON bench.t_notifyall
  REFERENCING NEW TABLE AS cqrs_new FOR EACH STATEMENT
  EXECUTE FUNCTION bench.probe_notifyall_update();

-- The batched capture (one outbox row per statement with each row's column texts, formatted by
-- the agent), as probes of its parts: `batch` as generated before the 16 MB cut (chunks of at
-- most 1000 rows, text output in fixed settings), `batchnw` without the chunking window,
-- `batchns` without the SET clauses.
CREATE TABLE bench.outbox_batch (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  cqrs_id        text NOT NULL,
  signal         text NOT NULL,
  batch          text[],
  batch_layout   text[],
  events         integer NOT NULL DEFAULT 1,
  correlation_id text,
  created_at     timestamptz NOT NULL DEFAULT now()
);
DO $do$
DECLARE
  v record;
BEGIN
  FOR v IN SELECT * FROM (VALUES
      ('batch', 'SET TimeZone = ''UTC'' SET DateStyle = ''ISO, YMD''', true),
      ('batchnw', 'SET TimeZone = ''UTC'' SET DateStyle = ''ISO, YMD''', false),
      ('batchns', '', true)) AS t(name, settings, windowed) LOOP
    EXECUTE format('CREATE TABLE bench.%I (LIKE bench.t_plain INCLUDING ALL)', 't_' || v.name);
    EXECUTE format($f$
CREATE FUNCTION bench.%I() RETURNS trigger LANGUAGE plpgsql %s AS $body$
DECLARE corr text := cqrs.correlation_id();
BEGIN
  INSERT INTO bench.outbox_batch (cqrs_id, signal, batch, batch_layout, events, correlation_id)
  SELECT 'probe_batch', 'SAVE', array_agg(ARRAY[n.id::text, n.cqrs_revision::text,
           n.cqrs_updated::text, n.name, n.price::text, n.qty::text, n.created_at::text, n.note]),
         '{n:id,n:cqrs_revision,T:cqrs_updated,s:name,n:price,n:qty,T:created_at,s:note}',
         count(*), corr
  %s;
  RETURN NULL;
END $body$$f$, 'probe_' || v.name, v.settings,
      CASE WHEN v.windowed
        THEN 'FROM (SELECT n.*, row_number() OVER () AS cqrs__rn FROM cqrs_new n) n'
             ' GROUP BY (n.cqrs__rn - 1) / 1000'
        ELSE 'FROM cqrs_new n HAVING count(*) > 0' END);
    EXECUTE format('CREATE TRIGGER probe AFTER INSERT ON bench.%I REFERENCING NEW TABLE AS cqrs_new'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION bench.%I()', 't_' || v.name,
                   'probe_' || v.name);
  END LOOP;
END $do$;
