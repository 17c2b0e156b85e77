// How subcommands plug into the `pgcqrs` executable: each cmd_*.cpp registers one or more.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

namespace pgcqrs::tools {

// Flags every command accepts (before or after the subcommand name).
struct GlobalOptions {
  std::optional<std::string> config;  // --config; else $PGCQRS_CONFIG; else ./pgcqrs.toml
  std::string log_level = "info";
  std::string log_format = "text";
};

// Runs a parsed subcommand; returns the process exit code (common/exit_codes.hpp).
using Runner = std::function<int()>;

struct CommandSpec {
  std::string name;   // pgcqrs subcommand, e.g. "bulk-dump"
  std::string alias;  // django-cqrs program name that dispatches to it, e.g. "cqrs_bulk_dump"
  // Adds the subcommand's flags to `sub` and returns what runs it after parsing.
  std::function<Runner(CLI::App& sub, const GlobalOptions& globals)> setup;
  std::string summary;
};

// All commands, in the order `pgcqrs --help` lists them.
const std::vector<CommandSpec>& commands();

// Each cmd_*.cpp contributes its specs through one of these.
std::vector<CommandSpec> check_config_commands();
std::vector<CommandSpec> bulk_commands();         // bulk-dump, bulk-load
std::vector<CommandSpec> sync_commands();         // sync
std::vector<CommandSpec> diff_commands();         // diff-master, diff-replica, diff-sync
std::vector<CommandSpec> deleted_commands();      // deleted-diff-*, deleted-sync-replica
std::vector<CommandSpec> dead_letter_commands();  // dead-letters

std::vector<CommandSpec> migrate_commands();
std::vector<CommandSpec> master_commands();
std::vector<CommandSpec> watch_commands();
std::vector<CommandSpec> consume_commands();
std::vector<CommandSpec> replica_commands();

// `pgcqrs migrate` and `pgcqrs replica install`, replica part: applies migrations/replica and
// checks every [[replica.model]]; prints what it did (dry run: the DDL). Returns the exit code.
int install_replica_database(const GlobalOptions& globals, bool dry_run);

// Adds `install` / `uninstall` under `pgcqrs master`; the runner returns -1 when neither was
// given (then `pgcqrs master` runs the agent).
Runner setup_master_install(CLI::App& parent, const GlobalOptions& globals);

// django-cqrs spells some options with one dash and several letters (`-cid`); CLI11 only knows
// one-letter short options, so these are rewritten to their long form before parsing.
std::vector<std::string> normalize_django_args(std::vector<std::string> args);

// When invoked through an alias link (argv[0] = cqrs_bulk_dump), the subcommand it stands for.
std::optional<std::string> subcommand_for_program(std::string_view argv0);

}  // namespace pgcqrs::tools
