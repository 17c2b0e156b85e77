// The queues and bindings a replica declares for its cqrs_ids (spec: broker topology).
#pragma once

#include <string>
#include <vector>

namespace pgcqrs::replica {

struct Binding {
  std::string queue;
  std::string routing_key;
  bool operator==(const Binding&) const = default;
};

// For each cqrs_id: `<queue>` bound with `<cqrs_id>` and `cqrs.<queue>.<cqrs_id>`, and the
// dead-letter queue bound with `cqrs.<dead_letter_queue>.<cqrs_id>`. Duplicate ids are merged.
std::vector<Binding> replica_bindings(const std::string& queue,
                                      const std::string& dead_letter_queue,
                                      const std::vector<std::string>& cqrs_ids);

}  // namespace pgcqrs::replica
