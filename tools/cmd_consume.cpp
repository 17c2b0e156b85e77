// `pgcqrs consume` = `cqrs_consume`: run replica workers until SIGTERM/SIGINT.
#include <memory>
#include <optional>

#include "common/config.hpp"
#include "common/error.hpp"
#include "common/exit_codes.hpp"
#include "common/http/server.hpp"
#include "common/signals.hpp"
#include "replica/consumer.hpp"
#include "tools/command.hpp"

namespace pgcqrs::tools {
namespace {

int run_consume(const GlobalOptions& g, const replica::ConsumerOptions& options) {
  const Config config = load_config(resolve_config_path(g.config));
  if (!config.replica) {
    throw ConfigError(config.source + ": [replica] is not configured; consume needs it");
  }
  // before the ops server binds its port: a wrong id is a usage error, not a bind conflict
  for (const auto& id : options.cqrs_ids) {
    if (config.find_replica_model(id) == nullptr) {
      std::string known;
      for (const auto& m : config.replica->models)
        known += (known.empty() ? "" : ", ") + m.cqrs_id;
      throw ConfigError("--cqrs-id " + id + ": Wrong CQRS ID: " + id + "! (this replica has " +
                        known + ")");
    }
  }
  install_stop_handlers();
  http::Registry metrics;
  const HttpEndpoint http = config.replica->http;
  replica::Consumer consumer(config, metrics, options);
  std::optional<http::OpsServer> ops;
  if (http.port != 0) {
    ops.emplace(
        metrics, [&consumer] { return consumer.liveness(); },
        [&consumer] { return consumer.readiness(); });
    ops->start(http.host, http.port);
  }
  consumer.run();
  return exit_code::kOk;
}

}  // namespace

std::vector<CommandSpec> consume_commands() {
  CommandSpec spec;
  spec.name = "consume";
  spec.alias = "cqrs_consume";
  spec.summary = "run replica workers (RabbitMQ -> read-model tables) until SIGTERM";
  spec.setup = [](CLI::App& sub, const GlobalOptions& g) -> Runner {
    auto opts = std::make_shared<replica::ConsumerOptions>();
    sub.add_option("-w,--workers", opts->workers,
                   "worker threads, each with its own broker channel and database connection")
        ->default_val(1)
        ->check(CLI::Range(1, 256));
    sub.add_option("--cqrs-id", opts->cqrs_ids,
                   "bind the queue only for this cqrs_id (repeatable; -cid); default: every "
                   "[[replica.model]]")
        ->take_all();
    sub.footer(
        "Declares exchange, queue `replica.queue` (bound with <cqrs_id> and\n"
        "cqrs.<queue>.<cqrs_id>), the dead-letter queue and one delay queue per retry delay\n"
        "(<queue>.retry.<N>s), then consumes with `replica.prefetch` unacked deliveries per\n"
        "worker. Each batch (replica.batch_size deliveries or replica.batch_timeout_ms) keeps\n"
        "the newest revision per row, applies each cqrs_id with one revision-guarded statement,\n"
        "COMMITs, then acks. A message that fails is retried with retries + 1 after\n"
        "retry_delay * retry_backoff^retries seconds (capped at retry_delay_max), through the\n"
        "delay queue, so a restart loses nothing; after max_retries it goes to the dead-letter\n"
        "queue. Expired messages are dead-lettered unapplied; malformed bodies are logged,\n"
        "counted, rejected or dead-lettered. SIGTERM/SIGINT: the current batch is committed and\n"
        "acked, exit 0. /metrics, /healthz and /readyz on replica.http_port when set.\n"
        "See docs/replica.md.\n");
    return [&g, opts] { return run_consume(g, *opts); };
  };
  return {spec};
}

}  // namespace pgcqrs::tools
