// `pgcqrs watch`: print the events published for some cqrs_ids, without disturbing replicas.
#include <iostream>
#include <memory>

#include "common/config.hpp"
#include "common/error.hpp"
#include "common/exit_codes.hpp"
#include "common/signals.hpp"
#include "replica/watch.hpp"
#include "tools/command.hpp"

namespace pgcqrs::tools {

std::vector<CommandSpec> watch_commands() {
  CommandSpec spec;
  spec.name = "watch";
  spec.summary = "print events as they are published (a private queue; replicas unaffected)";
  spec.setup = [](CLI::App& sub, const GlobalOptions& g) -> Runner {
    auto opts = std::make_shared<replica::WatchOptions>();
    auto idle_ms = std::make_shared<long>(0);
    sub.add_option("--cqrs-id", opts->cqrs_ids, "cqrs_id to watch (repeatable; -cid)")->required();
    sub.add_option("-n,--count", opts->count, "exit after this many events (0 = never)");
    sub.add_option("--idle-timeout-ms", *idle_ms, "exit after this long without an event");
    sub.footer(
        "Prints `<routing key> <body>` per event on stdout; `watching ...` on stderr once\n"
        "the private queue is bound (events published before that are not seen).");
    return [&g, opts, idle_ms] {
      const Config config = load_config(resolve_config_path(g.config));
      install_stop_handlers();
      opts->idle_timeout = std::chrono::milliseconds(*idle_ms);
      replica::watch(
          config.broker, *opts,
          [&config] {
            std::cerr << "watching exchange '" << config.broker.exchange << "'" << std::endl;
          },
          [](const std::string& key, const std::string& body) {
            std::cout << key << " " << body << std::endl;
          });
      return exit_code::kOk;
    };
  };
  return {spec};
}

}  // namespace pgcqrs::tools
