// cqrs_bulk_dump, cqrs_bulk_load: dump a master table to a file, load a dump into a replica.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

#include "common/config.hpp"
#include "common/error.hpp"
#include "common/exit_codes.hpp"
#include "common/pg/session.hpp"
#include "master/dump.hpp"
#include "replica/load.hpp"
#include "tools/command.hpp"

namespace pgcqrs::tools {
namespace {

struct DumpFlags {
  std::string cqrs_id;
  std::optional<std::string> output;
  int batch = 10000;
  bool progress = false;
  bool force = false;
};

struct LoadFlags {
  std::string input;
  std::string clear;  // "" with a bare --clear
  int batch = 10000;
};

void print_err(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

int run_dump(const GlobalOptions& g, const DumpFlags& f) {
  const Config config = load_config(resolve_config_path(g.config));
  if (!config.master) {
    throw ConfigError(config.source + ": [master] is not configured; bulk-dump needs it");
  }
  const MasterModel* model = config.find_master_model(f.cqrs_id);
  if (model == nullptr) throw CommandError("Wrong CQRS ID: " + f.cqrs_id + "!");
  std::string output = f.output.value_or(f.cqrs_id);
  if (!f.output) output.append(".dump");

  master::DumpOptions options;
  options.batch = f.batch;
  options.progress = f.progress;
  master::DumpCounts counts;
  if (output == "-") {
    counts = master::dump_table(config.master->database, *model, stdout, options, stderr);
  } else {
    std::error_code ec;
    if (std::filesystem::exists(output, ec) && !f.force) {
      throw CommandError("File " + output + " exists!");
    }
    master::AtomicFile file(output);
    counts = master::dump_table(config.master->database, *model, file.file(), options, stderr);
    file.commit();
  }
  print_err(master::done_message(counts));
  return exit_code::kOk;
}

int run_load(const GlobalOptions& g, const LoadFlags& f, bool clear) {
  const Config config = load_config(resolve_config_path(g.config));
  if (!config.replica) {
    throw ConfigError(config.source + ": [replica] is not configured; bulk-load needs it");
  }
  std::ifstream file;
  std::istream* in = &std::cin;
  if (f.input != "-") {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(f.input, ec) && !std::filesystem::is_fifo(f.input, ec) &&
        !std::filesystem::is_character_file(f.input, ec)) {
      throw CommandError(replica::file_missing_message(f.input));
    }
    file.open(f.input, std::ios::binary);
    if (!file) throw CommandError("File " + f.input + " can't be opened!");
    in = &file;
  } else {
    std::ios::sync_with_stdio(false);
  }
  const std::string cqrs_id = replica::read_cqrs_id(*in, f.input);
  if (config.find_replica_model(cqrs_id) == nullptr) {
    throw CommandError(replica::wrong_cqrs_id_message(cqrs_id));
  }
  pg::Session db(config.replica->database, "pgcqrs bulk-load");
  const replica::Target target = replica::load_target(db.conn(), *config.replica, cqrs_id);
  if (clear) replica::clear_table(db.conn(), target);
  replica::LoadOptions options;
  options.batch = f.batch;
  options.clear = clear;
  const replica::LoadCounts counts = replica::load_lines(db.conn(), target, *in, options, stderr);
  if (in->bad()) throw Error("read " + f.input + ": I/O error");
  print_err(replica::loaded_message(counts.loaded));
  return exit_code::kOk;
}

CommandSpec dump_spec() {
  CommandSpec spec;
  spec.name = "bulk-dump";
  spec.alias = "cqrs_bulk_dump";
  spec.summary = "dump a master table to a file (one consistent snapshot)";
  spec.setup = [](CLI::App& sub, const GlobalOptions& g) -> Runner {
    auto f = std::make_shared<DumpFlags>();
    sub.add_option("-c,--cqrs-id", f->cqrs_id, "master cqrs_id")->required();
    sub.add_option("-o,--output", f->output, "output file, - = stdout (default: <cqrs_id>.dump)");
    sub.add_option("-b,--batch", f->batch, "rows per progress step")
        ->capture_default_str()
        ->check(CLI::Range(1, 100000000));
    sub.add_flag("-p,--progress", f->progress,
                 "print 'Processing N records with batch size B' and a progress line on stderr");
    sub.add_flag("-f,--force", f->force, "overwrite an existing output file");
    sub.footer(
        "Line 1 is the cqrs_id; each following line is one row's SAVE instance_data exactly as\n"
        "the agent publishes it (same fields, serializer, formats); no trailing newline. Every\n"
        "row of the table (the model's filter is not applied, as django-cqrs), in the table's\n"
        "order, read in one REPEATABLE READ snapshot with one COPY. The file is written under a\n"
        "temporary name and renamed at the end. stderr: Done!, N instance(s) saved., M\n"
        "instance(s) processed.\n");
    return [&g, f] { return run_dump(g, *f); };
  };
  return spec;
}

CommandSpec load_spec() {
  CommandSpec spec;
  spec.name = "bulk-load";
  spec.alias = "cqrs_bulk_load";
  spec.summary = "load a dump file into a replica table (revision rules apply)";
  spec.setup = [](CLI::App& sub, const GlobalOptions& g) -> Runner {
    auto f = std::make_shared<LoadFlags>();
    sub.add_option("-i,--input", f->input, "dump file, - = stdin")->required();
    CLI::Option* clear =
        sub.add_option("-c,--clear", f->clear,
                       "delete every row of the table first: true/false, 1/0, yes/no (a bare "
                       "--clear means true)")
            ->expected(0, 1)
            ->type_name("BOOL")
            ->check(CLI::Validator(
                [](std::string& v) -> std::string {
                  // a bare --clear arrives as "" (CLI11's value of an option given without one)
                  if (v.empty() || replica::parse_bool(v)) return "";
                  return "--clear '" + v + "': not a boolean; use true/false, 1/0 or yes/no";
                },
                "BOOL"));
    sub.add_option("-b,--batch", f->batch, "lines per transaction")
        ->capture_default_str()
        ->check(CLI::Range(1, 1000000));
    sub.footer(
        "Line 1 names the replica model; each following line is applied as a SAVE with the\n"
        "consumer's revision rules (only newer revisions win, tombstones are respected),\n"
        "--batch lines per transaction, set-based. stderr: one django-cqrs message per refused\n"
        "line, then Done! and N instance(s) loaded. (skipped older/equal revisions count as\n"
        "loaded, as in django-cqrs).\n");
    return [&g, f, clear] {
      bool on = false;
      if (clear->count() > 0) {
        on = f->clear.empty() || replica::parse_bool(f->clear).value_or(false);
      }
      return run_load(g, *f, on);
    };
  };
  return spec;
}

}  // namespace

std::vector<CommandSpec> bulk_commands() {
  std::vector<CommandSpec> v;
  v.push_back(dump_spec());
  v.push_back(load_spec());
  return v;
}

}  // namespace pgcqrs::tools
