// `pgcqrs consume` against real PostgreSQL and RabbitMQ: vectors land exactly, revision
// decisions and their log lines, retries and dead letters, malformed bodies, SIGTERM, workers,
// mapping / apply_function / --cqrs-id / only_direct_syncs / quoted names, metrics.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <algorithm>
#include <csignal>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "common/error.hpp"
#include "common/http/metrics.hpp"
#include "common/json.hpp"
#include "common/signals.hpp"
#include "replica/consumer.hpp"
#include "support/master_fixture.hpp"
#include "support/replica_fixture.hpp"

using namespace pgcqrs;
using namespace pgcqrs::it;
using namespace std::chrono_literals;
using json::Json;
using Clock = std::chrono::steady_clock;

namespace doctest {
template <>
struct StringMaker<Rows> {
  static String convert(const Rows& rows) {
    std::string out = "\n";
    for (const auto& row : rows) {
      for (const auto& f : row)
        out += "[" + f + "] ";
      out += "\n";
    }
    return out.c_str();
  }
};
}  // namespace doctest

namespace {

// The replica side of the vectors' models (tests/vectors/README.md).
const char* const kReadModels = R"sql(
CREATE SCHEMA reads;
CREATE TABLE reads.author (
  id             integer PRIMARY KEY,
  name           varchar(200) NOT NULL,
  cqrs_revision  integer NOT NULL,
  cqrs_updated   timestamptz NOT NULL
);
CREATE TABLE reads.product (
  id              integer PRIMARY KEY,
  name            varchar(200) NOT NULL,
  description     text,
  price           numeric(12,2),
  in_stock        boolean,
  released_at     timestamptz,
  release_date    date,
  sku             uuid,
  attrs           jsonb,
  quantity        bigint,
  weight          double precision,
  note            varchar(100),
  discontinued_on date,
  author_id       integer,
  cqrs_revision   integer NOT NULL,
  cqrs_updated    timestamptz NOT NULL
);
)sql";

const char* const kModels = R"toml(
[[replica.model]]
cqrs_id = "author"
table = "reads.author"

[[replica.model]]
cqrs_id = "product"
table = "reads.product"
mapping = { author = "author_id" }
)toml";

const char* const kProductColumns =
    "SELECT id::text, name, description, price::text, in_stock::text, released_at::text, "
    "release_date::text, sku::text, attrs::text, quantity::text, weight::text, note, "
    "discontinued_on::text, author_id::text, cqrs_revision::text, cqrs_updated::text "
    "FROM reads.product AS p ORDER BY p.id";
const char* const kAuthorColumns =
    "SELECT id::text, name, cqrs_revision::text, cqrs_updated::text FROM reads.author AS a "
    "ORDER BY a.id";
const char* const kTombstones =
    "SELECT cqrs_id, pk, revision::text FROM cqrs.tombstone ORDER BY cqrs_id, pk";

// The master's final state after every vector (as in replica_apply_test.cpp).
const Rows kFinalProducts = {
    {"2", "Tx step 2", "Line 1 of 2\nLine 2 \\ tab\t end", "96531.14", "false",
     "2026-11-20 02:05:10.97662+00", "2020-01-03", "8b9d2434-e465-4150-bd9c-66b3ad3c2d6d",
     R"({"dims": {"h": 1.5, "w": 2}, "flag": null, "tags": ["a", "b"], "color": "blue", "updated": true})",
     "-549753813882", "8.694", "<null>", "2030-12-31", "2", "4", "2026-11-22 02:05:17.061486+00"},
    {"3", "Product 3 (upd)", "Line 1 of 3\nLine 2 \\ tab\t end", "55303.05", "false",
     "2026-11-19 02:05:11.009155+00", "2020-01-04", "3b8faa18-37f8-488b-97fc-695a07a0ca6e",
     R"({"dims": {"h": 1.5, "w": 3}, "flag": null, "tags": ["a", "b"], "color": "red", "updated": true})",
     "-549752813879", "<null>", "<null>", "<null>", "3", "2", "2026-11-22 02:05:16.138009+00"},
    {"6", "Orphan 6", "", "0.10", "true", "2026-11-22 02:05:12.351688+00", "2024-02-29",
     "0831803b-97ef-4a24-bfd0-59391f43e040", R"({"nested": {"list": [1, 2.5, null, true, "x"]}})",
     "-1", "<null>", "<null>", "<null>", "<null>", "0", "2026-11-22 02:05:12.363925+00"},
    {"7", "Caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80 \"q\" a/b <tag> &amp;",
     "ctrl:\x01\x1f end\r\n", "9999999999.99", "false", "2024-01-01 00:00:00+00", "1999-12-31",
     "00000000-0000-4000-8000-000000000000", R"([1, "two", {"3": 4.0}])", "9007199254740993",
     "1e-07", "", "<null>", "2", "0", "2026-11-22 02:05:13.295308+00"},
};
const Rows kFinalAuthors = {
    {"2", "Renamed 2", "2", "2026-11-22 02:05:17.023463+00"},
    {"3", "Author 3 (upd)", "1", "2026-11-22 02:05:11.120867+00"},
    {"10", "Bulk 10", "0", "2026-11-22 02:05:16.175+00"},
    {"11", "Bulk 11", "0", "2026-11-22 02:05:16.17506+00"},
};
const Rows kFinalTombstones = {
    {"author", "1", "2"},   {"author", "4", "2"},  {"product", "1", "2"},
    {"product", "20", "1"}, {"product", "4", "2"},
};

