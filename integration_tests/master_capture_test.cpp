// Master capture + agent end to end: plain SQL on tracked tables -> django-cqrs messages.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>
#include <httplib.h>

#include "common/event.hpp"
#include "support/master_fixture.hpp"

using namespace pgcqrs;
using namespace pgcqrs::it;
using namespace std::chrono_literals;

namespace {

const char* const kItemSchema = R"sql(
CREATE SCHEMA shop;
CREATE TABLE shop."Item" (
  id        integer PRIMARY KEY,
  big       bigint,
  name      text NOT NULL,
  price     numeric(12,2),
  ok        boolean,
  day       date,
  at        timestamptz,
  sku       uuid,
  attrs     jsonb,
  note      text
);
)sql";

const char* const kItemModel = R"toml(
[[master.model]]
cqrs_id = "item"
table = 'shop."Item"'
)toml";

// The top-level keys of a real django-cqrs message, in its order (tests/vectors).
std::vector<std::string> vector_key_order() {
  std::ifstream in(std::string(PGCQRS_SOURCE_DIR) + "/tests/vectors/messages.jsonl");
  std::string line;
  std::getline(in, line);
  const auto capture = json::parse(line);
  const auto body = json::parse(capture["body_raw"].get<std::string>());
  std::vector<std::string> keys;
  for (const auto& [k, v] : body.items())
    keys.push_back(k);
  return keys;
}

std::vector<std::string> keys_of(const json::Json& j) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items())
    keys.push_back(k);
  return keys;
}

// Rewrites the fixture's configuration file, which `f.pgcqrs` and agents started after read:
// `master_extra` goes into [master], `models` follows.
void rewrite_config(const MasterFixture& f, const std::string& master_extra,
                    const std::string& models) {
  write_temp_file(f.db.name() + ".toml", "[broker]\nurl = \"" + amqp_url() + "\"\nexchange = \"" +
                                             f.exchange + "\"\n\n[master]\ndatabase = \"" +
                                             f.db.url() + "\"\npoll_interval_ms = 200\n" +
                                             master_extra + "\n" + models);
}

// docs/master.md's move of set-aside rows (`where` picks them) back into the outbox.
std::string move_back_sql(const std::string& where) {
  return "WITH back AS (DELETE FROM cqrs.outbox_failed " + where +
         " RETURNING *)"
         " INSERT INTO cqrs.outbox (cqrs_id, signal, instance_pk, revision, updated, instance_data,"
         "   previous_data, meta, correlation_id, created_at, batch, batch_layout, events)"
         " SELECT cqrs_id, signal, instance_pk, revision, updated, instance_data, previous_data,"
         "   meta, correlation_id, created_at, batch, batch_layout, events FROM back";
}

// Triggers pgcqrs installed on shop."Item" (kItemSchema).
std::string item_triggers(const MasterFixture& f) {
  return f.scalar(
      "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'shop.\"Item\"'::regclass"
      " AND NOT tgisinternal");
}

// `pgcqrs migrate` with the fixture's (rewritten) configuration: exit status, output in `out`.
int migrate(const MasterFixture& f, std::string& out) {
  return f.pgcqrs("migrate", &out);
}

// A role of the test server (roles belong to the cluster, not to the test's database), dropped
// at the end of its scope: declare it before the fixture whose database grants it rights.
struct TestRole {
  explicit TestRole(std::string_view prefix) : name(unique_name(prefix)) {
    admin("CREATE ROLE " + quoted_name() + " NOLOGIN");
  }
  ~TestRole() {
    try {
      admin("DROP ROLE IF EXISTS " + quoted_name());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "drop test role %s: %s\n", name.c_str(), e.what());
    }
  }
  TestRole(const TestRole&) = delete;
  TestRole& operator=(const TestRole&) = delete;
  TestRole(TestRole&&) = delete;
  TestRole& operator=(TestRole&&) = delete;

  [[nodiscard]] std::string quoted_name() const { return "\"" + name + "\""; }
  static void admin(const std::string& sql) {
    pqxx::connection c(pg_url());
    pqxx::nontransaction t(c);
    t.exec(sql);
  }
  std::string name;
};

// Runs `statements` in one transaction of a new session, after SET ROLE `role`.
void write_as(const MasterFixture& f, const TestRole& role,
              const std::vector<std::string>& statements) {
  pqxx::connection c(f.db.url());
  pqxx::work w(c);
  w.exec("SET ROLE " + role.quoted_name());
  for (const auto& s : statements)
    w.exec(s);
  w.commit();
}

// "<signal> <instance_pk> r<revision>" of each message, in order.
std::vector<std::string> summary(const std::vector<json::Json>& msgs) {
  std::vector<std::string> out;
  for (const auto& m : msgs) {
    out.push_back(m["signal_type"].get<std::string>() + " " + json::dump(m["instance_pk"]) + " r" +
                  std::to_string(m["instance_data"]["cqrs_revision"].get<std::int64_t>()));
  }
  return out;
}

}  // namespace

TEST_CASE("plain SQL from any client becomes django-cqrs events, exact in values") {
  MasterFixture f(kItemSchema, kItemModel, {"item"});
  Process& agent = f.start_agent();

  f.sql(R"sql(
INSERT INTO shop."Item" VALUES (1, 9007199254740993, 'Café "q" a/b', 10.50, true, '2024-02-29',
  '2024-05-01 12:00:00.123456+00', '0419D87B-D477-44E4-82C4-310F56FAA3C7', '{"a": [1, 2.50, null]}', NULL);
INSERT INTO shop."Item" (id, name, price, at) VALUES (2, 'two', 9999999999.99, '2024-01-01 00:00:00+05:30'),
  (3, 'three', 0.10, NULL);
UPDATE shop."Item" SET price = price + 1 WHERE id IN (1, 2, 3) AND price < 1000;
DELETE FROM shop."Item" WHERE id = 3;
INSERT INTO shop."Item" (id, name) VALUES (2, 'upserted'), (4, 'four')
  ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name;
)sql");
  std::string out;
  REQUIRE(run_shell("printf '5\\tcopied\\t7.00\\n6\\tcopied too\\t8.25\\n' | psql -X -q '" +
                        f.db.url() + "' -c 'COPY shop.\"Item\" (id, name, price) FROM STDIN' 2>&1",
                    &out) == 0);

  const auto msgs = f.take(10);
  REQUIRE_MESSAGE(msgs.size() == 10, agent.log());
  CHECK(f.take(1, 1s).empty());  // nothing more
  std::multiset<std::string> seen;
  std::map<std::string, std::vector<std::int64_t>> revisions_per_row;
  for (const auto& m : msgs) {
    const std::string pk = json::dump(m["instance_pk"]);
    const auto rev = m["instance_data"]["cqrs_revision"].get<std::int64_t>();
    seen.insert(m["signal_type"].get<std::string>() + " " + pk + " r" + std::to_string(rev));
    revisions_per_row[pk].push_back(rev);
  }
  CHECK(seen == std::multiset<std::string>{"SAVE 1 r0", "SAVE 2 r0", "SAVE 3 r0", "SAVE 1 r1",
                                           "SAVE 3 r1", "DELETE 3 r2", "SAVE 4 r0", "SAVE 2 r1",
                                           "SAVE 5 r0", "SAVE 6 r0"});
  for (const auto& [pk, revs] : revisions_per_row) {
    CHECK_MESSAGE(std::is_sorted(revs.begin(), revs.end()), "row " << pk << " out of order");
  }
  // DELETE carries the django-cqrs shape whatever the key column is called
  for (const auto& m : msgs) {
    if (m["signal_type"] != "DELETE") continue;
    CHECK(keys_of(m["instance_data"]) ==
          std::vector<std::string>{"id", "cqrs_revision", "cqrs_updated"});
    CHECK(m["instance_data"]["id"] == 3);
  }
  // the table itself: revisions bumped by every write
  CHECK(f.scalar(
            R"(SELECT string_agg(id || ':' || cqrs_revision, ',' ORDER BY id) FROM shop."Item")") ==
        "1:1,2:1,4:0,5:0,6:0");
  // COPY rows arrive with their exact numeric text
  bool copied = false;
  for (const auto& m : msgs) {
    if (m["instance_pk"] == 6) copied = json::dump(m["instance_data"]["price"]) == "8.25";
  }
  CHECK(copied);

  // the first message, byte for byte where the value is deterministic
  const std::string body = json::dump(msgs[0]);
  CHECK(keys_of(msgs[0]) == vector_key_order());
  CHECK(msgs[0]["cqrs_id"] == "item");
  CHECK(msgs[0]["retries"] == 0);
  CHECK(msgs[0]["previous_data"].is_null());
  CHECK(msgs[0]["correlation_id"].is_null());
  CHECK(msgs[0]["meta"] == json::Json::object());
  const auto& d = msgs[0]["instance_data"];
  CHECK(keys_of(d) == std::vector<std::string>{"id", "cqrs_revision", "cqrs_updated", "big", "name",
                                               "price", "ok", "day", "at", "sku", "attrs", "note"});
  CHECK(body.find(R"("big":9007199254740993,"name":"Caf\u00e9 \"q\" a\/b","price":10.50,)"
                  R"("ok":true,"day":"2024-02-29","at":"2024-05-01 12:00:00.123456+00:00",)"
                  R"("sku":"0419d87b-d477-44e4-82c4-310f56faa3c7","attrs":{"a":[1,2.50,null]},)"
                  R"("note":null})") != std::string::npos);
  CHECK_NOTHROW(parse_timestamp(d["cqrs_updated"].get<std::string>()));
  const std::string expires = msgs[0]["expires"].get<std::string>();
  CHECK(expires.size() == 25);  // YYYY-MM-DDTHH:MM:SS+00:00
  const auto ttl = parse_timestamp(expires) - now_utc();
  CHECK(ttl > 86300s);
  CHECK(ttl <= 86400s);
  // decodes with the replica-side codec
  const Event e = decode_event(body);
  CHECK(e.revision() == 0);
}

