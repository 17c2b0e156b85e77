// Routing key choice on the master side (django-cqrs §2.2 rules 1 and 4).
#include "master/publish_target.hpp"

#include "common/topology.hpp"

namespace pgcqrs::master {

std::string routing_key(std::string_view cqrs_id, const std::optional<std::string>& queue) {
  if (queue && !queue->empty() && *queue != "None") return topology::queue_key(*queue, cqrs_id);
  return topology::broadcast_key(cqrs_id);
}

}  // namespace pgcqrs::master
