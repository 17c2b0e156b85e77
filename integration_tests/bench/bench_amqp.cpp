// Broker-side helper of the master benchmarks: topology setup, body sampling, raw publish rate.
//
// usage: bench_amqp setup   --url U --exchange X --queue Q --routing-key K
//        bench_amqp sample  --url U --queue Q [--show]     takes one message, prints its size
//                                                          (and its body with --show)
//        bench_amqp publish --url U --exchange X --queue Q --routing-key K --count N
//                           [--body-bytes B | --body-from-queue] [--window W] [--mode MODE]
//                           [--gap-ms G]
//
// `setup` declares the durable topic exchange and a durable classic queue bound with K, and
// purges the queue. `publish` purges the queue, then publishes N persistent messages with the
// agent's properties (text/plain, delivery_mode 2, mandatory, a message_id) and waits for the
// broker's confirms:
//   --mode window  a sliding window: at most W publishes unconfirmed at any time (the broker's
//                  confirmed-publish ceiling for one channel)
//   --mode rounds  W publishes, wait for all their confirms, repeat (the agent's protocol
//                  without the database); --gap-ms G sleeps G ms after each round, standing in
//                  for the agent's per-round database and encoding time
// --body-from-queue takes one message already in Q (the agent's) as the body of every publish,
// so both rates are measured with the same bytes. Prints one line of key=value pairs.
//
// Consumer benchmarks (integration_tests/bench_consume.sh):
//        bench_amqp publish-lines --url U --exchange X --routing-key K --file F [--window W]
//            publishes every line of F as one persistent message (confirmed, window W) to X
//            with key K; the queues must exist (the consumer declares them)
//        bench_amqp drain --url U --queue Q --count N [--prefetch P] [--ack-every A]
//            consumes N messages with prefetch P (1000) and a multiple-ack every A (500): the
//            broker's delivery ceiling for one consumer, without any database work
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include "common/amqp/connection.hpp"
#include "common/log.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace pgcqrs;

struct Args {
  std::string command;
  std::map<std::string, std::string> flags;

  [[nodiscard]] bool has(const std::string& k) const { return flags.count(k) != 0; }
  [[nodiscard]] std::string str(const std::string& k) const {
    const auto it = flags.find(k);
    if (it == flags.end()) throw std::invalid_argument("missing --" + k);
    return it->second;
  }
  [[nodiscard]] std::uint64_t num(const std::string& k, std::uint64_t fallback) const {
    return has(k) ? std::stoull(str(k)) : fallback;
  }
};

Args parse(int argc, char** argv) {
  if (argc < 2)
    throw std::invalid_argument(
        "usage: bench_amqp setup|sample|publish|publish-lines|drain --flag value");
  Args a;
  a.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string_view k = argv[i];
    if (k.substr(0, 2) != "--") {
      throw std::invalid_argument(std::string("unexpected argument ").append(k));
    }
    std::string name(k.substr(2));
    if (name == "body-from-queue" || name == "show") {
      a.flags.emplace(std::move(name), "1");
    } else if (i + 1 < argc) {
      a.flags.emplace(std::move(name), argv[++i]);
    } else {
      throw std::invalid_argument(std::string(k).append(" needs a value"));
    }
  }
  return a;
}

void setup(amqp::Channel& ch, const Args& a) {
  ch.declare_exchange(a.str("exchange"), "topic", true);
  ch.declare_queue(a.str("queue"));
  ch.bind_queue(a.str("queue"), a.str("exchange"), a.str("routing-key"));
  ch.purge_queue(a.str("queue"));
}

std::string sample_body(amqp::Channel& ch, const std::string& queue) {
  auto d = ch.get(queue, true);
  if (!d) throw std::runtime_error("sample queue '" + queue + "': it is empty");
  return d->body;
}

