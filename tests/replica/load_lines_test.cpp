// cqrs_bulk_load without a server: line 1, line parsing and mapping, --clear values, messages.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "common/error.hpp"
#include "common/json.hpp"
#include "replica/load.hpp"
#include "target_fixture.hpp"

using namespace pgcqrs;
using namespace pgcqrs::replica;

namespace {

// The replica of django-cqrs's test model `author` (id, name, publisher): no `books` column.
Target author_target() {
  return testing::make_target(
      "author", {"reads", "author"},
      testing::text_columns({"id", "name", "publisher_id", "cqrs_revision", "cqrs_updated"}),
      {{"publisher", "publisher_id"}});
}

// A model keyed by a uuid column named `Key`.
Target keyed_target() {
  return testing::make_target("thing", {"reads", "Thing"},
                              {{"Key", "uuid", "uuid"},
                               {"price", "numeric(12,2)", "numeric"},
                               {"cqrs_revision", "integer", "int4"},
                               {"cqrs_updated", "timestamp with time zone", "timestamptz"}},
                              {}, "Key");
}

}  // namespace

TEST_CASE("django-cqrs's load messages") {
  CHECK(file_missing_message("__init__1.py") == "File __init__1.py doesn't exist!");
  CHECK(file_empty_message("empty_file.dump") == "File empty_file.dump is empty!");
  CHECK(wrong_cqrs_id_message("publisher") == "Wrong CQRS ID: publisher!");
  CHECK(cant_parse_message(2) == "Dump file can't be parsed: line 2!");
  CHECK(cant_save_message(3) == "Instance can't be saved: line 3!");
  CHECK(unexpected_message(2, "boom") == "Unexpected error: line 2! boom");
  CHECK(loaded_message(2) == "Done!\n2 instance(s) loaded.");
  CHECK(kDeleteFailed == "Delete operation fails!");
}

TEST_CASE("line 1 is the cqrs_id, stripped; an empty file or blank line 1 is empty") {
  std::istringstream ok(" author \r\n{}");
  CHECK(read_cqrs_id(ok, "a.dump") == "author");
  std::string rest;
  CHECK(std::getline(ok, rest));
  CHECK(rest == "{}");
  std::istringstream empty("");
  CHECK_THROWS_WITH_AS(read_cqrs_id(empty, "empty_file.dump"), "File empty_file.dump is empty!",
                       CommandError);
  std::istringstream blank("  \nauthor\n");
  CHECK_THROWS_WITH_AS(read_cqrs_id(blank, "b.dump"), "File b.dump is empty!", CommandError);
}

TEST_CASE("strip is Python's str.strip for line whitespace") {
  CHECK(strip(" \t{\"a\": 1}\r\n") == "{\"a\": 1}");
  CHECK(strip("\v\f") == "");
  CHECK(strip("") == "");
  CHECK(strip("x") == "x");
}

TEST_CASE("--clear is a real boolean") {
  for (const char* yes : {"true", "True", "TRUE", "1", "yes", "Yes", "on", "t", "y", " true "}) {
    CAPTURE(yes);
    CHECK(parse_bool(yes) == std::optional<bool>(true));
  }
  for (const char* no : {"false", "False", "0", "no", "NO", "off", "f", "n"}) {
    CAPTURE(no);
    CHECK(parse_bool(no) == std::optional<bool>(false));
  }
  for (const char* bad : {"", "2", "truth", "nope", "-1", "0x1", "yes!"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_bool(bad).has_value());
  }
}

TEST_CASE("a good line maps to a SAVE row: renamed, extra keys dropped, its line as delivery") {
  const Target t = author_target();
  // django-cqrs's tests/test_commands/dumps/author.dump record
  const PreparedLine p = prepare_line(
      t,
      R"({"id": 1, "cqrs_revision": 0, "cqrs_updated": "2019-06-11 04:59:50.121773+00:00", "name": "n", "publisher": null, "books": []})"
      "\n",
      2);
  REQUIRE(p.row.has_value());
  CHECK(p.message.empty());
  CHECK(p.row->signal == Signal::kSave);
  CHECK(p.row->pk_text == "1");
  CHECK(p.row->revision == 0);
  CHECK(p.row->delivery == 2);
  CHECK(
      json::dump(p.row->data) ==
      R"({"id":1,"name":"n","publisher_id":null,"cqrs_revision":0,"cqrs_updated":"2019-06-11 04:59:50.121773+00:00"})");
}

