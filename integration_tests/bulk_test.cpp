// cqrs_bulk_dump and cqrs_bulk_load end to end: real PostgreSQL and RabbitMQ, the pgcqrs binary.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <doctest/doctest.h>

#include "common/json.hpp"
#include "replica/load.hpp"
#include "support/master_fixture.hpp"
#include "support/replica_fixture.hpp"

using namespace pgcqrs;
using namespace pgcqrs::it;
using namespace std::chrono_literals;

namespace {

struct Cli {
  int rc = -1;
  std::string out;
  std::string err;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// `pgcqrs --config <config> <args>` with stdout and stderr apart. `pre` runs before it in the
// same shell (e.g. `cd dir &&`); `stdin_file` feeds stdin.
Cli run(const std::string& config, const std::string& args, const std::string& pre = "",
        const std::string& stdin_file = "") {
  static int n = 0;
  const std::string err_path = config + ".err" + std::to_string(++n);
  Cli c;
  std::string cmd = pre + pgcqrs_binary() + " --config '" + config + "' " + args;
  if (!stdin_file.empty()) cmd += " < '" + stdin_file + "'";
  cmd += " 2> '" + err_path + "'";
  c.rc = run_shell(cmd, &c.out);
  c.err = read_file(err_path);
  return c;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::string line;
  std::istringstream in(text);
  while (std::getline(in, line))
    out.push_back(line);
  return out;
}

// The dump line (a JSON object; the cqrs_id line is skipped) whose member `key` is the JSON
// text `value`; "" when none is, and a failed check when several are.
std::string line_with(const std::vector<std::string>& lines, const std::string& key,
                      const std::string& value) {
  std::string found;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty() || lines[i][0] != '{') continue;
    const auto doc = json::parse(lines[i]);
    if (!doc.is_object() || !doc.contains(key) || json::dump(doc.at(key)) != value) continue;
    CHECK_MESSAGE(found.empty(), "two dump lines with " << key << " = " << value);
    found = lines[i];
  }
  return found;
}

std::string vector_file(const std::string& name) {
  return source_dir() + "/tests/vectors/" + name;
}

// The instance_data member of a body as the agent sent it, byte for byte (key order of
// encode_event: ..., "instance_data":{...},"previous_data":...).
std::string raw_instance_data(const std::string& body) {
  const std::string start = "\"instance_data\":";
  const std::string end = ",\"previous_data\":";
  const std::size_t a = body.find(start);
  const std::size_t b = body.find(end);
  REQUIRE(a != std::string::npos);
  REQUIRE(b != std::string::npos);
  return body.substr(a + start.size(), b - a - start.size());
}

// Values of two JSON objects compared key by key, exactly (numbers by their text, except
// doubles that spell the same value differently, 1e-07 / 1e-7).
void check_same_values(const json::Json& ours, const json::Json& theirs) {
  REQUIRE(ours.is_object());
  REQUIRE(theirs.is_object());
  std::vector<std::string> ours_keys;
  std::vector<std::string> their_keys;
  for (const auto& [k, v] : ours.items())
    ours_keys.push_back(k);
  for (const auto& [k, v] : theirs.items())
    their_keys.push_back(k);
  std::sort(ours_keys.begin(), ours_keys.end());
  std::sort(their_keys.begin(), their_keys.end());
  CHECK(ours_keys == their_keys);
  for (const auto& [k, v] : theirs.items()) {
    if (!ours.contains(k)) continue;
    const std::string a = json::dump(ours.at(k));
    const std::string b = json::dump(v);
    CAPTURE(k);
    if (a != b && json::is_number(ours.at(k)) && json::is_number(v)) {
      CHECK(std::stod(a) == std::stod(b));
    } else {
      CHECK(a == b);
    }
  }
}

// The django-cqrs vectors' master models, as tables.
const char* const kVectorSchema = R"sql(
CREATE TABLE author (id integer PRIMARY KEY, name varchar(200));
CREATE TABLE product (
  id integer PRIMARY KEY, name varchar(200), description text, price numeric(12,2),
  in_stock boolean, released_at timestamptz, release_date date, sku uuid, attrs jsonb,
  quantity bigint, weight double precision, note varchar(100), discontinued_on date,
  author integer REFERENCES author (id));
)sql";

const char* const kVectorMasterModels = R"toml(
[[master.model]]
cqrs_id = "author"
table = "author"

[[master.model]]
cqrs_id = "product"
table = "product"
)toml";

const char* const kVectorReplicaSchema = R"sql(
CREATE TABLE author (id integer PRIMARY KEY, name varchar(200), publisher_id integer,
  cqrs_revision integer NOT NULL DEFAULT 0, cqrs_updated timestamptz NOT NULL);
CREATE TABLE product (
  id integer PRIMARY KEY, name varchar(200), description text, price numeric(12,2),
  in_stock boolean, released_at timestamptz, release_date date, sku uuid, attrs jsonb,
  quantity bigint, weight double precision, note varchar(100), discontinued_on date,
  author_id integer, cqrs_revision integer NOT NULL, cqrs_updated timestamptz NOT NULL);
)sql";

const char* const kVectorReplicaModels = R"toml(
[[replica.model]]
cqrs_id = "author"
table = "author"
mapping = { publisher = "publisher_id" }

[[replica.model]]
cqrs_id = "product"
table = "product"
mapping = { author = "author_id" }
)toml";

// Writes the vectors' rows into the master tables as they are in the dump (capture off for
// this session, so revisions and times stay the vectors').
void insert_vector_rows(const MasterFixture& m) {
  std::string sql = "SET session_replication_role = replica;\n";
  for (const char* name : {"author.dump", "product.dump"}) {
    const auto lines = lines_of(read_file(vector_file(name)));
    const std::string table = lines.at(0);
    std::string rows;
    for (std::size_t i = 1; i < lines.size(); ++i) {
      pqxx::nontransaction txn(*m.conn);
      if (!rows.empty()) rows += ',';
      // quote() is "'" + esc() + "'" inline, which trips GCC 12's -Wrestrict in Release
      rows += '\'';
      rows += txn.esc(lines[i]);
      rows += '\'';
    }
    if (table == "product") {
      // the products reference authors 2 and 3 (and null)
      sql +=
          "INSERT INTO product SELECT r.id, r.name, r.description, r.price, r.in_stock, "
          "r.released_at, r.release_date, r.sku, r.attrs, r.quantity, r.weight, r.note, "
          "r.discontinued_on, r.author, r.cqrs_revision, r.cqrs_updated FROM unnest(ARRAY[" +
          rows + "]::json[]) AS l(doc), json_populate_record(NULL::product, l.doc) AS r;\n";
    } else {
      sql += "INSERT INTO author SELECT r.* FROM unnest(ARRAY[" + rows +
             "]::json[]) AS l(doc), json_populate_record(NULL::author, l.doc) AS r;\n";
    }
  }
  sql += "RESET session_replication_role;\n";
  m.sql(sql);
}

// A replica table's rows as text, timestamps in UTC, in key order.
Rows table_rows(const ReplicaFixture& r, const std::string& query) {
  return r.rows(query);
}

