// AMQP errors by what the caller must do: reopen the channel, or reconnect; reply checking.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <amqp.h>

#include "common/error.hpp"

namespace pgcqrs::amqp {

// The broker closed one channel (404 NOT_FOUND, 406 PRECONDITION_FAILED, 403 ACCESS_REFUSED,
// ...) or cancelled its consumer. The connection and its other channels are still usable;
// reopen the channel (Channel::reopen) and redeclare what the operation needed.
class ChannelError : public Error {
 public:
  ChannelError(const std::string& message, std::uint16_t code, std::string reply_text)
      : Error(message), code_(code), reply_text_(std::move(reply_text)) {}
  // AMQP reply code (404, 406, ...); 0 for a consumer cancelled by the broker.
  [[nodiscard]] std::uint16_t code() const noexcept { return code_; }
  // The broker's text, e.g. "NOT_FOUND - no exchange 'x' in vhost '/'".
  [[nodiscard]] const std::string& reply_text() const noexcept { return reply_text_; }

 private:
  std::uint16_t code_;
  std::string reply_text_;
};

// The connection is gone: socket error, timeout, missed heartbeats, or the broker closed it
// (320 CONNECTION_FORCED on shutdown, 501 FRAME_ERROR, 541 INTERNAL_ERROR, 403 at login).
// Back off and reconnect (connect_with_retry); messages not yet confirmed must be republished.
class ConnectionError : public TransientError {
 public:
  explicit ConnectionError(const std::string& message, std::uint16_t code = 0,
                           int library_error = 0)
      : TransientError(message), code_(code), library_error_(library_error) {}
  // AMQP reply code of a connection.close from the broker; 0 otherwise.
  [[nodiscard]] std::uint16_t code() const noexcept { return code_; }
  // rabbitmq-c status (AMQP_STATUS_*, negative) of a library-side failure; 0 otherwise.
  [[nodiscard]] int library_error() const noexcept { return library_error_; }

 private:
  std::uint16_t code_;
  int library_error_;
};

// What a rabbitmq-c RPC reply means for the caller.
enum class ReplyKind {
  kOk,                // AMQP_RESPONSE_NORMAL
  kChannelClosed,     // the broker sent channel.close: send channel.close-ok, channel unusable
  kConnectionClosed,  // the broker sent connection.close: send connection.close-ok, reconnect
  kLibraryError,      // rabbitmq-c failed (socket, timeout, heartbeat, protocol): reconnect
  kUnexpectedMethod,  // a server exception with another method: protocol state lost, reconnect
  kNoReply,           // AMQP_RESPONSE_NONE: no RPC was made (a bug)
};

struct ReplyStatus {
  ReplyKind kind = ReplyKind::kOk;
  std::uint16_t code = 0;  // reply code of a channel/connection close
  int library_error = 0;   // AMQP_STATUS_* of a library error
  std::string text;        // reply text of a close, rabbitmq-c's text of a library error
  // Human cause, the part after "<what> <which>: ":
  //   "channel closed 404 NOT_FOUND - no exchange 'x' in vhost '/'"
  //   "connection closed 320 CONNECTION_FORCED - broker forced connection closure ..."
  //   "a socket error occurred"
  [[nodiscard]] std::string cause() const;
};

// Classifies a reply without touching any connection (pure; unit-tested with built replies).
ReplyStatus classify(const amqp_rpc_reply_t& reply);

// Throws for a non-OK status: ChannelError for kChannelClosed, ConnectionError otherwise;
// the message is "<context>: <cause>". Does nothing for kOk.
void throw_if_error(const ReplyStatus& status, std::string_view context);

// rabbitmq-c's text for an AMQP_STATUS_* code.
std::string status_text(int status);

}  // namespace pgcqrs::amqp
