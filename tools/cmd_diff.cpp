// cqrs_diff_master | cqrs_diff_replica | cqrs_diff_sync.
#include "tools/command.hpp"

namespace pgcqrs::tools {

std::vector<CommandSpec> diff_commands() {
  const std::string issue = "issue 5: resync tools";
  std::vector<CommandSpec> v;
  v.push_back(
      planned_command("diff-master", "cqrs_diff_master", "print [pk, revision] pairs of a master",
                      issue, [](CLI::App& s, PlannedOptions& o) {
                        s.add_option("--cqrs-id", o.text, "master cqrs_id (-cid)")->required();
                        s.add_option("-f,--filter", o.text, "JSON of Django lookups");
                        s.add_option("-b,--batch", o.number, "rows per batch");
                      }));
  v.push_back(planned_command("diff-replica", "cqrs_diff_replica",
                              "read diff-master output, print the pks that differ here", issue,
                              nullptr));
  v.push_back(planned_command("diff-sync", "cqrs_diff_sync",
                              "publish SYNCs for diff-replica output", issue,
                              [](CLI::App& s, PlannedOptions& o) {
                                s.add_option("-b,--batch", o.number, "rows per batch");
                                s.add_flag("-p,--progress", o.flag, "show progress");
                              }));
  return v;
}

}  // namespace pgcqrs::tools
