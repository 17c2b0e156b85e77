// django-cqrs's decision log lines for one applied (or skipped) row.
#include "replica/decision_log.hpp"

#include <fmt/format.h>

#include "common/timestamp.hpp"

namespace pgcqrs::replica {
namespace {

// `, cqrs_updated = <SAVE's time><relation><tombstone's time>` when the tombstone has a time
// (a DELETE's cqrs_updated); empty otherwise (only the revision decided).
std::string times(const Row& row, const RowResult& result, std::string_view relation) {
  if (!result.tombstone_updated) return {};
  return fmt::format(", cqrs_updated = {}{}{}",
                     row.updated ? format_django(*row.updated) : std::string("unknown"), relation,
                     format_django(*result.tombstone_updated));
}

}  // namespace

std::vector<LogLine> decision_log(std::string_view cqrs_id, const Row& row, const RowResult& result,
                                  std::string_view correlation_id) {
  using spdlog::level::debug;
  using spdlog::level::err;
  using spdlog::level::warn;
  std::vector<LogLine> out;
  const std::string& pk = row.pk_text;
  const long long n = row.revision;
  const long long e = result.stored_revision.value_or(0);
  switch (result.outcome) {
    case Outcome::kSkippedOlder:
      if (row.signal == Signal::kDelete) {
        out.push_back({warn, fmt::format("CQRS DELETE older than the row ignored: pk = {}, "
                                         "cqrs_revision = new {} / existing {} ({}).",
                                         pk, n, e, cqrs_id)});
      } else {
        out.push_back({err, fmt::format("Wrong CQRS sync order: pk = {}, cqrs_revision = new {} / "
                                        "existing {} ({}).",
                                        pk, n, e, cqrs_id)});
      }
      break;
    case Outcome::kSkippedDuplicate:
      out.push_back({err, fmt::format("Received duplicate CQRS data: pk = {}, cqrs_revision = {} "
                                      "({}).",
                                      pk, n, cqrs_id)});
      if (n == 0) {
        out.push_back({warn, fmt::format("CQRS potential creation race condition: pk = {} ({}).",
                                         pk, cqrs_id)});
      }
      break;
    case Outcome::kSkippedDeleted:
      out.push_back({warn, fmt::format("CQRS SAVE after DELETE ignored: pk = {}, cqrs_revision = "
                                       "{} / tombstone {}{} ({}).",
                                       pk, n, result.tombstone_revision.value_or(0),
                                       times(row, result, " is before the DELETE's "), cqrs_id)});
      break;
    case Outcome::kSkippedSuperseded:
    case Outcome::kFailed:
      break;
    case Outcome::kInserted:
    case Outcome::kUpdated:
    case Outcome::kDeleted:
    case Outcome::kDeleteMissing:
    case Outcome::kCalled:
      if (result.lost > 0) {
        out.push_back({warn, fmt::format("Lost or filtered out ({}) CQRS packages: pk = {}, "
                                         "cqrs_revision = {} ({})",
                                         static_cast<long long>(result.lost), pk, n, cqrs_id)});
      }
      if (result.recreated) {
        out.push_back(
            {debug, fmt::format("CQRS SAVE of a re-created key applied over a tombstone: "
                                "pk = {}, cqrs_revision = {} / tombstone {}{} ({}).",
                                pk, n, result.tombstone_revision.value_or(0),
                                times(row, result, " is not before the DELETE's "), cqrs_id)});
      }
      if (result.downgrade) {
        out.push_back({warn, fmt::format("CQRS revision downgrade on sync: pk = {}, cqrs_revision "
                                         "= new {} / existing {} ({}).",
                                         pk, n, e, cqrs_id)});
      }
      out.push_back({debug, fmt::format("CQRS is applied: pk = {} ({}), correlation_id = {}.", pk,
                                        cqrs_id, correlation_id)});
      break;
  }
  return out;
}

}  // namespace pgcqrs::replica
