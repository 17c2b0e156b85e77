// Worker threads: deliveries -> decode -> batch -> handlers in one transaction -> COMMIT ->
// retries and dead letters confirmed -> multiple-ack.
#include "replica/consumer.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/amqp/connection.hpp"
#include "common/error.hpp"
#include "common/event.hpp"
#include "common/json.hpp"
#include "common/pg/error.hpp"
#include "common/pg/retry.hpp"
#include "common/pg/session.hpp"
#include "common/signals.hpp"
#include "common/timestamp.hpp"
#include "common/topology.hpp"
#include "replica/bindings.hpp"
#include "replica/decision_log.hpp"
#include "replica/install.hpp"
#include "replica/retry.hpp"

namespace pgcqrs::replica {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t kBodyInLog = 2000;  // characters of a malformed body in its log line
constexpr auto kSummaryInterval = 10s;    // a worker's info line about what it did
constexpr auto kIdleWait = 1000ms;        // longest wait for a first delivery
constexpr int kDbAttempts = 5;            // a batch's transaction, on a transient failure

// Python's repr of a correlation id as django-cqrs logs it: the string, or None.
std::string correlation_text(const json::Json& c) {
  if (c.is_null()) return "None";
  if (c.is_string()) return json::excerpt_string(c.get_ref<const std::string&>(), 200);
  return json::excerpt(c, 200);
}

// A SAVEPOINT released on success, rolled back otherwise (plain exec(): see applier.hpp).
class Savepoint {
 public:
  Savepoint(pqxx::transaction_base& txn, std::string name) : txn_(txn), name_(std::move(name)) {
    txn_.exec("SAVEPOINT " + name_);
  }
  ~Savepoint() {
    if (released_) return;
    try {
      txn_.exec("ROLLBACK TO SAVEPOINT " + name_ + "; RELEASE SAVEPOINT " + name_);
    } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): the connection is gone;
    }                                  // the caller sees that on its next statement
  }
  Savepoint(const Savepoint&) = delete;
  Savepoint& operator=(const Savepoint&) = delete;
  Savepoint(Savepoint&&) = delete;
  Savepoint& operator=(Savepoint&&) = delete;
  void release() {
    txn_.exec("RELEASE SAVEPOINT " + name_);
    released_ = true;
  }

 private:
  pqxx::transaction_base& txn_;
  std::string name_;
  bool released_ = false;
};

// A handler's result with one RowResult per row (empty: every row kCalled).
ApplyResult complete(ApplyResult r, const ApplyContext& ctx) {
  if (r.rows.size() == ctx.rows.size()) return r;
  if (r.rows.empty()) {
    ApplyResult all;
    for (std::size_t i = 0; i < ctx.rows.size(); ++i) {
      RowResult row;
      row.outcome = Outcome::kCalled;
      all.add(row);
    }
    return all;
  }
  throw std::logic_error("handler for cqrs_id '" + ctx.target.model.cqrs_id + "' returned " +
                         std::to_string(r.rows.size()) + " results for " +
                         std::to_string(ctx.rows.size()) + " rows");
}

// Runs `handler` on ctx's rows in a savepoint; when it throws MessageError, splits the rows in
// halves until the rows that fail are alone (each reported kFailed with the error).
ApplyResult isolated(ApplyContext& ctx, const Handler& handler) {
  if (ctx.rows.empty()) return {};
  try {
    Savepoint savepoint(ctx.txn, "pgcqrs_handler");
    ApplyResult r = complete(handler(ctx), ctx);
    savepoint.release();
    return r;
  } catch (const MessageError& e) {
    if (ctx.rows.size() == 1) {
      ApplyResult r;
      RowResult row;
      row.outcome = Outcome::kFailed;
      row.error = e.what();
      r.add(row);
      return r;
    }
  }
  const std::size_t half = ctx.rows.size() / 2;
  ApplyContext first{ctx.txn, ctx.target, ctx.rows.first(half), ctx.options};
  ApplyContext second{ctx.txn, ctx.target, ctx.rows.subspan(half), ctx.options};
  ApplyResult r = isolated(first, handler);
  for (const auto& row : isolated(second, handler).rows)
    r.add(row);
  return r;
}

