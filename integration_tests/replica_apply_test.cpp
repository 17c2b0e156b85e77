// Replica apply against a real PostgreSQL: vectors land exactly, revision decisions, tombstones,
// bad values isolated, apply_function models, install checks, and the apply rate.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "common/error.hpp"
#include "common/event.hpp"
#include "common/json.hpp"
#include "common/pg/error.hpp"
#include "common/pg/pqxx.hpp"
#include "common/timestamp.hpp"
#include "replica/applier.hpp"
#include "replica/batch.hpp"
#include "replica/install.hpp"
#include "support/support.hpp"

using namespace pgcqrs;
using namespace pgcqrs::replica;
using json::Json;
using Clock = std::chrono::steady_clock;

namespace {

// The replica side of the vectors' models (tests/vectors/README.md): the product's `author`
// foreign key lands in `author_id` through a mapping.
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

ReplicaModel model(std::string cqrs_id, std::string schema, std::string table,
                   std::map<std::string, std::string> mapping = {}) {
  ReplicaModel m;
  m.cqrs_id = std::move(cqrs_id);
  m.table = {std::move(schema), std::move(table)};
  m.mapping = std::move(mapping);
  return m;
}

ReplicaConfig vector_config() {
  ReplicaConfig c;
  c.queue = "replica";
  c.models.push_back(model("author", "reads", "author"));
  c.models.push_back(model("product", "reads", "product", {{"author", "author_id"}}));
  return c;
}

// A database with the read models (and `extra_sql`), installed for `config`.
struct Replica {
  it::TempDatabase db{"replica_apply"};
  pqxx::connection conn{db.url()};
  ReplicaConfig config;
  std::vector<Target> targets;

  explicit Replica(ReplicaConfig c = vector_config(), const std::string& extra_sql = "")
      : config(std::move(c)) {
    sql(std::string(kReadModels) + extra_sql);
    install_replica(conn, config, false);
    pqxx::work txn(conn);
    targets = load_targets(txn, config);
  }

  void sql(const std::string& text) {
    pqxx::work txn(conn);
    txn.exec(text);
    txn.commit();
  }

  const Target& target(const std::string& cqrs_id) const {
    for (const auto& t : targets) {
      if (t.model.cqrs_id == cqrs_id) return t;
    }
    FAIL("no target " << cqrs_id);
    throw std::logic_error("unreachable");
  }

  // Each row of `query` as text, NULL as "<null>", timestamps in UTC.
  std::vector<std::vector<std::string>> rows(const std::string& query) {
    pqxx::work txn(conn);
    txn.exec("SET LOCAL TimeZone = 'UTC'");
    std::vector<std::vector<std::string>> out;
    for (const auto& r : txn.exec(query)) {
      std::vector<std::string> row;
      for (const auto& f : r)
        row.push_back(f.is_null() ? "<null>" : f.as<std::string>());
      out.push_back(std::move(row));
    }
    return out;
  }

  std::string value(const std::string& query) {
    const auto r = rows(query);
    REQUIRE(r.size() == 1);
    return r[0].at(0);
  }

  // One batch: newest per row, each cqrs_id applied, committed. Results in plan order.
  std::vector<RowResult> apply_batch(const std::vector<Event>& events, Plan* plan_out = nullptr) {
    Batch batch;
    DeliveryRef tag = 0;
    for (const auto& e : events)
      batch.add(target(e.cqrs_id), e, ++tag);
    Plan plan = batch.newest_per_row();
    std::vector<RowResult> out;
    pqxx::work txn(conn);
    for (const auto& g : plan.groups) {
      const ApplyResult r = apply(txn, *g.target, g.rows);
      out.insert(out.end(), r.rows.begin(), r.rows.end());
    }
    txn.commit();
    if (plan_out != nullptr) *plan_out = std::move(plan);
    return out;
  }

  RowResult apply_one(const Event& e) {
    const auto r = apply_batch({e});
    REQUIRE(r.size() == 1);
    return r[0];
  }
};

std::vector<Event> vector_events() {
  std::ifstream in(it::source_dir() + "/tests/vectors/messages.jsonl", std::ios::binary);
  REQUIRE(in.good());
  std::vector<Event> out;
  DecodeOptions o;
  o.now = Timestamp{};  // keep their `expires`; nothing here checks it
  for (std::string line; std::getline(in, line);) {
    out.push_back(decode_event(nlohmann::json::parse(line).at("body_raw").get<std::string>(), o));
  }
  return out;
}

// cqrs_updated as a master that writes each revision of a row after the one before gives it:
// revision N at 10:00:00 + N s, a DELETE (revision N = last SAVE's + 1) half a second later than
// a SAVE of its revision would be. So a SAVE is after a DELETE exactly when its revision is
// higher, unless a test sets cqrs_updated itself (a row the master created again).
std::string updated_at(std::int64_t revision, bool is_delete = false) {
  Timestamp t = parse_timestamp("2026-11-22 10:00:00+00:00") + std::chrono::seconds(revision);
  if (is_delete) t += std::chrono::milliseconds(500);
  return format_django(t);
}

// A SAVE/SYNC of `cqrs_id` row `id` at `revision` with `fields` (which may set cqrs_updated).
Event save(std::string cqrs_id, Json id, std::int64_t revision, Json fields = Json::object(),
           Signal signal = Signal::kSave) {
  Event e;
  e.signal = signal;
  e.cqrs_id = std::move(cqrs_id);
  e.instance_pk = id;
  e.instance_data = Json::object();
  e.instance_data["id"] = id;
  e.instance_data["cqrs_revision"] = revision;
  e.instance_data["cqrs_updated"] = updated_at(revision);
  for (const auto& [k, v] : fields.items())
    e.instance_data[k] = v;
  return e;
}

Event sync(std::string cqrs_id, Json id, std::int64_t revision, Json fields = Json::object()) {
  return save(std::move(cqrs_id), std::move(id), revision, std::move(fields), Signal::kSync);
}

// A DELETE at `revision`, deleted at `updated` (default: updated_at(revision, true)).
Event del(std::string cqrs_id, Json id, std::int64_t revision, std::string updated = "") {
  Event e;
  e.signal = Signal::kDelete;
  e.cqrs_id = std::move(cqrs_id);
  e.instance_pk = id;
  if (updated.empty()) updated = updated_at(revision, true);
  e.instance_data = {{"id", id}, {"cqrs_revision", revision}, {"cqrs_updated", updated}};
  return e;
}

Event author(int id, std::int64_t revision, const std::string& name) {
  return save("author", id, revision, {{"name", name}});
}

const char* const kProductColumns =
    "SELECT id::text, name, description, price::text, in_stock::text, released_at::text, "
    "release_date::text, sku::text, attrs::text, quantity::text, weight::text, note, "
    "discontinued_on::text, author_id::text, cqrs_revision::text, cqrs_updated::text "
    "FROM reads.product AS p ORDER BY p.id";
const char* const kAuthorColumns =
    "SELECT id::text, name, cqrs_revision::text, cqrs_updated::text FROM reads.author AS a "
    "ORDER BY a.id";

using Rows = std::vector<std::vector<std::string>>;

}  // namespace

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

