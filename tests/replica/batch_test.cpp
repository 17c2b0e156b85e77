// Mapping events to replica rows, and the newest event per row of a batch, without a server.
#include "replica/batch.hpp"

#include <fstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "common/error.hpp"
#include "common/json.hpp"
#include "common/timestamp.hpp"

using namespace pgcqrs;
using namespace pgcqrs::replica;
using json::Json;

namespace {

std::vector<std::string> vector_bodies() {
  std::ifstream in(std::string(PGCQRS_VECTORS_DIR) + "/messages.jsonl", std::ios::binary);
  REQUIRE(in.good());
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    out.push_back(nlohmann::json::parse(line).at("body_raw").get<std::string>());
  }
  return out;
}

Event vector_event(std::size_t seq) {  // 1-based, as `seq` in messages.jsonl
  static const std::vector<std::string> bodies = vector_bodies();
  DecodeOptions o;
  o.default_ttl = std::chrono::seconds(0);
  return decode_event(bodies.at(seq - 1), o);
}

Event event(const std::string& body) {
  return decode_event(body);
}

TableInfo table(std::string name, std::vector<std::string> columns, std::string key = "id") {
  TableInfo t;
  t.table = {"reads", std::move(name)};
  for (auto& c : columns)
    t.columns.push_back({std::move(c), "text", "text"});
  t.primary_key = std::move(key);
  return t;
}

// The replica of the vectors' product model, author -> author_id, without `description`.
Target product_target() {
  Target t;
  t.model.cqrs_id = "product";
  t.model.table = {"reads", "product"};
  t.model.mapping = {{"author", "author_id"}};
  t.table = table("product", {"id", "name", "price", "in_stock", "released_at", "release_date",
                              "sku", "attrs", "quantity", "weight", "note", "discontinued_on",
                              "author_id", "cqrs_revision", "cqrs_updated"});
  return t;
}

Target author_target() {
  Target t;
  t.model.cqrs_id = "author";
  t.model.table = {"reads", "author"};
  t.table = table("author", {"id", "name", "cqrs_revision", "cqrs_updated"});
  return t;
}

std::vector<std::string> keys_of(const Json& j) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items())
    keys.push_back(k);
  return keys;
}

Row row(Signal s, std::int64_t revision, DeliveryRef delivery, std::string pk = "1") {
  Row r;
  r.signal = s;
  r.pk = pk;
  r.pk_text = std::move(pk);
  r.revision = revision;
  r.delivery = delivery;
  return r;
}

}  // namespace

TEST_CASE("a SAVE maps to the table's columns, exact values kept, in column order") {
  const Target t = product_target();
  const Row r = map_event(t, vector_event(20), 42);
  CHECK(r.signal == Signal::kSave);
  CHECK(r.pk == 7);
  CHECK(r.pk_text == "7");
  CHECK(r.revision == 0);
  CHECK(r.delivery == 42);
  CHECK(keys_of(r.data) == std::vector<std::string>{"id", "name", "price", "in_stock",
                                                    "released_at", "release_date", "sku", "attrs",
                                                    "quantity", "weight", "note", "discontinued_on",
                                                    "author_id", "cqrs_revision", "cqrs_updated"});
  CHECK(r.columns == std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14});
  CHECK(json::dump(r.data.at("price")) == "9999999999.99");
  CHECK(json::dump(r.data.at("quantity")) == "9007199254740993");
  CHECK(json::dump(r.data.at("weight")) == "1e-7");
  CHECK(json::dump(r.data.at("attrs")) == R"([1,"two",{"3":4.0}])");
  CHECK(r.data.at("author_id") == 2);  // mapped from `author`
  CHECK(r.data.at("discontinued_on").is_null());
  CHECK_FALSE(r.data.contains("description"));  // not a replica column: dropped
  CHECK_FALSE(r.data.contains("author"));
  CHECK(r.previous_data.is_null());  // only kept for apply_function models
  CHECK(r.meta.is_null());
}

