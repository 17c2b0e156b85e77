// `pgcqrs migrate` and `pgcqrs master install|uninstall`: install the cqrs schema and capture.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/error.hpp"
#include "common/exit_codes.hpp"
#include "common/pg/error.hpp"
#include "common/pg/session.hpp"
#include "master/install.hpp"
#include "tools/command.hpp"

namespace pgcqrs::tools {
namespace {

std::string list(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v)
    out += (out.empty() ? "" : ", ") + s;
  return out;
}

// What uninstall did to schema cqrs beyond the captures, one line each (none when it left it).
std::vector<std::string> schema_outcome(const master::InstallReport& r) {
  std::vector<std::string> out;
  if (r.events_discarded != 0) {
    out.push_back(std::to_string(r.events_discarded) +
                  " unpublished event(s) discarded: resync the replicas (cqrs_sync or "
                  "cqrs_diff_*)");
  }
  if (r.schema_dropped) {
    out.push_back(
        "schema cqrs dropped (outbox and helpers); the cqrs_revision and cqrs_updated columns "
        "stay");
  } else if (r.schema_objects_dropped) {
    out.push_back("outbox and helpers dropped; schema cqrs stays, it still holds " +
                  list(r.schema_kept_for));
  }
  return out;
}

void print_report(const master::InstallReport& r, bool dry_run, bool install) {
  if (dry_run) {
    for (const auto& s : r.ddl)
      std::cout << s << ";\n\n";
    for (const auto& line : schema_outcome(r))
      std::cout << "-- would be: " << line << "\n";
    std::cout << "-- dry run: nothing was changed\n";
    return;
  }
  if (install) {
    std::cout << (r.migrations.empty() ? "master: schema cqrs is up to date"
                                       : "master: applied " + list(r.migrations))
              << "\n";
  }
  if (!r.installed.empty())
    std::cout << "master: capture installed for " << list(r.installed) << "\n";
  if (!r.unchanged.empty())
    std::cout << "master: capture unchanged for " << list(r.unchanged) << "\n";
  if (!r.removed.empty()) std::cout << "master: capture removed from " << list(r.removed) << "\n";
  if (!r.writer_roles.empty()) {
    std::cout << "master: capture's rights granted to " << list(r.writer_roles) << "\n";
  }
  for (const auto& line : schema_outcome(r))
    std::cout << "master: " << line << "\n";
}

// Seconds `migrate` and `uninstall` wait for each lock on a tracked table or the outbox.
constexpr int kDefaultLockTimeout = 10;

// Runs `work` on a session whose lock waits are bounded: DDL on a tracked table waits for
// every transaction using it, and every writer of the table queues behind the waiting DDL, so
// an unbounded wait behind one long transaction would stop the application's writes.
template <typename Work>
void with_lock_timeout(pg::Session& db, int seconds, const char* command, Work&& work) {
  {
    pqxx::nontransaction txn(db.conn());
    txn.exec_params("SELECT set_config('lock_timeout', $1, false)", std::to_string(seconds) + "s");
  }
  const auto timed_out = [&](const std::string& sqlstate, const std::exception& e) {
    if (sqlstate != "55P03") return;  // lock_not_available
    throw TransientError(std::string(command) + ": waited " + std::to_string(seconds) +
                         " s for a lock (" + pg::server_message(e) +
                         "): a long transaction is using a tracked table or the outbox, or another "
                         "migrate is running. Nothing was changed; run it again when it is done "
                         "(see pg_stat_activity), or give --lock-timeout more seconds (0: no "
                         "limit)");
  };
  try {
    work();
  } catch (const pqxx::sql_error& e) {
    timed_out(e.sqlstate(), e);
    throw;
  } catch (const pg::SqlError& e) {
    timed_out(e.sqlstate(), e);
    throw;
  }
}

int install_master(const GlobalOptions& g, bool dry_run, int lock_timeout) {
  const Config config = load_config(resolve_config_path(g.config));
  if (!config.master) {
    throw pgcqrs::ConfigError(config.source + ": [master] is not configured; nothing to install");
  }
  pg::Session db(config.master->database, "pgcqrs migrate");
  with_lock_timeout(db, lock_timeout, "migrate", [&] {
    print_report(master::install_capture(db.conn(), *config.master, dry_run), dry_run, true);
  });
  return exit_code::kOk;
}

int uninstall_master(const GlobalOptions& g, const master::UninstallOptions& options,
                     int lock_timeout) {
  const Config config = load_config(resolve_config_path(g.config));
  if (!config.master) {
    throw pgcqrs::ConfigError(config.source + ": [master] is not configured; nothing to uninstall");
  }
  pg::Session db(config.master->database, "pgcqrs uninstall");
  with_lock_timeout(db, lock_timeout, "master uninstall", [&] {
    print_report(master::uninstall_capture(db.conn(), options), options.dry_run, false);
  });
  return exit_code::kOk;
}

void add_lock_timeout(CLI::App& app, int& seconds) {
  app.add_option("--lock-timeout", seconds,
                 "seconds to wait for each lock on a tracked table or the outbox; 0: no limit")
      ->default_val(kDefaultLockTimeout)
      ->check(CLI::Range(0, 2147483));  // PostgreSQL's limit for lock_timeout, in seconds
}

}  // namespace

