// cqrs_dead_letters dump|retry|purge.
#include "tools/command.hpp"

namespace pgcqrs::tools {

std::vector<CommandSpec> dead_letter_commands() {
  std::vector<CommandSpec> v;
  v.push_back(planned_command("dead-letters", "cqrs_dead_letters",
                              "dump, retry or purge dead letters", "issue 5: resync tools",
                              [](CLI::App& s, PlannedOptions& o) {
                                s.add_option("action", o.text, "dump, retry or purge")
                                    ->required()
                                    ->check(CLI::IsMember({"dump", "retry", "purge"}));
                              }));
  return v;
}

}  // namespace pgcqrs::tools
