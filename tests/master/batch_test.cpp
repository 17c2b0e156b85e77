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
  fails(R"({{1,0,"2026-01-01 00:00:00+00",x}})", layout, "3-column two-dimensional");
  fails("{1,0,x}", layout, "3-column two-dimensional");
  fails("{}", layout, "3-column two-dimensional");
  fails(R"({{1,0,"2026-01-01 00:00:00+00"}})", "{n:id,n:cqrs_revision}", "fewer than 3");
  fails(R"({{1,0,"2026-01-01 00:00:00+00"}})", "{n:id,n:cqrs_revision,X:z}", "unknown kind 'X'");
  fails(R"({{1,0,"2026-01-01 00:00:00+00"}})", "{n:id,nocolon,T:z}", "not '<kind>:<name>'");
  fails(R"({{1,0,"2026-01-01 00:00:00+00"}})", "{{n:id,n:r,T:u}}", "one-dimensional");
  fails(R"({{NULL,0,"2026-01-01 00:00:00+00"}})", layout, "no primary key");
}
