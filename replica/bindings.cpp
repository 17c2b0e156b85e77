// Replica bindings: the two keys per cqrs_id on the work queue, one on the dead-letter queue.
#include "replica/bindings.hpp"

#include <algorithm>

#include "common/topology.hpp"

namespace pgcqrs::replica {

std::vector<Binding> replica_bindings(const std::string& queue,
                                      const std::string& dead_letter_queue,
                                      const std::vector<std::string>& cqrs_ids) {
  std::vector<std::string> ids = cqrs_ids;
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::vector<Binding> out;
  out.reserve(ids.size() * 3);
  for (const auto& id : ids) {
    out.push_back({queue, topology::broadcast_key(id)});
    out.push_back({queue, topology::queue_key(queue, id)});
    out.push_back({dead_letter_queue, topology::queue_key(dead_letter_queue, id)});
  }
  return out;
}

}  // namespace pgcqrs::replica