TEST_CASE("rolled-back work publishes nothing; the correlation id travels") {
  MasterFixture f(kItemSchema, kItemModel, {"item"});
  f.start_agent();
  f.sql("BEGIN; INSERT INTO shop.\"Item\" (id, name) VALUES (1, 'never'); ROLLBACK;");
  f.sql(
      "BEGIN; SAVEPOINT s; INSERT INTO shop.\"Item\" (id, name) VALUES (2, 'never');"
      " ROLLBACK TO s; INSERT INTO shop.\"Item\" (id, name) VALUES (3, 'kept'); COMMIT;");
  f.sql(
      "BEGIN; SET LOCAL pgcqrs.correlation_id = 'req-42';"
      " INSERT INTO shop.\"Item\" (id, name) VALUES (4, 'traced'); COMMIT;");
  const auto msgs = f.take(3, 3s);
  REQUIRE(msgs.size() == 2);
  CHECK(msgs[0]["instance_pk"] == 3);
  CHECK(msgs[0]["correlation_id"].is_null());
  CHECK(msgs[1]["instance_pk"] == 4);
  CHECK(msgs[1]["correlation_id"] == "req-42");
  CHECK(f.scalar("SELECT count(*) FROM cqrs.outbox") == "0");
}

TEST_CASE("batched capture: one outbox row per 1000 rows of a statement, whatever the session") {
  MasterFixture f(R"sql(
CREATE TABLE thing (id bigint PRIMARY KEY, code char(5), at timestamptz, day date, ok boolean,
                    tags text[], n numeric(6,2), "a ""b"" \c" integer, seen timestamp);
)sql",
                  "[[master.model]]\ncqrs_id = \"thing\"\ntable = \"thing\"\n", {"thing"});
  // a writer in another time zone and date style: the events are the same (times in UTC)
  f.sql(
      "SET TimeZone = 'Asia/Kolkata'; SET DateStyle = 'SQL, DMY';"
      " INSERT INTO thing SELECT g, 'ab', '2024-05-01 12:00:00.5+00', '2024-02-29', g % 2 = 0,"
      " ARRAY['x', 'y z', NULL], g / 100.0, -g, '2024-05-01 23:59:59.25' FROM"
      " generate_series(1, 2500) g;"
      " UPDATE thing SET code = 'cd' WHERE id <= 10;"
      // a 1-row statement takes the triggers' path without cutting: the same texts
      " INSERT INTO thing VALUES (2501, 'ab', '2024-05-01 12:00:00.5+00', '2024-02-29', false,"
      " ARRAY['x', 'y z', NULL], 25.01, -2501, '2024-05-01 23:59:59.25');");
  // 2,500 rows in one statement: three batch rows; the 10-row UPDATE and the 1-row INSERT: one
  // more each
  CHECK(f.scalar("SELECT count(*) || ' rows, ' || sum(events) || ' events, ' ||"
                 " count(*) FILTER (WHERE batch IS NOT NULL) || ' batches' FROM cqrs.outbox") ==
        "5 rows, 2511 events, 5 batches");
  // rows × positions; the 1-row statement's batch is its row's array (the batches of one
  // statement need not be in the rows' order: each row is in one of them)
  CHECK(f.scalar("SELECT string_agg(array_dims(batch), ' ' ORDER BY events DESC, id)"
                 " FROM cqrs.outbox") ==
        "[1:1000][1:11] [1:1000][1:11] [1:500][1:11] [1:10][1:11] [1:11]");
  // the batch rows name their layout by its key (migration 0004); the layout is stored once
  CHECK(f.scalar("SELECT count(DISTINCT batch_layout) || ' ' || bool_and(batch_layout ~"
                 " '^#[0-9a-f]{16}$') FROM cqrs.outbox") == "1 true");
  CHECK(f.scalar("SELECT l.layout FROM cqrs.batch_layout l"
                 " WHERE l.key = (SELECT batch_layout FROM cqrs.outbox LIMIT 1)") ==
        R"({"n:id","n:cqrs_revision","Z:cqrs_updated","j:code","Z:at","j:day","b:ok","j:tags",)"
        R"("n:n","n:a \"b\" \\c","z:seen"})");
  // each row's cqrs_updated as django-cqrs writes it (the events of its last revision carry it)
  std::map<std::int64_t, std::string> updated;
  {
    pqxx::nontransaction t(*f.conn);
    for (const auto& r : t.exec("SELECT id, cqrs.django_ts(cqrs_updated) FROM thing")) {
      updated[r[0].as<std::int64_t>()] = r[1].as<std::string>();
    }
  }
  REQUIRE(updated.size() == 2501);
  f.start_agent();
  const auto msgs = f.take(2511);
  REQUIRE(msgs.size() == 2511);
  std::map<std::int64_t, std::vector<int>> revisions;
  for (const auto& m : msgs) {
    const auto& d = m["instance_data"];
    const auto id = m["instance_pk"].get<std::int64_t>();
    CHECK(d["id"] == id);
    revisions[id].push_back(d["cqrs_revision"].get<int>());
    if (id == 7 && d["cqrs_revision"] == 1) {
      CHECK(d["code"] == "cd   ");  // char(n) keeps its padding, as json_build_object writes it
    } else if (id == 8) {
      CHECK(json::dump(d["n"]) == "0.08");
    }
    CHECK(d["at"] == "2024-05-01 12:00:00.500000+00:00");
    CHECK(d["seen"] == "2024-05-01 23:59:59.250000");
    if (id > 10 || d["cqrs_revision"] == 1) CHECK(d["cqrs_updated"] == updated[id]);
    CHECK(d["day"] == "2024-02-29");
    CHECK(d["ok"] == (id % 2 == 0));
    CHECK(d["tags"] == json::parse(R"(["x", "y z", null])"));
    CHECK(d["a \"b\" \\c"] == -id);  // a column name that needs quoting in the layout
    CHECK(m["previous_data"].is_null());
    CHECK(m["meta"] == json::Json::object());
  }
  // every row once per revision, the UPDATE's after the INSERT's
  CHECK(revisions.size() == 2501);
  for (const auto& [id, revs] : revisions) {
    CAPTURE(id);
    CHECK(revs == (id <= 10 ? std::vector<int>{0, 1} : std::vector<int>{0}));
  }
  CHECK(eventually([&] { return f.scalar("SELECT count(*) FROM cqrs.outbox") == "0"; }, 10s));
}

TEST_CASE("the triggers run in the writer's settings: filter and meta SQL see its TimeZone") {
  MasterFixture f("CREATE TABLE slot (id integer PRIMARY KEY, at timestamptz NOT NULL);",
                  "[[master.model]]\ncqrs_id = \"slot\"\ntable = \"slot\"\n"
                  "filter = \"extract(hour FROM at) < 12\"\n"
                  "meta_sql = \"json_build_object('day', at::date::text)\"\n",
                  {"slot"});
  f.start_agent();
  f.sql("INSERT INTO slot VALUES (1, '2024-05-01 10:00+00');");  // UTC: 10:00, kept
  // in Kolkata (+05:30): 15:30 (filtered out), 01:30 the next day, 07:30 and 14:30; the
  // last two in one statement
  f.sql(
      "SET TimeZone = 'Asia/Kolkata'; SET DateStyle = 'SQL, DMY';"
      " INSERT INTO slot VALUES (2, '2024-05-01 10:00+00');"
      " INSERT INTO slot VALUES (3, '2024-05-01 20:00+00');"
      " INSERT INTO slot VALUES (4, '2024-05-01 02:00+00'), (5, '2024-05-01 09:00+00');");
  const auto msgs = f.take(4, 3s);
  REQUIRE(msgs.size() == 3);
  CHECK(msgs[0]["instance_pk"] == 1);
  CHECK(msgs[0]["instance_data"]["at"] == "2024-05-01 10:00:00+00:00");
  CHECK(msgs[0]["meta"] == json::parse(R"({"day": "2024-05-01"})"));
  CHECK(msgs[1]["instance_pk"] == 3);
  CHECK(msgs[1]["instance_data"]["at"] == "2024-05-01 20:00:00+00:00");
  CHECK(msgs[1]["meta"] == json::parse(R"({"day": "02/05/2024"})"));
  CHECK(msgs[2]["instance_pk"] == 4);
  CHECK(msgs[2]["instance_data"]["at"] == "2024-05-01 02:00:00+00:00");
  CHECK(msgs[2]["meta"] == json::parse(R"({"day": "01/05/2024"})"));
  // an UPDATE of rows the filter keeps out publishes nothing, but still bumps their revision
  // and time (2: 15:31 and 5: 14:31 in Kolkata; 3: 01:31 is published)
  // (their times first back in 2000: with session_replication_role = replica no trigger fires)
  f.sql(
      "SET session_replication_role = replica; UPDATE slot SET cqrs_updated = '2000-01-01 "
      "00:00+00';"
      " RESET session_replication_role;");
  f.sql(
      "SET TimeZone = 'Asia/Kolkata'; UPDATE slot SET at = at + interval '1 minute'"
      " WHERE id IN (2, 3, 5); RESET TimeZone;");
  const auto updated = f.take(2, 2s);
  REQUIRE(updated.size() == 1);
  CHECK(updated[0]["instance_pk"] == 3);
  CHECK(updated[0]["instance_data"]["cqrs_revision"] == 1);
  CHECK(f.scalar("SELECT string_agg(id || ':' || cqrs_revision || ':' || (cqrs_updated > now() -"
                 " interval '1 hour'), ',' ORDER BY id) FROM slot") ==
        "1:0:false,2:1:true,3:1:true,4:0:false,5:1:true");
}

