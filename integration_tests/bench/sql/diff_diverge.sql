-- bench_diff.sh: :missing rows deleted on the replica, :newer rows bumped on the replica (run
-- on the replica); the stale rows are updated on the master (diff_diverge_master.sql).
DELETE FROM bench_item WHERE id IN (SELECT 1000 * g + 1 FROM generate_series(0, :missing - 1) g);
UPDATE bench_item SET cqrs_revision = cqrs_revision + 5, name = 'newer here'
WHERE id IN (SELECT 1000 * g + 2 FROM generate_series(0, :newer - 1) g);
VACUUM ANALYZE bench_item;
