// The diff pipeline `diff-master | diff-replica | diff-sync` against real PostgreSQL and
// RabbitMQ: django-cqrs's vectors through our stages, golden line formats, a diverged replica
// repaired end to end, keys not named id (text, uuid), the None queue, malformed lines, and
// django-cqrs's messages.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <doctest/doctest.h>

#include "common/json.hpp"
#include "support/master_fixture.hpp"
#include "support/replica_fixture.hpp"

using namespace pgcqrs;
using namespace pgcqrs::it;
using namespace std::chrono_literals;
using json::Json;

namespace {

const char* const kMasterSchema = R"sql(
CREATE TABLE author (
  id    integer PRIMARY KEY,
  name  varchar(200) NOT NULL
);
CREATE TABLE word (
  code  text PRIMARY KEY,
  body  text
);
CREATE TABLE thing (
  uid   uuid PRIMARY KEY,
  label text
);
CREATE TABLE picky (
  id    integer PRIMARY KEY,
  name  text NOT NULL
);
)sql";

const char* const kMasterModels = R"toml(
[[master.model]]
cqrs_id = "author"
table = "author"

[[master.model]]
cqrs_id = "word"
table = "word"

[[master.model]]
cqrs_id = "thing"
table = "thing"

[[master.model]]
cqrs_id = "picky"
table = "picky"
filter = "name <> 'skip'"
)toml";

const char* const kReplicaSchema = R"sql(
CREATE SCHEMA reads;
CREATE TABLE reads.author (
  id             integer PRIMARY KEY,
  name           varchar(200) NOT NULL,
  cqrs_revision  integer NOT NULL,
  cqrs_updated   timestamptz NOT NULL
);
CREATE TABLE reads.word (
  code           text PRIMARY KEY,
  body           text,
  cqrs_revision  integer NOT NULL,
  cqrs_updated   timestamptz NOT NULL
);
CREATE TABLE reads.thing (
  "Uid"          uuid PRIMARY KEY,
  label          text,
  cqrs_revision  integer NOT NULL,
  cqrs_updated   timestamptz NOT NULL
);
)sql";

const char* const kReplicaModels = R"toml(
[[replica.model]]
cqrs_id = "author"
table = "reads.author"

[[replica.model]]
cqrs_id = "word"
table = "reads.word"

[[replica.model]]
cqrs_id = "thing"
table = "reads.thing"
mapping = { uid = "Uid" }
)toml";

struct Run {
  int rc = 0;
  std::string out;
  std::string err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// `pgcqrs --config <config> <args>` with `input` on stdin.
Run run(const std::string& config, const std::string& args, const std::string& input = "") {
  const std::string in_path = write_temp_file(unique_name("in") + ".txt", input);
  const std::string err_path = in_path + ".stderr";
  Run r;
  r.rc = run_shell(pgcqrs_binary() + " --config '" + config + "' " + args + " <'" + in_path +
                       "' 2>'" + err_path + "'",
                   &r.out);
  r.err = slurp(err_path);
  return r;
}

std::string vector_file(const std::string& name) {
  return slurp(std::string(PGCQRS_SOURCE_DIR) + "/tests/vectors/diff/" + name);
}

std::string done(int synced, int processed) {
  return "Done!\n" + std::to_string(synced) + " instance(s) synced.\n" + std::to_string(processed) +
         " instance(s) processed.\n";
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line))
    out.push_back(line);
  return out;
}

struct Pair {
  MasterFixture master;
  ReplicaFixture replica;
  Pair()
      : master(kMasterSchema, kMasterModels, {}),
        replica(kReplicaSchema, kReplicaModels,
                "max_retries = 2\nretry_delay = 1\nretry_backoff = 2.0\nretry_delay_max = 2\n",
                master.exchange) {}
};

const std::regex kHeader(R"(^author,\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?\+00:00$)");

}  // namespace