// The master's final state after every vector (products 1, 4, 20 and authors 1, 4 deleted).
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
const char* const kTombstones =
    "SELECT cqrs_id, pk, revision::text FROM cqrs.tombstone ORDER BY cqrs_id, pk";

}  // namespace

TEST_CASE("install: migrations once, every model checked, dry run changes nothing") {
  it::TempDatabase db("replica_install");
  pqxx::connection conn(db.url());
  {
    pqxx::work txn(conn);
    txn.exec(kReadModels);
    txn.commit();
  }
  {
    pqxx::work txn(conn);
    CHECK_THROWS_WITH_AS(require_schema(txn),
                         "replica database: schema cqrs is not up to date (pending "
                         "0001_tombstone.sql, 0002_tombstone_updated.sql); run `pgcqrs migrate` "
                         "first",
                         ConfigError);
  }
  const std::vector<std::string> all{"0001_tombstone.sql", "0002_tombstone_updated.sql"};
  const InstallReport dry = install_replica(conn, vector_config(), true);
  CHECK(dry.migrations == all);
  CHECK(dry.models == std::vector<std::string>{"author", "product"});
  REQUIRE(dry.ddl.size() == 2);
  CHECK(dry.ddl[0].find("CREATE TABLE cqrs.tombstone") != std::string::npos);
  CHECK(dry.ddl[1].find("ADD COLUMN updated timestamptz") != std::string::npos);
  {
    pqxx::work txn(conn);
    CHECK(txn.exec1("SELECT to_regclass('cqrs.tombstone') IS NULL")[0].as<bool>());
  }
  const InstallReport first = install_replica(conn, vector_config(), false);
  CHECK(first.migrations == all);
  CHECK(first.models == std::vector<std::string>{"author", "product"});
  const InstallReport again = install_replica(conn, vector_config(), false);
  CHECK(again.migrations.empty());
  CHECK(again.ddl.empty());
  pqxx::work txn(conn);
  CHECK_NOTHROW(require_schema(txn));
  const auto targets = load_targets(txn, vector_config());
  REQUIRE(targets.size() == 2);
  CHECK(targets[1].table.primary_key == "id");
  CHECK(targets[1].table.column("price")->type == "numeric(12,2)");
  CHECK(targets[1].table.column("released_at")->type == "timestamp with time zone");
}

TEST_CASE("install: a model that does not fit is refused with model, table, column and fix") {
  it::TempDatabase db("replica_install");
  pqxx::connection conn(db.url());
  {
    pqxx::work txn(conn);
    txn.exec(R"sql(
CREATE SCHEMA reads;
CREATE TABLE reads.author (id integer PRIMARY KEY, name text, cqrs_updated timestamptz);
CREATE TABLE reads.pair (a int, b int, cqrs_revision text, cqrs_updated timestamptz,
                         PRIMARY KEY (a, b));
CREATE TABLE reads.nokey (id int, cqrs_revision int, cqrs_updated timestamptz);
CREATE VIEW reads.v AS SELECT 1 AS id;
)sql");
    txn.commit();
  }
  ReplicaConfig one;
  one.models.push_back(model("author", "reads", "author"));
  CHECK_THROWS_WITH_AS(install_replica(conn, one, false),
                       "replica.model 'author' (\"reads\".\"author\"): column \"cqrs_revision\" "
                       "missing; add it: ALTER TABLE \"reads\".\"author\" ADD COLUMN "
                       "cqrs_revision integer NOT NULL DEFAULT 0",
                       ConfigError);
  {
    pqxx::work txn(conn);  // the refused install left nothing behind
    CHECK(txn.exec1("SELECT to_regclass('cqrs.tombstone') IS NULL")[0].as<bool>());
  }

  ReplicaConfig many;
  many.models.push_back(
      model("author", "reads", "author", {{"title", "Title"}, {"rev", "cqrs_revision"}}));
  many.models.push_back(model("pair", "reads", "pair"));
  many.models.push_back(model("nokey", "reads", "nokey"));
  many.models.push_back(model("view", "reads", "v"));
  many.models.push_back(model("gone", "reads", "Gone"));
  ReplicaModel fn = model("fn", "reads", "author");
  fn.apply_function = "reads.apply_fn";
  many.models.push_back(fn);
  CHECK_THROWS_WITH_AS(
      install_replica(conn, many, true),
      "replica.model 'author' (\"reads\".\"author\"): column \"cqrs_revision\" missing; add it: "
      "ALTER TABLE \"reads\".\"author\" ADD COLUMN cqrs_revision integer NOT NULL DEFAULT 0\n"
      "replica.model 'author' (\"reads\".\"author\"): mapping.rev = \"cqrs_revision\": "
      "cqrs_revision always comes from the event's own key; remove this mapping\n"
      "replica.model 'author' (\"reads\".\"author\"): column \"Title\" missing (mapping.title = "
      "\"Title\"); add it or fix the mapping\n"
      "replica.model 'pair' (\"reads\".\"pair\"): has a composite primary key (\"a\", \"b\"); "
      "django-cqrs events carry one key value: use a single-column key\n"
      "replica.model 'pair' (\"reads\".\"pair\"): column \"cqrs_revision\" is text; it must be "
      "smallint, integer or bigint\n"
      "replica.model 'nokey' (\"reads\".\"nokey\"): has no primary key; rows are matched by it: "
      "add one, e.g. ALTER TABLE \"reads\".\"nokey\" ADD PRIMARY KEY (id)\n"
      "replica.model 'view' (\"reads\".\"v\"): is not a table (relkind 'v'); only tables and "
      "partitioned tables can be written\n"
      "replica.model 'gone' (\"reads\".\"Gone\"): table not found in the replica database; "
      "create it first or fix the model's table key (mixed case needs quotes: "
      "'public.\"Name\"')\n"
      "replica.model 'fn' (\"reads\".\"author\"): apply_function \"reads\".\"apply_fn\"(text, "
      "jsonb, jsonb, jsonb) not found; create it: CREATE FUNCTION \"reads\".\"apply_fn\"(signal "
      "text, data jsonb, previous_data jsonb, meta jsonb) RETURNS void ...",
      ConfigError);
}

