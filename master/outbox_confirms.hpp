// Which outbox rows the agent may delete, from the broker's confirms of their events.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <unordered_set>
#include <vector>

namespace pgcqrs::master {

// Outbox rows from their publish to their deletion. A row (a batch row has many events) is
// done when every one of its events is acked. A done row may be deleted only when no row with
// a lower id is still unconfirmed: a nacked or lost publish is published again from the
// outbox, and rows of higher ids that stayed there are published again after it (a newer
// event of the same row always has a higher id, docs/master.md), so the last copy of a row's
// events to reach the broker is its newest. Deleting a higher done row first would make the
// older event the last one, and a replica without tombstones would end with the older state.
// Pure: no I/O, unit-tested without a broker.
class OutboxConfirms {
 public:
  // An event of outbox row `id` went out with delivery tag `tag`.
  void published(std::uint64_t tag, std::int64_t id);
  // The broker acked `tag`; unknown tags (settled before a restart) are ignored.
  void acked(std::uint64_t tag);
  // The done rows below every unconfirmed one, in no order; they leave this tracker.
  std::vector<std::int64_t> take_deletable();

  // Published, not taken by take_deletable() yet: the rows a read must not publish again.
  [[nodiscard]] bool known(std::int64_t id) const { return known_.count(id) > 0; }
  // Events published and not acked (nacked ones included).
  [[nodiscard]] std::size_t in_flight() const { return in_flight_.size(); }
  // Done rows waiting for take_deletable() (some may be held back by a lower unconfirmed row).
  [[nodiscard]] std::size_t done() const { return done_.size(); }
  // The outbox id of the oldest unacked publish; 0 when none.
  [[nodiscard]] std::int64_t first_in_flight_id() const;
  // The outbox id of delivery tag `tag`; 0 when unknown.
  [[nodiscard]] std::int64_t id_of(std::uint64_t tag) const;

 private:
  std::map<std::uint64_t, std::int64_t> in_flight_;  // delivery tag -> outbox id
  std::map<std::int64_t, int> unconfirmed_;          // outbox id -> its events not acked yet
  std::vector<std::int64_t> done_;                   // every event acked
  std::unordered_set<std::int64_t> known_;           // published, not taken yet
};

}  // namespace pgcqrs::master
