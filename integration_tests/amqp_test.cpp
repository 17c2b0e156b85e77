// AMQP client against a real RabbitMQ: confirmed bulk publish + consume, returns, channel and
// connection errors, ack/nack/reject/get, heartbeats, blocked notifications, and a broker
// restart in the middle of publishing (last: it stops the broker for a while).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <netinet/in.h>
#include <optional>
#include <set>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <doctest/doctest.h>

#include "common/amqp/connection.hpp"
#include "common/error.hpp"
#include "common/signals.hpp"
#include "support/support.hpp"

using namespace pgcqrs;
using namespace pgcqrs::amqp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

Url test_url() {
  return parse_url(it::amqp_url());
}

// A ~400-byte message body numbered `i` ("msg-00000042|xxxx...").
std::string numbered_body(int i) {
  char head[32];
  std::snprintf(head, sizeof head, "msg-%08d|", i);
  std::string body(head);
  body.resize(400, 'x');
  return body;
}

int body_number(const std::string& body) {
  return std::stoi(body.substr(4, 8));
}

// A loopback TCP port nobody listens on right now.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  REQUIRE(ok);
  return ntohs(addr.sin_port);
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Runs rabbitmqctl against this run's node; returns its exit status.
int rabbitmqctl(const std::string& args, std::string* out = nullptr) {
  const char* base = std::getenv("PGCQRS_TEST_RMQ_BASE");  // NOLINT(concurrency-mt-unsafe)
  if (base == nullptr) return -1;
  return it::run_shell(". '" + std::string(base) + "/env.sh' && rabbitmqctl -q " + args + " 2>&1",
                       out);
}

// The broker counts a queue's messages through another process than the one that applies acks
// and requeues: wait until the count settles.
std::uint32_t settled_count(Channel& ch, const std::string& queue, std::uint32_t expected) {
  std::uint32_t n = ch.declare_queue_passive(queue);
  for (const auto until = Clock::now() + 5s; n != expected && Clock::now() < until;) {
    std::this_thread::sleep_for(20ms);
    n = ch.declare_queue_passive(queue);
  }
  return n;
}

// A topic exchange with one durable queue bound with `key`, deleted at the end of the scope.
struct Topology {
  Topology(Channel& ch, const std::string& key = "author")
      : channel(ch), exchange(it::unique_name("it_cqrs")), queue(it::unique_name("it_q")) {
    ch.declare_exchange(exchange);
    ch.declare_queue(queue);
    ch.bind_queue(queue, exchange, key);
  }
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;
  ~Topology() {
    try {
      if (channel.is_open()) {
        channel.delete_queue(queue);
        channel.delete_exchange(exchange);
      }
    } catch (const std::exception& e) {
      MESSAGE("cleanup: " << std::string(e.what()));
    }
  }
  Channel& channel;
  std::string exchange;
  std::string queue;
};

}  // namespace

