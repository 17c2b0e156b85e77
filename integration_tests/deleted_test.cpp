// The deleted-rows pipeline against real PostgreSQL: deleted-diff-replica | deleted-diff-master
// | deleted-sync-replica, golden outputs in django-cqrs's formats, stages fed with django-cqrs's
// lines, keys not named id (text, uuid, mapped), filters, every error message, malformed lines,
// streaming, tombstones that keep a late SAVE out.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <csignal>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "support/master_fixture.hpp"
#include "support/replica_fixture.hpp"

using namespace pgcqrs;
using namespace pgcqrs::it;
using namespace std::chrono_literals;

namespace {

const char* const kMasterSchema = R"sql(
CREATE TABLE author (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE tag (code varchar(20) PRIMARY KEY, label text);
CREATE TABLE token (sku uuid PRIMARY KEY, n integer);
)sql";

const char* const kMasterModels = R"toml(
[[master.model]]
cqrs_id = "author"
table = "author"

[[master.model]]
cqrs_id = "tag"
table = "tag"

[[master.model]]
cqrs_id = "token"
table = "token"
)toml";

// The replica's keys are not all called id: writer_id (mapped from the master's id), code
// (text), sku (uuid).
const char* const kReplicaSchema = R"sql(
CREATE SCHEMA reads;
CREATE TABLE reads.writer (
  writer_id      integer PRIMARY KEY,
  name           text,
  cqrs_revision  integer NOT NULL,
  cqrs_updated   timestamptz NOT NULL
);
CREATE TABLE reads.tag (
  code           text PRIMARY KEY,
  label          text,
  cqrs_revision  integer NOT NULL,
  cqrs_updated   timestamptz NOT NULL
);
CREATE TABLE reads.token (
  sku            uuid PRIMARY KEY,
  n              integer,
  cqrs_revision  bigint NOT NULL,
  cqrs_updated   timestamptz NOT NULL
);
CREATE TABLE reads.note (
  id             integer PRIMARY KEY,
  writer_id      integer REFERENCES reads.writer (writer_id),
  cqrs_revision  integer NOT NULL,
  cqrs_updated   timestamptz NOT NULL
);
CREATE FUNCTION reads.on_audit(signal text, data jsonb, previous_data jsonb, meta jsonb)
RETURNS void LANGUAGE sql AS 'SELECT 1';
)sql";

const char* const kReplicaModels = R"toml(
[[replica.model]]
cqrs_id = "author"
table = "reads.writer"
mapping = { id = "writer_id" }

[[replica.model]]
cqrs_id = "tag"
table = "reads.tag"

[[replica.model]]
cqrs_id = "token"
table = "reads.token"

[[replica.model]]
cqrs_id = "audit"
table = "reads.audit"
apply_function = "reads.on_audit"
)toml";

struct Result {
  int rc = -1;
  std::string out;
  std::string err;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `command` in sh with stdin from `input` (when given), stdout and stderr apart.
Result sh(const std::string& command, const std::string* input = nullptr) {
  const std::string err_path = write_temp_file(unique_name("stderr"), "");
  std::string line = "(" + command + ")";
  if (input != nullptr) line += " < '" + write_temp_file(unique_name("stdin"), *input) + "'";
  line += " 2>'" + err_path + "'";
  Result r;
  r.rc = run_shell(line, &r.out);
  r.err = read_file(err_path);
  return r;
}

std::string bin(const std::string& alias) {
  return std::string(PGCQRS_BINARY_DIR) + "/bin/" + alias;
}

// `pgcqrs --config <config> <args>`, through the django-cqrs alias when `alias` is given.
std::string cmd(const std::string& config, const std::string& args,
                const std::string& alias = "pgcqrs") {
  return bin(alias) + " --config '" + config + "' " + args;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    out.push_back(l);
  return out;
}

const std::regex kHeader(R"(^author,\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?\+00:00$)");

struct Pair {
  Pair() : master(kMasterSchema, kMasterModels, {}), replica(kReplicaSchema, kReplicaModels) {}
  MasterFixture master;
  ReplicaFixture replica;
};

// Replica writers 1..10 at revision 10 + id; master authors 1, 2, 4..8.
void seed_authors(Pair& p) {
  p.master.sql("INSERT INTO author SELECT i, 'a' || i FROM generate_series(1, 8) i WHERE i <> 3");
  p.replica.sql(
      "INSERT INTO reads.writer SELECT i, 'a' || i, 10 + i, now() FROM generate_series(1, 10) i");
}

}  // namespace

