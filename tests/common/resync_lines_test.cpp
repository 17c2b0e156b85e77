// The resync pipelines' line format: line 1, pk lines, key text, JSON and Python reprs.
#include "common/resync_lines.hpp"

#include <stdexcept>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "common/json.hpp"

using namespace pgcqrs;
using namespace pgcqrs::resync;

namespace {

std::vector<std::size_t> all_of(const std::vector<json::Json>& keys) {
  std::vector<std::size_t> positions;
  for (std::size_t i = 0; i < keys.size(); ++i)
    positions.push_back(i);
  return positions;
}

std::vector<json::Json> keys_of(const char* line) {
  PkLine l = parse_pk_line(line);
  REQUIRE(l.error.empty());
  return l.pks;
}

}  // namespace

TEST_CASE("trim_line drops ASCII white space and a terminal's carriage return") {
  CHECK(trim_line("  [1]\r\n") == "[1]");
  CHECK(trim_line("\t\v\f[1, 2]\n") == "[1, 2]");
  CHECK(trim_line("\t\n").empty());
  CHECK(trim_line("").empty());
  CHECK(trim_line("\xc2\xa0x\xc2\xa0") == "\xc2\xa0x\xc2\xa0");  // not Unicode space
}

TEST_CASE("header_cqrs_id: the text before the first comma, as django-cqrs splits line 1") {
  CHECK(header_cqrs_id("author,2024-05-01 12:00:00.370173+00:00") == "author");
  CHECK(header_cqrs_id("product,2024-05-01 12:00:00+00:00,replica\r\n") == "product");
  CHECK(header_cqrs_id("  author  ,x") == "author");
  CHECK(header_cqrs_id("author") == "author");
  CHECK(header_cqrs_id("") == "");
  CHECK(header_cqrs_id(",2024") == "");
}

TEST_CASE("parse_pk_line: integer, decimal and string keys, kept as given") {
  PkLine l = parse_pk_line("[1,2,9]");
  REQUIRE(l.error.empty());
  REQUIRE(l.pks.size() == 3);
  CHECK(json::dump(l.pks[2]) == "9");

  l = parse_pk_line("  [\"0419d87b-d477-44e4-82c4-310f56faa3c7\", \"a\\/b\"]\r\n");
  REQUIRE(l.error.empty());
  CHECK(key_text(l.pks[0]) == "0419d87b-d477-44e4-82c4-310f56faa3c7");
  CHECK(key_text(l.pks[1]) == "a/b");

  l = parse_pk_line("[9007199254740993,10.50,-5]");
  REQUIRE(l.error.empty());
  CHECK(key_text(l.pks[0]) == "9007199254740993");
  CHECK(key_text(l.pks[1]) == "10.50");
  CHECK(key_text(l.pks[2]) == "-5");

  l = parse_pk_line("[]");
  CHECK(l.error.empty());
  CHECK(l.pks.empty());
}

TEST_CASE("parse_pk_line: malformed lines say why, never throw") {
  CHECK(parse_pk_line("").error == "empty line: expected a JSON array of primary keys");
  CHECK(parse_pk_line(" \r\n").error == "empty line: expected a JSON array of primary keys");
  CHECK(parse_pk_line("{\"id\": 1}").error == "not a JSON array of primary keys: a JSON object");
  CHECK(parse_pk_line("42").error == "not a JSON array of primary keys: a JSON integer");
  CHECK(parse_pk_line("[1,2").error.rfind("not a JSON array of primary keys: JSON: ", 0) == 0);
  CHECK(parse_pk_line("[1,2]]").error.rfind("not a JSON array of primary keys: JSON: ", 0) == 0);
  CHECK(parse_pk_line("author,2024-05-01").error.rfind("not a JSON array", 0) == 0);
  CHECK(parse_pk_line("[1,null,3]").error ==
        "element 2 is null (null): a primary key is a number or a string");
  CHECK(parse_pk_line("[true]").error ==
        "element 1 is a JSON boolean (true): a primary key is a number or a string");
  CHECK(parse_pk_line("[1,[2]]").error ==
        "element 2 is a JSON array ([2]): a primary key is a number or a string");
  CHECK(parse_pk_line("[{\"a\":1}]").error ==
        "element 1 is a JSON object ({\"a\":1}): a primary key is a number or a string");
  // the bad element quoted in 40 characters at most
  CHECK(parse_pk_line("[1,{\"k\":\"" + std::string(100, 'y') + "\"}]").error ==
        "element 2 is a JSON object ({\"k\":\"" + std::string(34, 'y') +
            "...): a primary key is a number or a string");
  // a failed line keeps none of its keys
  CHECK(parse_pk_line("[1,2,null]").pks.empty());
  // hostile: deep nesting and invalid UTF-8 are refused by the bounded parser
  CHECK_FALSE(parse_pk_line(std::string(100000, '[')).error.empty());
  CHECK_FALSE(parse_pk_line("[\"\xff\"]").error.empty());
}

TEST_CASE("json_list: the chosen keys in the given order, written as ujson writes them") {
  const auto pks = keys_of("[1,\"b/c\",3,10.50,\"it's\",\"caf\\u00e9\"]");
  CHECK(json_list(pks, {0, 2}) == "[1,3]");
  CHECK(json_list(pks, {1, 3}) == "[\"b\\/c\",10.50]");
  CHECK(json_list(pks, {5, 0}) == "[\"caf\\u00e9\",1]");
  CHECK(json_list(pks, {}) == "[]");
  CHECK_THROWS_AS((void)json_list(pks, {6}), std::out_of_range);
}

TEST_CASE("python_list: django-cqrs's `PK to delete:` repr") {
  auto pks = keys_of("[1,2,9]");
  CHECK(python_list(pks, all_of(pks)) == "[1, 2, 9]");
  CHECK(python_list(pks, {}) == "[]");
  pks = keys_of("[\"a\",\"it's\",\"q\\\"'\",\"t\\tb\\\\\"]");
  CHECK(python_list(pks, all_of(pks)) == "['a', \"it's\", 'q\"\\'', 't\\tb\\\\']");
  pks = keys_of("[\"\\u0001\",\"\\r\\n\",\"\\u007f\",\"\\u00e9\"]");
  CHECK(python_list(pks, all_of(pks)) == "['\\x01', '\\r\\n', '\\x7f', '\xc3\xa9']");
  pks = keys_of("[1,\"b/c\",3,10.50,\"it's\"]");
  CHECK(python_list(pks, {0, 2}) == "[1, 3]");
  CHECK(python_list(pks, {1, 4}) == "['b/c', \"it's\"]");
  CHECK(python_list(pks, {3}) == "[10.50]");
  CHECK_THROWS_AS((void)python_list(pks, {5}), std::out_of_range);
}

TEST_CASE("python_set: django-cqrs's `PK to resync:` repr, in the order given") {
  const std::vector<json::Json> ints{json::Json(1), json::Json(2), json::Json(30)};
  CHECK(python_set(ints, {0, 1, 2}) == "{1, 2, 30}");
  CHECK(python_set(ints, {2, 0}) == "{30, 1}");
  CHECK(python_set({json::Json("a"), json::Json("it's"), json::Json("say \"x\"")}, {0, 1, 2}) ==
        R"({'a', "it's", 'say "x"'})");
  CHECK(python_set({json::Json("both ' \""), json::Json("a\\b\n")}, {0, 1}) ==
        R"({'both \' "', 'a\\b\n'})");
  CHECK(python_set({json::Json("é\x01")}, {0}) == "{'é\\x01'}");
  CHECK_THROWS_AS((void)python_set(ints, {3}), std::out_of_range);
}