TEST_CASE("amqp: 10,000 persistent messages with a confirm window of 1000, consumed in order") {
  constexpr int kMessages = 10'000;
  constexpr std::size_t kWindow = 1000;
  constexpr int kAckEvery = 100;
  Connection conn(test_url(), {"pgcqrs it bulk"});
  CHECK(conn.heartbeat() == 30s);
  Channel ch = conn.open_channel();
  Topology topo(ch);
  ch.enable_confirms();

  const auto publish_start = Clock::now();
  std::size_t acked = 0;
  std::uint64_t expected_tag = 1;
  for (int i = 0; i < kMessages; ++i) {
    while (ch.unconfirmed() >= kWindow) {
      const Confirms c = ch.poll_confirms(10s);
      REQUIRE_FALSE(c.empty());
      REQUIRE(c.nacked.empty());
      acked += c.acked.size();
    }
    REQUIRE(ch.publish(topo.exchange, "author", numbered_body(i)) == expected_tag++);
  }
  const Confirms rest = ch.wait_all_confirms(30s);
  REQUIRE(rest.nacked.empty());
  acked += rest.acked.size();
  const double publish_s = seconds_since(publish_start);
  CHECK(ch.unconfirmed() == 0);
  CHECK(acked == kMessages);
  CHECK(ch.returned_count() == 0);
  MESSAGE("publish with confirms (window " << kWindow << "): " << kMessages << " msgs in "
                                           << publish_s << " s = " << kMessages / publish_s
                                           << " msgs/s");
  CHECK(ch.declare_queue_passive(topo.queue) == kMessages);

  Channel consumer = conn.open_channel();
  consumer.set_prefetch(1000);
  const std::string tag = consumer.consume(topo.queue);
  CHECK_FALSE(tag.empty());
  const auto consume_start = Clock::now();
  int next = 0;
  while (next < kMessages) {
    const auto d = consumer.next_delivery(10s);
    REQUIRE(d.has_value());
    REQUIRE(body_number(d->body) == next);  // each body exactly once, in order
    CHECK(d->body == numbered_body(next));
    CHECK(d->content_type == "text/plain");
    CHECK_FALSE(d->redelivered);
    CHECK(d->routing_key == "author");
    CHECK(d->exchange == topo.exchange);
    CHECK(d->consumer_tag == tag);
    ++next;
    if (next % kAckEvery == 0 || next == kMessages) consumer.ack(d->delivery_tag, true);
  }
  const double consume_s = seconds_since(consume_start);
  MESSAGE("consume (prefetch 1000, multiple-ack every "
          << kAckEvery << "): " << kMessages << " msgs in " << consume_s
          << " s = " << kMessages / consume_s << " msgs/s");
  CHECK_FALSE(consumer.next_delivery(300ms).has_value());  // nothing more, nothing twice
  consumer.cancel(tag);
  CHECK(settled_count(consumer, topo.queue, 0) == 0);
}

