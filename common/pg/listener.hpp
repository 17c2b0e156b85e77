// LISTEN/NOTIFY: a Listener on its own connection, and notify() inside a transaction.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/pg/pqxx.hpp"

namespace pgcqrs::pg {

struct Notification {
  std::string channel;
  std::string payload;
  int sender_pid = 0;  // server process that sent it

  bool operator==(const Notification&) const = default;
};

// Receives notifications on its own connection (a connection that runs transactions gets
// none while they are open). Move-only.
//
// Connection loss is never hidden: wait() and listen() throw TransientError, the caller backs
// off, calls reconnect() (which LISTENs again on every channel) and must assume that it missed
// notifications meanwhile, e.g. by polling the table once.
class Listener {
 public:
  // Connects like Session; throws ConfigError / TransientError the same way.
  Listener(std::string url, std::string application_name);
  ~Listener();
  Listener(Listener&&) noexcept;
  Listener& operator=(Listener&&) noexcept;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // LISTEN on `channel`, an identifier taken literally (quoted: case and spaces are kept),
  // so that notify(txn, "Outbox", ...) and listen("Outbox") match. Listening twice is a no-op.
  // Throws ConfigError for an empty name or one over 63 bytes (the server would truncate it
  // and its notifications would never match).
  // The channel is remembered even when this throws TransientError (lost connection), so the
  // next reconnect() listens on it.
  void listen(const std::string& channel);

  // Every notification received, in arrival order, as soon as there is at least one; waits at
  // most `timeout` for the first (0: only collect what has already arrived). Returns empty on
  // timeout, and early (possibly empty) when a stop is requested. Other traffic waking the
  // socket does not end the wait. Throws TransientError when the connection is lost.
  std::vector<Notification> wait(std::chrono::milliseconds timeout);

  // A new connection, listening on every channel again. Throws like the constructor.
  void reconnect();

  [[nodiscard]] bool is_open() const noexcept;
  [[nodiscard]] int backend_pid() const noexcept;
  [[nodiscard]] const std::string& masked_url() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// pg_notify($1, $2) in `txn`: delivered when (and if) txn commits. Identical channel and
// payload pairs sent in one transaction are delivered once (PostgreSQL folds them). Payloads
// are limited to 8000 bytes by the server.
void notify(pqxx::transaction_base& txn, std::string_view channel, std::string_view payload);

}  // namespace pgcqrs::pg