// Each captured delivery as (routing key for fixture `f`, raw body). The bodies are the exact
// bytes django-cqrs sent, except `expires`, moved to 2099 (the captured ones expire a day after
// capture); routing keys of the captured queue `replica` name the fixture's queue instead.
std::vector<std::pair<std::string, std::string>> vector_messages(const ReplicaFixture& f) {
  std::ifstream in(source_dir() + "/tests/vectors/messages.jsonl", std::ios::binary);
  REQUIRE(in.good());
  std::vector<std::pair<std::string, std::string>> out;
  const std::regex expires(R"re("expires":"[^"]*")re");
  for (std::string line; std::getline(in, line);) {
    const Json m = json::parse(line);
    std::string key = m.at("routing_key").get<std::string>();
    for (const std::string old : {"cqrs.replica.", "cqrs.dead_letter_replica."}) {
      if (key.rfind(old, 0) == 0) key = "cqrs." + f.queue + "." + key.substr(old.size());
    }
    std::string body = m.at("body_raw").get<std::string>();
    body = std::regex_replace(body, expires, R"("expires":"2099-01-01T00:00:00+00:00")");
    out.emplace_back(key, body);
  }
  return out;
}

bool log_has(const Process& p, const std::string& text) {
  return p.log().find(text) != std::string::npos;
}

std::size_t log_count(const Process& p, const std::string& text) {
  const std::string log = p.log();
  std::size_t n = 0;
  for (std::size_t pos = log.find(text); pos != std::string::npos; pos = log.find(text, pos + 1))
    ++n;
  return n;
}

std::string author_state(const ReplicaFixture& f, int id) {
  const Rows r =
      f.rows("SELECT name, cqrs_revision::text FROM reads.author WHERE id = " + std::to_string(id));
  return r.empty() ? std::string("<none>") : r[0][0] + "@" + r[0][1];
}

void wait_ready(const ReplicaFixture& f) {
  REQUIRE(eventually([&] { return f.consumer_ready(); }, 30s));
}

}  // namespace

TEST_CASE("every captured message, published raw: rows equal the master's, types exact") {
  ReplicaFixture f(kReadModels, kModels);
  const auto messages = vector_messages(f);
  REQUIRE(messages.size() == 45);
  f.publish(messages);
  Process& c = f.start_consumer();
  REQUIRE(eventually([&] { return f.rows(kTombstones) == kFinalTombstones; }, 30s));
  REQUIRE(eventually([&] { return f.rows(kProductColumns) == kFinalProducts; }, 10s));
  CHECK(f.rows(kProductColumns) == kFinalProducts);
  CHECK(f.rows(kAuthorColumns) == kFinalAuthors);
  CHECK(f.rows(kTombstones) == kFinalTombstones);
  CHECK(eventually([&] { return f.ready() == 0; }, 10s));

  // the metrics tell the same story: 45 deliveries, 13 rows changed, the rest skipped
  wait_ready(f);
  const auto sum = [&](const std::string& name, const std::vector<std::string>& label_sets) {
    double total = 0;
    for (const auto& l : label_sets)
      total += std::max(0.0, f.metric(name + "{" + l + "}"));
    return total;
  };
  const std::vector<std::string> ids = {R"(cqrs_id="author")", R"(cqrs_id="product")"};
  std::vector<std::string> skipped;
  for (const auto& id : ids) {
    for (const char* reason : {"older", "duplicate", "deleted", "superseded", "indirect_sync"})
      skipped.push_back(id + ",reason=\"" + reason + "\"");
  }
  CHECK(sum("pgcqrs_replica_applied_total", ids) + sum("pgcqrs_replica_skipped_total", skipped) ==
        45);
  CHECK(sum("pgcqrs_replica_applied_total", ids) >= 13);
  CHECK(f.metric("pgcqrs_replica_batch_size_count") >= 1);
  CHECK(f.metric("pgcqrs_replica_apply_seconds_count") >= 1);
  CHECK(f.metric(R"(pgcqrs_replica_lag_seconds{cqrs_id="product"})") > 0);
  CHECK(f.metric("pgcqrs_replica_workers_consuming") == 1);
  CHECK(run_shell("curl -sf http://127.0.0.1:" + std::to_string(f.http_port) + "/healthz") == 0);
  CHECK(c.running());
}