int publish(amqp::Connection& conn, amqp::Channel& ch, const Args& a) {
  const std::string queue = a.str("queue");
  const std::string exchange = a.str("exchange");
  const std::string key = a.str("routing-key");
  const std::uint64_t count = a.num("count", 200000);
  const std::size_t window = static_cast<std::size_t>(a.num("window", 1000));
  const std::string mode = a.has("mode") ? a.str("mode") : "window";
  if (mode != "window" && mode != "rounds") throw std::invalid_argument("--mode window|rounds");
  if (window == 0) throw std::invalid_argument("--window must be > 0");
  const auto gap = std::chrono::milliseconds(static_cast<std::int64_t>(a.num("gap-ms", 0)));

  std::string body;
  if (a.has("body-from-queue")) {
    body = sample_body(ch, queue);
  } else {
    body.assign(static_cast<std::size_t>(a.num("body-bytes", 400)), 'x');
  }
  setup(ch, a);
  ch.enable_confirms();

  amqp::PublishOptions props;
  props.mandatory = true;
  std::uint64_t acked = 0;
  std::uint64_t nacked = 0;
  const auto settle = [&](const amqp::Confirms& c) {
    acked += c.acked.size();
    nacked += c.nacked.size();
  };
  constexpr auto kTimeout = std::chrono::seconds(60);
  const auto t0 = Clock::now();
  for (std::uint64_t i = 1; i <= count; ++i) {
    props.message_id = std::to_string(i);
    ch.publish(exchange, key, body, props);
    if (mode == "window") {
      while (ch.unconfirmed() >= window) {
        settle(ch.poll_confirms(kTimeout));
      }
    } else if (i % window == 0) {
      settle(ch.wait_all_confirms(kTimeout));
      if (gap.count() > 0) std::this_thread::sleep_for(gap);
    }
  }
  settle(ch.wait_all_confirms(kTimeout));
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const std::uint64_t returned = ch.returned_count();
  conn.process_events(std::chrono::milliseconds(0));
  const std::uint32_t ready = ch.declare_queue_passive(queue);
  std::printf(
      "mode=%s published=%llu acked=%llu nacked=%llu returned=%llu body_bytes=%zu window=%zu "
      "gap_ms=%lld seconds=%.3f rate=%.0f queue_ready=%u\n",
      mode.c_str(), static_cast<unsigned long long>(count), static_cast<unsigned long long>(acked),
      static_cast<unsigned long long>(nacked), static_cast<unsigned long long>(returned),
      body.size(), window, static_cast<long long>(gap.count()), seconds,
      static_cast<double>(count) / seconds, ready);
  return acked == count ? 0 : 1;
}

int publish_lines(amqp::Channel& ch, const Args& a) {
  const std::string exchange = a.str("exchange");
  const std::string key = a.str("routing-key");
  const std::size_t window = static_cast<std::size_t>(a.num("window", 1000));
  if (window == 0) throw std::invalid_argument("--window must be > 0");
  std::ifstream in(a.str("file"));
  if (!in) throw std::runtime_error("cannot read " + a.str("file"));
  ch.enable_confirms();
  amqp::PublishOptions props;
  props.mandatory = true;
  std::uint64_t count = 0;
  std::uint64_t acked = 0;
  constexpr auto kTimeout = std::chrono::seconds(60);
  const auto t0 = Clock::now();
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    props.message_id = std::to_string(++count);
    ch.publish(exchange, key, line, props);
    while (ch.unconfirmed() >= window)
      acked += ch.poll_confirms(kTimeout).acked.size();
  }
  acked += ch.wait_all_confirms(kTimeout).acked.size();
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("published=%llu acked=%llu returned=%llu seconds=%.3f rate=%.0f\n",
              static_cast<unsigned long long>(count), static_cast<unsigned long long>(acked),
              static_cast<unsigned long long>(ch.returned_count()), seconds,
              static_cast<double>(count) / seconds);
  return acked == count && ch.returned_count() == 0 ? 0 : 1;
}

int drain(amqp::Channel& ch, const Args& a) {
  const std::uint64_t count = a.num("count", 200000);
  const std::uint64_t ack_every = std::max<std::uint64_t>(1, a.num("ack-every", 500));
  ch.set_prefetch(static_cast<std::uint16_t>(a.num("prefetch", 1000)));
  ch.consume(a.str("queue"));
  std::uint64_t got = 0;
  std::uint64_t bytes = 0;
  const auto t0 = Clock::now();
  while (got < count) {
    auto d = ch.next_delivery(std::chrono::seconds(30));
    if (!d) throw std::runtime_error("drain: no delivery for 30 s after " + std::to_string(got));
    ++got;
    bytes += d->body.size();
    if (got % ack_every == 0 || got == count) ch.ack(d->delivery_tag, true);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("consumed=%llu avg_body_bytes=%llu seconds=%.3f rate=%.0f\n",
              static_cast<unsigned long long>(got),
              static_cast<unsigned long long>(got == 0 ? 0 : bytes / got), seconds,
              static_cast<double>(got) / seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  pgcqrs::init_logging(spdlog::level::warn, pgcqrs::LogFormat::kText);  // stdout is the result
  try {
    const Args a = parse(argc, argv);
    amqp::Connection conn(amqp::parse_url(a.str("url")),
                          amqp::ConnectOptions{"pgcqrs bench_amqp", std::chrono::seconds(60)});
    amqp::Channel ch = conn.open_channel();
    if (a.command == "setup") {
      setup(ch, a);
      return 0;
    }
    if (a.command == "sample") {
      const std::string body = sample_body(ch, a.str("queue"));
      std::printf("%zu\n", body.size());
      if (a.has("show")) std::printf("%s\n", body.c_str());
      return 0;
    }
    if (a.command == "publish") return publish(conn, ch, a);
    if (a.command == "publish-lines") return publish_lines(ch, a);
    if (a.command == "drain") return drain(ch, a);
    throw std::invalid_argument("unknown command '" + a.command + "'");
  } catch (const std::exception& e) {
    std::cerr << "bench_amqp: " << e.what() << "\n";
    return 1;
  }
}
