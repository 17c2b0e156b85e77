-- The C trigger probes (bench/c_trigger/ctrg.c), for BENCH_VARIANTS ctrgh and ctrgi of the
-- capture phase: one outbox row per inserted row, written without executor or plpgsql.
--   ctrgh  a heap tuple only (no index)
--   ctrgi  a heap tuple and a btree entry on a sequence-numbered id, as cqrs.outbox has
-- psql variable `so`: the shared library's absolute path (loaded by a superuser).
CREATE SEQUENCE bench.outbox_c_seq;
CREATE TABLE bench.outbox_h (id bigint NOT NULL, pk bigint, revision integer, created_at timestamptz);
CREATE TABLE bench.outbox_i (LIKE bench.outbox_h);
CREATE INDEX outbox_i_id ON bench.outbox_i (id);
CREATE FUNCTION bench.ctrg() RETURNS trigger LANGUAGE c AS :'so', 'ctrg';
CREATE TABLE bench.t_ctrgh (LIKE bench.t_plain INCLUDING ALL);
CREATE TABLE bench.t_ctrgi (LIKE bench.t_plain INCLUDING ALL);
CREATE TRIGGER c AFTER INSERT ON bench.t_ctrgh
  FOR EACH ROW EXECUTE FUNCTION bench.ctrg('outbox_h');
CREATE TRIGGER c AFTER INSERT ON bench.t_ctrgi
  FOR EACH ROW EXECUTE FUNCTION bench.ctrg('outbox_i', 'outbox_i_id');
