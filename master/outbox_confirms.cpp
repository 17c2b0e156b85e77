#include "master/outbox_confirms.hpp"

#include <algorithm>

namespace pgcqrs::master {

void OutboxConfirms::published(std::uint64_t tag, std::int64_t id) {
  in_flight_.emplace(tag, id);
  ++unconfirmed_[id];
  known_.insert(id);
}

void OutboxConfirms::acked(std::uint64_t tag) {
  const auto it = in_flight_.find(tag);
  if (it == in_flight_.end()) return;
  const auto u = unconfirmed_.find(it->second);
  if (u != unconfirmed_.end() && --u->second == 0) {
    done_.push_back(it->second);
    unconfirmed_.erase(u);
  }
  in_flight_.erase(it);
}

std::vector<std::int64_t> OutboxConfirms::take_deletable() {
  std::vector<std::int64_t> out;
  if (unconfirmed_.empty()) {
    out.swap(done_);
  } else {
    const std::int64_t below = unconfirmed_.begin()->first;
    const auto held =
        std::partition(done_.begin(), done_.end(), [below](std::int64_t id) { return id < below; });
    out.assign(done_.begin(), held);
    done_.erase(done_.begin(), held);
  }
  for (const auto id : out)
    known_.erase(id);
  return out;
}

std::int64_t OutboxConfirms::first_in_flight_id() const {
  return in_flight_.empty() ? 0 : in_flight_.begin()->second;
}

std::int64_t OutboxConfirms::id_of(std::uint64_t tag) const {
  const auto it = in_flight_.find(tag);
  return it == in_flight_.end() ? 0 : it->second;
}

}  // namespace pgcqrs::master
