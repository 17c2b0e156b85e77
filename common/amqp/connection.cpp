// Connection lifetime (RAII over the rabbitmq-c state) and reconnecting with capped backoff.
#include "common/amqp/connection.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <spdlog/spdlog.h>

#include "common/amqp/core.hpp"
#include "common/signals.hpp"

namespace pgcqrs::amqp {

Connection::Connection(const Url& url, const ConnectOptions& options)
    : core_(std::make_shared<detail::Core>(url, options)) {}

Connection::Connection(Connection&& other) noexcept = default;

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    close();
    core_ = std::move(other.core_);
  }
  return *this;
}

Connection::~Connection() {
  close();
}

Channel Connection::open_channel() {
  if (!core_) throw ConnectionError("open channel: connection is closed");
  const std::uint16_t number = core_->open_channel();
  return Channel(core_, number);
}

void Connection::process_events(std::chrono::milliseconds timeout) {
  if (!core_) throw ConnectionError("process AMQP events: connection is closed");
  core_->wait_until([] { return false; }, detail::Clock::now() + timeout,
                    "process events of " + core_->masked(), true);
}

bool Connection::is_open() const noexcept {
  return core_ && !core_->dead();
}
bool Connection::blocked() const noexcept {
  return core_ && core_->blocked();
}
std::string Connection::blocked_reason() const {
  return core_ ? core_->blocked_reason() : std::string();
}
std::chrono::seconds Connection::heartbeat() const noexcept {
  return std::chrono::seconds(core_ ? core_->heartbeat() : 0);
}
std::string Connection::masked_url() const {
  return core_ ? core_->masked() : std::string();
}

bool Connection::set_cork(bool on) noexcept {
  if (!core_ || core_->dead()) return false;
  const int fd = amqp_get_sockfd(core_->state());
  if (fd < 0) return false;
  const int value = on ? 1 : 0;
  return setsockopt(fd, IPPROTO_TCP, TCP_CORK, &value, sizeof value) == 0;
}

void Connection::close() noexcept {
  core_.reset();
}

Connection connect_with_retry(const Url& url, BackoffPolicy policy, const ConnectOptions& options,
                              int max_attempts) {
  Backoff backoff(policy);
  for (int attempt = 1;; ++attempt) {
    if (stop_requested()) {
      throw ConnectionError("connect to " + url.masked() + ": stop requested");
    }
    try {
      return Connection(url, options);
    } catch (const ConnectionError& e) {
      if (max_attempts > 0 && attempt >= max_attempts) {
        throw ConnectionError(
            std::string(e.what()) + " (gave up after " + std::to_string(attempt) + " attempts)",
            e.code(), e.library_error());
      }
      const auto delay = backoff.next();
      spdlog::warn("{} (attempt {}); retrying in {} ms", e.what(), attempt, delay.count());
      if (sleep_unless_stopped(delay)) {
        throw ConnectionError(std::string(e.what()) + " (stop requested after " +
                                  std::to_string(attempt) + " attempts)",
                              e.code(), e.library_error());
      }
    }
  }
}

}  // namespace pgcqrs::amqp
