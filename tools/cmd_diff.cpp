// cqrs_diff_master | cqrs_diff_replica | cqrs_diff_sync.
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include <spdlog/spdlog.h>

#include "common/config.hpp"
#include "common/error.hpp"
#include "common/exit_codes.hpp"
#include "master/diff.hpp"
#include "replica/diff.hpp"
#include "tools/command.hpp"

namespace pgcqrs::tools {
namespace {

// stdout and stderr carry django-cqrs's lines: connection chatter at info level stays out
// unless a more verbose level than the default was asked for.
void quiet_by_default(const GlobalOptions& g) {
  if (g.log_level == "info") spdlog::set_level(spdlog::level::warn);
}

struct DiffMasterFlags {
  std::string cqrs_id;
  std::optional<std::string> filter;
  int batch = 10000;
};

struct DiffSyncFlags {
  int batch = 10000;
  bool progress = false;
};

void check_batch(int batch) {
  if (batch < 1) throw CommandError("--batch must be at least 1, not " + std::to_string(batch));
}

int run_diff_master(const GlobalOptions& g, const DiffMasterFlags& f) {
  check_batch(f.batch);
  quiet_by_default(g);
  const Config config = load_config(resolve_config_path(g.config));
  master::DiffMasterOptions options{f.cqrs_id, f.filter, f.batch};
  master::diff_master(config, options, stdout, stderr);
  return exit_code::kOk;
}

int run_diff_replica(const GlobalOptions& g) {
  quiet_by_default(g);
  const Config config = load_config(resolve_config_path(g.config));
  // stdin is read through std::cin only: unsynced, it reads in blocks
  std::ios_base::sync_with_stdio(false);
  const replica::DiffReplicaReport r = replica::diff_replica(config, std::cin, stdout, stderr);
  if (r.bad_lines > 0) {
    throw CommandError(std::to_string(r.bad_lines) + " malformed line(s) skipped (see above)");
  }
  return exit_code::kOk;
}

int run_diff_sync(const GlobalOptions& g, const DiffSyncFlags& f) {
  check_batch(f.batch);
  quiet_by_default(g);
  const Config config = load_config(resolve_config_path(g.config));
  std::ios_base::sync_with_stdio(false);
  const master::DiffSyncReport r =
      master::diff_sync(config, std::cin, {f.batch, f.progress}, stdout, stderr);
  if (r.bad_lines > 0 || r.failed > 0) {
    std::string m;
    if (r.bad_lines > 0) m += std::to_string(r.bad_lines) + " malformed line(s) skipped";
    if (r.failed > 0) {
      if (!m.empty()) m += "; ";
      m += std::to_string(r.failed) + " instance(s) not synced";
    }
    throw CommandError(m + " (see above)");
  }
  return exit_code::kOk;
}

}  // namespace

std::vector<CommandSpec> diff_commands() {
  std::vector<CommandSpec> v;
  CommandSpec master_spec;
  master_spec.name = "diff-master";
  master_spec.alias = "cqrs_diff_master";
  master_spec.summary = "print [pk, revision] pairs of a master table";
  master_spec.setup = [](CLI::App& sub, const GlobalOptions& g) -> Runner {
    auto f = std::make_shared<DiffMasterFlags>();
    sub.add_option("--cqrs-id", f->cqrs_id, "master cqrs_id (also -cid)")->required();
    sub.add_option("-f,--filter", f->filter, "JSON object of Django lookups (default: all rows)");
    sub.add_option("-b,--batch", f->batch, "rows per line (keyset, primary-key order)")
        ->capture_default_str();
    sub.footer(
        "stdout: '<cqrs_id>,<now>' then one JSON array of [pk, cqrs_revision] pairs per batch,\n"
        "read in one snapshot. No rows: 'No objects found for filter!' on stderr. Pipe it to\n"
        "cqrs_diff_replica (pgcqrs or django-cqrs).");
    return [&g, f] { return run_diff_master(g, *f); };
  };
  v.push_back(master_spec);

  CommandSpec replica_spec;
  replica_spec.name = "diff-replica";
  replica_spec.alias = "cqrs_diff_replica";
  replica_spec.summary = "read diff-master output, print the pks that differ here";
  replica_spec.setup = [](CLI::App& sub, const GlobalOptions& g) -> Runner {
    sub.footer(
        "stdin: cqrs_diff_master's output. stdout: line 1 + ',<queue>', then per input line the\n"
        "JSON array of pks whose revision differs here (missing or newer included); stderr:\n"
        "'PK to resync: {...}'. Malformed lines are reported and skipped (exit code 1).");
    return [&g] { return run_diff_replica(g); };
  };
  v.push_back(replica_spec);

  CommandSpec sync_spec;
  sync_spec.name = "diff-sync";
  sync_spec.alias = "cqrs_diff_sync";
  sync_spec.summary = "publish SYNCs for diff-replica output";
  sync_spec.setup = [](CLI::App& sub, const GlobalOptions& g) -> Runner {
    auto f = std::make_shared<DiffSyncFlags>();
    sub.add_option("-b,--batch", f->batch, "rows per batch")->capture_default_str();
    sub.add_flag("-p,--progress", f->progress, "progress on stdout, as cqrs_sync --progress");
    sub.footer(
        "stdin: cqrs_diff_replica's output. Line 1 names the cqrs_id and the queue ('None' = all\n"
        "replicas); each further line's pks get a cqrs_sync, whose report is printed.");
    return [&g, f] { return run_diff_sync(g, *f); };
  };
  v.push_back(sync_spec);
  return v;
}

}  // namespace pgcqrs::tools
