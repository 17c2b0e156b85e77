// The master's stage of the deleted-rows pipeline (cqrs_deleted_diff_master): which of the
// replica's primary keys the master table no longer has.
//
//   stdin   `<cqrs_id>,<time>` then JSON arrays of replica pks (deleted-diff-replica)
//   stdout  line 1 echoed, then per input line the JSON array of pks the master lacks
//   stderr  `PK to delete: [..]` per such line (Python's list repr, as django-cqrs)
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.hpp"
#include "common/json.hpp"
#include "common/pg/pqxx.hpp"

namespace pgcqrs::master {

// ---- line format (pure; the replica side has its own copy in replica/deleted.hpp) ---------

// The cqrs_id of line 1: the text before the first comma, white space removed.
std::string header_cqrs_id(std::string_view line);

struct PkLine {
  std::vector<json::Json> pks;  // the elements as given
  std::string error;            // why the line is not a pk array; empty when it is
};
// A JSON array of numbers and strings; never throws (see replica::parse_pk_line).
PkLine parse_pk_line(std::string_view line);

// The elements of `pks` at the given 0-based `positions`, as a compact JSON array in the way
// they were given (`[9,"a"]`): numbers keep their digits, strings are written as ujson does.
std::string json_list(const std::vector<json::Json>& pks,
                      const std::vector<std::size_t>& positions);
// Python's str() of the same list: `[9, 'a']`.
std::string python_list(const std::vector<json::Json>& pks,
                        const std::vector<std::size_t>& positions);

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
