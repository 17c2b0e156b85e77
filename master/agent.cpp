// Agent loop: advisory lock -> fetch outbox rows -> publish with confirms -> delete acked rows.
#include "master/agent.hpp"

#include <map>

#include <spdlog/spdlog.h>

#include "common/amqp/connection.hpp"
#include "common/backoff.hpp"
#include "common/error.hpp"
#include "common/pg/error.hpp"
#include "common/pg/listener.hpp"
#include "common/pg/session.hpp"
#include "common/signals.hpp"
#include "master/capture.hpp"
#include "master/outbox.hpp"

namespace pgcqrs::master {
namespace {

constexpr const char* kTryLock = "SELECT pg_try_advisory_lock($1)";
constexpr const char* kLockHolder = R"sql(
SELECT coalesce(max(pid), 0) FROM pg_locks
WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND ((classid::bigint << 32) | objid::bigint) = $1
)sql";

using Clock = std::chrono::steady_clock;

}  // namespace

Agent::Agent(const Config& config, http::Registry& metrics, AgentOptions options)
    : config_(config),
      options_(std::move(options)),
      m_{metrics.counter("pgcqrs_master_published_total", "Events published to the broker"),
         metrics.counter("pgcqrs_master_confirmed_total", "Publishes the broker confirmed (ack)"),
         metrics.counter("pgcqrs_master_nacked_total", "Publishes the broker refused (nack)"),
         metrics.counter("pgcqrs_master_returned_total",
                         "Mandatory publishes returned as unroutable (no queue bound)"),
         metrics.counter("pgcqrs_master_reconnects_total",
                         "Reconnects to the database or the broker after a failure"),
         metrics.gauge("pgcqrs_master_outbox_backlog", "Rows waiting in cqrs.outbox"),
         metrics.gauge("pgcqrs_master_outbox_oldest_age_seconds",
                       "Age of the oldest row waiting in cqrs.outbox"),
         metrics.gauge("pgcqrs_master_active", "1 while this agent holds the lock, else 0")} {}

void Agent::run() {
  Backoff backoff(BackoffPolicy{std::chrono::milliseconds(200), std::chrono::seconds(10)});
  while (!stop_requested()) {
    try {
      run_once();
      backoff.reset();
    } catch (const ConfigError&) {
      throw;  // retrying cannot help: exit 2 with the message
    } catch (const std::exception& e) {
      // anything else may heal (a server back, a migration run, a channel reopened): keep
      // the outbox, back off, start over
      state_ = AgentState::kReconnecting;
      m_.active.set(0);
      m_.reconnects.inc();
      const auto delay = backoff.next();
      spdlog::warn("master agent: {}; reconnecting in {} ms", e.what(), delay.count());
      sleep_unless_stopped(delay);
    }
  }
  state_ = AgentState::kStopping;
  m_.active.set(0);
}