TEST_CASE(
    "golden: the three stages, django-cqrs's line formats, tombstones at the rows' revision") {
  Pair p;
  seed_authors(p);
  const std::string& rc = p.replica.config_path;
  const std::string& mc = p.master.config_path;

  const Result s1 = sh(cmd(rc, "-cid author --batch 4", "cqrs_deleted_diff_replica"));
  REQUIRE(s1.rc == 0);
  CHECK(s1.err == "");
  const auto l1 = lines_of(s1.out);
  REQUIRE(l1.size() == 4);
  CHECK(std::regex_match(l1[0], kHeader));
  CHECK(l1[1] == "[1,2,3,4]");
  CHECK(l1[2] == "[5,6,7,8]");
  CHECK(l1[3] == "[9,10]");

  const Result s2 = sh(cmd(mc, "", "cqrs_deleted_diff_master"), &s1.out);
  REQUIRE(s2.rc == 0);
  CHECK(s2.out == l1[0] + "\n[3]\n[9,10]\n");
  CHECK(s2.err == "PK to delete: [3]\nPK to delete: [9, 10]\n");

  const Result s3 = sh(cmd(rc, "", "cqrs_deleted_sync_replica"), &s2.out);
  REQUIRE(s3.rc == 0);
  CHECK(s3.out == "");
  CHECK(s3.err == "Done!\n3 instance(s) deleted.\n");
  CHECK(p.replica.rows("SELECT writer_id FROM reads.writer ORDER BY 1") ==
        Rows{{"1"}, {"2"}, {"4"}, {"5"}, {"6"}, {"7"}, {"8"}});
  CHECK(p.replica.rows("SELECT cqrs_id, pk, revision FROM cqrs.tombstone ORDER BY pk::int") ==
        Rows{{"author", "3", "13"}, {"author", "9", "19"}, {"author", "10", "20"}});

  // the whole pipeline in one shell line, as an operator runs it: nothing left to delete
  const Result again = sh(cmd(rc, "deleted-diff-replica -cid author") + " | " +
                          cmd(mc, "deleted-diff-master") + " | " + cmd(rc, "deleted-sync-replica"));
  CHECK(again.rc == 0);
  CHECK(again.err == "Done!\n0 instance(s) deleted.\n");

  // the tombstones' time is just after the deleted rows' cqrs_updated
  CHECK(p.replica.scalar("SELECT count(*) FROM cqrs.tombstone WHERE updated > now() - interval "
                         "'1 hour' AND updated <= now() + interval '1 microsecond'") == "3");

  // a late SAVE at or below the tombstone's revision stays out; a newer one and a SYNC apply,
  // and so does a row the master created again after the delete (revision 0, a later time)
  Process& consumer = p.replica.start_consumer();
  p.replica.publish({
      {"author", event_body("SAVE", "author", 9, 19, {{"name", "late"}})},
      {"author", event_body("SAVE", "author", 3, 12, {{"name", "older"}})},
      {"author", event_body("SYNC", "author", 10, 20, {{"name", "synced"}})},
      {"author", event_body("SAVE", "author", 9, 0,
                            {{"name", "created again"}, {"cqrs_updated", "2099-01-01T00:00:00Z"}})},
      {"author", event_body("SAVE", "author", 11, 0, {{"name", "marker"}})},
  });
  CHECK(eventually([&] { return p.replica.scalar("SELECT count(*) FROM reads.writer") == "10"; },
                   30s));
  CHECK(p.replica.rows("SELECT writer_id, name FROM reads.writer WHERE writer_id > 8 OR "
                       "writer_id = 3 ORDER BY 1") ==
        Rows{{"9", "created again"}, {"10", "synced"}, {"11", "marker"}});
  consumer.signal(SIGTERM);
  CHECK(consumer.wait(30s) == 0);
}