TEST_CASE("every captured message, one at a time: rows equal the master's, types exact") {
  Replica r;
  const auto events = vector_events();
  REQUIRE(events.size() == 45);
  std::vector<RowResult> results;
  for (const auto& e : events)
    results.push_back(r.apply_one(e));

  CHECK(r.rows(kProductColumns) == kFinalProducts);
  CHECK(r.rows(kAuthorColumns) == kFinalAuthors);
  CHECK(r.rows(kTombstones) == kFinalTombstones);

  // the decisions, by `seq` (1-based) of messages.jsonl
  const auto result = [&](int seq) { return results.at(static_cast<std::size_t>(seq - 1)); };
  const auto revision = [&](int seq) {
    return events.at(static_cast<std::size_t>(seq - 1)).revision();
  };
  for (const int seq : {1, 2, 3, 4, 5, 6, 7, 8, 19, 20, 30, 31, 34})
    CHECK(result(seq).outcome == Outcome::kInserted);
  for (const int seq : {9, 10, 11, 12, 13, 14, 15, 16, 28, 29, 32, 33}) {
    CAPTURE(seq);
    CHECK(result(seq).outcome == Outcome::kUpdated);
  }
  for (const int seq : {35, 36, 37, 38, 39, 40})  // product 20's retries and dead letter
    CHECK(result(seq).outcome == Outcome::kSkippedDuplicate);
  for (const int seq : {17, 18, 41, 42, 43})
    CHECK(result(seq).outcome == Outcome::kDeleted);
  for (const int seq : {21, 22, 23, 24, 25, 26, 27, 44, 45}) {  // SYNC applies at equal revision
    CAPTURE(seq);
    CHECK(result(seq).outcome == Outcome::kUpdated);
    CHECK(result(seq).stored_revision == revision(seq));
    CHECK_FALSE(result(seq).downgrade);
  }
  CHECK(result(33).stored_revision == 2);  // product 2: revision 3 never came
  CHECK(result(33).lost == 1);
  CHECK(result(32).lost == 0);
  CHECK(result(43).stored_revision == 0);
}

TEST_CASE("every captured message in one batch: the same final state") {
  Replica r;
  Plan plan;
  const auto results = r.apply_batch(vector_events(), &plan);
  CHECK(plan.row_count() == 13);  // authors 1 2 3 4 10 11, products 1 2 3 4 6 7 20
  CHECK(plan.superseded.size() == 45 - 13);
  CHECK(r.rows(kProductColumns) == kFinalProducts);
  CHECK(r.rows(kAuthorColumns) == kFinalAuthors);
  CHECK(r.rows(kTombstones) == kFinalTombstones);
  for (const auto& res : results)
    CHECK(res.applied());
}