// The newest cqrs_updated among `rows` whose result applied them.
std::optional<Timestamp> newest_update(std::span<const Row> rows, const ApplyResult& result) {
  std::optional<Timestamp> newest;
  for (std::size_t i = 0; i < rows.size() && i < result.rows.size(); ++i) {
    if (!result.rows[i].applied() || !rows[i].data.is_object()) continue;
    const auto it = rows[i].data.find("cqrs_updated");
    if (it == rows[i].data.end() || !it->is_string()) continue;
    if (!timestamp_error(it->get_ref<const std::string&>()).empty()) continue;
    const Timestamp t = parse_timestamp(it->get_ref<const std::string&>());
    if (!newest || t > *newest) newest = t;
  }
  return newest;
}

}  // namespace

ApplyResult table_handler(ApplyContext& ctx) {
  if (ctx.target.handler_only) {
    throw std::logic_error("cqrs_id '" + ctx.target.model.cqrs_id +
                           "' has no table and no handler");
  }
  return apply_isolating(ctx.txn, ctx.target, ctx.rows, ctx.options);
}

namespace {

// Metric handles of one cqrs_id, made up front (the registry locks on every lookup).
struct IdMetrics {
  http::Counter* applied = nullptr;
  std::map<std::string, http::Counter*, std::less<>> skipped;        // by reason
  std::map<std::string, http::Counter*, std::less<>> dead_lettered;  // by reason
  http::Counter* retried = nullptr;
  http::Gauge* lag = nullptr;
};

// What the workers share: configuration, handlers, metrics, states.
struct Shared {
  Shared(Config c, http::Registry& r, ConsumerOptions o)
      : config(std::move(c)), rc(*config.replica), registry(r), options(std::move(o)) {}

  Config config;
  const ReplicaConfig& rc;
  http::Registry& registry;
  ConsumerOptions options;
  std::map<std::string, Handler> handlers;
  std::vector<Middleware> middleware;
  bool started = false;

  // set by run()
  std::vector<std::string> handler_only;  // cqrs_ids with a handler and no model
  std::vector<std::string> bound;         // main-queue bindings
  std::vector<std::string> all_ids;       // every cqrs_id served (dead-letter bindings)
  std::map<std::string, Handler> chains;  // cqrs_id -> middleware around its handler
  std::map<std::string, IdMetrics> ids;
  std::map<std::string, http::Counter*> malformed;  // by MalformedKind label
  http::Histogram* batch_size = nullptr;
  http::Histogram* apply_seconds = nullptr;
  http::Gauge* consuming = nullptr;
  http::Counter* restarts = nullptr;
  http::Counter* pruned = nullptr;
  std::vector<std::unique_ptr<std::atomic<WorkerState>>> states;
  std::atomic<bool> finished{false};

  void prepare();
  void check_database();
  void prune();
};

// One worker: its own database session and broker connection; a session ends on stop or on a
// failure, and the worker then starts a new one.
class Worker {
 public:
  Worker(Shared& c, int index)
      : c_(c),
        rc_(c.rc),
        index_(index),
        name_("worker " + std::to_string(index + 1)),
        state_(*c.states[static_cast<std::size_t>(index)]) {}

  void run();

 private:
  // Records this worker's state and refreshes the workers_consuming gauge.
  void set_state(WorkerState s) {
    state_ = s;
    int n = 0;
    for (const auto& st : c_.states)
      n += st->load() == WorkerState::kConsuming ? 1 : 0;
    c_.consuming->set(n);
  }

  struct Info {  // a delivery that decoded
    std::string cqrs_id;
    std::string pk;
    std::string correlation;
    std::int64_t retries = 0;
    std::size_t index = 0;  // in the batch's deliveries
  };
  struct Outgoing {  // a retry or dead letter to publish before the batch is acked
    Route route;
    std::string body;
  };
  struct Counts {
    std::uint64_t applied = 0, skipped = 0, retried = 0, dead = 0, malformed = 0;
    [[nodiscard]] bool any() const { return applied + skipped + retried + dead + malformed > 0; }
  };