TEST_CASE("django-cqrs's diff-master output goes through our diff-replica: the vector's line") {
  Pair p;
  // the vector's replica: author 3 raised by 5, the others equal (tests/vectors/README.md)
  p.replica.sql(
      "INSERT INTO reads.author VALUES (3, 'a', 6, now()), (10, 'b', 0, now()),"
      " (11, 'c', 0, now()), (2, 'd', 2, now())");
  const Run r = run(p.replica.config_path, "diff-replica", vector_file("author_1_diff_master.out"));
  CHECK(r.rc == 0);
  std::string expected = vector_file("author_2_diff_replica.out");
  expected.replace(expected.find(",replica\n"), 9, "," + p.replica.queue + "\n");
  CHECK(r.out == expected);
  CHECK(r.err == vector_file("author_2_diff_replica.err"));

  // product's vector: product 3 deleted on the replica, the pairs include other ids too
  std::string product_out;
  {
    ReplicaFixture product(
        "CREATE TABLE product (id integer PRIMARY KEY, cqrs_revision integer NOT NULL,"
        " cqrs_updated timestamptz NOT NULL);"
        "INSERT INTO product VALUES (6, 0, now()), (7, 0, now()), (2, 4, now());",
        "[[replica.model]]\ncqrs_id = \"product\"\ntable = \"product\"\n");
    const Run pr =
        run(product.config_path, "diff-replica", vector_file("product_1_diff_master.out"));
    CHECK(pr.rc == 0);
    std::string want = vector_file("product_2_diff_replica.out");
    want.replace(want.find(",replica\n"), 9, "," + product.queue + "\n");
    CHECK(pr.out == want);
    CHECK(pr.err == vector_file("product_2_diff_replica.err"));
  }
}

TEST_CASE("django-cqrs's diff-replica output goes through our diff-sync: the vector's report") {
  Pair p;
  // django-cqrs's line 1 names the queue `replica`: bind a queue with its routing key
  TestQueue target(p.master.exchange, unique_name("replica"), {"cqrs.replica.author"});
  p.master.sql("INSERT INTO author VALUES (3, 'three'), (10, 'ten')");
  const Run r = run(p.master.config_path, "diff-sync", vector_file("author_2_diff_replica.out"));
  CHECK(r.rc == 0);
  CHECK(r.out == vector_file("author_3_diff_sync.out"));
  CHECK(r.err == vector_file("author_3_diff_sync.err"));
  const auto got = target.take(1, 5s, 30s);
  REQUIRE(got.size() == 1);
  const Json body = json::parse(got[0].body);
  CHECK(body["signal_type"] == "SYNC");
  CHECK(body["instance_pk"] == 3);
  CHECK(body["instance_data"]["name"] == "three");
}

TEST_CASE("our diff-master writes django-cqrs's format, keyset batches in key order") {
  Pair p;
  p.master.sql("INSERT INTO author VALUES (3, 'a'), (10, 'b'), (11, 'c'), (2, 'd')");
  p.master.sql("UPDATE author SET name = name || '!' WHERE id = 3");
  p.master.sql("UPDATE author SET name = name || '!' WHERE id IN (2, 3)");
  Run r = run(p.master.config_path, "diff-master --cqrs-id author");
  CHECK(r.rc == 0);
  CHECK(r.err == "");
  auto lines = lines_of(r.out);
  REQUIRE(lines.size() == 2);
  CHECK(std::regex_match(lines[0], kHeader));
  CHECK(lines[1] == "[[2,1],[3,2],[10,0],[11,0]]");
  // the same shape as django-cqrs's own output
  const auto vec = lines_of(vector_file("author_1_diff_master.out"));
  CHECK(std::regex_match(vec[0], kHeader));

  r = run(p.master.config_path, "diff-master -cid author -b 3");
  lines = lines_of(r.out);
  REQUIRE(lines.size() == 3);
  CHECK(lines[1] == "[[2,1],[3,2],[10,0]]");
  CHECK(lines[2] == "[[11,0]]");

  r = run(p.master.config_path, "diff-master -cid author -b 2 -f '{\"id__in\": [2, 11, 99]}'");
  lines = lines_of(r.out);
  REQUIRE(lines.size() == 2);
  CHECK(lines[1] == "[[2,1],[11,0]]");

  r = run(p.master.config_path, "diff-master -cid author -f '{\"id\": 99}'");
  CHECK(r.rc == 0);
  CHECK(r.out == "");
  CHECK(r.err == "No objects found for filter!\n");

  // the model's filter (is_sync_instance) leaves rows out; a batch of only those prints []
  p.master.sql("INSERT INTO picky VALUES (1, 'skip'), (2, 'ok'), (3, 'skip')");
  r = run(p.master.config_path, "diff-master -cid picky -b 1");
  lines = lines_of(r.out);
  REQUIRE(lines.size() == 4);
  CHECK(lines[1] == "[]");
  CHECK(lines[2] == "[[2,0]]");
  CHECK(lines[3] == "[]");
}

