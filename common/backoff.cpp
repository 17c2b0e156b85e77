// Capped exponential backoff: delay_for() is the pure formula, next() adds jitter.
#include "common/backoff.hpp"

#include <algorithm>
#include <cmath>

namespace pgcqrs {

Backoff::Backoff(BackoffPolicy policy, std::uint64_t seed) : policy_(policy), rng_(seed) {}

std::chrono::milliseconds Backoff::delay_for(const BackoffPolicy& p, int attempt) {
  const double base = static_cast<double>(p.initial.count()) *
                      std::pow(p.multiplier, static_cast<double>(std::max(attempt, 0)));
  const double capped = std::min(base, static_cast<double>(p.max.count()));
  return std::chrono::milliseconds(static_cast<std::int64_t>(capped));
}

std::chrono::milliseconds Backoff::next() {
  const auto d = delay_for(policy_, attempt_);
  if (attempt_ < 1000) ++attempt_;
  if (policy_.jitter <= 0.0) return d;
  std::uniform_real_distribution<double> dist(1.0 - policy_.jitter, 1.0 + policy_.jitter);
  const double jittered = static_cast<double>(d.count()) * dist(rng_);
  return std::chrono::milliseconds(std::min(static_cast<std::int64_t>(jittered),
                                            static_cast<std::int64_t>(policy_.max.count())));
}

}  // namespace pgcqrs