TEST_CASE(
    "batch rows of earlier pgcqrs versions are published; a row that cannot be is set aside") {
  const int port = free_port();
  MasterFixture f("CREATE TABLE slot (id integer PRIMARY KEY, seen timestamp);",
                  "[[master.model]]\ncqrs_id = \"slot\"\ntable = \"slot\"\n", {"slot"},
                  "http_port = " + std::to_string(port) + "\n");
  httplib::Client http("127.0.0.1", port);
  const auto metric = [&http](const std::string& name) {
    const auto r = http.Get("/metrics");
    const std::string line = "\n" + name + " ";
    const std::size_t at = r ? r->body.find(line) : std::string::npos;
    return at == std::string::npos ? -1.0 : std::stod(r->body.substr(at + line.size()));
  };
  // as the triggers wrote them before migration 0004 and before 2026-12-01: the layout's text
  // in the row, timestamps in UTC and DateStyle ISO (T, t), a two-dimensional batch of one row
  f.sql(
      "INSERT INTO cqrs.outbox (cqrs_id, signal, batch, batch_layout, events) VALUES ('slot',"
      " 'SAVE', '{{7,0,\"2024-05-01 10:00:00.25+00\",\"2024-05-01 23:00:00\"}}',"
      " '{\"n:id\",\"n:cqrs_revision\",\"T:cqrs_updated\",\"t:seen\"}', 1);"
      "INSERT INTO slot VALUES (8, '2024-05-02 01:00');");
  f.start_agent();
  const auto msgs = f.take(3, 3s);
  REQUIRE(msgs.size() == 2);
  CHECK(json::dump(msgs[0]["instance_data"]) ==
        R"({"id":7,"cqrs_revision":0,"cqrs_updated":"2024-05-01 10:00:00.250000+00:00",)"
        R"("seen":"2024-05-01 23:00:00"})");
  CHECK(msgs[1]["instance_data"]["seen"] == "2024-05-02 01:00:00");
  CHECK(eventually([&] { return f.scalar("SELECT count(*) FROM cqrs.outbox") == "0"; }, 10s));
  // a key that names no layout (its row deleted by hand) and a signal no version writes: both
  // rows move to cqrs.outbox_failed with the reason, and the rows after them are published
  f.sql(
      "INSERT INTO cqrs.outbox (cqrs_id, signal, batch, batch_layout, events) VALUES ('slot',"
      " 'SAVE', '{9,0,\"2024-05-01 10:00:00+00\",\"2024-05-03 00:00:00\"}',"
      " '#0123456789abcdef', 1);"
      "INSERT INTO cqrs.outbox (cqrs_id, signal, instance_pk, instance_data) VALUES ('slot',"
      " 'UPSERT', '11', '{\"id\": 11}');"
      "INSERT INTO slot VALUES (10, '2024-05-02 02:00');");
  const auto after = f.take(1, 10s);
  REQUIRE(after.size() == 1);
  CHECK(after[0]["instance_pk"] == 10);
  CHECK(eventually([&] { return f.scalar("SELECT count(*) FROM cqrs.outbox") == "0"; }, 10s));
  CHECK(f.scalar("SELECT error FROM cqrs.outbox_failed WHERE signal = 'SAVE'") ==
        "outbox id=3 (batch of slot): batch_layout key #0123456789abcdef names no layout in"
        " cqrs.batch_layout (`pgcqrs migrate` stores them)");
  CHECK(f.scalar("SELECT count(*) FROM cqrs.outbox_failed WHERE signal = 'UPSERT' AND error"
                 " LIKE '%UPSERT%expected SAVE, DELETE or SYNC%'") == "1");
  const std::string log = f.agents[0]->log();
  CHECK_MESSAGE(log.find("outbox id=3 (slot SAVE) cannot be published: ") != std::string::npos,
                log);
  CHECK(eventually([&] { return metric("pgcqrs_master_outbox_failed_rows") == 2.0; }, 10s));
  CHECK(metric("pgcqrs_master_failed_total") == 2.0);
  // the operator restores the layout and moves the row back as docs/master.md says: published
  f.sql(
      "INSERT INTO cqrs.batch_layout (key, layout) VALUES ('#0123456789abcdef',"
      " '{\"n:id\",\"n:cqrs_revision\",\"T:cqrs_updated\",\"t:seen\"}');");
  f.sql(move_back_sql("WHERE id = 3"));
  const auto back = f.take(1, 10s);
  REQUIRE(back.size() == 1);
  CHECK(back[0]["instance_pk"] == 9);
  CHECK(back[0]["instance_data"]["seen"] == "2024-05-03 00:00:00");
}

TEST_CASE("a serializer's NULL for a row that exists sets its SAVE aside, never drops it") {
  const auto model = [](const std::string& serializer) {
    return "[[master.model]]\ncqrs_id = \"profile\"\ntable = \"profile\"\nserializer = \"" +
           serializer + "\"\n";
  };
  // a serializer that misses rows without a bio (an inner join would do the same)
  const std::string strict =
      "SELECT json_build_object('id', p.id, 'bio', p.bio) FROM profile p"
      " WHERE p.id = $1 AND p.bio IS NOT NULL";
  MasterFixture f("CREATE TABLE profile (id integer PRIMARY KEY, bio text);", model(strict),
                  {"profile"});
  Process& agent = f.start_agent();
  std::string out;
  REQUIRE(run_shell("psql -X -q '" + f.db.url() +
                        "' -c \"INSERT INTO profile VALUES (1, NULL), (2, 'two')\" 2>&1",
                    &out) == 0);
  // the writer is told, and its write stands
  CHECK_MESSAGE(out.find("WARNING:  pgcqrs: the serializer of profile returned NULL for key 1, "
                         "a row that exists") != std::string::npos,
                out);
  // a row inserted and deleted in one transaction is gone at commit: nothing to save, no warning
  REQUIRE(run_shell("psql -X -q '" + f.db.url() +
                        "' -c 'BEGIN; INSERT INTO profile VALUES (3, NULL); DELETE FROM profile "
                        "WHERE id = 3; COMMIT' 2>&1",
                    &out) == 0);
  CHECK(out.find("WARNING") == std::string::npos);
  const auto msgs = f.take(3, 3s);
  REQUIRE_MESSAGE(msgs.size() == 2, agent.log());
  CHECK(msgs[0]["instance_pk"] == 2);
  CHECK(msgs[0]["instance_data"]["bio"] == "two");
  CHECK(msgs[1]["signal_type"] == "DELETE");  // of row 3: its SAVE was dropped
  CHECK(msgs[1]["instance_pk"] == 3);
  REQUIRE(eventually([&] { return f.scalar("SELECT count(*) FROM cqrs.outbox") == "0"; }, 10s));
  CHECK(f.scalar("SELECT count(*) FROM cqrs.outbox_failed") == "1");
  CHECK(f.scalar("SELECT error FROM cqrs.outbox_failed") ==
        "outbox id=1 (profile, key 1) is a SAVE without instance_data: the model's serializer "
        "returned NULL for a row that exists at commit (or the model has no serializer any "
        "more); fix it, then move the row back (docs/master.md), which serializes it again");

  // fixed serializer, row moved back as docs/master.md says: serialized again and published
  rewrite_config(f, "",
                 model("SELECT json_build_object('id', p.id, 'bio', coalesce(p.bio, ''))"
                       " FROM profile p WHERE p.id = $1"));
  REQUIRE_MESSAGE(migrate(f, out) == 0, out);
  f.sql(move_back_sql(""));
  const auto back = f.take(1, 10s);
  REQUIRE_MESSAGE(back.size() == 1, agent.log());
  CHECK(back[0]["signal_type"] == "SAVE");
  CHECK(back[0]["instance_pk"] == 1);
  CHECK(back[0]["instance_data"]["bio"] == "");
  CHECK(back[0]["instance_data"]["cqrs_revision"] == 0);
}

TEST_CASE("a statement of large rows is cut into batches of at most 16 MB") {
  MasterFixture f("CREATE TABLE doc (id integer PRIMARY KEY, body text);",
                  "[[master.model]]\ncqrs_id = \"doc\"\ntable = \"doc\"\n", {"doc"});
  // 3 rows of 7 MB: two batch rows (14 MB, then 7 MB), never one value near the 1 GB limit
  f.sql("INSERT INTO doc SELECT g, repeat(chr(96 + g), 7000000) FROM generate_series(1, 3) g");
  CHECK(f.scalar("SELECT string_agg(events::text, ',' ORDER BY id) FROM cqrs.outbox") == "2,1");
  f.start_agent();
  const auto msgs = f.take(3, 10s);
  REQUIRE(msgs.size() == 3);
  for (const auto& m : msgs) {
    const int id = m["instance_pk"].get<int>();
    CAPTURE(id);
    CHECK(m["instance_data"]["body"] == std::string(7000000, static_cast<char>('a' + id - 1)));
  }
}

TEST_CASE("the agent refuses a schema that lacks one of its migrations") {
  MasterFixture f(kItemSchema, kItemModel, {"item"});
  f.sql("DELETE FROM cqrs.schema_migrations WHERE component = 'master' AND version = 3");
  std::string out;
  CHECK(f.pgcqrs("master", &out) == 2);
  CHECK_MESSAGE(out.find("schema cqrs lacks migration 0003_outbox_batches.sql of this pgcqrs;"
                         " run `pgcqrs migrate` first") != std::string::npos,
                out);
}