TEST_CASE("django-cqrs's messages for bad ids and bad filters, on every stage") {
  Pair p;
  p.master.sql("INSERT INTO author VALUES (1, 'a')");
  const std::string mc = p.master.config_path;
  const std::string rc = p.replica.config_path;
  struct Case {
    std::string config, args, input;
    int rc;
    std::string out, err;
  };
  const std::vector<Case> cases = {
      {mc, "diff-master --cqrs-id invalid", "", 1, "", "CommandError: Wrong CQRS ID: invalid!\n"},
      {mc, "diff-master --cqrs-id author -f '{arg}'", "", 1, "",
       "CommandError: Bad filter kwargs!\n"},
      {mc, "diff-master --cqrs-id author -f '[1]'", "", 1, "",
       "CommandError: Bad filter kwargs!\n"},
      {mc, "diff-master --cqrs-id author -f '{\"field\": 1}'", "", 1, "",
       "CommandError: Bad filter kwargs! Cannot resolve keyword 'field' into field. Choices are: "
       "cqrs_revision, cqrs_updated, id, name\n"},
      {mc, "diff-master --cqrs-id author -f '{\"id__near\": 1}'", "", 1, "",
       "CommandError: Bad filter kwargs! Unsupported lookup 'near' for field 'id' (integer); "
       "supported: exact, iexact, in, gt, gte, lt, lte, isnull, startswith, istartswith, "
       "endswith, iendswith, contains, icontains, range, regex, iregex\n"},
      {rc, "diff-replica", "invalid,datetime\n", 1, "", "CommandError: Wrong CQRS ID: invalid!\n"},
      {rc, "diff-replica", "author,datetime\n", 0, "author,datetime," + p.replica.queue + "\n", ""},
      {rc, "diff-replica", "", 1, "",
       "CommandError: the input is empty: expected the output of cqrs_diff_master\n"},
      {mc, "diff-sync", "invalid,datetime,replica\n", 1, "",
       "CommandError: Wrong CQRS ID: invalid!\n"},
      {mc, "diff-sync", "author,2024-01-01 00:00:00+00:00\n[1]\n", 1, "",
       "CommandError: line 1 'author,2024-01-01 00:00:00+00:00': expected "
       "'<cqrs_id>,<time>,<queue>' (the first line of cqrs_diff_replica's output)\n"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.args);
    CAPTURE(c.input);
    const Run r = run(c.config, c.args, c.input);
    CHECK(r.rc == c.rc);
    CHECK(r.out == c.out);
    CHECK(r.err == c.err);
  }
}

