// The master's stage of the deleted-rows pipeline (cqrs_deleted_diff_master): which of the
// replica's primary keys the master table no longer has.
//
//   stdin   `<cqrs_id>,<time>` then JSON arrays of replica pks (deleted-diff-replica)
//   stdout  line 1 echoed, then per input line the JSON array of pks the master lacks
//   stderr  `PK to delete: [..]` per such line (Python's list repr, as django-cqrs)
// The line format is common/resync_lines.hpp's.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

#include "common/config.hpp"
#include "common/pg/pqxx.hpp"

namespace pgcqrs::master {

// ---- deleted-diff-master ------------------------------------------------------------------

struct DeletedDiffMasterReport {
  std::uint64_t lines = 0;      // pk lines read (line 1 and blank lines not counted)
  std::uint64_t checked = 0;    // primary keys in those lines
  std::uint64_t missing = 0;    // of them, not in the master table
  std::uint64_t bad_lines = 0;  // lines that were not a pk array or a value the key refuses
  bool empty_input = false;     // not even line 1
};

// Streams `in` to `out` as it arrives: line 1 echoed (trimmed); its cqrs_id must be a
// [[master.model]] (else CommandError `Wrong CQRS ID: X!`). For each further line one
// set-based query (an anti-join of the line's keys against the table, every row of the
// table counted whatever the model's filter says, as django-cqrs's Model.objects) gives the
// keys the master lacks: printed as a JSON array in input order, plus `PK to delete: [..]` on
// `err`; nothing when all exist. A malformed line or a key the column's type refuses (`"abc"`
// for an integer key) is reported on `err` as `line N: skipped: <why>`, and the next line is
// processed. Blank lines are skipped. `out` is flushed after every line.
DeletedDiffMasterReport deleted_diff_master(pqxx::connection& conn, const MasterConfig& config,
                                            std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace pgcqrs::master
