// One AMQP connection over rabbitmq-c: connect/login, heartbeats, channels, reconnect with backoff.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/amqp/channel.hpp"
#include "common/amqp/error.hpp"
#include "common/amqp/url.hpp"
#include "common/backoff.hpp"

namespace pgcqrs::amqp {

namespace detail {
class Core;
}

struct ConnectOptions {
  // Shown by `rabbitmqctl list_connections client_properties` and the management UI.
  std::string connection_name = "pgcqrs";
  // Longest wait for the reply of one RPC (declare, bind, qos, ...); on expiry the connection
  // is closed and ConnectionError thrown.
  std::chrono::milliseconds rpc_timeout{30'000};
};

// An open, logged-in AMQP connection. Move-only; the destructor closes it gracefully
// (noexcept). Not thread-safe: use a connection (and its channels) from one thread.
//
// rabbitmq-c services heartbeats only inside its own calls: a thread that holds an idle
// connection must call into it (process_events, Channel::next_delivery, poll_confirms, ...)
// at least every heartbeat/2. Waits inside these calls service heartbeats themselves.
class Connection {
 public:
  // Connects and logs in; throws ConnectionError (unreachable, refused, login failed) or
  // ConfigError (unusable TLS files).
  explicit Connection(const Url& url, const ConnectOptions& options = {});
  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Opens a new channel (channel.open).
  Channel open_channel();

  // Reads and dispatches incoming frames (heartbeats, confirms, deliveries, returns,
  // connection.blocked) for up to `timeout`; returns early when pgcqrs::stop_requested().
  void process_events(std::chrono::milliseconds timeout);

  // False after close(), after a move, or once a ConnectionError was thrown.
  [[nodiscard]] bool is_open() const noexcept;
  // True while the broker blocks publishing (resource alarm, connection.blocked).
  [[nodiscard]] bool blocked() const noexcept;
  [[nodiscard]] std::string blocked_reason() const;
  // The negotiated heartbeat interval (0 = none).
  [[nodiscard]] std::chrono::seconds heartbeat() const noexcept;
  // The URL with the password masked.
  [[nodiscard]] std::string masked_url() const;

  // Holds back partial TCP segments (TCP_CORK) while `on`: a burst of publishes then leaves
  // in full segments, which the broker reads in fewer, larger reads. Turning it off sends
  // what is held at once. Best effort: false when the connection is closed or the socket
  // refuses the option, which is then left as it is.
  bool set_cork(bool on) noexcept;

  // Closes the connection gracefully; idempotent, never throws. Channels become unusable.
  void close() noexcept;

 private:
  std::shared_ptr<detail::Core> core_;
};

// A burst of publishes: the connection is corked (Connection::set_cork) for the guard's life.
class Cork {
 public:
  explicit Cork(Connection& connection) : connection_(connection) {
    (void)connection_.set_cork(true);
  }
  ~Cork() { (void)connection_.set_cork(false); }
  Cork(const Cork&) = delete;
  Cork& operator=(const Cork&) = delete;
  Cork(Cork&&) = delete;
  Cork& operator=(Cork&&) = delete;

 private:
  Connection& connection_;
};

// Connects, retrying ConnectionError with capped exponential backoff: each failed attempt is
// logged once (warn) with the masked URL and the delay. Stops with ConnectionError when
// pgcqrs::stop_requested() or after `max_attempts` failures (0 = no limit). ConfigError is
// not retried.
Connection connect_with_retry(const Url& url, BackoffPolicy policy = {},
                              const ConnectOptions& options = {}, int max_attempts = 0);

}  // namespace pgcqrs::amqp
