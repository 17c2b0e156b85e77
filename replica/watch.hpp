// Watching events on the wire: a temporary queue bound to the exchange, bodies printed as they
// come.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/config.hpp"

namespace pgcqrs::replica {

struct WatchOptions {
  std::vector<std::string> cqrs_ids;          // routing keys to bind (broadcast keys)
  std::size_t count = 0;                      // stop after this many events; 0 = until stopped
  std::chrono::milliseconds idle_timeout{0};  // stop after this long without one; 0 = never
};

// Declares an exclusive, auto-deleted queue bound to the configured exchange for each cqrs_id
// (so it takes nothing away from real replicas), calls `ready` once bound, then `on_event`
// with each routing key and body. Returns the number of events seen.
std::size_t watch(
    const BrokerConfig& broker, const WatchOptions& options, const std::function<void()>& ready,
    const std::function<void(const std::string& routing_key, const std::string& body)>& on_event);

}  // namespace pgcqrs::replica
