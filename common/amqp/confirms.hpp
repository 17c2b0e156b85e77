// Publisher-confirm bookkeeping: delivery tags of one channel, settled by basic.ack/basic.nack.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <vector>

namespace pgcqrs::amqp {

// Tags settled since the last take: each in ascending order, each tag in at most one list.
struct Confirms {
  std::vector<std::uint64_t> acked;   // the broker took responsibility for these messages
  std::vector<std::uint64_t> nacked;  // the broker lost them: publish again
  [[nodiscard]] bool empty() const noexcept { return acked.empty() && nacked.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return acked.size() + nacked.size(); }
};

// Delivery tags of a channel in confirm mode. rabbitmq-c 0.11 counts nothing: the broker
// numbers the publishes of a channel 1, 2, 3, ... from confirm.select on, and acks or nacks
// them singly or `multiple` (every outstanding tag <= the given one), in any order. Pure: no
// I/O, unit-tested without a broker.
class ConfirmTracker {
 public:
  // Starts over at tag 1 with nothing outstanding (after confirm.select on a new channel).
  void reset() noexcept;
  // Records one publish and returns its delivery tag.
  std::uint64_t on_publish();
  // Settles `tag` (or every outstanding tag <= `tag` when `multiple`) into `out`. Tags not
  // outstanding (never published, already settled) are ignored and counted in unknown().
  void on_ack(std::uint64_t tag, bool multiple, Confirms& out);
  void on_nack(std::uint64_t tag, bool multiple, Confirms& out);

  [[nodiscard]] std::size_t outstanding() const noexcept { return outstanding_.size(); }
  [[nodiscard]] std::vector<std::uint64_t> outstanding_tags() const;
  [[nodiscard]] std::uint64_t last_tag() const noexcept { return next_tag_ - 1; }
  [[nodiscard]] std::uint64_t unknown() const noexcept { return unknown_; }

 private:
  void settle(std::uint64_t tag, bool multiple, std::vector<std::uint64_t>& into);

  std::uint64_t next_tag_ = 1;
  std::set<std::uint64_t> outstanding_;
  std::uint64_t unknown_ = 0;
};

}  // namespace pgcqrs::amqp
