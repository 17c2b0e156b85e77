// `pgcqrs consume` under faults: kill -9 mid-batch, a retry waiting across a kill, the replica
// database restarted and RabbitMQ restarted while consuming. Each ends with the replica equal to
// the newest state of every row.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <csignal>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "support/replica_fixture.hpp"

using namespace pgcqrs;
using namespace pgcqrs::it;
using namespace std::chrono_literals;
using json::Json;
using Clock = std::chrono::steady_clock;

namespace {

// Every statement on the table sleeps a little, so that consumption lasts long enough to be
// interrupted (about 2,000 events/s with batches of 20).
const char* const kSlowAuthor = R"sql(
CREATE SCHEMA reads;
CREATE TABLE reads.author (
  id             integer PRIMARY KEY,
  name           varchar(200) NOT NULL,
  cqrs_revision  integer NOT NULL,
  cqrs_updated   timestamptz NOT NULL
);
CREATE FUNCTION reads.slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.005); RETURN NULL; END $$;
CREATE TRIGGER slow AFTER INSERT OR UPDATE ON reads.author
  FOR EACH STATEMENT EXECUTE FUNCTION reads.slow();
)sql";

const char* const kModels = R"toml(
[[replica.model]]
cqrs_id = "author"
table = "reads.author"
)toml";

const char* const kSmallBatches =
    "batch_size = 20\nprefetch = 40\nmax_retries = 2\nretry_delay = 1\nretry_backoff = 2.0\n"
    "retry_delay_max = 2\n";

constexpr int kRows = 2000;
constexpr int kRevisions = 10;

// kRows x kRevisions SAVEs, shuffled.
std::vector<std::pair<std::string, std::string>> shuffled_saves(unsigned seed) {
  std::vector<std::pair<std::string, std::string>> out;
  for (int id = 1; id <= kRows; ++id) {
    for (int rev = 0; rev < kRevisions; ++rev) {
      out.emplace_back(
          "author",
          event_body("SAVE", "author", id, rev,
                     {{"name", "row " + std::to_string(id) + " rev " + std::to_string(rev)}}));
    }
  }
  std::mt19937 rng(seed);
  std::shuffle(out.begin(), out.end(), rng);
  return out;
}

int count(const ReplicaFixture& f, const std::string& where = "true") {
  return std::stoi(f.scalar("SELECT count(*) FROM reads.author WHERE " + where));
}

// Every row at its newest revision with that revision's name.
bool converged(const ReplicaFixture& f) {
  return count(f, "cqrs_revision = " + std::to_string(kRevisions - 1) +
                      " AND name = 'row ' || "
                      "id || ' rev " +
                      std::to_string(kRevisions - 1) + "'") == kRows;
}

}  // namespace

TEST_CASE("kill -9 mid-batch, five times, restarted each time: the replica ends equal") {
  ReplicaFixture f(kSlowAuthor, kModels, kSmallBatches);
  f.publish(shuffled_saves(1));
  for (int kill = 0; kill < 5; ++kill) {
    Process& c = f.start_consumer();
    const int before = count(f);
    REQUIRE(eventually([&] { return count(f) > before + 200; }, 30s));
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + 37 * kill));
    c.signal(SIGKILL);
    CHECK(c.wait(10s) == 128 + SIGKILL);
  }
  MESSAGE(count(f) << " rows present after 5 kills");
  f.start_consumer();
  CHECK(eventually([&] { return converged(f); }, 120s));
  CHECK(count(f) == kRows);
  CHECK(eventually([&] { return f.ready() == 0; }, 10s));
}

TEST_CASE("a retry waiting in its delay queue survives kill -9 of the consumer") {
  ReplicaFixture f(kSlowAuthor, kModels, kSmallBatches);
  Process& first = f.start_consumer();
  f.publish("author", event_body("SAVE", "author", 1, 0, {{"name", std::string(300, 'x')}}));
  REQUIRE(
      eventually([&] { return first.log().find("CQRS is delayed") != std::string::npos; }, 20s));
  first.signal(SIGKILL);
  first.wait(10s);
  // the retry is in <queue>.retry.1s or already back in the queue: nothing was held in memory
  // (2 if the kill fell between the retry's confirm and the original's ack: a duplicate, never
  // a loss)
  std::this_thread::sleep_for(3s);
  CHECK(f.ready() + f.ready(replica::delay_queue_name(f.queue, 1s)) +
            f.ready(replica::delay_queue_name(f.queue, 2s)) >=
        1);
  Process& second = f.start_consumer();
  const auto dead = f.take(1, 30s);
  REQUIRE_MESSAGE(dead.size() == 1, second.log());
  CHECK(json::parse(dead[0].body)["retries"] == 2);
  CHECK(count(f) == 0);
}

TEST_CASE("the replica database restarted while consuming: the consumer reconnects, converges") {
  ReplicaFixture f(kSlowAuthor, kModels, kSmallBatches);
  f.publish(shuffled_saves(2));
  Process& c = f.start_consumer();
  REQUIRE(eventually([&] { return count(f) > 300; }, 30s));
  f.conn.reset();
  stop_postgres();
  std::this_thread::sleep_for(3s);
  start_postgres();
  f.conn = std::make_unique<pqxx::connection>(f.db.url());
  const int after = count(f);
  MESSAGE(after << " rows present after the restart");
  CHECK(eventually([&] { return converged(f); }, 120s));
  CHECK(count(f) == kRows);
  CHECK(eventually([&] { return f.ready() == 0; }, 10s));
  CHECK(c.running());
  CHECK(c.log().find("restarting in") != std::string::npos);
}

TEST_CASE("RabbitMQ restarted while consuming: the consumer reconnects, converges") {
  ReplicaFixture f(kSlowAuthor, kModels, kSmallBatches);
  f.publish(shuffled_saves(3));
  Process& c = f.start_consumer();
  REQUIRE(eventually([&] { return count(f) > 300; }, 30s));
  f.ch = amqp::Channel();
  f.broker.reset();
  stop_rabbitmq();
  std::this_thread::sleep_for(2s);
  start_rabbitmq();
  f.open_broker();
  CHECK(eventually([&] { return converged(f); }, 120s));
  CHECK(count(f) == kRows);
  CHECK(eventually([&] { return f.ready() == 0; }, 20s));
  CHECK(c.running());
  CHECK(c.log().find("restarting in") != std::string::npos);
  REQUIRE(eventually([&] { return f.consumer_ready(); }, 30s));
}

TEST_CASE("a delay queue deleted under the consumer: the retry is not lost, the queue comes back") {
  ReplicaFixture f(kSlowAuthor, kModels, kSmallBatches);
  Process& c = f.start_consumer();
  REQUIRE(eventually([&] { return f.consumer_ready(); }, 30s));
  f.ch.delete_queue(replica::delay_queue_name(f.queue, 1s));
  f.publish("author", event_body("SAVE", "author", 1, 0, {{"name", std::string(300, 'x')}}));
  const auto dead = f.take(1, 60s);
  REQUIRE_MESSAGE(dead.size() == 1, c.log());
  CHECK(json::parse(dead[0].body)["retries"] == 2);
  CHECK(c.log().find("could not route a retry or dead letter") != std::string::npos);
  CHECK(c.running());
}
