// `pgcqrs master`: run the agent that publishes the outbox; `master install|uninstall`.
#include <iostream>

#include "common/exit_codes.hpp"
#include "tools/command.hpp"

namespace pgcqrs::tools {

std::vector<CommandSpec> master_commands() {
  CommandSpec spec;
  spec.name = "master";
  spec.summary = "run the master agent (outbox -> RabbitMQ); or install/uninstall capture";
  spec.setup = [](CLI::App& sub, const GlobalOptions& g) -> Runner {
    Runner install = setup_master_install(sub, g);
    return [install] {
      const int rc = install();
      if (rc >= 0) return rc;
      std::cerr << "pgcqrs master: the agent is not implemented yet (issue 3)\n";
      return exit_code::kUsage;
    };
  };
  return {spec};
}

}  // namespace pgcqrs::tools
