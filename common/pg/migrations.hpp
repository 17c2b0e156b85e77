// Numbered schema migrations compiled into the binary, applied once each, in order.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/pg/pqxx.hpp"

namespace pgcqrs::pg {

struct Migration {
  int version;
  std::string_view name;  // file name, e.g. 0001_outbox.sql
  std::string_view sql;
};

// Migrations of `component` ("master", "replica") not yet recorded in cqrs.schema_migrations.
// Creates nothing: safe for --dry-run.
std::vector<Migration> pending_migrations(pqxx::transaction_base& txn, std::string_view component,
                                          const std::vector<Migration>& all);

// Applies the pending ones in `txn` (the caller commits), serialised against concurrent
// installers by a transaction-level advisory lock. Returns the names applied. A database that
// has a newer migration than this binary knows is refused (ConfigError): an older pgcqrs
// must not run against a newer schema.
std::vector<std::string> apply_migrations(pqxx::transaction_base& txn, std::string_view component,
                                          const std::vector<Migration>& all);

// Key of the advisory lock installers take (pg_advisory_xact_lock); the agent uses another.
inline constexpr long long kInstallLockKey = 0x70676371'72730001LL;  // "pgcqrs" + 1

}  // namespace pgcqrs::pg
