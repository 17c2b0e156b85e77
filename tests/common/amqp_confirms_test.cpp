// Publisher-confirm bookkeeping: tags 1..n, single and multiple acks/nacks, out of order.
#include <cstdint>
#include <vector>

#include <doctest/doctest.h>

#include "common/amqp/confirms.hpp"

using pgcqrs::amqp::Confirms;
using pgcqrs::amqp::ConfirmTracker;
using Tags = std::vector<std::uint64_t>;

namespace {

ConfirmTracker published(int n) {
  ConfirmTracker t;
  for (int i = 0; i < n; ++i)
    t.on_publish();
  return t;
}

}  // namespace

TEST_CASE("amqp confirms: tags count from 1 per channel") {
  ConfirmTracker t;
  CHECK(t.on_publish() == 1);
  CHECK(t.on_publish() == 2);
  CHECK(t.on_publish() == 3);
  CHECK(t.outstanding() == 3);
  CHECK(t.last_tag() == 3);
  t.reset();
  CHECK(t.outstanding() == 0);
  CHECK(t.on_publish() == 1);
}

TEST_CASE("amqp confirms: single acks in order") {
  ConfirmTracker t = published(3);
  Confirms c;
  t.on_ack(1, false, c);
  t.on_ack(2, false, c);
  CHECK(c.acked == Tags{1, 2});
  CHECK(c.nacked.empty());
  CHECK(t.outstanding_tags() == Tags{3});
}

TEST_CASE("amqp confirms: ack multiple settles every outstanding tag up to it") {
  ConfirmTracker t = published(1000);
  Confirms c;
  t.on_ack(500, true, c);
  CHECK(c.acked.size() == 500);
  CHECK(c.acked.front() == 1);
  CHECK(c.acked.back() == 500);
  CHECK(t.outstanding() == 500);
  t.on_ack(1000, true, c);
  CHECK(c.acked.size() == 1000);
  CHECK(t.outstanding() == 0);
  CHECK(t.unknown() == 0);
}

TEST_CASE("amqp confirms: out-of-order single acks, then a multiple ack skips settled tags") {
  ConfirmTracker t = published(6);
  Confirms c;
  t.on_ack(4, false, c);
  t.on_ack(2, false, c);
  CHECK(c.acked == Tags{2, 4});  // kept ascending
  t.on_ack(5, true, c);
  CHECK(c.acked == Tags{1, 2, 3, 4, 5});
  CHECK(t.outstanding_tags() == Tags{6});
}

TEST_CASE("amqp confirms: nacks, single and multiple, mixed with acks") {
  ConfirmTracker t = published(8);
  Confirms c;
  t.on_ack(2, false, c);
  t.on_nack(3, true, c);  // 1 and 3 (2 is already settled)
  t.on_nack(6, false, c);
  t.on_ack(8, true, c);  // 4, 5, 7, 8
  CHECK(c.acked == Tags{2, 4, 5, 7, 8});
  CHECK(c.nacked == Tags{1, 3, 6});
  CHECK(t.outstanding() == 0);
  CHECK(c.size() == 8);
}

TEST_CASE("amqp confirms: unknown and repeated tags are ignored and counted") {
  ConfirmTracker t = published(2);
  Confirms c;
  t.on_ack(1, false, c);
  t.on_ack(1, false, c);  // again
  t.on_ack(9, false, c);  // never published
  t.on_nack(1, true, c);  // multiple, but nothing outstanding <= 1
  CHECK(c.acked == Tags{1});
  CHECK(c.nacked.empty());
  CHECK(t.unknown() == 3);
  CHECK(t.outstanding_tags() == Tags{2});
}

TEST_CASE("amqp confirms: multiple with tag 0 settles everything outstanding") {
  ConfirmTracker t = published(3);
  Confirms c;
  t.on_ack(0, true, c);
  CHECK(c.acked == Tags{1, 2, 3});
  CHECK(t.outstanding() == 0);
}
