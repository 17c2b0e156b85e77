// `cqrs_dead_letters dump|retry|purge` against real RabbitMQ (and PostgreSQL for the consumer
// that takes retried messages): dump leaves the queue as it was, retry reaches this replica
// only with retries reset and the configured TTL, malformed dead letters are never lost,
// nothing blocks, the vectors' dump format.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <chrono>
#include <csignal>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "common/json.hpp"
#include "common/timestamp.hpp"
#include "support/broker.hpp"
#include "support/replica_fixture.hpp"

using namespace pgcqrs;
using namespace pgcqrs::it;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

const char* const kSchema = R"sql(
CREATE TABLE author (
  id             integer PRIMARY KEY,
  name           text,
  cqrs_revision  integer NOT NULL,
  cqrs_updated   timestamptz NOT NULL
);
)sql";

const char* const kModels = R"toml(
[[replica.model]]
cqrs_id = "author"
table = "author"
)toml";

// max_retries etc. as the fixture's default, and a message_ttl that is not django-cqrs's
// built-in 86400 s, so that the test sees which one retry uses.
const char* const kExtra =
    "max_retries = 2\nretry_delay = 1\nretry_backoff = 2.0\nretry_delay_max = 2\n"
    "message_ttl = 3600\n";

struct Result {
  int rc = -1;
  std::string out;
  std::string err;
  double seconds = 0;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// `pgcqrs dead-letters <action>`, or `cqrs_dead_letters <action>` through the alias.
Result dead_letters(const std::string& config, const std::string& action, bool alias = false) {
  const std::string err_path = write_temp_file(unique_name("stderr"), "");
  const std::string bin = std::string(PGCQRS_BINARY_DIR) + "/bin/";
  const std::string line = "timeout 60 " + bin + (alias ? "cqrs_dead_letters" : "pgcqrs") +
                           " --config '" + config + "'" + (alias ? "" : " dead-letters") + " " +
                           action + " 2>'" + err_path + "'";
  Result r;
  const auto t0 = Clock::now();
  r.rc = run_shell(line, &r.out);
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r.err = read_file(err_path);
  return r;
}

std::string vector_dead_letter() {
  return read_file(std::string(PGCQRS_SOURCE_DIR) + "/tests/vectors/diff/dead_letters_dump.jsonl");
}

// Dead letters as the consumer publishes them: to the exchange, cqrs.<dlq>.<cqrs_id>, with the
// dead-message TTL as AMQP expiration.
void dead_letter(ReplicaFixture& f, const std::string& body,
                 const std::string& cqrs_id = "author") {
  amqp::PublishOptions props;
  props.expiration = "864000000";
  f.publish({{topology::queue_key(f.dead_letter_queue, cqrs_id), body}}, props);
}

// A body straight into the dead-letter queue (default exchange), whatever it holds.
void raw_dead_letter(ReplicaFixture& f, const std::string& body) {
  f.ch.publish("", f.dead_letter_queue, body);
  REQUIRE(f.ch.wait_all_confirms(30s).acked.size() == 1);
}

std::vector<std::string> bodies(const std::vector<amqp::Delivery>& ds) {
  std::vector<std::string> out;
  for (const auto& d : ds)
    out.push_back(d.body);
  return out;
}

}  // namespace

TEST_CASE("dump: the bodies one per line, the queue left with the same messages in order") {
  ReplicaFixture f(kSchema, kModels, kExtra);
  const std::vector<std::string> sent = {
      event_body("SAVE", "author", 1, 3, {{"name", "a/\xc3\xa9"}}, 2),
      "{\"not\": \"json\"",
      event_body("DELETE", "author", 2, 4, json::Json::object(), 2, ""),
      "{\n  \"pretty\": true\n}",
  };
  dead_letter(f, sent[0]);
  raw_dead_letter(f, sent[1]);
  dead_letter(f, sent[2]);
  raw_dead_letter(f, sent[3]);
  REQUIRE(f.ready(f.dead_letter_queue) == 4);

  for (int round = 0; round < 2; ++round) {
    const Result r = dead_letters(f.config_path, "dump", true);
    CHECK(r.rc == 0);
    CHECK(r.out == sent[0] + "\n" + sent[1] + "\n" + sent[2] + "\n{   \"pretty\": true }\n");
    CHECK(r.err.find("dead letter 2/4 (routing key " + f.dead_letter_queue +
                     ") is malformed: not JSON") != std::string::npos);
    CHECK(eventually([&] { return f.ready(f.dead_letter_queue) == 4; }, 10s));
  }
  // same messages, same order, same properties (the dead-message TTL)
  const auto after = f.take(4, 10s);
  CHECK(bodies(after) == sent);
  CHECK(after.at(0).expiration == "864000000");
  CHECK(f.ready(f.dead_letter_queue) == 0);
}