TEST_CASE("model options: fields, tracked_fields, filter, produce, meta, serializer") {
  MasterFixture f(R"sql(
CREATE TABLE author (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE book (
  id integer PRIMARY KEY, title text NOT NULL, price numeric(8,2), secret text,
  author integer REFERENCES author (id), published boolean NOT NULL DEFAULT false);
CREATE TABLE note (id uuid PRIMARY KEY, body text);
CREATE TABLE audit (id bigint PRIMARY KEY, what text);
CREATE TABLE shelf (id integer PRIMARY KEY, label text);
)sql",
                  R"toml(
[[master.model]]
cqrs_id = "book"
table = "book"
fields = ["title", "price", "author", "published"]
tracked_fields = ["title", "price"]
filter = "published"
meta = { origin = "shop" }

[[master.model]]
cqrs_id = "author"
table = "author"
serializer = "SELECT json_build_object('id', a.id, 'name', a.name, 'books', (SELECT coalesce(json_agg(b.title ORDER BY b.id), '[]') FROM book b WHERE b.author = a.id)) FROM author a WHERE a.id = $1"
meta_sql = "json_build_object('len', length(name))"

[[master.model]]
cqrs_id = "note"
table = "note"

[[master.model]]
cqrs_id = "audit"
table = "audit"
produce = false

[[master.model]]
cqrs_id = "shelf"
table = "shelf"
tracked_fields = ["label"]
meta_sql = "json_build_object('len', length(label))"
)toml",
                  {"book", "author", "note", "audit", "shelf"});
  f.start_agent();

  SUBCASE("fields, tracked_fields (previous_data), filter and constant meta") {
    f.sql("INSERT INTO author VALUES (1, 'Le Guin');");
    f.take(1);
    f.sql("INSERT INTO book VALUES (1, 'Draft', 1.00, 's', 1, false);");  // filtered out
    f.sql("UPDATE book SET published = true, title = 'Earthsea' WHERE id = 1;");
    f.sql("UPDATE book SET price = 2.50 WHERE id = 1;");
    f.sql("UPDATE book SET published = false WHERE id = 1;");  // leaves the filter: DELETE
    const auto msgs = f.take(4, 3s);
    REQUIRE(msgs.size() == 3);
    CHECK(json::dump(msgs[0]["instance_data"]).find("secret") == std::string::npos);
    CHECK(keys_of(msgs[0]["instance_data"]) ==
          std::vector<std::string>{"id", "cqrs_revision", "cqrs_updated", "title", "price",
                                   "author", "published"});
    CHECK(json::dump(msgs[0]["previous_data"]) == R"({"title":"Draft"})");
    CHECK(msgs[0]["instance_data"]["cqrs_revision"] == 1);
    CHECK(json::dump(msgs[1]["previous_data"]) == R"({"price":1.00})");
    CHECK(json::dump(msgs[0]["meta"]) == R"({"origin":"shop"})");
    CHECK(msgs[2]["signal_type"] == "DELETE");
    CHECK(msgs[2]["instance_data"]["cqrs_revision"] == 3);
  }

  SUBCASE("multi-row statements: previous_data, filter and meta SQL as for one row") {
    // several rows take the batch triggers' cutting path, one row the direct one
    f.sql(
        "INSERT INTO book VALUES (10, 'A', 1.00, 's', NULL, true),"
        " (11, 'B', 2.00, 's', NULL, true), (12, 'C', 3.00, 's', NULL, false);"  // 12: filtered
        " UPDATE book SET price = price + 1, published = (id <> 11) WHERE id >= 10;"
        " INSERT INTO shelf VALUES (1, 'ab'), (2, 'abc');"
        " UPDATE shelf SET label = label || 'x';"
        " UPDATE shelf SET label = 'z' WHERE id = 1;");
    const auto msgs = f.take(11, 3s);
    REQUIRE(msgs.size() == 10);
    std::vector<std::string> seen;
    for (const auto& m : msgs) {
      seen.push_back(m["cqrs_id"].get<std::string>() + " " + m["signal_type"].get<std::string>() +
                     " " + json::dump(m["instance_pk"]) + " " + json::dump(m["previous_data"]) +
                     " " + json::dump(m["meta"]));
    }
    CHECK(seen == std::vector<std::string>{
                      R"(book SAVE 10 {"title":null,"price":null} {"origin":"shop"})",
                      R"(book SAVE 11 {"title":null,"price":null} {"origin":"shop"})",
                      // the UPDATE: the rows still (or newly) published, then 11 leaving
                      R"(book SAVE 10 {"price":1.00} {"origin":"shop"})",
                      R"(book SAVE 12 {"price":3.00} {"origin":"shop"})",
                      R"(book DELETE 11 null {"origin":"shop"})",
                      R"(shelf SAVE 1 {"label":null} {"len":2})",
                      R"(shelf SAVE 2 {"label":null} {"len":3})",
                      R"(shelf SAVE 1 {"label":"ab"} {"len":3})",
                      R"(shelf SAVE 2 {"label":"abc"} {"len":4})",
                      R"(shelf SAVE 1 {"label":"abx"} {"len":1})",
                  });
    CHECK(msgs[9]["instance_data"]["label"] == "z");
    CHECK(msgs[9]["instance_data"]["cqrs_revision"] == 2);
    CHECK(msgs[3]["instance_data"]["price"] == json::parse("4.00"));
  }

  SUBCASE("serializer runs at commit and sees related rows changed later in the transaction") {
    f.sql(
        "BEGIN; INSERT INTO author VALUES (2, 'Lem');"
        " INSERT INTO book (id, title, author, published) VALUES (7, 'Solaris', 2, true);"
        " COMMIT;");
    const auto msgs = f.take(3, 3s);
    REQUIRE(msgs.size() == 2);
    const auto& a = msgs[0]["cqrs_id"] == "author" ? msgs[0] : msgs[1];
    CHECK(a["instance_data"]["books"] == json::Json::array({"Solaris"}));
    CHECK(a["instance_data"]["cqrs_revision"] == 0);
    CHECK(a["instance_data"].contains("cqrs_updated"));
    CHECK(json::dump(a["meta"]) == R"({"len":3})");
  }

  SUBCASE("uuid primary keys, DELETE included; produce = false still bumps the revision") {
    f.sql(
        "INSERT INTO note VALUES ('00000000-0000-4000-8000-00000000000A', 'x');"
        " DELETE FROM note;"
        " INSERT INTO audit VALUES (1, 'a'); UPDATE audit SET what = 'b';");
    const auto msgs = f.take(3, 3s);
    REQUIRE(msgs.size() == 2);
    CHECK(msgs[0]["instance_pk"] == "00000000-0000-4000-8000-00000000000a");
    CHECK(msgs[1]["signal_type"] == "DELETE");
    CHECK(msgs[1]["instance_data"]["id"] == "00000000-0000-4000-8000-00000000000a");
    CHECK(f.scalar("SELECT cqrs_revision FROM audit WHERE id = 1") == "1");
  }

  SUBCASE("TRUNCATE of a tracked table is refused with a hint") {
    std::string out;
    CHECK(run_shell("psql -X -q '" + f.db.url() + "' -c 'TRUNCATE note' 2>&1", &out) != 0);
    CHECK(out.find("TRUNCATE of \"public\".\"note\" is refused: pgcqrs captures its changes") !=
          std::string::npos);
    CHECK(out.find("DELETE the rows instead") != std::string::npos);
  }
}

TEST_CASE("migrate is idempotent; uninstall removes all it added but the columns") {
  MasterFixture f(kItemSchema, kItemModel, {"item"});
  const auto has_schema = [&] {
    return f.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'cqrs'");
  };
  std::string out;
  REQUIRE(f.pgcqrs("migrate", &out) == 0);
  CHECK(out == "master: schema cqrs is up to date\nmaster: capture unchanged for item\n");

  REQUIRE(f.pgcqrs("master uninstall --dry-run", &out) == 0);
  CHECK(out.find("DROP TRIGGER IF EXISTS \"cqrs_capture_insert\" ON \"shop\".\"Item\"") !=
        std::string::npos);
  CHECK(out.find("DROP TABLE IF EXISTS cqrs.outbox, cqrs.outbox_failed") != std::string::npos);
  CHECK(out.find("-- would be: schema cqrs dropped") != std::string::npos);
  CHECK(item_triggers(f) == "5");
  CHECK(has_schema() == "1");

  REQUIRE(f.pgcqrs("master uninstall", &out) == 0);
  CHECK(out ==
        "master: capture removed from item\n"
        "master: schema cqrs dropped (outbox and helpers); the cqrs_revision and cqrs_updated "
        "columns stay\n");
  CHECK(item_triggers(f) == "0");
  CHECK(has_schema() == "0");
  // no function of capture is left anywhere either
  CHECK(f.scalar("SELECT count(*) FROM pg_proc WHERE proname LIKE 'item\\_\\_%'") == "0");
  CHECK(f.scalar("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'shop'"
                 " AND column_name IN ('cqrs_revision', 'cqrs_updated')") == "2");
  f.sql("INSERT INTO shop.\"Item\" (id, name) VALUES (1, 'uncaptured')");
  CHECK(f.scalar("SELECT cqrs_revision FROM shop.\"Item\" WHERE id = 1") == "0");

  // a second uninstall finds nothing to do; migrate puts everything back
  REQUIRE(f.pgcqrs("master uninstall", &out) == 0);
  CHECK(out.empty());
  REQUIRE(f.pgcqrs("migrate", &out) == 0);
  CHECK(out.find("master: applied 0001_outbox.sql") == 0);
  CHECK(out.find("master: capture installed for item\n") != std::string::npos);
  f.sql("UPDATE shop.\"Item\" SET name = 'captured' WHERE id = 1");
  CHECK(f.scalar("SELECT count(*) FROM cqrs.outbox") == "1");
}

