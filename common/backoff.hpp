// Capped exponential backoff with jitter, for reconnect and retry loops.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace pgcqrs {

struct BackoffPolicy {
  std::chrono::milliseconds initial{100};
  std::chrono::milliseconds max{10'000};
  double multiplier = 2.0;
  double jitter = 0.2;  // +-20 % so that many clients do not reconnect in lock step
};

class Backoff {
 public:
  explicit Backoff(BackoffPolicy policy = {}, std::uint64_t seed = std::random_device{}());

  // The delay to wait before the next attempt; grows by `multiplier` up to `max`.
  std::chrono::milliseconds next();
  // Back to `initial` after a success.
  void reset() noexcept { attempt_ = 0; }
  [[nodiscard]] int attempts() const noexcept { return attempt_; }

  // Deterministic delay of attempt n (0-based) without jitter: min(max, initial * mult^n).
  [[nodiscard]] static std::chrono::milliseconds delay_for(const BackoffPolicy& p, int attempt);

 private:
  BackoffPolicy policy_;
  int attempt_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace pgcqrs
