// The replica consumer (`pgcqrs consume`): worker threads, batches, retries, dead letters, and
// the embedding API (handlers per cqrs_id, middleware around apply).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/backoff.hpp"
#include "common/config.hpp"
#include "common/http/metrics.hpp"
#include "common/http/server.hpp"
#include "common/pg/pqxx.hpp"
#include "replica/applier.hpp"
#include "replica/batch.hpp"

namespace pgcqrs::replica {

// What a handler gets: the rows of one cqrs_id of one batch (newest per row for table models;
// every event, in arrival order, for apply_function and handler-only ones), inside the batch's
// transaction. The transaction commits after every handler of the batch returned; only then
// are the deliveries acked.
struct ApplyContext {
  pqxx::dbtransaction& txn;
  const Target& target;
  std::span<const Row> rows;
  ApplyOptions options;
};

// Applies ctx.rows and returns one RowResult per row, in order (an empty result means: every
// row kCalled). A row that cannot be applied is reported kFailed with its reason (it is retried,
// then dead-lettered, the other rows are acked); throwing MessageError fails every row of the
// call: the consumer then splits the rows in halves, each in a savepoint, until it finds the
// rows that fail. Any other exception is an infrastructure failure: the batch is rolled back,
// the worker reconnects and the deliveries come back.
using Handler = std::function<ApplyResult(ApplyContext& ctx)>;

// Wraps every handler: call `next(ctx)` to apply (or not: returning without calling it skips
// the rows, which are then acked). Registered middleware nest in registration order, the first
// outermost.
using Middleware = std::function<ApplyResult(ApplyContext& ctx, const Handler& next)>;

// The default handler of [[replica.model]] tables and apply_function models: apply_isolating().
ApplyResult table_handler(ApplyContext& ctx);

struct ConsumerOptions {
  int workers = 1;                    // threads, each with its own channel and DB connection
  std::vector<std::string> cqrs_ids;  // bind the main queue for these only (empty: all)
  std::string application_name = "pgcqrs consume";
  std::chrono::seconds prune_interval{3600};         // tombstone pruning, also once at start
  std::chrono::milliseconds confirm_timeout{30000};  // retries and dead letters publish
  BackoffPolicy reconnect{std::chrono::milliseconds(200), std::chrono::seconds(10)};
};

enum class WorkerState { kStarting, kConsuming, kReconnecting, kStopped };

// Consumes the replica queue until stop_requested(). One Consumer per process; run() once.
//
//   pgcqrs::replica::Consumer consumer(config, metrics);
//   consumer.handle("price_cache", [&](ApplyContext& ctx) { ...; return ApplyResult{}; });
//   consumer.use([](ApplyContext& ctx, const Handler& next) { ...; return next(ctx); });
//   consumer.run();
class Consumer {
 public:
  // Throws ConfigError when config has no [replica], or a --cqrs-id is not configured.
  Consumer(Config config, http::Registry& metrics, ConsumerOptions options = {});
  ~Consumer();
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;
  Consumer(Consumer&&) = delete;
  Consumer& operator=(Consumer&&) = delete;

  // Serves `cqrs_id` with `handler` instead of the table applier (before run()). A cqrs_id with
  // no [[replica.model]] becomes handler-only: it is bound like the others, its rows carry the
  // event's instance_data (renamed by no mapping), previous_data and meta.
  void handle(const std::string& cqrs_id, Handler handler);
  // Adds middleware around every handler (before run()).
  void use(Middleware middleware);

  // Checks the replica database (schema migrated, every model's table fits: ConfigError
  // otherwise), starts the workers and the tombstone pruner, and returns when a stop was
  // requested and every worker finished its batch (committed and acked).
  void run();

  // /healthz: the process is serving (false only after run() returned).
  [[nodiscard]] http::Health liveness() const;
  // /readyz: every worker is connected and consuming.
  [[nodiscard]] http::Health readiness() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgcqrs::replica
