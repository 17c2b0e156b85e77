// `pgcqrs replica install`: the replica part of `pgcqrs migrate` (schema cqrs, table checks).
#include <iostream>
#include <memory>

#include "common/config.hpp"
#include "common/error.hpp"
#include "common/exit_codes.hpp"
#include "common/pg/session.hpp"
#include "replica/install.hpp"
#include "tools/command.hpp"

namespace pgcqrs::tools {

int install_replica_database(const GlobalOptions& g, bool dry_run) {
  const Config config = load_config(resolve_config_path(g.config));
  if (!config.replica) {
    throw ConfigError(config.source + ": [replica] is not configured; nothing to install");
  }
  pg::Session db(config.replica->database, "pgcqrs migrate");
  const replica::InstallReport r = replica::install_replica(db.conn(), *config.replica, dry_run);
  const auto list = [](const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v)
      out += (out.empty() ? "" : ", ") + s;
    return out;
  };
  if (dry_run) {
    for (const auto& s : r.ddl)
      std::cout << s << ";\n\n";
    std::cout << "-- replica: would check " << list(r.models) << "\n";
    std::cout << "-- dry run: nothing was changed\n";
    return exit_code::kOk;
  }
  std::cout << (r.migrations.empty() ? "replica: schema cqrs is up to date"
                                     : "replica: applied " + list(r.migrations))
            << "\n";
  if (!r.models.empty()) std::cout << "replica: tables fit for " << list(r.models) << "\n";
  return exit_code::kOk;
}

std::vector<CommandSpec> replica_commands() {
  CommandSpec spec;
  spec.name = "replica";
  spec.summary = "replica database: `replica install` = the replica part of `pgcqrs migrate`";
  spec.setup = [](CLI::App& sub, const GlobalOptions& g) -> Runner {
    auto dry = std::make_shared<bool>(false);
    auto* install = sub.add_subcommand(
        "install", "apply migrations/replica (schema cqrs) and check every model's table");
    install->add_flag("--dry-run", *dry, "print the DDL instead of running it");
    install->footer(
        "Checks that each [[replica.model]] table exists with a single-column primary key,\n"
        "cqrs_revision (integer type) and cqrs_updated, and every mapped column; or that its\n"
        "apply_function(text, jsonb, jsonb, jsonb) exists. One transaction; safe to re-run.");
    sub.require_subcommand(1);
    return [&g, dry] { return install_replica_database(g, *dry); };
  };
  return {spec};
}

}  // namespace pgcqrs::tools
