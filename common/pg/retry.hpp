// with_retry(): run database work again after transient failures, never after an in-doubt commit.
#pragma once

#include <chrono>
#include <concepts>
#include <exception>
#include <functional>
#include <string>
#include <type_traits>

#include "common/backoff.hpp"
#include "common/pg/error.hpp"
#include "common/signals.hpp"

namespace pgcqrs::pg {

struct RetryPolicy {
  // Names the work in messages: "<what>: gave up after 5 attempts: <cause>".
  std::string what = "database work";
  // Attempts in all, the first included (>= 1). Reconnecting counts as part of an attempt.
  int max_attempts = 5;
  // Delays between attempts: initial, initial*multiplier, ... capped at max, with jitter.
  BackoffPolicy backoff{};
  // Sleeps between attempts; returns true when a stop was requested meanwhile. Tests inject a
  // recorder here so that they run in microseconds.
  std::function<bool(std::chrono::milliseconds)> sleep = sleep_unless_stopped;
};

// Anything with a connection to re-open: pg::Session, pg::Listener, test doubles.
template <class S>
concept Reconnectable = requires(S& s, const S& cs) {
  s.reconnect();
  { cs.is_open() } -> std::convertible_to<bool>;
};

namespace detail {

// The non-template part of with_retry(): counts attempts, classifies failures, sleeps, and
// throws when it is time to stop.
class RetryLoop {
 public:
  explicit RetryLoop(const RetryPolicy& policy);  // std::invalid_argument if max_attempts < 1

  // True when the next attempt must reconnect first (the connection broke or is closed).
  [[nodiscard]] bool reconnect_due() const noexcept { return reconnect_due_; }

  // Called with the failure of an attempt (thrown by the work or by reconnect()). Returns
  // after the backoff sleep when another attempt is due; otherwise throws:
  //   InDoubtError   `<what>: commit outcome unknown, not retried: <cause>` (never retried)
  //   SqlError       `<what>: <server's message>` for a permanent SQL error (sqlstate kept)
  //   the failure itself, unchanged, for anything else that is not transient
  //   TransientError `<what>: gave up after N attempts: <cause>` when attempts are used up
  //   TransientError `<what>: stop requested, not retried after N attempts: <cause>`
  void failed(const std::exception_ptr& failure, bool connection_open);

 private:
  const RetryPolicy& policy_;
  Backoff backoff_;
  int attempts_ = 0;
  bool reconnect_due_ = false;
};

}  // namespace detail

// Runs `work(session)` and returns what it returns. On a transient failure (see classify():
// broken connection, serialization failure, deadlock, lock timeout, admin shutdown,
// TransientError...) it backs off (policy.backoff, through policy.sleep) and runs it again,
// reconnecting first when the connection is known to be gone (also before the first attempt),
// up to policy.max_attempts attempts.
// Never runs the work again after an in-doubt commit; stops early when a stop is requested.
// `work` must be safe to run again: open the transaction inside it, and keep its effects on
// the program's state until it has succeeded.
template <Reconnectable S, class F>
requires std::invocable<F&, S&>
auto with_retry(S& session, F&& work, const RetryPolicy& policy = {})
    -> std::invoke_result_t<F&, S&> {
  detail::RetryLoop loop(policy);
  for (;;) {
    try {
      if (loop.reconnect_due() || !session.is_open()) session.reconnect();
      return std::invoke(work, session);
    } catch (...) {
      loop.failed(std::current_exception(), session.is_open());
    }
  }
}

}  // namespace pgcqrs::pg