TEST_CASE("revision decisions one delivery at a time, with django-cqrs's log lines") {
  ReplicaFixture f(kReadModels, kModels, "batch_size = 1\nprefetch = 1\n");
  Process& c = f.start_consumer();
  const auto send = [&](const std::string& signal, int id, int rev, const std::string& name) {
    f.publish("author", event_body(signal, "author", id, rev,
                                   signal == "DELETE" ? Json::object() : Json{{"name", name}}));
  };
  const auto expect = [&](int id, const std::string& state) {
    CHECK(eventually([&] { return author_state(f, id) == state; }, 10s));
  };
  send("SAVE", 1, 3, "three");
  expect(1, "three@3");
  send("SAVE", 1, 2, "two");          // older: skipped
  send("SAVE", 1, 3, "three again");  // equal: skipped
  send("SAVE", 2, 0, "zero");
  send("SAVE", 2, 0, "zero again");  // duplicate at revision 0: race warning too
  send("SAVE", 1, 6, "six");         // gap: 4 and 5 lost
  expect(1, "six@6");
  CHECK(eventually(
      [&] {
        return log_has(
            c, "Wrong CQRS sync order: pk = 1, cqrs_revision = new 2 / existing 3 (author).");
      },
      5s));
  CHECK(log_has(c, "Received duplicate CQRS data: pk = 1, cqrs_revision = 3 (author)."));
  CHECK(log_has(c, "Received duplicate CQRS data: pk = 2, cqrs_revision = 0 (author)."));
  CHECK(log_has(c, "CQRS potential creation race condition: pk = 2 (author)."));
  CHECK(log_has(c, "Lost or filtered out (2) CQRS packages: pk = 1, cqrs_revision = 6 (author)"));
  CHECK(author_state(f, 2) == "zero@0");

  send("SYNC", 1, 1, "synced down");  // SYNC applies even when older
  expect(1, "synced down@1");
  CHECK(eventually(
      [&] {
        return log_has(c,
                       "CQRS revision downgrade on sync: pk = 1, cqrs_revision = new 1 / existing "
                       "6 (author).");
      },
      5s));

  send("DELETE", 1, 2, "");
  expect(1, "<none>");
  send("SAVE", 1, 1, "late");  // older than the delete: stays deleted
  send("SAVE", 1, 2, "late too");
  send("SAVE", 3, 0, "marker");
  expect(3, "marker@0");
  CHECK(author_state(f, 1) == "<none>");
  CHECK(log_has(c,
                "CQRS SAVE after DELETE ignored: pk = 1, cqrs_revision = 2 / tombstone 2, "
                "cqrs_updated = 2026-11-22 10:00:02.123456+00:00 is before the DELETE's "
                "2026-11-22 10:00:02.623456+00:00 (author)."));
  // the master creates the key again: revision 0, written after the delete
  f.publish("author", event_body("SAVE", "author", 1, 0,
                                 {{"name", "reborn"}, {"cqrs_updated", "2026-11-22 10:05:00Z"}}));
  expect(1, "reborn@0");
  send("SAVE", 1, 1, "late");  // the deleted row's SAVE, again: the new row stays
  send("SAVE", 3, 1, "marker 2");
  expect(3, "marker 2@1");
  CHECK(author_state(f, 1) == "reborn@0");

  // duplicate deliveries of one message change nothing
  const std::string dup = event_body("SAVE", "author", 4, 1, {{"name", "dup"}});
  f.publish({{"author", dup}, {"author", dup}, {"author", dup}});
  expect(4, "dup@1");
  CHECK(eventually([&] { return f.ready() == 0; }, 10s));
  CHECK(author_state(f, 4) == "dup@1");
  CHECK(c.running());
}

TEST_CASE("a key deleted and created again at revision 0 comes back, in one batch or several") {
  // per key: the old row's SAVE (revision 0), its DELETE (revision 1, at `deleted`), then
  const std::string deleted = updated_at(1, true);
  struct Case {
    int id;
    std::string name, updated, expected;
  };
  const std::vector<Case> cases = {
      {1, "new", "2026-11-22 10:00:05+00:00", "new@0"},             // the key created again
      {2, "late", "2026-11-22T10:00:01.5Z", "<none>"},              // a late SAVE of the old row
      {3, "replaced", deleted, "replaced@0"},                       // in the DELETE's transaction
      {4, "old tombstone", "2026-11-22 10:00:05+00:00", "<none>"},  // tombstone without a time
  };
  const auto run = [&](const std::string& extra, bool one_batch) {
    ReplicaFixture f(kReadModels, kModels, extra);
    std::vector<std::pair<std::string, std::string>> messages;
    for (const Case& k : cases) {
      if (k.id == 4) continue;
      messages.emplace_back("author", event_body("SAVE", "author", k.id, 0, {{"name", "old"}}));
      messages.emplace_back("author", event_body("DELETE", "author", k.id, 1));
      messages.emplace_back("author", event_body("SAVE", "author", k.id, 0,
                                                 {{"name", k.name}, {"cqrs_updated", k.updated}}));
    }
    // as pgcqrs before migration 0002 left it
    f.sql("INSERT INTO cqrs.tombstone (cqrs_id, pk, revision) VALUES ('author', '4', 1)");
    messages.emplace_back(
        "author", event_body("SAVE", "author", 4, 0,
                             {{"name", cases[3].name}, {"cqrs_updated", cases[3].updated}}));
    messages.emplace_back("author", event_body("SAVE", "author", 9, 0, {{"name", "marker"}}));
    Process* c = nullptr;
    if (!one_batch) c = &f.start_consumer();
    f.publish(messages);
    if (one_batch) c = &f.start_consumer();
    REQUIRE(eventually([&] { return author_state(f, 9) == "marker@0"; }, 30s));
    for (const Case& k : cases) {
      CAPTURE(k.id);
      CHECK(author_state(f, k.id) == k.expected);
    }
    CHECK(f.rows("SELECT pk, revision::text, coalesce(updated::text, '-') FROM cqrs.tombstone "
                 "ORDER BY pk") == Rows{{"1", "1", "2026-11-22 10:00:01.623456+00"},
                                        {"2", "1", "2026-11-22 10:00:01.623456+00"},
                                        {"3", "1", "2026-11-22 10:00:01.623456+00"},
                                        {"4", "1", "-"}});
    if (one_batch) {
      MESSAGE("batches: " << f.metric("pgcqrs_replica_batch_size_count"));
    } else {
      CHECK(log_has(*c,
                    "CQRS SAVE after DELETE ignored: pk = 2, cqrs_revision = 0 / tombstone 1, "
                    "cqrs_updated = 2026-11-22 10:00:01.500000+00:00 is before the DELETE's "
                    "2026-11-22 10:00:01.623456+00:00 (author)."));
    }
    CHECK(c->running());
  };
  SUBCASE("one delivery per batch") {
    run("batch_size = 1\nprefetch = 1\n", false);
  }
  SUBCASE("all in one batch") {
    run("", true);
  }
}

