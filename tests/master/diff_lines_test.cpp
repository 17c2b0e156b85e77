// cqrs_diff_master / cqrs_diff_sync line formats: line 1, the queue of line 1 (None), key lines.
#include <doctest/doctest.h>

#include "common/error.hpp"
#include "common/timestamp.hpp"
#include "master/diff.hpp"

using namespace pgcqrs;

TEST_CASE("line 1 of diff-master is <cqrs_id>,<str(now)>") {
  CHECK(master::diff_header("author", parse_timestamp("2026-11-22 02:05:33.554550+00:00")) ==
        "author,2026-11-22 02:05:33.554550+00:00");
  // Python leaves the fraction out when the microseconds are 0
  CHECK(master::diff_header("product", parse_timestamp("2026-11-22T02:05:33Z")) ==
        "product,2026-11-22 02:05:33+00:00");
}

TEST_CASE("diff-sync's line 1: first field the cqrs_id, last the queue, None = broadcast") {
  auto t = master::parse_diff_sync_header("author,2026-11-22 02:05:33.554550+00:00,replica\n");
  CHECK(t.cqrs_id == "author");
  REQUIRE(t.queue.has_value());
  CHECK(*t.queue == "replica");
  t = master::parse_diff_sync_header("author,2026-11-22 02:05:33.554550+00:00,None\r\n");
  CHECK(t.cqrs_id == "author");
  CHECK_FALSE(t.queue.has_value());
  t = master::parse_diff_sync_header("author,x,y,q");
  CHECK(*t.queue == "q");
}

TEST_CASE("diff-sync's line 1 without a queue field is refused with what it expects") {
  CHECK_THROWS_WITH_AS(master::parse_diff_sync_header("author,2024-01-01 00:00:00+00:00"),
                       "line 1 'author,2024-01-01 00:00:00+00:00': expected "
                       "'<cqrs_id>,<time>,<queue>' (the first line of cqrs_diff_replica's output)",
                       CommandError);
  CHECK_THROWS_AS(master::parse_diff_sync_header("author"), CommandError);
  CHECK_THROWS_AS(master::parse_diff_sync_header(""), CommandError);
}

TEST_CASE("key lines are JSON arrays of numbers or strings") {
  CHECK(master::parse_key_line("[3]") == json::parse("[3]"));
  CHECK(master::parse_key_line(" [\"a\", 2]\r") == json::parse(R"(["a",2])"));
  CHECK(master::parse_key_line("[]").empty());
  CHECK_THROWS_WITH_AS(master::parse_key_line("{\"a\": 1}"),
                       "primary keys: a JSON object, not an array", MessageError);
  CHECK_THROWS_WITH_AS(master::parse_key_line("[null]"), "primary key null: not a number or string",
                       MessageError);
  CHECK_THROWS_WITH_AS(master::parse_key_line("[[1]]"), "primary key [1]: not a number or string",
                       MessageError);
  CHECK_THROWS_AS(master::parse_key_line("[1"), MessageError);
  CHECK_THROWS_AS(master::parse_key_line("[1] x"), MessageError);
}
