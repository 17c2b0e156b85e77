// Timestamps parse in every form django-cqrs and DRF masters send, and format as Python does.
#include "common/timestamp.hpp"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "common/error.hpp"
#include "common/json.hpp"

using namespace pgcqrs;
using namespace std::chrono;

namespace {

Timestamp utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0, int us = 0) {
  return Timestamp{sys_days{year{y} / month{mo} / day{d}}} + hours{h} + minutes{mi} + seconds{s} +
         microseconds{us};
}

std::string read_file(const std::string& name) {
  std::ifstream in(std::string(PGCQRS_VECTORS_DIR) + "/" + name, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open vector " << name);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("parse_timestamp: 'T' and space, Z and offsets") {
  const Timestamp noon = utc(2024, 5, 1, 12);
  CHECK(parse_timestamp("2024-05-01T12:00:00Z") == noon);
  CHECK(parse_timestamp("2024-05-01T12:00:00z") == noon);
  CHECK(parse_timestamp("2024-05-01t12:00:00Z") == noon);
  CHECK(parse_timestamp("2024-05-01 12:00:00+00:00") == noon);
  CHECK(parse_timestamp("2024-05-01 12:00:00-00:00") == noon);
  CHECK(parse_timestamp("2024-05-01 12:00:00+0000") == noon);
  CHECK(parse_timestamp("2024-05-01 12:00:00+00") == noon);
  CHECK(parse_timestamp("2024-05-01T17:30:00+05:30") == noon);
  CHECK(parse_timestamp("2024-05-01T17:30:00+0530") == noon);
  CHECK(parse_timestamp("2024-05-01T04:00:00-08") == noon);
  CHECK(parse_timestamp("2024-05-01T04:00:00-08:00") == noon);
  // An offset moves the date too.
  CHECK(parse_timestamp("2024-01-01T01:00:00+05:30") == utc(2023, 12, 31, 19, 30));
  CHECK(parse_timestamp("2023-12-31T23:00:00-23:59") == utc(2024, 1, 1, 22, 59));
}

TEST_CASE("parse_timestamp: fractions of 1 to 6 digits are microseconds") {
  CHECK(parse_timestamp("2024-05-01 12:00:00.1+00:00") == utc(2024, 5, 1, 12, 0, 0, 100000));
  CHECK(parse_timestamp("2024-05-01 12:00:00.12Z") == utc(2024, 5, 1, 12, 0, 0, 120000));
  CHECK(parse_timestamp("2024-05-01 12:00:00.123Z") == utc(2024, 5, 1, 12, 0, 0, 123000));
  CHECK(parse_timestamp("2024-05-01 12:00:00.0123Z") == utc(2024, 5, 1, 12, 0, 0, 12300));
  CHECK(parse_timestamp("2024-05-01 12:00:00.00001Z") == utc(2024, 5, 1, 12, 0, 0, 10));
  CHECK(parse_timestamp("2024-05-01 12:00:00.123456+00:00") == utc(2024, 5, 1, 12, 0, 0, 123456));
  CHECK(parse_timestamp("2024-05-01 12:00:00.000001-01:00") == utc(2024, 5, 1, 13, 0, 0, 1));
  CHECK_THROWS_WITH_AS(
      parse_timestamp("2024-05-01 12:00:00.1234567Z"),
      "timestamp '2024-05-01 12:00:00.1234567Z': fraction of 7 digits; at most 6 (microseconds)",
      MessageError);
  CHECK_THROWS_WITH_AS(parse_timestamp("2024-05-01 12:00:00.Z"),
                       "timestamp '2024-05-01 12:00:00.Z': expected digits after '.'",
                       MessageError);
}

TEST_CASE("parse_timestamp: an offset is required") {
  CHECK_THROWS_WITH_AS(parse_timestamp("2024-05-01 12:00:00"),
                       "timestamp '2024-05-01 12:00:00': no UTC offset", MessageError);
  CHECK_THROWS_WITH_AS(parse_timestamp("2024-05-01T12:00:00.5"),
                       "timestamp '2024-05-01T12:00:00.5': no UTC offset", MessageError);
}

TEST_CASE("parse_timestamp: calendar ranges, leap years included") {
  CHECK(parse_timestamp("2024-02-29 00:00:00Z") == utc(2024, 2, 29));
  CHECK(parse_timestamp("2000-02-29 00:00:00Z") == utc(2000, 2, 29));
  CHECK(parse_timestamp("0001-01-01 00:00:00Z") == utc(1, 1, 1));
  CHECK(parse_timestamp("9999-12-31 23:59:59.999999Z") == utc(9999, 12, 31, 23, 59, 59, 999999));
  CHECK_THROWS_WITH_AS(parse_timestamp("2023-02-29 00:00:00Z"),
                       "timestamp '2023-02-29 00:00:00Z': day 29 out of range for 2023-02",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse_timestamp("2100-02-29 00:00:00Z"),
                       "timestamp '2100-02-29 00:00:00Z': day 29 out of range for 2100-02",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse_timestamp("2024-04-31 00:00:00Z"),
                       "timestamp '2024-04-31 00:00:00Z': day 31 out of range for 2024-04",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse_timestamp("2024-01-00 00:00:00Z"),
                       "timestamp '2024-01-00 00:00:00Z': day 00 out of range for 2024-01",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse_timestamp("2024-13-01 00:00:00Z"),
                       "timestamp '2024-13-01 00:00:00Z': month 13 out of range 01..12",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse_timestamp("2024-00-01 00:00:00Z"),
                       "timestamp '2024-00-01 00:00:00Z': month 00 out of range 01..12",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse_timestamp("0000-01-01 00:00:00Z"),
                       "timestamp '0000-01-01 00:00:00Z': year 0000 out of range 0001..9999",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse_timestamp("2024-01-01 24:00:00Z"),
                       "timestamp '2024-01-01 24:00:00Z': hour 24 out of range 00..23",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse_timestamp("2024-01-01 23:60:00Z"),
                       "timestamp '2024-01-01 23:60:00Z': minute 60 out of range 00..59",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse_timestamp("2024-01-01 23:59:60Z"),
                       "timestamp '2024-01-01 23:59:60Z': second 60 out of range 00..59",
                       MessageError);
}

TEST_CASE("parse_timestamp: garbage is named precisely") {
  CHECK_THROWS_WITH_AS(parse_timestamp(""),
                       "timestamp '': expected a date 'YYYY-MM-DD' at the start", MessageError);
  CHECK_THROWS_WITH_AS(parse_timestamp("tomorrow"),
                       "timestamp 'tomorrow': expected a date 'YYYY-MM-DD' at the start",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse_timestamp("2024-5-01 12:00:00Z"),
                       "timestamp '2024-5-01 12:00:00Z': expected a date 'YYYY-MM-DD' at the start",
                       MessageError);
  CHECK_THROWS_WITH_AS(
      parse_timestamp("2024-05-01"),
      "timestamp '2024-05-01': no time; expected 'YYYY-MM-DD HH:MM:SS' and a UTC offset",
      MessageError);
  CHECK_THROWS_WITH_AS(parse_timestamp("2024-05-01_12:00:00Z"),
                       "timestamp '2024-05-01_12:00:00Z': expected 'T' or ' ' after the date, got "
                       "'_'",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse_timestamp("2024-05-01 12:00Z"),
                       "timestamp '2024-05-01 12:00Z': expected a time 'HH:MM:SS' after the date",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse_timestamp("2024-05-01 12:00:00 UTC"),
                       "timestamp '2024-05-01 12:00:00 UTC': expected a UTC offset ('Z' or "
                       "[+-]HH:MM) at ' UTC'",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse_timestamp("2024-05-01 12:00:00+5"),
                       "timestamp '2024-05-01 12:00:00+5': UTC offset '+5' is not [+-]HH:MM, "
                       "[+-]HHMM or [+-]HH",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse_timestamp("2024-05-01 12:00:00+05:3"),
                       "timestamp '2024-05-01 12:00:00+05:3': UTC offset '+05:3' is not "
                       "[+-]HH:MM, [+-]HHMM or [+-]HH",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse_timestamp("2024-05-01 12:00:00+24:00"),
                       "timestamp '2024-05-01 12:00:00+24:00': UTC offset '+24:00' out of range; "
                       "at most [+-]23:59",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse_timestamp("2024-05-01 12:00:00+05:60"),
                       "timestamp '2024-05-01 12:00:00+05:60': UTC offset '+05:60' out of range; "
                       "at most [+-]23:59",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse_timestamp("2024-05-01 12:00:00Zx"),
                       "timestamp '2024-05-01 12:00:00Zx': unexpected 'x' after the UTC offset",
                       MessageError);
  CHECK_THROWS_WITH_AS(
      parse_timestamp("2024-05-01 12:00:00+05:30:00"),
      "timestamp '2024-05-01 12:00:00+05:30:00': unexpected ':00' after the UTC offset",
      MessageError);
  CHECK_THROWS_WITH_AS(parse_timestamp("2024-05-01\n12:00:00Z"),
                       "timestamp '2024-05-01\\n12:00:00Z': expected 'T' or ' ' after the date, "
                       "got '\\n'",
                       MessageError);
  // Every truncation of a valid timestamp fails cleanly, except those that are still valid.
  const std::string full = "2024-05-01 12:00:00.123456+05:30";
  for (std::size_t n = 0; n < full.size(); ++n) {
    CAPTURE(n);
    const std::string_view prefix = std::string_view(full).substr(0, n);
    if (n == 29) {  // "...+05" is a whole-hour offset
      CHECK(parse_timestamp(prefix) == utc(2024, 5, 1, 7, 0, 0, 123456));
    } else {
      CHECK_THROWS_AS(parse_timestamp(prefix), MessageError);
    }
  }
  CHECK(timestamp_error("2024-05-01 12:00:00") == "no UTC offset");
  CHECK(timestamp_error("2024-05-01 12:00:00Z").empty());
}

TEST_CASE("format_django is Python's str() of an aware UTC datetime") {
  CHECK(format_django(utc(2024, 5, 1, 12, 0, 5, 123456)) == "2024-05-01 12:00:05.123456+00:00");
  CHECK(format_django(utc(2024, 5, 1, 12, 0, 5, 120)) == "2024-05-01 12:00:05.000120+00:00");
  CHECK(format_django(utc(2024, 1, 1)) == "2024-01-01 00:00:00+00:00");
  CHECK(format_django(utc(1969, 12, 31, 23, 59, 59, 500000)) == "1969-12-31 23:59:59.500000+00:00");
  CHECK(format_django(utc(1, 1, 1)) == "0001-01-01 00:00:00+00:00");
}

TEST_CASE("format_expires drops microseconds and uses 'T'") {
  CHECK(format_expires(utc(2024, 5, 2, 12, 0, 5, 999999)) == "2024-05-02T12:00:05+00:00");
  CHECK(format_expires(utc(2024, 5, 2)) == "2024-05-02T00:00:00+00:00");
  CHECK(format_expires(utc(1969, 12, 31, 23, 59, 59, 500000)) == "1969-12-31T23:59:59+00:00");
}

TEST_CASE("every timestamp in the vectors parses and formats back identically") {
  std::size_t checked = 0;
  std::istringstream in(read_file("messages.jsonl"));
  for (std::string line; std::getline(in, line);) {
    const auto body = json::parse(nlohmann::json::parse(line).at("body_raw").get<std::string>());
    const std::string expires = body.at("expires").get<std::string>();
    CHECK(format_expires(parse_timestamp(expires)) == expires);
    for (const auto& [key, value] : body.at("instance_data").items()) {
      if (key != "cqrs_updated" && key != "released_at") continue;
      if (value.is_null()) continue;
      const std::string text = value.get<std::string>();
      CAPTURE(text);
      CHECK(format_django(parse_timestamp(text)) == text);
      ++checked;
    }
  }
  CHECK(checked > 45);
}

TEST_CASE("now_utc is current") {
  const auto d = now_utc() - time_point_cast<microseconds>(system_clock::now());
  CHECK(d < seconds(1));
  CHECK(d > seconds(-1));
}