TEST_CASE("10,000 events over 1,000 rows, shuffled: the table is the newest state") {
  ReplicaFixture f(kReadModels, kModels);
  std::vector<std::pair<std::string, std::string>> messages;
  for (int id = 1; id <= 1000; ++id) {
    for (int rev = 0; rev < 10; ++rev) {
      messages.emplace_back(
          "author",
          event_body("SAVE", "author", id, rev,
                     {{"name", "row " + std::to_string(id) + " rev " + std::to_string(rev)}}));
    }
  }
  std::mt19937 rng(42);
  std::shuffle(messages.begin(), messages.end(), rng);
  f.publish(messages);
  const auto started = Clock::now();
  f.start_consumer();
  const std::string done =
      "SELECT count(*) FROM reads.author WHERE cqrs_revision = 9 AND name = 'row ' || id || ' rev "
      "9'";
  REQUIRE(eventually([&] { return f.scalar(done) == "1000"; }, 60s));
  MESSAGE("10,000 shuffled events applied in "
          << std::chrono::duration<double>(Clock::now() - started).count() << " s");
  CHECK(f.scalar("SELECT count(*) FROM reads.author") == "1000");
  CHECK(eventually([&] { return f.ready() == 0; }, 10s));
}

TEST_CASE("a poison message among 1,000 good ones: 999 applied promptly, it is dead-lettered") {
  // max_retries 2, delays 1 s then 2 s
  ReplicaFixture f(kReadModels, kModels);
  std::vector<std::pair<std::string, std::string>> messages;
  for (int id = 1; id <= 1000; ++id) {
    const Json fields =
        id == 500 ? Json{{"name", "Poison"}, {"quantity", "not a number"}}
                  : Json{{"name", std::string("P").append(std::to_string(id))}, {"quantity", id}};
    messages.emplace_back("product", event_body("SAVE", "product", id, 0, fields));
  }
  f.publish(messages);
  const auto started = Clock::now();
  Process& c = f.start_consumer();
  REQUIRE(eventually([&] { return f.scalar("SELECT count(*) FROM reads.product") == "999"; }, 30s));
  const double took = std::chrono::duration<double>(Clock::now() - started).count();
  MESSAGE("999 good rows applied in " << took << " s");
  CHECK(took < 10);
  CHECK(f.scalar("SELECT count(*) FROM reads.product WHERE id = 500") == "0");

  const auto dead = f.take(1, 30s);
  REQUIRE(dead.size() == 1);
  const Json body = json::parse(dead[0].body);
  CHECK(body["retries"] == 2);
  CHECK(body["instance_pk"] == 500);
  CHECK(body["instance_data"]["quantity"] == "not a number");
  CHECK(dead[0].routing_key == "cqrs." + f.dead_letter_queue + ".product");
  CHECK(dead[0].expiration == "864000000");
  CHECK(log_count(c, "CQRS is delayed: pk = 500 (product)") == 2);
  CHECK(log_has(c,
                "CQRS is failed: pk = 500 (product), correlation_id = None, retries = 2: "
                "apply SAVE product pk=500 revision=0 to \"reads\".\"product\": column "
                "\"quantity\" value '\"not a number\"'"));
  CHECK(log_has(c, "CQRS is added to dead letter queue: cqrs_id = product"));
  CHECK(f.metric(R"(pgcqrs_replica_retried_total{cqrs_id="product"})") == 2);
  CHECK(f.metric(R"(pgcqrs_replica_dead_lettered_total{cqrs_id="product",reason="max_retries"})") ==
        1);
  CHECK(f.take(1, 1s).empty());  // exactly one
  CHECK(f.ready() == 0);
  CHECK(f.ready(replica::delay_queue_name(f.queue, 1s)) == 0);
  CHECK(f.ready(replica::delay_queue_name(f.queue, 2s)) == 0);
}