TEST_CASE("amqp: a burst published under a Cork arrives whole and in order") {
  // the master agent corks the socket for each read's publishes (docs/benchmarks.md)
  constexpr int kMessages = 500;
  Connection conn(test_url(), {"pgcqrs it cork"});
  Channel ch = conn.open_channel();
  Topology topo(ch);
  ch.enable_confirms();
  std::string big(300'000, 'b');  // larger than the negotiated frame: several body frames
  CHECK(conn.set_cork(true));     // the socket takes the option
  CHECK(conn.set_cork(false));
  {
    const Cork cork(conn);
    for (int i = 0; i < kMessages; ++i)
      ch.publish(topo.exchange, "author", numbered_body(i));
    ch.publish(topo.exchange, "author", big);
  }
  const Confirms c = ch.wait_all_confirms(10s);
  CHECK(c.nacked.empty());
  CHECK(c.acked.size() == kMessages + 1);
  {
    const Cork cork(conn);
    CHECK(conn.set_cork(false));  // turning it off early is harmless, and so is the guard's off
  }
  CHECK(settled_count(ch, topo.queue, kMessages + 1) == kMessages + 1);
  for (int i = 0; i < kMessages; ++i) {
    const auto m = ch.get(topo.queue);
    REQUIRE(m.has_value());
    CHECK(m->body == numbered_body(i));
    ch.ack(m->delivery_tag);
  }
  const auto last = ch.get(topo.queue);
  REQUIRE(last.has_value());
  CHECK(last->body == big);
  ch.ack(last->delivery_tag);
}

TEST_CASE("amqp: mandatory publish to an unbound routing key is returned, reported, counted") {
  Connection conn(test_url());
  Channel ch = conn.open_channel();
  Topology topo(ch);
  ch.enable_confirms();
  PublishOptions mandatory;
  mandatory.mandatory = true;
  mandatory.message_id = "outbox-42";
  CHECK(ch.publish(topo.exchange, "nobody.listens", "lost?", mandatory) == 1);
  CHECK(ch.publish(topo.exchange, "author", "routed", mandatory) == 2);
  const Confirms c = ch.wait_all_confirms(10s);
  // the broker acks a returned message: only the return tells it was not routed
  CHECK(c.acked == std::vector<std::uint64_t>{1, 2});
  CHECK(ch.returned_count() == 1);
  const auto returns = ch.take_returns();
  REQUIRE(returns.size() == 1);
  CHECK(returns[0].reply_code == 312);
  CHECK(returns[0].reply_text == "NO_ROUTE");
  CHECK(returns[0].exchange == topo.exchange);
  CHECK(returns[0].routing_key == "nobody.listens");
  CHECK(returns[0].body == "lost?");
  CHECK(returns[0].message_id == "outbox-42");
  CHECK(ch.take_returns().empty());
  CHECK(ch.returned_count() == 1);
  CHECK(ch.declare_queue_passive(topo.queue) == 1);
}

TEST_CASE("amqp: publish to a missing exchange is ChannelError 404; reopen, connection fine") {
  Connection conn(test_url());
  Channel other = conn.open_channel();
  Channel ch = conn.open_channel();
  Topology topo(other);
  ch.enable_confirms();
  const std::string missing = it::unique_name("it_missing");
  CHECK(ch.publish(missing, "author", "{}") == 1);
  const std::string expected = "wait for publisher confirms on channel " +
                               std::to_string(ch.number()) + ": channel closed 404 NOT_FOUND - " +
                               "no exchange '" + missing + "' in vhost '/'";
  try {
    ch.poll_confirms(10s);
    FAIL("no ChannelError");
  } catch (const ChannelError& e) {
    CHECK(std::string(e.what()) == expected);
    CHECK(e.code() == 404);
  }
  CHECK_FALSE(ch.is_open());
  CHECK(conn.is_open());
  CHECK(ch.unconfirmed_tags() == std::vector<std::uint64_t>{1});  // to publish again
  // the closed channel keeps refusing work with the broker's reason
  CHECK_THROWS_WITH_AS(ch.publish(topo.exchange, "author", "{}"),
                       ("publish to exchange '" + topo.exchange +
                        "' with routing key 'author': channel closed 404 NOT_FOUND - no "
                        "exchange '" +
                        missing + "' in vhost '/'")
                           .c_str(),
                       ChannelError);
  // the other channel did not notice
  CHECK(other.is_open());
  CHECK(other.declare_queue_passive(topo.queue) == 0);

  ch.reopen();
  CHECK(ch.is_open());
  CHECK(ch.confirms_enabled());
  CHECK(ch.unconfirmed() == 0);
  CHECK(ch.publish(topo.exchange, "author", "after reopen") == 1);  // tags start over
  CHECK(ch.wait_all_confirms(10s).acked == std::vector<std::uint64_t>{1});
  CHECK(other.declare_queue_passive(topo.queue) == 1);
}

TEST_CASE("amqp: declaration errors 406 and 404 as ChannelError with the broker's text") {
  Connection conn(test_url());
  Channel ch = conn.open_channel();
  const std::string exchange = it::unique_name("it_cqrs");
  ch.declare_exchange(exchange);
  ch.declare_exchange(exchange);  // same arguments: fine
  ch.declare_exchange_passive(exchange);
  try {
    ch.declare_exchange(exchange, "fanout");
    FAIL("no ChannelError");
  } catch (const ChannelError& e) {
    CHECK(std::string(e.what()) ==
          "declare exchange '" + exchange +
              "': channel closed 406 PRECONDITION_FAILED - inequivalent arg 'type' for exchange "
              "'" +
              exchange + "' in vhost '/': received 'fanout' but current is 'topic'");
    CHECK(e.code() == 406);
  }
  CHECK(conn.is_open());
  ch.reopen();
  const std::string missing = it::unique_name("it_missing_q");
  CHECK_THROWS_WITH_AS(ch.declare_queue_passive(missing),
                       ("check queue '" + missing + "': channel closed 404 NOT_FOUND - no queue '" +
                        missing + "' in vhost '/'")
                           .c_str(),
                       ChannelError);
  ch.reopen();
  CHECK_THROWS_AS(ch.bind_queue(missing, exchange, "k"), ChannelError);
  ch.reopen();
  ch.delete_exchange(exchange);
  CHECK_THROWS_AS(ch.declare_exchange_passive(exchange), ChannelError);
}

TEST_CASE("amqp: nack with requeue redelivers, reject drops, get is non-destructive") {
  Connection conn(test_url());
  Channel ch = conn.open_channel();
  Topology topo(ch);
  ch.enable_confirms();
  PublishOptions dead_letter;
  dead_letter.expiration = "60000";
  ch.publish(topo.exchange, "author", "first", dead_letter);
  ch.wait_all_confirms(10s);

  Channel consumer = conn.open_channel();
  consumer.set_prefetch(10);
  const std::string tag = consumer.consume(topo.queue);
  const auto d1 = consumer.next_delivery(10s);
  REQUIRE(d1.has_value());
  CHECK(d1->body == "first");
  CHECK_FALSE(d1->redelivered);
  CHECK(d1->expiration == "60000");
  CHECK(d1->content_type == "text/plain");
  consumer.nack(d1->delivery_tag, false, true);
  const auto d2 = consumer.next_delivery(10s);
  REQUIRE(d2.has_value());
  CHECK(d2->body == "first");
  CHECK(d2->redelivered);
  consumer.reject(d2->delivery_tag, false);
  CHECK_FALSE(consumer.next_delivery(500ms).has_value());
  consumer.cancel(tag);
  CHECK(settled_count(ch, topo.queue, 0) == 0);

  // basic.get: take three, put them all back with one multiple nack(requeue)
  for (const char* b : {"a", "b", "c"})
    ch.publish(topo.exchange, "author", b);
  ch.wait_all_confirms(10s);
  std::vector<std::string> seen;
  std::uint64_t last_tag = 0;
  for (int i = 0; i < 3; ++i) {
    const auto d = ch.get(topo.queue);
    REQUIRE(d.has_value());
    CHECK(d->message_count == static_cast<std::uint32_t>(2 - i));
    seen.push_back(d->body);
    last_tag = d->delivery_tag;
  }
  CHECK(seen == std::vector<std::string>{"a", "b", "c"});
  CHECK_FALSE(ch.get(topo.queue).has_value());
  ch.nack(last_tag, true, true);
  CHECK(settled_count(ch, topo.queue, 3) == 3);
  const auto again = ch.get(topo.queue, true);  // no_ack: taken for good
  REQUIRE(again.has_value());
  CHECK(again->redelivered);
  CHECK(ch.purge_queue(topo.queue) == 2);
  CHECK(settled_count(ch, topo.queue, 0) == 0);
}

TEST_CASE("amqp: a consumer cancelled by the broker (queue deleted) is a ChannelError") {
  Connection conn(test_url());
  Channel ch = conn.open_channel();
  const std::string queue = it::unique_name("it_cancel");
  ch.declare_queue(queue);
  Channel consumer = conn.open_channel();
  const std::string tag = consumer.consume(queue);
  ch.delete_queue(queue);
  CHECK_THROWS_WITH_AS(
      consumer.next_delivery(5s),
      ("wait for deliveries on channel " + std::to_string(consumer.number()) + ": consumer '" +
       tag + "' cancelled by the broker (queue deleted?); declare and consume again")
          .c_str(),
      ChannelError);
  CHECK(consumer.is_open());
}

TEST_CASE("amqp: login errors and a connection closed by the broker are ConnectionErrors") {
  Url wrong_password = test_url();
  wrong_password.password = "wrong";
  try {
    Connection c(wrong_password);
    FAIL("logged in with a wrong password");
  } catch (const ConnectionError& e) {
    MESSAGE(std::string(e.what()));
    CHECK(std::string(e.what()).find("403 ACCESS_REFUSED") != std::string::npos);
    CHECK(std::string(e.what()).find("wrong") == std::string::npos);  // no password in logs
    CHECK(e.code() == 403);
  }
  Url wrong_vhost = test_url();
  wrong_vhost.vhost = "no-such-vhost";
  try {
    Connection c(wrong_vhost);
    FAIL("logged in to a missing vhost");
  } catch (const ConnectionError& e) {
    MESSAGE(std::string(e.what()));
    CHECK(std::string(e.what()).rfind("log in to " + wrong_vhost.masked(), 0) == 0);
  }

  Connection conn(test_url(), {"pgcqrs it closed"});
  Channel ch = conn.open_channel();
  const std::string queue = it::unique_name("it_closed");
  ch.declare_queue(queue,
                   {.durable = false, .exclusive = true, .auto_delete = true, .arguments = {}});
  ch.consume(queue);
  std::string out;
  REQUIRE(rabbitmqctl("close_all_connections 'closed by the integration test'", &out) == 0);
  try {
    ch.next_delivery(10s);
    FAIL("no ConnectionError");
  } catch (const ConnectionError& e) {
    CHECK(std::string(e.what()) ==
          "wait for deliveries on channel " + std::to_string(ch.number()) +
              ": connection closed 320 CONNECTION_FORCED - closed by the integration test");
    CHECK(e.code() == 320);
  }
  CHECK_FALSE(conn.is_open());
  CHECK_FALSE(ch.is_open());
  CHECK_THROWS_WITH_AS(
      ch.publish("", queue, "x"),
      ("publish to exchange '' with routing key '" + queue +
       "': connection is closed (wait for deliveries on channel " + std::to_string(ch.number()) +
       ": connection closed 320 CONNECTION_FORCED - closed by the "
       "integration test)")
          .c_str(),
      ConnectionError);
}

TEST_CASE("amqp: heartbeats are serviced by process_events") {
  Url url = test_url();
  url.heartbeat = 1s;
  Connection conn(url);
  CHECK(conn.heartbeat() == 1s);
  Channel ch = conn.open_channel();
  const auto until = Clock::now() + 4s;  // > 2 missed heartbeats would close the connection
  while (Clock::now() < until)
    conn.process_events(300ms);
  CHECK(conn.is_open());
  ch.enable_confirms();
  const std::string queue = it::unique_name("it_hb");
  ch.declare_queue(queue,
                   {.durable = false, .exclusive = true, .auto_delete = true, .arguments = {}});
  ch.publish("", queue, "alive");
  CHECK(ch.wait_all_confirms(10s).acked.size() == 1);
}

TEST_CASE("amqp: connection.blocked and unblocked from a resource alarm are noticed") {
  Connection conn(test_url(), {"pgcqrs it blocked"});
  Channel ch = conn.open_channel();
  const std::string queue = it::unique_name("it_blocked");
  ch.declare_queue(queue,
                   {.durable = false, .exclusive = true, .auto_delete = true, .arguments = {}});
  ch.enable_confirms();
  std::string out;
  if (rabbitmqctl("set_vm_memory_high_watermark 0", &out) != 0) {
    MESSAGE("cannot raise a memory alarm, skipped: " << out);
    return;
  }
  // the broker blocks a connection once it publishes during the alarm
  ch.publish("", queue, "during the alarm");
  const auto until = Clock::now() + 10s;
  while (!conn.blocked() && Clock::now() < until)
    conn.process_events(200ms);
  CHECK(conn.blocked());
  MESSAGE("blocked reason: " << conn.blocked_reason());
  REQUIRE(rabbitmqctl("set_vm_memory_high_watermark 0.4", &out) == 0);
  const Confirms c = ch.wait_all_confirms(20s);
  CHECK(c.acked.size() == 1);
  const auto until2 = Clock::now() + 10s;
  while (conn.blocked() && Clock::now() < until2)
    conn.process_events(200ms);
  CHECK_FALSE(conn.blocked());
}

TEST_CASE("amqps: TLS verification and server_name_indication against openssl s_server") {
  // RabbitMQ here has no TLS listener: `openssl s_server` completes the TLS handshake (and
  // then hangs up on the AMQP header), which is what separates TLS failures from success.
  std::string dir;
  if (it::run_shell("command -v openssl >/dev/null && mktemp -d", &dir) != 0) {
    MESSAGE("openssl not available, skipped");
    return;
  }
  dir.erase(dir.find_last_not_of('\n') + 1);
  const std::string make_certs =
      "cd '" + dir +
      "' && "
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
      "-subj '/CN=pgcqrs test CA' && "
      "openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj '/CN=pgcqrs.test' "
      "&& printf 'subjectAltName=DNS:pgcqrs.test\\n' > ext.cnf && "
      "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem "
      "-days 2 -extfile ext.cnf";
  std::string out;
  REQUIRE_MESSAGE(it::run_shell(make_certs + " 2>&1", &out) == 0, out);
  const int port = free_port();
  std::string pid;
  REQUIRE(it::run_shell("cd '" + dir +
                            "' && (timeout 120 openssl s_server -quiet -accept 127.0.0.1:" +
                            std::to_string(port) +
                            " -cert srv.pem -key srv.key >s_server.log 2>&1 </dev/null & echo $!)",
                        &pid) == 0);
  pid.erase(pid.find_last_not_of('\n') + 1);
  const std::string base = "amqps://127.0.0.1:" + std::to_string(port) +
                           "/?connection_timeout=2000&cacertfile=" + dir + "/ca.pem";
  const auto attempt = [](const std::string& url) -> std::string {
    try {
      Connection c(parse_url(url));
      return "connected";
    } catch (const std::exception& e) {
      return e.what();
    }
  };
  // wait until s_server listens
  for (int i = 0; i < 50 && attempt(base).find("socket error") != std::string::npos; ++i) {
    std::this_thread::sleep_for(100ms);
  }
  const std::string masked = "amqps://guest:****@127.0.0.1:" + std::to_string(port) + "/";
  const std::string handshake_done = "log in to " + masked + " as 'guest': connection closed";
  // the certificate is for pgcqrs.test, not 127.0.0.1
  CHECK(attempt(base) == "connect to " + masked + ": SSL hostname verification failed");
  CHECK(attempt(base + "&server_name_indication=pgcqrs.test").rfind(handshake_done, 0) == 0);
  CHECK(attempt(base + "&server_name_indication=other.test") ==
        "connect to " + masked + ": SSL peer cert verification failed");
  CHECK(attempt(base + "&server_name_indication=disable").rfind(handshake_done, 0) == 0);
  CHECK(attempt(base + "&verify=verify_none").rfind(handshake_done, 0) == 0);
  const std::string no_ca = "amqps://127.0.0.1:" + std::to_string(port) +
                            "/?connection_timeout=2000&server_name_indication=pgcqrs.test";
  CHECK(attempt(no_ca) == "connect to " + masked + ": SSL peer cert verification failed");
  it::run_shell("kill " + pid + " 2>/dev/null; rm -rf '" + dir + "'");
}

TEST_CASE("amqp: broker restart while publishing: every confirmed message survives") {
  const Url url = test_url();
  const std::string queue = it::unique_name("it_restart");
  {
    Connection setup(url);
    setup.open_channel().declare_queue(queue);
  }
  constexpr int kRestartAt = 1000;  // message id at which the broker is stopped
  constexpr int kMinMessages = 3000;
  constexpr int kBatch = 20;
  BackoffPolicy fast;
  fast.initial = 100ms;
  fast.max = 1000ms;

  std::atomic<bool> restart_done{false};
  std::thread restarter;
  std::map<std::uint64_t, int> inflight;  // delivery tag -> message id
  std::vector<int> to_send;               // ids to publish again
  std::set<int> confirmed;
  int next_id = 0;
  int connection_errors = 0;
  int reconnects = 0;
  std::optional<int> sending;  // the id being published
  std::optional<Connection> conn;
  Channel ch;
  const auto settle = [&](const Confirms& c) {
    for (const auto tag : c.acked) {
      confirmed.insert(inflight.at(tag));
      inflight.erase(tag);
    }
    for (const auto tag : c.nacked) {
      to_send.push_back(inflight.at(tag));
      inflight.erase(tag);
    }
  };
  const auto deadline = Clock::now() + 240s;
  for (;;) {
    REQUIRE(Clock::now() < deadline);
    const bool producing = !(restart_done && connection_errors > 0 && next_id >= kMinMessages);
    if (!producing && to_send.empty() && inflight.empty()) break;
    try {
      if (!conn || !conn->is_open()) {
        conn.emplace(connect_with_retry(url, fast, {"pgcqrs it restart"}));
        ch = conn->open_channel();
        ch.declare_queue(queue);
        ch.enable_confirms();
        ++reconnects;
      }
      for (int k = 0; k < kBatch; ++k) {
        if (!to_send.empty()) {
          sending = to_send.back();
          to_send.pop_back();
        } else if (producing) {
          sending = next_id++;
        } else {
          break;
        }
        inflight[ch.publish("", queue, numbered_body(*sending))] = *sending;
        sending.reset();
      }
      if (next_id >= kRestartAt && !restarter.joinable()) {
        restarter = std::thread([&restart_done] {
          it::stop_rabbitmq();
          std::this_thread::sleep_for(1s);
          it::start_rabbitmq();
          restart_done = true;
        });
      }
      settle(ch.poll_confirms(inflight.size() >= 500 || !producing ? 1000ms : 0ms));
      std::this_thread::sleep_for(5ms);  // ~4k msgs/s at most: the stop lands mid-stream
    } catch (const ConnectionError& e) {
      ++connection_errors;
      MESSAGE("publisher: " << std::string(e.what()));
      try {
        settle(ch.poll_confirms(0ms));  // confirms read before the error still count
      } catch (const Error&) {
      }
      for (const auto& [tag, id] : inflight)
        to_send.push_back(id);
      inflight.clear();
      if (sending) to_send.push_back(*sending);
      sending.reset();
      ch = Channel();
      conn.reset();
    }
  }
  if (restarter.joinable()) restarter.join();
  CHECK(connection_errors > 0);
  CHECK(reconnects >= 2);

  Connection reader(url);
  Channel consumer = reader.open_channel();
  const std::uint32_t in_queue = consumer.declare_queue_passive(queue);
  consumer.set_prefetch(1000);
  consumer.consume(queue);
  std::multiset<int> got;
  while (got.size() < in_queue) {
    const auto d = consumer.next_delivery(10s);
    REQUIRE(d.has_value());
    got.insert(body_number(d->body));
    if (got.size() % 100 == 0 || got.size() == in_queue) consumer.ack(d->delivery_tag, true);
  }
  int missing = 0;
  for (const int id : confirmed) {
    if (got.count(id) == 0) ++missing;
  }
  const std::set<int> distinct(got.begin(), got.end());
  MESSAGE("restart: " << next_id << " ids published, " << confirmed.size() << " confirmed, "
                      << in_queue << " messages in the queue (" << got.size() - distinct.size()
                      << " duplicates), " << connection_errors << " connection errors, "
                      << reconnects << " connections");
  CHECK(missing == 0);
  CHECK(confirmed.size() == static_cast<std::size_t>(next_id));  // all republished until confirmed
  consumer.delete_queue(queue);
}
