// cqrs_diff_replica's pure parts: the pairs lines it reads, line 1 it writes, Python's set repr.
#include <fstream>
#include <sstream>

#include <doctest/doctest.h>

#include "common/error.hpp"
#include "replica/diff.hpp"

using namespace pgcqrs;

namespace {
std::string vector_line(const std::string& file, int n) {
  std::ifstream in(std::string(PGCQRS_VECTORS_DIR) + "/diff/" + file);
  std::string line;
  for (int i = 0; i < n; ++i)
    std::getline(in, line);
  return line;
}
}  // namespace

TEST_CASE("django-cqrs's diff-master lines parse into keys, texts and revisions") {
  const auto p = replica::parse_pairs_line(vector_line("author_1_diff_master.out", 2));
  REQUIRE(p.keys.size() == 4);
  CHECK(p.key_texts == std::vector<std::string>{"3", "10", "11", "2"});
  CHECK(p.revisions == std::vector<std::int64_t>{1, 0, 0, 2});
  const auto q = replica::parse_pairs_line(R"([["a/b",7],[9007199254740993,0]])");
  CHECK(q.key_texts == std::vector<std::string>{"a/b", "9007199254740993"});
  CHECK(q.keys[0] == "a/b");
  CHECK(replica::parse_pairs_line("[]").keys.empty());
}

TEST_CASE("bad pairs lines say what is wrong") {
  CHECK_THROWS_WITH_AS(replica::parse_pairs_line("{}"),
                       "pairs: a JSON object, not an array of [pk, revision]", MessageError);
  CHECK_THROWS_WITH_AS(replica::parse_pairs_line("[[1,0],[2]]"),
                       "pair 2 [2]: not a [pk, revision] pair", MessageError);
  CHECK_THROWS_WITH_AS(replica::parse_pairs_line("[[1,1.5]]"),
                       "pair 1 [1,1.5]: the revision is not an integer", MessageError);
  CHECK_THROWS_WITH_AS(replica::parse_pairs_line("[[null,1]]"),
                       "pair 1 [null,1]: the primary key is not a number or string", MessageError);
  CHECK_THROWS_AS(replica::parse_pairs_line("[[1,0],"), MessageError);
  CHECK_THROWS_AS(replica::parse_pairs_line(""), MessageError);
}

TEST_CASE("line 1 echoes the master's line 1 with the queue") {
  CHECK(replica::diff_replica_header(vector_line("author_1_diff_master.out", 1) + "\r",
                                     "replica") == vector_line("author_2_diff_replica.out", 1));
}

TEST_CASE("keys print as Python prints a set of them") {
  CHECK("PK to resync: " + replica::python_set_repr({json::Json(3)}) ==
        vector_line("author_2_diff_replica.err", 1));
  CHECK(replica::python_set_repr({json::Json(1), json::Json(2), json::Json(30)}) == "{1, 2, 30}");
  CHECK(replica::python_set_repr({json::Json("a"), json::Json("it's"), json::Json("say \"x\"")}) ==
        R"({'a', "it's", 'say "x"'})");
  CHECK(replica::python_set_repr({json::Json("both ' \""), json::Json("a\\b\n")}) ==
        R"({'both \' "', 'a\\b\n'})");
  CHECK(replica::python_set_repr({json::Json("é\x01")}) == "{'é\\x01'}");
}
