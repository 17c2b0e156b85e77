// Applying one cqrs_id's rows to the replica: set-based, revision-guarded upserts and deletes.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/pg/pqxx.hpp"
#include "replica/batch.hpp"

namespace pgcqrs::replica {

// What became of one row (the spec's "Replica decisions"; N incoming, E stored revision).
enum class Outcome {
  kInserted,           // SAVE/SYNC: no row with that key: inserted (any N)
  kUpdated,            // SAVE: N > E; SYNC: any N (see RowResult::downgrade)
  kDeleted,            // DELETE: row removed (E <= N); tombstone recorded
  kDeleteMissing,      // DELETE: no row; tombstone recorded (a late SAVE stays out)
  kSkippedOlder,       // SAVE: N < E; DELETE: N < E (the row is newer; tombstone recorded)
  kSkippedDuplicate,   // SAVE: N == E
  kSkippedDeleted,     // SAVE: a tombstone with revision >= N (and a time after the SAVE's
                       // cqrs_updated, when it has one): the row stays deleted
  kSkippedSuperseded,  // another row of the same call had the same key value and won
  kCalled,             // apply_function model: the function ran (and did not return false)
  kFailed,             // apply_function returned false; apply_isolating: the row's MessageError
};

// "inserted", "updated", "deleted", "delete_missing", "skipped_older", "skipped_duplicate",
// "skipped_deleted", "skipped_superseded", "called", "failed": metric label values.
std::string_view to_string(Outcome o) noexcept;

struct RowResult {
  Outcome outcome = Outcome::kSkippedSuperseded;
  // The stored row's revision before the statement, as of its snapshot (a concurrent writer
  // may have moved it since: the decision itself is taken on the locked row). nullopt when
  // there was no row, and for apply_function models.
  std::optional<std::int64_t> stored_revision;
  // The key's tombstone revision before the statement, if it had one.
  std::optional<std::int64_t> tombstone_revision;
  // SAVE: its tombstone's time (the latest DELETE's cqrs_updated), when it had one.
  std::optional<Timestamp> tombstone_updated;
  // SAVE: the tombstone's revision was >= N, but the SAVE's cqrs_updated was not before the
  // tombstone's time: the master created the key again, and the SAVE was free to apply (it
  // still met the stored row's revision guard).
  bool recreated = false;
  // SAVE applied with N > E + 1: N - E - 1 revisions never seen (django-cqrs's "Lost or
  // filtered out N CQRS packages" warning). 0 otherwise.
  std::int64_t lost = 0;
  // SYNC applied with N < E (django-cqrs's "CQRS revision downgrade on sync" warning).
  bool downgrade = false;
  std::string error;  // kFailed: why

  // The message changed the replica: inserted, updated, deleted (missing too), called.
  [[nodiscard]] bool applied() const noexcept;
};

struct ApplyResult {
  std::vector<RowResult> rows;  // one per input row, in input order
  std::size_t inserted = 0;
  std::size_t updated = 0;
  std::size_t deleted = 0;  // kDeleted and kDeleteMissing
  std::size_t called = 0;
  std::size_t skipped = 0;  // every kSkipped*
  std::size_t failed = 0;

