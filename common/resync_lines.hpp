// The line formats of django-cqrs's two resync pipelines, read and written by both sides.
//
// The diff pipeline (cqrs_diff_master | cqrs_diff_replica | cqrs_diff_sync) and the deleted-rows
// pipeline (cqrs_deleted_diff_replica | cqrs_deleted_diff_master | cqrs_deleted_sync_replica)
// pass text lines from one stage to the next (django-cqrs-behaviour.md §4.4, §4.5; wire-format.md
// "Files and pipelines"):
//
//   line 1        `<cqrs_id>,<str(now)>[,<queue>]`, e.g. `author,2024-05-01 12:00:00+00:00`
//   further lines one JSON array per batch, of primary keys (`[1,2,9]`, `["a","b"]`) or, out of
//                 cqrs_diff_master, of [pk, revision] pairs (read by cqrs_diff_replica)
//   stderr        what django-cqrs prints there, in Python's repr: `PK to delete: [9]` (a
//                 list), `PK to resync: {2}` (a set)
//
// Primary keys are numbers or strings, kept as given (an exact number keeps its digits).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.hpp"

namespace pgcqrs::resync {

// ---- reading ------------------------------------------------------------------------------

// `line` without ASCII white space (space, \t, \n, \v, \f, \r: a terminal's \r included) at
// either end; other bytes, UTF-8 spaces included, are kept.
std::string_view trim_line(std::string_view line);

// The cqrs_id of a pipeline's line 1: the text before the first comma, surrounding white space
// removed (`author,2024-05-01 12:00:00+00:00` -> `author`, ` product ,x` -> `product`).
std::string header_cqrs_id(std::string_view line);

// One line of primary keys: a JSON array of numbers (integers or exact numbers) and strings.
struct PkLine {
  std::vector<json::Json> pks;  // the elements as given
  std::string error;            // why the line is not one; empty when it is
};
// Parses `line` (surrounding white space allowed, at most 256 MiB). Never throws: a line that
// is empty, not JSON, not an array, or holds null, a boolean, an object or an array comes back
// with `error`, e.g. `element 2 is null (null): a primary key is a number or a string`.
PkLine parse_pk_line(std::string_view line);

// The text of a primary key as PostgreSQL's input function takes it: a string's content
// (`a/b`), a number's JSON text (`42`, `10.50`).
std::string key_text(const json::Json& key);

// ---- writing: the keys of a line at the given 0-based `positions`, in that order ----------
// (a position past the end throws std::out_of_range)

// As a compact JSON array written as ujson does (django-cqrs's stdout): `[9,"a\/b",10.50]`.
std::string json_list(const std::vector<json::Json>& keys,
                      const std::vector<std::size_t>& positions);

// Python's repr() of a list of the keys (`PK to delete: ...`): `[9, 'a/b', "it's"]`. A string
// as Python 3 quotes it: single quotes unless it has a ' and no ", \\ \n \r \t and \xNN for the
// other control characters, other text (UTF-8 included) as it is. A number as its JSON text.
std::string python_list(const std::vector<json::Json>& keys,
                        const std::vector<std::size_t>& positions);

// Python's repr() of a set of the keys (`PK to resync: ...`), elements as in python_list():
// `{2, 3}`, `{'a', "it's"}`. The elements stay in the order given (Python's would follow their
// hashes); the diff pipeline gives them in input order, as its JSON line on stdout. Callers print
// no set when there is no key (Python would write `set()`; this writes `{}`).
std::string python_set(const std::vector<json::Json>& keys,
                       const std::vector<std::size_t>& positions);

}  // namespace pgcqrs::resync
