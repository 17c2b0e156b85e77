// `pgcqrs migrate` and `pgcqrs master install|uninstall`: install the cqrs schema and capture.
#include <iostream>
#include <memory>

#include "common/config.hpp"
#include "common/error.hpp"
#include "common/exit_codes.hpp"
#include "common/pg/session.hpp"
#include "master/install.hpp"
#include "tools/command.hpp"

namespace pgcqrs::tools {
namespace {

void print_report(const master::InstallReport& r, bool dry_run, bool install) {
  if (dry_run) {
    for (const auto& s : r.ddl)
      std::cout << s << ";\n\n";
    std::cout << "-- dry run: nothing was changed\n";
    return;
  }
  auto list = [](const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v)
      out += (out.empty() ? "" : ", ") + s;
    return out;
  };
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
}

int install_master(const GlobalOptions& g, bool dry_run) {
  const Config config = load_config(resolve_config_path(g.config));
  if (!config.master) {
    throw pgcqrs::ConfigError(config.source + ": [master] is not configured; nothing to install");
  }
  pg::Session db(config.master->database, "pgcqrs migrate");
  print_report(master::install_capture(db.conn(), *config.master, dry_run), dry_run, true);
  return exit_code::kOk;
}

int uninstall_master(const GlobalOptions& g, bool dry_run) {
  const Config config = load_config(resolve_config_path(g.config));
  if (!config.master) {
    throw pgcqrs::ConfigError(config.source + ": [master] is not configured; nothing to uninstall");
  }
  pg::Session db(config.master->database, "pgcqrs uninstall");
  print_report(master::uninstall_capture(db.conn(), dry_run), dry_run, false);
  return exit_code::kOk;
}

}  // namespace

std::vector<CommandSpec> migrate_commands() {
  CommandSpec migrate;
  migrate.name = "migrate";
  migrate.summary = "install or update the cqrs schema and capture triggers (idempotent)";
  migrate.setup = [](CLI::App& sub, const GlobalOptions& g) -> Runner {
    auto dry = std::make_shared<bool>(false);
    sub.add_flag("--dry-run", *dry, "print the DDL instead of running it");
    sub.footer(
        "Master: applies migrations/master, adds cqrs_revision/cqrs_updated to tracked tables\n"
        "when missing, installs the capture triggers generated from [[master.model]], and\n"
        "removes them from tables no longer configured. One transaction; safe to re-run.\n"
        "Replica: applies migrations/replica (schema cqrs: tombstones) and checks that every\n"
        "[[replica.model]] table has its primary key, cqrs_revision, cqrs_updated and mapped\n"
        "columns (errors name model, table, column and the fix). Also `pgcqrs replica install`.");
    return [&g, dry] {
      const Config config = load_config(resolve_config_path(g.config));
      if (config.master) install_master(g, *dry);
      if (config.replica) return install_replica_database(g, *dry);
      return exit_code::kOk;
    };
  };
  return {migrate};
}

// `pgcqrs master install|uninstall` live beside the agent (cmd_master.cpp) as subcommands.
Runner setup_master_install(CLI::App& parent, const GlobalOptions& g) {
  auto dry = std::make_shared<bool>(false);
  auto* install = parent.add_subcommand("install", "same as pgcqrs migrate, master part only");
  install->add_flag("--dry-run", *dry, "print the DDL instead of running it");
  auto* uninstall = parent.add_subcommand(
      "uninstall", "remove capture triggers and functions (columns and outbox stay)");
  uninstall->add_flag("--dry-run", *dry, "print the DDL instead of running it");
  return [&g, dry, install, uninstall]() -> int {
    if (install->parsed()) return install_master(g, *dry);
    if (uninstall->parsed()) return uninstall_master(g, *dry);
    return -1;  // neither: the caller runs the agent
  };
}

}  // namespace pgcqrs::tools