TEST_CASE("mapping: unmapped keys keep their name, unknown keys drop, the mapped field wins") {
  Target t = author_target();
  t.model.mapping = {{"title", "name"}};
  const Row r = map_event(
      t, event(R"({"signal_type":"SAVE","cqrs_id":"author","instance_pk":1,"instance_data":{
        "name":"unmapped loses","id":1,"extra":true,"title":"mapped wins",
        "cqrs_updated":"2024-01-01 00:00:00+00:00","cqrs_revision":3}})"));
  CHECK(
      json::dump(r.data) ==
      R"({"id":1,"name":"mapped wins","cqrs_revision":3,"cqrs_updated":"2024-01-01 00:00:00+00:00"})");
  CHECK(r.columns == std::vector<std::size_t>{0, 1, 2, 3});
}

TEST_CASE("mapping: an unmapped key named like a mapped column is kept without the mapped key") {
  Target t = author_target();
  t.model.mapping = {{"title", "name"}};
  const Row r = map_event(
      t, event(R"({"signal_type":"SAVE","cqrs_id":"author","instance_pk":1,"instance_data":{
        "name":"kept","id":1,"cqrs_updated":"2024-01-01 00:00:00+00:00","cqrs_revision":3}})"));
  CHECK(r.data.at("name") == "kept");
}

TEST_CASE("mapping: cqrs_revision and cqrs_updated always keep their names") {
  Target t = author_target();
  t.model.mapping = {{"cqrs_revision", "name"}, {"other", "cqrs_updated"}};
  const Row r = map_event(
      t, event(R"({"signal_type":"SYNC","cqrs_id":"author","instance_pk":1,"instance_data":{
        "id":1,"cqrs_updated":"2024-01-01 00:00:00+00:00","cqrs_revision":3,"other":"x"}})"));
  CHECK(json::dump(r.data) ==
        R"({"id":1,"cqrs_revision":3,"cqrs_updated":"2024-01-01 00:00:00+00:00"})");
  CHECK(r.signal == Signal::kSync);
}

TEST_CASE("a key missing from an event is left out, so the statement leaves it untouched") {
  const Row r =
      map_event(author_target(), event(R"({"signal_type":"SAVE","cqrs_id":"author","instance_pk":5,
        "instance_data":{"cqrs_revision":1,"cqrs_updated":"2024-01-01 00:00:00+00:00"}})"));
  // no `name`; the key comes from instance_pk
  CHECK(json::dump(r.data) ==
        R"({"id":5,"cqrs_revision":1,"cqrs_updated":"2024-01-01 00:00:00+00:00"})");
  CHECK(r.columns == std::vector<std::size_t>{0, 2, 3});
  CHECK(r.pk == 5);
}

TEST_CASE("the key comes from the mapped key column, else instance_pk") {
  Target t = author_target();
  t.table = table("author", {"code", "name", "cqrs_revision", "cqrs_updated"}, "code");
  t.model.mapping = {{"id", "code"}};
  const std::string data = R"("cqrs_revision":1,"cqrs_updated":"2024-01-01 00:00:00+00:00")";
  Row r = map_event(t, event(R"({"signal_type":"SAVE","cqrs_id":"author","instance_pk":"x",
        "instance_data":{"id":"abc",)" +
                             data + "}}"));
  CHECK(r.pk == "abc");
  CHECK(r.pk_text == "abc");
  r = map_event(t, event(R"({"signal_type":"SAVE","cqrs_id":"author","instance_pk":"x",
        "instance_data":{"id":null,)" +
                         data + "}}"));
  CHECK(r.pk == "x");
  CHECK(r.data.at("code") == "x");
  CHECK_THROWS_WITH_AS(
      map_event(t, event(R"({"signal_type":"SAVE","cqrs_id":"author","instance_pk":null,
        "instance_data":{)" +
                         data + "}}")),
      "SAVE author pk=null: no primary key: instance_data has no 'code' and instance_pk is null",
      MessageError);
}

