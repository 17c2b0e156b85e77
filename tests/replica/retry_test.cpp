// Retry delays, delay queues, dead-letter routes, retries rewriting, malformed classification.
#include "replica/retry.hpp"

#include <fstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "common/error.hpp"
#include "common/json.hpp"

using namespace pgcqrs;
using namespace pgcqrs::replica;
using std::chrono::seconds;

namespace {

ReplicaConfig config(int delay, double backoff, int cap, int max_retries = 30) {
  ReplicaConfig c;
  c.queue = "replica";
  c.dead_letter_queue = "dead_letter_replica";
  c.retry_delay = seconds(delay);
  c.retry_backoff = backoff;
  c.retry_delay_max = seconds(cap);
  c.max_retries = max_retries;
  return c;
}

bool known(const std::string& id) {
  return id == "author";
}

}  // namespace

TEST_CASE("retry delay: exponential from retry_delay, capped at retry_delay_max") {
  const ReplicaConfig c = config(2, 2.0, 300);
  CHECK(retry_delay(c, 0) == seconds(2));
  CHECK(retry_delay(c, 1) == seconds(4));
  CHECK(retry_delay(c, 7) == seconds(256));
  CHECK(retry_delay(c, 8) == seconds(300));
  CHECK(retry_delay(c, 29) == seconds(300));
  // any int64 a body may carry: no overflow, no endless loop
  CHECK(retry_delay(c, std::numeric_limits<std::int64_t>::max()) == seconds(300));
  CHECK(retry_delays(c) == std::vector<seconds>{seconds(2), seconds(4), seconds(8), seconds(16),
                                                seconds(32), seconds(64), seconds(128),
                                                seconds(256), seconds(300)});
  // constant delay (django-cqrs's default behaviour), and no delay at all
  const ReplicaConfig constant = config(5, 1.0, 300);
  CHECK(retry_delay(constant, 12) == seconds(5));
  CHECK(retry_delays(constant) == std::vector<seconds>{seconds(5)});
  const ReplicaConfig none = config(0, 2.0, 300);
  CHECK(retry_delay(none, 3) == seconds(0));
  // a cap below the first delay wins; max_retries 0 needs no delay queue
  CHECK(retry_delay(config(10, 2.0, 3), 0) == seconds(3));
  CHECK(retry_delays(config(2, 2.0, 300, 0)).empty());
  CHECK(retry_delays(config(1, 2.0, 2, 2)) == std::vector<seconds>{seconds(1), seconds(2)});
}

TEST_CASE("retry and dead-letter routes are django-cqrs's, delays through delay queues") {
  const ReplicaConfig c = config(2, 2.0, 300);
  CHECK(delay_queue_name("replica", seconds(4)) == "replica.retry.4s");
  const amqp::QueueOptions o = delay_queue_options("replica", seconds(4));
  CHECK(o.durable);
  REQUIRE(o.arguments.size() == 3);
  CHECK(o.arguments[0].first == "x-message-ttl");
  CHECK(std::get<std::int64_t>(o.arguments[0].second) == 4000);
  CHECK(o.arguments[1].first == "x-dead-letter-exchange");
  CHECK(std::get<std::string>(o.arguments[1].second).empty());
  CHECK(o.arguments[2].first == "x-dead-letter-routing-key");
  CHECK(std::get<std::string>(o.arguments[2].second) == "replica");

  Route r = retry_route(c, "cqrs", "author", 1);
  CHECK(r.exchange.empty());
  CHECK(r.routing_key == "replica.retry.4s");
  CHECK(r.expiration.empty());
  r = retry_route(config(0, 2.0, 300), "cqrs", "author", 1);
  CHECK(r.exchange == "cqrs");
  CHECK(r.routing_key == "cqrs.replica.author");

  r = dead_letter_route(c, "cqrs", "author");
  CHECK(r.exchange == "cqrs");
  CHECK(r.routing_key == "cqrs.dead_letter_replica.author");
  CHECK(r.expiration == "864000000");
  ReplicaConfig forever = c;
  forever.dead_message_ttl = seconds(0);
  CHECK(dead_letter_route(forever, "cqrs", "author").expiration.empty());
}

TEST_CASE("with_retries changes retries only: order, exact numbers and unknown keys kept") {
  const std::string body =
      R"({"signal_type":"SAVE","cqrs_id":"p","instance_data":{"price":10.50,"q":9007199254740993},)"
      R"("x-extra":[1],"retries":1,"expires":null})";
  CHECK(
      with_retries(body, 2) ==
      R"({"signal_type":"SAVE","cqrs_id":"p","instance_data":{"price":10.50,"q":9007199254740993},)"
      R"("x-extra":[1],"retries":2,"expires":null})");
  CHECK(with_retries(R"({"cqrs_id":"p"})", 1) == R"({"cqrs_id":"p","retries":1})");
  CHECK_THROWS_AS(with_retries("[1]", 1), MessageError);
  CHECK_THROWS_AS(with_retries("{", 1), MessageError);
}

TEST_CASE("malformed bodies: rejected when nothing routes them, else dead-lettered") {
  const auto kind = [](std::string_view body) { return classify_malformed(body, known).kind; };
  CHECK(kind("") == MalformedKind::kBadJson);
  CHECK(kind("{\"a\":") == MalformedKind::kBadJson);
  CHECK(kind("[1]") == MalformedKind::kBadJson);
  CHECK(kind("\"author\"") == MalformedKind::kBadJson);
  CHECK(kind(R"({"cqrs_id":"author","instance_data":{},"instance_pk":1})") ==
        MalformedKind::kMissingKey);
  CHECK(kind(R"({"signal_type":"SAVE","cqrs_id":"other","instance_data":{},"instance_pk":1})") ==
        MalformedKind::kUnknownCqrsId);
  CHECK(kind(R"({"signal_type":"SAVE","cqrs_id":7,"instance_data":{},"instance_pk":1})") ==
        MalformedKind::kUnknownCqrsId);
  const Malformed m = classify_malformed(
      R"({"signal_type":"UPSERT","cqrs_id":"author","instance_data":{},"instance_pk":1,"retries":4})",
      known);
  CHECK(m.kind == MalformedKind::kBadField);
  CHECK(m.cqrs_id == "author");
  CHECK(m.retries == 4);
  CHECK(to_string(MalformedKind::kBadField) == "bad_field");
  CHECK(to_string(MalformedKind::kUnknownCqrsId) == "unknown_cqrs_id");
}