TEST_CASE("a diverged replica is repaired by the pipeline: missing, stale and newer rows") {
  Pair p;
  p.master.sql("INSERT INTO author SELECT g, 'name ' || g FROM generate_series(1, 300) g");
  p.master.sql("UPDATE author SET name = name || ' v2' WHERE id % 10 = 0");  // revision 1
  // the replica has the master's rows, then diverges
  const std::string copy = "SELECT id, name, cqrs_revision, cqrs_updated FROM author ORDER BY id";
  pqxx::connection mconn(p.master.db.url());
  {
    pqxx::work mt(mconn);
    pqxx::work rt(*p.replica.conn);
    for (const auto& row : mt.exec(copy)) {
      rt.exec_params("INSERT INTO reads.author VALUES ($1, $2, $3, $4)", row[0].c_str(),
                     row[1].c_str(), row[2].c_str(), row[3].c_str());
    }
    rt.commit();
  }
  p.replica.sql("DELETE FROM reads.author WHERE id IN (5, 150, 299)");  // missing
  p.replica.sql("UPDATE reads.author SET cqrs_revision = 0, name = 'old' WHERE id IN (10, 20)");
  p.replica.sql("UPDATE reads.author SET cqrs_revision = 7, name = 'new' WHERE id = 42");  // newer
  p.replica.sql("INSERT INTO reads.author VALUES (1000, 'extra', 0, now())");  // not our concern

  const std::string pipeline = pgcqrs_binary() + " --config '" + p.master.config_path +
                               "' diff-master --cqrs-id author -b 100 | " + pgcqrs_binary() +
                               " --config '" + p.replica.config_path + "' diff-replica 2>'" +
                               p.replica.config_path + ".resync' | " + pgcqrs_binary() +
                               " --config '" + p.master.config_path + "' diff-sync -b 2";
  const std::string script =
      write_temp_file(unique_name("pipeline") + ".sh", "set -euo pipefail\n" + pipeline + "\n");
  std::string out;
  REQUIRE(run_shell("bash '" + script + "'", &out) == 0);
  // one cqrs_sync report per line that had differences: lines 1-100, 101-200, 201-300
  CHECK(out == done(4, 4) + done(1, 1) + done(1, 1));
  CHECK(slurp(p.replica.config_path + ".resync") ==
        "PK to resync: {5, 10, 20, 42}\nPK to resync: {150}\nPK to resync: {299}\n");

  p.replica.start_consumer();
  const std::string cmp =
      "SELECT string_agg(id || ':' || name || ':' || cqrs_revision, ',' "
      "ORDER BY id) FROM reads.author WHERE id <= 300";
  std::string expected;
  {
    pqxx::work mt(mconn);
    expected = mt.exec1(
                     "SELECT string_agg(id || ':' || name || ':' || cqrs_revision, ',' "
                     "ORDER BY id) FROM author")[0]
                   .as<std::string>();
  }
  CHECK(eventually([&] { return p.replica.scalar(cmp) == expected; }, 30s));
  // and now the pipeline finds nothing
  REQUIRE(run_shell("bash '" + script + "'", &out) == 0);
  CHECK(out == "");
}