Rows master_rows(const MasterFixture& m, const std::string& query) {
  pqxx::work txn(*m.conn);
  txn.exec("SET LOCAL TimeZone = 'UTC'");
  Rows out;
  for (const auto& row : txn.exec(query)) {
    std::vector<std::string> v;
    for (const auto& f : row)
      v.push_back(f.is_null() ? "<null>" : f.as<std::string>());
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace

TEST_CASE("our dump of the vectors' rows has django-cqrs's file and line format") {
  MasterFixture m(kVectorSchema, kVectorMasterModels, {"author", "product"});
  insert_vector_rows(m);
  for (const char* id : {"author", "product"}) {
    CAPTURE(id);
    const Cli c = run(m.config_path, std::string("bulk-dump -c ") + id + " -o -");
    REQUIRE_MESSAGE(c.rc == 0, c.err);
    const std::string theirs_text = read_file(vector_file(std::string(id) + ".dump"));
    const auto theirs = lines_of(theirs_text);
    CHECK(c.out.back() != '\n');  // no trailing newline, like theirs
    const auto ours = lines_of(c.out);
    REQUIRE(ours.size() == theirs.size());
    CHECK(ours[0] == id);
    CHECK(c.err == "Done!\n" + std::to_string(theirs.size() - 1) + " instance(s) saved.\n" +
                       std::to_string(theirs.size() - 1) + " instance(s) processed.\n");
    std::map<std::string, std::string> by_pk;
    for (std::size_t i = 1; i < theirs.size(); ++i)
      by_pk[json::dump(json::parse(theirs[i]).at("id"))] = theirs[i];
    std::vector<int> ids;
    for (std::size_t i = 1; i < ours.size(); ++i) {
      const auto doc = json::parse(ours[i]);
      CHECK(json::dump(doc) == ours[i]);  // compact, ujson-style, as parsed and re-encoded
      ids.push_back(doc.at("id").get<int>());
      const std::string pk = json::dump(doc.at("id"));
      REQUIRE(by_pk.count(pk) == 1);
      check_same_values(doc, json::parse(by_pk[pk]));
    }
    // every row once (in the table's order, as COPY reads it: a dump's lines need none)
    std::sort(ids.begin(), ids.end());
    CHECK(std::adjacent_find(ids.begin(), ids.end()) == ids.end());
  }
  // exact spellings of the edge row (product 7)
  const Cli c = run(m.config_path, "bulk-dump -c product -o -");
  const std::string line7 = line_with(lines_of(c.out), "id", "7");
  CHECK(line7.find(R"("name":"Caf\u00e9 \u4e2d\u6587 \ud83d\ude00 \"q\" a\/b <tag> &amp;")") !=
        std::string::npos);
  CHECK(line7.find(R"("description":"ctrl:\u0001\u001f end\r\n")") != std::string::npos);
  CHECK(line7.find(R"("price":9999999999.99)") != std::string::npos);
  CHECK(line7.find(R"("quantity":9007199254740993)") != std::string::npos);
  CHECK(line7.find(R"("released_at":"2024-01-01 00:00:00+00:00")") != std::string::npos);
  CHECK(line7.find(R"("attrs":[1,"two",{"3":4.0}])") != std::string::npos);
}

TEST_CASE("a dump line is byte for byte the instance_data the agent published for the row") {
  const char* const schema = R"sql(
CREATE SCHEMA "Shop";
CREATE TABLE "Shop"."Odd Item" (
  "Code" text PRIMARY KEY, big bigint, name text, price numeric(14,4), ok boolean, day date,
  at timestamptz, naive timestamp, sku uuid, attrs jsonb, raw json, tags text[], f real);
)sql";
  const char* const models = R"toml(
[[master.model]]
cqrs_id = "odd"
table = '"Shop"."Odd Item"'
filter = "ok"
)toml";
  MasterFixture m(schema, models, {"odd"});
  m.start_agent();
  m.sql(R"sql(
INSERT INTO "Shop"."Odd Item" VALUES
 ('a/1', 9007199254740993, 'Café "q" 😀 a/b', 10.5000, true, '2024-02-29',
  '2024-05-01 12:00:00.123456+05:30', '2024-05-01 12:00:00', '0419D87B-D477-44E4-82C4-310F56FAA3C7',
  '{"b": [1, 2.50, null], "a": {"x": "\u00e9"}}', '{ "keep" :  "spaces", "n": 1.0 }', '{x,"y z"}', 1.5),
 ('b', NULL, E'tab\there\nnew', 0, true, NULL, '2024-01-01 00:00:00+00', NULL, NULL, 'null', 'null', '{}', NULL),
 ('c', -1, '', -0.0001, true, '1999-12-31', NULL, NULL, NULL, '[]', '[]', NULL, -2.5);
)sql");
  const auto deliveries = m.queue->take(3, 10s);
  REQUIRE(deliveries.size() == 3);
  std::map<std::string, std::string> published;
  for (const auto& d : deliveries) {
    const auto body = json::parse(d.body);
    published[body.at("instance_pk").get<std::string>()] = raw_instance_data(d.body);
  }
  // the rows change once more: the dump must show the new state, like a new SAVE would
  m.sql(R"sql(UPDATE "Shop"."Odd Item" SET ok = false WHERE "Code" = 'c')sql");
  m.queue->take(1, 3s);  // (the filter decides what the agent sends about it)
  const Cli c = run(m.config_path, "bulk-dump -c odd -o -");
  REQUIRE_MESSAGE(c.rc == 0, c.err);
  const auto lines = lines_of(c.out);
  REQUIRE(lines.size() == 4);  // every row: the model's filter is not applied
  CHECK(lines[0] == "odd");
  const std::string a1 = line_with(lines, "Code", R"("a\/1")");  // ujson escapes /
  CHECK(a1 == published["a/1"]);
  CHECK(line_with(lines, "Code", R"("b")") == published["b"]);
  const auto c_now = json::parse(line_with(lines, "Code", R"("c")"));
  const auto c_then = json::parse(published["c"]);
  CHECK(c_now.at("cqrs_revision").get<int>() == c_then.at("cqrs_revision").get<int>() + 1);
  CHECK(json::dump(c_now.at("ok")) == "false");
  CHECK(a1.find(R"("price":10.5000)") != std::string::npos);
  CHECK(a1.find(R"("Code":"a\/1")") != std::string::npos);
}