TEST_CASE("interop: each stage takes django-cqrs's lines and gives lines django-cqrs takes") {
  Pair p;
  seed_authors(p);
  // django-cqrs's cqrs_deleted_diff_replica output (microseconds, \n line ends; one line
  // with CRLF as a Windows pipe would give)
  const std::string from_django =
      "author,2024-05-01 12:00:00.370173+00:00\n[1,2,3]\r\n[4,5,6,7,8,9,10]\n";
  const Result s2 = sh(cmd(p.master.config_path, "deleted-diff-master"), &from_django);
  REQUIRE(s2.rc == 0);
  CHECK(s2.out == "author,2024-05-01 12:00:00.370173+00:00\n[3]\n[9,10]\n");
  // django-cqrs's cqrs_deleted_diff_master output into our sync
  const std::string master_django = "author,2024-05-01 12:00:00.370173+00:00\n[9]\n[10,3]\n";
  const Result s3 = sh(cmd(p.replica.config_path, "deleted-sync-replica"), &master_django);
  REQUIRE(s3.rc == 0);
  CHECK(p.replica.scalar("SELECT string_agg(writer_id::text, ',' ORDER BY 1) FROM reads.writer") ==
        "1,2,4,5,6,7,8");
  // our stage 1 line 1 parses the way django-cqrs splits it: `<cqrs_id>,<str(now)>`
  const Result s1 = sh(cmd(p.replica.config_path, "deleted-diff-replica --cqrs-id=author"));
  REQUIRE(s1.rc == 0);
  CHECK(std::regex_match(lines_of(s1.out).at(0), kHeader));
  CHECK(lines_of(s1.out).at(1) == "[1,2,4,5,6,7,8]");
}

TEST_CASE("text and uuid keys, with characters JSON and CSV care about") {
  Pair p;
  p.master.sql(R"sql(
INSERT INTO tag VALUES ('a/b', 'slash'), ('caf' || chr(233), 'accent');
INSERT INTO token VALUES ('0419d87b-d477-44e4-82c4-310f56faa3c7', 1);
)sql");
  p.replica.sql(R"sql(
INSERT INTO reads.tag VALUES ('a/b', 's', 1, now()), ('caf' || chr(233), 'a', 2, now()),
  ('it''s', 'q', 3, now()), ('x,y "z"', 'c', 4, now()), ('waytoolongforthemasterkeycolumn', 'l', 5, now());
INSERT INTO reads.token VALUES ('0419d87b-d477-44e4-82c4-310f56faa3c7', 1, 7, now()),
  ('ffffffff-0000-4000-8000-000000000001', 2, 9, now());
)sql");
  const std::string& rc = p.replica.config_path;
  const std::string& mc = p.master.config_path;

  const Result s1 = sh(cmd(rc, "deleted-diff-replica -cid tag"));
  REQUIRE(s1.rc == 0);
  const auto l1 = lines_of(s1.out);
  REQUIRE(l1.size() == 2);
  // key order is the column's collation order; the JSON is ujson's (\/ and \u escapes)
  CHECK(p.replica.scalar("SELECT count(*) FROM reads.tag") == "5");
  for (const char* key : {"\"a\\/b\"", "\"caf\\u00e9\"", "\"it's\"", "\"x,y \\\"z\\\"\"",
                          "\"waytoolongforthemasterkeycolumn\""}) {
    CAPTURE(key);
    CHECK(l1[1].find(key) != std::string::npos);
  }
  const Result s2 = sh(cmd(mc, "deleted-diff-master"), &s1.out);
  REQUIRE(s2.rc == 0);
  const auto l2 = lines_of(s2.out);
  REQUIRE(l2.size() == 2);
  // a key longer than the master's varchar(20) is missing there, not truncated into a match
  CHECK(l2[1].find("\"waytoolongforthemasterkeycolumn\"") != std::string::npos);
  CHECK(l2[1].find("\"it's\"") != std::string::npos);
  CHECK(l2[1].find("\"x,y \\\"z\\\"\"") != std::string::npos);
  CHECK(l2[1].find("a\\/b") == std::string::npos);
  CHECK(s2.err.find("\"it's\"") != std::string::npos);  // Python repr picks double quotes
  const Result s3 = sh(cmd(rc, "deleted-sync-replica"), &s2.out);
  REQUIRE(s3.rc == 0);
  CHECK(p.replica.rows("SELECT code FROM reads.tag ORDER BY code COLLATE \"C\"") ==
        Rows{{"a/b"}, {"caf\xc3\xa9"}});
  CHECK(p.replica.rows("SELECT pk, revision FROM cqrs.tombstone WHERE cqrs_id = 'tag' ORDER BY "
                       "revision") ==
        Rows{{"it's", "3"}, {"x,y \"z\"", "4"}, {"waytoolongforthemasterkeycolumn", "5"}});

  // uuid keys: strings on the wire, compared as uuid (upper case from another tool matches)
  const Result u = sh(cmd(rc, "deleted-diff-replica -cid token") + " | " +
                      cmd(mc, "deleted-diff-master") + " | " + cmd(rc, "deleted-sync-replica"));
  CHECK(u.rc == 0);
  CHECK(u.err.find("PK to delete: ['ffffffff-0000-4000-8000-000000000001']") != std::string::npos);
  CHECK(p.replica.rows("SELECT sku FROM reads.token") ==
        Rows{{"0419d87b-d477-44e4-82c4-310f56faa3c7"}});
  const std::string upper = "token,x\n[\"0419D87B-D477-44E4-82C4-310F56FAA3C7\"]\n";
  const Result m = sh(cmd(mc, "deleted-diff-master"), &upper);
  CHECK(m.rc == 0);
  CHECK(m.out == "token,x\n");
}