TEST_CASE("SAVE and SYNC need an integer cqrs_revision and a cqrs_updated") {
  const Target t = author_target();
  CHECK_THROWS_WITH_AS(
      map_event(t, event(R"({"signal_type":"SAVE","cqrs_id":"author","instance_pk":7,
        "instance_data":{"id":7,"cqrs_updated":"2024-01-01 00:00:00+00:00"}})")),
      "SAVE author pk=7: instance_data: missing required key 'cqrs_revision'", MessageError);
  CHECK_THROWS_WITH_AS(
      map_event(t, event(R"({"signal_type":"SAVE","cqrs_id":"author","instance_pk":7,
        "instance_data":{"id":7,"cqrs_revision":"3","cqrs_updated":"x"}})")),
      R"(SAVE author pk=7: instance_data.cqrs_revision '"3"': not an integer)", MessageError);
  CHECK_THROWS_WITH_AS(
      map_event(t, event(R"({"signal_type":"SAVE","cqrs_id":"author","instance_pk":7,
        "instance_data":{"id":7,"cqrs_revision":1.5,"cqrs_updated":"x"}})")),
      R"(SAVE author pk=7: instance_data.cqrs_revision '1.5': not an integer)", MessageError);
  CHECK_THROWS_WITH_AS(
      map_event(t, event(R"({"signal_type":"SYNC","cqrs_id":"author","instance_pk":7,
        "instance_data":{"id":7,"cqrs_revision":3}})")),
      "SYNC author pk=7: instance_data: missing required key 'cqrs_updated'", MessageError);
}

TEST_CASE("a DELETE is keyed by instance_data.id, else instance_pk, whatever the key column") {
  Target t = author_target();
  t.table = table("author", {"code", "name", "cqrs_revision", "cqrs_updated"}, "code");
  const Row r = map_event(t, vector_event(41), 9);  // DELETE author 4, revision 2
  CHECK(r.signal == Signal::kDelete);
  CHECK(r.pk == 4);
  CHECK(r.pk_text == "4");
  CHECK(r.revision == 2);
  CHECK(r.data == vector_event(41).instance_data);
  CHECK(r.columns.empty());

  const Row uuid = map_event(t, event(R"({"signal_type":"DELETE","cqrs_id":"author",
      "instance_pk":"0419d87b-d477-44e4-82c4-310f56faa3c7","instance_data":{"cqrs_revision":4}})"));
  CHECK(uuid.pk_text == "0419d87b-d477-44e4-82c4-310f56faa3c7");
  CHECK(uuid.revision == 4);

  CHECK_THROWS_WITH_AS(
      map_event(t, event(R"({"signal_type":"DELETE","cqrs_id":"author","instance_pk":4,
        "instance_data":{"id":4}})")),
      "DELETE author pk=4: instance_data: missing required key 'cqrs_revision'", MessageError);
  CHECK_THROWS_WITH_AS(
      map_event(t, event(R"({"signal_type":"DELETE","cqrs_id":"author","instance_pk":null,
        "instance_data":{"cqrs_revision":2}})")),
      "DELETE author pk=null: no primary key: instance_data has no 'id' and instance_pk is null",
      MessageError);
}

TEST_CASE("apply_function models get instance_data and previous_data renamed, not filtered") {
  Target t = product_target();
  t.model.apply_function = "reads.apply_product";
  t.table = {};
  const Row r = map_event(t, vector_event(5), 1);
  CHECK(r.pk == 1);
  CHECK(r.data.at("author_id") == 1);
  CHECK_FALSE(r.data.contains("author"));
  CHECK(r.data.at("description") == "Line 1 of 1\nLine 2 \\ tab\t end");  // kept
  CHECK(r.data.size() == vector_event(5).instance_data.size());
  CHECK(r.columns.empty());
  CHECK(json::dump(r.previous_data) ==
        R"({"in_stock":null,"name":null,"price":null,"author_id":null})");
  CHECK(r.meta.at("origin") == "django-cqrs-peer-master");
}