  void add(const RowResult& r);  // appends and counts
};

struct ApplyOptions {
  // Before writing, take a transaction-level advisory lock per key (pg_advisory_xact_lock on
  // a 32-bit hash of cqrs_id and Row::pk_text, in hash order, released at commit). Without it, two
  // workers applying the same key at the same moment can each miss the other's uncommitted work: a
  // DELETE that finds no row and a SAVE that finds no tombstone both commit, and the deleted row is
  // back. One extra round trip per call; each lock takes a slot of the server's lock table until
  // commit, so batch_size x workers must stay well below max_locks_per_transaction x
  // max_connections (64 x 100 by default). Turn off with a single worker per replica database.
  bool lock_keys = true;
};

// Applies `rows` (one Group of a Plan, or any part of it) to target's table in `txn`, with one
// statement per kind: SAVE rows (one more per distinct column set: a key missing from an
// event leaves that column untouched), SYNC rows, DELETE rows. Values are sent as one JSON
// array parameter and typed by json_to_recordset with the columns' own types, so numeric
// keeps its digits, bigint its 64 bits, and json/jsonb columns take JSON values. Never
// interpolates a value into SQL. The statements are prepared on txn's connection (named
// pgcqrs_apply_<hash of the text>), so each is planned once per connection.
//   SAVE   INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE stored revision < incoming, and
//          not at all when the key has a tombstone with revision >= incoming, unless the
//          tombstone has a time and the SAVE's cqrs_updated (Row::updated) is not before it:
//          a key the master deleted and created again (its revisions start at 0 again). The
//          tombstone stays: it keeps the late SAVEs of the deleted row out of the new one.
//   SYNC   the same without either guard (downgrades allowed, as django-cqrs); it also removes
//          the key's tombstone: a SYNC says the master has the row.
//   DELETE removes the row when stored revision <= incoming (an older DELETE does not remove
//          a newer row; django-cqrs deletes regardless), and records the tombstone with the
//          highest revision and the latest cqrs_updated of the key's DELETEs either way.
// DELETEs run before SAVEs and SYNCs, so that a key the rows delete and then create again
// (Batch::newest_per_row() keeps both rows) ends up created; a key's second SAVE/SYNC row runs
// after its first, in a statement of its own.
// apply_function models: one call of the function per row, in order, in one statement:
// fn(signal text, data jsonb, previous_data jsonb, meta jsonb); a `false` result fails the
// row (kFailed), any other result (void, true, ...) counts as kCalled.
// Rows should have distinct keys, but for the DELETE and the two SAVE/SYNC rows
// Batch::newest_per_row() may keep for a key; key values that are equal only once typed (1 and
// "01", a UUID in upper and lower case) are resolved here like Batch does, the losers reported
// kSkippedSuperseded.
//
// Failures:
//  - One row: the statements run inside a SAVEPOINT. A value the column cannot take (SQL
//    class 22, data exception) or a constraint it breaks (class 23) throws MessageError
//        apply SAVE product pk=7 revision=3 to "reads"."product": column "quantity" value
//        '"abc"': invalid input syntax for type bigint: "abc"
//    (for apply_function models: any permanent SQL error), and `txn` stays usable. Other
//    errors throw as below; the savepoint is rolled back.
//  - More rows: no savepoint (it would cost two round trips per call). An SQL error throws
//    pg::SqlError `apply N rows of <cqrs_id> to <table>: <server message>` with its sqlstate,
//    and `txn` is aborted: redo the batch, or set a SAVEPOINT around the call, or use
//    apply_isolating(). (libpqxx 6.4's pqxx::subtransaction sends its SAVEPOINT only at its
//    first exec(); exec_prepared(), which apply() uses, does not trigger it. Run sub.exec(...)
//    first, or set the savepoint with plain txn.exec("SAVEPOINT ...") as apply() does.)
//  - Connection loss propagates as pqxx::broken_connection (pg::classify() knows it).
ApplyResult apply(pqxx::dbtransaction& txn, const Target& target, std::span<const Row> rows,
                  const ApplyOptions& options = {});

// Takes, in `txn`, the per-key advisory locks apply() takes before it writes rows of `cqrs_id`,
// so that another writer of replica rows (cqrs_deleted_sync_replica) and a concurrent apply of
// the same keys run one after the other. `pk_texts` are the keys as Row::pk_text spells them.
void lock_keys(pqxx::transaction_base& txn, const std::string& cqrs_id,
               const std::vector<std::string>& pk_texts);

// apply() inside a SAVEPOINT; when the rows fail with an error that is about data (the
// MessageError cases above), splits them in halves and retries each half the same way, down
// to single rows, so that only the bad rows fail: they come back kFailed with the
// MessageError's text, every other row applied. Errors not about data throw as from apply(),
// with `txn` still usable (the savepoint is rolled back). Costs two round trips more than
// apply() when nothing fails.
ApplyResult apply_isolating(pqxx::dbtransaction& txn, const Target& target,
                            std::span<const Row> rows, const ApplyOptions& options = {});

// cqrs_bulk_load's SAVE of many rows in one statement per column set: the guards of apply()'s
// SAVE (a stored row is overwritten only by a newer revision; a key whose tombstone revision is
// >= the incoming one stays out unless the row was written after the DELETE), typed the same way
// (json_to_recordset with the columns' types), but no per-row outcome, so no join back to the
// input: linear in the rows where apply()'s report costs more on 10,000-row calls. Rows with equal
// typed keys: the newest revision wins. For table targets and SAVE rows only (std::logic_error
// otherwise). Errors as apply() with more rows: pg::SqlError with the server's sqlstate, `txn`
// aborted (set a SAVEPOINT around it to fall back to apply_isolating() on a data error).
struct BulkSaveResult {
  std::size_t inserted = 0;
  std::size_t updated = 0;
  std::size_t skipped = 0;  // older or equal revision, tombstone, or a key repeated in `rows`
};
BulkSaveResult save_bulk(pqxx::dbtransaction& txn, const Target& target, std::span<const Row> rows);

// Deletes tombstones older than `max_age` (replica.tombstone_ttl). Returns how many.
std::int64_t prune_tombstones(pqxx::transaction_base& txn, std::chrono::seconds max_age);

}  // namespace pgcqrs::replica