TEST_CASE("migrate and uninstall give up after --lock-timeout behind a long transaction") {
  MasterFixture f(kItemSchema, kItemModel, {"item"});
  // the application's transaction writes the table and stays open
  pqxx::connection app(f.db.url());
  pqxx::work writing(app);
  writing.exec("INSERT INTO shop.\"Item\" (id, name) VALUES (1, 'open')");

  rewrite_config(f, "", kItemModel + std::string("fields = [\"id\", \"name\"]\n"));
  std::string out;
  const auto started = std::chrono::steady_clock::now();
  CHECK(f.pgcqrs("migrate --lock-timeout 1", &out) == 75);
  CHECK(std::chrono::steady_clock::now() - started < 20s);
  CHECK_MESSAGE(out.find("pgcqrs: migrate: waited 1 s for a lock (canceling statement due to lock "
                         "timeout): a long transaction is using a tracked table or the outbox, or "
                         "another migrate is running. Nothing was changed") != std::string::npos,
                out);
  CHECK(f.pgcqrs("master uninstall --lock-timeout 1", &out) == 75);
  CHECK(out.find("pgcqrs: master uninstall: waited 1 s for a lock") != std::string::npos);
  CHECK(f.scalar("SELECT count(*) FROM cqrs.capture") == "1");

  // the application's write went through, captured by the triggers as they were
  writing.commit();
  CHECK(f.scalar("SELECT count(*) FROM cqrs.outbox") == "1");
  REQUIRE_MESSAGE(f.pgcqrs("migrate --lock-timeout 1", &out) == 0, out);
  CHECK(out == "master: schema cqrs is up to date\nmaster: capture installed for item\n");
  CHECK(f.pgcqrs("migrate --lock-timeout -1", &out) != 0);

  // a table locked exclusively (a Django migration's ALTER TABLE): the check of a filter waits
  // on it too, and that is a lock timeout, not a bad filter
  rewrite_config(f, "", kItemModel + std::string("filter = \"name <> ''\"\n"));
  pqxx::work altering(app);
  altering.exec("LOCK TABLE shop.\"Item\" IN ACCESS EXCLUSIVE MODE");
  CHECK(f.pgcqrs("migrate --lock-timeout 1", &out) == 75);
  CHECK_MESSAGE(out.find("pgcqrs: migrate: waited 1 s for a lock") != std::string::npos, out);
  altering.abort();
  REQUIRE_MESSAGE(f.pgcqrs("migrate", &out) == 0, out);
}

TEST_CASE("uninstall refuses to drop events not yet published, or under a running agent") {
  MasterFixture f(kItemSchema, kItemModel, {"item"});
  f.sql("INSERT INTO shop.\"Item\" (id, name) VALUES (1, 'a'), (2, 'b')");
  // one row set aside as the agent does with a row it cannot publish
  f.sql("INSERT INTO cqrs.outbox_failed SELECT o.*, 'test', now() FROM cqrs.outbox o LIMIT 1");
  std::string out;
  CHECK(f.pgcqrs("master uninstall", &out) == 1);
  CHECK_MESSAGE(out.find("master uninstall: cqrs.outbox holds 2 unpublished event(s) in 1 row(s) "
                         "and cqrs.outbox_failed holds 2 event(s) in 1 row(s) set aside") !=
                    std::string::npos,
                out);
  CHECK(out.find("nothing was changed") != std::string::npos);
  CHECK(out.find("--keep-schema") != std::string::npos);
  CHECK(out.find("--discard-events") != std::string::npos);
  CHECK(item_triggers(f) == "5");
  CHECK(f.scalar("SELECT count(*) FROM cqrs.capture") == "1");
  CHECK(f.pgcqrs("master uninstall --keep-schema --discard-events", &out) != 0);
  CHECK(out.find("excludes") != std::string::npos);

  // with an agent running (it publishes the row, and then still holds its lock)
  f.sql("DELETE FROM cqrs.outbox_failed");
  Process& agent = f.start_agent();
  REQUIRE_MESSAGE(f.take(2).size() == 2, agent.log());
  REQUIRE(eventually([&] { return f.scalar("SELECT count(*) FROM cqrs.outbox") == "0"; }, 10s));
  CHECK(f.pgcqrs("master uninstall", &out) == 1);
  CHECK_MESSAGE(out.find("master uninstall: an agent is running on this database (it holds the "
                         "master lock, backend pid ") != std::string::npos,
                out);
  CHECK(item_triggers(f) == "5");

  // --keep-schema: capture goes, the outbox and what it holds stay for the agent to publish
  agent.signal(SIGTERM);
  REQUIRE(agent.wait(30s) == 0);
  f.sql("INSERT INTO shop.\"Item\" (id, name) VALUES (3, 'c')");
  REQUIRE(f.pgcqrs("master uninstall --keep-schema", &out) == 0);
  CHECK(out == "master: capture removed from item\n");
  CHECK(item_triggers(f) == "0");
  CHECK(f.scalar("SELECT count(*) FROM cqrs.outbox") == "1");
  // the outbox drains after capture is gone; then uninstall drops the rest
  Process& drain = f.start_agent();
  const auto last = f.take(1);
  REQUIRE_MESSAGE(last.size() == 1, drain.log());
  CHECK(last[0]["instance_pk"].get<int>() == 3);
  REQUIRE(eventually([&] { return f.scalar("SELECT count(*) FROM cqrs.outbox") == "0"; }, 10s));
  drain.signal(SIGTERM);
  REQUIRE(drain.wait(30s) == 0);
  REQUIRE(f.pgcqrs("master uninstall", &out) == 0);
  CHECK(out ==
        "master: schema cqrs dropped (outbox and helpers); the cqrs_revision and cqrs_updated "
        "columns stay\n");
}

