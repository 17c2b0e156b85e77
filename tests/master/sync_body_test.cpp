// cqrs_sync's pure parts: the SYNC body is the agent's SAVE body with signal SYNC, and the
// django-cqrs report lines.
#include <chrono>

#include <doctest/doctest.h>

#include "common/error.hpp"
#include "common/json.hpp"
#include "common/timestamp.hpp"
#include "master/outbox.hpp"
#include "master/sync.hpp"

using namespace pgcqrs;
using namespace std::chrono_literals;

TEST_CASE("a SYNC body has django-cqrs's keys, in order, with the SAVE's members") {
  const Timestamp now = parse_timestamp("2024-05-01 12:00:05.123456+00:00");
  // PostgreSQL's json text, with its spaces and an unescaped slash
  const std::string data =
      R"({"id" : 42, "cqrs_revision" : 3, "cqrs_updated" : "2024-05-01 12:00:05.123456+00:00", "name" : "Widget/α", "price" : 11.00})";
  const std::string body =
      master::sync_body("product", "42", data, R"({"origin" : "x"})", now, 86400s);
  CHECK(body ==
        R"({"signal_type":"SYNC","cqrs_id":"product","instance_data":{"id":42,"cqrs_revision":3,)"
        R"("cqrs_updated":"2024-05-01 12:00:05.123456+00:00","name":"Widget\/\u03b1",)"
        R"("price":11.00},"previous_data":null,"instance_pk":42,"correlation_id":null,)"
        R"("retries":0,"expires":"2024-05-02T12:00:05+00:00","meta":{"origin":"x"}})");
}

TEST_CASE("the SYNC body equals the agent's SAVE body but for the signal") {
  const Timestamp now = parse_timestamp("2024-05-01 12:00:05+00:00");
  master::OutboxRow save;
  save.cqrs_id = "author";
  save.signal = "SAVE";
  save.instance_pk = R"("a/b")";
  save.instance_data = R"({"code" : "a/b", "cqrs_revision" : 0})";
  save.meta = "{}";
  std::string expected = master::build_body(save, now, 0s);
  expected.replace(expected.find("\"SAVE\""), 6, "\"SYNC\"");
  CHECK(master::sync_body("author", R"("a/b")", *save.instance_data, "{}", now, 0s) == expected);
  CHECK(expected.find(R"("expires":null)") != std::string::npos);  // ttl 0: never expires
}

TEST_CASE("invalid stored JSON is an error, not a broken body") {
  CHECK_THROWS_AS(master::sync_body("a", "1", "{\"id\": ", "{}", now_utc(), 1s), MessageError);
}

TEST_CASE("the report reads as django-cqrs's") {
  master::SyncReport r;
  CHECK(master::sync_report_text(r) == "No objects found for filter!\n");
  r.found = true;
  r.synced = 2;
  r.processed = 3;
  CHECK(master::sync_report_text(r) == "Done!\n2 instance(s) synced.\n3 instance(s) processed.\n");
}