TEST_CASE("revision decisions: older, equal, gap, SYNC downgrade, deletes and tombstones") {
  Replica r;
  const auto name_rev = [&](int id) {
    const auto rows = r.rows("SELECT name, cqrs_revision::text FROM reads.author WHERE id = " +
                             std::to_string(id));
    return rows.empty() ? std::string("<none>") : rows[0][0] + "@" + rows[0][1];
  };

  CHECK(r.apply_one(author(1, 3, "three")).outcome == Outcome::kInserted);
  RowResult res = r.apply_one(author(1, 2, "two"));
  CHECK(res.outcome == Outcome::kSkippedOlder);
  CHECK(res.stored_revision == 3);
  res = r.apply_one(author(1, 3, "three again"));
  CHECK(res.outcome == Outcome::kSkippedDuplicate);
  CHECK(name_rev(1) == "three@3");

  res = r.apply_one(author(1, 6, "six"));  // 4 and 5 lost
  CHECK(res.outcome == Outcome::kUpdated);
  CHECK(res.stored_revision == 3);
  CHECK(res.lost == 2);
  res = r.apply_one(author(1, 7, "seven"));
  CHECK(res.lost == 0);

  res = r.apply_one(sync("author", 1, 1, {{"name", "synced down"}}));
  CHECK(res.outcome == Outcome::kUpdated);
  CHECK(res.downgrade);
  CHECK(res.stored_revision == 7);
  CHECK(name_rev(1) == "synced down@1");

  // DELETE, then the late SAVEs of revisions up to the DELETE's stay out
  res = r.apply_one(del("author", 1, 2));
  CHECK(res.outcome == Outcome::kDeleted);
  CHECK(res.stored_revision == 1);
  res = r.apply_one(author(1, 1, "late"));
  CHECK(res.outcome == Outcome::kSkippedDeleted);
  CHECK(res.tombstone_revision == 2);
  CHECK(r.apply_one(author(1, 2, "late too")).outcome == Outcome::kSkippedDeleted);
  CHECK(name_rev(1) == "<none>");
  // the master creates the key again: the new row starts at revision 0, written after the
  // DELETE, and comes back over the tombstone, which stays
  const auto at = [](const std::string& time, const std::string& name) {
    return Json{{"name", name}, {"cqrs_updated", time}};
  };
  res = r.apply_one(save("author", 1, 0, at("2026-11-22 10:05:00+00:00", "reborn")));
  CHECK(res.outcome == Outcome::kInserted);
  CHECK(res.recreated);
  CHECK(res.tombstone_revision == 2);
  CHECK(res.tombstone_updated == parse_timestamp(updated_at(2, true)));
  CHECK(name_rev(1) == "reborn@0");
  // a late SAVE of the deleted row (written before the DELETE) does not overwrite the new one
  res = r.apply_one(author(1, 1, "late again"));
  CHECK(res.outcome == Outcome::kSkippedDeleted);
  CHECK(name_rev(1) == "reborn@0");
  // the new row's own SAVEs apply as usual
  for (int rev = 1; rev <= 3; ++rev) {
    const std::string time = "2026-11-22 10:0" + std::to_string(5 + rev) + ":00+00:00";
    res = r.apply_one(save("author", 1, rev, at(time, "reborn " + std::to_string(rev))));
    CHECK(res.outcome == Outcome::kUpdated);
  }
  CHECK(name_rev(1) == "reborn 3@3");

  // a DELETE older than the row does not remove it; the tombstone keeps the highest revision
  res = r.apply_one(del("author", 1, 2));
  CHECK(res.outcome == Outcome::kSkippedOlder);
  CHECK(name_rev(1) == "reborn 3@3");
  CHECK(r.value("SELECT revision FROM cqrs.tombstone WHERE cqrs_id = 'author' AND pk = '1'") ==
        "2");
  CHECK(r.apply_one(del("author", 1, 9)).outcome == Outcome::kDeleted);
  CHECK(r.apply_one(del("author", 1, 4)).outcome == Outcome::kDeleteMissing);
  CHECK(r.value("SELECT revision FROM cqrs.tombstone WHERE cqrs_id = 'author' AND pk = '1'") ==
        "9");

  // a DELETE before any SAVE
  CHECK(r.apply_one(del("author", 2, 1)).outcome == Outcome::kDeleteMissing);
  CHECK(r.apply_one(author(2, 0, "first")).outcome == Outcome::kSkippedDeleted);

  // SYNC says the master has the row: it applies over a tombstone and clears it
  res = r.apply_one(sync("author", 1, 1, {{"name", "resynced"}}));
  CHECK(res.outcome == Outcome::kInserted);
  CHECK(res.tombstone_revision == 9);
  CHECK(name_rev(1) == "resynced@1");
  CHECK(r.value("SELECT count(*) FROM cqrs.tombstone WHERE cqrs_id = 'author' AND pk = '1'") ==
        "0");
  CHECK(r.apply_one(author(1, 2, "after sync")).outcome == Outcome::kUpdated);

  // duplicates in one batch: one row, the others superseded
  Plan plan;
  const auto results = r.apply_batch(
      {author(3, 0, "a"), author(3, 0, "a"), author(3, 1, "b"), author(3, 1, "b")}, &plan);
  REQUIRE(results.size() == 1);
  CHECK(results[0].outcome == Outcome::kInserted);
  CHECK(plan.superseded.size() == 3);
  CHECK(name_rev(3) == "b@1");

  // one call with two rows of the same key value: the statement keeps the newer one
  Row a = map_event(r.target("author"), author(4, 5, "five"), 1);
  Row b = map_event(r.target("author"), author(4, 4, "four"), 2);
  b.pk = "4";
  b.data["id"] = "4";
  b.pk_text = "four";  // as if a caller keyed them differently
  pqxx::work txn(r.conn);
  const std::vector<Row> both{a, b};
  const ApplyResult two = apply(txn, r.target("author"), both);
  txn.commit();
  CHECK(two.rows[0].outcome == Outcome::kInserted);
  CHECK(two.rows[1].outcome == Outcome::kSkippedSuperseded);
  CHECK(two.inserted == 1);
  CHECK(two.skipped == 1);
  CHECK(name_rev(4) == "five@5");
}