TEST_CASE("bulk-dump flags: wrong id, existing file, --force, default name, progress") {
  MasterFixture m(kVectorSchema, kVectorMasterModels, {"author"});
  m.sql("INSERT INTO author SELECT i, 'Author ' || i FROM generate_series(1, 149) i");
  const std::string dir = std::filesystem::path(m.config_path).parent_path().string() + "/dumps";
  std::filesystem::create_directories(dir);
  const std::string cd = "cd '" + dir + "' && ";

  Cli c = run(m.config_path, "bulk-dump -c invalid", cd);
  CHECK(c.rc == 1);
  CHECK(c.err == "CommandError: Wrong CQRS ID: invalid!\n");
  c = run(m.config_path, "bulk-dump", cd);
  CHECK(c.rc == 2);  // --cqrs-id is required
  CHECK(c.err.find("--cqrs-id") != std::string::npos);

  c = run(m.config_path, "bulk-dump -c author", cd);  // default name <cqrs_id>.dump
  REQUIRE_MESSAGE(c.rc == 0, c.err);
  CHECK(c.out.empty());
  CHECK(c.err == "Done!\n149 instance(s) saved.\n149 instance(s) processed.\n");
  const std::string first = read_file(dir + "/author.dump");
  CHECK(lines_of(first).size() == 150);
  CHECK(first.rfind("author\n{\"id\":1,\"cqrs_revision\":0,\"cqrs_updated\":\"", 0) == 0);

  c = run(m.config_path, "bulk-dump -c author", cd);
  CHECK(c.rc == 1);
  CHECK(c.err == "CommandError: File author.dump exists!\n");
  c = run(m.config_path, "bulk-dump -c author -o '" + dir + "/author.dump'");
  CHECK(c.err == "CommandError: File " + dir + "/author.dump exists!\n");

  m.sql("UPDATE author SET name = 'changed' WHERE id = 1");
  c = run(m.config_path, "bulk-dump --cqrs-id author --force --batch 50 --progress", cd);
  REQUIRE_MESSAGE(c.rc == 0, c.err);
  CHECK(c.err.rfind("Processing 149 records with batch size 50\n", 0) == 0);
  CHECK(c.err.find("Dumping author: 149 done in ") != std::string::npos);
  CHECK(c.err.find("Done!\n149 instance(s) saved.\n149 instance(s) processed.\n") !=
        std::string::npos);
  const std::string second = read_file(dir + "/author.dump");
  CHECK(second != first);
  CHECK(second.find("\"name\":\"changed\"") != std::string::npos);
  // the django-cqrs name (a link to pgcqrs), and no temporary file left behind
  const std::string alias =
      (std::filesystem::path(pgcqrs_binary()).parent_path() / "cqrs_bulk_dump").string();
  std::string alias_out;
  CHECK(run_shell(cd + alias + " --config '" + m.config_path +
                      "' --cqrs-id author -o other.dump -b 7 2>&1",
                  &alias_out) == 0);
  CHECK(alias_out == "Done!\n149 instance(s) saved.\n149 instance(s) processed.\n");
  CHECK(read_file(dir + "/other.dump") == second);
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++files;
  }
  CHECK(files == 2);

  m.sql("DELETE FROM author");
  c = run(m.config_path, "bulk-dump -c author -o empty.dump", cd);
  CHECK(c.err == "Done!\n0 instance(s) saved.\n0 instance(s) processed.\n");
  CHECK(read_file(dir + "/empty.dump") == "author");
}

TEST_CASE("a dump that fails half-way leaves no file; a row without data is reported") {
  const char* const schema = R"sql(
CREATE TABLE thing (id integer PRIMARY KEY, name text);
)sql";
  const char* const models = R"toml(
[[master.model]]
cqrs_id = "thing"
table = "thing"
serializer = "SELECT json_build_object('id', t.id, 'inv', 12 / (t.id - 3)) FROM thing t WHERE t.id = $1 AND t.id <> 2"
)toml";
  MasterFixture m(schema, models, {"thing"});
  m.sql(
      "SET session_replication_role = replica; INSERT INTO thing VALUES (1, 'a'), (2, 'b'); "
      "RESET session_replication_role;");
  const std::string dir = std::filesystem::path(m.config_path).parent_path().string() + "/fail";
  std::filesystem::create_directories(dir);
  Cli c = run(m.config_path, "bulk-dump -c thing -o '" + dir + "/thing.dump'");
  REQUIRE_MESSAGE(c.rc == 0, c.err);
  CHECK(c.err ==
        "\nDump record failed for pk=2: MessageError: instance_data is NULL (the serializer "
        "returned NULL)\nDone!\n1 instance(s) saved.\n2 instance(s) processed.\n");
  CHECK(
      read_file(dir + "/thing.dump").rfind("thing\n{\"id\":1,\"inv\":-6,\"cqrs_updated\":\"", 0) ==
      0);
  m.sql(
      "SET session_replication_role = replica; INSERT INTO thing VALUES (3, 'c'); "
      "RESET session_replication_role;");
  c = run(m.config_path, "bulk-dump -c thing -f -o '" + dir + "/thing.dump'");
  CHECK(c.rc == 1);
  CHECK(c.err.find("division by zero") != std::string::npos);
  // the earlier file is untouched and no temporary file is left
  CHECK(read_file(dir + "/thing.dump").rfind("thing\n{\"id\":1,", 0) == 0);
  c = run(m.config_path, "bulk-dump -c thing -o '" + dir + "/new.dump'");
  CHECK(c.rc == 1);
  CHECK_FALSE(std::filesystem::exists(dir + "/new.dump"));
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++files;
  }
  CHECK(files == 1);
}

