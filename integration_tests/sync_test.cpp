// `pgcqrs sync` / cqrs_sync against real PostgreSQL and RabbitMQ: SYNC bodies equal the agent's
// SAVE bodies, --queue reaches one replica and broadcast all, keyset batches, the model's filter
// and produce, filters on the real server, django-cqrs's messages, unroutable events.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <algorithm>
#include <csignal>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <doctest/doctest.h>

#include "common/json.hpp"
#include "common/timestamp.hpp"
#include "support/master_fixture.hpp"

using namespace pgcqrs;
using namespace pgcqrs::it;
using namespace std::chrono_literals;
using json::Json;

namespace {

const char* const kSchema = R"sql(
CREATE TABLE author (
  id     integer PRIMARY KEY,
  name   varchar(200) NOT NULL,
  price  numeric(12,2),
  attrs  jsonb,
  note   text
);
CREATE TABLE tag (
  code   uuid PRIMARY KEY,
  label  text NOT NULL
);
CREATE TABLE hidden (
  id     integer PRIMARY KEY,
  name   text NOT NULL
);
CREATE TABLE muted (
  id     integer PRIMARY KEY
);
)sql";

const char* const kModels = R"toml(
[[master.model]]
cqrs_id = "author"
table = "author"
tracked_fields = ["name"]
meta = { origin = "pgcqrs" }

[[master.model]]
cqrs_id = "tag"
table = "tag"

[[master.model]]
cqrs_id = "hidden"
table = "hidden"
filter = "name <> 'secret'"

[[master.model]]
cqrs_id = "muted"
table = "muted"
produce = false
)toml";

struct Run {
  int rc = 0;
  std::string out;
  std::string err;
};

Run run(const MasterFixture& f, const std::string& args) {
  const std::string err_path = f.config_path + ".stderr";
  Run r;
  r.rc = run_shell(
      pgcqrs_binary() + " --config '" + f.config_path + "' " + args + " 2>'" + err_path + "'",
      &r.out);
  std::ifstream in(err_path);
  std::stringstream ss;
  ss << in.rdbuf();
  r.err = ss.str();
  return r;
}

std::string done(int synced, int processed) {
  return "Done!\n" + std::to_string(synced) + " instance(s) synced.\n" + std::to_string(processed) +
         " instance(s) processed.\n";
}

std::vector<Json> bodies(TestQueue& q, std::size_t n, std::chrono::milliseconds idle = 3s) {
  std::vector<Json> out;
  for (const auto& d : q.take(n, idle, 60s))
    out.push_back(json::parse(d.body));
  return out;
}

std::set<std::string> pks(const std::vector<Json>& msgs) {
  std::set<std::string> out;
  for (const auto& m : msgs)
    out.insert(json::dump(m["instance_pk"]));
  return out;
}

}  // namespace

TEST_CASE("a SYNC body is the agent's SAVE body of the same row with signal SYNC") {
  MasterFixture f(kSchema, kModels, {"author"});
  f.sql(
      "INSERT INTO author VALUES (1, 'Ann/α', 10.50, '{\"k\": [1, 2.50]}', NULL),"
      " (2, 'Bob', 9999999999.99, NULL, 'n');");
  f.sql("UPDATE author SET name = 'Ann/β' WHERE id = 1");  // revision 1, previous_data on SAVE
  Process& agent = f.start_agent();
  auto saves = f.take(3);
  REQUIRE_MESSAGE(saves.size() == 3, agent.log());
  agent.signal(SIGTERM);
  agent.wait(10s);
  std::map<std::string, Json> latest;  // the last SAVE per row
  for (const auto& s : saves)
    latest[json::dump(s["instance_pk"])] = s;

  const Run r = run(f, "sync --cqrs-id author -f '{\"id__in\": [1, 2]}'");
  CHECK(r.rc == 0);
  CHECK(r.out == done(2, 2));
  CHECK(r.err == "");
  const auto syncs = f.take(2);
  REQUIRE(syncs.size() == 2);
  CHECK(f.take(1, 1s).empty());
  for (const auto& s : syncs) {
    const Json& save = latest.at(json::dump(s["instance_pk"]));
    CHECK(s["signal_type"] == "SYNC");
    CHECK(json::dump(s["instance_data"]) == json::dump(save["instance_data"]));
    CHECK(s["meta"] == save["meta"]);
    CHECK(s["meta"] == Json::parse(R"({"origin":"pgcqrs"})"));
    CHECK(s["cqrs_id"] == "author");
    CHECK(s["previous_data"].is_null());
    CHECK(s["correlation_id"].is_null());
    CHECK(s["retries"] == 0);
    const auto ttl = parse_timestamp(s["expires"].get<std::string>()) - now_utc();
    CHECK(ttl > 86300s);
    CHECK(ttl <= 86400s);
    // key order and value formats of the wire, byte for byte
    Json expected = save;
    expected["signal_type"] = "SYNC";
    expected["previous_data"] = nullptr;
    expected["correlation_id"] = nullptr;
    expected["expires"] = s["expires"];
    CHECK(json::dump(s) == json::dump(expected));
  }
  CHECK(json::dump(syncs[0]).find(R"("name":"Ann\/\u03b2","price":10.50,"attrs":{"k":[1,2.50]})") !=
        std::string::npos);
}

