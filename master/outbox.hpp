// Reading, publishing-side formatting and deleting of cqrs.outbox rows.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
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
};

// The django-cqrs body of `row`, published at `now` with `ttl` (0 = never expires): compact,
// ujson-style, numbers exact. Throws MessageError when a stored JSON member is not valid JSON.
std::string build_body(const OutboxRow& row, Timestamp now, std::chrono::seconds ttl);

struct Backlog {
  std::int64_t rows = 0;
  double oldest_age_seconds = 0;
};

// The outbox as the agent sees it, over the agent's session (which holds its advisory lock).
class Outbox {
 public:
  explicit Outbox(pg::Session& db);

  // Up to `limit` rows in id order (= per-row revision order).
  std::vector<OutboxRow> fetch(int limit);
  // Removes published rows (after the broker confirmed them).
  void remove(const std::vector<std::int64_t>& ids);
  Backlog backlog();

 private:
  pg::Session& db_;
};

// pg_try_advisory_lock key held by the active agent of a master database.
inline constexpr std::int64_t kAgentLockKey = 0x70676371'72730002LL;  // "pgcqrs" + 2

}  // namespace pgcqrs::master
