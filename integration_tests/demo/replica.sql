-- Sample replica schema of the demo: a read model of the shop's products with author names.
CREATE SCHEMA reads;
CREATE TABLE reads.author (
  id             integer PRIMARY KEY,
  name           text NOT NULL,
  cqrs_revision  integer NOT NULL,
  cqrs_updated   timestamptz NOT NULL
);
CREATE TABLE reads."Product" (
  id             integer PRIMARY KEY,
  title          text NOT NULL,
  price          numeric(12,2) NOT NULL,
  author_id      integer,
  cqrs_revision  integer NOT NULL,
  cqrs_updated   timestamptz NOT NULL
);
