// The log lines of the replica's decisions, in django-cqrs's words (reference §3.4).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

#include "replica/applier.hpp"
#include "replica/batch.hpp"

namespace pgcqrs::replica {

struct LogLine {
  spdlog::level::level_enum level = spdlog::level::info;
  std::string text;
  bool operator==(const LogLine&) const = default;
};

// What to log about `row` of `cqrs_id` after `result` (`correlation_id` as text, "None" when
// null, as Python prints it):
//   SAVE older         error "Wrong CQRS sync order: pk = 7, cqrs_revision = new 2 / existing 3
//                            (product)."
//   SAVE equal         error "Received duplicate CQRS data: pk = 7, cqrs_revision = 3 (product)."
//                      + warn "CQRS potential creation race condition: pk = 7 (product)." at 0
//   SAVE gap           warn  "Lost or filtered out (2) CQRS packages: pk = 7, cqrs_revision = 5
//                            (product)"
//   SYNC downgrade     warn  "CQRS revision downgrade on sync: pk = 7, cqrs_revision = new 2 /
//                            existing 3 (product)."
//   SAVE after DELETE  warn  "CQRS SAVE after DELETE ignored: pk = 7, cqrs_revision = 2 /
//                            tombstone 3 (product)." When the tombstone has a time:
//                            "... / tombstone 3, cqrs_updated = 2024-05-01 11:59:00+00:00 is
//                            before the DELETE's 2024-05-01 12:00:00+00:00 (product)."
//   SAVE re-created    debug "CQRS SAVE of a re-created key applied over a tombstone: pk = 7,
//                            cqrs_revision = 0 / tombstone 3, cqrs_updated = ... is not before
//                            the DELETE's ... (product)." (pgcqrs's own; before "is applied")
//   DELETE older       warn  "CQRS DELETE older than the row ignored: pk = 7, cqrs_revision = new
//                            2 / existing 3 (product)."
//   applied            debug "CQRS is applied: pk = 7 (product), correlation_id = C."
// kFailed rows are logged by the consumer with the retry decision.
std::vector<LogLine> decision_log(std::string_view cqrs_id, const Row& row, const RowResult& result,
                                  std::string_view correlation_id);

}  // namespace pgcqrs::replica