TEST_CASE("supersedes: higher revision; then DELETE over SYNC over SAVE; then the later one") {
  CHECK(supersedes(row(Signal::kSave, 3, 2), row(Signal::kSave, 2, 1)));
  CHECK_FALSE(supersedes(row(Signal::kSave, 2, 2), row(Signal::kSave, 3, 1)));
  CHECK_FALSE(supersedes(row(Signal::kSync, 2, 2), row(Signal::kSave, 3, 1)));
  CHECK(supersedes(row(Signal::kSave, 2, 2), row(Signal::kSave, 2, 1)));  // redelivery
  CHECK(supersedes(row(Signal::kSync, 2, 2), row(Signal::kSave, 2, 1)));
  CHECK_FALSE(supersedes(row(Signal::kSave, 2, 2), row(Signal::kSync, 2, 1)));
  CHECK(supersedes(row(Signal::kDelete, 2, 2), row(Signal::kSave, 2, 1)));
  CHECK(supersedes(row(Signal::kDelete, 2, 2), row(Signal::kSync, 2, 1)));
  CHECK_FALSE(supersedes(row(Signal::kSave, 2, 2), row(Signal::kDelete, 2, 1)));
  CHECK_FALSE(supersedes(row(Signal::kDelete, 1, 2), row(Signal::kSave, 2, 1)));
  CHECK(supersedes(row(Signal::kSave, 3, 2), row(Signal::kDelete, 2, 1)));
}

TEST_CASE("newest_per_row keeps one row per key and lists the superseded deliveries") {
  const Target author = author_target();
  const Target product = product_target();
  Batch b;
  CHECK(b.empty());
  b.add(author, vector_event(1), 1);    // author 1 rev 0
  b.add(product, vector_event(5), 2);   // product 1 rev 0
  b.add(author, vector_event(9), 3);    // author 1 rev 1
  b.add(author, vector_event(2), 4);    // author 2 rev 0
  b.add(product, vector_event(13), 5);  // product 1 rev 1
  b.add(author, vector_event(18), 6);   // DELETE author 1 rev 2
  b.add(author, vector_event(1), 7);    // author 1 rev 0 again: older than the DELETE
  b.add(author, vector_event(10), 8);   // author 2 rev 1
  b.add(author, vector_event(21), 9);   // SYNC author 2 rev 1: beats the SAVE of rev 1
  b.add(author, vector_event(10), 10);  // SAVE author 2 rev 1 again: loses to the SYNC
  CHECK(b.size() == 10);

  const Plan p = b.newest_per_row();
  CHECK(b.empty());  // the rows moved into the plan
  REQUIRE(p.groups.size() == 2);
  CHECK(p.row_count() == 3);
  CHECK(p.groups[0].target == &author);
  REQUIRE(p.groups[0].rows.size() == 2);
  CHECK(p.groups[0].rows[0].pk_text == "1");
  CHECK(p.groups[0].rows[0].signal == Signal::kDelete);
  CHECK(p.groups[0].rows[0].delivery == 6);
  CHECK(p.groups[0].rows[1].pk_text == "2");
  CHECK(p.groups[0].rows[1].signal == Signal::kSync);
  CHECK(p.groups[0].rows[1].delivery == 9);
  CHECK(p.groups[1].target == &product);
  REQUIRE(p.groups[1].rows.size() == 1);
  CHECK(p.groups[1].rows[0].delivery == 5);
  CHECK(p.groups[1].rows[0].revision == 1);

  struct Lost {
    DeliveryRef delivery, by;
    std::string pk;
    std::int64_t revision;
    bool operator==(const Lost&) const = default;
  };
  std::vector<Lost> lost;
  for (const auto& s : p.superseded)
    lost.push_back({s.delivery, s.by, s.cqrs_id + ":" + s.pk, s.revision});
  CHECK(lost == std::vector<Lost>{{1, 3, "author:1", 0},
                                  {2, 5, "product:1", 0},
                                  {3, 6, "author:1", 1},
                                  {7, 6, "author:1", 0},
                                  {4, 8, "author:2", 0},
                                  {8, 9, "author:2", 1},
                                  {10, 9, "author:2", 1}});
  CHECK(p.superseded[3].signal == Signal::kSave);

  b.clear();
  CHECK(b.empty());
  CHECK(b.newest_per_row().groups.empty());
}

