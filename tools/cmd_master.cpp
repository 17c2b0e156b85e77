// `pgcqrs master`: run the agent that publishes the outbox; `master install|uninstall`.
#include <optional>

#include "common/config.hpp"
#include "common/error.hpp"
#include "common/exit_codes.hpp"
#include "common/http/server.hpp"
#include "common/signals.hpp"
#include "master/agent.hpp"
#include "tools/command.hpp"

namespace pgcqrs::tools {
namespace {

int run_agent(const GlobalOptions& g) {
  const Config config = load_config(resolve_config_path(g.config));
  if (!config.master) {
    throw pgcqrs::ConfigError(config.source + ": [master] is not configured; the agent needs it");
  }
  install_stop_handlers();
  http::Registry metrics;
  master::Agent agent(config, metrics);
  std::optional<http::OpsServer> ops;
  if (config.master->http.port != 0) {
    ops.emplace(
        metrics,
        [] {
          return http::Health{true, ""};
        },
        [&agent] {
          const auto s = agent.state();
          if (s == master::AgentState::kActive) return http::Health{true, "active\n"};
          if (s == master::AgentState::kStandby) return http::Health{true, "standby\n"};
          return http::Health{false, "connecting\n"};
        });
    ops->start(config.master->http.host, config.master->http.port);
  }
  agent.run();
  return exit_code::kOk;
}

}  // namespace

std::vector<CommandSpec> master_commands() {
  CommandSpec spec;
  spec.name = "master";
  spec.summary = "run the master agent (outbox -> RabbitMQ); or install/uninstall capture";
  spec.setup = [](CLI::App& sub, const GlobalOptions& g) -> Runner {
    sub.footer(
        "Without a subcommand: runs the agent until SIGTERM/SIGINT. One agent is active per\n"
        "master database; others started wait as hot standbys and take over within seconds.");
    Runner install = setup_master_install(sub, g);
    return [install, &g] {
      const int rc = install();
      if (rc >= 0) return rc;
      return run_agent(g);
    };
  };
  return {spec};
}

}  // namespace pgcqrs::tools
