// cqrs_diff_replica's pure parts: the pairs lines it reads, the lines it writes.
#include <fstream>
#include <sstream>

#include <doctest/doctest.h>

#include "common/error.hpp"
#include "common/resync_lines.hpp"
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

TEST_CASE("a differing key prints on stdout and stderr as django-cqrs printed it") {
  const auto p = replica::parse_pairs_line(vector_line("author_1_diff_master.out", 2));
  CHECK(resync::json_list(p.keys, {0}) == vector_line("author_2_diff_replica.out", 2));
  CHECK("PK to resync: " + resync::python_set(p.keys, {0}) ==
        vector_line("author_2_diff_replica.err", 1));
}
