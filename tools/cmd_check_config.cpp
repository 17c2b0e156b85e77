// `pgcqrs check-config`: validate the configuration and print it with defaults and secrets masked.
#include <iostream>

#include "common/config.hpp"
#include "common/exit_codes.hpp"
#include "tools/command.hpp"

namespace pgcqrs::tools {

std::vector<CommandSpec> check_config_commands() {
  CommandSpec spec;
  spec.name = "check-config";
  spec.summary = "validate the configuration file and print the effective settings";
  spec.setup = [](CLI::App& sub, const GlobalOptions& globals) -> Runner {
    sub.footer(
        "Exit code 0 when valid; 2 with a message naming the file, line, key and fix otherwise.");
    return [&globals] {
      const std::string path = resolve_config_path(globals.config);
      const Config config = load_config(path);
      std::cout << "# " << path << ": valid\n" << render_config(config);
      return exit_code::kOk;
    };
  };
  return {spec};
}

}  // namespace pgcqrs::tools
