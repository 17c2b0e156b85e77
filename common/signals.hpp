// Graceful stop: SIGTERM/SIGINT set a process-wide flag that long-running loops poll.
#pragma once

#include <chrono>

namespace pgcqrs {

// Installs handlers for SIGTERM and SIGINT (and ignores SIGPIPE). Idempotent.
void install_stop_handlers();
// True once SIGTERM/SIGINT arrived or request_stop() was called.
bool stop_requested() noexcept;
// Sets the flag from code (tests, a fatal worker error).
void request_stop() noexcept;
// Clears the flag (tests only).
void reset_stop() noexcept;
// Sleeps up to `d`, returning early (true) when a stop is requested.
bool sleep_unless_stopped(std::chrono::milliseconds d);

}  // namespace pgcqrs
