// cqrs_sync.
#include "tools/command.hpp"

namespace pgcqrs::tools {

std::vector<CommandSpec> sync_commands() {
  std::vector<CommandSpec> v;
  v.push_back(
      planned_command("sync", "cqrs_sync", "publish SYNC events for the rows a filter selects",
                      "issue 5: resync tools", [](CLI::App& s, PlannedOptions& o) {
                        s.add_option("--cqrs-id", o.text, "master cqrs_id (-cid)")->required();
                        s.add_option("-f,--filter", o.text, "JSON of Django lookups");
                        s.add_option("-q,--queue", o.text, "only this replica queue");
                        s.add_option("-b,--batch", o.number, "rows per batch");
                        s.add_flag("-p,--progress", o.flag, "show progress");
                      }));
  return v;
}

}  // namespace pgcqrs::tools
