-- Consumer benchmark (integration_tests/bench_consume.sh): the replica table, the event bodies
-- and the set-based SQL ceiling.
CREATE TABLE product (
  id            integer PRIMARY KEY,
  name          text NOT NULL,
  price         numeric(12,2) NOT NULL,
  in_stock      boolean NOT NULL,
  released_at   timestamptz,
  attrs         jsonb NOT NULL,
  cqrs_revision integer NOT NULL,
  cqrs_updated  timestamptz NOT NULL
);

-- What each row must hold after the events are applied.
CREATE VIEW bench_expected AS
  SELECT i AS id, 'product ' || i AS name, (i % 100000) / 100.0 AS price, i % 7 AS cqrs_revision
  FROM generate_series(1, 2000000) AS i;

-- n SAVE bodies as a django-cqrs master publishes them, one row each, revision i % 7.
CREATE FUNCTION bench_bodies(n integer) RETURNS TABLE (body text) LANGUAGE sql AS $$
  SELECT json_build_object(
           'signal_type', 'SAVE', 'cqrs_id', 'product',
           'instance_data', json_build_object(
             'id', i, 'cqrs_revision', i % 7,
             'cqrs_updated', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00:00',
             'name', 'product ' || i, 'price', ((i % 100000) / 100.0)::numeric(12,2),
             'in_stock', i % 2 = 0, 'released_at', '2024-05-01 12:00:00+00:00',
             'attrs', json_build_object('pages', i % 900, 'tags', json_build_array('a', 'b'))),
           'previous_data', NULL, 'instance_pk', i, 'correlation_id', NULL, 'retries', 0,
           'expires', '2099-01-01T00:00:00+00:00', 'meta', '{}'::json)::text
  FROM generate_series(1, n) AS i
$$;

-- The ceiling without a broker: the same rows, upserted 500 per statement and transaction with
-- the consumer's revision guard, reading the bodies server-side (filled by the benchmark first).
CREATE TABLE bench_body_store (n integer PRIMARY KEY, body jsonb NOT NULL);
CREATE PROCEDURE bench_sql_apply(batch integer) LANGUAGE plpgsql AS $$
DECLARE
  lo integer := 1;
  total integer;
BEGIN
  SELECT max(n) INTO total FROM bench_body_store;
  WHILE lo <= total LOOP
    INSERT INTO product AS t
      SELECT r.* FROM jsonb_to_recordset(
        (SELECT jsonb_agg(body -> 'instance_data') FROM bench_body_store
         WHERE n BETWEEN lo AND lo + batch - 1))
        AS r(id integer, name text, price numeric(12,2), in_stock boolean, released_at timestamptz,
             attrs jsonb, cqrs_revision integer, cqrs_updated timestamptz)
    ON CONFLICT (id) DO UPDATE SET
      name = EXCLUDED.name, price = EXCLUDED.price, in_stock = EXCLUDED.in_stock,
      released_at = EXCLUDED.released_at, attrs = EXCLUDED.attrs,
      cqrs_revision = EXCLUDED.cqrs_revision, cqrs_updated = EXCLUDED.cqrs_updated
    WHERE t.cqrs_revision < EXCLUDED.cqrs_revision;
    COMMIT;
    lo := lo + batch;
  END LOOP;
END $$;