TEST_CASE("newest_per_row: the same key as number and as string is one row") {
  const Target t = author_target();
  Batch b;
  b.add(t, event(R"({"signal_type":"SAVE","cqrs_id":"author","instance_pk":"5",
      "instance_data":{"id":"5","cqrs_revision":2,"cqrs_updated":"x"}})"),
        1);
  b.add(t, event(R"({"signal_type":"SAVE","cqrs_id":"author","instance_pk":5,
      "instance_data":{"id":5,"cqrs_revision":1,"cqrs_updated":"x"}})"),
        2);
  const Plan p = b.newest_per_row();
  REQUIRE(p.row_count() == 1);
  CHECK(p.groups[0].rows[0].delivery == 1);
  REQUIRE(p.superseded.size() == 1);
  CHECK(p.superseded[0].delivery == 2);
}

TEST_CASE("newest_per_row keeps every event of an apply_function model, in order") {
  Target t = author_target();
  t.model.apply_function = "reads.apply_author";
  t.table = {};
  Batch b;
  b.add(t, vector_event(9), 1);  // author 1 rev 1
  b.add(t, vector_event(1), 2);  // author 1 rev 0
  b.add(t, vector_event(9), 3);
  const Plan p = b.newest_per_row();
  REQUIRE(p.row_count() == 3);
  CHECK(p.groups[0].rows[0].delivery == 1);
  CHECK(p.groups[0].rows[1].delivery == 2);
  CHECK(p.groups[0].rows[2].delivery == 3);
  CHECK(p.superseded.empty());
}

TEST_CASE("a bad event fails alone and leaves the batch as it was") {
  const Target t = author_target();
  Batch b;
  b.add(t, vector_event(1), 1);
  CHECK_THROWS_AS(b.add(t, event(R"({"signal_type":"SAVE","cqrs_id":"author","instance_pk":1,
      "instance_data":{"id":1}})"),
                        2),
                  MessageError);
  CHECK(b.size() == 1);
  CHECK(b.newest_per_row().row_count() == 1);
}

namespace {

// `r` with cqrs_updated `time` (wire format).
Row at(Row r, std::string_view time) {
  r.updated = parse_timestamp(time);
  return r;
}

constexpr std::string_view kT1 = "2026-11-22 02:05:11.439007+00:00";  // the DELETE
constexpr std::string_view kT2 = "2026-11-22T02:05:12.000001Z";       // after it
constexpr std::string_view kT0 = "2026-11-22 02:05:11.439006+00:00";  // 1 us before it

// `signal:delivery` of each row of the plan's only group, and `delivery>by` of each loser.
std::string show(const Plan& p) {
  std::string out;
  for (const auto& g : p.groups) {
    for (const auto& r : g.rows) {
      out.append(to_string(r.signal)).append(":").append(std::to_string(r.delivery)).append(" ");
    }
  }
  out += "|";
  for (const auto& s : p.superseded)
    out.append(" ").append(std::to_string(s.delivery)).append(">").append(std::to_string(s.by));
  return out;
}

Plan plan_of(std::vector<Row> rows, const Target& t) {
  Batch b;
  for (auto& r : rows)
    b.add(t, std::move(r));
  return b.newest_per_row();
}

}  // namespace

