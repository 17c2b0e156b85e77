// cqrs_bulk_load: dump-file lines applied to a replica table with the consumer's revision rules.
#pragma once

#include <cstdint>
#include <cstdio>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.hpp"
#include "common/pg/pqxx.hpp"
#include "replica/batch.hpp"

namespace pgcqrs::replica {

struct LoadOptions {
  int batch = 10000;   // lines per transaction (--batch)
  bool clear = false;  // delete every row of the model's table first (--clear)
  // Batches whose keys are new to the table go in with COPY straight into it (see
  // load_lines()); false: every batch takes the guarded upsert (tests compare the two).
  bool copy = true;
};

// The column types whose COPY text input, as copy_text() writes it, is what json_to_record gives
// the same column from the JSON value (plain scalar types, json and jsonb; not arrays,
// composites, enums or domains). True when every column of `target` has one.
bool copy_compatible(const Target& target);

// Appends one COPY text-format line (tab-separated, \N for NULL, backslash escapes, '\n' at
// the end) of `row`'s values: JSON strings verbatim, other scalars and objects/arrays as their
// JSON text (json::dump_to), a string into a json/jsonb column quoted as json_to_record does.
void copy_text(std::string& out, const Target& target, const Row& row);

// django-cqrs's messages on stderr (without the newline print() adds).
std::string file_missing_message(const std::string& name);  // File X doesn't exist!
std::string file_empty_message(const std::string& name);    // File X is empty!
std::string wrong_cqrs_id_message(std::string_view id);     // Wrong CQRS ID: X!
std::string cant_parse_message(std::uint64_t line);         // Dump file can't be parsed: line L!
std::string cant_save_message(std::uint64_t line);          // Instance can't be saved: line L!
std::string unexpected_message(std::uint64_t line, std::string_view cause);  // Unexpected error:
std::string loaded_message(std::uint64_t loaded);  // Done!\nN instance(s) loaded.
inline constexpr std::string_view kDeleteFailed = "Delete operation fails!";

// Python's str.strip() for the whitespace a text line can carry (space, \t, \n, \r, \v, \f).
std::string_view strip(std::string_view s) noexcept;

// The value of --clear: true/false, 1/0, yes/no, on/off, t/f, y/n (any case); nullopt for
// anything else. A bare --clear means true (the command passes "true").
std::optional<bool> parse_bool(std::string_view text) noexcept;

// One data line of a dump, ready to apply or refused with django-cqrs's message.
struct PreparedLine {
  std::optional<Row> row;  // set when the line maps to a row
  std::string message;     // else: cant_parse_message() or cant_save_message()
  std::string reason;      // why (for logs): the parser's or the mapper's error
};
// Parses line `line_number` of a dump (stripped first) as a SAVE of `target`: a JSON object
// (not JSON, or JSON followed by more text: "can't be parsed") that map_event() accepts (any
// other JSON, no primary key, cqrs_revision not an integer, no cqrs_updated: "can't be
// saved"). The row's delivery is its line number.
PreparedLine prepare_line(const Target& target, std::string_view line, std::uint64_t line_number);

// Rows with the same columns as COPY text-format lines.
struct CopyChunk {
  std::vector<std::size_t> columns;
  std::string data;
};

class FastLineMapper;

// The lines of one transaction, parsed and mapped (load_lines() reads them ahead of the server).
struct LoadBatch {
  Plan plan;  // newest row per key (Batch::newest_per_row())
  std::vector<std::pair<std::uint64_t, std::string>> messages;  // (line, message)
  std::uint64_t first = 0;                                      // line number of lines[0]
  std::vector<CopyChunk> copy;  // the plan's rows as COPY text, when asked for
  // Lines the fast path took, by line number - first (others empty): their rows in `plan` only
  // have signal, pk_text, revision, columns and delivery until materialize() maps them fully.
  std::vector<std::string> lazy_lines;
  bool lazy = false;
};

// Maps `lines` (line numbers first, first + 1, ...) as prepare_line() does, keeps the newest row
// per key and, with `copy`, writes the COPY text of the plan's rows (copy_text()). With `fast`,
// lines it takes skip the JSON DOM (their COPY text is byte for byte the same) and their rows
// are lazy (see LoadBatch::lazy_lines); the others take prepare_line().
LoadBatch prepare_batch(const Target& target, const FastLineMapper* fast,
                        std::vector<std::string> lines, std::uint64_t first, bool copy);

// Makes the lazy rows of `batch` full rows (prepare_line() of their line), for the guarded
// upsert. Throws std::logic_error if prepare_line() disagrees with the fast path (a bug).
void materialize(const Target& target, LoadBatch& batch);

struct LoadCounts {
  std::uint64_t loaded = 0;  // lines applied or skipped by the revision rules (django counts both)
  std::uint64_t lines = 0;   // data lines read
  std::uint64_t inserted = 0;
  std::uint64_t updated = 0;
  std::uint64_t skipped = 0;  // older or equal revision, tombstone, repeated key in a batch
};

// Reads line 1 of `in` (stripped): the cqrs_id. Throws CommandError file_empty_message(name)
// at end of file or on a blank line.
std::string read_cqrs_id(std::istream& in, const std::string& name);

// The replica model `cqrs_id` of `config` with its table from the catalog (load_targets() of
// that model alone). Throws CommandError wrong_cqrs_id_message() for an unknown id, ConfigError
// when its table does not fit.
Target load_target(pqxx::connection& conn, const ReplicaConfig& config, const std::string& cqrs_id);

// Deletes every row of the target's table in one transaction. Throws CommandError
// "Delete operation fails!" (with the server's reason after it) when the database refuses.
void clear_table(pqxx::connection& conn, const Target& target);

// Applies the data lines of `in` (line 1 already read) to `target`, `options.batch` lines per
// transaction, each batch set-based: newest revision per key within the batch, then, when the
// table was empty at the start, has no user trigger, copy_compatible() holds and the cqrs_id has
// no tombstone (checked under LOCK ... IN SHARE ROW EXCLUSIVE MODE, so no concurrent writer),
// COPY of the batch's rows straight into the table inside a savepoint (each row is an insert
// of a new key: what the guarded upsert would do); on any SQL error there (a key already
// stored, a value a column refuses) back to the savepoint and the
// consumer's guarded upsert (apply_isolating(): a SAVE with a revision not newer than the
// stored row or its tombstone is skipped; a row the column types refuse fails alone). Writes
// one django-cqrs message per refused line to `err`, in line order within a batch; with a
// terminal on `err`, a progress line. Errors that are not about one line's data (connection
// lost, permissions) throw with the line range of the batch, earlier batches stay committed.
LoadCounts load_lines(pqxx::connection& conn, const Target& target, std::istream& in,
                      const LoadOptions& options, std::FILE* err = stderr);

}  // namespace pgcqrs::replica
