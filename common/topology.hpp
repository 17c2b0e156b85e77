// Names on the broker shared by masters and replicas: routing keys and dead-letter queue names.
#pragma once

#include <string>
#include <string_view>

namespace pgcqrs::topology {

inline constexpr std::string_view kDefaultExchange = "cqrs";

// Broadcast key of a SAVE/DELETE/SYNC: every replica bound for the cqrs_id gets it.
std::string broadcast_key(std::string_view cqrs_id);
// Key that reaches one queue only: `cqrs.<queue>.<cqrs_id>` (SYNC to one replica, retries,
// and with the dead-letter queue's name, dead letters).
std::string queue_key(std::string_view queue, std::string_view cqrs_id);
// django-cqrs's default dead-letter queue name for a replica queue: `dead_letter_<queue>`.
std::string default_dead_letter_queue(std::string_view queue);

}  // namespace pgcqrs::topology