TEST_CASE("map_event parses cqrs_updated, a DELETE's too; an unreadable one is no time") {
  const Target t = author_target();
  const Row del = map_event(t, vector_event(18), 1);  // DELETE author 1
  REQUIRE(del.updated);
  CHECK(*del.updated == parse_timestamp("2026-11-22T02:05:11.439007Z"));
  const Row save = map_event(t, vector_event(9), 2);
  CHECK(save.updated == parse_timestamp("2026-11-22 02:05:11.061999+00:00"));
  const Row odd = map_event(t, event(R"({"signal_type":"SAVE","cqrs_id":"author","instance_pk":5,
      "instance_data":{"id":5,"cqrs_revision":1,"cqrs_updated":"yesterday"}})"),
                            3);
  CHECK_FALSE(odd.updated);
  const Row bare = map_event(t, event(R"({"signal_type":"DELETE","cqrs_id":"author",
      "instance_pk":5,"instance_data":{"id":5,"cqrs_revision":2}})"),
                             4);
  CHECK_FALSE(bare.updated);
}

TEST_CASE("recreates: the SAVE's cqrs_updated is not before the DELETE's; both must be known") {
  const Row del = at(row(Signal::kDelete, 5, 1), kT1);
  CHECK(recreates(at(row(Signal::kSave, 0, 2), kT2), del));
  CHECK(recreates(at(row(Signal::kSave, 0, 2), kT1), del));  // one master transaction
  CHECK(recreates(at(row(Signal::kSync, 0, 2), kT2), del));
  CHECK_FALSE(recreates(at(row(Signal::kSave, 0, 2), kT0), del));
  CHECK_FALSE(recreates(row(Signal::kSave, 0, 2), del));
  CHECK_FALSE(recreates(at(row(Signal::kSave, 0, 2), kT2), row(Signal::kDelete, 5, 1)));
}

TEST_CASE("newest_per_row: a key deleted and created again keeps the DELETE, then the SAVE") {
  const Target t = author_target();
  const Row del = at(row(Signal::kDelete, 5, 1), kT1);
  // re-created after the delete, or in the same master transaction: both rows, DELETE first
  CHECK(show(plan_of({del, at(row(Signal::kSave, 0, 2), kT2)}, t)) == "DELETE:1 SAVE:2 |");
  CHECK(show(plan_of({del, at(row(Signal::kSave, 0, 2), kT1)}, t)) == "DELETE:1 SAVE:2 |");
  CHECK(show(plan_of({del, at(row(Signal::kSync, 0, 2), kT2)}, t)) == "DELETE:1 SYNC:2 |");
  // a late SAVE of the deleted row (written before the DELETE) stays out, as before
  CHECK(show(plan_of({del, at(row(Signal::kSave, 3, 2), kT0)}, t)) == "DELETE:1 | 2>1");
  // no time on either side: the revision alone decides, as before
  CHECK(show(plan_of({row(Signal::kDelete, 5, 1), at(row(Signal::kSave, 0, 2), kT2)}, t)) ==
        "DELETE:1 | 2>1");
  CHECK(show(plan_of({del, row(Signal::kSave, 0, 2)}, t)) == "DELETE:1 | 2>1");
  // arrival order counts: a SAVE before the DELETE is deleted by it, whatever its time
  CHECK(show(plan_of({at(row(Signal::kSave, 0, 2), kT2), del}, t)) == "DELETE:1 | 2>1");
  // the new row's later SAVEs: the newest of them, after the DELETE
  CHECK(show(plan_of({at(row(Signal::kSave, 4, 7), kT0), del, at(row(Signal::kSave, 0, 2), kT2),
                      at(row(Signal::kSave, 1, 3), kT2), at(row(Signal::kSave, 0, 4), kT2)},
                     t)) == "DELETE:1 SAVE:3 | 7>1 2>3 4>3");
  // a revision above the DELETE's still makes the DELETE pointless
  CHECK(show(plan_of({del, at(row(Signal::kSave, 6, 2), kT0)}, t)) == "SAVE:2 | 1>2");
  // the re-created row deleted again in the same batch: one DELETE, with the latest time
  const Plan again = plan_of({del, at(row(Signal::kSave, 0, 2), kT2),
                              at(row(Signal::kDelete, 1, 3), "2026-11-22 02:05:13+00:00")},
                             t);
  CHECK(show(again) == "DELETE:1 | 3>1 2>1");
  CHECK(again.groups[0].rows[0].revision == 5);
  CHECK(again.groups[0].rows[0].updated == parse_timestamp("2026-11-22 02:05:13+00:00"));
  // ... and created once more after that
  CHECK(show(plan_of({del, at(row(Signal::kSave, 0, 2), kT2),
                      at(row(Signal::kDelete, 1, 3), "2026-11-22 02:05:13+00:00"),
                      at(row(Signal::kSave, 0, 4), "2026-11-22 02:05:13+00:00")},
                     t)) == "DELETE:1 SAVE:4 | 3>1 2>1");
  // other keys are not mixed in; each key keeps its first place
  CHECK(show(plan_of(
            {at(row(Signal::kSave, 0, 9, "9"), kT0), del, at(row(Signal::kSave, 0, 3), kT2)}, t)) ==
        "SAVE:9 DELETE:1 SAVE:3 |");
}