TEST_CASE("django-cqrs's load fixtures give its messages and counts") {
  ReplicaFixture r(kVectorReplicaSchema, kVectorReplicaModels);
  const std::string dir = std::filesystem::path(r.config_path).parent_path().string();
  r.sql(
      "INSERT INTO author (id, name, cqrs_revision, cqrs_updated) VALUES "
      "(1, 'existing', 0, '2019-06-11 04:59:50+00')");

  Cli c = run(r.config_path, "bulk-load -i '" + dir + "/__init__1.py'");
  CHECK(c.rc == 1);
  CHECK(c.err == "CommandError: File " + dir + "/__init__1.py doesn't exist!\n");
  c = run(r.config_path, "bulk-load");
  CHECK(c.rc == 2);
  CHECK(c.err.find("--input") != std::string::npos);

  const std::string empty = write_temp_file("empty_file.dump", "");
  c = run(r.config_path, "bulk-load -i '" + empty + "'");
  CHECK(c.rc == 1);
  CHECK(c.err == "CommandError: File " + empty + " is empty!\n");

  const std::string bad_id = write_temp_file("bad_cqrs_id.dump", "publisher");
  c = run(r.config_path, "bulk-load -i '" + bad_id + "'");
  CHECK(c.rc == 1);
  CHECK(c.err == "CommandError: Wrong CQRS ID: publisher!\n");

  const std::string unparseable = write_temp_file("unparseable.dump", "author\n{}{}\n");
  c = run(r.config_path, "bulk-load -i '" + unparseable + "'");
  CHECK(c.rc == 0);
  CHECK(c.err == "Dump file can't be parsed: line 2!\nDone!\n0 instance(s) loaded.\n");

  const std::string bad_data = write_temp_file(
      "bad_master_data.dump",
      "author\n"
      R"({"id": 2, "cqrs_revision": 0, "cqrs_updated": "2019-06-11 04:59:50.121773+00:00", "name": "n", "publisher": null})"
      "\n"
      R"({"cqrs_revision": 0, "cqrs_updated": "2019-06-11 04:59:50.121773+00:00", "name": "n", "publisher": null})");
  c = run(r.config_path, "bulk-load -i '" + bad_data + "'");
  CHECK(c.rc == 0);
  CHECK(c.err == "Instance can't be saved: line 3!\nDone!\n1 instance(s) loaded.\n");
  CHECK(r.scalar("SELECT count(*) FROM author") == "2");
  r.sql("DELETE FROM author WHERE id = 2");

  const std::string no_rows = write_temp_file("no_rows.dump", "author\n");
  c = run(r.config_path, "bulk-load -i '" + no_rows + "'");
  CHECK(c.err == "Done!\n0 instance(s) loaded.\n");
  CHECK(r.scalar("SELECT name FROM author WHERE id = 1") == "existing");

  // author.dump of django-cqrs's tests: ids 1 and 2 at revision 0; id 1 exists at revision 0
  const std::string author = write_temp_file(
      "author.dump",
      "author\n"
      R"({"id": 1, "cqrs_revision": 0, "cqrs_updated": "2019-06-11 04:59:50.121773+00:00", "name": "n", "publisher": null, "books": []})"
      "\n"
      R"({"id": 2, "cqrs_revision": 0, "cqrs_updated": "2019-06-11 04:59:50.121774+00:00", "name": "n", "publisher": null, "books": []})"
      "\n");
  for (const char* batch : {"", " --batch=1"}) {
    CAPTURE(batch);
    c = run(r.config_path, "bulk-load -i '" + author + "'" + batch);
    CHECK(c.rc == 0);
    CHECK(c.err == "Done!\n2 instance(s) loaded.\n");
    CHECK(r.scalar("SELECT count(*) FROM author") == "2");
    CHECK(r.scalar("SELECT name FROM author WHERE id = 1") == "existing");  // a duplicate: kept
  }

  // --clear is a real boolean
  c = run(r.config_path, "bulk-load -i '" + no_rows + "' --clear=false");
  CHECK(c.err == "Done!\n0 instance(s) loaded.\n");
  CHECK(r.scalar("SELECT count(*) FROM author") == "2");
  c = run(r.config_path, "bulk-load -i '" + no_rows + "' -c no");
  CHECK(r.scalar("SELECT count(*) FROM author") == "2");
  c = run(r.config_path, "bulk-load -i '" + no_rows + "' --clear=maybe");
  CHECK(c.rc == 2);
  CHECK(c.err.find("--clear 'maybe': not a boolean; use true/false, 1/0 or yes/no") !=
        std::string::npos);
  CHECK(r.scalar("SELECT count(*) FROM author") == "2");
  c = run(r.config_path, "bulk-load --clear -i '" + no_rows + "'");  // bare: true
  CHECK(c.rc == 0);
  CHECK(r.scalar("SELECT count(*) FROM author") == "0");
  c = run(r.config_path, "bulk-load -i '" + author + "'");
  CHECK(r.scalar("SELECT count(*) FROM author") == "2");
  c = run(r.config_path, "bulk-load -i '" + no_rows + "' --clear=true");
  CHECK(c.err == "Done!\n0 instance(s) loaded.\n");
  CHECK(r.scalar("SELECT count(*) FROM author") == "0");

  // a refused delete
  r.sql(
      "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
      "$$BEGIN RAISE EXCEPTION 'no deletes here'; END$$;"
      "CREATE TRIGGER refuse BEFORE DELETE ON author FOR EACH ROW EXECUTE FUNCTION refuse();");
  c = run(r.config_path, "bulk-load -i '" + author + "'");
  c = run(r.config_path, "bulk-load -i '" + no_rows + "' -c 1");
  CHECK(c.rc == 1);
  CHECK(c.err.rfind("CommandError: Delete operation fails! ", 0) == 0);
  CHECK(c.err.find("no deletes here") != std::string::npos);
  CHECK(r.scalar("SELECT count(*) FROM author") == "2");

  // a value the column refuses fails that line alone
  const std::string bad_value = write_temp_file(
      "bad_value.dump",
      "author\n"
      R"({"id": 5, "cqrs_revision": 0, "cqrs_updated": "2019-06-11 04:59:50+00:00", "name": "ok"})"
      "\n"
      R"({"id": 6, "cqrs_revision": 0, "cqrs_updated": "not a time", "name": "bad"})"
      "\n\n"
      R"({"id": 7, "cqrs_revision": 0, "cqrs_updated": "2019-06-11 04:59:50+00:00", "name": "ok"})");
  c = run(r.config_path, "bulk-load -i '" + bad_value + "'");
  CHECK(c.rc == 0);
  CHECK(c.err.rfind("Unexpected error: line 3! ", 0) == 0);
  CHECK(c.err.find("\"not a time\"") != std::string::npos);
  CHECK(c.err.find("\nDump file can't be parsed: line 4!\nDone!\n2 instance(s) loaded.\n") !=
        std::string::npos);
  CHECK(r.scalar("SELECT string_agg(id::text, ',' ORDER BY id) FROM author") == "1,2,5,7");
}

TEST_CASE("django-cqrs's own dumps load, exact in every type") {
  ReplicaFixture r(kVectorReplicaSchema, kVectorReplicaModels);
  Cli c = run(r.config_path, "bulk-load -i '" + vector_file("author.dump") + "'");
  CHECK(c.rc == 0);
  CHECK(c.err == "Done!\n4 instance(s) loaded.\n");
  c = run(r.config_path, "bulk-load -i -", "", vector_file("product.dump"));
  CHECK(c.rc == 0);
  CHECK(c.err == "Done!\n4 instance(s) loaded.\n");
  CHECK(table_rows(r, "SELECT id, cqrs_revision, cqrs_updated FROM author ORDER BY id") ==
        Rows{{"2", "2", "2026-11-22 02:05:17.023463+00"},
             {"3", "1", "2026-11-22 02:05:11.120867+00"},
             {"10", "0", "2026-11-22 02:05:16.175+00"},
             {"11", "0", "2026-11-22 02:05:16.17506+00"}});
  CHECK(table_rows(r,
                   "SELECT name, description, price, in_stock, released_at, release_date, sku, "
                   "attrs::text, quantity, weight, note, discontinued_on, author_id, "
                   "cqrs_revision FROM product WHERE id = 7") ==
        Rows{{"Café 中文 😀 \"q\" a/b <tag> &amp;", "ctrl:\x01\x1f end\r\n", "9999999999.99", "f",
              "2024-01-01 00:00:00+00", "1999-12-31", "00000000-0000-4000-8000-000000000000",
              R"([1, "two", {"3": 4.0}])", "9007199254740993", "1e-07", "", "<null>", "2", "0"}});
  CHECK(r.scalar("SELECT price FROM product WHERE id = 6") == "0.10");
  CHECK(r.scalar("SELECT discontinued_on FROM product WHERE id = 2") == "2030-12-31");
}

