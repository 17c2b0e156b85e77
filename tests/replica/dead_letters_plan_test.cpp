// cqrs_dead_letters' pure parts: the retried body (retries, expires) and dump lines.
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

#include <doctest/doctest.h>

#include "common/json.hpp"
#include "common/timestamp.hpp"
#include "replica/dead_letters.hpp"

using namespace pgcqrs;
using namespace pgcqrs::replica;
using std::chrono::seconds;

namespace {

std::string vector_dead_letter() {
  std::ifstream in(std::string(PGCQRS_VECTORS_DIR) + "/diff/dead_letters_dump.jsonl");
  REQUIRE(in);
  std::string line;
  std::getline(in, line);
  return line;
}

const Timestamp kNow = parse_timestamp("2020-01-01T00:00:00.654321+00:00");

}  // namespace

TEST_CASE("plan_retry: django-cqrs's test case (retries 30 -> 0, expires -> now + 1 day)") {
  const std::string body =
      R"({"signal_type":"SAVE","cqrs_id":"test","instance_data":{},"instance_pk":1,)"
      R"("previous_data":null,"correlation_id":null,"retries":30,)"
      R"("expires":"2020-01-01T00:00:00+00:00","meta":{}})";
  const RetryPlan p = plan_retry(body, kNow, seconds(86400));
  REQUIRE(p.error.empty());
  CHECK(p.cqrs_id == "test");
  CHECK(p.body == R"({"signal_type":"SAVE","cqrs_id":"test","instance_data":{},"instance_pk":1,)"
                  R"("previous_data":null,"correlation_id":null,"retries":0,)"
                  R"("expires":"2020-01-02T00:00:00+00:00","meta":{}})");
}

TEST_CASE("plan_retry: the captured dead letter keeps every other member exactly") {
  const std::string body = vector_dead_letter();
  const RetryPlan p = plan_retry(body, kNow, seconds(3600));
  REQUIRE(p.error.empty());
  CHECK(p.cqrs_id == "product");
  std::string expected = body;
  const auto replace = [&expected](const std::string& from, const std::string& to) {
    const auto at = expected.find(from);
    REQUIRE(at != std::string::npos);
    expected.replace(at, from.size(), to);
  };
  replace("\"retries\":5", "\"retries\":0");
  replace("\"expires\":\"2026-11-23T02:05:17+00:00\"", "\"expires\":\"2020-01-01T01:00:00+00:00\"");
  CHECK(p.body == expected);
  // exact numbers survive: price 83810.14, weight 22.321, quantity -549735813828
  CHECK(p.body.find("\"price\":83810.14,") != std::string::npos);
}

TEST_CASE("plan_retry: the configured TTL, 0 = never expires; no or null expires stays") {
  const std::string base = R"({"signal_type":"SAVE","cqrs_id":"a","instance_data":{},)"
                           R"("instance_pk":1)";
  CHECK(plan_retry(base + R"(,"expires":"2000-01-01T00:00:00+00:00"})", kNow, seconds(5)).body ==
        base + R"(,"expires":"2020-01-01T00:00:05+00:00","retries":0})");
  CHECK(plan_retry(base + R"(,"expires":"2000-01-01T00:00:00+00:00"})", kNow, seconds(0)).body ==
        base + R"(,"expires":null,"retries":0})");
  CHECK(plan_retry(base + R"(,"expires":null,"retries":2})", kNow, seconds(5)).body ==
        base + R"(,"expires":null,"retries":0})");
  CHECK(plan_retry(base + R"(,"expires":""})", kNow, seconds(5)).body ==
        base + R"(,"expires":"","retries":0})");
  // a legacy body without retries or expires gets retries appended, no expires
  CHECK(plan_retry(base + "}", kNow, seconds(5)).body == base + R"(,"retries":0})");
}

TEST_CASE("plan_retry: bodies that cannot be retried say why") {
  CHECK(plan_retry("not json", kNow, seconds(1)).error.rfind("not JSON (body: ", 0) == 0);
  CHECK(plan_retry("{\"cqrs_id\":\"a\"}{}", kNow, seconds(1)).error.rfind("not JSON", 0) == 0);
  CHECK(plan_retry("[1,2]", kNow, seconds(1)).error == "not a JSON object but a JSON array");
  CHECK(plan_retry("{\"signal_type\":\"SAVE\"}", kNow, seconds(1)).error ==
        "no cqrs_id: nowhere to send it");
  CHECK(plan_retry("{\"cqrs_id\":7}", kNow, seconds(1)).error == "cqrs_id 7 is not a name");
  CHECK(plan_retry("{\"cqrs_id\":\"\"}", kNow, seconds(1)).error == "cqrs_id \"\" is not a name");
  const RetryPlan bad = plan_retry("", kNow, seconds(1));
  CHECK(bad.body.empty());
  CHECK(bad.cqrs_id.empty());
  CHECK_FALSE(bad.error.empty());
}

TEST_CASE("dump_line: bodies one per line, malformed ones shown and flagged") {
  std::string problem = "stale";
  const std::string body = vector_dead_letter();
  CHECK(dump_line(body, &problem) == body);
  CHECK(problem.empty());
  // pretty-printed JSON: its line breaks are white space, the JSON stays the same
  CHECK(dump_line("{\n  \"a\": \"x\"\r\n}", &problem) == "{   \"a\": \"x\"  }");
  CHECK(problem.empty());
  CHECK(dump_line("[1,\n2]", &problem) == "[1, 2]");
  CHECK(problem == "not a JSON object but a JSON array");
  CHECK(dump_line("oops\nline two\r", &problem) == "oops\\nline two\\r");
  CHECK(problem.rfind("not JSON (body: ", 0) == 0);
  CHECK(dump_line("", &problem).empty());
  CHECK_FALSE(problem.empty());
}
