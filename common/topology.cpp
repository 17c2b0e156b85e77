// Routing keys and queue names of the django-cqrs topology (spec/wire-format.md).
#include "common/topology.hpp"

namespace pgcqrs::topology {

std::string broadcast_key(std::string_view cqrs_id) {
  return std::string(cqrs_id);
}

std::string queue_key(std::string_view queue, std::string_view cqrs_id) {
  std::string key;
  key.reserve(6 + queue.size() + cqrs_id.size());
  key.append("cqrs.").append(queue).append(".").append(cqrs_id);
  return key;
}

std::string default_dead_letter_queue(std::string_view queue) {
  return "dead_letter_" + std::string(queue);
}

}  // namespace pgcqrs::topology