TEST_CASE("revision rules on load: an older line does not overwrite, tombstones hold") {
  ReplicaFixture r(kVectorReplicaSchema, kVectorReplicaModels);
  r.sql(
      "INSERT INTO author (id, name, cqrs_revision, cqrs_updated) VALUES "
      "(1, 'rev5', 5, '2024-01-01 00:00:00+00'), (2, 'rev5', 5, '2024-01-01 00:00:00+00');"
      "INSERT INTO cqrs.tombstone (cqrs_id, pk, revision) VALUES ('author', '3', 4);");
  const std::string dump = write_temp_file(
      "revisions.dump",
      "author\n"
      R"({"id":1,"cqrs_revision":3,"cqrs_updated":"2023-01-01 00:00:00+00:00","name":"older"})"
      "\n"
      R"({"id":2,"cqrs_revision":6,"cqrs_updated":"2025-01-01 00:00:00+00:00","name":"newer"})"
      "\n"
      R"({"id":3,"cqrs_revision":4,"cqrs_updated":"2025-01-01 00:00:00+00:00","name":"deleted"})"
      "\n"
      R"({"id":4,"cqrs_revision":2,"cqrs_updated":"2025-01-01 00:00:00+00:00","name":"first"})"
      "\n"
      R"({"id":4,"cqrs_revision":1,"cqrs_updated":"2025-01-01 00:00:00+00:00","name":"second"})");
  const Cli c = run(r.config_path, "bulk-load -i '" + dump + "'");
  CHECK(c.rc == 0);
  CHECK(c.err == "Done!\n5 instance(s) loaded.\n");  // skipped lines count, as in django-cqrs
  CHECK(table_rows(r, "SELECT id, name, cqrs_revision FROM author ORDER BY id") ==
        Rows{{"1", "rev5", "5"}, {"2", "newer", "6"}, {"4", "first", "2"}});
}

TEST_CASE("round trip dump -> load through a pipe: mixed-case names, a uuid key, exact types") {
  const char* const master_schema = R"sql(
CREATE SCHEMA "Sales";
CREATE TABLE "Sales"."Order Line" (
  "LineKey" uuid PRIMARY KEY, qty bigint, price numeric(20,6), at timestamptz, day date,
  doc jsonb, raw json, label text);
)sql";
  const char* const master_models = R"toml(
[[master.model]]
cqrs_id = "line"
table = '"Sales"."Order Line"'
)toml";
  const char* const replica_schema = R"sql(
CREATE SCHEMA "Reads";
CREATE TABLE "Reads"."Line Copy" (
  "LineKey" uuid PRIMARY KEY, qty bigint, price numeric(20,6), at timestamptz, day date,
  doc jsonb, raw json, label text, cqrs_revision integer NOT NULL, cqrs_updated timestamptz NOT NULL);
)sql";
  const char* const replica_models = R"toml(
[[replica.model]]
cqrs_id = "line"
table = '"Reads"."Line Copy"'
)toml";
  MasterFixture m(master_schema, master_models, {"line"});
  ReplicaFixture r(replica_schema, replica_models);
  m.sql(R"sql(
INSERT INTO "Sales"."Order Line"
SELECT md5(i::text)::uuid, i * 1000000007::bigint, (i * 1.000001)::numeric(20,6) - 500,
       '2024-01-01 00:00:00+00'::timestamptz + i * interval '1 second 7 microseconds',
       '2024-01-01'::date + i, jsonb_build_object('i', i, 'half', i / 2.0, 'tags', ARRAY['x', i::text]),
       ('{"i" :  ' || i || '}')::json, CASE WHEN i % 7 = 0 THEN NULL ELSE 'label ' || i || E' \u00e9/\\' END
FROM generate_series(1, 2500) i;
UPDATE "Sales"."Order Line" SET label = 'updated' WHERE qty % 3 = 0;
)sql");
  const std::string pipe = pgcqrs_binary() + " --config '" + m.config_path +
                           "' bulk-dump -c line -o - -b 1000 | " + pgcqrs_binary() + " --config '" +
                           r.config_path + "' bulk-load -i - -b 333";
  std::string out;
  // (the dump writes its summary before it closes the pipe, so before the load reads EOF)
  REQUIRE(run_shell("bash -o pipefail -c \"" + pipe + "\" 2>&1", &out) == 0);
  CHECK(out ==
        "Done!\n2500 instance(s) saved.\n2500 instance(s) processed.\n"
        "Done!\n2500 instance(s) loaded.\n");
  const std::string cols =
      R"(SELECT "LineKey", qty, price, at, day, doc::text, raw::jsonb::text, label, cqrs_revision, cqrs_updated FROM )";
  const Rows master = master_rows(m, cols + R"("Sales"."Order Line" ORDER BY 1)");
  const Rows replica = table_rows(r, cols + R"("Reads"."Line Copy" ORDER BY 1)");
  REQUIRE(master.size() == 2500);
  CHECK(master == replica);
  CHECK(r.scalar(R"(SELECT count(*) FROM "Reads"."Line Copy" WHERE cqrs_revision = 1)") ==
        m.scalar(R"(SELECT count(*) FROM "Sales"."Order Line" WHERE cqrs_revision = 1)"));

  // loading the same dump again changes nothing and still counts every line
  const std::string file =
      std::filesystem::path(m.config_path).parent_path().string() + "/line.dump";
  Cli c = run(m.config_path, "bulk-dump -c line -o '" + file + "'");
  REQUIRE(c.rc == 0);
  m.sql(R"sql(UPDATE "Sales"."Order Line" SET label = 'after the dump' WHERE qty < 5000000000)sql");
  c = run(r.config_path, "bulk-load -i '" + file + "'");
  CHECK(c.err == "Done!\n2500 instance(s) loaded.\n");
  CHECK(table_rows(r, cols + R"("Reads"."Line Copy" ORDER BY 1)") == replica);
  // a newer dump wins for the changed rows only
  c = run(m.config_path, "bulk-dump -c line -f -o '" + file + "'");
  c = run(r.config_path, "bulk-load -i '" + file + "' -b 100000");
  CHECK(c.err == "Done!\n2500 instance(s) loaded.\n");
  CHECK(table_rows(r, cols + R"("Reads"."Line Copy" ORDER BY 1)") ==
        master_rows(m, cols + R"("Sales"."Order Line" ORDER BY 1)"));
  CHECK(r.scalar(R"(SELECT count(*) FROM "Reads"."Line Copy" WHERE label = 'after the dump')") ==
        "4");
}

// ---- the COPY path of bulk-load against the guarded upsert -------------------------------

namespace {

struct LoadRun {
  replica::LoadCounts counts;
  std::string err;  // what load_lines() wrote
  Rows table;       // the table afterwards
};

const char* const kEdgeSchema = R"sql(
CREATE TABLE edge (
  id bigint PRIMARY KEY, t text, v varchar(20), c char(3), n numeric(30,10), i integer,
  s smallint, b boolean, f double precision, r real, ts timestamptz, tsn timestamp, d date,
  tm time, iv interval, u uuid, j json, jb jsonb,
  cqrs_revision integer NOT NULL, cqrs_updated timestamptz NOT NULL);
)sql";

const char* const kEdgeModels = R"toml(
[[replica.model]]
cqrs_id = "edge"
table = "edge"
mapping = { text = "t", number = "n" }
)toml";

const char* const kEdgeColumns =
    "SELECT id, t, v, c, n, i, s, b, f, r, ts, tsn, d, tm, iv, u, j::text, jb::text, "
    "cqrs_revision, cqrs_updated FROM edge ORDER BY id";

