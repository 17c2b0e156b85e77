// The deleted-rows pipeline's line format: line 1, pk arrays in and out, Python list repr.
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "common/json.hpp"
#include "replica/deleted.hpp"

using namespace pgcqrs;
using namespace pgcqrs::replica;

namespace {

std::string array_of(const std::vector<std::string>& texts, bool numeric) {
  std::string a = "[";
  for (const auto& t : texts)
    append_pk(a, t, numeric);
  return a + "]";
}

}  // namespace

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
  CHECK(pk_text(l.pks[0]) == "0419d87b-d477-44e4-82c4-310f56faa3c7");
  CHECK(pk_text(l.pks[1]) == "a/b");

  l = parse_pk_line("[9007199254740993,10.50]");
  REQUIRE(l.error.empty());
  CHECK(pk_text(l.pks[0]) == "9007199254740993");
  CHECK(pk_text(l.pks[1]) == "10.50");

  l = parse_pk_line("[]");
  CHECK(l.error.empty());
  CHECK(l.pks.empty());
}

TEST_CASE("parse_pk_line: malformed lines say why, never throw") {
  CHECK(parse_pk_line("").error == "empty line: expected a JSON array of primary keys");
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
  // hostile: deep nesting and invalid UTF-8 are refused by the bounded parser
  CHECK_FALSE(parse_pk_line(std::string(100000, '[')).error.empty());
  CHECK_FALSE(parse_pk_line("[\"\xff\"]").error.empty());
}

TEST_CASE("append_pk: numbers bare, everything else as a ujson string") {
  CHECK(array_of({"1", "2", "9"}, true) == "[1,2,9]");
  CHECK(array_of({"-5", "10.50", "1e+20"}, true) == "[-5,10.50,1e+20]");
  CHECK(array_of({}, true) == "[]");
  // numeric text PostgreSQL may give that is no JSON number
  CHECK(array_of({"NaN", "Infinity", "01"}, true) == "[\"NaN\",\"Infinity\",\"01\"]");
  CHECK(array_of({"0419d87b-d477-44e4-82c4-310f56faa3c7"}, false) ==
        "[\"0419d87b-d477-44e4-82c4-310f56faa3c7\"]");
  CHECK(array_of({"a/b", "caf\xc3\xa9", "q\"\\", "12"}, false) ==
        "[\"a\\/b\",\"caf\\u00e9\",\"q\\\"\\\\\",\"12\"]");
}

TEST_CASE("python_list: django-cqrs's stderr repr") {
  CHECK(python_list(parse_pk_line("[1,2,9]").pks) == "[1, 2, 9]");
  CHECK(python_list(parse_pk_line("[]").pks) == "[]");
  CHECK(python_list(parse_pk_line("[\"a\",\"it's\",\"q\\\"'\",\"t\\tb\\\\\"]").pks) ==
        "['a', \"it's\", 'q\"\\'', 't\\tb\\\\']");
  CHECK(python_list(parse_pk_line("[\"\\u0001\"]").pks) == "['\\x01']");
}
