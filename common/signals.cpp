// SIGTERM/SIGINT -> stop flag, with an interruptible sleep for backoff loops.
#include "common/signals.hpp"

#include <atomic>
#include <csignal>
#include <thread>

namespace pgcqrs {
namespace {

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void on_stop_signal(int /*sig*/) {
  g_stop.store(true);
}

}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

bool stop_requested() noexcept {
  return g_stop.load(std::memory_order_relaxed);
}
void request_stop() noexcept {
  g_stop.store(true);
}
void reset_stop() noexcept {
  g_stop.store(false);
}

bool sleep_unless_stopped(std::chrono::milliseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (!stop_requested()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return false;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(until - now, std::chrono::milliseconds(50)));
  }
  return true;
}

}  // namespace pgcqrs
