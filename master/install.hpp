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
  // uninstall: what became of the master's part of schema cqrs
  bool schema_objects_dropped = false;  // outbox, outbox_failed, batch_layout, capture, helpers
  bool schema_dropped = false;          // schema cqrs itself (nothing else was left in it)
  std::vector<std::string> schema_kept_for;  // what kept schema cqrs (a replica's tables, ...)
  long long events_discarded = 0;            // events of outbox + outbox_failed dropped unpublished
};

struct UninstallOptions {
  bool dry_run = false;
  // Remove only the triggers and functions of capture; the outbox and the rest of schema cqrs
  // stay (the agent can still drain what was captured).
  bool keep_schema = false;
  // Drop the outbox even when it holds unpublished or set-aside events (replicas then miss
  // those changes until a resync).
  bool discard_events = false;
};

// Applies pending migrations, then installs or updates capture for every configured model
// and removes it from models that left the configuration, then grants the configured
// writer_roles what the triggers need, in one transaction. Idempotent. Checks each model's
// SQL snippets against its table first (ConfigError naming the model and key).
// With dry_run nothing is changed and the report holds the DDL that would run.
InstallReport install_capture(pqxx::connection& conn, const MasterConfig& config, bool dry_run);

// Removes everything `install_capture` added except the cqrs_revision / cqrs_updated columns,
// in one transaction: every capture trigger and function, then the master's tables and helpers
// in schema cqrs, and the schema itself when nothing else (a replica's tombstones, say) is in
// it. Refuses (CommandError, nothing changed) while an agent holds the master lock or while
// the outbox or cqrs.outbox_failed holds events, unless options say otherwise.
InstallReport uninstall_capture(pqxx::connection& conn, const UninstallOptions& options);

// migrations/master/*.sql, compiled in (cmake/EmbedMigrations.cmake).
const std::vector<pg::Migration>& migrations();

}  // namespace pgcqrs::master
