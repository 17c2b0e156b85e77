-- Sample master schema of the demo: a shop that owns authors and products.
CREATE TABLE author (
  id   integer PRIMARY KEY,
  name varchar(200) NOT NULL
);
CREATE TABLE product (
  id           integer PRIMARY KEY,
  name         varchar(200) NOT NULL,
  price        numeric(12,2) NOT NULL,
  in_stock     boolean NOT NULL DEFAULT true,
  released_at  timestamptz,
  sku          uuid NOT NULL,
  attrs        jsonb NOT NULL DEFAULT '{}',
  author       integer REFERENCES author (id)
);
INSERT INTO author VALUES (1, 'Ursula K. Le Guin'), (2, 'Stanisław Lem');
INSERT INTO product VALUES
  (1, 'The Dispossessed', 10.50, true, '1974-05-01 12:00:00+00',
   '0419d87b-d477-44e4-82c4-310f56faa3c7', '{"pages": 387}', 1),
  (2, 'Solaris', 9999999999.99, false, NULL,
   '00000000-0000-4000-8000-000000000000', '{"tags": ["sf", "classic"]}', 2);