  void session();
  void load_targets_now();  // reads the replica tables' columns; rebuilds by_id_
  void declare_topology();
  void process(std::vector<amqp::Delivery>& deliveries);
  void malformed(const amqp::Delivery& d, const std::string& error, std::vector<Outgoing>& out,
                 std::vector<std::uint64_t>& rejected);
  void failed(const amqp::Delivery& d, const Info& info, const std::string& reason,
              std::vector<Outgoing>& out);
  void dead_letter(const amqp::Delivery& d, const std::string& cqrs_id, const std::string& why,
                   std::string_view reason_label, std::vector<Outgoing>& out);
  void publish(const std::vector<Outgoing>& out);
  void summary(bool force);

  Shared& c_;
  const ReplicaConfig& rc_;
  int index_;
  std::string name_;
  std::atomic<WorkerState>& state_;
  std::unique_ptr<pg::Session> db_;
  std::vector<Target> targets_;
  bool reload_targets_ = false;  // re-read the tables' columns before the next batch
  std::unordered_map<std::string, const Target*> by_id_;
  std::unique_ptr<amqp::Connection> conn_;
  amqp::Channel ch_;
  std::set<std::string> delay_queues_;  // declared on this channel
  Counts counts_;
  Clock::time_point last_summary_ = Clock::now();
};

void Worker::run() {
  Backoff backoff(c_.options.reconnect);
  while (!stop_requested()) {
    try {
      session();
      break;  // returns only when a stop was requested
    } catch (const std::exception& e) {
      if (state_.load() == WorkerState::kConsuming) backoff.reset();
      set_state(WorkerState::kReconnecting);
      c_.restarts->inc();
      const auto delay = backoff.next();
      spdlog::error("consume {}: {}; restarting in {} ms (unacked deliveries return to the queue)",
                    name_, e.what(), delay.count());
      ch_ = amqp::Channel();
      conn_.reset();
      db_.reset();
      sleep_unless_stopped(delay);
    } catch (...) {
      set_state(WorkerState::kReconnecting);
      c_.restarts->inc();
      spdlog::error("consume {}: unknown exception; restarting", name_);
      ch_ = amqp::Channel();
      conn_.reset();
      db_.reset();
      sleep_unless_stopped(backoff.next());
    }
  }
  summary(true);
  set_state(WorkerState::kStopped);
}

void Worker::load_targets_now() {
  std::vector<Target> fresh;
  {
    pqxx::read_transaction txn(db_->conn());
    fresh = load_targets(txn, rc_);
  }
  for (const auto& id : c_.handler_only) {
    Target t;
    t.model.cqrs_id = id;
    t.handler_only = true;
    fresh.push_back(std::move(t));
  }
  targets_ = std::move(fresh);
  by_id_.clear();
  for (const auto& t : targets_)
    by_id_.emplace(t.model.cqrs_id, &t);
  reload_targets_ = false;
}

void Worker::session() {
  set_state(WorkerState::kStarting);
  db_ = std::make_unique<pg::Session>(rc_.database, c_.options.application_name + " " + name_);
  {
    pqxx::read_transaction txn(db_->conn());
    require_schema(txn);
  }
  load_targets_now();

  const amqp::Url url = amqp::parse_url(c_.config.broker.url);
  conn_ = std::make_unique<amqp::Connection>(amqp::connect_with_retry(
      url, c_.options.reconnect,
      amqp::ConnectOptions{c_.options.application_name + " " + name_, 30s}));
  ch_ = conn_->open_channel();
  delay_queues_.clear();
  declare_topology();
  ch_.enable_confirms();
  ch_.set_prefetch(static_cast<std::uint16_t>(rc_.prefetch));
  ch_.consume(rc_.queue);
  set_state(WorkerState::kConsuming);
  spdlog::info("consume {}: consuming queue '{}' (prefetch {}, batch {} or {} ms)", name_,
               rc_.queue, rc_.prefetch, rc_.batch_size, rc_.batch_timeout.count());

  const auto batch_size = static_cast<std::size_t>(rc_.batch_size);
  std::vector<amqp::Delivery> batch;
  batch.reserve(batch_size);
  while (!stop_requested()) {
    summary(false);
    auto first = ch_.next_delivery(kIdleWait);
    if (!first) continue;
    batch.push_back(std::move(*first));
    const auto deadline = Clock::now() + rc_.batch_timeout;
    while (batch.size() < batch_size) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) break;
      auto next = ch_.next_delivery(left);
      if (!next) break;  // timeout, or a stop: apply what we have
      batch.push_back(std::move(*next));
    }
    process(batch);
    batch.clear();
  }
  // SIGTERM: the last batch is committed and acked; deliveries prefetched but not taken go
  // back to the queue when the channel closes
  spdlog::info("consume {}: stopping; every applied delivery is acked", name_);
  ch_.close();
  conn_->close();
}

