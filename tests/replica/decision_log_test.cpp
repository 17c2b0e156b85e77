// The replica's decision log lines are django-cqrs's, word for word.
#include "replica/decision_log.hpp"

#include <string>

#include <doctest/doctest.h>

#include "common/timestamp.hpp"

using namespace pgcqrs;
using namespace pgcqrs::replica;

namespace {

Row row(Signal s, std::int64_t revision) {
  Row r;
  r.signal = s;
  r.pk_text = std::to_string(7);  // (a literal here trips GCC 12's -Wrestrict false positive)
  r.revision = revision;
  return r;
}

RowResult result(Outcome o, std::optional<std::int64_t> stored = std::nullopt) {
  RowResult r;
  r.outcome = o;
  r.stored_revision = stored;
  return r;
}

// `E text`, `W text`, `D text` lines, for comparing (GCC 12 misreads a vector<LogLine> literal).
std::string show(const std::vector<LogLine>& lines) {
  std::string out;
  for (const auto& l : lines) {
    out += l.level == spdlog::level::err     ? "E "
           : l.level == spdlog::level::warn  ? "W "
           : l.level == spdlog::level::debug ? "D "
                                             : "? ";
    out += l.text;
    out += '\n';
  }
  return out;
}

}  // namespace

TEST_CASE("decision log: skips, gaps and downgrades in django-cqrs's words") {
  CHECK(show(decision_log("product", row(Signal::kSave, 2), result(Outcome::kSkippedOlder, 3),
                          "None")) ==
        "E Wrong CQRS sync order: pk = 7, cqrs_revision = new 2 / existing 3 (product).\n");
  CHECK(show(decision_log("product", row(Signal::kSave, 3), result(Outcome::kSkippedDuplicate, 3),
                          "None")) ==
        "E Received duplicate CQRS data: pk = 7, cqrs_revision = 3 (product).\n");
  CHECK(show(decision_log("product", row(Signal::kSave, 0), result(Outcome::kSkippedDuplicate, 0),
                          "None")) ==
        "E Received duplicate CQRS data: pk = 7, cqrs_revision = 0 (product).\n"
        "W CQRS potential creation race condition: pk = 7 (product).\n");
  RowResult gap = result(Outcome::kUpdated, 2);
  gap.lost = 2;
  CHECK(show(decision_log("product", row(Signal::kSave, 5), gap, "abc")) ==
        "W Lost or filtered out (2) CQRS packages: pk = 7, cqrs_revision = 5 (product)\n"
        "D CQRS is applied: pk = 7 (product), correlation_id = abc.\n");
  RowResult down = result(Outcome::kUpdated, 3);
  down.downgrade = true;
  CHECK(show(decision_log("product", row(Signal::kSync, 2), down, "None")) ==
        "W CQRS revision downgrade on sync: pk = 7, cqrs_revision = new 2 / existing 3 (product).\n"
        "D CQRS is applied: pk = 7 (product), correlation_id = None.\n");
  RowResult deleted = result(Outcome::kSkippedDeleted);
  deleted.tombstone_revision = 4;
  CHECK(show(decision_log("product", row(Signal::kSave, 3), deleted, "None")) ==
        "W CQRS SAVE after DELETE ignored: pk = 7, cqrs_revision = 3 / tombstone 4 (product).\n");
  CHECK(show(decision_log("product", row(Signal::kDelete, 2), result(Outcome::kSkippedOlder, 3),
                          "None")) ==
        "W CQRS DELETE older than the row ignored: pk = 7, cqrs_revision = new 2 / existing 3 "
        "(product).\n");
  CHECK(decision_log("product", row(Signal::kSave, 2), result(Outcome::kSkippedSuperseded), "None")
            .empty());
  CHECK(decision_log("product", row(Signal::kSave, 2), result(Outcome::kFailed), "None").empty());
}

TEST_CASE("decision log: a tombstone with a time says why a SAVE stayed out or came in") {
  Row save = row(Signal::kSave, 0);
  save.updated = parse_timestamp("2024-05-01T11:59:00Z");
  RowResult deleted = result(Outcome::kSkippedDeleted);
  deleted.tombstone_revision = 4;
  deleted.tombstone_updated = parse_timestamp("2024-05-01 12:00:00.5+00:00");
  CHECK(show(decision_log("product", save, deleted, "None")) ==
        "W CQRS SAVE after DELETE ignored: pk = 7, cqrs_revision = 0 / tombstone 4, cqrs_updated "
        "= 2024-05-01 11:59:00+00:00 is before the DELETE's 2024-05-01 12:00:00.500000+00:00 "
        "(product).\n");

  save.updated = parse_timestamp("2024-05-01T12:00:00.5Z");
  RowResult reborn = result(Outcome::kInserted);
  reborn.tombstone_revision = 4;
  reborn.tombstone_updated = parse_timestamp("2024-05-01 12:00:00.5+00:00");
  reborn.recreated = true;
  CHECK(show(decision_log("product", save, reborn, "None")) ==
        "D CQRS SAVE of a re-created key applied over a tombstone: pk = 7, cqrs_revision = 0 / "
        "tombstone 4, cqrs_updated = 2024-05-01 12:00:00.500000+00:00 is not before the DELETE's "
        "2024-05-01 12:00:00.500000+00:00 (product).\n"
        "D CQRS is applied: pk = 7 (product), correlation_id = None.\n");
  // a SAVE over a tombstone that passes by its revision is not a re-creation: no extra line
  RowResult newer = result(Outcome::kInserted);
  newer.tombstone_revision = 4;
  newer.tombstone_updated = reborn.tombstone_updated;
  CHECK(show(decision_log("product", row(Signal::kSave, 5), newer, "None")) ==
        "D CQRS is applied: pk = 7 (product), correlation_id = None.\n");
}