TEST_CASE("--queue reaches only that replica's queue; broadcast reaches every replica") {
  MasterFixture f(kSchema, kModels, {});
  const std::string q1 = unique_name("replica_one");
  const std::string q2 = unique_name("replica_two");
  // two replicas bound as the spec's topology binds them
  TestQueue one(f.exchange, q1, {"author", "cqrs." + q1 + ".author"});
  TestQueue two(f.exchange, q2, {"author", "cqrs." + q2 + ".author"});
  f.sql("INSERT INTO author (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')");

  Run r = run(f, "sync --cqrs-id author -f '{}' --queue " + q1);
  CHECK(r.rc == 0);
  CHECK(r.out == done(3, 3));
  CHECK(pks(bodies(one, 3)) == std::set<std::string>{"1", "2", "3"});
  CHECK(bodies(two, 1, 1s).empty());

  r = run(f, "sync -cid author -f '{\"pk\": 2}' -q " + q2);
  CHECK(r.out == done(1, 1));
  CHECK(pks(bodies(two, 1)) == std::set<std::string>{"2"});
  CHECK(bodies(one, 1, 1s).empty());

  r = run(f, "sync --cqrs-id=author --filter='{\"id__gte\": 2}'");
  CHECK(r.rc == 0);
  CHECK(r.out == done(2, 2));
  CHECK(pks(bodies(one, 2)) == std::set<std::string>{"2", "3"});
  CHECK(pks(bodies(two, 2)) == std::set<std::string>{"2", "3"});

  // django-cqrs's "None" queue is broadcast
  r = run(f, "sync --cqrs-id author -f '{\"id\": 1}' -q None");
  CHECK(r.out == done(1, 1));
  CHECK(bodies(one, 1).size() == 1);
  CHECK(bodies(two, 1).size() == 1);
}

TEST_CASE("the alias cqrs_sync runs the same command") {
  MasterFixture f(kSchema, kModels, {"author"});
  f.sql("INSERT INTO author (id, name) VALUES (1, 'a')");
  std::string out;
  CHECK(run_shell(std::string(PGCQRS_BINARY_DIR) + "/bin/cqrs_sync --config '" + f.config_path +
                      "' -cid author -f '{}' 2>&1",
                  &out) == 0);
  CHECK(out == done(1, 1));
  CHECK(f.take(1).size() == 1);
}

TEST_CASE("rows are read in keyset batches in key order: every row once, whatever the batch") {
  MasterFixture f(kSchema, kModels, {"author"});
  f.sql("INSERT INTO author (id, name) SELECT g, 'n' || g FROM generate_series(1, 25) g");
  for (const char* batch : {"1", "7", "25", "1000"}) {
    CAPTURE(batch);
    const Run r = run(f, std::string("sync --cqrs-id author -f '{}' -b ") + batch);
    CHECK(r.out == done(25, 25));
    const auto msgs = f.take(25, 3s);
    CHECK(msgs.size() == 25);
    CHECK(pks(msgs).size() == 25);
    std::vector<int> order;
    for (const auto& m : msgs)
      order.push_back(m["instance_pk"].get<int>());
    CHECK(std::is_sorted(order.begin(), order.end()));
  }
}