TEST_CASE("dump of the captured django-cqrs dead letter gives the vector's output exactly") {
  ReplicaFixture f(kSchema,
                   kModels + std::string("\n[[replica.model]]\ncqrs_id = \"product\"\n"
                                         "table = \"author\"\n"),
                   kExtra);
  std::string body = vector_dead_letter();
  REQUIRE(!body.empty());
  body.pop_back();  // the file's line break
  dead_letter(f, body, "product");
  const Result r = dead_letters(f.config_path, "dump");
  CHECK(r.rc == 0);
  CHECK(r.out == vector_dead_letter());
  CHECK(r.err ==
        read_file(std::string(PGCQRS_SOURCE_DIR) + "/tests/vectors/diff/dead_letters_dump.err"));
  CHECK(f.ready(f.dead_letter_queue) == 1);
}

TEST_CASE("retry: back to this replica only, retries 0, the configured TTL; bad ones stay") {
  ReplicaFixture f(kSchema, kModels, kExtra);
  // a second replica bound for the same cqrs_id (broadcast and its own direct key)
  const std::string other = unique_name("other_replica");
  TestQueue other_q(f.exchange, other, {"author", topology::queue_key(other, "author")});

  const std::string good1 =
      event_body("SAVE", "author", 7, 3, {{"name", "seven"}}, 2, "2000-01-01T00:00:00+00:00");
  const std::string bad = "not json at all";
  const std::string good2 = event_body("SAVE", "author", 8, 1, {{"name", "eight"}}, 2, "");
  const std::string ghost = event_body("SAVE", "ghost", 1, 0, json::Json::object(), 2);
  dead_letter(f, good1);
  raw_dead_letter(f, bad);
  dead_letter(f, good2);
  raw_dead_letter(f, ghost);

  const Timestamp before = now_utc();
  const Result r = dead_letters(f.config_path, "retry");
  const Timestamp after = now_utc();
  CHECK(r.rc == 1);
  const auto out = [&] {
    std::vector<std::string> v;
    std::istringstream in(r.out);
    for (std::string l; std::getline(in, l);)
      v.push_back(l);
    return v;
  }();
  REQUIRE(out.size() == 7);
  CHECK(out[0] == "Total dead letters: 4");
  CHECK(out[1] == "Retrying: 1/4");
  CHECK(out[3] == "Retrying: 2/4");
  CHECK(out[4] == "Retrying: 3/4");
  CHECK(out[6] == "Retrying: 4/4");
  const json::Json r1 = json::parse(out[2]);
  const json::Json r2 = json::parse(out[5]);
  CHECK(r1["retries"] == 0);
  CHECK(r1["instance_pk"] == 7);
  // expires = now + replica.message_ttl (3600 s), not django-cqrs's fixed 86400 s
  const Timestamp expires = parse_timestamp(r1["expires"].get<std::string>());
  CHECK(expires >= std::chrono::floor<std::chrono::seconds>(before) + 3600s);
  CHECK(expires <= after + 3600s);
  CHECK(r2["retries"] == 0);
  CHECK(r2["expires"].is_null());
  CHECK(r.err.find("dead letter 2/4 not retried, left in " + f.dead_letter_queue + ": not JSON") !=
        std::string::npos);
  CHECK(r.err.find("dead letter 4/4 not retried, left in " + f.dead_letter_queue +
                   ": routing key cqrs." + f.queue + ".ghost reaches no queue") !=
        std::string::npos);
  CHECK(r.err.find("CommandError: 2 dead letter(s) could not be retried") != std::string::npos);

  // the printed bodies are what arrived, in this replica's queue only
  const auto main = f.take(2, 10s, f.queue);
  CHECK(bodies(main) == std::vector<std::string>{out[2], out[5]});
  CHECK(main.at(0).routing_key == topology::queue_key(f.queue, "author"));
  CHECK(main.at(0).expiration.empty());
  CHECK(other_q.take(1, 2s).empty());
  // the two that could not be retried stay, in their order
  CHECK(bodies(f.take(5, 5s)) == std::vector<std::string>{bad, ghost});
}

