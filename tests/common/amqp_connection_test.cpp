// Connecting without a broker: refused ports, a peer that hangs up, TLS files, the retry loop.
#include <arpa/inet.h>
#include <chrono>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include <doctest/doctest.h>

#include "common/amqp/connection.hpp"
#include "common/error.hpp"
#include "common/signals.hpp"

using namespace pgcqrs;
using namespace pgcqrs::amqp;
using namespace std::chrono_literals;

namespace {

// A loopback TCP listener; port() is where it listens.
class Listener {
 public:
  Listener() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
  }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  ~Listener() { close(); }
  void listen() { REQUIRE(::listen(fd_, 4) == 0); }
  // Accepts one connection, reads what arrives first, and hangs up.
  void accept_and_hang_up() {
    const int c = ::accept(fd_, nullptr, nullptr);
    if (c < 0) return;
    char buf[64];
    [[maybe_unused]] const auto n = ::read(c, buf, sizeof buf);
    ::close(c);
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  [[nodiscard]] std::uint16_t port() const { return port_; }

 private:
  int fd_;
  std::uint16_t port_ = 0;
};

Url local_url(std::uint16_t port) {
  Url url;
  url.host = "127.0.0.1";
  url.port = port;
  url.connection_timeout = 2s;
  return url;
}

}  // namespace

TEST_CASE("amqp connect: a refused port is a ConnectionError naming the masked URL") {
  Listener closed;  // bound, never listening: connections are refused
  const Url url = local_url(closed.port());
  const std::string expected =
      "connect to amqp://guest:****@127.0.0.1:" + std::to_string(closed.port()) +
      "/: a socket error occurred";
  CHECK_THROWS_WITH_AS(Connection{url}, expected.c_str(), ConnectionError);
  CHECK_THROWS_AS(Connection{url}, TransientError);
}

TEST_CASE("amqp connect: a peer that hangs up during the handshake") {
  Listener server;
  server.listen();
  std::thread peer([&] { server.accept_and_hang_up(); });
  const Url url = local_url(server.port());
  try {
    Connection c(url);
    FAIL("connected to a peer that hung up");
  } catch (const ConnectionError& e) {
    const std::string what = e.what();
    CHECK(what.rfind("log in to amqp://guest:****@127.0.0.1:" + std::to_string(server.port()) +
                         "/ as 'guest': ",
                     0) == 0);
  }
  peer.join();
}

TEST_CASE("amqp connect: unreadable TLS files are a ConfigError, not retried") {
  Listener closed;
  Url url = local_url(closed.port());
  url.tls = true;
  url.tls_options.cacertfile = "/nonexistent/ca.pem";
  const std::string expected =
      "AMQP URL 'amqps://guest:****@127.0.0.1:" + std::to_string(closed.port()) +
      "/': cacertfile '/nonexistent/ca.pem' cannot be loaded; give a "
      "readable PEM file of CA certificates";
  CHECK_THROWS_WITH_AS(Connection{url}, expected.c_str(), ConfigError);
  CHECK_THROWS_WITH_AS(connect_with_retry(url, {1ms, 1ms}, {}, 5), expected.c_str(), ConfigError);
}

TEST_CASE("amqp connect_with_retry: gives up after max_attempts with the last error") {
  Listener closed;
  const Url url = local_url(closed.port());
  BackoffPolicy fast;
  fast.initial = 1ms;
  fast.max = 4ms;
  const auto started = std::chrono::steady_clock::now();
  const std::string expected =
      "connect to amqp://guest:****@127.0.0.1:" + std::to_string(closed.port()) +
      "/: a socket error occurred (gave up after 3 attempts)";
  CHECK_THROWS_WITH_AS(connect_with_retry(url, fast, {}, 3), expected.c_str(), ConnectionError);
  CHECK(std::chrono::steady_clock::now() - started < 2s);
}

TEST_CASE("amqp connect_with_retry: honours a stop request") {
  Listener closed;
  const Url url = local_url(closed.port());
  request_stop();
  CHECK_THROWS_WITH_AS(connect_with_retry(url),
                       ("connect to " + url.masked() + ": stop requested").c_str(),
                       ConnectionError);
  reset_stop();

  // a stop requested while backing off ends the wait early
  BackoffPolicy slow;
  slow.initial = 10s;
  slow.max = 10s;
  std::thread stopper([] {
    std::this_thread::sleep_for(200ms);
    request_stop();
  });
  const auto started = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(connect_with_retry(url, slow), ConnectionError);
  CHECK(std::chrono::steady_clock::now() - started < 5s);
  stopper.join();
  reset_stop();
}

TEST_CASE("amqp channel: a channel without a connection refuses work") {
  Channel ch;
  CHECK_FALSE(ch.is_open());
  CHECK_FALSE(ch.confirms_enabled());
  CHECK(ch.unconfirmed() == 0);
  CHECK(ch.unconfirmed_tags().empty());
  CHECK(ch.returned_count() == 0);
  CHECK(ch.take_returns().empty());
  CHECK_THROWS_WITH_AS(ch.publish("cqrs", "author", "{}"),
                       "publish to exchange 'cqrs' with routing key 'author': connection is closed",
                       ConnectionError);
  CHECK_THROWS_AS(ch.next_delivery(0ms), ConnectionError);
  CHECK_THROWS_AS(ch.declare_exchange("cqrs"), ConnectionError);
  ch.close();  // idempotent, never throws
  Channel moved = std::move(ch);
  CHECK_FALSE(moved.is_open());
}