TEST_CASE("--filter: Django lookups select the rows listed; django-cqrs's messages") {
  Pair p;
  seed_authors(p);
  const std::string& rc = p.replica.config_path;
  Result r = sh(cmd(rc,
                    "deleted-diff-replica -cid author -f '{\"writer_id__gte\": 5, "
                    "\"writer_id__in\": [5, 6, 9]}'"));
  REQUIRE(r.rc == 0);
  CHECK(lines_of(r.out).size() == 2);
  CHECK(lines_of(r.out).at(1) == "[5,6,9]");
  r = sh(cmd(rc, "deleted-diff-replica -cid author --filter '{\"pk__gt\": 8}'"));
  CHECK(lines_of(r.out).at(1) == "[9,10]");
  // --progress: the same stdout; the count and the final line on stderr
  r = sh(cmd(rc, "deleted-diff-replica -cid author --progress -b 3 -f '{\"pk__gt\": 2}'"));
  CHECK(r.rc == 0);
  CHECK(lines_of(r.out).size() == 4);
  CHECK(lines_of(r.out).at(3) == "[9,10]");
  CHECK(r.err.find("Listing author: 8 done in ") != std::string::npos);

  r = sh(cmd(rc, "deleted-diff-replica -cid author -f '{\"writer_id__gt\": 100}'"));
  CHECK(r.rc == 0);
  CHECK(r.out == "");
  CHECK(r.err == "No objects found for filter!\n");

  r = sh(cmd(rc, "deleted-diff-replica -cid author -f '{arg}'"));
  CHECK(r.rc == 1);
  CHECK(r.err == "CommandError: Bad filter kwargs!\n");
  r = sh(cmd(rc, "deleted-diff-replica -cid author -f '[1]'"));
  CHECK(r.rc == 1);
  CHECK(r.err == "CommandError: Bad filter kwargs!\n");
  r = sh(cmd(rc, "deleted-diff-replica -cid author -f '{\"field\": \"value\"}'"));
  CHECK(r.rc == 1);
  CHECK(r.err.rfind("CommandError: Bad filter kwargs! Cannot resolve keyword 'field' into field.",
                    0) == 0);
  CHECK(r.out == "");
  // a value the column's type refuses is the filter's fault too
  r = sh(cmd(rc, "deleted-diff-replica -cid author -f '{\"writer_id\": \"abc\"}'"));
  CHECK(r.rc == 1);
  CHECK(r.err ==
        "CommandError: Bad filter kwargs! invalid input syntax for type integer: \"abc\"\n");
  CHECK(r.out == "");
}

