// The master agent: drains cqrs.outbox to RabbitMQ with publisher confirms, one active per DB.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/config.hpp"
#include "common/http/metrics.hpp"

namespace pgcqrs::master {

// What the agent is doing, for /readyz, logs and tests.
enum class AgentState { kStarting, kStandby, kActive, kReconnecting, kStopping };

struct AgentOptions {
  std::string application_name = "pgcqrs master";
  std::chrono::milliseconds standby_poll{1000};      // how often a standby tries the lock
  std::chrono::milliseconds confirm_timeout{30000};  // longest wait for a round's confirms
  std::chrono::seconds backlog_refresh{5};           // outbox size/age metric refresh
  // After the agent found work it polls every linger_poll for linger, then waits for NOTIFY
  // or poll_interval again: the capture triggers notify at most once per kNotifyThrottle per
  // session, and not at all while the agent polls (it holds kAgentAwakeLockKey meanwhile, and
  // polls 250 ms more after releasing it); the writes they did not notify are found by these
  // polls.
  std::chrono::milliseconds linger{2000};
  std::chrono::milliseconds linger_poll{5};
  // Acked rows are deleted in batches of this many (and whenever the agent has caught up).
  std::size_t delete_batch = 500;
  // VACUUM (SKIP_LOCKED) cqrs.outbox when this many rows were deleted since the last one and
  // vacuum_every has passed, at a moment the agent has caught up: keeps the outbox small
  // between autovacuum visits (autovacuum_naptime, 60 s by default).
  std::int64_t vacuum_after_rows = 5000;
  std::chrono::milliseconds vacuum_every{10000};
};

// Runs until pgcqrs::stop_requested(): takes the master database's agent lock (or waits for
// it as a hot standby), then publishes outbox rows in id order as django-cqrs events (exchange
// from [broker], routing key = cqrs_id, persistent, text/plain, mandatory) through a window of
// up to confirm_window unconfirmed publishes, reading ahead while earlier ones are in flight,
// and deletes the rows the broker acked, in batches, each once no lower row is unconfirmed. A
// row that commits after rows with higher ids were read is published before any newer row read
// with it, so the events of one row are always published in revision order. A nack, a timeout
// or a lost broker or database connection means: delete the acked rows below the first
// unconfirmed one, reconnect with capped backoff and publish again whatever is not deleted,
// from the lowest id (at-least-once; revisions make it idempotent). A row that cannot be
// turned into messages is moved to cqrs.outbox_failed and publishing goes on. On stop it
// publishes nothing new, waits for outstanding confirms, deletes what it may.
class Agent {
 public:
  Agent(const Config& config, http::Registry& metrics, AgentOptions options = {});
  void run();
  [[nodiscard]] AgentState state() const noexcept { return state_.load(); }

 private:
  struct Metrics {
    http::Counter& published;
    http::Counter& confirmed;
    http::Counter& nacked;
    http::Counter& returned;
    http::Counter& reconnects;
    http::Counter& failed;
    http::Gauge& backlog;
    http::Gauge& oldest_age;
    http::Gauge& failed_rows;
    http::Gauge& active;
  };
  void run_once();

  const Config& config_;
  AgentOptions options_;
  Metrics m_;
  std::atomic<AgentState> state_{AgentState::kStarting};
  std::chrono::steady_clock::time_point active_since_{};  // when run_once() last became active
};

}  // namespace pgcqrs::master
