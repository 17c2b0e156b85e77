// cqrs_bulk_dump's client formatting without a server: what json_build_object() and the
// capture's cqrs.django_ts() write for a value's text output, and COPY text rows.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include "common/error.hpp"
#include "master/dump.hpp"
#include "master/outbox.hpp"

using namespace pgcqrs;
using namespace pgcqrs::master;

namespace {

std::string value(ClientKind kind, std::string_view text) {
  std::string out;
  append_client_value(out, kind, text);
  return out;
}

}  // namespace

TEST_CASE("client_kind: the types the client formats, by oid") {
  CHECK(client_kind(23) == ClientKind::kNumber);
  CHECK(client_kind(20) == ClientKind::kNumber);
  CHECK(client_kind(1700) == ClientKind::kNumber);
  CHECK(client_kind(701) == ClientKind::kNumber);
  CHECK(client_kind(16) == ClientKind::kBool);
  CHECK(client_kind(25) == ClientKind::kString);
  CHECK(client_kind(2950) == ClientKind::kString);
  CHECK(client_kind(1082) == ClientKind::kString);
  CHECK(client_kind(3802) == ClientKind::kJson);
  CHECK(client_kind(114) == ClientKind::kJson);
  CHECK(client_kind(1184) == ClientKind::kTimestampTz);
  CHECK(client_kind(1114) == ClientKind::kTimestamp);
  CHECK_FALSE(client_kind(1007).has_value());   // int4[]
  CHECK_FALSE(client_kind(17).has_value());     // bytea
  CHECK_FALSE(client_kind(1186).has_value());   // interval
  CHECK_FALSE(client_kind(16385).has_value());  // enums, composites, domains over domains
}

TEST_CASE("numbers: as is when JSON numbers, quoted otherwise (IsValidJsonNumber)") {
  CHECK(value(ClientKind::kNumber, "42") == "42");
  CHECK(value(ClientKind::kNumber, "-0.0001") == "-0.0001");
  CHECK(value(ClientKind::kNumber, "10.5000") == "10.5000");
  CHECK(value(ClientKind::kNumber, "9007199254740993") == "9007199254740993");
  CHECK(value(ClientKind::kNumber, "1e+300") == "1e+300");
  CHECK(value(ClientKind::kNumber, "-1.5e-07") == "-1.5e-07");
  CHECK(value(ClientKind::kNumber, "-0") == "-0");
  CHECK(value(ClientKind::kNumber, "NaN") == "\"NaN\"");
  CHECK(value(ClientKind::kNumber, "Infinity") == "\"Infinity\"");
  CHECK(value(ClientKind::kNumber, "-Infinity") == "\"-Infinity\"");
  CHECK(value(ClientKind::kNumber, "01") == "\"01\"");
  CHECK(value(ClientKind::kNumber, "1.") == "\"1.\"");
}

TEST_CASE("strings: PostgreSQL's escape_json") {
  CHECK(value(ClientKind::kString, "") == "\"\"");
  CHECK(value(ClientKind::kString, "a/b \"q\" \\ é") == "\"a/b \\\"q\\\" \\\\ é\"");
  CHECK(value(ClientKind::kString, std::string("\b\f\n\r\t\x01\x1f\x7f", 8)) ==
        "\"\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\"");
  CHECK(value(ClientKind::kBool, "t") == "true");
  CHECK(value(ClientKind::kBool, "f") == "false");
  CHECK(value(ClientKind::kJson, "{\"a\": [1, 2]}") == "{\"a\": [1, 2]}");
}

TEST_CASE("timestamps: cqrs.django_ts / django_ts_naive from the ISO text output in UTC") {
  CHECK(value(ClientKind::kTimestampTz, "2024-05-01 06:30:00.123456+00") ==
        "\"2024-05-01 06:30:00.123456+00:00\"");
  CHECK(value(ClientKind::kTimestampTz, "2024-05-01 06:30:00.5+00") ==
        "\"2024-05-01 06:30:00.500000+00:00\"");
  CHECK(value(ClientKind::kTimestampTz, "2024-05-01 06:30:00+00") ==
        "\"2024-05-01 06:30:00+00:00\"");
  CHECK(value(ClientKind::kTimestampTz, "1969-12-31 23:59:59.000001+00") ==
        "\"1969-12-31 23:59:59.000001+00:00\"");
  CHECK(value(ClientKind::kTimestampTz, "0044-03-15 12:00:00+00 BC") ==
        "\"0044-03-15 12:00:00+00:00\"");
  CHECK(value(ClientKind::kTimestampTz, "10000-01-01 00:00:00+00") ==
        "\"10000-01-01 00:00:00+00:00\"");
  CHECK(value(ClientKind::kTimestampTz, "infinity") == "\"infinity\"");
  CHECK(value(ClientKind::kTimestampTz, "-infinity") == "\"-infinity\"");
  CHECK(value(ClientKind::kTimestamp, "2024-05-01 12:00:00") == "\"2024-05-01 12:00:00\"");
  CHECK(value(ClientKind::kTimestamp, "2024-05-01 12:00:00.01") ==
        "\"2024-05-01 12:00:00.010000\"");
  CHECK(value(ClientKind::kTimestamp, "0001-01-01 00:00:00 BC") == "\"0001-01-01 00:00:00\"");
  // another TimeZone or DateStyle would be a bug: refused, never written wrong
  CHECK_THROWS_AS(value(ClientKind::kTimestampTz, "2024-05-01 06:30:00+05:30"), Error);
  CHECK_THROWS_AS(value(ClientKind::kTimestampTz, "2024-05-01 06:30:00"), Error);
  CHECK_THROWS_AS(value(ClientKind::kTimestamp, "05/01/2024 12:00:00"), Error);
  CHECK_THROWS_AS(value(ClientKind::kTimestamp, "2024-05-01 12:00:00.1234567"), Error);
  CHECK_THROWS_AS(value(ClientKind::kTimestamp, "2024-05-01T12:00:00"), Error);
}

