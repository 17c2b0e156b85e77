// JSON codec: a bounded parser that keeps numbers exact, and a ujson-compatible compact writer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace pgcqrs::json {

// Object keys keep their order, so a decoded body re-encodes with django-cqrs's key order.
using Json = nlohmann::ordered_json;

// Numbers that a double cannot hold exactly (any fraction or exponent, and integers beyond
// int64/uint64) are kept as their source text in a `binary` value with this subtype. JSON text
// never produces binary values, so this cannot collide with data. Integers that fit int64 or
// uint64 stay nlohmann integers. Write such values with `dump()` below, never `Json::dump()`.
inline constexpr std::uint64_t kDecimalSubtype = 0xDEC1;

struct ParseLimits {
  std::size_t max_bytes = 16u << 20;
  int max_depth = 64;  // objects and arrays; the outermost one is level 1
};

// Parses exactly one JSON value (surrounding whitespace allowed). Throws MessageError
// `<subject>: <cause>` for input larger than max_bytes, nesting deeper than max_depth, syntax
// errors (truncation, trailing data, invalid UTF-8, lone surrogates) and duplicate object keys,
// naming the 1-based byte position where nlohmann's lexer stopped. The nesting check runs in
// the SAX handler, so hostile depth never reaches the stack.
Json parse(std::string_view text, const ParseLimits& limits = {},
           std::string_view subject = "JSON body");

// Exact numbers.
bool is_decimal(const Json& v) noexcept;
// The source text of an exact number, e.g. "10.50"; empty if `v` is not one.
std::string_view decimal_text(const Json& v) noexcept;
// Makes an exact number from JSON number text; throws MessageError `number 'x': not a JSON
// number` otherwise.
Json make_decimal(std::string_view text);
// Integer, unsigned, floating or exact number.
bool is_number(const Json& v) noexcept;
// Whether `text` is a number in JSON's grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
// (PostgreSQL's IsValidJsonNumber() accepts the same).
bool is_number_text(std::string_view text) noexcept;
// PostgreSQL's escape_json(): `text` as the JSON string literal the server writes for it (json
// output, json_build_object, json_to_record of a string into a json/jsonb column): `"` + text
// with `"`, `\`, \b \f \n \r \t escaped and other control characters as \u00XX + `"`; `/` and
// non-ASCII stay as they are.
void append_pg_json_string(std::string& out, std::string_view text);
// The JSON text of a number as dump() writes it (`42`, `10.50`, `1e-7`); throws MessageError
// for a value that is not a number.
std::string number_text(const Json& v);

// Compact JSON as django-cqrs's ujson.dumps writes it: no spaces, keys in stored order,
// non-ASCII as lowercase `\uXXXX` (astral characters as surrogate pairs), `/` as `\/`, control
// characters as `\uXXXX` except `\b \f \n \r \t`, exact numbers verbatim, doubles in shortest
// round-trip form (`1.0`, `0.0001`, `1e-7`, `1e+16`). Throws MessageError on a string that is
// not valid UTF-8 and on a NaN or infinite double; never emits a non-ASCII byte.
std::string dump(const Json& v);
void dump_to(std::string& out, const Json& v);

// The value as dump() writes it, cut to `max_chars` with "..." appended when longer: for
// quoting a bad value in an error message (ASCII only, safe in logs).
std::string excerpt(const Json& v, std::size_t max_chars = 80);
// The body of a JSON string literal for `s` without the quotes, cut like excerpt(): for quoting
// the content of a string field in an error message.
std::string excerpt_string(std::string_view s, std::size_t max_chars = 80);

// "object", "array", "string", "integer", "number", "boolean" or "null".
std::string_view type_name(const Json& v) noexcept;

}  // namespace pgcqrs::json