TEST_CASE("--progress prints django-cqrs's header and the progress on stdout") {
  MasterFixture f(kSchema, kModels, {"author"});
  f.sql("INSERT INTO author (id, name) SELECT g, 'n' FROM generate_series(1, 3) g");
  const Run r = run(f, "sync --cqrs-id author -f '{}' --progress -b 2");
  CHECK(r.rc == 0);
  CHECK(r.out.rfind("Processing 3 records with batch size 2\n", 0) == 0);
  CHECK(r.out.find("Syncing author: 3 done in ") != std::string::npos);
  CHECK(r.out.size() > done(3, 3).size());
  CHECK(r.out.substr(r.out.size() - done(3, 3).size()) == done(3, 3));
  CHECK(f.take(3).size() == 3);
}

TEST_CASE("the model's filter and produce = false publish nothing, yet count as synced") {
  MasterFixture f(kSchema, kModels, {"hidden", "muted"});
  f.sql("INSERT INTO hidden VALUES (1, 'shown'), (2, 'secret'), (3, 'shown too')");
  f.sql("INSERT INTO muted VALUES (1), (2)");
  Run r = run(f, "sync --cqrs-id hidden -f '{}'");
  CHECK(r.out == done(3, 3));
  CHECK(pks(f.take(3, 2s)) == std::set<std::string>{"1", "3"});
  r = run(f, "sync --cqrs-id muted -f '{}'");
  CHECK(r.rc == 0);
  CHECK(r.out == done(2, 2));
  CHECK(f.take(1, 1s).empty());
}

TEST_CASE("primary keys not named id, of type uuid") {
  MasterFixture f(kSchema, kModels, {"tag"});
  f.sql(
      "INSERT INTO tag VALUES ('0419d87b-d477-44e4-82c4-310f56faa3c7', 'x'),"
      " ('1419d87b-d477-44e4-82c4-310f56faa3c7', 'y')");
  const Run r =
      run(f, "sync --cqrs-id tag -f '{\"pk__in\": [\"0419D87B-D477-44E4-82C4-310F56FAA3C7\"]}'");
  CHECK(r.out == done(1, 1));
  const auto msgs = f.take(1);
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0]["instance_pk"] == "0419d87b-d477-44e4-82c4-310f56faa3c7");
  CHECK(msgs[0]["instance_data"]["code"] == "0419d87b-d477-44e4-82c4-310f56faa3c7");
}

TEST_CASE("lookups run on the real server with bound values") {
  MasterFixture f(kSchema, kModels, {"author"});
  f.sql(
      "INSERT INTO author VALUES (1, 'Ann', 1.00, '{\"a\": 1, \"b\": [1, 2]}', NULL),"
      " (2, 'anna%', 2.50, '{\"a\": 2}', 'x'), (3, 'Bob', NULL, NULL, NULL),"
      " (4, 'Bo''b; DROP TABLE author; --', 10.00, '[1, 2]', 'y')");
  const std::vector<std::pair<std::string, std::set<std::string>>> cases = {
      {R"({"id__in": [1, 3, 99]})", {"1", "3"}},
      {R"({"id__in": []})", {}},
      {R"({"id__gt": 2, "id__lte": 4})", {"3", "4"}},
      {R"({"id__range": [2, 3]})", {"2", "3"}},
      {R"({"name__startswith": "Ann"})", {"1"}},
      {R"({"name__istartswith": "ann"})", {"1", "2"}},
      {R"({"name__endswith": "%"})", {"2"}},
      {R"({"name__icontains": "NN"})", {"1", "2"}},
      {R"({"name__iexact": "bob"})", {"3"}},
      {R"({"name": "Bo\u0027b; DROP TABLE author; --"})", {"4"}},
      {R"({"price__isnull": true})", {"3"}},
      {R"({"price__gte": "2.5"})", {"2", "4"}},
      {R"({"price": 10})", {"4"}},
      {R"({"note": null})", {"1", "3"}},
      {R"({"attrs__contains": {"b": [2]}})", {"1"}},
      {R"({"attrs": {"a": 2}})", {"2"}},
      {R"({"attrs__contains": [2]})", {"4"}},
      {R"({"name__regex": "^[AB]"})", {"1", "3", "4"}},
      {R"({"pk": 2})", {"2"}},
  };
  for (const auto& [filter, expected] : cases) {
    CAPTURE(filter);
    const Run r = run(f, "sync --cqrs-id author -f '" + filter + "'");
    CHECK(r.rc == 0);
    if (expected.empty()) {
      CHECK(r.out == "No objects found for filter!\n");
    } else {
      CHECK(r.out == done(static_cast<int>(expected.size()), static_cast<int>(expected.size())));
    }
    CHECK(pks(f.take(expected.size(), 1s)) == expected);
  }
  CHECK(f.scalar("SELECT count(*) FROM author") == "4");
}