TEST_CASE("every error of the reference: wrong id per stage, missing flag, empty input") {
  Pair p;
  const std::string& rc = p.replica.config_path;
  const std::string& mc = p.master.config_path;
  Result r = sh(cmd(rc, "deleted-diff-replica -cid invalid"));
  CHECK(r.rc == 1);
  CHECK(r.err == "CommandError: Wrong CQRS ID: invalid!\n");
  CHECK(r.out == "");
  const std::string bad = "invalid,datetime\n[1]\n";
  r = sh(cmd(mc, "deleted-diff-master"), &bad);
  CHECK(r.rc == 1);
  CHECK(r.err == "CommandError: Wrong CQRS ID: invalid!\n");
  CHECK(r.out == "");
  r = sh(cmd(rc, "deleted-sync-replica"), &bad);
  CHECK(r.rc == 1);
  CHECK(r.err == "CommandError: Wrong CQRS ID: invalid!\n");

  // line 1 alone is echoed exactly, nothing on stderr (django-cqrs's test)
  const std::string only = "author,datetime\n";
  r = sh(cmd(mc, "deleted-diff-master"), &only);
  CHECK(r.rc == 0);
  CHECK(r.out == "author,datetime\n");
  CHECK(r.err == "");

  // no --cqrs-id: usage error
  r = sh(cmd(rc, "deleted-diff-replica"));
  CHECK(r.rc == 2);
  CHECK(r.err.find("--cqrs-id is required") != std::string::npos);
  r = sh(cmd(rc, "deleted-diff-replica -cid author --batch 0"));
  CHECK(r.rc == 2);

  // a model that is no table
  r = sh(cmd(rc, "deleted-diff-replica -cid audit"));
  CHECK(r.rc == 1);
  CHECK(r.err.find("not a table") != std::string::npos);

  // an empty replica: stage 1 says so, the next stages have nothing to do
  r = sh(cmd(rc, "deleted-diff-replica -cid author") + " | " + cmd(mc, "deleted-diff-master") +
         " | " + cmd(rc, "deleted-sync-replica"));
  CHECK(r.rc == 0);
  CHECK(r.err.find("No objects found for filter!\n") != std::string::npos);
  CHECK(r.err.find("No input: expected deleted-diff-master's output on stdin") !=
        std::string::npos);

  // the wrong side's configuration
  r = sh(cmd(mc, "deleted-diff-replica -cid author"));
  CHECK(r.rc == 2);
  CHECK(r.err.find("[replica] is not configured") != std::string::npos);
  r = sh(cmd(rc, "deleted-diff-master"), &only);
  CHECK(r.rc == 2);
  CHECK(r.err.find("[master] is not configured") != std::string::npos);
}