TEST_CASE("max_retries = 0: dead-lettered at the first failure; expired: dead-lettered unapplied") {
  ReplicaFixture f(kReadModels, kModels, "max_retries = 0\ndead_message_ttl = 60\n");
  f.start_consumer();
  f.publish("product", event_body("SAVE", "product", 1, 0, {{"name", "bad"}, {"price", "abc"}}));
  auto dead = f.take(1, 20s);
  REQUIRE(dead.size() == 1);
  CHECK(json::parse(dead[0].body)["retries"] == 0);
  CHECK(dead[0].expiration == "60000");

  // expired an hour ago: not applied, dead-lettered with its retries as they were
  const std::string expired =
      event_body("SAVE", "author", 7, 0, {{"name", "too late"}}, 1, "2026-01-01T00:00:00+00:00");
  f.publish("author", expired);
  f.publish("author", event_body("SAVE", "author", 8, 0, {{"name", "in time"}}));
  REQUIRE(eventually([&] { return author_state(f, 8) == "in time@0"; }, 20s));
  dead = f.take(1, 20s);
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].body == expired);
  CHECK(dead[0].routing_key == "cqrs." + f.dead_letter_queue + ".author");
  CHECK(author_state(f, 7) == "<none>");
  CHECK(f.metric(R"(pgcqrs_replica_dead_lettered_total{cqrs_id="author",reason="expired"})") == 1);
}

TEST_CASE("a column widened while a retry waits: the retry applies without a restart") {
  ReplicaFixture f(kReadModels, kModels, "max_retries = 5\nretry_delay = 1\nretry_backoff = 1.0\n");
  f.start_consumer();
  // 300 characters do not fit varchar(200): the row fails and waits in the delay queue
  const std::string long_name(300, 'x');
  f.publish("author", event_body("SAVE", "author", 1, 0, {{"name", long_name}}));
  REQUIRE(eventually(
      [&] { return f.metric(R"(pgcqrs_replica_retried_total{cqrs_id="author"})") >= 1; }, 20s));
  // the operator fixes the table; the consumer reads the columns again after a failure
  f.sql("ALTER TABLE reads.author ALTER COLUMN name TYPE text");
  CHECK(eventually([&] { return author_state(f, 1) == long_name + "@0"; }, 30s));
  CHECK(f.take(1, 2s).empty());  // nothing dead-lettered
}

TEST_CASE("malformed bodies: logged with the reason, rejected or dead-lettered, counted") {
  ReplicaFixture f(kReadModels, kModels);
  Process& c = f.start_consumer();
  const std::string good = event_body("SAVE", "author", 1, 0, {{"name", "fine"}});
  const auto with = [&](const std::string& key, const Json& value) {
    Json b = json::parse(good);
    b[key] = value;
    return json::dump(b);
  };
  const auto without = [&](const std::string& key) {
    Json b = json::parse(good);
    b.erase(key);
    return json::dump(b);
  };
  // rejected: nothing to route a dead letter by
  const std::vector<std::string> rejected = {"{not json", "[1, 2]", without("instance_pk"),
                                             without("signal_type"), with("cqrs_id", "nobody")};
  // dead-lettered: a known cqrs_id, a field that can never decode
  const std::vector<std::string> dead = {
      with("instance_data", "a string"),
      with("expires", "2026-11-23 02:05:10"),  // naive
      with("expires", "tomorrow"),
      with("retries", "3"),
      with("retries", 1.5),
      with("signal_type", "UPSERT"),
      with("instance_pk", Json::array()),
  };
  for (const auto& b : rejected)
    f.publish("author", b);
  for (const auto& b : dead)
    f.publish("author", b);
  f.publish("author", good);
  REQUIRE(eventually([&] { return author_state(f, 1) == "fine@0"; }, 20s));
  const auto letters = f.take(dead.size() + 1, 10s);
  REQUIRE(letters.size() == dead.size());
  for (std::size_t i = 0; i < dead.size(); ++i) {
    CHECK(letters[i].body == dead[i]);
    CHECK(letters[i].routing_key == "cqrs." + f.dead_letter_queue + ".author");
  }
  CHECK(eventually([&] { return f.ready() == 0; }, 10s));
  CHECK(c.running());
  CHECK(log_has(c, "CQRS couldn't be parsed: JSON body: "));
  CHECK(log_has(c, "CQRS couldn't proceed, body: missing required key 'instance_pk'"));
  CHECK(log_has(c, "No model with such CQRS_ID: nobody."));
  CHECK(log_has(c, "expires '2026-11-23 02:05:10': no UTC offset"));
  CHECK(log_has(c, "retries '\"3\"': not a non-negative integer"));
  CHECK(log_has(c, "signal_type 'UPSERT': unknown; expected SAVE, DELETE or SYNC"));
  CHECK(f.metric(R"(pgcqrs_replica_malformed_total{reason="json"})") == 2);
  CHECK(f.metric(R"(pgcqrs_replica_malformed_total{reason="missing_key"})") == 2);
  CHECK(f.metric(R"(pgcqrs_replica_malformed_total{reason="unknown_cqrs_id"})") == 1);
  CHECK(f.metric(R"(pgcqrs_replica_malformed_total{reason="bad_field"})") ==
        static_cast<double>(dead.size()));
  CHECK(f.metric(R"(pgcqrs_replica_dead_lettered_total{cqrs_id="author",reason="malformed"})") ==
        static_cast<double>(dead.size()));
}

