// The retry loop's decisions: classify the failure, count the attempt, back off or give up.
#include "common/pg/retry.hpp"

#include <stdexcept>

#include <spdlog/spdlog.h>

#include "common/pg/pqxx.hpp"
#include "common/pg/url.hpp"

namespace pgcqrs::pg::detail {
namespace {

std::string attempts_text(int n) {
  return std::to_string(n) + (n == 1 ? " attempt" : " attempts");
}

}  // namespace

RetryLoop::RetryLoop(const RetryPolicy& policy) : policy_(policy), backoff_(policy.backoff) {
  if (policy.max_attempts < 1) {
    throw std::invalid_argument(policy.what + ": max_attempts must be at least 1, not " +
                                std::to_string(policy.max_attempts));
  }
}

void RetryLoop::failed(const std::exception_ptr& failure, bool connection_open) {
  ++attempts_;
  FailureKind kind = FailureKind::kPermanent;
  std::string cause;
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& e) {
    kind = classify(e);
    cause = one_line(e.what());
    if (kind == FailureKind::kInDoubt) {
      throw InDoubtError(policy_.what + ": commit outcome unknown, not retried: " + cause);
    }
    if (kind == FailureKind::kPermanent) {
      if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
        throw SqlError(policy_.what + ": " + cause, sql->sqlstate());
      }
      throw;  // not ours to reword: MessageError, ConfigError, a SqlError with context, a bug
    }
  }
  // Anything not derived from std::exception escaped the catch above unchanged.

  if (attempts_ >= policy_.max_attempts) {
    throw TransientError(policy_.what + ": gave up after " + attempts_text(attempts_) + ": " +
                         cause);
  }
  const auto stopped = [&] {
    return TransientError(policy_.what + ": stop requested, not retried after " +
                          attempts_text(attempts_) + ": " + cause);
  };
  if (stop_requested()) throw stopped();

  reconnect_due_ = kind == FailureKind::kReconnect || !connection_open;
  const auto delay = backoff_.next();
  spdlog::warn("{}: attempt {} of {} failed, {} in {} ms: {}", policy_.what, attempts_,
               policy_.max_attempts, reconnect_due_ ? "reconnecting" : "retrying", delay.count(),
               cause);
  const bool interrupted = policy_.sleep ? policy_.sleep(delay) : sleep_unless_stopped(delay);
  if (interrupted) throw stopped();
}

}  // namespace pgcqrs::pg::detail
