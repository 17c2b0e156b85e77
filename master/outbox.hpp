// Reading, publishing-side formatting and deleting of cqrs.outbox rows.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/pg/session.hpp"
#include "common/timestamp.hpp"

namespace pgcqrs::master {

// One captured event as stored (JSON members as the text PostgreSQL holds).
struct OutboxRow {
  std::int64_t id = 0;
  std::string cqrs_id;
  std::string signal;  // SAVE or DELETE
  std::string instance_pk;
  std::optional<std::string> instance_data;  // null: a serializer model whose row vanished
  std::optional<std::string> previous_data;
  std::optional<std::string> meta;
  std::optional<std::string> correlation_id;
  int index = 0;  // position of the event in its batch row (1, 2, ...); 0: a one-event row
  // instance_pk and instance_data are already in the body's form (a batch event's, built by
  // expand_batch()): build_body() copies them instead of splicing
  bool formatted = false;
  // set by a read when the stored row cannot be turned into events (its batch or layout is
  // malformed): the row alone, with the reason; the agent moves it to cqrs.outbox_failed
  std::optional<std::string> error = std::nullopt;
};

// A batch row's batch_layout, parsed (master/batch.hpp): once for every batch row that carries
// the same text.
struct BatchLayout {
  struct Position {
    char kind = 's';
    std::string key;  // `"name":` as instance_data carries it (data kinds only)
  };
  std::vector<Position> positions;
  int previous_at = -1;  // the P position, -1 when none
  int meta_at = -1;      // the M position, -1 when none
};

// Parsed batch layouts by their key (or text), looked up without copying the fetched one.
struct LayoutHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};
using LayoutCache = std::unordered_map<std::string, BatchLayout, LayoutHash, std::equal_to<>>;

// The django-cqrs body of `row`, published at `now` with `ttl` (0 = never expires): compact,
// ujson-style, numbers exact. Composed from the stored JSON text without building a document
// (see splice_json); byte for byte what encode_event() writes for the same members. Throws
// MessageError when a stored JSON member is not valid JSON.
std::string build_body(const OutboxRow& row, Timestamp now, std::chrono::seconds ttl);

// Appends JSON text as PostgreSQL's json output writes it (`{"a" : 1, "b" : "x/y"}`) to `out`
// in the form json::dump() gives the parsed value (`{"a":1,"b":"x\/y"}`): whitespace dropped,
// strings with `/`, `\u` escapes or non-ASCII re-encoded through the codec, `-0` written `0`,
// everything else copied. Checks the JSON grammar as it goes; returns false, with `out`
// unspecified, on text that is not JSON or nests deeper than the parser's limit (duplicate
// object keys, which the parser refuses, are not detected). `outer_depth`: containers already
// open around `text` in the document it is part of (they count towards the limit).
bool splice_json(std::string& out, std::string_view text, std::size_t outer_depth = 0);

// Rows waiting in the outbox, for the metrics. `rows` is max(id) - min(id) + 1, read from the
// primary key at constant cost whatever the size: an upper bound, exact while the ids between
// have no holes (a rolled-back write, a row published out of id order, a serializer model's
// vanished row leave one).
struct Backlog {
  std::int64_t rows = 0;
  double oldest_age_seconds = 0;
  std::int64_t failed = 0;  // rows set aside in cqrs.outbox_failed
};

// One read of the outbox in one snapshot (see Outbox::fetch_after).
struct Fetched {
  std::vector<OutboxRow> ahead;     // events of the rows with id > after, in id order
  std::vector<std::int64_t> below;  // ids <= after, in id order (ids only)
  bool below_truncated = false;     // `below` hit its limit: more ids <= after may exist
};

// The outbox as the agent sees it, over the agent's session (which holds its advisory lock).
class Outbox {
 public:
  // Sets synchronous_commit = off on the session: a delete lost in a database crash only
  // means its rows are published again (at-least-once).
  explicit Outbox(pg::Session& db);

  // The events of the rows with id > `after` in id order, as many rows as hold `limit` events
  // (at least one row, whole rows: a batch row holds up to 1000), and, from the same snapshot, the
  // ids of up to `below_limit` rows with id <= `after`: the caller knows which of those it already
  // published; any other one committed late (its transaction took its id before others that
  // committed first) and must be published before the `ahead` rows.
  Fetched fetch_after(std::int64_t after, int limit, int below_limit);
  // The events of the rows with these ids that exist, in id order, as many rows as hold
  // `limit` events (at least one row, whole rows).
  std::vector<OutboxRow> fetch_ids(const std::vector<std::int64_t>& ids, int limit);
  // Removes published rows (after the broker confirmed them).
  void remove(const std::vector<std::int64_t>& ids);
  // Moves row `id`, which cannot be published, to cqrs.outbox_failed with the reason `error`.
  void park(std::int64_t id, const std::string& error);
  Backlog backlog();
  // VACUUM (SKIP_LOCKED) cqrs.outbox when this role may (owner or superuser); false otherwise.
  bool vacuum();

 private:
  pg::Session& db_;
  std::optional<bool> may_vacuum_;
  LayoutCache layouts_;  // batch_layout key (or, in rows before migration 0004, text) -> parsed
};

// pg_try_advisory_lock key held by the active agent of a master database.
inline constexpr std::int64_t kAgentLockKey = 0x70676371'72730002LL;  // "pgcqrs" + 2

// The backend pid holding advisory lock key $1 in this database, 0 when nobody does.
inline constexpr const char* kLockHolderSql = R"sql(
SELECT coalesce(max(pid), 0) FROM pg_locks
WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND ((classid::bigint << 32) | objid::bigint) = $1
)sql";

}  // namespace pgcqrs::master
