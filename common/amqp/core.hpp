// Internal: the rabbitmq-c connection state, per-channel inboxes and the frame dispatcher.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <amqp.h>

#include "common/amqp/channel.hpp"
#include "common/amqp/confirms.hpp"
#include "common/amqp/error.hpp"
#include "common/amqp/url.hpp"

namespace pgcqrs::amqp {
struct ConnectOptions;
}

namespace pgcqrs::amqp::detail {

using Clock = std::chrono::steady_clock;

// Owns an amqp_connection_state_t from the line that creates it.
struct StateCloser {
  void operator()(amqp_connection_state_t state) const noexcept;
};
using StateHandle = std::unique_ptr<amqp_connection_state_t_, StateCloser>;

// Owns an amqp_message_t filled by amqp_read_message. rabbitmq-c frees the parts itself when
// amqp_read_message fails, so the guard is armed only after a normal reply.
class MessageGuard {
 public:
  MessageGuard() = default;
  MessageGuard(const MessageGuard&) = delete;
  MessageGuard& operator=(const MessageGuard&) = delete;
  ~MessageGuard() {
    if (armed_) amqp_destroy_message(&message_);
  }
  amqp_message_t* get() noexcept { return &message_; }
  void arm() noexcept { armed_ = true; }

 private:
  amqp_message_t message_{};
  bool armed_ = false;
};

std::string to_string(amqp_bytes_t b);
// A view of `s` for rabbitmq-c, which never writes through it.
amqp_bytes_t as_bytes(std::string_view s) noexcept;

// Everything the dispatcher learned about one channel.
struct ChannelState {
  bool open = false;             // channel.open-ok seen, no close since
  bool closing = false;          // we sent channel.close: drop its frames
  std::uint16_t close_code = 0;  // the broker's channel.close, if it closed the channel
  std::string close_text;
  bool confirms = false;
  std::uint16_t prefetch = 0;
  ConfirmTracker tracker;
  Confirms settled;
  std::deque<Delivery> deliveries;
  std::vector<Returned> returns;
  std::uint64_t returned_total = 0;
  std::string cancelled_consumer;  // consumer tag cancelled by the broker (basic.cancel)
};

class Core {
 public:
  Core(const Url& url, const ConnectOptions& options);
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;
  ~Core();

  [[nodiscard]] amqp_connection_state_t state() const noexcept { return state_.get(); }
  [[nodiscard]] const std::string& masked() const noexcept { return masked_; }
  [[nodiscard]] bool dead() const noexcept { return dead_; }
  [[nodiscard]] bool blocked() const noexcept { return blocked_; }
  [[nodiscard]] const std::string& blocked_reason() const noexcept { return blocked_reason_; }
  [[nodiscard]] int heartbeat() const noexcept;

  // Throws ConnectionError "<context>: connection is closed (<why>)" once dead.
  void ensure_alive(std::string_view context) const;
  // The state of an open channel; throws ChannelError if the broker closed it, ConnectionError
  // if the connection is gone. Dispatches frames rabbitmq-c already queued first, so that a
  // channel.close read during another channel's RPC is seen before this channel is used.
  ChannelState& usable(std::uint16_t channel, std::string_view context);
  ChannelState* find(std::uint16_t channel) noexcept;
  // Throws ChannelError for a channel the broker closed (the cause recorded in `cs`).
  [[noreturn]] void throw_closed(const ChannelState& cs, std::string_view context) const;

  std::uint16_t open_channel();
  void reopen_channel(std::uint16_t channel);
  // Client-initiated channel.close; forgets the channel. Errors are logged, never thrown.
  void close_channel(std::uint16_t channel) noexcept;

  // After a failed RPC on `channel` (reply from amqp_get_rpc_reply or the call itself): sends
  // channel.close-ok / connection.close-ok as the broker expects and throws.
  [[noreturn]] void fail_reply(std::uint16_t channel, const amqp_rpc_reply_t& reply,
                               std::string_view context);
  [[noreturn]] void fail_last_rpc(std::uint16_t channel, std::string_view context);
  // After a failed non-RPC call (publish, ack, send_method): the connection is unusable.
  [[noreturn]] void fail_status(int status, std::string_view context);

  // Reads and dispatches frames until `done()` or `deadline`; returns done(). With
  // `interruptible`, returns early when pgcqrs::stop_requested().
  bool wait_until(const std::function<bool()>& done, Clock::time_point deadline,
                  std::string_view context, bool interruptible);
  // Dispatches every frame already read (queued by rabbitmq-c or in its socket buffer).
  void drain(std::string_view context);
  // Lets rabbitmq-c recycle the memory of `channel`'s frames once we copied what we need.
  void release(std::uint16_t channel) noexcept;
  // Reads the content (header + body frames) following a basic.deliver / basic.get-ok on
  // `channel` into `d`. False when the broker closed the channel instead (recorded in `cs`).
  bool read_delivery(std::uint16_t channel, ChannelState* cs, Delivery& d,
                     std::string_view context);

 private:
  // Reads one frame (waiting until `deadline`) and dispatches it; false on timeout.
  bool pump_one(Clock::time_point deadline, std::string_view context);
  void dispatch(const amqp_frame_t& frame, std::string_view context);
  void dispatch_channel(ChannelState& cs, const amqp_frame_t& frame, std::string_view context);
  void on_channel_close(std::uint16_t channel, ChannelState& cs, std::uint16_t code,
                        std::string text);
  [[noreturn]] void on_connection_close(std::uint16_t code, const std::string& text,
                                        std::string_view context);
  [[noreturn]] void die(const std::string& message, std::uint16_t code, int library_error);
  bool read_content(std::uint16_t channel, ChannelState* cs, MessageGuard& message,
                    std::string_view context);

  // url_ outlives state_ (declared first): the TLS callback reads its SNI name.
  Url url_;
  std::string masked_;
  std::chrono::milliseconds rpc_timeout_;
  StateHandle state_;
  bool dead_ = false;
  std::string dead_cause_;
  bool blocked_ = false;
  std::string blocked_reason_;
  int channel_max_ = 0;
  std::map<std::uint16_t, ChannelState> channels_;
};

}  // namespace pgcqrs::amqp::detail