TEST_CASE("malformed lines: which line and why, the other lines still processed") {
  Pair p;
  seed_authors(p);
  const std::string input =
      "author,2024-05-01 12:00:00+00:00\n"
      "[1,2]\n"
      "not json\n"
      "\n"
      "[1,null]\n"
      "[\"abc\"]\n"
      "{\"id\": 9}\n"
      "[9,3]\n";
  Result r = sh(cmd(p.master.config_path, "deleted-diff-master"), &input);
  CHECK(r.rc == 1);
  CHECK(r.out == "author,2024-05-01 12:00:00+00:00\n[9,3]\n");
  const auto e = lines_of(r.err);
  REQUIRE(e.size() == 6);
  CHECK(e[0].rfind("line 3: skipped: not a JSON array of primary keys: JSON: ", 0) == 0);
  CHECK(e[1] == "line 5: skipped: element 2 is null (null): a primary key is a number or a string");
  CHECK(e[2] == "line 6: skipped: invalid input syntax for type integer: \"abc\"");
  CHECK(e[3] == "line 7: skipped: not a JSON array of primary keys: a JSON object");
  CHECK(e[4] == "PK to delete: [9, 3]");
  CHECK(e[5] ==
        "CommandError: 4 input line(s) could not be checked (see above); the other lines "
        "were");

  // the sync stage: a bad line, a key the type refuses, a foreign key that holds a row
  p.replica.sql("INSERT INTO reads.note VALUES (1, 4, 0, now())");
  const std::string sync_input = "author,x\n[9]\n[oops\n[\"abc\"]\n[4,5]\n[10]\n";
  r = sh(cmd(p.replica.config_path, "deleted-sync-replica"), &sync_input);
  CHECK(r.rc == 1);
  const auto s = lines_of(r.err);
  REQUIRE(s.size() == 6);
  CHECK(s[0].rfind("line 3: skipped: not a JSON array of primary keys: JSON: ", 0) == 0);
  CHECK(s[1] == "line 4: not deleted: invalid input syntax for type integer: \"abc\"");
  CHECK(s[2] ==
        "line 5: not deleted: update or delete on table \"writer\" violates foreign key "
        "constraint \"note_writer_id_fkey\" on table \"note\"; Key (writer_id)=(4) is still "
        "referenced from table \"note\".");
  CHECK(s[3] == "Done!");
  CHECK(s[4] == "2 instance(s) deleted.");
  CHECK(s[5] == "CommandError: 3 input line(s) were not applied (see above); the other lines were");
  // line 5 is one statement: 4 and 5 both stay; 9 and 10 are gone
  CHECK(p.replica.scalar("SELECT string_agg(writer_id::text, ',' ORDER BY 1) FROM reads.writer") ==
        "1,2,3,4,5,6,7,8");
}

TEST_CASE("streaming: deleted-diff-master answers each line as it arrives") {
  Pair p;
  seed_authors(p);
  const std::string out_path = write_temp_file(unique_name("stream"), "");
  const std::string script = "( printf 'author,x\\n[9]\\n'; sleep 10; printf '[10]\\n' ) | " +
                             cmd(p.master.config_path, "deleted-diff-master") + " > '" + out_path +
                             "'";
  Process proc({"/bin/sh", "-c", script}, out_path + ".log");
  CHECK(eventually([&] { return read_file(out_path) == "author,x\n[9]\n"; }, 8s));
  CHECK(proc.running());
  CHECK(proc.wait(40s) == 0);
  CHECK(read_file(out_path) == "author,x\n[9]\n[10]\n");
}

TEST_CASE("1,000 master rows, 30 extra on the replica: the pipeline removes exactly those") {
  Pair p;
  p.master.sql("INSERT INTO author SELECT i, 'a' || i FROM generate_series(1, 1000) i");
  p.replica.sql(
      "INSERT INTO reads.writer SELECT i, 'r' || i, 1, now() FROM generate_series(1, 1000) i "
      "WHERE i % 10 <> 0;"
      "INSERT INTO reads.writer SELECT 5000 + i * 7, 'x', 2, now() FROM generate_series(1, 30) i");
  const Result r = sh(cmd(p.replica.config_path, "deleted-diff-replica -cid author -b 250") +
                      " | " + cmd(p.master.config_path, "deleted-diff-master") + " | " +
                      cmd(p.replica.config_path, "deleted-sync-replica"));
  CHECK(r.rc == 0);
  CHECK(r.err.find("Done!\n30 instance(s) deleted.\n") != std::string::npos);
  CHECK(p.replica.scalar("SELECT count(*) FROM reads.writer") == "900");
  CHECK(p.replica.scalar("SELECT count(*) FROM reads.writer WHERE writer_id > 1000") == "0");
  CHECK(p.replica.scalar("SELECT count(*) FROM cqrs.tombstone WHERE revision = 2") == "30");
}