TEST_CASE("keys not named id: text and uuid keys, mapped key column, the None queue") {
  Pair p;
  TestQueue broadcast(p.master.exchange, unique_name("all"), {"word", "thing"});
  p.master.sql("INSERT INTO word VALUES ('a/b', 'x'), ('it''s', 'y'), ('z', 'w'), ('zünï', 'u')");
  p.master.sql(
      "INSERT INTO thing VALUES ('0419d87b-d477-44e4-82c4-310f56faa3c7', 'x'),"
      " ('1419d87b-d477-44e4-82c4-310f56faa3c7', 'y')");
  p.replica.sql("INSERT INTO reads.word VALUES ('z', 'w', 0, now())");
  p.replica.sql(
      "INSERT INTO reads.thing VALUES ('1419d87b-d477-44e4-82c4-310f56faa3c7', 'y', 0, now())");

  Run m = run(p.master.config_path, "diff-master -cid word");
  auto lines = lines_of(m.out);
  REQUIRE(lines.size() == 2);
  // ujson's escapes: `/` and non-ASCII
  CHECK(lines[1] == R"([["a\/b",0],["it's",0],["z",0],["z\u00fcn\u00ef",0]])");
  Run r = run(p.replica.config_path, "diff-replica", m.out);
  CHECK(r.rc == 0);
  lines = lines_of(r.out);
  REQUIRE(lines.size() == 2);
  CHECK(lines[1] == R"(["a\/b","it's","z\u00fcn\u00ef"])");
  CHECK(r.err == "PK to resync: {'a/b', \"it's\", 'zünï'}\n");
  // broadcast: django-cqrs's None queue
  std::string header = lines[0].substr(0, lines[0].rfind(',')) + ",None\n";
  Run s = run(p.master.config_path, "diff-sync", header + lines[1] + "\n");
  CHECK(s.rc == 0);
  CHECK(s.out == done(3, 3));
  std::set<std::string> got;
  for (const auto& d : broadcast.take(3, 3s, 30s))
    got.insert(json::dump(json::parse(d.body)["instance_pk"]));
  CHECK(got == std::set<std::string>{R"("a\/b")", R"("it's")", R"("z\u00fcn\u00ef")"});

  m = run(p.master.config_path, "diff-master -cid thing");
  r = run(p.replica.config_path, "diff-replica", m.out);
  lines = lines_of(r.out);
  REQUIRE(lines.size() == 2);
  CHECK(lines[1] == R"(["0419d87b-d477-44e4-82c4-310f56faa3c7"])");
  s = run(p.master.config_path, "diff-sync", lines[0] + "\n" + lines[1] + "\n");
  CHECK(s.out == done(1, 1));
  // the replica's queue got it (routing key cqrs.<queue>.thing), after the 3 broadcast words
  CHECK(eventually([&] { return p.replica.ready() == 4; }, 10s));
}

TEST_CASE("malformed lines are reported with their number and reason; the rest goes on") {
  Pair p;
  p.master.sql("INSERT INTO author VALUES (1, 'a'), (2, 'b')");
  const Run r = run(p.replica.config_path, "diff-replica",
                    "author,2024-01-01 00:00:00+00:00\n[[1,0],\nnot json\n{\"a\":1}\n[[1]]\n"
                    "[[1,\"x\"]]\n[[{},0]]\n[[\"abc\",0]]\n\n[[1,0],[2,0]]\n");
  CHECK(r.rc == 1);
  CHECK(r.out == "author,2024-01-01 00:00:00+00:00," + p.replica.queue + "\n[1,2]\n");
  const auto err = lines_of(r.err);
  REQUIRE(err.size() == 9);
  CHECK(err[0].rfind("diff-replica: line 2: pairs: ", 0) == 0);
  CHECK(err[1].rfind("diff-replica: line 3: pairs: ", 0) == 0);
  CHECK(err[2] ==
        "diff-replica: line 4: pairs: a JSON object, not an array of [pk, revision]; "
        "skipped");
  CHECK(err[3] == "diff-replica: line 5: pair 1 [1]: not a [pk, revision] pair; skipped");
  CHECK(err[4] ==
        "diff-replica: line 6: pair 1 [1,\"x\"]: the revision is not an integer; skipped");
  CHECK(err[5] ==
        "diff-replica: line 7: pair 1 [{},0]: the primary key is not a number or string; skipped");
  CHECK(err[6] ==
        "diff-replica: line 8: a primary key is not a value of the key column's type: invalid "
        "input syntax for type integer: \"abc\"; skipped");
  CHECK(err[7] == "PK to resync: {1, 2}");
  CHECK(err[8] == "CommandError: 7 malformed line(s) skipped (see above)");

  TestQueue q(p.master.exchange, unique_name("q"), {"author"});
  const Run s = run(p.master.config_path, "diff-sync", "author,t,None\n[1\n[\"x\"]\n[true]\n[2]\n");
  CHECK(s.rc == 1);
  CHECK(s.out == done(1, 1));
  const auto serr = lines_of(s.err);
  REQUIRE(serr.size() == 4);
  CHECK(serr[0].rfind("diff-sync: line 2: primary keys: ", 0) == 0);
  CHECK(serr[1] ==
        "diff-sync: line 3: primary keys [\"x\"]: invalid input syntax for type integer: \"x\"; "
        "skipped");
  CHECK(serr[2] == "diff-sync: line 4: primary key true: not a number or string; skipped");
  CHECK(serr[3] == "CommandError: 3 malformed line(s) skipped (see above)");
  CHECK(q.take(2, 2s, 10s).size() == 1);
}

TEST_CASE("diff-sync: keys the master no longer has, --batch and --progress") {
  Pair p;
  TestQueue q(p.master.exchange, unique_name("q"), {"author"});
  p.master.sql("INSERT INTO author SELECT g, 'n' FROM generate_series(1, 5) g");
  const Run r =
      run(p.master.config_path, "diff-sync -b 2 -p", "author,t,None\n[77, 78]\n[1, 2, 3, 99]\n");
  CHECK(r.rc == 0);
  CHECK(r.err == "");
  const auto lines = lines_of(r.out);
  REQUIRE(lines.size() >= 6);
  CHECK(lines[0] == "No objects found for filter!");
  CHECK(lines[1] == "Processing 3 records with batch size 2");
  CHECK(r.out.substr(r.out.size() - done(3, 3).size()) == done(3, 3));
  CHECK(q.take(4, 2s, 10s).size() == 3);
}
