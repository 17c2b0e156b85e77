// Replica side of the diff pipeline: cqrs_diff_replica, the pks whose revision differs here.
#pragma once

#include <cstdint>
#include <cstdio>
#include <istream>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.hpp"
#include "common/json.hpp"

namespace pgcqrs::replica {

// One line of cqrs_diff_master's output: [[pk, revision], ...].
struct MasterPairs {
  std::vector<json::Json> keys;        // numbers or strings, as given
  std::vector<std::string> key_texts;  // their text (a string unquoted): bound as text[]
  std::vector<std::int64_t> revisions;
};

// Parses one pairs line. Throws MessageError with the reason: not JSON, not an array, an
// element that is not a [key, integer revision] pair, a key that is not a number or string.
MasterPairs parse_pairs_line(std::string_view line);

// Line 1 of the replica's output: line 1 of the master's (trimmed) + "," + the queue.
std::string diff_replica_header(std::string_view master_line, std::string_view queue);

struct DiffReplicaReport {
  std::uint64_t lines = 0;      // pairs lines read (after line 1)
  std::uint64_t bad_lines = 0;  // malformed lines, reported on stderr and skipped
  std::uint64_t pairs = 0;
  std::uint64_t differing = 0;  // keys printed
};

// cqrs_diff_replica: reads the master's output from `in` line by line (streaming). Line 1
// selects the [[replica.model]] (cqrs_id = text before the first comma; "Wrong CQRS ID: X!")
// and is echoed with ",<[replica] queue>". For each pairs line, one set-based query (the pairs
// unnested as arrays, joined to the table by its primary key, whatever it is called) finds
// the keys whose replica revision differs: missing rows count as revision -1, a replica row
// newer than the master's also differs. Their JSON array goes to `out`, and
// `PK to resync: {…}` (Python set repr) to `err`; a line with no difference prints nothing.
// A malformed line is reported on `err` as `diff-replica: line <n>: <why>; skipped`.
DiffReplicaReport diff_replica(const Config& config, std::istream& in, std::FILE* out,
                               std::FILE* err);

}  // namespace pgcqrs::replica