TEST_CASE("SIGTERM: the batch in hand is committed and acked, exit 0, nothing lost") {
  ReplicaFixture f(kReadModels, kModels, "batch_size = 100\nprefetch = 200\n");
  std::vector<std::pair<std::string, std::string>> messages;
  for (int id = 1; id <= 20000; ++id)
    messages.emplace_back("author", event_body("SAVE", "author", id, 0, {{"name", "n"}}));
  f.publish(messages);
  Process& c = f.start_consumer();
  REQUIRE(eventually(
      [&] { return std::stoi(f.scalar("SELECT count(*) FROM reads.author")) > 1000; }, 30s));
  c.signal(SIGTERM);
  CHECK(c.wait(20s) == 0);
  CHECK(log_has(c, "consume: stopped"));
  // every delivery is either applied or back in the queue, never acked unapplied
  const int applied = std::stoi(f.scalar("SELECT count(*) FROM reads.author"));
  const auto left = static_cast<int>(f.ready());
  MESSAGE(applied << " applied before SIGTERM, " << left << " left in the queue");
  CHECK(applied < 20000);
  CHECK(applied + left >= 20000);
  f.start_consumer();
  CHECK(eventually([&] { return f.scalar("SELECT count(*) FROM reads.author") == "20000"; }, 60s));
}

TEST_CASE("-w 4 with hot rows: each row ends at its newest revision") {
  ReplicaFixture f(kReadModels, kModels, "batch_size = 50\nprefetch = 100\n");
  std::vector<std::pair<std::string, std::string>> messages;
  for (int rev = 0; rev < 200; ++rev) {
    for (int id = 1; id <= 20; ++id) {
      const bool gone = rev == 150 && id % 5 == 0;  // some rows deleted on the way, then back
      messages.emplace_back(
          "author", gone ? event_body("DELETE", "author", id, rev)
                         : event_body("SAVE", "author", id, rev,
                                      {{"name", std::string("v").append(std::to_string(rev))}}));
    }
  }
  // mostly in order, with local disorder, as several publishers would produce
  std::mt19937 rng(7);
  for (std::size_t i = 0; i + 40 < messages.size(); i += 20)
    std::shuffle(messages.begin() + static_cast<long>(i),
                 messages.begin() + static_cast<long>(i + 40), rng);
  f.publish(messages);
  Process& c = f.start_consumer({"-w", "4"});
  REQUIRE(eventually(
      [&] {
        return f.scalar(
                   "SELECT count(*) FROM reads.author WHERE cqrs_revision = 199 AND name = "
                   "'v199'") == "20";
      },
      60s));
  CHECK(eventually([&] { return f.ready() == 0; }, 10s));
  for (const char* w : {"worker 1: consuming", "worker 2: consuming", "worker 3: consuming",
                        "worker 4: consuming"}) {
    CHECK(log_has(c, w));
  }
  wait_ready(f);
  CHECK(f.metric("pgcqrs_replica_workers_consuming") == 4);
  CHECK(f.metric("pgcqrs_replica_worker_restarts_total") == 0);
}

TEST_CASE("mapping, apply_function, quoted names, only_direct_syncs, --cqrs-id subset") {
  const char* const schema = R"sql(
CREATE SCHEMA "Reads";
CREATE TABLE "Reads"."Mixed Author" (
  "Key"          integer PRIMARY KEY,
  "Full Name"    text NOT NULL,
  cqrs_revision  bigint NOT NULL,
  cqrs_updated   timestamptz NOT NULL
);
CREATE TABLE "Reads".direct (id integer PRIMARY KEY, name text, cqrs_revision int NOT NULL,
                             cqrs_updated timestamptz NOT NULL);
CREATE TABLE "Reads".unbound (id integer PRIMARY KEY, name text, cqrs_revision int NOT NULL,
                              cqrs_updated timestamptz NOT NULL);
CREATE TABLE "Reads".calls (n serial PRIMARY KEY, signal text, data jsonb, previous jsonb,
                            meta jsonb);
CREATE FUNCTION "Reads".on_event(signal text, data jsonb, previous_data jsonb, meta jsonb)
RETURNS void LANGUAGE sql AS $$
  INSERT INTO "Reads".calls (signal, data, previous, meta) VALUES (signal, data, previous_data, meta)
$$;
)sql";
  const char* const models = R"toml(
[[replica.model]]
cqrs_id = "mixed"
table = '"Reads"."Mixed Author"'
mapping = { id = "Key", name = "Full Name" }

[[replica.model]]
cqrs_id = "direct"
table = '"Reads".direct'
only_direct_syncs = true

[[replica.model]]
cqrs_id = "unbound"
table = '"Reads".unbound'