TEST_CASE("newest_per_row: a SAVE written after the newest one, with a lower revision, is kept") {
  const Target t = author_target();
  constexpr std::string_view kT3 = "2026-11-22 02:05:13+00:00";
  // a late SAVE of a deleted row (revision 19) and the new row's first SAVE, in either order:
  // both, the newest revision first; the database's tombstone decides
  CHECK(show(plan_of({at(row(Signal::kSave, 19, 1), kT0), at(row(Signal::kSave, 0, 2), kT2)}, t)) ==
        "SAVE:1 SAVE:2 |");
  CHECK(show(plan_of({at(row(Signal::kSave, 0, 2), kT2), at(row(Signal::kSave, 19, 1), kT0)}, t)) ==
        "SAVE:1 SAVE:2 |");
  // of several written later, the one written last
  CHECK(show(plan_of({at(row(Signal::kSave, 19, 1), kT0), at(row(Signal::kSave, 0, 2), kT2),
                      at(row(Signal::kSave, 1, 3), kT3)},
                     t)) == "SAVE:1 SAVE:3 | 2>3");
  // not written later (same time, or no time): the newest revision alone, as before
  CHECK(show(plan_of({at(row(Signal::kSave, 1, 1), kT2), at(row(Signal::kSave, 0, 2), kT2)}, t)) ==
        "SAVE:1 | 2>1");
  CHECK(show(plan_of({row(Signal::kSave, 1, 1), at(row(Signal::kSave, 0, 2), kT2)}, t)) ==
        "SAVE:1 | 2>1");
  CHECK(show(plan_of({at(row(Signal::kSave, 2, 1), kT0), at(row(Signal::kSave, 3, 2), kT2)}, t)) ==
        "SAVE:2 | 1>2");
  // a DELETE arriving after both deletes the one it is not older than
  CHECK(show(plan_of({at(row(Signal::kSave, 19, 1), kT0), at(row(Signal::kSave, 0, 2), kT2),
                      at(row(Signal::kDelete, 5, 3), kT3)},
                     t)) == "SAVE:1 | 2>3 3>1");
  CHECK(show(plan_of({at(row(Signal::kSave, 4, 1), kT0), at(row(Signal::kSave, 0, 2), kT2),
                      at(row(Signal::kDelete, 5, 3), kT3)},
                     t)) == "DELETE:3 | 1>3 2>3");
  // a SAVE above a DELETE's revision makes the DELETE pointless; one written later follows it
  CHECK(show(plan_of({at(row(Signal::kDelete, 20, 1), kT1), at(row(Signal::kSave, 21, 2), kT0),
                      at(row(Signal::kSave, 0, 3), kT2)},
                     t)) == "SAVE:2 SAVE:3 | 1>2");
}
