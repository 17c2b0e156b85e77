// The rabbitmq-c connection: connect/login, frame dispatch to channel inboxes, error handling.
#include "common/amqp/core.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <limits>
#include <sys/time.h>
#include <system_error>

#include <amqp_framing.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <spdlog/spdlog.h>

#include "common/amqp/connection.hpp"
#include "common/amqp/tls.hpp"
#include "common/signals.hpp"

namespace pgcqrs::amqp::detail {
namespace {

// Longest single wait inside rabbitmq-c, so that interruptible waits notice a stop request.
constexpr std::chrono::milliseconds kWaitSlice{200};
// How long the destructor waits for the broker's connection.close-ok.
constexpr std::chrono::milliseconds kCloseTimeout{2'000};

timeval to_timeval(std::chrono::microseconds d) {
  d = std::max(d, std::chrono::microseconds(0));
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1'000'000);
  tv.tv_usec = static_cast<suseconds_t>(d.count() % 1'000'000);
  return tv;
}

// rabbitmq-c's text for a status; socket-level failures add the OS error (errno) they left.
std::string status_with_errno(int status, int saved_errno) {
  std::string text = status_text(status);
  // rabbitmq-c keeps no errno of a failed connect (it reads SO_ERROR and drops it): only a
  // failed send/recv leaves a meaningful one
  if ((status == AMQP_STATUS_SOCKET_ERROR || status == AMQP_STATUS_TCP_ERROR) && saved_errno != 0 &&
      saved_errno != EINPROGRESS && saved_errno != EAGAIN && saved_errno != EWOULDBLOCK) {
    text += " (" + std::error_code(saved_errno, std::generic_category()).message() + ")";
  }
  return text;
}

// The client properties sent at login; rabbitmq-c merges them into its own table (whose
// capabilities already hold authentication_failure_close).
class ClientProperties {
 public:
  explicit ClientProperties(const std::string& connection_name) {
    const auto flag = [](const char* key) {
      amqp_table_entry_t e{};
      e.key = amqp_cstring_bytes(key);
      e.value.kind = AMQP_FIELD_KIND_BOOLEAN;
      e.value.value.boolean = 1;
      return e;
    };
    capabilities_[0] = flag("connection.blocked");
    capabilities_[1] = flag("consumer_cancel_notify");
    capabilities_[2] = flag("publisher_confirms");
    capabilities_[3] = flag("basic.nack");
    const auto text = [](const char* key, std::string_view value) {
      amqp_table_entry_t e{};
      e.key = amqp_cstring_bytes(key);
      e.value.kind = AMQP_FIELD_KIND_UTF8;
      e.value.value.bytes = as_bytes(value);
      return e;
    };
    entries_[0].key = amqp_cstring_bytes("capabilities");
    entries_[0].value.kind = AMQP_FIELD_KIND_TABLE;
    entries_[0].value.value.table.num_entries = static_cast<int>(capabilities_.size());
    entries_[0].value.value.table.entries = capabilities_.data();
    entries_[1] = text("product", "pgcqrs");
    entries_[2] = text("connection_name", connection_name);
    table_.num_entries = static_cast<int>(entries_.size());
    table_.entries = entries_.data();
  }
  ClientProperties(const ClientProperties&) = delete;
  ClientProperties& operator=(const ClientProperties&) = delete;
  [[nodiscard]] const amqp_table_t* table() const noexcept { return &table_; }