TEST_CASE("uninstall --discard-events drops unpublished events, and says so") {
  MasterFixture f(kItemSchema, kItemModel, {"item"});
  f.sql("INSERT INTO shop.\"Item\" (id, name) SELECT g, 'n' FROM generate_series(1, 3) g");
  f.sql("UPDATE shop.\"Item\" SET name = 'm' WHERE id = 1");
  std::string out;
  REQUIRE(f.pgcqrs("master uninstall --discard-events", &out) == 0);
  CHECK(out ==
        "master: capture removed from item\n"
        "master: 4 unpublished event(s) discarded: resync the replicas (cqrs_sync or "
        "cqrs_diff_*)\n"
        "master: schema cqrs dropped (outbox and helpers); the cqrs_revision and cqrs_updated "
        "columns stay\n");
  CHECK(f.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'cqrs'") == "0");
}

TEST_CASE("uninstall leaves schema cqrs to a replica in the same database") {
  MasterFixture f(kItemSchema + std::string(R"sql(
CREATE TABLE mirror (id integer PRIMARY KEY, name text,
                     cqrs_revision integer NOT NULL, cqrs_updated timestamptz NOT NULL);
)sql"),
                  kItemModel, {"item"});
  const std::string replica = write_temp_file(
      f.db.name() + "-replica.toml",
      "[broker]\nurl = \"" + amqp_url() + "\"\n[replica]\ndatabase = \"" + f.db.url() +
          "\"\nqueue = \"mirror\"\n[[replica.model]]\ncqrs_id = \"other\"\n"
          "table = \"mirror\"\n");
  std::string out;
  REQUIRE_MESSAGE(
      run_shell(pgcqrs_binary() + " --config '" + replica + "' replica install 2>&1", &out) == 0,
      out);
  REQUIRE(f.scalar("SELECT to_regclass('cqrs.tombstone') IS NOT NULL") == "t");

  REQUIRE(f.pgcqrs("master uninstall --dry-run", &out) == 0);
  CHECK_MESSAGE(out.find("-- would be: outbox and helpers dropped; schema cqrs stays, it still "
                         "holds cqrs.schema_migrations, cqrs.tombstone\n") != std::string::npos,
                out);
  REQUIRE(f.pgcqrs("master uninstall", &out) == 0);
  CHECK(out ==
        "master: capture removed from item\n"
        "master: outbox and helpers dropped; schema cqrs stays, it still holds "
        "cqrs.schema_migrations, cqrs.tombstone\n");
  CHECK(f.scalar("SELECT to_regclass('cqrs.outbox') IS NULL") == "t");
  CHECK(f.scalar("SELECT string_agg(component, ',') FROM cqrs.schema_migrations") ==
        f.scalar("SELECT string_agg('replica', ',') FROM cqrs.schema_migrations"));
  // the replica side still works: its install finds its schema up to date
  REQUIRE_MESSAGE(
      run_shell(pgcqrs_binary() + " --config '" + replica + "' replica install 2>&1", &out) == 0,
      out);
  // and the master side can come back
  REQUIRE(f.pgcqrs("migrate", &out) == 0);
  CHECK(out.find("master: applied 0001_outbox.sql") == 0);
  CHECK(f.scalar("SELECT to_regclass('cqrs.outbox') IS NOT NULL") == "t");
}

TEST_CASE("configuration errors name the table and column") {
  MasterFixture f(kItemSchema, kItemModel, {"item"});
  const std::string bad =
      write_temp_file(f.db.name() + "-bad.toml",
                      "[master]\ndatabase = \"" + f.db.url() +
                          "\"\n[[master.model]]\ncqrs_id = \"item\"\ntable = 'shop.\"Item\"'\n"
                          "tracked_fields = [\"nope\"]\n");
  std::string out;
  CHECK(run_shell(pgcqrs_binary() + " --config '" + bad + "' migrate 2>&1", &out) == 2);
  CHECK(out ==
        "pgcqrs: master.model 'item' (\"shop\".\"Item\") tracked_fields: no column \"nope\" "
        "in the table\n");
  const std::string missing =
      write_temp_file(f.db.name() + "-missing.toml",
                      "[master]\ndatabase = \"" + f.db.url() +
                          "\"\n[[master.model]]\ncqrs_id = \"x\"\ntable = \"item\"\n");
  CHECK(run_shell(pgcqrs_binary() + " --config '" + missing + "' migrate 2>&1", &out) == 2);
  CHECK(out.find("table \"public\".\"item\": not found in the master database") !=
        std::string::npos);
}

TEST_CASE("/metrics and /healthz of the agent report what it did") {
  const int port = free_port();
  MasterFixture f(kItemSchema, kItemModel, {"item"}, "http_port = " + std::to_string(port) + "\n");
  Process& agent = f.start_agent();
  f.sql("INSERT INTO shop.\"Item\" (id, name) SELECT g, 'n' FROM generate_series(1, 25) g");
  REQUIRE_MESSAGE(f.take(25).size() == 25, agent.log());
  httplib::Client http("127.0.0.1", port);
  std::string metrics;
  REQUIRE_MESSAGE(eventually(
                      [&] {
                        auto r = http.Get("/metrics");
                        if (!r) return false;
                        metrics = r->body;
                        return metrics.find("pgcqrs_master_confirmed_total 25\n") !=
                               std::string::npos;
                      },
                      10s),
                  metrics << agent.log());
  CHECK(metrics.find("pgcqrs_master_published_total 25\n") != std::string::npos);
  CHECK(metrics.find("pgcqrs_master_active 1\n") != std::string::npos);
  CHECK(metrics.find("pgcqrs_master_outbox_backlog ") != std::string::npos);
  CHECK(metrics.find("pgcqrs_master_returned_total 0\n") != std::string::npos);
  auto health = http.Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  auto ready = http.Get("/readyz");
  REQUIRE(ready);
  CHECK(ready->body == "ok\nactive\n");
  // an event nobody is bound to is returned by the broker, counted and logged
  f.sql("INSERT INTO shop.\"Item\" (id, name) VALUES (100, 'x')");
  f.take(1);
  f.queue.reset();  // deletes the queue: the next event is unroutable
  f.sql("INSERT INTO shop.\"Item\" (id, name) VALUES (101, 'y')");
  CHECK(eventually(
      [&] {
        auto r = http.Get("/metrics");
        return r && r->body.find("pgcqrs_master_returned_total 1\n") != std::string::npos;
      },
      10s));
  CHECK(agent.log().find("returned by the broker: 312 NO_ROUTE") != std::string::npos);
}

TEST_CASE("writer_roles: an application role writes to tracked tables once migrate granted it") {
  TestRole app("App Writer");  // a name that needs quoting
  const std::string models = R"toml(
[[master.model]]
cqrs_id = "acct"
table = "acct"

[[master.model]]
cqrs_id = "profile"
table = "profile"
serializer = "SELECT json_build_object('id', p.id, 'bio', p.bio) FROM profile p WHERE p.id = $1"
)toml";
  // the role may read and write the tables, nothing else
  MasterFixture f(
      "CREATE TABLE acct (id integer PRIMARY KEY, name text);"
      " CREATE TABLE profile (id integer PRIMARY KEY, bio text);"
      " GRANT SELECT, INSERT, UPDATE, DELETE ON acct, profile TO " +
          app.quoted_name() + ";",
      models, {"acct", "profile"});

  // without writer_roles the triggers, which run as the writer, may not write the outbox
  for (const char* insert :
       {"INSERT INTO acct VALUES (1, 'a')", "INSERT INTO profile VALUES (1, 'b')"}) {
    CAPTURE(insert);
    try {
      write_as(f, app, {insert});
      FAIL("the write went through");
    } catch (const pqxx::insufficient_privilege& e) {
      CHECK_MESSAGE(
          std::string(e.what()).find("permission denied for schema cqrs") != std::string::npos,
          e.what());
    }
  }
  CHECK(f.scalar("SELECT count(*) FROM acct") == "0");

  rewrite_config(f, "writer_roles = [\"" + app.name + "\"]\n", models);
  std::string out;
  REQUIRE_MESSAGE(migrate(f, out) == 0, out);
  CHECK(out ==
        "master: schema cqrs is up to date\nmaster: capture unchanged for acct, profile\n"
        "master: capture's rights granted to " +
            app.name + "\n");
  REQUIRE(migrate(f, out) == 0);  // idempotent
  // adding events, not reading, changing or removing any
  CHECK(f.scalar("SELECT has_schema_privilege('" + app.name +
                 "', 'cqrs', 'USAGE')::text || ' ' ||" + " has_table_privilege('" + app.name +
                 "', 'cqrs.outbox', 'INSERT') || ' ' ||" + " has_any_column_privilege('" +
                 app.name + "', 'cqrs.outbox', 'SELECT, UPDATE') || ' ' || has_table_privilege('" +
                 app.name + "', 'cqrs.outbox', 'DELETE')") == "true true false false");
  Process& agent = f.start_agent();

  write_as(f, app, {"INSERT INTO acct VALUES (1, 'a'), (2, 'b')"});
  write_as(f, app, {"UPDATE acct SET name = name || 'x'"});
  write_as(f, app, {"DELETE FROM acct WHERE id = 1"});
  // a serializer model: instance_data is filled at commit, by the writer
  write_as(f, app, {"INSERT INTO profile VALUES (1, 'old')", "UPDATE profile SET bio = 'new'"});
  // ... and a row gone by commit drops its SAVE
  write_as(f, app, {"INSERT INTO profile VALUES (2, 'gone')", "DELETE FROM profile WHERE id = 2"});
  const auto msgs = f.take(9, 3s);
  REQUIRE_MESSAGE(msgs.size() == 8, agent.log());
  std::vector<std::string> seen;
  for (const auto& m : msgs) {
    seen.push_back(m["cqrs_id"].get<std::string>() + " " + summary({m})[0]);
  }
  CHECK(seen == std::vector<std::string>{"acct SAVE 1 r0", "acct SAVE 2 r0", "acct SAVE 1 r1",
                                         "acct SAVE 2 r1", "acct DELETE 1 r2", "profile SAVE 1 r0",
                                         "profile SAVE 1 r1", "profile DELETE 2 r1"});
  CHECK(msgs[3]["instance_data"]["name"] == "bx");
  CHECK(msgs[5]["instance_data"]["bio"] == "new");

  // a role that does not exist
  rewrite_config(f, "writer_roles = [\"" + app.name + "\", \"no_such_role_x\"]\n", models);
  CHECK(migrate(f, out) == 2);
  CHECK(out ==
        "pgcqrs: master.writer_roles: role \"no_such_role_x\" does not exist in the master "
        "database; create it or remove it from the list\n");
}

TEST_CASE("uninstall finds the functions of a cqrs_id too long for names (earlier versions)") {
  MasterFixture f("CREATE TABLE old (id integer PRIMARY KEY);",
                  "[[master.model]]\ncqrs_id = \"old\"\ntable = \"old\"\n", {"old"});
  // as an earlier pgcqrs installed a 60-byte cqrs_id: PostgreSQL cut the names at 63 bytes
  const std::string id(60, 'l');
  f.sql("INSERT INTO cqrs.capture (cqrs_id, table_schema, table_name, config_hash) VALUES ('" + id +
        "', 'public', 'old', 'x'); CREATE FUNCTION cqrs.\"" + id +
        "__bump\"() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'; CREATE FUNCTION"
        " cqrs.\"" +
        id + "__serialize\"(pk integer) RETURNS json LANGUAGE sql AS 'SELECT NULL::json';");
  const std::string left =
      "SELECT string_agg(proname, ',' ORDER BY proname) FROM pg_proc WHERE"
      " pronamespace = 'cqrs'::regnamespace AND proname LIKE 'lll%'";
  CHECK(f.scalar(left) == id + "__b," + id + "__s");
  std::string out;
  REQUIRE(f.pgcqrs("master uninstall --keep-schema", &out) == 0);  // the schema stays to look in
  CHECK(f.scalar(left).empty());
}

TEST_CASE(
    "migrate checks filter, meta_sql and serializer against the table; a bad one installs "
    "nothing") {
  const std::string head = "[[master.model]]\ncqrs_id = \"book\"\ntable = \"book\"\n";
  const std::string good_filter = "filter = \"published\"\n";
  const std::string good_meta = "meta_sql = \"json_build_object('t', title)\"\n";
  const std::string good_serializer =
      "serializer = \"SELECT json_build_object('id', b.id, 't', b.title) FROM book b"
      " WHERE b.id = $1\"\n";
  MasterFixture f("CREATE TABLE book (id integer PRIMARY KEY, title text, published boolean);",
                  head + good_filter + good_meta + good_serializer, {"book"});
  // what is installed: the model's hash, the functions' code, the triggers
  const auto installed = [&] {
    return f.scalar(
        "SELECT (SELECT config_hash FROM cqrs.capture WHERE cqrs_id = 'book') || ' ' ||"
        " (SELECT string_agg(p.proname || ':' || md5(p.prosrc), ',' ORDER BY p.proname)"
        "  FROM pg_proc p WHERE p.pronamespace = 'cqrs'::regnamespace) || ' ' ||"
        " (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'book'::regclass AND NOT tgisinternal)");
  };
  const std::string before = installed();
  const std::string prefix = "pgcqrs: master.model 'book' (\"public\".\"book\") ";
  struct Bad {
    std::string toml;
    std::string message;
  };
  const std::vector<Bad> bad = {
      {"filter = \"pubished\"\n" + good_meta + good_serializer,
       "filter: the SQL fails on the table: column \"pubished\" does not exist"},
      {"filter = \"title\"\n" + good_meta + good_serializer,
       "filter: the SQL fails on the table: argument of WHERE must be type boolean, not type "
       "text"},
      {"filter = \"published AND length(title)\"\n" + good_meta + good_serializer,
       "filter: the SQL fails on the table: argument of AND must be type boolean, not type "
       "integer"},
      {good_filter + "meta_sql = \"json_build_object('t', titel)\"\n" + good_serializer,
       "meta_sql: the SQL fails on the table: column \"titel\" does not exist"},
      {good_filter + "meta_sql = \"title + 1\"\n" + good_serializer,
       "meta_sql: the SQL fails on the table: operator does not exist: text + integer"},
      {good_filter + good_meta +
           "serializer = \"SELECT json_build_object('id', b.id) FROM book b WHERE b.idd = $1\"\n",
       "serializer: the SQL fails on the table: column b.idd does not exist"},
      {good_filter + good_meta + "serializer = \"SELECT b.title FROM book b WHERE b.id = $1\"\n",
       "serializer: the SQL fails on the table: return type mismatch in function declared to "
       "return json"},
      {"filter = \"published $cqrs$\"\n",
       "filter: SQL must not contain the quote $cqrs$ (pgcqrs wraps generated function bodies "
       "in it)"},
  };
  for (const auto& b : bad) {
    CAPTURE(b.toml);
    rewrite_config(f, "", head + b.toml);
    std::string out;
    CHECK(migrate(f, out) == 2);
    CHECK(out == prefix + b.message + "\n");
    CHECK(installed() == before);
  }
  // a check reads no row and leaves nothing behind: the good configuration is unchanged
  f.sql("INSERT INTO book VALUES (1, 'a', true)");
  rewrite_config(f, "", head + good_filter + good_meta + good_serializer);
  std::string out;
  REQUIRE(migrate(f, out) == 0);
  CHECK(out == "master: schema cqrs is up to date\nmaster: capture unchanged for book\n");
}