TEST_CASE("retry with a running consumer: the rows are applied; an empty queue never blocks") {
  ReplicaFixture f(kSchema, kModels, kExtra);
  for (int pk = 1; pk <= 3; ++pk) {
    dead_letter(f, event_body("SAVE", "author", pk, 1, {{"name", "n" + std::to_string(pk)}}, 2));
  }
  Process& consumer = f.start_consumer();
  const Result r = dead_letters(f.config_path, "retry");
  CHECK(r.rc == 0);
  CHECK(r.err == "");
  CHECK(r.out.rfind("Total dead letters: 3\nRetrying: 1/3\n", 0) == 0);
  CHECK(eventually([&] { return f.scalar("SELECT count(*) FROM author") == "3"; }, 30s));
  CHECK(f.rows("SELECT id, name, cqrs_revision FROM author ORDER BY id") ==
        Rows{{"1", "n1", "1"}, {"2", "n2", "1"}, {"3", "n3", "1"}});
  CHECK(f.ready(f.dead_letter_queue) == 0);

  const Result empty = dead_letters(f.config_path, "retry");
  CHECK(empty.rc == 0);
  CHECK(empty.out == "Total dead letters: 0\n");
  CHECK(empty.seconds < 10);
  consumer.signal(SIGTERM);
  CHECK(consumer.wait(30s) == 0);
}

TEST_CASE("purge: the count, then Purged; nothing to purge prints the count only") {
  ReplicaFixture f(kSchema, kModels, kExtra);
  for (int pk = 1; pk <= 3; ++pk)
    dead_letter(f, event_body("SAVE", "author", pk, 1));
  Result r = dead_letters(f.config_path, "purge", true);
  CHECK(r.rc == 0);
  CHECK(r.out == "Total dead letters: 3\nPurged\n");
  CHECK(r.err == "");
  CHECK(f.ready(f.dead_letter_queue) == 0);
  r = dead_letters(f.config_path, "purge");
  CHECK(r.rc == 0);
  CHECK(r.out == "Total dead letters: 0\n");
}

TEST_CASE("setup declares the consumer's topology; usage and configuration errors") {
  ReplicaFixture f(kSchema, kModels, kExtra);
  // the same replica under a queue name nobody declared yet
  const std::string fresh = unique_name("fresh");
  std::string text = read_file(f.config_path);
  const auto at = text.find("queue = \"" + f.queue + "\"");
  REQUIRE(at != std::string::npos);
  text.replace(at, f.queue.size() + 10, "queue = \"" + fresh + "\"");
  const std::string config = write_temp_file(fresh + ".toml", text);
  const Result r = dead_letters(config, "dump");
  CHECK(r.rc == 0);
  CHECK(r.out == "");
  CHECK(f.ready(fresh) == 0);
  CHECK(f.ready("dead_letter_" + fresh) == 0);
  // both bindings of the queue and the dead-letter binding exist
  f.publish({{"author", "b"},
             {topology::queue_key(fresh, "author"), "d"},
             {topology::queue_key("dead_letter_" + fresh, "author"), "x"}});
  CHECK(eventually([&] { return f.ready(fresh) == 2; }, 10s));
  CHECK(eventually([&] { return f.ready("dead_letter_" + fresh) == 1; }, 10s));
  f.ch.delete_queue(fresh);
  f.ch.delete_queue("dead_letter_" + fresh);

  Result bad = dead_letters(f.config_path, "resurrect");
  CHECK(bad.rc == 2);
  bad = dead_letters(f.config_path, "");
  CHECK(bad.rc == 2);
  const std::string master_only =
      write_temp_file(unique_name("m") + ".toml", "[master]\ndatabase = \"" + f.db.url() +
                                                      "\"\n[[master.model]]\ncqrs_id = \"a\"\n"
                                                      "table = \"author\"\n");
  bad = dead_letters(master_only, "dump");
  CHECK(bad.rc == 2);
  CHECK(bad.err.find("[replica] is not configured") != std::string::npos);
}