std::vector<CommandSpec> migrate_commands() {
  CommandSpec migrate;
  migrate.name = "migrate";
  migrate.summary = "install or update the cqrs schema and capture triggers (idempotent)";
  migrate.setup = [](CLI::App& sub, const GlobalOptions& g) -> Runner {
    auto dry = std::make_shared<bool>(false);
    auto lock_timeout = std::make_shared<int>(kDefaultLockTimeout);
    sub.add_flag("--dry-run", *dry, "print the DDL instead of running it");
    add_lock_timeout(sub, *lock_timeout);
    sub.footer(
        "Master: applies migrations/master, adds cqrs_revision/cqrs_updated to tracked tables\n"
        "when missing, installs the capture triggers generated from [[master.model]], and\n"
        "removes them from tables no longer configured. One transaction; safe to re-run.\n"
        "Replica: applies migrations/replica (schema cqrs: tombstones) and checks that every\n"
        "[[replica.model]] table has its primary key, cqrs_revision, cqrs_updated and mapped\n"
        "columns (errors name model, table, column and the fix). Also `pgcqrs replica install`.\n"
        "A lock wait longer than --lock-timeout (a long transaction on a tracked table) stops\n"
        "it with nothing changed, exit 75, rather than hold up the application's writes.");
    return [&g, dry, lock_timeout] {
      const Config config = load_config(resolve_config_path(g.config));
      if (config.master) install_master(g, *dry, *lock_timeout);
      if (config.replica) return install_replica_database(g, *dry);
      return exit_code::kOk;
    };
  };
  return {migrate};
}

// `pgcqrs master install|uninstall` live beside the agent (cmd_master.cpp) as subcommands.
Runner setup_master_install(CLI::App& parent, const GlobalOptions& g) {
  auto dry = std::make_shared<bool>(false);
  auto lock_timeout = std::make_shared<int>(kDefaultLockTimeout);
  auto* install = parent.add_subcommand("install", "same as pgcqrs migrate, master part only");
  install->add_flag("--dry-run", *dry, "print the DDL instead of running it");
  add_lock_timeout(*install, *lock_timeout);
  auto* uninstall = parent.add_subcommand(
      "uninstall", "remove capture and schema cqrs's outbox (the cqrs columns stay)");
  auto un = std::make_shared<master::UninstallOptions>();
  uninstall->add_flag("--dry-run", un->dry_run, "print the DDL instead of running it");
  uninstall->add_flag("--keep-schema", un->keep_schema,
                      "remove only the capture triggers and functions; keep the outbox");
  uninstall
      ->add_flag("--discard-events", un->discard_events,
                 "drop the outbox even if events in it were never published")
      ->excludes(uninstall->get_option("--keep-schema"));
  add_lock_timeout(*uninstall, *lock_timeout);
  uninstall->footer(
      "Removes, in one transaction, every capture trigger and function, then the outbox,\n"
      "cqrs.outbox_failed and the other master objects of schema cqrs, and the schema itself\n"
      "when nothing else is in it (a replica's tombstones keep it). cqrs_revision and\n"
      "cqrs_updated stay on the tables. Refused, with nothing changed, while an agent runs\n"
      "on the database or while the outbox or cqrs.outbox_failed holds events: let the agent\n"
      "publish them, or use --keep-schema (then uninstall again once the outbox is empty) or\n"
      "--discard-events (then resync the replicas).");
  return [&g, dry, install, uninstall, un, lock_timeout]() -> int {
    if (install->parsed()) return install_master(g, *dry, *lock_timeout);
    if (uninstall->parsed()) return uninstall_master(g, *un, *lock_timeout);
    return -1;  // neither: the caller runs the agent
  };
}

}  // namespace pgcqrs::tools
