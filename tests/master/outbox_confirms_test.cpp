// Which outbox rows the agent deletes after confirms: never one above a row still unconfirmed.
#include "master/outbox_confirms.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

#include <doctest/doctest.h>

using pgcqrs::master::OutboxConfirms;

namespace {

std::vector<std::int64_t> sorted(std::vector<std::int64_t> ids) {
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace

TEST_CASE("rows acked in order are all deletable, once") {
  OutboxConfirms c;
  c.published(1, 10);
  c.published(2, 11);
  c.published(3, 12);
  CHECK(c.in_flight() == 3);
  c.acked(1);
  c.acked(2);
  c.acked(3);
  CHECK(c.in_flight() == 0);
  CHECK(c.known(11));
  CHECK(sorted(c.take_deletable()) == std::vector<std::int64_t>{10, 11, 12});
  CHECK_FALSE(c.known(11));
  CHECK(c.take_deletable().empty());
}

TEST_CASE("an unconfirmed row holds back the done rows above it, not those below") {
  OutboxConfirms c;
  c.published(1, 10);
  c.published(2, 11);  // nacked, say: it stays unconfirmed and is published again
  c.published(3, 12);
  c.published(4, 13);
  c.acked(1);
  c.acked(3);
  c.acked(4);
  CHECK(c.take_deletable() == std::vector<std::int64_t>{10});
  CHECK(c.done() == 2);
  CHECK(c.known(12));  // still in the outbox: a read must not publish it again meanwhile
  CHECK(c.first_in_flight_id() == 11);
  c.acked(2);
  CHECK(sorted(c.take_deletable()) == std::vector<std::int64_t>{11, 12, 13});
  CHECK(c.first_in_flight_id() == 0);
}

TEST_CASE("a batch row is done when the last of its events is acked") {
  OutboxConfirms c;
  c.published(1, 20);
  c.published(2, 20);
  c.published(3, 20);
  c.published(4, 21);
  c.acked(1);
  c.acked(3);
  c.acked(4);
  CHECK(c.take_deletable().empty());  // 20 has an event unconfirmed; 21 is above it
  c.acked(2);
  CHECK(sorted(c.take_deletable()) == std::vector<std::int64_t>{20, 21});
}

TEST_CASE("a row committed late (lower id, published later) holds back the rows above it") {
  OutboxConfirms c;
  c.published(1, 30);
  c.acked(1);
  c.published(2, 25);  // late: its id is below the cursor
  c.published(3, 31);
  c.acked(3);
  CHECK(c.take_deletable().empty());  // 30 and 31 wait for 25
  CHECK(c.id_of(2) == 25);
  c.acked(2);
  CHECK(sorted(c.take_deletable()) == std::vector<std::int64_t>{25, 30, 31});
}

TEST_CASE("acks of unknown tags are ignored") {
  OutboxConfirms c;
  c.published(5, 40);
  c.acked(4);
  c.acked(99);
  CHECK(c.in_flight() == 1);
  CHECK(c.take_deletable().empty());
  CHECK(c.id_of(99) == 0);
}