TEST_CASE("COPY text rows: tabs, \\N, backslash escapes") {
  std::vector<std::string> storage;
  std::vector<std::optional<std::string_view>> fields;
  decode_copy_text_row("1\t\\N\ta\\tb\\\\c\\nd\t\t\\N\n", storage, fields);
  REQUIRE(fields.size() == 5);
  CHECK(*fields[0] == "1");
  CHECK_FALSE(fields[1].has_value());
  CHECK(*fields[2] == "a\tb\\c\nd");
  CHECK(*fields[3] == "");
  CHECK_FALSE(fields[4].has_value());
  decode_copy_text_row("\\\\N\t\\b\\f\\r\\v\\101\\x41\\x", storage, fields);
  REQUIRE(fields.size() == 2);
  CHECK(*fields[0] == "\\N");
  CHECK(*fields[1] == "\b\f\r\vAAx");
  // views into escaped fields stay valid while later fields are decoded
  decode_copy_text_row("a\\tlong enough not to be a short string\tb\\n\tc\\\\", storage, fields);
  REQUIRE(fields.size() == 3);
  CHECK(*fields[0] == "a\tlong enough not to be a short string");
  CHECK(*fields[1] == "b\n");
  CHECK(*fields[2] == "c\\");
  CHECK_THROWS_AS(decode_copy_text_row("a\\", storage, fields), Error);
}

TEST_CASE("a dump line's values: written in one step as the splice of json_build_object's text") {
  // append_line_value() must give what splice_json() makes of append_client_value()'s text
  const auto two_steps = [](ClientKind kind, std::string_view text,
                            std::size_t depth) -> std::optional<std::string> {
    std::string pg;
    append_client_value(pg, kind, text);
    std::string out;
    if (!splice_json(out, pg, depth)) return std::nullopt;
    return out;
  };
  const auto one_step = [](ClientKind kind, std::string_view text,
                           std::size_t depth) -> std::optional<std::string> {
    std::string out = "prefix";
    if (!append_line_value(out, kind, text, depth)) return std::nullopt;
    return out.substr(6);
  };
  const std::pair<ClientKind, std::vector<std::string>> cases[] = {
      {ClientKind::kNumber,
       {"0", "-0", "-0.0", "42", "-17", "12.50", "1e+100", "1.5e-07", "NaN", "Infinity",
        "-Infinity", "99999999999999999999.000001"}},
      {ClientKind::kBool, {"t", "f"}},
      {ClientKind::kString,
       {"", "plain text", "a/b", "quote \" inside", "back\\slash", "tab\there", "new\nline",
        "\x01\x1f control", "caf\xc3\xa9", "\xe2\x82\xac euro", "\xf0\x9f\x98\x80", "2024-02-29",
        "0f8fad5b-d9cb-469f-a165-70867728950e", "<script>", "'single'", "\x7f del"}},
      {ClientKind::kJson,
       {"{}", "[]", "null", "{\"a\": 1, \"b\": [1, 2, {\"c\": \"x/y\"}]}", "\"caf\xc3\xa9\"",
        "{\"k\": \"\\u00e9\\n\"}", "-0", "[-0, 1.0, 1e5]", "  { \"sp\" :  true }  ",
        "{\"a\": ", "[1,]", "nul", "{\"a\": 1} {}"}},
      {ClientKind::kTimestampTz,
       {"2024-01-02 03:04:05+00", "2024-01-02 03:04:05.5+00", "0044-03-15 12:00:00+00 BC",
        "infinity", "-infinity"}},
      {ClientKind::kTimestamp, {"2024-01-02 03:04:05.123456", "infinity"}},
  };
  for (const auto& [kind, texts] : cases) {
    for (const auto& text : texts) {
      CAPTURE(text);
      CHECK(one_step(kind, text, 1) == two_steps(kind, text, 1));
    }
  }
  // the nesting limit counts the containers around the value: 63 arrays fit inside the row's
  // object, 64 do not (the parser refuses what splice_json() refuses)
  const std::string deep63 = std::string(63, '[') + std::string(63, ']');
  const std::string deep64 = std::string(64, '[') + std::string(64, ']');
  CHECK(one_step(ClientKind::kJson, deep63, 1) == deep63);
  CHECK(one_step(ClientKind::kJson, deep64, 1) == std::nullopt);
  CHECK(two_steps(ClientKind::kJson, deep64, 1) == std::nullopt);
  CHECK(one_step(ClientKind::kJson, deep64, 0) == deep64);
}
