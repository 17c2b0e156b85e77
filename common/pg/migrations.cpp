// Applying numbered migrations once each, recorded in cqrs.schema_migrations.
#include "common/pg/migrations.hpp"

#include <algorithm>

#include "common/error.hpp"
#include "common/pg/script.hpp"

namespace pgcqrs::pg {
namespace {

constexpr const char* kBookkeeping = R"sql(
CREATE SCHEMA IF NOT EXISTS cqrs;
CREATE TABLE IF NOT EXISTS cqrs.schema_migrations (
  component  text        NOT NULL,
  version    integer     NOT NULL,
  name       text        NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (component, version)
);
)sql";

constexpr const char* kApplied = R"sql(
SELECT version FROM cqrs.schema_migrations WHERE component = $1 ORDER BY version
)sql";

constexpr const char* kRecord = R"sql(
INSERT INTO cqrs.schema_migrations (component, version, name) VALUES ($1, $2, $3)
)sql";

bool bookkeeping_exists(pqxx::transaction_base& txn) {
  return txn.exec1("SELECT to_regclass('cqrs.schema_migrations') IS NOT NULL")[0].as<bool>();
}

std::vector<int> applied_versions(pqxx::transaction_base& txn, std::string_view component) {
  std::vector<int> out;
  if (!bookkeeping_exists(txn)) return out;
  for (const auto& row : txn.exec_params(kApplied, std::string(component))) {
    out.push_back(row[0].as<int>());
  }
  return out;
}

}  // namespace

std::vector<Migration> pending_migrations(pqxx::transaction_base& txn, std::string_view component,
                                          const std::vector<Migration>& all) {
  const std::vector<int> applied = applied_versions(txn, component);
  const int known = all.empty() ? 0 : all.back().version;
  if (!applied.empty() && applied.back() > known) {
    throw ConfigError("database schema cqrs (" + std::string(component) + "): at migration " +
                      std::to_string(applied.back()) + " but this pgcqrs knows only up to " +
                      std::to_string(known) + "; use a newer pgcqrs");
  }
  std::vector<Migration> out;
  for (const auto& m : all) {
    if (std::find(applied.begin(), applied.end(), m.version) == applied.end()) out.push_back(m);
  }
  return out;
}

std::vector<std::string> apply_migrations(pqxx::transaction_base& txn, std::string_view component,
                                          const std::vector<Migration>& all) {
  txn.exec_params("SELECT pg_advisory_xact_lock($1)", kInstallLockKey);
  exec_script(txn, kBookkeeping, "schema_migrations bookkeeping");
  std::vector<std::string> names;
  for (const auto& m : pending_migrations(txn, component, all)) {
    exec_script(txn, m.sql, m.name);
    txn.exec_params(kRecord, std::string(component), m.version, std::string(m.name));
    names.emplace_back(m.name);
  }
  return names;
}

}  // namespace pgcqrs::pg
