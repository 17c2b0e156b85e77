// cqrs_deleted_diff_replica | cqrs_deleted_diff_master | cqrs_deleted_sync_replica.
#include <iostream>
#include <memory>

#include <spdlog/spdlog.h>

#include "common/config.hpp"
#include "common/error.hpp"
#include "common/exit_codes.hpp"
#include "common/pg/session.hpp"
#include "master/deleted.hpp"
#include "replica/deleted.hpp"
#include "tools/command.hpp"

namespace pgcqrs::tools {
namespace {

// stdout and stderr are the pipeline's texts; connection logs only when asked for
void quiet_logs(const GlobalOptions& g) {
  if (g.log_level == "info") spdlog::set_level(spdlog::level::warn);
}

const ReplicaConfig& replica_config(const Config& config, const char* command) {
  if (!config.replica) {
    throw ConfigError(config.source + ": [replica] is not configured; " + command +
                      " runs on a replica");
  }
  return *config.replica;
}

int run_diff_replica(const GlobalOptions& g, const replica::DeletedDiffOptions& options) {
  quiet_logs(g);
  const Config config = load_config(resolve_config_path(g.config));
  const ReplicaConfig& rc = replica_config(config, "deleted-diff-replica");
  pg::Session db(rc.database, "pgcqrs deleted-diff-replica");
  replica::deleted_diff_replica(db.conn(), rc, options, std::cout, std::cerr);
  return exit_code::kOk;
}

int run_diff_master(const GlobalOptions& g) {
  quiet_logs(g);
  const Config config = load_config(resolve_config_path(g.config));
  if (!config.master) {
    throw ConfigError(config.source +
                      ": [master] is not configured; deleted-diff-master runs on a master");
  }
  pg::Session db(config.master->database, "pgcqrs deleted-diff-master");
  const master::DeletedDiffMasterReport r =
      master::deleted_diff_master(db.conn(), *config.master, std::cin, std::cout, std::cerr);
  if (r.empty_input) {
    std::cerr << "No input: expected deleted-diff-replica's output on stdin; nothing to do.\n";
  }
  if (r.bad_lines > 0) {
    throw CommandError(std::to_string(r.bad_lines) +
                       " input line(s) could not be checked (see above); the other lines were");
  }
  return exit_code::kOk;
}

int run_sync_replica(const GlobalOptions& g, bool progress) {
  quiet_logs(g);
  const Config config = load_config(resolve_config_path(g.config));
  const ReplicaConfig& rc = replica_config(config, "deleted-sync-replica");
  pg::Session db(rc.database, "pgcqrs deleted-sync-replica");
  const replica::DeletedSyncReport r =
      replica::deleted_sync_replica(db.conn(), rc, std::cin, std::cerr, progress);
  if (r.empty_input) {
    std::cerr << "No input: expected deleted-diff-master's output on stdin; nothing to do.\n";
    return exit_code::kOk;
  }
  std::cerr << "Done!\n" << r.deleted << " instance(s) deleted.\n";
  if (r.bad_lines > 0) {
    throw CommandError(std::to_string(r.bad_lines) +
                       " input line(s) were not applied (see above); the other lines were");
  }
  return exit_code::kOk;
}

}  // namespace

std::vector<CommandSpec> deleted_commands() {
  std::vector<CommandSpec> v;

  CommandSpec diff_replica;
  diff_replica.name = "deleted-diff-replica";
  diff_replica.alias = "cqrs_deleted_diff_replica";
  diff_replica.summary = "print the primary keys a replica holds, for deleted-diff-master";
  diff_replica.setup = [](CLI::App& sub, const GlobalOptions& g) -> Runner {
    auto o = std::make_shared<replica::DeletedDiffOptions>();
    sub.add_option("--cqrs-id", o->cqrs_id, "replica cqrs_id (-cid)")->required();
    sub.add_option("-f,--filter", o->filter,
                   "JSON of Django lookups over the replica's columns, e.g. "
                   "'{\"id__gte\": 1000}'; default: every row");
    sub.add_option("-b,--batch", o->batch, "primary keys per output line")
        ->default_val(10000)
        ->check(CLI::Range(1, 10'000'000));
    sub.add_flag("-p,--progress", o->progress,
                 "progress lines on stderr (a terminal gets a live line anyway)");
    sub.footer(
        "stdout: `<cqrs_id>,<now>`, then one JSON array of primary keys per batch, in key\n"
        "order (keyset batches in one snapshot), e.g. [1,2,9]. No row: `No objects found for\n"
        "filter!` on stderr and nothing on stdout.\n"
        "Pipeline: pgcqrs deleted-diff-replica -cid author | pgcqrs deleted-diff-master |\n"
        "          pgcqrs deleted-sync-replica   (see docs/commands.md)");
    return [&g, o] { return run_diff_replica(g, *o); };
  };
  v.push_back(std::move(diff_replica));

  CommandSpec diff_master;
  diff_master.name = "deleted-diff-master";
  diff_master.alias = "cqrs_deleted_diff_master";
  diff_master.summary = "read deleted-diff-replica output, print the pks the master lacks";
  diff_master.setup = [](CLI::App& sub, const GlobalOptions& g) -> Runner {
    sub.footer(
        "stdin: deleted-diff-replica's output (django-cqrs's or ours). stdout: line 1\n"
        "echoed, then per input line the JSON array of the keys no master row has (nothing\n"
        "when all exist); stderr: `PK to delete: [..]` for each. One query per line.\n"
        "A malformed line is reported (`line N: skipped: <why>`) and the rest processed;\n"
        "the exit code is then 1.");
    return [&g] { return run_diff_master(g); };
  };
  v.push_back(std::move(diff_master));

  CommandSpec sync_replica;
  sync_replica.name = "deleted-sync-replica";
  sync_replica.alias = "cqrs_deleted_sync_replica";
  sync_replica.summary = "delete the pks deleted-diff-master printed";
  sync_replica.setup = [](CLI::App& sub, const GlobalOptions& g) -> Runner {
    auto progress = std::make_shared<bool>(false);
    sub.add_flag("-p,--progress", *progress,
                 "progress lines on stderr (a terminal gets a live line anyway)");
    sub.footer(
        "stdin: deleted-diff-master's output. Deletes each line's keys in one statement\n"
        "(its own transaction), without revision checks, and records a tombstone at each\n"
        "deleted row's cqrs_revision so that a late SAVE cannot bring it back (a SYNC can).\n"
        "Nothing on stdout; errors per line on stderr, then `Done!` and the count.");
    return [&g, progress] { return run_sync_replica(g, *progress); };
  };
  v.push_back(std::move(sync_replica));
  return v;
}

}  // namespace pgcqrs::tools