// `setup` (SQL) on an emptied table and tombstones, then load_lines() of `dump` (line 1 the
// cqrs_id) with or without the COPY path; `clear` as --clear.
LoadRun load_with(ReplicaFixture& r, const std::string& cqrs_id, const std::string& table_query,
                  const std::string& setup, const std::string& dump, int batch, bool copy,
                  bool clear = false) {
  r.sql("DELETE FROM cqrs.tombstone; " + setup);
  pqxx::connection conn(r.db.url());
  const replica::Target target = replica::load_target(conn, *r.config.replica, cqrs_id);
  if (clear) replica::clear_table(conn, target);
  std::istringstream in(dump);
  std::string first;
  std::getline(in, first);
  replica::LoadOptions options;
  options.batch = batch;
  options.copy = copy;
  std::FILE* err = std::tmpfile();
  LoadRun run;
  run.counts = replica::load_lines(conn, target, in, options, err);
  std::rewind(err);
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, err)) > 0)
    run.err.append(buf, n);
  std::fclose(err);
  run.table = r.rows(table_query);
  return run;
}

// Both paths give the same rows, messages and counts; returns the COPY path's run.
LoadRun same_both_ways(ReplicaFixture& r, const std::string& cqrs_id,
                       const std::string& table_query, const std::string& setup,
                       const std::string& dump, int batch, bool clear = false) {
  const LoadRun guarded = load_with(r, cqrs_id, table_query, setup, dump, batch, false, clear);
  const LoadRun copied = load_with(r, cqrs_id, table_query, setup, dump, batch, true, clear);
  CAPTURE(batch);
  CHECK(copied.table == guarded.table);
  CHECK(copied.err == guarded.err);
  CHECK(copied.counts.loaded == guarded.counts.loaded);
  CHECK(copied.counts.lines == guarded.counts.lines);
  CHECK(copied.counts.inserted + copied.counts.updated ==
        guarded.counts.inserted + guarded.counts.updated);
  return copied;
}

std::string edge_line(const std::string& id, int revision, const std::string& fields) {
  std::string l = R"({"id":)";
  l.append(id).append(R"(,"cqrs_revision":)").append(std::to_string(revision));
  l.append(R"(,"cqrs_updated":"2024-05-06T07:08:09.123456+02:00")");
  if (!fields.empty()) l.append(",").append(fields);
  l.append("}\n");
  return l;
}

}  // namespace

TEST_CASE("bulk-load's COPY path: exact types and edge values, as the guarded upsert") {
  ReplicaFixture r(kEdgeSchema, kEdgeModels);
  std::string dump = "edge\n";
  dump += edge_line("1", 0, "");
  dump +=
      edge_line("2", 1,
                R"("text":"quote \" backslash \\ tab \t nl \n cr \r end","v":"a\\tb\\nc\\\\N",)"
                R"("c":"x","number":"12345678901234567890.0123456789","i":-2147483648,)"
                R"("s":32767,"b":true,"f":1.5e300,"r":0.1,"ts":"2024-02-29T23:59:59.999999-05:30",)"
                R"("tsn":"2024-01-01 00:00:00+09:00","d":"2024-02-29","tm":"23:59:59.5",)"
                R"("iv":"1 day 02:03:04","u":"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",)"
                R"("j":{"a":[1,2.50,"x\"y"],"b":null,"c":"\u00e9\/"},"jb":[1,"two",{"3":4.0}])");
  dump += edge_line(
      "3", 2,
      R"("text":"Caf\u00e9 \u4e2d\u6587 \ud83d\ude00 raw é 😀","number":1.10,)"
      R"("i":"42","b":"f","f":-0.0,"j":"plain","jb":"str","n":"ignored? no: number wins")");
  dump += edge_line("4", 3, R"("text":null,"v":null,"number":null,"j":null,"jb":null,"b":false)");
  dump += edge_line("9223372036854775807", 4, R"("text":"\\N","v":"\\.","j":12.50,"jb":true)");
  dump += edge_line("-9223372036854775808", 5, R"("text":"\\","j":[],"jb":{})");
  dump += edge_line("6", 0, R"("text":{"object":"in text"},"v":[1,2],"number":"1e3")");
  dump += edge_line("7", 0, R"("text":"a\u0001b\u001fc","tm":"10:00","ts":"2024-01-01T00:00:00Z")");
  dump += edge_line("\"8\"", 0, R"("text":"key as a string")");
  dump += "{not json\n";
  dump += R"({"cqrs_revision":0,"cqrs_updated":"2024-01-01T00:00:00+00:00"})"
          "\n";
  dump += edge_line("10", 0, R"("ts":"not a time")");
  dump += edge_line("11", 0, R"("i":2147483648)");
  dump += edge_line("12", 0, R"("text":"nul \u0000 char")");
  dump += edge_line("13", 0, R"("j":"needs \"escaping\"")");
  dump += edge_line("14", 0, R"("v":"twenty-one characters")");
  dump += edge_line("15", 0, R"("j":"back\\slash","jb":"tab\tnl\n")");
  dump += edge_line("16", 0, R"("number":1e400,"f":1e-320)");
  // strings into json/jsonb whose text is also JSON once unquoted: stored as JSON strings
  dump += edge_line("17", 0, R"("j":"C:\\new \/ \u00e9","jb":"x\\ty")");
  for (const int batch : {1, 4, 1000}) {
    const LoadRun run = same_both_ways(r, "edge", kEdgeColumns, "DELETE FROM edge;", dump, batch);
    CHECK(run.counts.lines == 19);
    CHECK(run.err.find("Dump file can't be parsed: line 11!") != std::string::npos);
    CHECK(run.err.find("Instance can't be saved: line 12!") != std::string::npos);
    CHECK(run.err.find("Unexpected error: line 13! ") != std::string::npos);
    CHECK(run.err.find("Unexpected error: line 14! ") != std::string::npos);
  }
  // spot checks of the values themselves
  const Rows rows = r.rows("SELECT t, v, n::text, j::text, jb::text FROM edge WHERE id = 2");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0] == std::vector<std::string>{"quote \" backslash \\ tab \t nl \n cr \r end",
                                            "a\\tb\\nc\\\\N", "12345678901234567890.0123456789",
                                            R"({"a":[1,2.50,"x\"y"],"b":null,"c":"\u00e9\/"})",
                                            R"([1, "two", {"3": 4.0}])"});
  CHECK(r.scalar("SELECT t FROM edge WHERE id = 9223372036854775807") == "\\N");
  CHECK(r.scalar("SELECT t FROM edge WHERE id = -9223372036854775808") == "\\");
  CHECK(r.scalar("SELECT ts FROM edge WHERE id = 2") == "2024-03-01 05:29:59.999999+00");
  CHECK(r.rows("SELECT j::text, jb::text, jb #>> '{}' FROM edge WHERE id = 17") ==
        Rows{{R"("C:\\new / é")", R"("x\\ty")", R"(x\ty)"}});
}

