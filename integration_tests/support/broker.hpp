// A test queue bound to an exchange, drained with the project's AMQP client.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/amqp/connection.hpp"

namespace pgcqrs::it {

class TestQueue {
 public:
  // Declares `exchange` (topic, durable) and a durable `queue` bound with each key.
  TestQueue(std::string exchange, std::string queue, const std::vector<std::string>& keys);
  ~TestQueue();
  TestQueue(const TestQueue&) = delete;
  TestQueue& operator=(const TestQueue&) = delete;
  TestQueue(TestQueue&&) = delete;
  TestQueue& operator=(TestQueue&&) = delete;

  // Takes (acks) deliveries until `n` arrived, `idle_timeout` passed without a new one, or
  // `max_wait` passed in all.
  std::vector<amqp::Delivery> take(std::size_t n, std::chrono::milliseconds idle_timeout,
                                   std::chrono::milliseconds max_wait = std::chrono::minutes(5));
  // Messages currently ready in the queue (passive declare on a fresh connection).
  std::uint32_t ready();
  // Reconnects (after a broker restart).
  void reconnect();

  [[nodiscard]] const std::string& exchange() const noexcept { return exchange_; }
  [[nodiscard]] const std::string& queue() const noexcept { return queue_; }

 private:
  void open();
  std::string exchange_;
  std::string queue_;
  std::vector<std::string> keys_;
  std::unique_ptr<amqp::Connection> conn_;
  amqp::Channel ch_;
  bool consuming_ = false;
};

}  // namespace pgcqrs::it