void Worker::declare_topology() {
  const std::string& exchange = c_.config.broker.exchange;
  ch_.declare_exchange(exchange, "topic", true);
  ch_.declare_queue(rc_.queue);
  ch_.declare_queue(rc_.dead_letter_queue);
  for (const auto& b : replica_bindings(rc_.queue, rc_.dead_letter_queue, c_.bound))
    ch_.bind_queue(b.queue, exchange, b.routing_key);
  // dead letters of every cqrs_id served reach the dead-letter queue, even of those a
  // --cqrs-id subset leaves unbound (old bindings may still bring them)
  for (const auto& id : c_.all_ids)
    ch_.bind_queue(rc_.dead_letter_queue, exchange, topology::queue_key(rc_.dead_letter_queue, id));
  for (const auto d : retry_delays(rc_)) {
    if (d.count() == 0) continue;
    const std::string name = delay_queue_name(rc_.queue, d);
    ch_.declare_queue(name, delay_queue_options(rc_.queue, d));
    delay_queues_.insert(name);
  }
}

void Worker::summary(bool force) {
  const auto now = Clock::now();
  if (!force && now - last_summary_ < kSummaryInterval) return;
  if (counts_.any()) {
    spdlog::info(
        "consume {}: applied {}, skipped {}, retried {}, dead-lettered {}, malformed {} "
        "in the last {} s",
        name_, counts_.applied, counts_.skipped, counts_.retried, counts_.dead, counts_.malformed,
        std::chrono::duration_cast<std::chrono::seconds>(now - last_summary_).count());
  }
  counts_ = {};
  last_summary_ = now;
}

void Worker::malformed(const amqp::Delivery& d, const std::string& error,
                       std::vector<Outgoing>& out, std::vector<std::uint64_t>& rejected) {
  const Malformed m =
      classify_malformed(d.body, [this](const std::string& id) { return by_id_.contains(id); });
  c_.malformed.at(std::string(to_string(m.kind)))->inc();
  ++counts_.malformed;
  const std::string body = json::excerpt_string(d.body, kBodyInLog);
  switch (m.kind) {
    case MalformedKind::kBadJson:
      spdlog::error("CQRS couldn't be parsed: {}: {}.", error, body);
      break;
    case MalformedKind::kMissingKey:
      spdlog::error("CQRS couldn't proceed, {}: {}.", error, body);
      break;
    case MalformedKind::kUnknownCqrsId:
      spdlog::error("No model with such CQRS_ID: {}. Message discarded: {}",
                    json::excerpt_string(m.cqrs_id, 200), body);
      break;
    case MalformedKind::kBadField:
      spdlog::error("CQRS is malformed: {}; dead-lettered (retrying cannot fix it): {}", error,
                    body);
      dead_letter(d, m.cqrs_id, error, "malformed", out);
      return;
  }
  rejected.push_back(d.delivery_tag);
}

void Worker::dead_letter(const amqp::Delivery& d, const std::string& cqrs_id,
                         const std::string& why, std::string_view reason_label,
                         std::vector<Outgoing>& out) {
  const Route route = dead_letter_route(rc_, c_.config.broker.exchange, cqrs_id);
  spdlog::error("CQRS is added to dead letter queue: cqrs_id = {}, routing_key = {}: {}", cqrs_id,
                route.routing_key, why);
  out.push_back({route, d.body});
  if (auto it = c_.ids.find(cqrs_id); it != c_.ids.end()) {
    it->second.dead_lettered.find(reason_label)->second->inc();
  }
  ++counts_.dead;
}