void Agent::run_once() {
  const MasterConfig& mc = *config_.master;
  pg::Session db(mc.database, options_.application_name);

  // one active agent per master database: the others wait as hot standbys
  bool announced = false;
  for (;;) {
    pqxx::nontransaction txn(db.conn());
    if (txn.exec_params1(kTryLock, kAgentLockKey)[0].as<bool>()) break;
    if (!announced) {
      const int holder = txn.exec_params1(kLockHolder, kAgentLockKey)[0].as<int>();
      spdlog::info("master agent: standby; the agent with backend pid {} is active", holder);
      announced = true;
    }
    state_ = AgentState::kStandby;
    if (sleep_unless_stopped(options_.standby_poll)) return;
  }
  spdlog::info("master agent: active on {}", db.masked_url());
  {
    pqxx::nontransaction txn(db.conn());
    if (!txn.exec1("SELECT to_regclass('cqrs.outbox') IS NOT NULL")[0].as<bool>()) {
      throw ConfigError("master database " + db.masked_url() +
                        ": schema cqrs has no outbox; run `pgcqrs migrate` first");
    }
  }

  pg::Listener listener(mc.database, options_.application_name + " listener");
  listener.listen(std::string(kOutboxChannel));

  const amqp::Url url = amqp::parse_url(config_.broker.url);
  amqp::Connection conn = amqp::connect_with_retry(
      url, BackoffPolicy{std::chrono::milliseconds(200), std::chrono::seconds(10)},
      amqp::ConnectOptions{options_.application_name, std::chrono::milliseconds(30000)});
  amqp::Channel ch = conn.open_channel();
  ch.declare_exchange(config_.broker.exchange, "topic", true);
  ch.enable_confirms();
  spdlog::info("master agent: publishing to exchange '{}' on {}", config_.broker.exchange,
               conn.masked_url());

  Outbox outbox(db);
  state_ = AgentState::kActive;
  m_.active.set(1);
  amqp::PublishOptions props;
  props.mandatory = true;
  auto last_backlog = Clock::now() - options_.backlog_refresh;

  while (!stop_requested()) {
    if (Clock::now() - last_backlog >= options_.backlog_refresh) {
      const Backlog b = outbox.backlog();
      m_.backlog.set(static_cast<double>(b.rows));
      m_.oldest_age.set(b.oldest_age_seconds);
      last_backlog = Clock::now();
    }
    if (conn.blocked()) {
      spdlog::warn("master agent: broker blocks publishing ({}); waiting", conn.blocked_reason());
      conn.process_events(std::chrono::milliseconds(500));
      continue;
    }

    // one round: up to a window of rows, published in id order, then settled
    const std::vector<OutboxRow> rows = outbox.fetch(mc.confirm_window);
    if (rows.empty()) {
      // idle: wake on NOTIFY or after the poll interval; keep the broker's heartbeats going
      const auto until = Clock::now() + mc.poll_interval;
      while (!stop_requested() && Clock::now() < until) {
        if (!listener.wait(std::chrono::milliseconds(200)).empty()) break;
        conn.process_events(std::chrono::milliseconds(0));
      }
      continue;
    }
    std::map<std::uint64_t, std::int64_t> in_flight;  // delivery tag -> outbox id
    const Timestamp now = now_utc();
    for (const auto& row : rows) {
      std::string body;
      try {
        body = build_body(row, now, mc.message_ttl);
      } catch (const MessageError& e) {
        // cannot happen with rows our triggers wrote; never drop one silently
        spdlog::error("master agent: outbox id={} cannot be published and stays: {}", row.id,
                      e.what());
        throw;
      }
      props.message_id = std::to_string(row.id);
      in_flight.emplace(ch.publish(config_.broker.exchange, row.cqrs_id, body, props), row.id);
      m_.published.inc();
    }
    const amqp::Confirms c = ch.wait_all_confirms(options_.confirm_timeout);
    for (const auto& r : ch.take_returns()) {
      m_.returned.inc();
      spdlog::warn(
          "master agent: event outbox id={} returned by the broker: {} {}; no queue is "
          "bound for routing key '{}' (is a replica consuming it?)",
          r.message_id, r.reply_code, r.reply_text, r.routing_key);
    }
    std::vector<std::int64_t> done;
    done.reserve(c.acked.size());
    for (const auto tag : c.acked)
      done.push_back(in_flight.at(tag));
    m_.confirmed.inc(c.acked.size());
    outbox.remove(done);
    if (!c.nacked.empty() || ch.unconfirmed() > 0) {
      m_.nacked.inc(c.nacked.size());
      throw TransientError("publish outbox ids " + std::to_string(rows.front().id) + ".." +
                           std::to_string(rows.back().id) + ": " + std::to_string(c.nacked.size()) +
                           " nacked, " + std::to_string(ch.unconfirmed()) +
                           " unconfirmed; publishing them again");
    }
  }
  spdlog::info("master agent: stopped; every confirmed event is removed from the outbox");
}

}  // namespace pgcqrs::master
