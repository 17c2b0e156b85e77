// Listener over libpqxx's notification_receiver, with waits that end only on a notification,
// the timeout or a stop; and notify() through pg_notify with bound parameters.
#include "common/pg/listener.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "common/error.hpp"
#include "common/pg/session.hpp"
#include "common/pg/url.hpp"
#include "common/signals.hpp"

namespace pgcqrs::pg {
namespace {

constexpr std::string_view kNotify = "SELECT pg_notify($1, $2)";

// Longest identifier PostgreSQL keeps whole (NAMEDATALEN - 1).
constexpr std::size_t kMaxChannelBytes = 63;

// Longest single wait on the socket, so that a stop request is seen promptly.
constexpr std::chrono::milliseconds kMaxWaitSlice{500};

class Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& conn, const std::string& channel, std::vector<Notification>& sink)
      : pqxx::notification_receiver(conn, channel), sink_(sink) {}

  void operator()(const std::string& payload, int backend_pid) override {
    sink_.push_back(Notification{channel(), payload, backend_pid});
  }

 private:
  std::vector<Notification>& sink_;
};

}  // namespace

struct Listener::State {
  State(std::string url, std::string application_name)
      : session(std::move(url), std::move(application_name)) {}

  ~State() {
    // Close first: receivers going away on a closed connection send no UNLISTEN (the server
    // forgets them with the session) and never try to reach a dead server.
    session.disconnect();
    receivers.clear();
  }
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  [[nodiscard]] TransientError lost(std::string_view cause) const {
    return TransientError(
        "listen on " + session.masked_url() +
        ": connection lost, notifications may have been missed: " + std::string(cause));
  }

  void add_receiver(const std::string& channel) {
    receivers.push_back(std::make_unique<Receiver>(session.conn(), channel, pending));
  }

  Session session;
  std::vector<std::string> channels;
  std::vector<Notification> pending;                 // filled by the receivers
  std::vector<std::unique_ptr<Receiver>> receivers;  // last: hold references to the above
};

Listener::Listener(std::string url, std::string application_name)
    : state_(std::make_unique<State>(std::move(url), std::move(application_name))) {}

Listener::~Listener() = default;
Listener::Listener(Listener&&) noexcept = default;
Listener& Listener::operator=(Listener&&) noexcept = default;

void Listener::listen(const std::string& channel) {
  if (!state_) throw std::logic_error("listen on a moved-from pg::Listener");
  State& s = *state_;
  if (channel.empty() || channel.size() > kMaxChannelBytes) {
    // The server would refuse an empty name and truncate a long one, after which its
    // notifications would never match the name we listen for.
    throw ConfigError("listen channel '" + channel + "': " + std::to_string(channel.size()) +
                      " bytes; use 1 to " + std::to_string(kMaxChannelBytes));
  }
  if (std::find(s.channels.begin(), s.channels.end(), channel) != s.channels.end()) return;
  if (!s.session.is_open()) throw s.lost("not connected");
  s.add_receiver(channel);
  s.channels.push_back(channel);
  // libpqxx swallows a broken connection while sending LISTEN: ask libpq.
  if (!s.session.is_open()) throw s.lost("while sending LISTEN");
}

std::vector<Notification> Listener::wait(std::chrono::milliseconds timeout) {
  if (!state_) throw std::logic_error("wait on a moved-from pg::Listener");
  State& s = *state_;
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::max(timeout, std::chrono::milliseconds::zero());
  try {
    for (bool first = true;; first = false) {
      if (!s.session.is_open()) throw s.lost("not connected");
      s.session.conn().get_notifs();  // reads what the socket holds; receivers fill `pending`
      if (!s.pending.empty()) break;
      const auto left = deadline - Clock::now();
      // At least one look at the socket even for a 0 timeout: a server that went away sends
      // its goodbye and closes; the first read takes the message, the second sees the close.
      if (!first && (left <= Clock::duration::zero() || stop_requested())) break;
      const auto slice = std::clamp(std::chrono::ceil<std::chrono::milliseconds>(left),
                                    std::chrono::milliseconds::zero(), kMaxWaitSlice);
      // Returns on a notification, on any other input (a spurious wakeup for us), on the
      // connection closing, or after `slice`. The loop sorts out which.
      s.session.conn().await_notification(static_cast<long>(slice.count() / 1000),
                                          static_cast<long>(slice.count() % 1000) * 1000L);
    }
  } catch (const pqxx::broken_connection& e) {
    throw s.lost(one_line(e.what()));
  }
  return std::exchange(s.pending, {});
}

void Listener::reconnect() {
  if (!state_) throw std::logic_error("reconnect of a moved-from pg::Listener");
  State& s = *state_;
  s.session.disconnect();
  s.receivers.clear();
  s.session.reconnect();
  for (const std::string& channel : s.channels)
    s.add_receiver(channel);
  if (!s.session.is_open()) throw s.lost("while sending LISTEN");
}

bool Listener::is_open() const noexcept {
  return state_ && state_->session.is_open();
}

int Listener::backend_pid() const noexcept {
  return state_ ? state_->session.backend_pid() : 0;
}

const std::string& Listener::masked_url() const noexcept {
  static const std::string kNone;
  return state_ ? state_->session.masked_url() : kNone;
}

void notify(pqxx::transaction_base& txn, std::string_view channel, std::string_view payload) {
  txn.exec_params(std::string(kNotify), std::string(channel), std::string(payload));
}

}  // namespace pgcqrs::pg
