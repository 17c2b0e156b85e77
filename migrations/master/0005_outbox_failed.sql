-- pgcqrs master schema, version 5: outbox rows the agent cannot publish are set aside.
--
-- A row the agent cannot turn into a message (a batch whose layout is gone, a value the JSON
-- codec refuses, a signal it does not know: none that the generated triggers write) used to
-- stop publishing for the whole database: the agent failed on it, reconnected and read it
-- again, forever. It now moves such a row here, with the reason, in one transaction, and goes
-- on with the rows after it (docs/master.md, "Rows that cannot be published"). Nothing is
-- dropped: an operator fixes the cause and moves the row back into cqrs.outbox.
--
-- The columns are cqrs.outbox's, then the reason and the time. The agent names them all when it
-- moves a row (master/outbox.cpp, kPark): a migration that adds a column to cqrs.outbox adds it
-- here and there.
CREATE TABLE cqrs.outbox_failed (LIKE cqrs.outbox);
ALTER TABLE cqrs.outbox_failed
  ADD PRIMARY KEY (id),
  ADD COLUMN error     text        NOT NULL,
  ADD COLUMN failed_at timestamptz NOT NULL DEFAULT now();

-- The agent moves rows here with its own role: a role that may delete from the outbox (an agent
-- that does not own the schema) may move rows here and count them too.
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT DISTINCT grantee FROM information_schema.role_table_grants
           WHERE table_schema = 'cqrs' AND table_name = 'outbox' AND privilege_type = 'DELETE'
             AND grantee <> current_user
  LOOP
    EXECUTE format('GRANT SELECT, INSERT ON cqrs.outbox_failed TO %s',
                   CASE WHEN r.grantee = 'PUBLIC' THEN 'PUBLIC' ELSE quote_ident(r.grantee) END);
  END LOOP;
END $$;