TEST_CASE("a key the master deletes and creates again (revision 0, later time) comes back") {
  Replica r;
  const auto state = [&](int id) {
    const auto rows = r.rows("SELECT name, cqrs_revision::text FROM reads.author WHERE id = " +
                             std::to_string(id));
    return rows.empty() ? std::string("<none>") : rows[0][0] + "@" + rows[0][1];
  };
  const auto tombstone = [&](int id) {
    const auto rows = r.rows(
        "SELECT revision::text, coalesce(updated::text, '<null>') FROM cqrs.tombstone WHERE "
        "cqrs_id = 'author' AND pk = '" +
        std::to_string(id) + "'");
    return rows.empty() ? std::string("<none>") : rows[0][0] + " " + rows[0][1];
  };
  const auto saved = [](int id, std::int64_t rev, const std::string& time,
                        const std::string& name) {
    return save("author", id, rev, {{"name", name}, {"cqrs_updated", time}});
  };
  const std::string t0 = "2026-11-22 10:00:00.999999+00:00";  // before the DELETE
  const std::string t1 = "2026-11-22 10:00:01+00:00";         // the DELETE
  const std::string t2 = "2026-11-22 10:00:01.000001+00:00";  // after it

  SUBCASE("separate batches") {
    for (int id : {1, 2, 3})
      r.apply_one(saved(id, 0, "2026-11-22 10:00:00+00:00", "old"));
    for (int id : {1, 2, 3})
      CHECK(r.apply_one(del("author", id, 1, t1)).outcome == Outcome::kDeleted);
    CHECK(tombstone(1) == "1 2026-11-22 10:00:01+00");

    RowResult res = r.apply_one(saved(1, 0, t2, "new"));  // created again after the delete
    CHECK(res.outcome == Outcome::kInserted);
    CHECK(res.recreated);
    CHECK(state(1) == "new@0");
    CHECK(tombstone(1) == "1 2026-11-22 10:00:01+00");  // kept: late SAVEs of the old row

    res = r.apply_one(saved(2, 0, t0, "late"));  // the old row's SAVE, delivered late
    CHECK(res.outcome == Outcome::kSkippedDeleted);
    CHECK_FALSE(res.recreated);
    CHECK(res.tombstone_updated == parse_timestamp(t1));
    CHECK(state(2) == "<none>");

    res = r.apply_one(saved(3, 0, t1, "replaced"));  // delete + insert in one transaction
    CHECK(res.outcome == Outcome::kInserted);
    CHECK(res.recreated);
    CHECK(state(3) == "replaced@0");

    // a late SAVE of the old row after the new one is in: stopped by the tombstone it kept
    CHECK(r.apply_one(saved(1, 0, t0, "late")).outcome == Outcome::kSkippedDeleted);
    CHECK(state(1) == "new@0");
    // the new row goes on as usual
    CHECK(r.apply_one(saved(1, 1, "2026-11-22 10:00:02+00:00", "new 1")).outcome ==
          Outcome::kUpdated);
    CHECK(state(1) == "new 1@1");
  }

  SUBCASE("one batch") {
    for (int id : {1, 2, 3, 4})
      r.apply_one(saved(id, 4, "2026-11-22 10:00:00+00:00", "old"));
    Plan plan;
    const auto results = r.apply_batch(
        {del("author", 1, 5, t1), saved(1, 0, t2, "new"),         // created again
         del("author", 2, 5, t1), saved(2, 0, t0, "late"),        // a late SAVE of the old row
         del("author", 3, 5, t1), saved(3, 0, t1, "replaced"),    // one master transaction
         saved(4, 0, t2, "too early"), del("author", 4, 5, t1)},  // the DELETE arrived last
        &plan);
    REQUIRE(results.size() == 6);
    CHECK(plan.superseded.size() == 2);  // 2's late SAVE, 4's SAVE
    CHECK(results[0].outcome == Outcome::kDeleted);
    CHECK(results[1].outcome == Outcome::kInserted);
    CHECK(results[1].recreated);
    CHECK(state(1) == "new@0");
    CHECK(state(2) == "<none>");
    CHECK(state(3) == "replaced@0");
    CHECK(state(4) == "<none>");
    CHECK(tombstone(1) == "5 2026-11-22 10:00:01+00");
    CHECK(tombstone(3) == "5 2026-11-22 10:00:01+00");
  }

  SUBCASE("the DELETE in an earlier batch, the old row's late SAVE and the new row's in one") {
    for (int id : {1, 2, 3})
      CHECK(r.apply_one(del("author", id, 5, t1)).outcome == Outcome::kDeleteMissing);
    r.apply_one(saved(3, 0, t2, "new"));  // 3 is back already
    Plan plan;
    const auto results =
        r.apply_batch({saved(1, 4, t0, "late"), saved(1, 0, t2, "new"), saved(2, 0, t2, "new"),
                       saved(2, 4, t0, "late"), saved(3, 4, t0, "late"),
                       saved(3, 1, "2026-11-22 10:00:02+00:00", "new 1")},
                      &plan);
    CHECK(plan.superseded.empty());
    REQUIRE(results.size() == 6);
    CHECK(results[0].outcome == Outcome::kSkippedDeleted);
    CHECK(results[1].outcome == Outcome::kInserted);
    CHECK(results[1].recreated);
    CHECK(state(1) == "new@0");
    CHECK(state(2) == "new@0");
    CHECK(state(3) == "new 1@1");
  }

  SUBCASE("times compare as instants, whatever their spelling") {
    CHECK(r.apply_one(del("author", 1, 3, "2026-11-22T10:00:00Z")).outcome ==
          Outcome::kDeleteMissing);
    CHECK(r.apply_one(del("author", 2, 3, "2026-11-22T10:00:00Z")).outcome ==
          Outcome::kDeleteMissing);
    // 09:30 UTC, though it sorts after the DELETE's text
    CHECK(r.apply_one(saved(1, 0, "2026-11-22T11:30:00+02:00", "early")).outcome ==
          Outcome::kSkippedDeleted);
    // 10:00:00.5 UTC, though it sorts before it
    CHECK(r.apply_one(saved(2, 0, "2026-11-22 09:00:00.5-01:00", "later")).outcome ==
          Outcome::kInserted);
    CHECK(state(1) == "<none>");
    CHECK(state(2) == "later@0");
  }

  SUBCASE("a tombstone without a time (written before migration 0002) keeps the revision rule") {
    CHECK(r.apply_one(del("author", 1, 3, t1)).outcome == Outcome::kDeleteMissing);
    r.sql("UPDATE cqrs.tombstone SET updated = NULL");
    RowResult res = r.apply_one(saved(1, 0, t2, "new"));
    CHECK(res.outcome == Outcome::kSkippedDeleted);
    CHECK_FALSE(res.tombstone_updated);
    CHECK(state(1) == "<none>");
    CHECK(r.apply_one(saved(1, 4, t2, "newer")).outcome == Outcome::kInserted);
    CHECK(state(1) == "newer@4");
    // a DELETE without cqrs_updated (not django-cqrs's) leaves none either
    Event bare = del("author", 2, 3);
    bare.instance_data.erase("cqrs_updated");
    CHECK(r.apply_one(bare).outcome == Outcome::kDeleteMissing);
    CHECK(tombstone(2) == "3 <null>");
    CHECK(r.apply_one(saved(2, 0, t2, "new")).outcome == Outcome::kSkippedDeleted);
    // a later DELETE with a time gives the tombstone one
    CHECK(r.apply_one(del("author", 2, 2, t1)).outcome == Outcome::kDeleteMissing);
    CHECK(tombstone(2) == "3 2026-11-22 10:00:01+00");
  }

  SUBCASE("deleted again: the tombstone keeps the highest revision and the latest time") {
    const std::string t3 = "2026-11-22 10:00:03+00:00";
    CHECK(r.apply_one(del("author", 1, 5, t1)).outcome == Outcome::kDeleteMissing);
    CHECK(r.apply_one(saved(1, 0, t2, "second")).outcome == Outcome::kInserted);
    CHECK(r.apply_one(del("author", 1, 1, t3)).outcome == Outcome::kDeleted);
    CHECK(tombstone(1) == "5 2026-11-22 10:00:03+00");
    // neither the first row's nor the second row's late SAVEs come back
    CHECK(r.apply_one(saved(1, 4, t0, "first, late")).outcome == Outcome::kSkippedDeleted);
    CHECK(r.apply_one(saved(1, 0, t2, "second, late")).outcome == Outcome::kSkippedDeleted);
    // a third row does
    CHECK(r.apply_one(saved(1, 0, "2026-11-22 10:00:04+00:00", "third")).outcome ==
          Outcome::kInserted);
    CHECK(state(1) == "third@0");
    // an older DELETE arriving late does not move the time back
    CHECK(r.apply_one(del("author", 7, 5, t3)).outcome == Outcome::kDeleteMissing);
    CHECK(r.apply_one(del("author", 7, 4, t1)).outcome == Outcome::kDeleteMissing);
    CHECK(tombstone(7) == "5 2026-11-22 10:00:03+00");
  }

  SUBCASE("bulk-load's guarded SAVE takes the same rule") {
    CHECK(r.apply_one(del("author", 1, 3, t1)).outcome == Outcome::kDeleteMissing);
    CHECK(r.apply_one(del("author", 2, 3, t1)).outcome == Outcome::kDeleteMissing);
    r.apply_one(del("author", 3, 3, t1));
    r.sql("UPDATE cqrs.tombstone SET updated = NULL WHERE pk = '3'");
    const Target& t = r.target("author");
    const std::vector<Row> rows{map_event(t, saved(1, 0, t2, "new"), 1),
                                map_event(t, saved(2, 0, t0, "late"), 2),
                                map_event(t, saved(3, 0, t2, "old tombstone"), 3)};
    pqxx::work txn(r.conn);
    const BulkSaveResult res = save_bulk(txn, t, rows);
    txn.commit();
    CHECK(res.inserted == 1);
    CHECK(res.skipped == 2);
    CHECK(r.rows("SELECT id::text, name FROM reads.author ORDER BY id") == Rows{{"1", "new"}});
  }
}

