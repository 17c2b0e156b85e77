// deleted-diff-master's side of the line format (master/deleted.hpp; kept beside the replica's
// tests of the same format so both copies are checked against the same cases).
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "common/json.hpp"
#include "master/deleted.hpp"
#include "replica/deleted.hpp"

using namespace pgcqrs;

TEST_CASE("master header_cqrs_id and parse_pk_line agree with the replica's") {
  for (const char* line : {"author,2024-05-01 12:00:00+00:00", " product ,x,y", "", "x"}) {
    CHECK(master::header_cqrs_id(line) == replica::header_cqrs_id(line));
  }
  for (const char* line : {"[1,2,9]", "[\"a\",10.50]", "[]", "", "{}", "[1,null]", "[true]",
                           "[[1]]", "[1,", "nope", "[\"\xff\"]"}) {
    CAPTURE(line);
    const master::PkLine m = master::parse_pk_line(line);
    const replica::PkLine r = replica::parse_pk_line(line);
    CHECK(m.error == r.error);
    REQUIRE(m.pks.size() == r.pks.size());
    for (std::size_t i = 0; i < m.pks.size(); ++i)
      CHECK(json::dump(m.pks[i]) == json::dump(r.pks[i]));
  }
}

TEST_CASE("json_list and python_list: the chosen keys, in input order, as given") {
  const auto pks = master::parse_pk_line("[1,\"b/c\",3,10.50,\"it's\"]").pks;
  CHECK(master::json_list(pks, {0, 2}) == "[1,3]");
  CHECK(master::json_list(pks, {1, 3}) == "[\"b\\/c\",10.50]");
  CHECK(master::json_list(pks, {}) == "[]");
  CHECK(master::python_list(pks, {0, 2}) == "[1, 3]");
  CHECK(master::python_list(pks, {1, 4}) == "['b/c', \"it's\"]");
  CHECK_THROWS_AS((void)master::json_list(pks, {5}), std::out_of_range);
}
