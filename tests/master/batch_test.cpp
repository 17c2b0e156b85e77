// Batch outbox rows: the array parser and the events the agent builds from a batch.
#include "master/batch.hpp"

#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "common/error.hpp"

using namespace pgcqrs;
using namespace pgcqrs::master;

namespace {

using Elements = std::vector<std::optional<std::string>>;

Elements parsed(std::string_view text, std::size_t expected_rows) {
  Elements out;
  std::size_t rows = 99;
  REQUIRE_MESSAGE(parse_text_array(text, out, rows), text);
  CHECK(rows == expected_rows);
  return out;
}

OutboxRow batch_row() {
  OutboxRow row;
  row.id = 41;
  row.cqrs_id = "item";
  row.signal = "SAVE";
  row.correlation_id = "corr-1";
  return row;
}

}  // namespace

TEST_CASE("parse_text_array reads array_out's text of one- and two-dimensional text[]") {
  CHECK(parsed("{}", 0).empty());
  CHECK(parsed("{a,b}", 1) == Elements{"a", "b"});
  // quoted: empty, spaces, separators, the word NULL, escapes; unquoted NULL is SQL NULL
  CHECK(parsed(R"({"",NULL,"NULL","a b","{x,y}","q\"uote","back\\slash",null})", 1) ==
        Elements{"", std::nullopt, "NULL", "a b", "{x,y}", "q\"uote", "back\\slash", std::nullopt});
  CHECK(parsed(R"({{1,x,NULL},{2,"y z",""}})", 2) ==
        Elements{"1", "x", std::nullopt, "2", "y z", ""});
  CHECK(parsed("{{7}}", 1) == Elements{"7"});
  CHECK(parsed("[0:1]={a,b}", 1) == Elements{"a", "b"});
  CHECK(parsed("{\"line\nbreak\",\xc3\xa9}", 1) == Elements{"line\nbreak", "\xc3\xa9"});

  Elements out;
  std::size_t rows = 0;
  for (const std::string_view bad :
       {"", "a", "{", "{a", "{a,}", "{,a}", "{a}}", "{\"a}", "{{a},b}", "{{a,b},{c}}", "{{{a}}}",
        "{a}x", "{a,,b}", "{\"a\"b}", "[0:1]{a}"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_text_array(bad, out, rows));
  }
}

TEST_CASE("expand_batch: one SAVE event per row, instance_data as json_build_object writes it") {
  const std::string layout =
      R"({n:id,n:cqrs_revision,T:cqrs_updated,s:name,n:price,b:flag,j:doc,t:naive,"s:a \"q\" /k",P:previous_data,M:meta})";
  const std::string batch =
      R"({{7,0,"2026-11-22 08:00:00+00","caf\\u00e9 / x",12.50,true,"{\"a\": [1, 2]}","2026-11-22 08:00:00.5",NULL,"{\"name\" : null}","{\"m\" : 1}"},)"
      R"({8,3,"2026-11-22 08:00:00.123456+00",NULL,NaN,f,NULL,NULL,"plain",NULL,NULL}})";
  const auto events = expand_batch(batch_row(), batch, layout);
  REQUIRE(events.size() == 2);

  const OutboxRow& a = events[0];
  CHECK(a.id == 41);
  CHECK(a.index == 1);
  CHECK(a.cqrs_id == "item");
  CHECK(a.signal == "SAVE");
  CHECK(a.correlation_id == std::optional<std::string>("corr-1"));
  CHECK(a.instance_pk == "7");
  CHECK(*a.instance_data ==
        R"({"id":7,"cqrs_revision":0,"cqrs_updated":"2026-11-22 08:00:00+00:00",)"
        R"("name":"caf\\u00e9 \/ x","price":12.50,"flag":true,"doc":{"a":[1,2]},)"
        R"("naive":"2026-11-22 08:00:00.500000","a \"q\" \/k":null})");
  CHECK(a.previous_data == std::optional<std::string>(R"({"name" : null})"));
  CHECK(a.meta == std::optional<std::string>(R"({"m" : 1})"));

  const OutboxRow& b = events[1];
  CHECK(b.index == 2);
  CHECK(b.instance_pk == "8");
  CHECK(*b.instance_data ==
        R"({"id":8,"cqrs_revision":3,"cqrs_updated":"2026-11-22 08:00:00.123456+00:00",)"
        R"("name":null,"price":"NaN","flag":false,"doc":null,"naive":null,"a \"q\" \/k":"plain"})");
  CHECK_FALSE(b.previous_data.has_value());
  CHECK_FALSE(b.meta.has_value());  // the body then carries {} as the per-event capture does

  // the body copies the formatted members: the same bytes as splicing them
  for (const auto& e : events) {
    CHECK(e.formatted);
    OutboxRow spliced = e;
    spliced.formatted = false;
    const Timestamp now = now_utc();
    CHECK(build_body(e, now, std::chrono::seconds(60)) ==
          build_body(spliced, now, std::chrono::seconds(60)));
  }
}