TEST_CASE("concurrent workers: a DELETE and an older SAVE of one key never bring the row back") {
  Replica r;
  const Target& t = r.target("author");
  pqxx::connection other(r.db.url());
  const std::vector<Row> deletes{map_event(t, del("author", 5, 1), 1)};
  const std::vector<Row> saves{map_event(t, author(5, 0, "late"), 2)};

  SUBCASE("with key locks (the default) the SAVE waits for the DELETE's commit") {
    pqxx::work a(r.conn);
    CHECK(apply(a, t, deletes).rows[0].outcome == Outcome::kDeleteMissing);
    std::atomic<bool> done{false};
    RowResult seen;
    std::thread b([&] {
      pqxx::work txn(other);
      seen = apply(txn, t, saves).rows[0];
      txn.commit();
      done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK_FALSE(done.load());  // blocked on the key lock
    a.commit();
    b.join();
    CHECK(seen.outcome == Outcome::kSkippedDeleted);
    CHECK(r.value("SELECT count(*) FROM reads.author WHERE id = 5") == "0");
  }
  SUBCASE("without them, the race this prevents") {
    const ApplyOptions unlocked{false};
    pqxx::work a(r.conn);
    CHECK(apply(a, t, deletes, unlocked).rows[0].outcome == Outcome::kDeleteMissing);
    {
      pqxx::work txn(other);  // does not see the uncommitted tombstone
      CHECK(apply(txn, t, saves, unlocked).rows[0].outcome == Outcome::kInserted);
      txn.commit();
    }
    a.commit();
    CHECK(r.value("SELECT count(*) FROM reads.author WHERE id = 5") == "1");
  }
}

TEST_CASE("a key missing from an event leaves its column as it was") {
  Replica r;
  r.apply_one(save("product", 1, 0, {{"name", "p"}, {"note", "kept"}, {"quantity", 5}}));
  r.apply_one(save("product", 1, 1, {{"name", "p1"}}));
  CHECK(r.rows("SELECT name, note, quantity::text FROM reads.product") ==
        Rows{{"p1", "kept", "5"}});
}

TEST_CASE("10,000 events over 1,000 rows, shuffled, in batches: the table is the newest state") {
  Replica r;
  // per row: revisions 0..9; every 10th row ends with a DELETE, the next with a SYNC, the
  // next has revision 3 replaced by a second copy of 6
  std::vector<Event> events;
  for (int id = 0; id < 1000; ++id) {
    for (int rev = 0; rev < 10; ++rev) {
      const int v = (id % 10 == 2 && rev == 3) ? 6 : rev;
      const std::string name = "row " + std::to_string(id) + " rev " + std::to_string(v);
      if (v == 9 && id % 10 == 0) {
        events.push_back(del("author", id, v));
      } else if (v == 9 && id % 10 == 1) {
        events.push_back(sync("author", id, v, {{"name", name}}));
      } else {
        events.push_back(author(id, v, name));
      }
    }
  }
  REQUIRE(events.size() == 10000);
  Rows expected;
  for (int id = 0; id < 1000; ++id) {
    if (id % 10 != 0)
      expected.push_back({std::to_string(id), "row " + std::to_string(id) + " rev 9", "9"});
  }
  std::sort(expected.begin(), expected.end());
  const char* const query =
      "SELECT id::text, name, cqrs_revision::text FROM reads.author ORDER BY id::text COLLATE "
      "\"C\"";

  for (const std::size_t batch_size : {std::size_t{500}, std::size_t{7}}) {
    CAPTURE(batch_size);
    r.sql("TRUNCATE reads.author; TRUNCATE cqrs.tombstone");
    std::mt19937 rng(static_cast<unsigned>(batch_size) * 7919u);
    std::shuffle(events.begin(), events.end(), rng);
    std::size_t written = 0;
    std::size_t superseded = 0;
    for (std::size_t i = 0; i < events.size(); i += batch_size) {
      const std::vector<Event> part(
          events.begin() + static_cast<std::ptrdiff_t>(i),
          events.begin() + static_cast<std::ptrdiff_t>(std::min(i + batch_size, events.size())));
      Plan plan;
      for (const auto& res : r.apply_batch(part, &plan))
        written += res.applied() ? 1U : 0U;
      superseded += plan.superseded.size();
    }
    CHECK(r.rows(query) == expected);
    CHECK(r.value("SELECT count(*) FROM cqrs.tombstone") == "100");
    MESSAGE("batch " << batch_size << ": " << written << " rows written, " << superseded
                     << " events superseded in their batch");
  }
}

TEST_CASE("a value that does not fit fails only its message, naming cqrs_id, pk, column, value") {
  Replica r;
  const Target& product = r.target("product");
  const Event bad = save("product", 7, 3, {{"name", "x"}, {"quantity", "abc"}});
  pqxx::work txn(r.conn);
  const std::vector<Row> one{map_event(product, bad, 1)};
  CHECK_THROWS_WITH_AS(
      apply(txn, product, one),
      "apply SAVE product pk=7 revision=3 to \"reads\".\"product\": column "
      "\"quantity\" value '\"abc\"': invalid input syntax for type bigint: \"abc\"",
      MessageError);
  // the transaction is still usable: a single row runs in a savepoint
  const std::vector<Row> good{map_event(product, save("product", 8, 0, {{"name", "ok"}}), 2)};
  CHECK(apply(txn, product, good).inserted == 1);

  const auto fails = [&](const Event& e) -> std::string {
    const std::vector<Row> rows{map_event(product, e, 3)};
    try {
      apply(txn, product, rows);
    } catch (const MessageError& err) {
      return err.what();
    }
    return "applied";
  };
  CHECK(fails(save("product", 9, 0, {{"name", "x"}, {"price", json::make_decimal("1e20")}})) ==
        "apply SAVE product pk=9 revision=0 to \"reads\".\"product\": column \"price\" value "
        "'1e20': numeric field overflow; A field with precision 12, scale 2 must round to an "
        "absolute value less than 10^10.");
  CHECK(fails(save("product", 9, 0, {{"name", std::string("nul\0x", 5)}})) ==
        "apply SAVE product pk=9 revision=0 to \"reads\".\"product\": column \"name\" value "
        "'\"nul\\u0000x\"': unsupported Unicode escape sequence; \\u0000 cannot be converted to "
        "text.");
  CHECK(fails(save("product", 9, 0, {{"name", nullptr}}))
            .starts_with("apply SAVE product pk=9 revision=0 to \"reads\".\"product\": null "
                         "value in column \"name\" of relation \"product\" violates not-null "
                         "constraint; Failing row contains (9, null, "));
  CHECK(fails(del("product", "seven", 3)) ==
        "apply DELETE product pk=seven revision=3 to \"reads\".\"product\": column \"id\" value "
        "'\"seven\"': invalid input syntax for type integer: \"seven\"");
  CHECK(fails(save("product", 9, 0, {{"name", std::string(201, 'n')}}))
            .find("column \"name\" value '\"nnnnn") != std::string::npos);
  txn.commit();
  CHECK(r.rows("SELECT id::text FROM reads.product") == Rows{{"8"}});

  // more rows: SqlError with the sqlstate, the transaction aborted
  {
    pqxx::work t2(r.conn);
    const std::vector<Row> two{map_event(product, bad, 1), good[0]};
    try {
      apply(t2, product, two);
      FAIL("applied");
    } catch (const pg::SqlError& e) {
      CHECK(e.sqlstate() == "22P02");
      CHECK(std::string(e.what()) ==
            "apply 2 rows of product to \"reads\".\"product\": invalid input syntax for type "
            "bigint: \"abc\"");
    }
  }
}

TEST_CASE("apply_isolating: the bad rows of a batch fail alone, the rest is applied") {
  Replica r;
  const Target& product = r.target("product");
  std::vector<Row> rows;
  for (int id = 0; id < 500; ++id) {
    Json fields = {{"name", std::string("p").append(std::to_string(id))}, {"quantity", id}};
    if (id == 100) fields["quantity"] = "abc";
    if (id == 377) fields["price"] = json::make_decimal("123456789012.5");
    if (id == 499) fields["name"] = nullptr;
    rows.push_back(
        map_event(product, save("product", id, 0, fields), static_cast<DeliveryRef>(id)));
  }
  pqxx::work txn(r.conn);
  const ApplyResult res = apply_isolating(txn, product, rows);
  txn.commit();
  CHECK(res.inserted == 497);
  CHECK(res.failed == 3);
  REQUIRE(res.rows.size() == 500);
  CHECK(res.rows[100].outcome == Outcome::kFailed);
  CHECK(res.rows[100].error ==
        "apply SAVE product pk=100 revision=0 to \"reads\".\"product\": column \"quantity\" "
        "value '\"abc\"': invalid input syntax for type bigint: \"abc\"");
  CHECK(res.rows[377].error.find("column \"price\" value '123456789012.5': numeric field "
                                 "overflow") != std::string::npos);
  CHECK(res.rows[499].error.find("null value in column \"name\"") != std::string::npos);
  CHECK(r.value("SELECT count(*) FROM reads.product") == "497");

  // an error that is not about data is not isolated
  r.sql("ALTER TABLE reads.product DROP COLUMN quantity");
  pqxx::work t2(r.conn);
  CHECK_THROWS_AS(apply_isolating(t2, product, rows), pg::SqlError);
}

TEST_CASE("UUID keys: canonical in tombstones, deletes by the text form django-cqrs sends") {
  ReplicaConfig c = vector_config();
  c.models.push_back(model("thing", "reads", "Thing", {{"id", "Key"}}));
  Replica r(c, R"sql(
CREATE TABLE reads."Thing" ("Key" uuid PRIMARY KEY, "Na""me" text, cqrs_revision bigint NOT NULL,
                            cqrs_updated timestamptz NOT NULL);
)sql");
  const std::string upper = "0419D87B-D477-44E4-82C4-310F56FAA3C7";
  const std::string lower = "0419d87b-d477-44e4-82c4-310f56faa3c7";
  CHECK(r.apply_one(save("thing", upper, 1, {{"Na\"me", "x"}})).outcome == Outcome::kInserted);
  CHECK(r.rows("SELECT \"Key\"::text, \"Na\"\"me\" FROM reads.\"Thing\"") == Rows{{lower, "x"}});
  CHECK(r.apply_one(del("thing", lower, 2)).outcome == Outcome::kDeleted);
  CHECK(r.rows(kTombstones) == Rows{{"thing", lower, "2"}});
  CHECK(r.apply_one(save("thing", upper, 2, {{"Na\"me", "late"}})).outcome ==
        Outcome::kSkippedDeleted);
}

TEST_CASE("apply_function models: one call per event, in order, mapped, false fails the row") {
  ReplicaConfig c = vector_config();
  ReplicaModel fn = model("author_fn", "reads", "author", {{"name", "title"}});
  fn.apply_function = "reads.apply_author";
  c.models.push_back(fn);
  Replica r(c, R"sql(
CREATE TABLE reads.calls (n serial PRIMARY KEY, signal text, data jsonb, previous jsonb, meta jsonb);
CREATE FUNCTION reads.apply_author(signal text, data jsonb, previous_data jsonb, meta jsonb)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF data->>'title' = 'reject' THEN RETURN false; END IF;
  IF data->>'title' = 'raise' THEN RAISE EXCEPTION 'cannot take %', data->>'id'; END IF;
  INSERT INTO reads.calls (signal, data, previous, meta) VALUES (signal, data, previous_data, meta);
  RETURN true;
END $$;
)sql");
  Event first = save("author_fn", 1, 0, {{"name", "one"}});
  first.previous_data = {{"name", nullptr}};
  first.meta = {{"origin", "test"}};
  const Event second = save("author_fn", 1, 1, {{"name", "uno"}});
  const Event gone = del("author_fn", 1, 2);
  const auto results = r.apply_batch({first, second, gone, first});
  REQUIRE(results.size() == 4);
  for (const auto& res : results)
    CHECK(res.outcome == Outcome::kCalled);
  CHECK(r.rows("SELECT signal, data->>'title', data->>'cqrs_revision', previous::text, "
               "meta::text FROM reads.calls ORDER BY n") ==
        Rows{{"SAVE", "one", "0", R"({"title": null})", R"({"origin": "test"})"},
             {"SAVE", "uno", "1", "<null>", "<null>"},
             {"DELETE", "<null>", "2", "<null>", "<null>"},
             {"SAVE", "one", "0", R"({"title": null})", R"({"origin": "test"})"}});

  const auto rejected = r.apply_batch({save("author_fn", 2, 0, {{"name", "reject"}}), second});
  CHECK(rejected[0].outcome == Outcome::kFailed);
  CHECK(rejected[0].error == "apply_function \"reads\".\"apply_author\" returned false");
  CHECK(rejected[1].outcome == Outcome::kCalled);

  pqxx::work txn(r.conn);
  const std::vector<Row> raise{
      map_event(r.target("author_fn"), save("author_fn", 3, 0, {{"name", "raise"}}), 1)};
  CHECK_THROWS_WITH_AS(apply(txn, r.target("author_fn"), raise),
                       "apply SAVE author_fn pk=3 revision=0 with apply_function "
                       "\"reads\".\"apply_author\": cannot take 3",
                       MessageError);
}

TEST_CASE("tombstones older than the TTL are pruned") {
  Replica r;
  r.apply_batch({del("author", 1, 1), del("author", 2, 1), del("product", 3, 1)});
  r.sql("UPDATE cqrs.tombstone SET deleted_at = now() - interval '2 hours' WHERE pk <> '2'");
  pqxx::work txn(r.conn);
  CHECK(prune_tombstones(txn, std::chrono::hours(3)) == 0);
  CHECK(prune_tombstones(txn, std::chrono::hours(1)) == 2);
  txn.commit();
  CHECK(r.rows(kTombstones) == Rows{{"author", "2", "1"}});
}

TEST_CASE("throughput: 100k product rows in batches of 500, decode to commit") {
  Replica r;
  constexpr int kRows = 100000;
  constexpr int kBatch = 500;
  const auto bodies = [](int revision) {
    std::vector<std::string> out;
    out.reserve(kRows);
    for (int id = 0; id < kRows; ++id) {
      Json data = {{"cqrs_revision", revision},
                   {"cqrs_updated", "2026-11-22 02:05:10.950444+00:00"},
                   {"id", id},
                   {"name", "Product " + std::to_string(id)},
                   {"description", "Line 1\nLine 2"},
                   {"price", json::make_decimal(std::to_string(id) + ".25")},
                   {"in_stock", id % 2 == 0},
                   {"released_at", "2026-11-21 02:05:10.935425+00:00"},
                   {"release_date", "2020-01-02"},
                   {"sku", "3eb13b90-4668-4257-bdd6-40fb06671ad1"},
                   {"attrs", {{"color", "green"}, {"tags", {"a", "b"}}}},
                   {"quantity", 9007199254740993LL - id},
                   {"weight", 22.321},
                   {"note", "note"},
                   {"discontinued_on", nullptr},
                   {"author", id % 100}};
      Json body = {{"signal_type", "SAVE"}, {"cqrs_id", "product"},
                   {"instance_data", data}, {"previous_data", nullptr},
                   {"instance_pk", id},     {"correlation_id", nullptr},
                   {"retries", 0},          {"expires", nullptr},
                   {"meta", Json::object()}};
      out.push_back(json::dump(body));
    }
    return out;
  };
  const Target& product = r.target("product");
  for (const int revision : {0, 1}) {
    const auto all = bodies(revision);
    std::chrono::duration<double> decoding{0};
    std::chrono::duration<double> applying{0};  // Batch (mapping), plan, apply, commit
    std::size_t written = 0;
    for (std::size_t i = 0; i < all.size(); i += kBatch) {
      auto t0 = Clock::now();
      std::vector<Event> events;
      events.reserve(kBatch);
      for (std::size_t j = i; j < i + kBatch; ++j)
        events.push_back(decode_event(all[j]));
      auto t1 = Clock::now();
      decoding += t1 - t0;
      Batch batch;
      for (std::size_t j = 0; j < kBatch; ++j)
        batch.add(product, std::move(events[j]), i + j);
      const Plan plan = batch.newest_per_row();
      pqxx::work txn(r.conn);
      for (const auto& g : plan.groups)
        written += apply(txn, *g.target, g.rows).rows.size();
      txn.commit();
      applying += Clock::now() - t1;
    }
    const auto rate = [&](std::chrono::duration<double> d) {
      return static_cast<long>(static_cast<double>(written) / d.count());
    };
    MESSAGE((revision == 0 ? "insert" : "update")
            << " 100k product rows, batches of 500: " << rate(applying)
            << " rows/s mapping to commit (" << applying.count() << " s); "
            << rate(applying + decoding) << " rows/s with decode_event ("
            << (applying + decoding).count() << " s)");
    CHECK(written == static_cast<std::size_t>(kRows));
    WARN_MESSAGE(rate(applying) >= 40000, "below the 40k rows/s goal");
  }
  CHECK(r.value("SELECT count(*) FROM reads.product WHERE cqrs_revision = 1") == "100000");
  CHECK(r.value("SELECT price::text FROM reads.product WHERE id = 99999") == "99999.25");
  CHECK(r.value("SELECT quantity::text FROM reads.product WHERE id = 0") == "9007199254740993");
}