[[replica.model]]
cqrs_id = "events"
table = '"Reads".calls'
apply_function = '"Reads".on_event'
mapping = { name = "title" }
)toml";
  ReplicaFixture f(schema, models);
  // only these three are bound (-cid as django-cqrs spells it): drop what the fixture bound
  f.ch.unbind_queue(f.queue, f.exchange, "unbound");
  f.ch.unbind_queue(f.queue, f.exchange, "cqrs." + f.queue + ".unbound");
  Process& c = f.start_consumer({"-cid", "mixed", "-cid", "direct", "--cqrs-id", "events"});
  wait_ready(f);

  f.publish("mixed", event_body("SAVE", "mixed", 1, 0, {{"name", "Ann"}, {"extra", 1}}));
  f.publish("unbound", event_body("SAVE", "unbound", 1, 0, {{"name", "never"}}));
  f.publish("direct", event_body("SYNC", "direct", 1, 0, {{"name", "broadcast sync"}}));
  f.publish("cqrs." + f.queue + ".direct",
            event_body("SYNC", "direct", 2, 0, {{"name", "direct sync"}}));
  f.publish("direct", event_body("SAVE", "direct", 3, 0, {{"name", "save"}}));
  Json ev = json::parse(event_body("SAVE", "events", 5, 1, {{"name", "T"}}));
  ev["previous_data"] = {{"name", "old"}};
  ev["meta"] = {{"origin", "test"}};
  f.publish("events", json::dump(ev));
  f.publish("events", event_body("DELETE", "events", 5, 2));

  CHECK(eventually(
      [&] {
        return f.rows(
                   R"(SELECT "Key"::text, "Full Name", cqrs_revision::text FROM "Reads"."Mixed Author")") ==
               Rows{{"1", "Ann", "0"}};
      },
      20s));
  CHECK(eventually(
      [&] {
        return f.rows(R"(SELECT id::text, name FROM "Reads".direct ORDER BY id)") ==
               Rows{{"2", "direct sync"}, {"3", "save"}};
      },
      20s));
  CHECK(eventually(
      [&] {
        return f.rows(
                   R"(SELECT signal, data->>'title', data->>'cqrs_revision', previous::text, meta::text FROM "Reads".calls ORDER BY n)") ==
               Rows{{"SAVE", "T", "1", R"({"title": "old"})", R"({"origin": "test"})"},
                    {"DELETE", "<null>", "2", "<null>", "{}"}};
      },
      20s));
  CHECK(eventually([&] { return f.ready() == 0; }, 10s));
  CHECK(f.rows(R"(SELECT id FROM "Reads".unbound)").empty());
  CHECK(f.metric(R"(pgcqrs_replica_skipped_total{cqrs_id="direct",reason="indirect_sync"})") == 1);
  CHECK(log_has(c, "cqrs_ids: direct, events, mixed"));

  // a --cqrs-id this replica does not have is refused, exit 2, naming it
  std::string out;
  CHECK(f.pgcqrs("consume -cid nobody", &out) == 2);
  CHECK(out.find("Wrong CQRS ID: nobody!") != std::string::npos);
}

TEST_CASE("tombstones past tombstone_ttl are pruned when the consumer starts") {
  ReplicaFixture f(kReadModels, kModels, "tombstone_ttl = 3600\n");
  f.sql(
      "INSERT INTO cqrs.tombstone (cqrs_id, pk, revision, deleted_at) VALUES "
      "('author', '1', 3, now() - interval '2 hours'), ('author', '2', 3, now())");
  f.start_consumer();
  CHECK(eventually([&] { return f.rows(kTombstones) == Rows{{"author", "2", "3"}}; }, 20s));
  wait_ready(f);
  CHECK(f.metric("pgcqrs_replica_tombstones_pruned_total") == 1);
}

TEST_CASE("pgcqrs replica install and migrate: idempotent, dry run, precise refusal") {
  ReplicaFixture f(kReadModels, kModels);
  std::string out;
  CHECK(f.pgcqrs("replica install", &out) == 0);
  CHECK(out == "replica: schema cqrs is up to date\nreplica: tables fit for author, product\n");
  CHECK(f.pgcqrs("replica install --dry-run", &out) == 0);
  CHECK(out.find("-- dry run: nothing was changed") != std::string::npos);
  f.sql("ALTER TABLE reads.author DROP COLUMN cqrs_updated");
  CHECK(f.pgcqrs("migrate", &out) == 2);
  CHECK(
      out.find("replica.model 'author' (\"reads\".\"author\"): column \"cqrs_updated\" missing") !=
      std::string::npos);
  CHECK(f.pgcqrs("consume --help", &out) == 0);
  CHECK(out.find("--workers") != std::string::npos);
  CHECK(out.find("dead-letter queue") != std::string::npos);
}

TEST_CASE("embedding: a handler for a cqrs_id that is no table, middleware around every apply") {
  ReplicaFixture f(kReadModels, kModels);
  http::Registry metrics;
  replica::ConsumerOptions options;
  options.application_name = "embedded test";
  replica::Consumer consumer(load_config(f.config_path), metrics, options);
  std::mutex mu;
  std::map<std::string, std::string> cache;  // what the "cache" replica holds
  std::vector<std::string> calls;            // what the middleware saw
  consumer.handle("cache", [&](replica::ApplyContext& ctx) {
    replica::ApplyResult result;
    for (const auto& row : ctx.rows) {
      const std::string name = row.data.value("name", "");
      if (name == "bad") throw MessageError("cache pk=" + row.pk_text + ": bad name");
      std::lock_guard lock(mu);
      if (row.signal == Signal::kDelete) {
        cache.erase(row.pk_text);
      } else {
        cache[row.pk_text] = name;
      }
      replica::RowResult r;
      r.outcome = replica::Outcome::kCalled;
      result.add(r);
    }
    return result;
  });
  consumer.use([&](replica::ApplyContext& ctx, const replica::Handler& next) {
    {
      std::lock_guard lock(mu);
      calls.push_back(ctx.target.model.cqrs_id + ":" + std::to_string(ctx.rows.size()));
    }
    return next(ctx);
  });
  reset_stop();
  std::thread runner([&] { consumer.run(); });
  REQUIRE(eventually([&] { return consumer.readiness().ok; }, 30s));
  f.publish({{"cache", event_body("SAVE", "cache", 1, 0, {{"name", "one"}})},
             {"cache", event_body("SAVE", "cache", 2, 0, {{"name", "bad"}})},
             {"cache", event_body("SAVE", "cache", 3, 0, {{"name", "three"}})},
             {"cache", event_body("DELETE", "cache", 3, 1)},
             {"author", event_body("SAVE", "author", 1, 0, {{"name", "table"}})}});
  CHECK(eventually([&] { return author_state(f, 1) == "table@0"; }, 20s));
  const auto dead = f.take(1, 30s);  // the bad one, after its 2 retries
  REQUIRE(dead.size() == 1);
  CHECK(json::parse(dead[0].body)["instance_pk"] == 2);
  CHECK(json::parse(dead[0].body)["retries"] == 2);
  CHECK(dead[0].routing_key == "cqrs." + f.dead_letter_queue + ".cache");
  request_stop();
  runner.join();
  reset_stop();
  CHECK(cache == std::map<std::string, std::string>{{"1", "one"}});
  CHECK(std::find(calls.begin(), calls.end(), "author:1") != calls.end());
  CHECK(std::count_if(calls.begin(), calls.end(),
                      [](const std::string& c) { return c.rfind("cache:", 0) == 0; }) >= 3);
  CHECK_FALSE(consumer.liveness().ok);  // run() returned
}

