// Repairing a broken replica with the two pipelines, as an operator would through
// `kubectl exec -i`: the diff pipeline resyncs stale and missing rows, the deleted-rows pipeline
// removes the rows the master no longer has; afterwards the replica equals the master exactly.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <chrono>
#include <string>

#include <doctest/doctest.h>

#include "support/master_fixture.hpp"
#include "support/replica_fixture.hpp"

using namespace pgcqrs::it;
using namespace std::chrono_literals;

namespace {

// Runs `script` with bash -o pipefail, so that a failing stage fails the pipeline.
int pipeline(const std::string& script, std::string* out) {
  const std::string path = write_temp_file(unique_name("pipeline") + ".sh", script);
  return run_shell("bash -o pipefail '" + path + "' 2>&1", out);
}

std::string cmd(const std::string& config, const std::string& args) {
  std::string s = pgcqrs_binary();
  s += " --config '";
  s += config;
  s += "' ";
  s += args;
  return s;
}

}  // namespace

TEST_CASE("1,000 rows, 50 stale, 20 missing, 30 extra: the two pipelines make the replica equal") {
  MasterFixture m(
      "CREATE TABLE author (id integer PRIMARY KEY, name text NOT NULL, rating numeric(6,3));",
      "[[master.model]]\ncqrs_id = \"author\"\ntable = \"author\"\n", {});
  ReplicaFixture r(R"sql(
CREATE SCHEMA reads;
CREATE TABLE reads.author (id integer PRIMARY KEY, name text NOT NULL, rating numeric(6,3),
                           cqrs_revision integer NOT NULL, cqrs_updated timestamptz NOT NULL);
)sql",
                   "[[replica.model]]\ncqrs_id = \"author\"\ntable = \"reads.author\"\n",
                   "max_retries = 2\n", m.exchange);
  m.start_agent();
  r.start_consumer({"-w", "2"});

  // a replica in step with the master: 1,000 rows, each updated once (revision 1)
  m.sql("INSERT INTO author SELECT g, 'a' || g, g / 8.0 FROM generate_series(1, 1000) g");
  m.sql("UPDATE author SET name = name || ' v1'");
  const std::string q =
      "SELECT id::text, name, rating::text, cqrs_revision::text, "
      "cqrs_updated::text FROM ";
  const Rows master = [&] {
    pqxx::nontransaction txn(*m.conn);
    Rows out;
    for (const auto& row : txn.exec(q + "author ORDER BY id")) {
      std::vector<std::string> v;
      for (const auto& f : row)
        v.push_back(f.is_null() ? "<null>" : f.as<std::string>());
      out.push_back(std::move(v));
    }
    return out;
  }();
  REQUIRE(master.size() == 1000);
  REQUIRE(eventually([&] { return r.rows(q + "reads.author ORDER BY id") == master; }, 60s));

  // break it the ways replicas break: lost updates, lost inserts, lost deletes
  r.sql(
      "UPDATE reads.author SET name = 'stale', cqrs_revision = 0 WHERE id % 20 = 0;"  // 50
      "DELETE FROM reads.author WHERE id BETWEEN 101 AND 120;"                        // 20
      "INSERT INTO reads.author SELECT g, 'gone on the master', 1, 3, now() "
      "FROM generate_series(5001, 5030) g;");  // 30
  REQUIRE(r.scalar("SELECT count(*) FROM reads.author") == "1010");

  // the diff pipeline finds the 70 rows whose revision differs or that are missing
  std::string out;
  const int diff_rc = pipeline(cmd(m.config_path, "diff-master --cqrs-id author --batch 300") +
                                   " | " + cmd(r.config_path, "diff-replica") + " | " +
                                   cmd(m.config_path, "diff-sync --batch 50") + "\n",
                               &out);
  INFO("diff pipeline output:\n" << out);
  REQUIRE(diff_rc == 0);
  CHECK(out.find("PK to resync:") != std::string::npos);

  // the deleted-rows pipeline removes the 30 rows the master never had
  const int del_rc =
      pipeline(cmd(r.config_path, "deleted-diff-replica --cqrs-id author --batch 300") + " | " +
                   cmd(m.config_path, "deleted-diff-master") + " | " +
                   cmd(r.config_path, "deleted-sync-replica") + "\n",
               &out);
  INFO("deleted pipeline output:\n" << out);
  REQUIRE(del_rc == 0);
  CHECK(out.find("PK to delete:") != std::string::npos);

  // the SYNCs travel through RabbitMQ and the consumer: wait for them, then compare every column
  CHECK(eventually([&] { return r.rows(q + "reads.author ORDER BY id") == master; }, 60s));
  CHECK(r.rows(q + "reads.author ORDER BY id") == master);

  // run again on the repaired replica: nothing left to resync or delete
  REQUIRE(pipeline(cmd(m.config_path, "diff-master --cqrs-id author") + " | " +
                       cmd(r.config_path, "diff-replica") + "\n",
                   &out) == 0);
  CHECK(out.find("PK to resync:") == std::string::npos);
  REQUIRE(pipeline(cmd(r.config_path, "deleted-diff-replica --cqrs-id author") + " | " +
                       cmd(m.config_path, "deleted-diff-master") + "\n",
                   &out) == 0);
  CHECK(out.find("PK to delete:") == std::string::npos);
}
