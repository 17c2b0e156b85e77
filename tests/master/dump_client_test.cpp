// cqrs_bulk_dump's client formatting without a server: what json_build_object() and the
// capture's cqrs.django_ts() write for a value's text output, and COPY text rows.
#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "common/error.hpp"
#include "master/dump.hpp"

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
