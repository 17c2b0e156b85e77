// Commands whose flags are fixed (django-cqrs spellings) but whose work lands in later issues:
// they parse their flags, then answer "not implemented yet" with exit code 2.
#include <iostream>
#include <memory>

#include "common/exit_codes.hpp"
#include "tools/command.hpp"

namespace pgcqrs::tools {
namespace {

struct PlannedOptions {
  std::vector<std::string> cqrs_ids;
  std::string text;
  int number = 0;
  bool flag = false;
};

Runner not_yet(const std::string& name, const std::string& issue) {
  return [name, issue] {
    std::cerr << "pgcqrs " << name << ": not implemented yet (" << issue << ")\n";
    return exit_code::kUsage;
  };
}

CommandSpec planned(std::string name, std::string alias, std::string summary, std::string issue,
                    std::function<void(CLI::App&, PlannedOptions&)> flags) {
  CommandSpec spec;
  spec.name = name;
  spec.alias = std::move(alias);
  spec.summary = std::move(summary);
  spec.setup = [name, issue, flags = std::move(flags)](CLI::App& sub,
                                                       const GlobalOptions&) -> Runner {
    auto opts = std::make_shared<PlannedOptions>();
    if (flags) flags(sub, *opts);
    Runner inner = not_yet(name, issue);
    return [opts, inner] { return inner(); };
  };
  return spec;
}

}  // namespace

std::vector<CommandSpec> planned_commands() {
  const std::string tools_issue = "issue 5: resync tools";
  std::vector<CommandSpec> v;
  v.push_back(planned("bulk-dump", "cqrs_bulk_dump", "dump a master table to a file", tools_issue,
                      [](CLI::App& s, PlannedOptions& o) {
                        s.add_option("-c,--cqrs-id", o.text, "master cqrs_id")->required();
                        s.add_option("-o,--output", o.text, "output file, - = stdout");
                        s.add_option("-b,--batch", o.number, "rows per batch")->default_val(10000);
                        s.add_flag("-p,--progress", o.flag, "show progress");
                        s.add_flag("-f,--force", o.flag, "overwrite an existing file");
                      }));
  v.push_back(
      planned("bulk-load", "cqrs_bulk_load", "load a dump file into a replica table", tools_issue,
              [](CLI::App& s, PlannedOptions& o) {
                s.add_option("-i,--input", o.text, "dump file, - = stdin")->required();
                s.add_option("-c,--clear", o.text, "delete all rows first (true/false)");
                s.add_option("-b,--batch", o.number, "lines per transaction")->default_val(10000);
              }));
  v.push_back(planned("sync", "cqrs_sync", "publish SYNC events for the rows a filter selects",
                      tools_issue, [](CLI::App& s, PlannedOptions& o) {
                        s.add_option("--cqrs-id", o.text, "master cqrs_id (-cid)")->required();
                        s.add_option("-f,--filter", o.text, "JSON of Django-style lookups");
                        s.add_option("-q,--queue", o.text, "only this replica queue");
                        s.add_option("-b,--batch", o.number, "rows per batch")->default_val(10000);
                        s.add_flag("-p,--progress", o.flag, "show progress");
                      }));
  v.push_back(planned("diff-master", "cqrs_diff_master", "print [pk, revision] pairs of a master",
                      tools_issue, [](CLI::App& s, PlannedOptions& o) {
                        s.add_option("--cqrs-id", o.text, "master cqrs_id (-cid)")->required();
                        s.add_option("-f,--filter", o.text, "JSON of Django-style lookups");
                        s.add_option("-b,--batch", o.number, "rows per batch")->default_val(10000);
                      }));
  v.push_back(planned("diff-replica", "cqrs_diff_replica",
                      "read diff-master output, print the pks that differ here", tools_issue,
                      nullptr));
  v.push_back(planned("diff-sync", "cqrs_diff_sync", "publish SYNCs for diff-replica output",
                      tools_issue, [](CLI::App& s, PlannedOptions& o) {
                        s.add_option("-b,--batch", o.number, "rows per batch")->default_val(10000);
                        s.add_flag("-p,--progress", o.flag, "show progress");
                      }));
  v.push_back(planned("deleted-diff-replica", "cqrs_deleted_diff_replica",
                      "print the pks a replica holds", tools_issue,
                      [](CLI::App& s, PlannedOptions& o) {
                        s.add_option("--cqrs-id", o.text, "replica cqrs_id (-cid)")->required();
                        s.add_option("-f,--filter", o.text, "JSON of Django-style lookups");
                        s.add_option("-b,--batch", o.number, "rows per batch")->default_val(10000);
                      }));
  v.push_back(planned("deleted-diff-master", "cqrs_deleted_diff_master",
                      "print the pks the master no longer has", tools_issue, nullptr));
  v.push_back(planned("deleted-sync-replica", "cqrs_deleted_sync_replica",
                      "delete the pks deleted-diff-master printed", tools_issue, nullptr));
  v.push_back(planned("dead-letters", "cqrs_dead_letters", "dump, retry or purge dead letters",
                      tools_issue, [](CLI::App& s, PlannedOptions& o) {
                        s.add_option("action", o.text, "dump, retry or purge")
                            ->required()
                            ->check(CLI::IsMember({"dump", "retry", "purge"}));
                      }));
  return v;
}

}  // namespace pgcqrs::tools
