-- pgcqrs replica schema, version 2: the tombstone keeps the DELETE's time, so that a key the
-- master deletes and later creates again comes back on the replica.

-- A new row with a deleted key starts at cqrs_revision 0 (django-cqrs and pgcqrs masters alike),
-- so the revision alone cannot tell a re-created row from a late SAVE of the deleted one. The
-- time can: a DELETE's instance_data.cqrs_updated is the time of the delete; a SAVE of the
-- re-created row was written at or after it, a SAVE of the deleted row before it.
--
-- `updated` is the latest cqrs_updated of the DELETEs of this key (as `revision` is their
-- highest revision). A SAVE whose revision is <= `revision` is still applied when its
-- cqrs_updated is >= `updated`. NULL: written before this column existed, or by a DELETE
-- without cqrs_updated; only the revision rule applies.
ALTER TABLE cqrs.tombstone ADD COLUMN updated timestamptz;
