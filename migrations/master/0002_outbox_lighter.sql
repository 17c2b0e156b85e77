-- pgcqrs master schema, version 2: a cheaper outbox to write and to keep small.

-- The CHECK on `signal` cost every captured statement about 1.6 µs (the executor prepares the
-- constraint expression again for each statement, docs/benchmarks.md §1.3). Only the generated
-- triggers write the outbox, and they write 'SAVE' or 'DELETE' literally; the agent refuses
-- anything else (build_body: `signal_type '…': unknown`).
ALTER TABLE cqrs.outbox DROP CONSTRAINT IF EXISTS outbox_signal_check;

-- Rows are inserted and deleted at the same rate. Vacuum of this small table should never sleep
-- on the cost limit; the agent also runs VACUUM (SKIP_LOCKED) itself while it is busy, because
-- autovacuum visits a database only once per autovacuum_naptime (60 s by default).
ALTER TABLE cqrs.outbox SET (autovacuum_vacuum_cost_delay = 0);
