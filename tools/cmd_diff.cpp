// cqrs_diff_master | cqrs_diff_replica | cqrs_diff_sync and the deleted-rows pipeline
// cqrs_deleted_diff_replica | cqrs_deleted_diff_master | cqrs_deleted_sync_replica.
#include "tools/command.hpp"

namespace pgcqrs::tools {

std::vector<CommandSpec> diff_commands() {
  const std::string issue = "issue 5: resync tools";
  std::vector<CommandSpec> v;
  v.push_back(
      planned_command("diff-master", "cqrs_diff_master", "print [pk, revision] pairs of a master",
                      issue, [](CLI::App& s, PlannedOptions& o) {
                        s.add_option("--cqrs-id", o.text, "master cqrs_id (-cid)")->required();
                        s.add_option("-f,--filter", o.text, "JSON of Django-style lookups");
                        s.add_option("-b,--batch", o.number, "rows per batch")->default_val(10000);
                      }));
  v.push_back(planned_command("diff-replica", "cqrs_diff_replica",
                              "read diff-master output, print the pks that differ here", issue,
                              nullptr));
  v.push_back(
      planned_command("diff-sync", "cqrs_diff_sync", "publish SYNCs for diff-replica output", issue,
                      [](CLI::App& s, PlannedOptions& o) {
                        s.add_option("-b,--batch", o.number, "rows per batch")->default_val(10000);
                        s.add_flag("-p,--progress", o.flag, "show progress");
                      }));
  v.push_back(
      planned_command("deleted-diff-replica", "cqrs_deleted_diff_replica",
                      "print the pks a replica holds", issue, [](CLI::App& s, PlannedOptions& o) {
                        s.add_option("--cqrs-id", o.text, "replica cqrs_id (-cid)")->required();
                        s.add_option("-f,--filter", o.text, "JSON of Django-style lookups");
                        s.add_option("-b,--batch", o.number, "rows per batch")->default_val(10000);
                      }));
  v.push_back(planned_command("deleted-diff-master", "cqrs_deleted_diff_master",
                              "print the pks the master no longer has", issue, nullptr));
  v.push_back(planned_command("deleted-sync-replica", "cqrs_deleted_sync_replica",
                              "delete the pks deleted-diff-master printed", issue, nullptr));
  return v;
}

}  // namespace pgcqrs::tools
