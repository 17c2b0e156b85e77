-- bench_bulk.sh: :rows rows on the master, ~150-byte lines (before capture is installed).
INSERT INTO bulk_item (id, name, price, at, doc, cqrs_revision, cqrs_updated)
SELECT i,
       'item ' || i || ' ' || md5(i::text),
       (i % 100000) / 100.0 + 0.05,
       '2024-01-01 00:00:00+00'::timestamptz + i * interval '1 second 123 microseconds',
       jsonb_build_object('n', i, 'tag', 't' || (i % 97), 'ok', i % 2 = 0),
       i % 5,
       '2026-01-01 00:00:00+00'::timestamptz + i * interval '7 microseconds'
FROM generate_series(1, :rows) AS i;
VACUUM ANALYZE bulk_item;
