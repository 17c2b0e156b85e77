// Where a master event goes: the routing key of a broadcast or of a SYNC to one replica queue.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pgcqrs::master {

// Routing key for an event of `cqrs_id`: `cqrs.<queue>.<cqrs_id>` when a target queue is given
// (cqrs_sync --queue, cqrs_diff_sync with a queue), else the broadcast key `<cqrs_id>`.
// The queue name "None" (what django-cqrs prints for "no queue") means broadcast too.
std::string routing_key(std::string_view cqrs_id, const std::optional<std::string>& queue);

}  // namespace pgcqrs::master
