// Master side of the diff pipeline: cqrs_diff_master's [pk, revision] lines, cqrs_diff_sync.
#pragma once

#include <cstdint>
#include <cstdio>
#include <istream>
#include <optional>
#include <string>
#include <string_view>

#include "common/config.hpp"
#include "common/json.hpp"
#include "common/timestamp.hpp"

namespace pgcqrs::master {

// Line 1 of cqrs_diff_master: `<cqrs_id>,<str(now)>`, e.g.
// `author,2026-11-22 02:05:33.554550+00:00` (Python's str() of an aware datetime).
std::string diff_header(std::string_view cqrs_id, Timestamp now);

struct DiffMasterOptions {
  std::string cqrs_id;
  std::optional<std::string> filter;  // JSON of Django lookups; nullopt = every row
  int batch = 10000;
};

struct DiffMasterReport {
  bool found = false;       // false: "No objects found for filter!" on stderr, nothing on stdout
  std::uint64_t rows = 0;   // rows read
  std::uint64_t pairs = 0;  // [pk, revision] pairs written (rows the model's filter keeps)
  std::uint64_t lines = 0;  // batch lines written
};

// cqrs_diff_master: writes diff_header() then, per keyset batch of `batch` rows in primary-key
// order, one JSON array of [pk, cqrs_revision] pairs of the rows the model's `filter`
// (is_sync_instance) keeps (`[]` when it keeps none). All batches are read in one
// REPEATABLE READ snapshot: the pairs are the table at one moment, the moment of line 1.
// Throws CommandError "Wrong CQRS ID: <id>!" and "Bad filter kwargs! ...".
DiffMasterReport diff_master(const Config& config, const DiffMasterOptions& options, std::FILE* out,
                             std::FILE* err);

// Line 1 of cqrs_diff_replica's output as cqrs_diff_sync reads it: the cqrs_id is the first
// comma-separated field, the queue the last; django-cqrs's `None` means broadcast (nullopt).
struct DiffSyncTarget {
  std::string cqrs_id;
  std::optional<std::string> queue;
};
// Throws CommandError naming the line when it has fewer than 3 fields (e.g. diff-master's
// output given straight to diff-sync).
DiffSyncTarget parse_diff_sync_header(std::string_view line);

// One further line of cqrs_diff_replica's output: a JSON array of primary keys (numbers or
// strings). Throws MessageError with the reason (not JSON, not an array, an element that is
// not a number or string).
json::Json parse_key_line(std::string_view line);

struct DiffSyncOptions {
  int batch = 10000;
  bool progress = false;
};

struct DiffSyncReport {
  std::uint64_t lines = 0;      // key lines read (after line 1)
  std::uint64_t bad_lines = 0;  // malformed lines, reported on stderr and skipped
  std::uint64_t synced = 0;
  std::uint64_t processed = 0;
  std::uint64_t failed = 0;  // SYNC events nacked, returned or not confirmed
};

// cqrs_diff_sync: reads `in` line by line (streaming) and, for each key line, runs cqrs_sync
// of those primary keys to the queue of line 1, printing its django-cqrs report on `out`.
// Primary keys need not be named `id`. A malformed line is reported on `err` as
// `diff-sync: line <n>: <why>; skipped` and the rest goes on. Throws CommandError for an empty
// input, a bad line 1, "Wrong CQRS ID: <id>!".
DiffSyncReport diff_sync(const Config& config, std::istream& in, const DiffSyncOptions& options,
                         std::FILE* out, std::FILE* err);

}  // namespace pgcqrs::master