void Worker::failed(const amqp::Delivery& d, const Info& info, const std::string& reason,
                    std::vector<Outgoing>& out) {
  spdlog::error("CQRS is failed: pk = {} ({}), correlation_id = {}, retries = {}: {}", info.pk,
                info.cqrs_id, info.correlation, info.retries, reason);
  if (info.retries >= rc_.max_retries) {
    dead_letter(d, info.cqrs_id,
                "retries = " + std::to_string(info.retries) +
                    " reached max_retries = " + std::to_string(rc_.max_retries),
                "max_retries", out);
    return;
  }
  const Route route = retry_route(rc_, c_.config.broker.exchange, info.cqrs_id, info.retries);
  const auto delay = retry_delay(rc_, info.retries);
  if (delay.count() > 0 && !delay_queues_.contains(route.routing_key)) {
    // a delay declare_topology() did not foresee (a body with retries beyond this config's)
    ch_.declare_queue(route.routing_key, delay_queue_options(rc_.queue, delay));
    delay_queues_.insert(route.routing_key);
  }
  std::string body;
  try {
    body = with_retries(d.body, info.retries + 1);
  } catch (const MessageError& e) {  // it decoded once: cannot happen; never drop it silently
    dead_letter(d, info.cqrs_id, e.what(), "malformed", out);
    return;
  }
  spdlog::info("CQRS is delayed: pk = {} ({}), correlation_id = {}, retries = {}, delay = {} s",
               info.pk, info.cqrs_id, info.correlation, info.retries + 1, delay.count());
  out.push_back({route, std::move(body)});
  c_.ids.at(info.cqrs_id).retried->inc();
  ++counts_.retried;
}

void Worker::publish(const std::vector<Outgoing>& out) {
  if (out.empty()) return;
  amqp::PublishOptions props;
  props.mandatory = true;
  for (const auto& o : out) {
    props.expiration = o.route.expiration;
    ch_.publish(o.route.exchange, o.route.routing_key, o.body, props);
  }
  const amqp::Confirms c = ch_.wait_all_confirms(c_.options.confirm_timeout);
  const std::vector<amqp::Returned> returned = ch_.take_returns();
  for (const auto& r : returned) {
    spdlog::error(
        "consume {}: the broker could not route a retry or dead letter ({} {}, "
        "routing key '{}'): {}",
        name_, r.reply_code, r.reply_text, r.routing_key, json::excerpt_string(r.body, kBodyInLog));
  }
  if (!c.nacked.empty() || ch_.unconfirmed() > 0 || !returned.empty()) {
    // the originals stay unacked and come back; the new session redeclares every queue and
    // binding these routes need
    throw TransientError("publish " + std::to_string(out.size()) +
                         " retries and dead letters: " + std::to_string(c.nacked.size()) +
                         " nacked, " + std::to_string(ch_.unconfirmed()) + " unconfirmed, " +
                         std::to_string(returned.size()) +
                         " unroutable; the batch's deliveries are not acked and come back");
  }
}

