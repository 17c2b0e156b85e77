-- pgcqrs master schema, version 5: outbox rows the agent cannot publish are set aside.
--
-- A row the agent cannot turn into a message (a batch whose layout is gone, a value the JSON
-- codec refuses, a signal it does not know: none that the generated triggers write) used to
-- stop publishing for the whole database: the agent failed on it, reconnected and read it
-- again, forever. It now moves such a row here, with the reason, in one transaction, and goes
-- on with the rows after it (docs/master.md, "Rows that cannot be published"). Nothing is
-- dropped: an operator fixes the cause and moves the row back into cqrs.outbox.
--
-- The columns are cqrs.outbox's, in its order (the agent inserts `DELETE ... RETURNING *`),
-- then the reason and the time. A migration that adds a column to cqrs.outbox adds it here.
CREATE TABLE cqrs.outbox_failed (LIKE cqrs.outbox);
ALTER TABLE cqrs.outbox_failed
  ADD PRIMARY KEY (id),
  ADD COLUMN error     text        NOT NULL,
  ADD COLUMN failed_at timestamptz NOT NULL DEFAULT now();
