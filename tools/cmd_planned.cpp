// Commands whose flags are fixed (django-cqrs spellings) but whose work is not implemented yet:
// they parse their flags, then answer "not implemented yet" with exit code 2.
#include <iostream>
#include <memory>

#include "common/exit_codes.hpp"
#include "tools/command.hpp"

namespace pgcqrs::tools {

CommandSpec planned_command(std::string name, std::string alias, std::string summary,
                            std::string issue,
                            std::function<void(CLI::App&, PlannedOptions&)> flags) {
  CommandSpec spec;
  spec.name = name;
  spec.alias = std::move(alias);
  spec.summary = std::move(summary);
  spec.setup = [name, issue, flags = std::move(flags)](CLI::App& sub,
                                                       const GlobalOptions&) -> Runner {
    auto opts = std::make_shared<PlannedOptions>();
    if (flags) flags(sub, *opts);
    return [name, issue, opts] {
      std::cerr << "pgcqrs " << name << ": not implemented yet (" << issue << ")\n";
      return exit_code::kUsage;
    };
  };
  return spec;
}

}  // namespace pgcqrs::tools