TEST_CASE("partitioned tables and partitions are refused: their statement triggers miss writes") {
  MasterFixture f(R"sql(
CREATE TABLE parted (id integer PRIMARY KEY, v text) PARTITION BY RANGE (id);
CREATE TABLE parted_low PARTITION OF parted FOR VALUES FROM (0) TO (100);
CREATE TABLE plain (id integer PRIMARY KEY);
)sql",
                  "[[master.model]]\ncqrs_id = \"plain\"\ntable = \"plain\"\n", {"plain"});
  std::string out;
  rewrite_config(f, "", "[[master.model]]\ncqrs_id = \"p\"\ntable = \"parted\"\n");
  CHECK(migrate(f, out) == 2);
  CHECK(out ==
        "pgcqrs: table \"public\".\"parted\": is a partitioned table; pgcqrs cannot capture it "
        "(its statement triggers do not fire for writes aimed directly at a partition, whose "
        "events would be lost); capture a plain table instead\n");
  rewrite_config(f, "", "[[master.model]]\ncqrs_id = \"p\"\ntable = \"parted_low\"\n");
  CHECK(migrate(f, out) == 2);
  CHECK(out ==
        "pgcqrs: table \"public\".\"parted_low\": is a partition of parted; pgcqrs cannot "
        "capture it (its statement triggers do not fire for writes routed through the parent, "
        "whose events would be lost); capture a plain table instead\n");
  CHECK(f.scalar("SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('parted'::regclass,"
                 " 'parted_low'::regclass) AND NOT tgisinternal") == "0");
}

TEST_CASE("existing cqrs_revision and cqrs_updated columns must have the types capture writes") {
  MasterFixture f(R"sql(
CREATE TABLE naive (id integer PRIMARY KEY, cqrs_revision integer NOT NULL,
                    cqrs_updated timestamp NOT NULL);
CREATE TABLE texty (id integer PRIMARY KEY, cqrs_revision text);
CREATE TABLE wide (id integer PRIMARY KEY, cqrs_revision bigint NOT NULL DEFAULT 0,
                   cqrs_updated timestamptz NOT NULL DEFAULT now());
INSERT INTO naive VALUES (1, 3, '2024-05-01 12:00:00');
)sql",
                  "[[master.model]]\ncqrs_id = \"wide\"\ntable = \"wide\"\n", {"wide"});
  const std::string wide = "[[master.model]]\ncqrs_id = \"wide\"\ntable = \"wide\"\n";
  std::string out;
  // a Django USE_TZ = False table
  rewrite_config(f, "", wide + "[[master.model]]\ncqrs_id = \"naive\"\ntable = \"naive\"\n");
  CHECK(migrate(f, out) == 2);
  CHECK(out ==
        "pgcqrs: master.model 'naive' (\"public\".\"naive\") table: column cqrs_updated is "
        "timestamp without time zone (a Django USE_TZ = False table); it must be timestamptz: "
        "a timestamp without time zone holds local times of no stated zone, which the triggers "
        "would write and publish in each writing session's TimeZone. Convert it, naming the "
        "zone its values were written in (Django's TIME_ZONE): ALTER TABLE "
        "\"public\".\"naive\" ALTER COLUMN cqrs_updated TYPE timestamptz USING cqrs_updated AT "
        "TIME ZONE 'UTC'\n");
  CHECK(f.scalar("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'naive'::regclass") == "0");
  // the ALTER the message gives makes it capturable
  f.sql(
      "ALTER TABLE \"public\".\"naive\" ALTER COLUMN cqrs_updated TYPE timestamptz USING"
      " cqrs_updated AT TIME ZONE 'UTC'");
  REQUIRE_MESSAGE(migrate(f, out) == 0, out);
  CHECK(f.scalar("SELECT cqrs.django_ts(cqrs_updated) FROM naive") == "2024-05-01 12:00:00+00:00");

  rewrite_config(f, "", wide + "[[master.model]]\ncqrs_id = \"texty\"\ntable = \"texty\"\n");
  CHECK(migrate(f, out) == 2);
  CHECK(out ==
        "pgcqrs: master.model 'texty' (\"public\".\"texty\") table: column cqrs_revision is "
        "text; it must be integer or bigint (the revision replicas compare): ALTER TABLE "
        "\"public\".\"texty\" ALTER COLUMN cqrs_revision TYPE integer USING "
        "cqrs_revision::integer\n");

  // bigint revisions are fine
  rewrite_config(f, "", wide);
  f.start_agent();
  f.sql("INSERT INTO wide (id) VALUES (1); UPDATE wide SET cqrs_revision = 3000000000;");
  const auto msgs = f.take(2);
  REQUIRE(msgs.size() == 2);
  CHECK(json::dump(msgs[1]["instance_data"]["cqrs_revision"]) == "1");
}

TEST_CASE("primary-key changes publish a DELETE of each old key, then a SAVE of each new one") {
  MasterFixture f(kItemSchema, kItemModel, {"item"});
  Process& agent = f.start_agent();
  f.sql("INSERT INTO shop.\"Item\" (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c');");
  REQUIRE_MESSAGE(f.take(3).size() == 3, agent.log());

  f.sql("UPDATE shop.\"Item\" SET id = 101 WHERE id = 1;");
  auto msgs = f.take(3, 2s);
  CHECK(summary(msgs) == std::vector<std::string>{"DELETE 1 r1", "SAVE 101 r1"});
  REQUIRE(msgs.size() == 2);
  CHECK(keys_of(msgs[0]["instance_data"]) ==
        std::vector<std::string>{"id", "cqrs_revision", "cqrs_updated"});
  CHECK(msgs[0]["instance_data"]["id"] == 1);
  CHECK(msgs[1]["instance_data"]["name"] == "a");

  // several rows in one statement: every old key's DELETE (written before each row changes),
  // then the new keys' SAVEs (after the statement)
  f.sql("UPDATE shop.\"Item\" SET id = id + 100;");
  msgs = f.take(7, 2s);
  const auto seen = summary(msgs);
  REQUIRE(seen.size() == 6);
  CHECK(std::multiset<std::string>(seen.begin(), seen.begin() + 3) ==
        std::multiset<std::string>{"DELETE 2 r1", "DELETE 3 r1", "DELETE 101 r2"});
  CHECK(std::multiset<std::string>(seen.begin() + 3, seen.end()) ==
        std::multiset<std::string>{"SAVE 102 r1", "SAVE 103 r1", "SAVE 201 r2"});
  for (const auto& m : msgs) {
    if (m["signal_type"] == "DELETE") CHECK(m["instance_data"]["id"] == m["instance_pk"]);
  }

  // a multi-row DELETE: one event per row, revision + 1
  f.sql("DELETE FROM shop.\"Item\" WHERE id > 100;");
  msgs = f.take(4, 2s);
  const auto deleted = summary(msgs);
  CHECK(std::multiset<std::string>(deleted.begin(), deleted.end()) ==
        std::multiset<std::string>{"DELETE 102 r2", "DELETE 103 r2", "DELETE 201 r3"});
  for (const auto& m : msgs) {
    CHECK(m["instance_data"]["id"] == m["instance_pk"]);
    CHECK(keys_of(m["instance_data"]) ==
          std::vector<std::string>{"id", "cqrs_revision", "cqrs_updated"});
  }
  CHECK(f.scalar("SELECT count(*) FROM shop.\"Item\"") == "0");
}