TEST_CASE("exact values survive mapping: numeric digits, a uuid key not named id") {
  const PreparedLine p = prepare_line(
      keyed_target(),
      R"({"Key":"0419d87b-d477-44e4-82c4-310f56faa3c7","price":9999999999.90,"cqrs_revision":4,"cqrs_updated":"2024-01-01 00:00:00+00:00"})",
      7);
  REQUIRE(p.row.has_value());
  CHECK(p.row->pk_text == "0419d87b-d477-44e4-82c4-310f56faa3c7");
  CHECK(p.row->revision == 4);
  CHECK(json::dump(p.row->data).find("9999999999.90") != std::string::npos);
}

TEST_CASE("django-cqrs's bad lines: unparseable and a record without its primary key") {
  const Target t = author_target();
  // unparseable.dump: `{}{}`
  PreparedLine p = prepare_line(t, "{}{}", 2);
  CHECK_FALSE(p.row.has_value());
  CHECK(p.message == "Dump file can't be parsed: line 2!");
  CHECK_FALSE(p.reason.empty());
  // an empty line in the middle of a file
  p = prepare_line(t, "\r", 5);
  CHECK(p.message == "Dump file can't be parsed: line 5!");
  p = prepare_line(t, R"({"id": 1, "name": )", 9);
  CHECK(p.message == "Dump file can't be parsed: line 9!");
  // bad_master_data.dump: a record without `id`
  p = prepare_line(
      t, R"({"cqrs_revision": 0, "cqrs_updated": "2019-06-11 04:59:50+00:00", "name": "n"})", 3);
  CHECK_FALSE(p.row.has_value());
  CHECK(p.message == "Instance can't be saved: line 3!");
  CHECK(p.reason.find("no primary key") != std::string::npos);
  p = prepare_line(keyed_target(), R"({"id": 1, "cqrs_revision": 0, "cqrs_updated": "x"})", 4);
  CHECK(p.message == "Instance can't be saved: line 4!");
  CHECK(p.reason.find("'Key'") != std::string::npos);
}

TEST_CASE("JSON that is not a usable record cannot be saved") {
  const Target t = author_target();
  for (const char* line : {"[1, 2]", "5", "\"author\"", "null"}) {
    CAPTURE(line);
    const PreparedLine p = prepare_line(t, line, 4);
    CHECK_FALSE(p.row.has_value());
    CHECK(p.message == "Instance can't be saved: line 4!");
  }
  PreparedLine p = prepare_line(t, R"({"id": 1, "cqrs_revision": "3", "cqrs_updated": "x"})", 6);
  CHECK(p.message == "Instance can't be saved: line 6!");
  CHECK(p.reason.find("not an integer") != std::string::npos);
  p = prepare_line(t, R"({"id": 1, "cqrs_revision": 3})", 7);
  CHECK(p.message == "Instance can't be saved: line 7!");
  CHECK(p.reason.find("cqrs_updated") != std::string::npos);
}

TEST_CASE("hostile lines are refused, never a crash") {
  const Target t = author_target();
  const std::string deep(100000, '[');
  CHECK(prepare_line(t, deep, 2).message == "Dump file can't be parsed: line 2!");
  CHECK(prepare_line(t, std::string("{\"id\": \"\xff\"}"), 3).message ==
        "Dump file can't be parsed: line 3!");
  CHECK(prepare_line(t, std::string("\0", 1), 4).message == "Dump file can't be parsed: line 4!");
}

TEST_CASE("every line of django-cqrs's own dumps maps (vectors)") {
  const Target t =
      testing::make_target("product", {"reads", "product"},
                           testing::text_columns({"id", "name", "price", "attrs", "quantity",
                                                  "cqrs_revision", "cqrs_updated"}));
  std::ifstream in(std::string(PGCQRS_VECTORS_DIR) + "/product.dump", std::ios::binary);
  REQUIRE(in.good());
  CHECK(read_cqrs_id(in, "product.dump") == "product");
  std::uint64_t line_number = 1;
  std::vector<std::string> keys;
  for (std::string line; std::getline(in, line);) {
    const PreparedLine p = prepare_line(t, line, ++line_number);
    REQUIRE_MESSAGE(p.row.has_value(), p.reason);
    keys.push_back(p.row->pk_text);
    if (p.row->pk_text == "7") {
      CHECK(json::dump(p.row->data.at("price")) == "9999999999.99");
      CHECK(json::dump(p.row->data.at("quantity")) == "9007199254740993");
    }
  }
  CHECK(keys == std::vector<std::string>{"6", "7", "3", "2"});
}
