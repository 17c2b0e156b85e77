// rabbitmq-c reply classification: channel closes -> ChannelError, the rest -> ConnectionError.
#include <amqp.h>
#include <amqp_framing.h>
#include <doctest/doctest.h>

#include "common/amqp/error.hpp"
#include "common/error.hpp"

using namespace pgcqrs;
using namespace pgcqrs::amqp;

namespace {

amqp_rpc_reply_t library_error(int status) {
  amqp_rpc_reply_t r{};
  r.reply_type = AMQP_RESPONSE_LIBRARY_EXCEPTION;
  r.library_error = status;
  return r;
}

amqp_rpc_reply_t server_close(amqp_method_number_t id, void* decoded) {
  amqp_rpc_reply_t r{};
  r.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION;
  r.reply.id = id;
  r.reply.decoded = decoded;
  return r;
}

amqp_channel_close_t channel_close(std::uint16_t code, const char* text) {
  amqp_channel_close_t c{};
  c.reply_code = code;
  c.reply_text = amqp_cstring_bytes(text);
  c.class_id = 40;   // exchange
  c.method_id = 10;  // declare
  return c;
}

amqp_connection_close_t connection_close(std::uint16_t code, const char* text) {
  amqp_connection_close_t c{};
  c.reply_code = code;
  c.reply_text = amqp_cstring_bytes(text);
  return c;
}

}  // namespace

TEST_CASE("amqp classify: a normal reply is ok and throws nothing") {
  amqp_rpc_reply_t r{};
  r.reply_type = AMQP_RESPONSE_NORMAL;
  const ReplyStatus s = classify(r);
  CHECK(s.kind == ReplyKind::kOk);
  CHECK_NOTHROW(throw_if_error(s, "declare exchange 'cqrs'"));
}

TEST_CASE("amqp classify: AMQP_RESPONSE_NONE means no RPC was made") {
  const amqp_rpc_reply_t r{};
  const ReplyStatus s = classify(r);
  CHECK(s.kind == ReplyKind::kNoReply);
  CHECK_THROWS_WITH_AS(throw_if_error(s, "declare queue 'q'"),
                       "declare queue 'q': no reply (rabbitmq-c made no RPC)", ConnectionError);
}

TEST_CASE("amqp classify: library errors are connection errors (transient)") {
  const ReplyStatus socket = classify(library_error(AMQP_STATUS_SOCKET_ERROR));
  CHECK(socket.kind == ReplyKind::kLibraryError);
  CHECK(socket.library_error == AMQP_STATUS_SOCKET_ERROR);
  CHECK(socket.cause() == "a socket error occurred");
  CHECK_THROWS_WITH_AS(throw_if_error(socket, "declare exchange 'cqrs'"),
                       "declare exchange 'cqrs': a socket error occurred", TransientError);

  const ReplyStatus closed = classify(library_error(AMQP_STATUS_CONNECTION_CLOSED));
  CHECK(closed.kind == ReplyKind::kLibraryError);
  CHECK_THROWS_WITH_AS(throw_if_error(closed, "bind queue 'q'"),
                       "bind queue 'q': connection closed unexpectedly", ConnectionError);

  const ReplyStatus timeout = classify(library_error(AMQP_STATUS_TIMEOUT));
  CHECK(timeout.cause() == "request timed out");
  const ReplyStatus heartbeat = classify(library_error(AMQP_STATUS_HEARTBEAT_TIMEOUT));
  CHECK(heartbeat.cause() == "heartbeat timeout, connection closed");
  try {
    throw_if_error(timeout, "purge queue 'q'");
    FAIL("no exception");
  } catch (const ConnectionError& e) {
    CHECK(e.library_error() == AMQP_STATUS_TIMEOUT);
    CHECK(e.code() == 0);
  }
}

TEST_CASE("amqp classify: channel.close 404 and 406 are channel errors") {
  auto not_found = channel_close(404, "NOT_FOUND - no exchange 'missing' in vhost '/'");
  const ReplyStatus s404 = classify(server_close(AMQP_CHANNEL_CLOSE_METHOD, &not_found));
  CHECK(s404.kind == ReplyKind::kChannelClosed);
  CHECK(s404.code == 404);
  CHECK(s404.text == "NOT_FOUND - no exchange 'missing' in vhost '/'");
  CHECK_THROWS_WITH_AS(throw_if_error(s404, "check exchange 'missing'"),
                       "check exchange 'missing': channel closed 404 NOT_FOUND - no exchange "
                       "'missing' in vhost '/'",
                       ChannelError);

  auto precondition = channel_close(406, "PRECONDITION_FAILED - inequivalent arg 'type'");
  const ReplyStatus s406 = classify(server_close(AMQP_CHANNEL_CLOSE_METHOD, &precondition));
  try {
    throw_if_error(s406, "declare exchange 'cqrs'");
    FAIL("no exception");
  } catch (const ChannelError& e) {
    CHECK(std::string(e.what()) ==
          "declare exchange 'cqrs': channel closed 406 PRECONDITION_FAILED - inequivalent arg "
          "'type'");
    CHECK(e.code() == 406);
    CHECK(e.reply_text() == "PRECONDITION_FAILED - inequivalent arg 'type'");
    // a channel error is not transient: reconnecting does not fix a wrong declaration
    CHECK(dynamic_cast<const TransientError*>(&e) == nullptr);
  }
}

TEST_CASE("amqp classify: connection.close 320, 501 and 541 are connection errors") {
  auto forced = connection_close(
      320, "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'");
  const ReplyStatus s320 = classify(server_close(AMQP_CONNECTION_CLOSE_METHOD, &forced));
  CHECK(s320.kind == ReplyKind::kConnectionClosed);
  CHECK(s320.code == 320);
  CHECK_THROWS_WITH_AS(throw_if_error(s320, "declare queue 'q'"),
                       "declare queue 'q': connection closed 320 CONNECTION_FORCED - broker "
                       "forced connection closure with reason 'shutdown'",
                       TransientError);

  auto frame = connection_close(501, "FRAME_ERROR - type 206, all octets = <<>>");
  const ReplyStatus s501 = classify(server_close(AMQP_CONNECTION_CLOSE_METHOD, &frame));
  CHECK(s501.kind == ReplyKind::kConnectionClosed);
  CHECK(s501.cause() == "connection closed 501 FRAME_ERROR - type 206, all octets = <<>>");

  auto internal = connection_close(541, "INTERNAL_ERROR");
  const ReplyStatus s541 = classify(server_close(AMQP_CONNECTION_CLOSE_METHOD, &internal));
  try {
    throw_if_error(s541, "publish");
    FAIL("no exception");
  } catch (const ConnectionError& e) {
    CHECK(std::string(e.what()) == "publish: connection closed 541 INTERNAL_ERROR");
    CHECK(e.code() == 541);
  }
}

TEST_CASE("amqp classify: another server method is an unexpected reply") {
  amqp_basic_cancel_t cancel{};
  const ReplyStatus s = classify(server_close(AMQP_BASIC_CANCEL_METHOD, &cancel));
  CHECK(s.kind == ReplyKind::kUnexpectedMethod);
  CHECK(s.cause() == "unexpected reply from the broker: AMQP_BASIC_CANCEL_METHOD");
  CHECK_THROWS_AS(throw_if_error(s, "consume queue 'q'"), ConnectionError);
  // a close whose decoded body is missing is not trusted as a channel close
  const ReplyStatus empty = classify(server_close(AMQP_CHANNEL_CLOSE_METHOD, nullptr));
  CHECK(empty.kind == ReplyKind::kUnexpectedMethod);
}
