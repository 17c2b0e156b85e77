// bulk-load's fast path: a common dump line straight to its COPY text, without a JSON DOM.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "replica/batch.hpp"

namespace pgcqrs::replica {

// Appends `s` as COPY text-format data: backslash, tab, newline and carriage return escaped.
void copy_escape(std::string& out, std::string_view s);

// Maps dump lines of one target the way prepare_line() + map_event() + copy_text() do, but in
// one pass over the text: json::parse builds a DOM of every value (~20 us a line) that the COPY
// path only writes back out. It takes only lines it can prove the slow path treats the same and
// refuses the rest (false), which then go through prepare_line(): anything that is not a flat
// object of unique keys (no escapes in keys) whose values are scalars, or nested objects/arrays
// already in the canonical form json::dump() writes them (django-cqrs's ujson dumps are); a
// "-0", a number a double cannot hold; no usable primary key, no integer cqrs_revision, no
// cqrs_updated. So messages, counts and loaded values never depend on which path took a line.
// Thread-safe: map() is const and its per-thread state lives in a Scratch.
class FastLineMapper {
 public:
  // `target` must outlive the mapper.
  explicit FastLineMapper(const Target& target);

  // One member value of a line, as text spans into the line.
  enum class Kind : std::uint8_t { kNull, kTrue, kFalse, kNumber, kString, kNested };
  struct Value {
    Kind kind = Kind::kNull;
    bool escaped = false;   // a string with backslash escapes (its text needs decoding)
    std::string_view text;  // a string's raw content between the quotes, else the token/span
  };

  // Per-thread working memory for map(), reused from line to line.
  struct Scratch {
    std::vector<std::uint32_t> seen;  // per known key: the line (epoch) that last had it
    std::uint32_t epoch = 0;
    std::vector<std::string_view> other_keys;   // keys of no role on this line (duplicates)
    std::vector<std::string_view> nested_keys;  // keys of the open nested objects (duplicates)
    std::vector<Value> values;                  // the line's values that have a role
    std::vector<std::size_t> mapped;    // per column: index in `values` a mapped key gives it
    std::vector<std::size_t> unmapped;  // per column: index in `values` of the key named like it
    std::string decoded;
    std::string literal;  // a string value as a JSON literal, for a json/jsonb column
  };

  // Maps one (unstripped) line. True: `row` holds signal SAVE, pk_text, revision and columns
  // (its pk, data and delivery are left alone: the row is lazy, prepare_line() makes the full
  // one when needed) and `copy` has the row's COPY text line appended. False: the line needs the
  // slow path; `row` and `copy` are unchanged.
  bool map(std::string_view line, Row& row, std::string& copy, Scratch& scratch) const;

  // Whether map() may take any line at all (a table target with a primary-key column).
  [[nodiscard]] bool usable() const noexcept { return usable_; }

 private:
  struct Role {
    std::uint32_t id = 0;  // index in Scratch::seen
    std::size_t column = kNone;
    bool mapped = false;  // the key is renamed by the mapping onto `column`
    bool revision = false;
    bool updated = false;
  };
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);

  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };

  const Target& target_;
  bool usable_ = false;
  std::size_t key_column_ = kNone;
  std::vector<bool> json_column_;
  std::unordered_map<std::string, Role, Hash, std::equal_to<>> roles_;
};

}  // namespace pgcqrs::replica
