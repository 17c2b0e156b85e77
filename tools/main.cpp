// pgcqrs: one executable, many commands; also answers to the django-cqrs command names.
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/exit_codes.hpp"
#include "common/log.hpp"
#include "tools/command.hpp"

namespace pgcqrs::tools {

const std::vector<CommandSpec>& commands() {
  static const std::vector<CommandSpec> all = [] {
    std::vector<CommandSpec> v;
    for (auto&& group :
         {check_config_commands(), migrate_commands(), master_commands(), consume_commands(),
          replica_commands(), watch_commands(), bulk_commands(), sync_commands(), diff_commands(),
          deleted_commands(), dead_letter_commands()}) {
      v.insert(v.end(), group.begin(), group.end());
    }
    return v;
  }();
  return all;
}

std::vector<std::string> normalize_django_args(std::vector<std::string> args) {
  for (auto& a : args) {
    if (a == "-cid") {
      a = "--cqrs-id";
    } else if (a.rfind("-cid=", 0) == 0) {
      a = "--cqrs-id=" + a.substr(5);
    }
  }
  return args;
}

std::optional<std::string> subcommand_for_program(std::string_view argv0) {
  const auto slash = argv0.rfind('/');
  const std::string_view base = slash == std::string_view::npos ? argv0 : argv0.substr(slash + 1);
  for (const auto& c : commands()) {
    if (!c.alias.empty() && c.alias == base) return c.name;
  }
  return std::nullopt;
}

namespace {

int run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string program = "pgcqrs";
  if (auto sub = subcommand_for_program(argc > 0 ? argv[0] : "pgcqrs")) {
    args.insert(args.begin(), *sub);
  }
  args = normalize_django_args(std::move(args));

  CLI::App app{
      "pgcqrs: replicates PostgreSQL tables to read models in other services through RabbitMQ,\n"
      "compatible with django-cqrs on the wire and in files.",
      program};
  app.set_version_flag("--version", std::string(PGCQRS_VERSION));
  GlobalOptions globals;
  app.add_option("--config", globals.config,
                 "configuration file (default: $PGCQRS_CONFIG, else ./pgcqrs.toml)");
  app.add_option("--log-level", globals.log_level,
                 "trace, debug, info, warn, error, critical or off")
      ->capture_default_str();
  app.add_option("--log-format", globals.log_format, "text or json (one object per line)")
      ->capture_default_str();
  app.require_subcommand(1);
  app.fallthrough();

  std::vector<std::pair<CLI::App*, Runner>> runners;
  for (const auto& spec : commands()) {
    std::string desc = spec.summary;
    if (!spec.alias.empty()) desc += " [" + spec.alias + "]";
    CLI::App* sub = app.add_subcommand(spec.name, desc);
    runners.emplace_back(sub, spec.setup(*sub, globals));
  }

  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? exit_code::kOk : exit_code::kUsage;
  }

  init_logging(parse_log_level(globals.log_level), parse_log_format(globals.log_format));
  for (auto& [sub, runner] : runners) {
    if (sub->parsed()) return runner();
  }
  return exit_code::kUsage;
}

}  // namespace
}  // namespace pgcqrs::tools

int main(int argc, char** argv) {
  try {
    return pgcqrs::tools::run(argc, argv);
  } catch (const pgcqrs::CommandError& e) {
    std::cerr << "CommandError: " << e.what() << "\n";
    return pgcqrs::exit_code_for(e);
  } catch (const std::exception& e) {
    std::cerr << "pgcqrs: " << e.what() << "\n";
    return pgcqrs::exit_code_for(e);
  }
}
