// /metrics renders the Prometheus text format; /healthz and /readyz report the checks' state.
#include <atomic>

#include <doctest/doctest.h>
#include <httplib.h>

#include "common/error.hpp"
#include "common/http/server.hpp"

using namespace pgcqrs::http;

TEST_CASE("metrics: counters, gauges and histograms in Prometheus text format") {
  Registry r;
  r.counter("pgcqrs_published_total", "Events published", {{"cqrs_id", "author"}}).inc(3);
  r.counter("pgcqrs_published_total", "Events published", {{"cqrs_id", "author"}}).inc();
  r.gauge("pgcqrs_outbox_backlog", "Outbox rows waiting").set(42);
  auto& h = r.histogram("pgcqrs_batch_size", "Rows per batch", {1, 10, 100});
  h.observe(5);
  h.observe(100);
  h.observe(1000);
  const std::string text = r.render();
  CHECK(text ==
        "# HELP pgcqrs_batch_size Rows per batch\n"
        "# TYPE pgcqrs_batch_size histogram\n"
        "pgcqrs_batch_size_bucket{le=\"1\"} 0\n"
        "pgcqrs_batch_size_bucket{le=\"10\"} 1\n"
        "pgcqrs_batch_size_bucket{le=\"100\"} 2\n"
        "pgcqrs_batch_size_bucket{le=\"+Inf\"} 3\n"
        "pgcqrs_batch_size_sum 1105\n"
        "pgcqrs_batch_size_count 3\n"
        "# HELP pgcqrs_outbox_backlog Outbox rows waiting\n"
        "# TYPE pgcqrs_outbox_backlog gauge\n"
        "pgcqrs_outbox_backlog 42\n"
        "# HELP pgcqrs_published_total Events published\n"
        "# TYPE pgcqrs_published_total counter\n"
        "pgcqrs_published_total{cqrs_id=\"author\"} 4\n");
  CHECK_THROWS_AS(r.gauge("pgcqrs_published_total", "x"), std::logic_error);
}

TEST_CASE("ops server: /metrics, /healthz and /readyz on a loopback port") {
  Registry r;
  r.counter("pgcqrs_test_total", "test").inc(7);
  std::atomic<bool> ready{false};
  OpsServer server(
      r,
      [] {
        return Health{true, ""};
      },
      [&ready] {
        return Health{ready.load(), ready.load() ? "" : "broker: connecting\n"};
      });
  const auto port = server.start("127.0.0.1", 0);
  REQUIRE(port > 0);
  httplib::Client client("127.0.0.1", port);
  auto m = client.Get("/metrics");
  REQUIRE(m);
  CHECK(m->status == 200);
  CHECK(m->body.find("pgcqrs_test_total 7\n") != std::string::npos);
  auto h = client.Get("/healthz");
  REQUIRE(h);
  CHECK(h->status == 200);
  auto notready = client.Get("/readyz");
  REQUIRE(notready);
  CHECK(notready->status == 503);
  CHECK(notready->body == "unhealthy\nbroker: connecting\n");
  ready = true;
  auto isready = client.Get("/readyz");
  REQUIRE(isready);
  CHECK(isready->status == 200);

  OpsServer clash(r, nullptr, nullptr);
  CHECK_THROWS_WITH_AS(clash.start("127.0.0.1", port),
                       doctest::Contains("cannot bind (port in use"), pgcqrs::ConfigError);
  server.stop();
}
