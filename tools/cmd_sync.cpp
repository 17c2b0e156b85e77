// cqrs_sync: publish SYNC events for the rows a filter selects (master side).
#include <cstdio>
#include <memory>
#include <optional>

#include <spdlog/spdlog.h>

#include "common/config.hpp"
#include "common/error.hpp"
#include "common/exit_codes.hpp"
#include "master/sync.hpp"
#include "tools/command.hpp"

namespace pgcqrs::tools {
namespace {

// stdout and stderr carry django-cqrs's lines: connection chatter at info level stays out
// unless a more verbose level than the default was asked for.
void quiet_by_default(const GlobalOptions& g) {
  if (g.log_level == "info") spdlog::set_level(spdlog::level::warn);
}

struct SyncFlags {
  std::string cqrs_id;
  std::optional<std::string> filter;
  std::optional<std::string> queue;
  int batch = 10000;
  bool progress = false;
};

int run_sync(const GlobalOptions& g, const SyncFlags& f) {
  if (f.batch < 1) throw CommandError("--batch must be at least 1, not " + std::to_string(f.batch));
  quiet_by_default(g);
  const Config config = load_config(resolve_config_path(g.config));
  master::Syncer syncer(config, f.cqrs_id);
  master::SyncOptions options;
  options.queue = f.queue;
  options.batch = f.batch;
  options.progress = f.progress;
  const master::SyncReport r = syncer.sync_filter(f.filter, options, stdout);
  if (r.failed > 0) {
    throw CommandError(std::to_string(r.failed) +
                       " instance(s) not synced (see 'Sync record failed' above)");
  }
  return exit_code::kOk;
}

}  // namespace

std::vector<CommandSpec> sync_commands() {
  CommandSpec spec;
  spec.name = "sync";
  spec.alias = "cqrs_sync";
  spec.summary = "publish SYNC events for the rows a filter selects";
  spec.setup = [](CLI::App& sub, const GlobalOptions& g) -> Runner {
    auto f = std::make_shared<SyncFlags>();
    sub.add_option("--cqrs-id", f->cqrs_id, "master cqrs_id (also -cid)")->required();
    sub.add_option("-f,--filter", f->filter,
                   "JSON object of Django lookups, e.g. '{\"id__in\": [1, 2]}'; '{}' = all rows; "
                   "none = nothing");
    sub.add_option("-q,--queue", f->queue,
                   "only this replica queue (routing key cqrs.<queue>.<cqrs_id>); default: all");
    sub.add_option("-b,--batch", f->batch, "rows per batch (keyset, primary-key order)")
        ->capture_default_str();
    sub.add_flag("-p,--progress", f->progress,
                 "django-cqrs's 'Processing N records' line and progress on stdout");
    sub.footer(
        "Prints django-cqrs's summary on stdout: 'Done!', 'N instance(s) synced.', 'N "
        "instance(s)\nprocessed.', or 'No objects found for filter!'. Events are confirmed by the "
        "broker;\na nacked or unroutable one is reported ('Sync record failed for pk=...') and "
        "the exit\ncode is 1. Without --progress a live progress line is drawn on stderr when "
        "it is a terminal.");
    return [&g, f] { return run_sync(g, *f); };
  };
  return {spec};
}

}  // namespace pgcqrs::tools
