// cqrs_bulk_dump, cqrs_bulk_load.
#include "tools/command.hpp"

namespace pgcqrs::tools {

std::vector<CommandSpec> bulk_commands() {
  const std::string issue = "issue 5: resync tools";
  std::vector<CommandSpec> v;
  v.push_back(planned_command("bulk-dump", "cqrs_bulk_dump", "dump a master table to a file", issue,
                              [](CLI::App& s, PlannedOptions& o) {
                                s.add_option("-c,--cqrs-id", o.text, "master cqrs_id")->required();
                                s.add_option("-o,--output", o.text, "output file, - = stdout");
                                s.add_option("-b,--batch", o.number, "rows per batch");
                                s.add_flag("-p,--progress", o.flag, "show progress");
                                s.add_flag("-f,--force", o.flag, "overwrite an existing file");
                              }));
  v.push_back(
      planned_command("bulk-load", "cqrs_bulk_load", "load a dump file into a replica table", issue,
                      [](CLI::App& s, PlannedOptions& o) {
                        s.add_option("-i,--input", o.text, "dump file, - = stdin")->required();
                        s.add_option("-c,--clear", o.text, "delete all rows first");
                        s.add_option("-b,--batch", o.number, "lines per transaction");
                      }));
  return v;
}

}  // namespace pgcqrs::tools