void Worker::process(std::vector<amqp::Delivery>& deliveries) {
  // A row failed in the previous batch: the table may have changed since the columns were read
  // (ALTER TABLE to fix the very failure): read them again before the retries come back.
  if (reload_targets_) load_targets_now();
  const Timestamp now = now_utc();
  DecodeOptions decode;
  decode.default_ttl = rc_.message_ttl;
  decode.now = now;
  std::unordered_map<std::uint64_t, Info> info;
  std::vector<Outgoing> out;
  std::vector<std::uint64_t> rejected;
  Batch batch;
  c_.batch_size->observe(static_cast<double>(deliveries.size()));

  for (std::size_t i = 0; i < deliveries.size(); ++i) {
    amqp::Delivery& d = deliveries[i];
    Event e;
    try {
      e = decode_event(d.body, decode);
    } catch (const MessageError& err) {
      malformed(d, err.what(), out, rejected);
      continue;
    }
    const auto t = by_id_.find(e.cqrs_id);
    if (t == by_id_.end()) {
      malformed(d, "unknown cqrs_id", out, rejected);
      continue;
    }
    Info in{e.cqrs_id, e.pk_text(), correlation_text(e.correlation_id), e.retries, i};
    spdlog::debug("CQRS is received: pk = {} ({}), correlation_id = {}.", in.pk, in.cqrs_id,
                  in.correlation);
    if (e.expired(now)) {
      dead_letter(d, e.cqrs_id, "expired at " + format_expires(*e.expires), "expired", out);
      continue;
    }
    const Target& target = *t->second;
    if (target.model.only_direct_syncs && e.signal == Signal::kSync &&
        d.routing_key == topology::broadcast_key(e.cqrs_id)) {
      spdlog::debug(
          "CQRS SYNC not addressed to this replica ignored (only_direct_syncs): pk = {} "
          "({})",
          in.pk, in.cqrs_id);
      c_.ids.at(in.cqrs_id).skipped.find("indirect_sync")->second->inc();
      ++counts_.skipped;
      continue;
    }
    try {
      batch.add(target, std::move(e), d.delivery_tag);
      info.emplace(d.delivery_tag, std::move(in));
    } catch (const MessageError& err) {
      failed(d, in, err.what(), out);
    }
  }

  const Plan plan = batch.newest_per_row();
  std::vector<ApplyResult> results;
  if (!plan.groups.empty()) {
    const auto started = Clock::now();
    pg::RetryPolicy policy;
    policy.what = "apply a batch of " + std::to_string(plan.row_count()) + " rows";
    policy.max_attempts = kDbAttempts;
    policy.backoff = c_.options.reconnect;
    results = pg::with_retry(
        *db_,
        [&](pg::Session& s) {
          std::vector<ApplyResult> rs;
          pqxx::work txn(s.conn(), "pgcqrs_consume");
          for (const auto& g : plan.groups) {
            ApplyContext ctx{txn, *g.target, g.rows, ApplyOptions{}};
            rs.push_back(isolated(ctx, c_.chains.at(g.target->model.cqrs_id)));
          }
          txn.commit();
          return rs;
        },
        policy);
    c_.apply_seconds->observe(std::chrono::duration<double>(Clock::now() - started).count());
  }

  // the decisions: metrics, log lines, and the rows that failed
  for (std::size_t gi = 0; gi < plan.groups.size(); ++gi) {
    const Group& g = plan.groups[gi];
    const ApplyResult& r = results[gi];
    IdMetrics& m = c_.ids.at(g.target->model.cqrs_id);
    for (std::size_t ri = 0; ri < g.rows.size(); ++ri) {
      const Row& row = g.rows[ri];
      const RowResult& res = r.rows[ri];
      const Info& in = info.at(row.delivery);
      for (const auto& line : decision_log(in.cqrs_id, row, res, in.correlation))
        spdlog::log(line.level, line.text);
      switch (res.outcome) {
        case Outcome::kFailed:
          failed(deliveries[in.index], in, res.error, out);
          reload_targets_ = true;
          break;
        case Outcome::kSkippedOlder:
          m.skipped.find("older")->second->inc();
          ++counts_.skipped;
          break;
        case Outcome::kSkippedDuplicate:
          m.skipped.find("duplicate")->second->inc();
          ++counts_.skipped;
          break;
        case Outcome::kSkippedDeleted:
          m.skipped.find("deleted")->second->inc();
          ++counts_.skipped;
          break;
        case Outcome::kSkippedSuperseded:
          m.skipped.find("superseded")->second->inc();
          ++counts_.skipped;
          break;
        default:
          m.applied->inc();
          ++counts_.applied;
          break;
      }
    }
    if (const auto newest = newest_update(g.rows, r)) {
      m.lag->set(std::chrono::duration<double>(now_utc() - *newest).count());
    }
  }
  for (const auto& s : plan.superseded) {
    spdlog::debug("CQRS superseded in its batch: pk = {} ({}), cqrs_revision = {}", s.pk, s.cqrs_id,
                  s.revision);
    c_.ids.at(s.cqrs_id).skipped.find("superseded")->second->inc();
    ++counts_.skipped;
  }

  // retries and dead letters are confirmed by the broker before their originals are acked
  publish(out);
  for (const auto tag : rejected)
    ch_.reject(tag, false);
  std::uint64_t last = 0;
  for (const auto& d : deliveries) {
    if (std::find(rejected.begin(), rejected.end(), d.delivery_tag) == rejected.end()) {
      last = std::max(last, d.delivery_tag);
    }
  }
  if (last != 0) ch_.ack(last, true);
}

}  // namespace

