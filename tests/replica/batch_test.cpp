// Mapping events to replica rows, and the newest event per row of a batch, without a server.
#include "replica/batch.hpp"

#include <fstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "common/error.hpp"
#include "common/json.hpp"

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