TEST_CASE("date, timestamp, text and bigint primary keys travel in django-cqrs formats") {
  MasterFixture f(R"sql(
CREATE TABLE by_day (id date PRIMARY KEY, v text);
CREATE TABLE by_time (id timestamp PRIMARY KEY, v text);
CREATE TABLE by_name (id text PRIMARY KEY, v text);
CREATE TABLE by_big (id bigint PRIMARY KEY, v text);
)sql",
                  R"toml(
[[master.model]]
cqrs_id = "day"
table = "by_day"
[[master.model]]
cqrs_id = "time"
table = "by_time"
[[master.model]]
cqrs_id = "name"
table = "by_name"
[[master.model]]
cqrs_id = "big"
table = "by_big"
)toml",
                  {"day", "time", "name", "big"});
  Process& agent = f.start_agent();
  // a writer whose settings would change the text of dates and times: the events do not
  f.sql(R"sql(
SET TimeZone = 'Asia/Kolkata'; SET DateStyle = 'SQL, DMY';
INSERT INTO by_day VALUES ('2024-02-29', 'a');
INSERT INTO by_day VALUES ('2024-03-01', 'b'), ('2024-03-02', 'c');
UPDATE by_day SET v = 'x' WHERE id = '2024-02-29';
DELETE FROM by_day WHERE id = '2024-02-29';
INSERT INTO by_time VALUES ('2024-05-01 12:00:00.123456', 'a');
INSERT INTO by_time VALUES ('2024-05-01 13:00:00', 'b'), ('2024-05-01 14:00:00.5', 'c');
UPDATE by_time SET v = 'x' WHERE id = '2024-05-01 12:00:00.123456';
UPDATE by_time SET id = id + interval '1 day' WHERE id = '2024-05-01 13:00:00';
DELETE FROM by_time WHERE id = '2024-05-01 12:00:00.123456';
INSERT INTO by_name VALUES ('a b "q" é', 'a');
INSERT INTO by_name VALUES ('b/c', 'b'), ('', 'c');
UPDATE by_name SET v = 'x' WHERE id = 'a b "q" é';
DELETE FROM by_name WHERE id = 'a b "q" é';
INSERT INTO by_big VALUES (9007199254740993, 'a');
INSERT INTO by_big VALUES (-9223372036854775808, 'b'), (9223372036854775807, 'c');
UPDATE by_big SET v = 'x' WHERE id = 9007199254740993;
DELETE FROM by_big WHERE id = 9007199254740993;
RESET TimeZone; RESET DateStyle;
)sql");
  const auto msgs = f.take(23, 3s);
  REQUIRE_MESSAGE(msgs.size() == 22, agent.log());
  // "<cqrs_id> <signal> <instance_pk> <instance_data.id> r<revision>"
  std::vector<std::string> seen;
  for (const auto& m : msgs) {
    seen.push_back(m["cqrs_id"].get<std::string>() + " " + m["signal_type"].get<std::string>() +
                   " " + json::dump(m["instance_pk"]) + " " + json::dump(m["instance_data"]["id"]) +
                   " r" + std::to_string(m["instance_data"]["cqrs_revision"].get<int>()));
  }
  CHECK(seen == std::vector<std::string>{
                    R"(day SAVE "2024-02-29" "2024-02-29" r0)",
                    R"(day SAVE "2024-03-01" "2024-03-01" r0)",
                    R"(day SAVE "2024-03-02" "2024-03-02" r0)",
                    R"(day SAVE "2024-02-29" "2024-02-29" r1)",
                    R"(day DELETE "2024-02-29" "2024-02-29" r2)",
                    R"(time SAVE "2024-05-01 12:00:00.123456" "2024-05-01 12:00:00.123456" r0)",
                    R"(time SAVE "2024-05-01 13:00:00" "2024-05-01 13:00:00" r0)",
                    R"(time SAVE "2024-05-01 14:00:00.500000" "2024-05-01 14:00:00.500000" r0)",
                    R"(time SAVE "2024-05-01 12:00:00.123456" "2024-05-01 12:00:00.123456" r1)",
                    R"(time DELETE "2024-05-01 13:00:00" "2024-05-01 13:00:00" r1)",
                    R"(time SAVE "2024-05-02 13:00:00" "2024-05-02 13:00:00" r1)",
                    R"(time DELETE "2024-05-01 12:00:00.123456" "2024-05-01 12:00:00.123456" r2)",
                    R"(name SAVE "a b \"q\" \u00e9" "a b \"q\" \u00e9" r0)",
                    R"(name SAVE "b\/c" "b\/c" r0)",
                    R"(name SAVE "" "" r0)",
                    R"(name SAVE "a b \"q\" \u00e9" "a b \"q\" \u00e9" r1)",
                    R"(name DELETE "a b \"q\" \u00e9" "a b \"q\" \u00e9" r2)",
                    R"(big SAVE 9007199254740993 9007199254740993 r0)",
                    R"(big SAVE -9223372036854775808 -9223372036854775808 r0)",
                    R"(big SAVE 9223372036854775807 9223372036854775807 r0)",
                    R"(big SAVE 9007199254740993 9007199254740993 r1)",
                    R"(big DELETE 9007199254740993 9007199254740993 r2)",
                });
}

TEST_CASE(
    "cqrs_revision and cqrs_updated given on INSERT are published as given; UPDATE moves "
    "both") {
  MasterFixture f(kItemSchema, kItemModel, {"item"});
  Process& agent = f.start_agent();
  // a client may set both on INSERT (a copy of rows from elsewhere): published as given
  f.sql(
      "INSERT INTO shop.\"Item\" (id, name, cqrs_revision, cqrs_updated) VALUES"
      " (1, 'a', 5, '2000-01-01 00:00:00+00')");
  auto msgs = f.take(1);
  REQUIRE_MESSAGE(msgs.size() == 1, agent.log());
  CHECK(msgs[0]["instance_data"]["cqrs_revision"] == 5);
  CHECK(msgs[0]["instance_data"]["cqrs_updated"] == "2000-01-01 00:00:00+00:00");
  // an UPDATE bumps the revision and moves the time to now, whatever it sets them to
  const auto before = now_utc();
  f.sql(
      "UPDATE shop.\"Item\" SET name = 'b';"
      " UPDATE shop.\"Item\" SET cqrs_revision = 100, cqrs_updated = '1999-01-01 00:00+00';");
  msgs = f.take(3, 2s);
  REQUIRE(msgs.size() == 2);
  CHECK(msgs[0]["instance_data"]["cqrs_revision"] == 6);
  CHECK(msgs[1]["instance_data"]["cqrs_revision"] == 7);
  for (const auto& m : msgs) {
    CHECK(parse_timestamp(m["instance_data"]["cqrs_updated"].get<std::string>()) > before - 1min);
  }
  CHECK(msgs[1]["instance_data"]["cqrs_updated"] ==
        f.scalar("SELECT cqrs.django_ts(cqrs_updated) FROM shop.\"Item\""));
  CHECK(f.scalar("SELECT cqrs_revision || ' ' || (cqrs_updated > '2020-01-01') FROM"
                 " shop.\"Item\"") == "7 true");
}

TEST_CASE("migrate --dry-run on a fresh database prints the DDL and installs nothing") {
  TempDatabase db("m");
  {
    pqxx::connection c(db.url());
    pqxx::nontransaction t(c);
    t.exec("CREATE TABLE author (id integer PRIMARY KEY, name text)");
  }
  const auto config = [&](const std::string& filter) {
    return write_temp_file(db.name() + ".toml",
                           "[master]\ndatabase = \"" + db.url() +
                               "\"\n[[master.model]]\ncqrs_id = \"author\"\ntable = \"author\"\n"
                               // the columns migrate adds are there for the check
                               "filter = \"" +
                               filter +
                               "\"\nmeta_sql = \"json_build_object('at', cqrs_updated)\"\n");
  };
  const auto nothing_installed = [&] {
    pqxx::connection c(db.url());
    pqxx::nontransaction t(c);
    return t
        .exec1(
            "SELECT to_regnamespace('cqrs') IS NULL AND NOT EXISTS (SELECT FROM pg_trigger"
            " WHERE tgrelid = 'author'::regclass) AND NOT EXISTS (SELECT FROM"
            " information_schema.columns WHERE table_name = 'author' AND column_name LIKE"
            " 'cqrs%')")[0]
        .as<bool>();
  };
  const std::string good = config("cqrs_revision >= 0 AND name IS NOT NULL");
  std::string out;
  REQUIRE(run_shell(pgcqrs_binary() + " --config '" + good + "' migrate --dry-run 2>&1", &out) ==
          0);
  CHECK(out.find("-- migration 0001_outbox.sql\n") != std::string::npos);
  CHECK(out.find("-- migration 0004_batch_layouts.sql\n") != std::string::npos);
  CHECK(out.find("ALTER TABLE \"public\".\"author\" ADD COLUMN cqrs_revision integer NOT NULL"
                 " DEFAULT 0;\n") != std::string::npos);
  CHECK(out.find("CREATE TRIGGER \"cqrs_capture_insert\" AFTER INSERT ON \"public\".\"author\"") !=
        std::string::npos);
  CHECK(out.find("-- record capture of author;\n") != std::string::npos);
  const std::string last = "-- dry run: nothing was changed\n";
  CHECK(out.size() > last.size());
  CHECK(out.substr(out.size() - last.size()) == last);
  CHECK(nothing_installed());
  // a bad filter on a fresh database: nothing of the migrations is kept either
  const std::string bad = config("cqrs_revison >= 0");
  CHECK(run_shell(pgcqrs_binary() + " --config '" + bad + "' migrate 2>&1", &out) == 2);
  CHECK(out.find("filter: the SQL fails on the table: column \"cqrs_revison\" does not exist") !=
        std::string::npos);
  CHECK(nothing_installed());
  REQUIRE(run_shell(pgcqrs_binary() + " --config '" + config("cqrs_revision >= 0") + "' migrate",
                    &out) == 0);
  CHECK_FALSE(nothing_installed());
}

TEST_CASE(
    "migrate after a change of fields or filter updates the triggers: the next event follows") {
  MasterFixture f(kItemSchema, kItemModel, {"item"});
  Process& agent = f.start_agent();
  f.sql("INSERT INTO shop.\"Item\" (id, name, note) VALUES (1, 'a', 'n')");
  auto msgs = f.take(1);
  REQUIRE_MESSAGE(msgs.size() == 1, agent.log());
  CHECK(keys_of(msgs[0]["instance_data"]).size() == 12);

  rewrite_config(f, "",
                 std::string(kItemModel) + "fields = [\"name\"]\nfilter = \"name <> 'hidden'\"\n");
  std::string out;
  REQUIRE(migrate(f, out) == 0);
  CHECK(out == "master: schema cqrs is up to date\nmaster: capture installed for item\n");
  f.sql(
      "INSERT INTO shop.\"Item\" (id, name, note) VALUES (2, 'b', 'n'), (3, 'hidden', 'n');"
      " UPDATE shop.\"Item\" SET note = 'm' WHERE id = 1;");
  msgs = f.take(3, 2s);
  CHECK(summary(msgs) == std::vector<std::string>{"SAVE 2 r0", "SAVE 1 r1"});
  for (const auto& m : msgs) {
    CHECK(keys_of(m["instance_data"]) ==
          std::vector<std::string>{"id", "cqrs_revision", "cqrs_updated", "name"});
  }
  // and back: every column again
  rewrite_config(f, "", kItemModel);
  REQUIRE(migrate(f, out) == 0);
  f.sql("UPDATE shop.\"Item\" SET note = 'o' WHERE id = 3;");
  msgs = f.take(2, 2s);
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0]["instance_pk"] == 3);
  CHECK(keys_of(msgs[0]["instance_data"]).size() == 12);
}
