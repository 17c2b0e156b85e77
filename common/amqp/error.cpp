// Classification of rabbitmq-c replies into ChannelError / ConnectionError with readable causes.
#include "common/amqp/error.hpp"

#include <amqp.h>
#include <amqp_framing.h>

namespace pgcqrs::amqp {
namespace {

std::string to_string(amqp_bytes_t b) {
  if (b.len == 0 || b.bytes == nullptr) return {};
  return {static_cast<const char*>(b.bytes), b.len};
}

}  // namespace

std::string status_text(int status) {
  const char* s = amqp_error_string2(status);
  return s != nullptr ? std::string(s) : "unknown rabbitmq-c status " + std::to_string(status);
}

std::string ReplyStatus::cause() const {
  switch (kind) {
    case ReplyKind::kOk:
      return "ok";
    case ReplyKind::kChannelClosed:
      return "channel closed " + std::to_string(code) + " " + text;
    case ReplyKind::kConnectionClosed:
      return "connection closed " + std::to_string(code) + " " + text;
    case ReplyKind::kLibraryError:
      return text;
    case ReplyKind::kUnexpectedMethod:
      return "unexpected reply from the broker: " + text;
    case ReplyKind::kNoReply:
      return "no reply (rabbitmq-c made no RPC)";
  }
  return text;
}

ReplyStatus classify(const amqp_rpc_reply_t& reply) {
  ReplyStatus s;
  switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return s;
    case AMQP_RESPONSE_NONE:
      s.kind = ReplyKind::kNoReply;
      return s;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      s.kind = ReplyKind::kLibraryError;
      s.library_error = reply.library_error;
      s.text = status_text(reply.library_error);
      return s;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      break;
  }
  if (reply.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION) {
    s.kind = ReplyKind::kNoReply;
    return s;
  }
  if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD && reply.reply.decoded != nullptr) {
    const auto* m = static_cast<const amqp_channel_close_t*>(reply.reply.decoded);
    s.kind = ReplyKind::kChannelClosed;
    s.code = m->reply_code;
    s.text = to_string(m->reply_text);
  } else if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD && reply.reply.decoded != nullptr) {
    const auto* m = static_cast<const amqp_connection_close_t*>(reply.reply.decoded);
    s.kind = ReplyKind::kConnectionClosed;
    s.code = m->reply_code;
    s.text = to_string(m->reply_text);
  } else {
    s.kind = ReplyKind::kUnexpectedMethod;
    const char* name = amqp_method_name(reply.reply.id);
    s.text = name != nullptr ? name : "method " + std::to_string(reply.reply.id);
  }
  return s;
}

void throw_if_error(const ReplyStatus& status, std::string_view context) {
  if (status.kind == ReplyKind::kOk) return;
  const std::string message = std::string(context) + ": " + status.cause();
  if (status.kind == ReplyKind::kChannelClosed) {
    throw ChannelError(message, status.code, status.text);
  }
  throw ConnectionError(message, status.code, status.library_error);
}

}  // namespace pgcqrs::amqp
