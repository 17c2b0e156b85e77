// cqrs_deleted_diff_replica | cqrs_deleted_diff_master | cqrs_deleted_sync_replica.
#include "tools/command.hpp"

namespace pgcqrs::tools {

std::vector<CommandSpec> deleted_commands() {
  const std::string issue = "issue 5: resync tools";
  std::vector<CommandSpec> v;
  v.push_back(
      planned_command("deleted-diff-replica", "cqrs_deleted_diff_replica",
                      "print the pks a replica holds", issue, [](CLI::App& s, PlannedOptions& o) {
                        s.add_option("--cqrs-id", o.text, "replica cqrs_id (-cid)")->required();
                        s.add_option("-f,--filter", o.text, "JSON of Django lookups");
                        s.add_option("-b,--batch", o.number, "rows per batch");
                      }));
  v.push_back(planned_command("deleted-diff-master", "cqrs_deleted_diff_master",
                              "print the pks the master no longer has", issue, nullptr));
  v.push_back(planned_command("deleted-sync-replica", "cqrs_deleted_sync_replica",
                              "delete the pks deleted-diff-master printed", issue, nullptr));
  return v;
}

}  // namespace pgcqrs::tools
