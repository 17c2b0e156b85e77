-- Between runs of bench_deleted.sh: puts the rows the pipeline deleted back on the replica and
-- forgets their tombstones, so that every run starts from the same state.
INSERT INTO bench_item
SELECT i, 'item ' || i || ' ' || md5(i::text), (i % 100000) / 100.0,
       timestamptz '2026-01-01 00:00:00+00' + make_interval(secs => i),
       jsonb_build_object('n', i, 'tag', 't' || (i % 97)), 1, now()
FROM generate_series(:gap, :rows, :gap) AS i
ON CONFLICT (id) DO NOTHING;
DELETE FROM cqrs.tombstone WHERE cqrs_id = 'item';
VACUUM (ANALYZE) bench_item;