TEST_CASE("django-cqrs's messages for bad ids, no filter, bad filters, nothing found") {
  MasterFixture f(kSchema, kModels, {"author"});
  f.sql("INSERT INTO author (id, name) VALUES (1, 'a')");
  struct Case {
    std::string args;
    int rc;
    std::string out;
    std::string err;
  };
  const std::vector<Case> cases = {
      {"sync --cqrs-id invalid -f '{}'", 1, "", "CommandError: Wrong CQRS ID: invalid!\n"},
      {"sync --cqrs-id author", 0, "No objects found for filter!\n", ""},
      {"sync --cqrs-id author -f '{\"id\": 2}'", 0, "No objects found for filter!\n", ""},
      {"sync --cqrs-id author -f '{arg}'", 1, "", "CommandError: Bad filter kwargs!\n"},
      {"sync --cqrs-id author -f '[1]'", 1, "", "CommandError: Bad filter kwargs!\n"},
      {"sync --cqrs-id author -f '{\"field\": \"value\"}'", 1, "",
       "CommandError: Bad filter kwargs! Cannot resolve keyword 'field' into field. Choices are: "
       "attrs, cqrs_revision, cqrs_updated, id, name, note, price\n"},
      {"sync --cqrs-id author -f '{\"name__foo\": 1}'", 1, "",
       "CommandError: Bad filter kwargs! Unsupported lookup 'foo' for field 'name' (character "
       "varying(200)); supported: exact, iexact, in, gt, gte, lt, lte, isnull, startswith, "
       "istartswith, endswith, iendswith, contains, icontains, range, regex, iregex\n"},
      {"sync --cqrs-id author -f '{\"id\": \"abc\"}'", 1, "",
       "CommandError: Bad filter kwargs! invalid input syntax for type integer: \"abc\"\n"},
      {"sync --cqrs-id author -f '{}' -b 0", 1, "",
       "CommandError: --batch must be at least 1, not 0\n"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.args);
    const Run r = run(f, c.args);
    CHECK(r.rc == c.rc);
    CHECK(r.out == c.out);
    CHECK(r.err == c.err);
  }
  CHECK(f.take(1, 1s).empty());
  const Run missing = run(f, "sync -f '{}'");
  CHECK(missing.rc == 2);
  CHECK(missing.err.find("--cqrs-id is required") != std::string::npos);
}

TEST_CASE("an unroutable SYNC is reported as a failed record, never dropped silently") {
  MasterFixture f(kSchema, kModels, {"author"});
  f.sql("INSERT INTO author (id, name) SELECT g, 'n' FROM generate_series(1, 12) g");
  const Run r = run(f, "sync --cqrs-id author -f '{}' -q nobody_listens");
  CHECK(r.rc == 1);
  CHECK(r.out.find("\nSync record failed for pk=1: ChannelError: returned by the broker (312 "
                   "NO_ROUTE): no queue is bound for routing key 'cqrs.nobody_listens.author'\n") !=
        std::string::npos);
  CHECK(r.out.find("Sync failed for 2 more record(s) (not shown).") != std::string::npos);
  CHECK(r.out.find(done(0, 12)) != std::string::npos);
  CHECK(r.err.find("CommandError: 12 instance(s) not synced") != std::string::npos);
  CHECK(f.take(1, 1s).empty());
}

TEST_CASE("a broker that cannot be reached is an error, not a silent success") {
  MasterFixture f(kSchema, kModels, {"author"});
  f.sql("INSERT INTO author (id, name) VALUES (1, 'a')");
  std::ifstream in(f.config_path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  const auto at = text.find("url = \"");
  REQUIRE(at != std::string::npos);
  const auto end = text.find('"', at + 7);
  text.replace(at + 7, end - at - 7,
               "amqp://guest:guest@127.0.0.1:" + std::to_string(free_port()) + "/");
  const std::string path = write_temp_file("sync_bad_broker.toml", text);
  std::string out;
  const int rc = run_shell(
      pgcqrs_binary() + " --config '" + path + "' sync --cqrs-id author -f '{}' 2>&1", &out);
  CHECK(rc != 0);
  CHECK(out.find("Done!") == std::string::npos);
  CHECK(out.find("127.0.0.1") != std::string::npos);
}
