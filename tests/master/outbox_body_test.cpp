// The agent's body splices the stored JSON text: byte for byte what parsing and encoding gives.
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "common/error.hpp"
#include "common/event.hpp"
#include "common/json.hpp"
#include "master/outbox.hpp"

using namespace pgcqrs;
using namespace pgcqrs::master;

namespace {

// The reference: every member parsed, the event encoded by the codec.
std::string reference(const OutboxRow& row, Timestamp now, std::chrono::seconds ttl) {
  Event e;
  e.signal = parse_signal(row.signal);
  e.cqrs_id = row.cqrs_id;
  e.instance_data = row.instance_data ? json::parse(*row.instance_data) : json::Json(nullptr);
  e.instance_pk = json::parse(row.instance_pk);
  e.previous_data = row.previous_data ? json::parse(*row.previous_data) : json::Json(nullptr);
  e.meta = row.meta ? json::parse(*row.meta) : json::Json::object();
  if (row.correlation_id) e.correlation_id = *row.correlation_id;
  if (ttl.count() > 0) e.expires = now + ttl;
  return encode_event(e);
}

std::string spliced(std::string_view text) {
  std::string out;
  REQUIRE(splice_json(out, text));
  return out;
}

}  // namespace

TEST_CASE("splice_json writes what json::dump writes of the parsed value") {
  // as PostgreSQL's json output spells them (json_build_object puts " : " and ", ")
  const std::vector<std::string> texts = {
      R"({"id" : 1, "cqrs_revision" : 0, "cqrs_updated" : "2026-11-22 08:00:00.123456+00:00"})",
      R"({"price" : 10.50, "big" : 123456789012345678901234567890, "neg" : -0, "negf" : -0.0})",
      R"({"e" : 1e-7, "E" : 1E+16, "i64" : -9223372036854775808, "u64" : 18446744073709551615})",
      R"({"url" : "https://example.com/a/b", "esc" : "tab\there \"q\" back\\slash \/"})",
      R"({"uni" : "caf\u00e9 \u00E9 \ud83d\ude00 \u0041 \u001f \u0008 \u007f"})",
      "{\"raw\" : \"café ü 😀 \x7f\", \"ctl\" : \"a\\nb\\r\\f\\b\"}",
      R"({"nested" : {"a" : [1, 2, {"b" : null}], "c" : [], "d" : {}}, "t" : true, "f" : false})",
      R"({"j" : {"k":"v","l":[1,2.50]}, "s" : ""})",
      R"(42)",
      R"("a text key / with slash")",
      R"(null)",
      "{\n  \"pretty\": [\n    1,\n    2\n  ]\n}",
      R"({})",
  };
  for (const auto& t : texts) {
    CAPTURE(t);
    CHECK(spliced(t) == json::dump(json::parse(t)));
  }
}

TEST_CASE("splice_json refuses what it does not recognise") {
  const std::string deep = std::string(65, '[') + std::string(65, ']');
  const std::vector<std::string> bads = {
      "",           "   ",   "{\"a\" : tru}", "{\"a\" : \"open", "{\"a\" : @}", "{\"a\" : \"x\\",
      "{\"a\" : }", "[1, ]", "{\"a\" 1}",     "{1 : 2}",         "01",          "1.",
      "-",          "1e",    "{\"a\" : 1}}",  "[1] 2",           "{\"a\" : 1",  deep};
  for (const auto& bad : bads) {
    CAPTURE(bad);
    std::string out;
    CHECK_FALSE(splice_json(out, bad));
  }
}

TEST_CASE("build_body matches the codec's encoding, byte for byte") {
  const Timestamp now = parse_timestamp("2026-11-22T08:00:00.5+00:00");
  OutboxRow save{7,
                 "author",
                 "SAVE",
                 "7",
                 R"({"id" : 7, "cqrs_revision" : 3, "cqrs_updated" : "2026-11-22 08:00:00+00:00", )"
                 R"("name" : "Zoë / Z", "price" : 10.50, "tags" : ["a", "b"]})",
                 R"({"name" : "Zoe"})",
                 R"({"tenant" : "x/y"})",
                 "req-42/\xc3\xa9"};
  OutboxRow del{
      8,
      "author",
      "DELETE",
      R"("k\u00e9y")",
      R"({"id" : "kéy", "cqrs_revision" : 4, "cqrs_updated" : "2026-11-22 08:00:00+00:00"})",
      std::nullopt,
      std::nullopt,
      std::nullopt};
  OutboxRow vanished{9, "book", "SAVE", "9", std::nullopt, std::nullopt, R"("m")", std::nullopt};
  for (const auto& row : {save, del, vanished}) {
    for (const auto ttl : {std::chrono::seconds(86400), std::chrono::seconds(0)}) {
      CAPTURE(row.id);
      CHECK(build_body(row, now, ttl) == reference(row, now, ttl));
    }
  }
  CHECK(build_body(del, now, std::chrono::seconds(60)) ==
        R"({"signal_type":"DELETE","cqrs_id":"author","instance_data":{"id":"k\u00e9y",)"
        R"("cqrs_revision":4,"cqrs_updated":"2026-11-22 08:00:00+00:00"},"previous_data":null,)"
        R"("instance_pk":"k\u00e9y","correlation_id":null,"retries":0,)"
        R"("expires":"2026-11-22T08:01:00+00:00","meta":{}})");
}

TEST_CASE("build_body: stored text that is not JSON is refused with the member named") {
  OutboxRow row{
      5, "author", "SAVE", "5", R"({"id" : 5, "x" : })", std::nullopt, std::nullopt, std::nullopt};
  CHECK_THROWS_AS(build_body(row, now_utc(), std::chrono::seconds(0)), MessageError);
  try {
    (void)build_body(row, now_utc(), std::chrono::seconds(0));
  } catch (const MessageError& e) {
    CHECK(std::string(e.what()).find("outbox id=5 instance_data") != std::string::npos);
  }
  row.signal = "UPSERT";
  row.instance_data = R"({"id" : 5})";
  CHECK_THROWS_AS(build_body(row, now_utc(), std::chrono::seconds(0)), MessageError);
}