TEST_CASE("expand_batch: the batch row's meta applies to every event without a meta position") {
  OutboxRow row = batch_row();
  row.meta = R"({"source" : "erp"})";
  const auto events = expand_batch(row, R"({{1,0,"2026-01-01 00:00:00+00"}})",
                                   "{s:code,n:cqrs_revision,T:cqrs_updated}");
  REQUIRE(events.size() == 1);
  CHECK(events[0].meta == row.meta);
  CHECK(events[0].instance_pk == R"("1")");  // a text key is a JSON string
  CHECK(events[0].previous_data == std::nullopt);
}

TEST_CASE("expand_batch: a text without its kind's shape goes out as a string") {
  // the column changed type after `pgcqrs migrate`: the event carries the value it has
  const auto events =
      expand_batch(batch_row(), R"({{1,0,"2026-01-01 00:00:00+00",yes,"not a time","{oops"}})",
                   "{n:id,n:cqrs_revision,T:cqrs_updated,b:flag,T:at,j:doc}");
  REQUIRE(events.size() == 1);
  CHECK(*events[0].instance_data ==
        R"({"id":1,"cqrs_revision":0,"cqrs_updated":"2026-01-01 00:00:00+00:00",)"
        R"("flag":"yes","at":"not a time","doc":"{oops"})");
}

TEST_CASE("expand_batch refuses a layout and batch that do not match, naming the outbox id") {
  const std::string layout = "{n:id,n:cqrs_revision,T:cqrs_updated}";
  const auto fails = [&](std::string_view batch, std::string_view lay, std::string_view what) {
    CAPTURE(batch);
    CAPTURE(lay);
    try {
      expand_batch(batch_row(), batch, lay);
      FAIL("no error");
    } catch (const MessageError& e) {
      const std::string m = e.what();
      CHECK(m.find("outbox id=41") != std::string::npos);
      CHECK_MESSAGE(m.find(what) != std::string::npos, m);
    }
  };
  fails(R"({{1,0,"2026-01-01 00:00:00+00",x}})", layout, "text array of 3-column rows");
  fails("{1,0}", layout, "text array of 3-column rows");
  fails("{1,0,x,y}", layout, "text array of 3-column rows");
  fails("{}", layout, "text array of 3-column rows");
  fails("not an array", layout, "text array of 3-column rows");
  fails(R"({{1,0,"2026-01-01 00:00:00+00"}})", "{n:id,n:cqrs_revision}", "fewer than 3");
  fails(R"({{1,0,"2026-01-01 00:00:00+00"}})", "{n:id,n:cqrs_revision,X:z}", "unknown kind 'X'");
  fails(R"({{1,0,"2026-01-01 00:00:00+00"}})", "{n:id,nocolon,T:z}", "not '<kind>:<name>'");
  fails(R"({{1,0,"2026-01-01 00:00:00+00"}})", "{{n:id,n:r,T:u}}", "one-dimensional");
  fails(R"({{NULL,0,"2026-01-01 00:00:00+00"}})", layout, "no primary key");
  // the fetch replaces a key with its layout: a key left is one that names none
  fails(R"({{1,0,"2026-01-01 00:00:00+00"}})", "#0123456789abcdef",
        "batch_layout key #0123456789abcdef names no layout in cqrs.batch_layout");
}

TEST_CASE("expand_batch: a 1-row statement's batch is the row's one-dimensional array") {
  const auto events = expand_batch(batch_row(), R"({5,2,"\"2026-11-22T08:00:00+00:00\"",x})",
                                   "{n:id,n:cqrs_revision,Z:cqrs_updated,s:name}");
  REQUIRE(events.size() == 1);
  CHECK(events[0].index == 1);
  CHECK(events[0].instance_pk == "5");
  CHECK(*events[0].instance_data ==
        R"({"id":5,"cqrs_revision":2,"cqrs_updated":"2026-11-22 08:00:00+00:00","name":"x"})");
}

