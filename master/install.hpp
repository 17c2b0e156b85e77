// `pgcqrs migrate` / `pgcqrs master install|uninstall`: schema cqrs and capture triggers.
#pragma once

#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/pg/migrations.hpp"
#include "common/pg/pqxx.hpp"

namespace pgcqrs::master {

struct InstallReport {
  std::vector<std::string> migrations;    // applied (or, dry run, pending) migration files
  std::vector<std::string> installed;     // cqrs_ids whose capture was created or updated
  std::vector<std::string> unchanged;     // cqrs_ids whose capture already matched the config
  std::vector<std::string> removed;       // cqrs_ids no longer configured, capture dropped
  std::vector<std::string> writer_roles;  // roles granted what the capture triggers need
  std::vector<std::string> ddl;           // every statement, in order (what --dry-run prints)
};

// Applies pending migrations, then installs or updates capture for every configured model
// and removes it from models that left the configuration, then grants the configured
// writer_roles what the triggers need, in one transaction. Idempotent. Checks each model's
// SQL snippets against its table first (ConfigError naming the model and key).
// With dry_run nothing is changed and the report holds the DDL that would run.
InstallReport install_capture(pqxx::connection& conn, const MasterConfig& config, bool dry_run);

// Removes every trigger and function capture installed (columns and the outbox stay, so
// nothing captured but unpublished is lost).
InstallReport uninstall_capture(pqxx::connection& conn, bool dry_run);

// migrations/master/*.sql, compiled in (cmake/EmbedMigrations.cmake).
const std::vector<pg::Migration>& migrations();

}  // namespace pgcqrs::master
