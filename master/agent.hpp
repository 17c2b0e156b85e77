// The master agent: drains cqrs.outbox to RabbitMQ with publisher confirms, one active per DB.
#pragma once

#include <atomic>
#include <chrono>
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
};

// Runs until pgcqrs::stop_requested(): takes the master database's agent lock (or waits for
// it as a hot standby), then repeatedly takes up to confirm_window outbox rows in id order,
// publishes each as a django-cqrs event (exchange from [broker], routing key = cqrs_id,
// persistent, text/plain, mandatory) and deletes exactly the rows the broker acked. A nack, a
// timeout or a lost broker or database connection means: reconnect with capped backoff and
// publish again whatever is not deleted (at-least-once; revisions make it idempotent).
// On stop it publishes nothing new, waits for outstanding confirms, deletes what was acked.
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
    http::Gauge& backlog;
    http::Gauge& oldest_age;
    http::Gauge& active;
  };
  void run_once();

  const Config& config_;
  AgentOptions options_;
  Metrics m_;
  std::atomic<AgentState> state_{AgentState::kStarting};
};

}  // namespace pgcqrs::master