TEST_CASE("throughput: 100,000 queued product SAVEs, -w 1 then -w 2") {
  constexpr int kEvents = 100000;
  for (const char* workers : {"1", "2"}) {
    ReplicaFixture f(kReadModels, kModels);
    std::vector<std::pair<std::string, std::string>> messages;
    messages.reserve(kEvents);
    for (int id = 1; id <= kEvents; ++id) {
      messages.emplace_back("product",
                            event_body("SAVE", "product", id, 0,
                                       {{"name", "Product " + std::to_string(id)},
                                        {"description", "Line 1\nLine 2"},
                                        {"price", json::make_decimal(std::to_string(id) + ".25")},
                                        {"in_stock", id % 2 == 0},
                                        {"released_at", "2026-11-21 02:05:10.935425+00:00"},
                                        {"release_date", "2020-01-02"},
                                        {"sku", "3eb13b90-4668-4257-bdd6-40fb06671ad1"},
                                        {"attrs", {{"color", "green"}, {"tags", {"a", "b"}}}},
                                        {"quantity", 9007199254740993LL - id},
                                        {"weight", 22.321},
                                        {"author", id % 100}}));
    }
    f.publish(messages);
    messages.clear();
    const auto started = Clock::now();
    f.start_consumer({"-w", workers});
    REQUIRE(eventually(
        [&] { return f.scalar("SELECT count(*) FROM reads.product") == std::to_string(kEvents); },
        120s));
    const double s = std::chrono::duration<double>(Clock::now() - started).count();
    MESSAGE("-w " << std::string(workers) << ": " << kEvents << " events applied in " << s
                  << " s = " << static_cast<int>(kEvents / s) << " rows/s (including start-up)");
    CHECK(kEvents / s > 2000);
    CHECK(f.scalar("SELECT price::text || ' ' || quantity::text FROM reads.product WHERE id = 7") ==
          "7.25 9007199254740986");
  }
}

TEST_CASE("end to end: writes on a pgcqrs master reach the replica, which ends equal to it") {
  MasterFixture m(
      "CREATE TABLE author (id integer PRIMARY KEY, name text NOT NULL, born date, "
      "rating numeric(6,3));",
      "[[master.model]]\ncqrs_id = \"author\"\ntable = \"author\"\n", {});
  ReplicaFixture r(R"sql(
CREATE SCHEMA reads;
CREATE TABLE reads.author (id integer PRIMARY KEY, name text NOT NULL, born date,
                           rating numeric(6,3), cqrs_revision integer NOT NULL,
                           cqrs_updated timestamptz NOT NULL);
)sql",
                   "[[replica.model]]\ncqrs_id = \"author\"\ntable = \"reads.author\"\n",
                   "max_retries = 2\n", m.exchange);
  m.start_agent();
  r.start_consumer({"-w", "2"});
  m.sql(
      "INSERT INTO author SELECT g, 'a' || g, date '2000-01-01' + g, g / 7.0 "
      "FROM generate_series(1, 1000) g");
  m.sql("UPDATE author SET name = name || ' upd', rating = rating + 1 WHERE id % 3 = 0");
  m.sql("DELETE FROM author WHERE id % 10 = 0");
  m.sql("UPDATE author SET born = NULL WHERE id % 7 = 0");
  const std::string q =
      "SELECT id::text, name, born::text, rating::text, cqrs_revision::text FROM ";
  const auto master_rows = [&] {
    pqxx::nontransaction txn(*m.conn);
    Rows out;
    for (const auto& row : txn.exec(q + "author ORDER BY id")) {
      std::vector<std::string> v;
      for (const auto& fld : row)
        v.push_back(fld.is_null() ? "<null>" : fld.as<std::string>());
      out.push_back(std::move(v));
    }
    return out;
  };
  const Rows expected = master_rows();
  REQUIRE(expected.size() == 900);
  CHECK(eventually([&] { return r.rows(q + "reads.author ORDER BY id") == expected; }, 60s));
  CHECK(r.rows(q + "reads.author ORDER BY id") == expected);
  CHECK(r.scalar("SELECT count(*) FROM cqrs.tombstone") == "100");
}
