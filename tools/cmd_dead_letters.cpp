// cqrs_dead_letters dump|retry|purge.
#include <iostream>
#include <memory>

#include <spdlog/spdlog.h>

#include "common/config.hpp"
#include "common/error.hpp"
#include "common/exit_codes.hpp"
#include "replica/dead_letters.hpp"
#include "tools/command.hpp"

namespace pgcqrs::tools {
namespace {

int run_dead_letters(const GlobalOptions& g, const std::string& action) {
  // stdout and stderr are django-cqrs's texts; connection logs only when asked for
  if (g.log_level == "info") spdlog::set_level(spdlog::level::warn);
  const Config config = load_config(resolve_config_path(g.config));
  const replica::DeadLetterAction a = action == "dump"    ? replica::DeadLetterAction::kDump
                                      : action == "retry" ? replica::DeadLetterAction::kRetry
                                                          : replica::DeadLetterAction::kPurge;
  const replica::DeadLetterReport r = replica::run_dead_letters(config, a, std::cout, std::cerr);
  if (r.kept > 0) {
    throw CommandError(std::to_string(r.kept) +
                       " dead letter(s) could not be retried (see above); they stay in the "
                       "dead-letter queue");
  }
  return exit_code::kOk;
}

}  // namespace

std::vector<CommandSpec> dead_letter_commands() {
  CommandSpec spec;
  spec.name = "dead-letters";
  spec.alias = "cqrs_dead_letters";
  spec.summary = "dump, retry or purge the replica's dead letters";
  spec.setup = [](CLI::App& sub, const GlobalOptions& g) -> Runner {
    auto action = std::make_shared<std::string>();
    sub.add_option("action", *action, "dump, retry or purge")
        ->required()
        ->check(CLI::IsMember({"dump", "retry", "purge"}));
    sub.footer(
        "Declares the consumer's topology, then works on replica.dead_letter_queue:\n"
        "  dump   print every dead letter's body, one per line; the queue is left exactly\n"
        "         as it was (same messages, same order)\n"
        "  retry  `Total dead letters: N`, then per message `Retrying: i/N`: retries := 0,\n"
        "         a set expires := now + replica.message_ttl, republished (confirmed) to\n"
        "         cqrs.<queue>.<cqrs_id> (this replica only), the body printed, and only\n"
        "         then removed from the dead-letter queue; a message that cannot be sent\n"
        "         back (bad JSON, unroutable) stays there and the exit code is 1\n"
        "  purge  `Total dead letters: N`, and `Purged` after dropping them when N > 0\n"
        "Never waits for messages that are not there.");
    return [&g, action] { return run_dead_letters(g, *action); };
  };
  return {spec};
}

}  // namespace pgcqrs::tools