TEST_CASE("bulk-load's COPY path: keys across batches, revisions, tombstones, --clear, mapping") {
  ReplicaFixture r(kEdgeSchema, kEdgeModels);
  std::string dump = "edge\n";
  // key 1 three times in the file (newest wins, also across batches), key 2 older later,
  // key 3 with a tombstone in some setups, "01" and 1 equal once typed
  dump += edge_line("1", 1, R"("text":"first")");
  dump += edge_line("2", 5, R"("text":"two at 5")");
  dump += edge_line("3", 2, R"("text":"three")");
  dump += edge_line("4", 0, R"("text":"four")");
  dump += edge_line("1", 3, R"("text":"newer, later")");
  dump += edge_line("2", 4, R"("text":"two at 4, later")");
  dump += edge_line("5", 0, R"("text":"five")");
  dump += edge_line("1", 2, R"("text":"older, last")");
  dump += edge_line("\"01\"", 9, R"("text":"01 typed equal to 1")");
  dump += edge_line("6", 1, R"("text":"six")");
  dump += edge_line("6", 1, R"("text":"six again, same revision")");
  const std::string existing =
      "INSERT INTO edge (id, t, cqrs_revision, cqrs_updated) VALUES "
      "(4, 'stored four', 7, '2020-01-01 00:00:00+00'), (7, 'stored seven', 0, '2020-01-01 "
      "00:00:00+00');";
  const std::string tombstone =
      "INSERT INTO cqrs.tombstone (cqrs_id, pk, revision) VALUES "
      "('edge', '3', 2), ('edge', '5', 0), ('other', '4', 99);";
  const std::string other_tombstone =
      "INSERT INTO cqrs.tombstone (cqrs_id, pk, revision) VALUES ('other', '1', 99);";
  for (const int batch : {1, 2, 3, 5, 100}) {
    for (const std::string& setup :
         {std::string(), existing, tombstone, existing + tombstone, other_tombstone}) {
      CAPTURE(setup);
      same_both_ways(r, "edge", kEdgeColumns, "DELETE FROM edge;" + setup, dump, batch);
      // --clear: the table emptied by the load itself
      same_both_ways(r, "edge", kEdgeColumns, "DELETE FROM edge;" + setup, dump, batch, true);
    }
  }
  const LoadRun run = load_with(r, "edge", "SELECT id, t, cqrs_revision FROM edge ORDER BY id",
                                "DELETE FROM edge;", dump, 3, true);
  CHECK(run.table == Rows{{"1", "01 typed equal to 1", "9"},
                          {"2", "two at 5", "5"},
                          {"3", "three", "2"},
                          {"4", "four", "0"},
                          {"5", "five", "0"},
                          {"6", "six again, same revision", "1"}});
  CHECK(run.counts.loaded == 11);
  const LoadRun held = load_with(r, "edge", "SELECT id, t, cqrs_revision FROM edge ORDER BY id",
                                 "DELETE FROM edge;" + existing + tombstone, dump, 1000, true);
  CHECK(held.table == Rows{{"1", "01 typed equal to 1", "9"},
                           {"2", "two at 5", "5"},
                           {"4", "stored four", "7"},
                           {"6", "six again, same revision", "1"},
                           {"7", "stored seven", "0"}});
}

TEST_CASE("bulk-load's COPY path: batches of megabytes sent in pieces, fast and slow lines") {
  // The COPY data of a batch goes in pieces of ~64 KiB of whole rows; lines the fast path
  // takes (compact) and leaves to prepare_line() (spaced JSON) mixed in one batch; one value
  // longer than a piece, tabs and newlines everywhere.
  ReplicaFixture r(kEdgeSchema, kEdgeModels);
  std::string dump = "edge\n";
  for (int i = 1; i <= 6000; ++i) {
    std::string text = "row " + std::to_string(i) + R"( tab\t nl\n \u00e9 )";
    if (i == 2500) text.append(100000, 'x');
    if (i % 3 == 0) {
      dump += R"({"id": )" + std::to_string(i) + R"(, "cqrs_revision": 1, )" +
              R"("cqrs_updated": "2024-05-06T07:08:09+02:00", "text": ")" + text +
              R"(", "jb": {"k": [1, "v"]}})" + "\n";
    } else {
      dump += edge_line(std::to_string(i), i % 4,
                        R"("text":")" + text + R"(","number":)" + std::to_string(i) +
                            R"(.25,"jb":{"k":[1,"v"]})");
    }
  }
  for (const int batch : {5000, 10000}) {
    const LoadRun run = same_both_ways(r, "edge", kEdgeColumns, "DELETE FROM edge;", dump, batch);
    CHECK(run.counts.loaded == 6000);
    CHECK(run.counts.inserted == 6000);
    CHECK(run.err.empty());
    CHECK(run.table.size() == 6000);
  }
  CHECK(r.scalar("SELECT length(t) FROM edge WHERE id = 2500") == "100020");
  CHECK(r.scalar("SELECT t FROM edge WHERE id = 6000") == "row 6000 tab\t nl\n \u00e9 ");
}

TEST_CASE("bulk-load's COPY path: django-cqrs's dumps and fixtures, as the guarded upsert") {
  ReplicaFixture r(kVectorReplicaSchema, kVectorReplicaModels);
  const std::string authors =
      "SELECT id, name, publisher_id, cqrs_revision, cqrs_updated FROM author ORDER BY id";
  const std::string products =
      "SELECT id, name, description, price, in_stock, released_at, release_date, sku, "
      "attrs::text, quantity, weight, note, discontinued_on, author_id, cqrs_revision, "
      "cqrs_updated FROM product ORDER BY id";
  for (const int batch : {1, 2, 10000}) {
    const LoadRun a =
        same_both_ways(r, "author", authors, "DELETE FROM product; DELETE FROM author;",
                       read_file(vector_file("author.dump")), batch);
    CHECK(a.counts.loaded == 4);
    CHECK(a.err.empty());
    const LoadRun p = same_both_ways(r, "product", products, "DELETE FROM product;",
                                     read_file(vector_file("product.dump")), batch);
    CHECK(p.counts.loaded == 4);
    CHECK(p.table.size() == 4);
  }
  // the fixtures of django-cqrs's load tests (bad lines, an existing row, repeated loads)
  const std::string fixtures =
      "author\n{}{}\n"
      R"({"id": 2, "cqrs_revision": 0, "cqrs_updated": "2019-06-11 04:59:50.121773+00:00", "name": "n", "publisher": null})"
      "\n"
      R"({"cqrs_revision": 0, "cqrs_updated": "2019-06-11 04:59:50.121773+00:00", "name": "n", "publisher": null})"
      "\n"
      R"({"id": 1, "cqrs_revision": 0, "cqrs_updated": "2019-06-11 04:59:50.121773+00:00", "name": "n", "publisher": null, "books": []})"
      "\n"
      R"({"id": 6, "cqrs_revision": 0, "cqrs_updated": "not a time", "name": "bad"})"
      "\n\n"
      R"({"id": 7, "cqrs_revision": 0, "cqrs_updated": "2019-06-11 04:59:50+00:00", "name": "ok", "publisher": 3})"
      "\n";
  for (const std::string& setup :
       {std::string(), std::string("INSERT INTO author (id, name, cqrs_revision, cqrs_updated) "
                                   "VALUES (1, 'existing', 0, '2019-06-11 04:59:50+00');")}) {
    for (const int batch : {1, 3, 10000}) {
      const LoadRun f =
          same_both_ways(r, "author", authors, "DELETE FROM product; DELETE FROM author;" + setup,
                         fixtures, batch);
      CHECK(f.counts.loaded == 3);
      CHECK(f.err.rfind("Dump file can't be parsed: line 2!\nInstance can't be saved: line 4!\n"
                        "Unexpected error: line 6! ",
                        0) == 0);
      CHECK(f.err.find("\nDump file can't be parsed: line 7!\n") != std::string::npos);
    }
  }
}