struct Consumer::Impl : Shared {
  using Shared::Shared;
};

void Shared::prepare() {
  std::set<std::string> configured;
  for (const auto& m : rc.models)
    configured.insert(m.cqrs_id);
  for (const auto& [id, h] : handlers) {
    if (!configured.contains(id)) handler_only.push_back(id);
  }
  all_ids.assign(configured.begin(), configured.end());
  all_ids.insert(all_ids.end(), handler_only.begin(), handler_only.end());
  for (const auto& id : options.cqrs_ids) {
    if (std::find(all_ids.begin(), all_ids.end(), id) == all_ids.end()) {
      std::string known;
      for (const auto& k : all_ids)
        known += (known.empty() ? "" : ", ") + k;
      throw ConfigError("--cqrs-id " + id + ": Wrong CQRS ID: " + id + "! (this replica has " +
                        known + ")");
    }
  }
  bound = options.cqrs_ids.empty() ? all_ids : options.cqrs_ids;
  std::sort(bound.begin(), bound.end());
  bound.erase(std::unique(bound.begin(), bound.end()), bound.end());

  for (const auto& id : all_ids) {
    const auto h = handlers.find(id);
    Handler chain = h == handlers.end() ? Handler(table_handler) : h->second;
    for (auto m = middleware.rbegin(); m != middleware.rend(); ++m) {
      chain = [mw = *m, next = std::move(chain)](ApplyContext& ctx) { return mw(ctx, next); };
    }
    chains.emplace(id, std::move(chain));

    IdMetrics& m = ids[id];
    const http::Labels l{{"cqrs_id", id}};
    m.applied = &registry.counter("pgcqrs_replica_applied_total",
                                  "Events applied (inserted, updated, deleted, or handled)", l);
    for (const char* reason : {"older", "duplicate", "deleted", "superseded", "indirect_sync"}) {
      m.skipped[reason] = &registry.counter(
          "pgcqrs_replica_skipped_total",
          "Events acked without a change: older or duplicate revision, deleted row, superseded "
          "in their batch, SYNC for another replica",
          {{"cqrs_id", id}, {"reason", reason}});
    }
    for (const char* reason : {"expired", "max_retries", "malformed"}) {
      m.dead_lettered[reason] = &registry.counter("pgcqrs_replica_dead_lettered_total",
                                                  "Events published to the dead-letter queue",
                                                  {{"cqrs_id", id}, {"reason", reason}});
    }
    m.retried = &registry.counter("pgcqrs_replica_retried_total",
                                  "Events that failed and were republished with retries + 1", l);
    m.lag = &registry.gauge("pgcqrs_replica_lag_seconds",
                            "now - cqrs_updated of the newest row applied in the last batch", l);
  }
  for (const auto k : {MalformedKind::kBadJson, MalformedKind::kMissingKey,
                       MalformedKind::kUnknownCqrsId, MalformedKind::kBadField}) {
    malformed[std::string(to_string(k))] = &registry.counter(
        "pgcqrs_replica_malformed_total",
        "Deliveries whose body could not be decoded (rejected, or dead-lettered if bad_field)",
        {{"reason", std::string(to_string(k))}});
  }
  batch_size = &registry.histogram("pgcqrs_replica_batch_size", "Deliveries per batch",
                                   {1, 10, 50, 100, 250, 500, 1000, 2500, 5000});
  apply_seconds =
      &registry.histogram("pgcqrs_replica_apply_seconds", "Time to apply and commit one batch",
                          {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
  consuming =
      &registry.gauge("pgcqrs_replica_workers_consuming", "Workers connected and consuming");
  restarts = &registry.counter("pgcqrs_replica_worker_restarts_total",
                               "Worker sessions ended by a failure and started again");
  pruned = &registry.counter("pgcqrs_replica_tombstones_pruned_total",
                             "Delete tombstones removed after replica.tombstone_ttl");
}

void Shared::check_database() {
  try {
    pg::Session db(rc.database, options.application_name);
    pqxx::read_transaction txn(db.conn());
    require_schema(txn);
    (void)load_targets(txn, rc);
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    // the workers retry: a database that is down now may be up in a moment
    spdlog::warn("consume: cannot check the replica database yet: {}", e.what());
  }
}

void Shared::prune() {
  try {
    pg::Session db(rc.database, options.application_name + " pruner");
    pqxx::work txn(db.conn());
    const auto n = prune_tombstones(txn, rc.tombstone_ttl);
    txn.commit();
    pruned->inc(static_cast<std::uint64_t>(n));
    if (n > 0) {
      spdlog::info("consume: pruned {} tombstones older than {} s", n, rc.tombstone_ttl.count());
    }
  } catch (const std::exception& e) {
    spdlog::warn("consume: tombstone pruning failed (next try in {} s): {}",
                 options.prune_interval.count(), e.what());
  }
}

Consumer::Consumer(Config config, http::Registry& metrics, ConsumerOptions options) {
  if (!config.replica) {
    throw ConfigError(config.source + ": [replica] is not configured; the consumer needs it");
  }
  if (options.workers < 1) {
    throw ConfigError("--workers " + std::to_string(options.workers) + ": must be at least 1");
  }
  impl_ = std::make_unique<Impl>(std::move(config), metrics, std::move(options));
  for (int i = 0; i < impl_->options.workers; ++i)
    impl_->states.push_back(std::make_unique<std::atomic<WorkerState>>(WorkerState::kStarting));
}

Consumer::~Consumer() = default;

void Consumer::handle(const std::string& cqrs_id, Handler handler) {
  if (impl_->started) throw std::logic_error("Consumer::handle() after run()");
  impl_->handlers[cqrs_id] = std::move(handler);
}

void Consumer::use(Middleware middleware) {
  if (impl_->started) throw std::logic_error("Consumer::use() after run()");
  impl_->middleware.push_back(std::move(middleware));
}

void Consumer::run() {
  Impl& c = *impl_;
  if (c.started) throw std::logic_error("Consumer::run() called twice");
  c.started = true;
  c.prepare();
  c.check_database();
  c.prune();
  auto next_prune = Clock::now() + c.options.prune_interval;

  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(c.options.workers));
  for (int i = 0; i < c.options.workers; ++i) {
    threads.emplace_back([&c, i] {
      Worker w(c, i);
      w.run();
    });
  }
  spdlog::info("consume: {} worker(s) on queue '{}', cqrs_ids: {}", c.options.workers, c.rc.queue,
               fmt::join(c.bound, ", "));
  while (!sleep_unless_stopped(1000ms)) {
    int consuming = 0;
    for (const auto& s : c.states)
      consuming += s->load() == WorkerState::kConsuming ? 1 : 0;
    c.consuming->set(consuming);
    if (Clock::now() >= next_prune) {
      c.prune();
      next_prune = Clock::now() + c.options.prune_interval;
    }
  }
  for (auto& t : threads)
    t.join();
  c.consuming->set(0);
  c.finished = true;
  spdlog::info("consume: stopped");
}

http::Health Consumer::liveness() const {
  if (impl_->finished) return {false, "stopped\n"};
  return {true, "running\n"};
}

http::Health Consumer::readiness() const {
  http::Health h;
  if (impl_->states.empty()) return {false, "starting\n"};
  for (std::size_t i = 0; i < impl_->states.size(); ++i) {
    const WorkerState s = impl_->states[i]->load();
    const char* text = s == WorkerState::kConsuming      ? "consuming"
                       : s == WorkerState::kStarting     ? "starting"
                       : s == WorkerState::kReconnecting ? "reconnecting"
                                                         : "stopped";
    if (s != WorkerState::kConsuming) h.ok = false;
    h.detail += "worker " + std::to_string(i + 1) + ": " + text + "\n";
  }
  return h;
}

}  // namespace pgcqrs::replica