namespace {

// instance_data's value of one Z (with_zone) or z position holding `json`
std::string ts_of(std::string_view json, bool with_zone) {
  std::string batch = "{1,0,\"\\\"2026-01-01T00:00:00+00:00\\\"\",\"";
  for (const char c : json) {
    if (c == '"' || c == '\\') batch.push_back('\\');
    batch.push_back(c);
  }
  batch += "\"}";
  const auto events = expand_batch(
      batch_row(), batch,
      std::string("{n:id,n:cqrs_revision,Z:cqrs_updated,") + (with_zone ? "Z" : "z") + ":at}");
  REQUIRE(events.size() == 1);
  const std::string& d = *events[0].instance_data;
  const std::string key = R"("at":)";
  const auto at = d.find(key);
  REQUIRE(at != std::string::npos);
  return d.substr(at + key.size(), d.size() - at - key.size() - 1);
}

}  // namespace

TEST_CASE("expand_batch: Z and z positions are to_json() timestamps, written as django_ts()") {
  // the writing session's offset is taken off: django-cqrs times are UTC
  CHECK(ts_of(R"("2026-12-02T01:30:00.5+05:30")", true) == R"("2026-12-01 20:00:00.500000+00:00")");
  CHECK(ts_of(R"("2026-12-01T16:30:00.123456-03:30")", true) ==
        R"("2026-12-01 20:00:00.123456+00:00")");
  CHECK(ts_of(R"("2026-12-01T20:00:00+00:00")", true) == R"("2026-12-01 20:00:00+00:00")");
  // across a day, a month, a year and a leap day; offsets with seconds (local mean time)
  CHECK(ts_of(R"("2025-01-01T01:00:00+05:30")", true) == R"("2024-12-31 19:30:00+00:00")");
  CHECK(ts_of(R"("2024-02-28T22:00:00-03:00")", true) == R"("2024-02-29 01:00:00+00:00")");
  CHECK(ts_of(R"("2023-02-28T22:00:00-03:00")", true) == R"("2023-03-01 01:00:00+00:00")");
  CHECK(ts_of(R"("1900-01-01T00:19:32+00:19:32")", true) == R"("1900-01-01 00:00:00+00:00")");
  CHECK(ts_of(R"("1850-01-01T05:53:28+05:53:28")", true) == R"("1850-01-01 00:00:00+00:00")");
  // years past 9999, before 1 (to_char's YYYY has no era), and across the start of year 1
  CHECK(ts_of(R"("12344-12-31T20:30:00-03:30")", true) == R"("12345-01-01 00:00:00+00:00")");
  CHECK(ts_of(R"("0044-03-15T12:00:00+00:00 BC")", true) == R"("0044-03-15 12:00:00+00:00")");
  CHECK(ts_of(R"("0001-01-01T00:49:32+00:19:32")", true) == R"("0001-01-01 00:30:00+00:00")");
  CHECK(ts_of(R"("0001-01-01T00:10:00+00:19:32")", true) == R"("0001-12-31 23:50:28+00:00")");
  CHECK(ts_of(R"("infinity")", true) == R"("infinity")");
  CHECK(ts_of(R"("-infinity")", true) == R"("-infinity")");
  // naive timestamps are written as they are
  CHECK(ts_of(R"("2024-05-01T23:59:59.25")", false) == R"("2024-05-01 23:59:59.250000")");
  CHECK(ts_of(R"("2024-05-01T23:59:59")", false) == R"("2024-05-01 23:59:59")");
  CHECK(ts_of(R"("0044-03-15T12:00:00 BC")", false) == R"("0044-03-15 12:00:00")");
  CHECK(ts_of(R"("-infinity")", false) == R"("-infinity")");
  // another shape (the column's type changed since `pgcqrs migrate`) goes out as it is
  CHECK(ts_of(R"("2024-05-01T23:59:59")", true) == R"("2024-05-01T23:59:59")");
  CHECK(ts_of(R"("2024-05-01T23:59:59+05:30")", false) == R"("2024-05-01T23:59:59+05:30")");
  CHECK(ts_of(R"("2024-13-01T00:00:00+00:00")", true) == R"("2024-13-01T00:00:00+00:00")");
  CHECK(ts_of("17", true) == "17");
  CHECK(ts_of("not json", true) == R"("not json")");
}