// ---- bulk-dump: client-formatted lines against the server's (row_sql()) and the agent's ----
#include <cstdio>

#include "common/config.hpp"
#include "master/dump.hpp"

namespace {

// dump_table() into a temporary file; the lines after the cqrs_id.
std::vector<std::string> dump_lines(const std::string& config_path, const std::string& cqrs_id,
                                    master::DumpFormatting formatting, bool* client_formatted) {
  const Config config = load_config(config_path);
  const MasterModel* model = config.find_master_model(cqrs_id);
  REQUIRE(model != nullptr);
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  std::FILE* err = std::tmpfile();
  REQUIRE(err != nullptr);
  master::DumpOptions options;
  options.formatting = formatting;
  const auto counts = master::dump_table(config.master->database, *model, f, options, err);
  *client_formatted = counts.client_formatted;
  std::string text;
  std::rewind(f);
  char chunk[65536];
  for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, f)) > 0;)
    text.append(chunk, n);
  std::fclose(f);
  std::fclose(err);
  auto lines = lines_of(text);
  REQUIRE(!lines.empty());
  CHECK(lines[0] == cqrs_id);
  CHECK(counts.saved == lines.size() - 1);
  lines.erase(lines.begin());
  return lines;
}

}  // namespace

TEST_CASE("bulk-dump's client formatting is byte for byte the server's and the agent's") {
  const char* const schema = R"sql(
CREATE DOMAIN "Money" AS numeric(20,4);
CREATE TABLE "Every Type" (
  "Id" bigint PRIMARY KEY, "SmallN" smallint, i integer, "Name" text, vc varchar(20), ch char(5),
  "Ok" boolean, num numeric, m "Money", r real, d double precision, day date,
  "At" timestamptz, naive timestamp, u uuid, j json, jb jsonb);
)sql";
  const char* const models = R"toml(
[[master.model]]
cqrs_id = "every"
table = '"Every Type"'
)toml";
  MasterFixture m(schema, models, {"every"});
  m.start_agent();
  m.sql(R"sql(
INSERT INTO "Every Type" VALUES
 (1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (9007199254740993, -32768, 2147483647, '', '', '', true, 1.5000, 0.0000, 1.5, 0.1, '2024-02-29',
  '2024-05-01 12:00:00.123456+05:30', '2024-05-01 12:00:00', '0419D87B-D477-44E4-82C4-310F56FAA3C7',
  '{ "keep" :  "spaces", "n": 1.0, "s": "a\/b \u00e9 \ud83d\ude00 \" \\" }',
  '{"b": [1, 2.50, null, true], "a": {"x": "\u00e9 \u0001 /"}, "": ""}'),
 (-9223372036854775808, 0, -1, E'Café "q" \\ a/b 😀 中文 \b\f\n\r\t\x01\x1f\x7f end', 'tab	x', 'ab',
  false, 123456789012345678901234567890.123456789000, -0.0, -0.0001, '-0', '1970-01-01',
  '1969-12-31 23:59:59.999999+00', '1900-01-01 00:00:00.5', '00000000-0000-0000-0000-000000000000',
  '[]', '[]'),
 (2, 1, 1, '</script>', '"', 'x', true, 'NaN', -12.3400, 'NaN', 'Infinity', '0044-03-15 BC',
  '0044-03-15 12:00:00+00 BC', '10000-01-01 00:00:00', NULL, 'null', 'null'),
 (3, 2, 2, 'x', 'y', 'z', true, 1e-20, 1, '-Infinity', 1e300, 'infinity',
  'infinity', '-infinity', NULL, '"\u0000x"', '"\u00e9"'),
 (4, 3, 3, U&'\0001\001f', 'ü', 'é', true, 100, 10, 3.4028235e38, 5e-324, '-infinity',
  '2000-01-01 00:00:00+00', '2000-01-01 00:00:00.000001', NULL, '1e5', '-0.0'),
 (5, 4, 4, 'a', 'b', 'c', true, 0.10, 2, 1e-10, -1.5e-7, '9999-12-31',
  '0001-01-01 00:00:00+00', '2024-12-31 23:59:59.99', NULL, '{"a":{"b":{"c":[[[]]]}}}', '{"\\u00e9": "\\n"}');
)sql");
  const auto deliveries = m.queue->take(7, 10s);
  REQUIRE(deliveries.size() == 7);
  std::map<std::string, std::string> published;
  for (const auto& d : deliveries) {
    published[json::dump(json::parse(d.body).at("instance_pk"))] = raw_instance_data(d.body);
  }
  bool client = false;
  const auto server_lines =
      dump_lines(m.config_path, "every", master::DumpFormatting::kServer, &client);
  CHECK_FALSE(client);
  const auto client_lines =
      dump_lines(m.config_path, "every", master::DumpFormatting::kAuto, &client);
  CHECK(client);  // every column has a type the client formats
  REQUIRE(server_lines.size() == 7);
  REQUIRE(client_lines.size() == 7);
  for (const auto& [pk, line] : published) {
    CAPTURE(pk);
    const std::string server = line_with(server_lines, "Id", pk);
    CHECK(server == line);
    CHECK(line_with(client_lines, "Id", pk) == server);
  }
  // the pipeline's default is the client formatting
  const Cli c = run(m.config_path, "bulk-dump -c every -o -");
  REQUIRE_MESSAGE(c.rc == 0, c.err);
  auto cli_lines = lines_of(c.out);
  cli_lines.erase(cli_lines.begin());
  auto sorted_client = client_lines;
  std::sort(cli_lines.begin(), cli_lines.end());
  std::sort(sorted_client.begin(), sorted_client.end());
  CHECK(cli_lines == sorted_client);
}

TEST_CASE("bulk-dump falls back to the server's formatting for the types it does not format") {
  const char* const schema = R"sql(
CREATE TABLE other (id integer PRIMARY KEY, tags text[], span interval, b bytea, t time);
)sql";
  const char* const models = R"toml(
[[master.model]]
cqrs_id = "other"
table = "other"
)toml";
  MasterFixture m(schema, models, {"other"});
  m.sql(
      R"sql(INSERT INTO other VALUES (1, '{a,"b c"}', '1 day 2 hours', '\x00ff', '12:00:01.5'))sql");
  bool client = true;
  const auto auto_lines =
      dump_lines(m.config_path, "other", master::DumpFormatting::kAuto, &client);
  CHECK_FALSE(client);
  const auto server_lines =
      dump_lines(m.config_path, "other", master::DumpFormatting::kServer, &client);
  CHECK(auto_lines == server_lines);  // one row
}