 private:
  std::array<amqp_table_entry_t, 4> capabilities_{};
  std::array<amqp_table_entry_t, 3> entries_{};
  amqp_table_t table_{};
};

std::string channel_context(std::string_view what, std::uint16_t channel) {
  return std::string(what) + " on channel " + std::to_string(channel);
}

}  // namespace

void StateCloser::operator()(amqp_connection_state_t state) const noexcept {
  const int rc = amqp_destroy_connection(state);
  if (rc != AMQP_STATUS_OK) {
    spdlog::debug("destroy AMQP connection state: {}", status_text(rc));
  }
}

std::string to_string(amqp_bytes_t b) {
  if (b.len == 0 || b.bytes == nullptr) return {};
  return {static_cast<const char*>(b.bytes), b.len};
}

amqp_bytes_t as_bytes(std::string_view s) noexcept {
  amqp_bytes_t b;
  b.len = s.size();
  b.bytes = const_cast<char*>(s.data());
  return b;
}

Core::Core(const Url& url, const ConnectOptions& options)
    : url_(url),
      masked_(url.masked()),
      rpc_timeout_(options.rpc_timeout),
      state_(amqp_new_connection()) {
  const std::string context = "connect to " + masked_;
  if (!state_) throw ConnectionError(context + ": rabbitmq-c could not allocate a connection");
  amqp_socket_t* socket =
      url_.tls ? amqp_ssl_socket_new(state_.get()) : amqp_tcp_socket_new(state_.get());
  if (socket == nullptr) {
    throw ConnectionError(context + ": rabbitmq-c could not create a " +
                          (url_.tls ? "TLS" : "TCP") + " socket");
  }
  if (url_.tls) configure_tls(socket, url_);  // the socket belongs to state_ from here on

  const timeval connect_tv = to_timeval(url_.connection_timeout);
  int status = 0;
  {
    const SniScope sni(url_);
    errno = 0;
    status = amqp_socket_open_noblock(socket, url_.host.c_str(), url_.port, &connect_tv);
  }
  if (status != AMQP_STATUS_OK) {
    throw ConnectionError(context + ": " + status_with_errno(status, errno), 0, status);
  }
  amqp_set_handshake_timeout(state_.get(), &connect_tv);
  const timeval rpc_tv = to_timeval(rpc_timeout_);
  amqp_set_rpc_timeout(state_.get(), &rpc_tv);

  const ClientProperties properties(options.connection_name);
  const int frame_max = url_.frame_max == 0 ? std::numeric_limits<std::int32_t>::max()
                                            : static_cast<int>(url_.frame_max);
  const amqp_rpc_reply_t reply =
      amqp_login_with_properties(state_.get(), url_.vhost.c_str(), url_.channel_max, frame_max,
                                 static_cast<int>(url_.heartbeat.count()), properties.table(),
                                 AMQP_SASL_METHOD_PLAIN, url_.user.c_str(), url_.password.c_str());
  const ReplyStatus login = classify(reply);
  if (login.kind != ReplyKind::kOk) {
    if (login.kind == ReplyKind::kConnectionClosed) {
      amqp_connection_close_ok_t ok{};
      amqp_send_method(state_.get(), 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    }
    std::string cause = login.cause();
    if (login.kind == ReplyKind::kLibraryError &&
        login.library_error == AMQP_STATUS_CONNECTION_CLOSED) {
      cause +=
          " (the peer hung up during the AMQP handshake: a broker starting or stopping, or not an "
          "AMQP port)";
    }
    throw ConnectionError("log in to " + masked_ + " as '" + url_.user + "': " + cause, login.code,
                          login.library_error);
  }
  channel_max_ = amqp_get_channel_max(state_.get());
  if (channel_max_ <= 0) channel_max_ = 65535;
  spdlog::info("AMQP connected to {} (heartbeat {} s, frame_max {}, channel_max {})", masked_,
               amqp_get_heartbeat(state_.get()), amqp_get_frame_max(state_.get()), channel_max_);
}

Core::~Core() {
  // a blocked connection may not read our close: just drop the socket then
  if (!state_ || dead_ || blocked_) return;
  const timeval tv = to_timeval(kCloseTimeout);
  amqp_set_rpc_timeout(state_.get(), &tv);
  const amqp_rpc_reply_t reply = amqp_connection_close(state_.get(), AMQP_REPLY_SUCCESS);
  try {
    const ReplyStatus s = classify(reply);
    if (s.kind != ReplyKind::kOk) {
      spdlog::debug("close AMQP connection to {}: {}", masked_, s.cause());
    }
  } catch (...) {  // std::bad_alloc while reporting: the connection is closed anyway
  }
}

int Core::heartbeat() const noexcept {
  return state_ ? amqp_get_heartbeat(state_.get()) : 0;
}

void Core::ensure_alive(std::string_view context) const {
  if (dead_) {
    throw ConnectionError(std::string(context) + ": connection is closed (" + dead_cause_ + ")");
  }
}

ChannelState* Core::find(std::uint16_t channel) noexcept {
  const auto it = channels_.find(channel);
  return it == channels_.end() ? nullptr : &it->second;
}

void Core::throw_closed(const ChannelState& cs, std::string_view context) const {
  if (cs.close_code != 0) {
    throw ChannelError(std::string(context) + ": channel closed " + std::to_string(cs.close_code) +
                           " " + cs.close_text,
                       cs.close_code, cs.close_text);
  }
  throw ChannelError(std::string(context) + ": channel is closed; reopen it", 0, "");
}

ChannelState& Core::usable(std::uint16_t channel, std::string_view context) {
  ensure_alive(context);
  if (amqp_frames_enqueued(state_.get()) != 0) drain(context);
  ChannelState* cs = find(channel);
  if (cs == nullptr) throw ChannelError(std::string(context) + ": channel is closed", 0, "");
  if (!cs->open) throw_closed(*cs, context);
  return *cs;
}

std::uint16_t Core::open_channel() {
  const std::string context = "open channel on " + masked_;
  ensure_alive(context);
  int number = 1;
  for (const auto& [n, cs] : channels_) {
    if (n != number) break;
    ++number;
  }
  if (number > channel_max_) {
    throw ConnectionError(context + ": all " + std::to_string(channel_max_) + " channels in use");
  }
  const auto n = static_cast<std::uint16_t>(number);
  channels_.erase(n);
  channels_.emplace(n, ChannelState{});
  reopen_channel(n);
  return n;
}

void Core::reopen_channel(std::uint16_t channel) {
  const std::string context = channel_context("open channel", channel) + " of " + masked_;
  ensure_alive(context);
  ChannelState* cs = find(channel);
  if (cs == nullptr) throw ChannelError(context + ": channel was closed for good", 0, "");
  if (cs->open) {
    // a client-initiated close; the broker's frames for the old channel are dropped
    cs->open = false;
    cs->closing = true;
    const ReplyStatus s = classify(amqp_channel_close(state_.get(), channel, AMQP_REPLY_SUCCESS));
    if (s.kind == ReplyKind::kChannelClosed) {
      amqp_channel_close_ok_t ok{};
      amqp_send_method(state_.get(), channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    } else if (s.kind != ReplyKind::kOk) {
      die(context + ": close the old channel: " + s.cause(), s.code, s.library_error);
    }
    drain(context);
  }
  const bool confirms = cs->confirms;
  const std::uint16_t prefetch = cs->prefetch;
  const std::uint64_t returned_total = cs->returned_total;
  *cs = ChannelState{};
  cs->returned_total = returned_total;
  cs->closing = true;  // until channel.open-ok: drop stale frames
  if (amqp_channel_open(state_.get(), channel) == nullptr) fail_last_rpc(channel, context);
  cs->closing = false;
  cs->open = true;
  release(channel);
  if (confirms) {
    if (amqp_confirm_select(state_.get(), channel) == nullptr) {
      fail_last_rpc(channel, channel_context("enable publisher confirms", channel));
    }
    cs->confirms = true;
    release(channel);
  }
  if (prefetch != 0) {
    if (amqp_basic_qos(state_.get(), channel, 0, prefetch, 0) == nullptr) {
      fail_last_rpc(channel, channel_context("set prefetch", channel));
    }
    cs->prefetch = prefetch;
    release(channel);
  }
}

void Core::close_channel(std::uint16_t channel) noexcept {
  const auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  const bool was_open = it->second.open;
  channels_.erase(it);
  if (!was_open || dead_) return;
  try {
    const ReplyStatus s = classify(amqp_channel_close(state_.get(), channel, AMQP_REPLY_SUCCESS));
    if (s.kind == ReplyKind::kChannelClosed) {
      amqp_channel_close_ok_t ok{};
      amqp_send_method(state_.get(), channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    } else if (s.kind != ReplyKind::kOk) {
      dead_ = true;
      dead_cause_ = channel_context("close channel", channel) + ": " + s.cause();
      spdlog::warn("AMQP {}", dead_cause_);
      return;
    }
    drain(channel_context("close channel", channel));  // drops the closed channel's frames
  } catch (const std::exception& e) {
    spdlog::warn("AMQP close channel {} of {}: {}", channel, masked_, e.what());
  }
}

void Core::die(const std::string& message, std::uint16_t code, int library_error) {
  dead_ = true;
  dead_cause_ = message;
  throw ConnectionError(message, code, library_error);
}

void Core::fail_status(int status, std::string_view context) {
  const int saved_errno = errno;
  die(std::string(context) + ": " + status_with_errno(status, saved_errno), 0, status);
}

void Core::fail_last_rpc(std::uint16_t channel, std::string_view context) {
  fail_reply(channel, amqp_get_rpc_reply(state_.get()), context);
}

void Core::fail_reply(std::uint16_t channel, const amqp_rpc_reply_t& reply,
                      std::string_view context) {
  const int saved_errno = errno;
  ReplyStatus s = classify(reply);
  switch (s.kind) {
    case ReplyKind::kOk:
      die(std::string(context) + ": no result (rabbitmq-c bug?)", 0, 0);
    case ReplyKind::kChannelClosed: {
      ChannelState* cs = find(channel);
      if (cs != nullptr) {
        on_channel_close(channel, *cs, s.code, s.text);
      } else {
        amqp_channel_close_ok_t ok{};
        amqp_send_method(state_.get(), channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
      }
      release(channel);
      throw_if_error(s, context);
      break;
    }
    case ReplyKind::kConnectionClosed:
      on_connection_close(s.code, s.text, context);
    case ReplyKind::kLibraryError:
      s.text = status_with_errno(s.library_error, saved_errno);
      die(std::string(context) + ": " + s.cause(), 0, s.library_error);
    case ReplyKind::kUnexpectedMethod:
    case ReplyKind::kNoReply:
      die(std::string(context) + ": " + s.cause(), 0, 0);
  }
  die(std::string(context) + ": " + s.cause(), 0, 0);
}

void Core::on_channel_close(std::uint16_t channel, ChannelState& cs, std::uint16_t code,
                            std::string text) {
  amqp_channel_close_ok_t ok{};
  const int rc = amqp_send_method(state_.get(), channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
  const bool was_closing = cs.closing;
  cs.open = false;
  cs.closing = false;
  cs.deliveries.clear();  // their tags died with the channel; the broker requeues them
  cs.close_code = code;
  cs.close_text = std::move(text);
  if (!was_closing) {
    spdlog::warn("AMQP channel {} of {} closed by the broker: {} {}", channel, masked_, code,
                 cs.close_text);
  }
  if (rc != AMQP_STATUS_OK) fail_status(rc, channel_context("send channel.close-ok", channel));
}

void Core::on_connection_close(std::uint16_t code, const std::string& text,
                               std::string_view context) {
  amqp_connection_close_ok_t ok{};
  amqp_send_method(state_.get(), 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
  die(std::string(context) + ": connection closed " + std::to_string(code) + " " + text, code, 0);
}

void Core::release(std::uint16_t channel) noexcept {
  if (state_) amqp_maybe_release_buffers_on_channel(state_.get(), channel);
}

bool Core::pump_one(Clock::time_point deadline, std::string_view context) {
  const auto wait = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
  const timeval tv = to_timeval(wait);
  amqp_frame_t frame{};
  errno = 0;
  const int status = amqp_simple_wait_frame_noblock(state_.get(), &frame, &tv);
  if (status == AMQP_STATUS_TIMEOUT) return false;
  if (status != AMQP_STATUS_OK) fail_status(status, context);
  dispatch(frame, context);
  return true;
}

bool Core::wait_until(const std::function<bool()>& done, Clock::time_point deadline,
                      std::string_view context, bool interruptible) {
  ensure_alive(context);
  for (;;) {
    if (done()) return true;
    if (interruptible && stop_requested()) return false;
    const auto slice_end = std::min(deadline, Clock::now() + kWaitSlice);
    if (!pump_one(slice_end, context) && Clock::now() >= deadline) return done();
  }
}

void Core::drain(std::string_view context) {
  ensure_alive(context);
  while (amqp_frames_enqueued(state_.get()) != 0 || amqp_data_in_buffer(state_.get()) != 0) {
    if (!pump_one(Clock::now(), context)) break;
  }
}

bool Core::read_content(std::uint16_t channel, ChannelState* cs, MessageGuard& message,
                        std::string_view context) {
  const amqp_rpc_reply_t reply = amqp_read_message(state_.get(), channel, message.get(), 0);
  if (reply.reply_type == AMQP_RESPONSE_NORMAL) {
    message.arm();
    return true;
  }
  const ReplyStatus s = classify(reply);
  if (s.kind == ReplyKind::kChannelClosed && cs != nullptr) {
    on_channel_close(channel, *cs, s.code, s.text);
    return false;
  }
  fail_reply(channel, reply, context);
}

bool Core::read_delivery(std::uint16_t channel, ChannelState* cs, Delivery& d,
                         std::string_view context) {
  MessageGuard message;
  if (!read_content(channel, cs, message, context)) return false;
  const amqp_basic_properties_t& p = message.get()->properties;
  d.body = to_string(message.get()->body);
  if ((p._flags & AMQP_BASIC_CONTENT_TYPE_FLAG) != 0) d.content_type = to_string(p.content_type);
  if ((p._flags & AMQP_BASIC_EXPIRATION_FLAG) != 0) d.expiration = to_string(p.expiration);
  if ((p._flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0) d.message_id = to_string(p.message_id);
  return true;
}

void Core::dispatch(const amqp_frame_t& frame, std::string_view context) {
  const std::uint16_t channel = frame.channel;
  if (frame.frame_type != AMQP_FRAME_METHOD) {
    // content of a message on a channel we closed meanwhile: nothing waits for it
    release(channel);
    return;
  }
  const amqp_method_number_t id = frame.payload.method.id;
  void* decoded = frame.payload.method.decoded;
  if (channel == 0) {
    if (id == AMQP_CONNECTION_CLOSE_METHOD) {
      const auto* m = static_cast<const amqp_connection_close_t*>(decoded);
      const std::uint16_t code = m->reply_code;
      const std::string text = to_string(m->reply_text);
      release(0);
      on_connection_close(code, text, context);
    } else if (id == AMQP_CONNECTION_BLOCKED_METHOD) {
      blocked_ = true;
      blocked_reason_ = to_string(static_cast<const amqp_connection_blocked_t*>(decoded)->reason);
      spdlog::warn("AMQP connection to {} blocked by the broker: {}", masked_, blocked_reason_);
    } else if (id == AMQP_CONNECTION_UNBLOCKED_METHOD) {
      blocked_ = false;
      blocked_reason_.clear();
      spdlog::info("AMQP connection to {} unblocked by the broker", masked_);
    } else {
      const char* name = amqp_method_name(id);
      spdlog::debug("AMQP ignoring {} on channel 0", name != nullptr ? name : "unknown method");
    }
    release(0);
    return;
  }
  ChannelState* cs = find(channel);
  if (cs == nullptr || cs->closing) {
    if (id == AMQP_CHANNEL_CLOSE_METHOD) {
      if (cs != nullptr) {
        on_channel_close(channel, *cs,
                         static_cast<const amqp_channel_close_t*>(decoded)->reply_code,
                         to_string(static_cast<const amqp_channel_close_t*>(decoded)->reply_text));
      } else {
        amqp_channel_close_ok_t ok{};
        amqp_send_method(state_.get(), channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
      }
    }
    release(channel);
    return;
  }
  dispatch_channel(*cs, frame, context);
  release(channel);
}

void Core::dispatch_channel(ChannelState& cs, const amqp_frame_t& frame, std::string_view context) {
  const std::uint16_t channel = frame.channel;
  void* decoded = frame.payload.method.decoded;
  switch (frame.payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
      const auto* m = static_cast<const amqp_basic_ack_t*>(decoded);
      cs.tracker.on_ack(m->delivery_tag, m->multiple != 0, cs.settled);
      return;
    }
    case AMQP_BASIC_NACK_METHOD: {
      const auto* m = static_cast<const amqp_basic_nack_t*>(decoded);
      cs.tracker.on_nack(m->delivery_tag, m->multiple != 0, cs.settled);
      return;
    }
    case AMQP_BASIC_DELIVER_METHOD: {
      const auto* m = static_cast<const amqp_basic_deliver_t*>(decoded);
      Delivery d;
      d.delivery_tag = m->delivery_tag;
      d.redelivered = m->redelivered != 0;
      d.exchange = to_string(m->exchange);
      d.routing_key = to_string(m->routing_key);
      d.consumer_tag = to_string(m->consumer_tag);
      if (read_delivery(channel, &cs, d, context)) cs.deliveries.push_back(std::move(d));
      return;
    }
    case AMQP_BASIC_RETURN_METHOD: {
      const auto* m = static_cast<const amqp_basic_return_t*>(decoded);
      Returned r;
      r.reply_code = m->reply_code;
      r.reply_text = to_string(m->reply_text);
      r.exchange = to_string(m->exchange);
      r.routing_key = to_string(m->routing_key);
      MessageGuard message;
      if (!read_content(channel, &cs, message, context)) return;
      const amqp_basic_properties_t& p = message.get()->properties;
      r.body = to_string(message.get()->body);
      if ((p._flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0) r.message_id = to_string(p.message_id);
      ++cs.returned_total;
      spdlog::warn("AMQP message returned by the broker: exchange '{}' routing key '{}': {} {}",
                   r.exchange, r.routing_key, r.reply_code, r.reply_text);
      cs.returns.push_back(std::move(r));
      return;
    }
    case AMQP_CHANNEL_CLOSE_METHOD: {
      const auto* m = static_cast<const amqp_channel_close_t*>(decoded);
      on_channel_close(channel, cs, m->reply_code, to_string(m->reply_text));
      return;
    }
    case AMQP_BASIC_CANCEL_METHOD: {
      const auto* m = static_cast<const amqp_basic_cancel_t*>(decoded);
      cs.cancelled_consumer = to_string(m->consumer_tag);
      spdlog::warn("AMQP consumer '{}' on channel {} of {} cancelled by the broker",
                   cs.cancelled_consumer, channel, masked_);
      if (m->nowait == 0) {
        amqp_basic_cancel_ok_t ok{};
        ok.consumer_tag = m->consumer_tag;
        const int rc = amqp_send_method(state_.get(), channel, AMQP_BASIC_CANCEL_OK_METHOD, &ok);
        if (rc != AMQP_STATUS_OK) fail_status(rc, context);
      }
      return;
    }
    case AMQP_CHANNEL_FLOW_METHOD: {
      amqp_channel_flow_ok_t ok{};
      ok.active = static_cast<const amqp_channel_flow_t*>(decoded)->active;
      const int rc = amqp_send_method(state_.get(), channel, AMQP_CHANNEL_FLOW_OK_METHOD, &ok);
      if (rc != AMQP_STATUS_OK) fail_status(rc, context);
      return;
    }
    default: {
      const char* name = amqp_method_name(frame.payload.method.id);
      spdlog::debug("AMQP ignoring {} on channel {}", name != nullptr ? name : "unknown method",
                    channel);
      return;
    }
  }
}

}  // namespace pgcqrs::amqp::detail
