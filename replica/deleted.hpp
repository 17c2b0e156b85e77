// The replica's two stages of the deleted-rows pipeline (cqrs_deleted_diff_replica and
// cqrs_deleted_sync_replica). The lines they read and write are common/resync_lines.hpp's.
//
//   deleted-diff-replica  stdout: `<cqrs_id>,<now>` then one JSON array of pks per batch
//   deleted-diff-master   (master/deleted.hpp) echoes line 1, then the pks the master lacks
//   deleted-sync-replica  deletes those pks here, one statement per line
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

#include "common/config.hpp"
#include "common/pg/pqxx.hpp"

namespace pgcqrs::replica {

// ---- writing a pk line (pure) -----------------------------------------------------------

// Appends one primary key, given as PostgreSQL's text form of the column, to a JSON array
// being built: as a JSON number when `numeric` (integer and numeric keys: `42`, `10.5`; text
// that is no JSON number, such as `NaN`, becomes a string), else as a JSON string written the
// way ujson writes it (`"a\/b"`, `"\u00e9"`). Adds the comma itself.
void append_pk(std::string& array, std::string_view text, bool numeric);

// ---- deleted-diff-replica ---------------------------------------------------------------

struct DeletedDiffOptions {
  std::string cqrs_id;
  std::optional<std::string> filter;  // JSON of Django lookups over the replica's columns
  int batch = 10000;                  // primary keys per line
  bool progress = false;              // --progress (a terminal on stderr shows it anyway)
};

struct DeletedDiffReport {
  std::uint64_t rows = 0;   // primary keys printed
  std::uint64_t lines = 0;  // arrays printed (line 1 not counted)
};

// Prints line 1 `<cqrs_id>,<now>` (now as Python's str(datetime)) and then the primary keys of
// the rows the filter selects, in key order, `batch` per line, to `out` (flushed per line).
// Batches are read by keyset (`pk > last ORDER BY pk LIMIT batch`) inside one REPEATABLE READ,
// READ ONLY transaction: one snapshot, no OFFSET. No row: prints nothing to `out` and
// `No objects found for filter!` to `err`.
// Throws CommandError `Wrong CQRS ID: X!` (no [[replica.model]] with that cqrs_id),
// `Bad filter kwargs!...` (the filter, also a value its column's type refuses), and naming the
// model when it has no table (apply_function) or the table no single-column primary key.
DeletedDiffReport deleted_diff_replica(pqxx::connection& conn, const ReplicaConfig& config,
                                       const DeletedDiffOptions& options, std::ostream& out,
                                       std::ostream& err);

// ---- deleted-sync-replica ---------------------------------------------------------------

struct DeletedSyncReport {
  std::uint64_t lines = 0;      // pk lines read (line 1 and blank lines not counted)
  std::uint64_t requested = 0;  // primary keys in those lines
  std::uint64_t deleted = 0;    // rows deleted
  std::uint64_t bad_lines = 0;  // lines that were not a pk array, or whose DELETE failed
  bool empty_input = false;     // no line 1 at all
};

// Reads deleted-diff-master's output from `in` as it arrives: line 1 names the model (its
// cqrs_id before the first comma; unknown: CommandError `Wrong CQRS ID: X!`), each further
// line is a JSON array of primary keys, deleted with one statement per line in its own
// transaction, without revision checks (django-cqrs: `filter(pk__in=...).delete()`).
// Each deleted row leaves a tombstone in cqrs.tombstone at the row's own cqrs_revision and
// one microsecond after its cqrs_updated (the consumer's DELETE guard: a late SAVE or a
// redelivery with a revision up to that one cannot bring the row back unless it was written
// after the row the replica had, as a row the master created again is; a SYNC can, and
// tombstones are pruned after replica.tombstone_ttl).
// A line that is not a pk array, or whose statement fails (a value the key's type refuses, a
// foreign key), is reported on `err` with its line number and the reason, and the next line
// is processed. Blank lines are skipped. Nothing is written to stdout.
DeletedSyncReport deleted_sync_replica(pqxx::connection& conn, const ReplicaConfig& config,
                                       std::istream& in, std::ostream& err, bool progress = false);

}  // namespace pgcqrs::replica
