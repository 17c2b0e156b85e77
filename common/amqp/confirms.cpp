// Publisher-confirm bookkeeping: outstanding delivery tags, settled singly or `multiple`.
#include "common/amqp/confirms.hpp"

#include <algorithm>

namespace pgcqrs::amqp {

void ConfirmTracker::reset() noexcept {
  next_tag_ = 1;
  outstanding_.clear();
}

std::uint64_t ConfirmTracker::on_publish() {
  const std::uint64_t tag = next_tag_;
  outstanding_.insert(outstanding_.end(), tag);
  ++next_tag_;
  return tag;
}

void ConfirmTracker::on_ack(std::uint64_t tag, bool multiple, Confirms& out) {
  settle(tag, multiple, out.acked);
}

void ConfirmTracker::on_nack(std::uint64_t tag, bool multiple, Confirms& out) {
  settle(tag, multiple, out.nacked);
}

void ConfirmTracker::settle(std::uint64_t tag, bool multiple, std::vector<std::uint64_t>& into) {
  const auto begin_size = into.size();
  if (multiple) {
    // tag 0 with multiple means "everything so far" (AMQP 0-9-1 basic.ack)
    const auto end = tag == 0 ? outstanding_.end() : outstanding_.upper_bound(tag);
    into.insert(into.end(), outstanding_.begin(), end);
    outstanding_.erase(outstanding_.begin(), end);
    if (into.size() == begin_size) ++unknown_;
  } else if (outstanding_.erase(tag) == 1) {
    into.push_back(tag);
  } else {
    ++unknown_;
  }
  // keep each list ascending even when single acks arrive out of order
  if (begin_size > 0 && into.size() > begin_size && into[begin_size - 1] > into[begin_size]) {
    std::sort(into.begin(), into.end());
  }
}

std::vector<std::uint64_t> ConfirmTracker::outstanding_tags() const {
  return {outstanding_.begin(), outstanding_.end()};
}

}  // namespace pgcqrs::amqp
