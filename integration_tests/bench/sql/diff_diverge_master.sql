-- bench_diff.sh: :stale rows changed on the master after the replica was copied (revision 1 on
-- the master, 0 on the replica).
UPDATE bench_item SET price = price + 1
WHERE id IN (SELECT 1000 * g + 3 FROM generate_series(0, :stale - 1) g);
DELETE FROM cqrs.outbox;
VACUUM ANALYZE bench_item;
