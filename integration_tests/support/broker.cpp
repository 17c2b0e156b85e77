// TestQueue: declare, bind, drain.
#include "broker.hpp"

#include "support.hpp"

namespace pgcqrs::it {

TestQueue::TestQueue(std::string exchange, std::string queue, const std::vector<std::string>& keys)
    : exchange_(std::move(exchange)), queue_(std::move(queue)), keys_(keys) {
  open();
}

TestQueue::~TestQueue() {
  try {
    if (conn_ && conn_->is_open()) {
      amqp::Channel c = conn_->open_channel();
      c.delete_queue(queue_);
    }
  } catch (const std::exception&) {
    // the broker may be gone at the end of a fault test: nothing to clean then
  }
}

void TestQueue::open() {
  conn_ = std::make_unique<amqp::Connection>(amqp::parse_url(amqp_url()));
  ch_ = conn_->open_channel();
  ch_.declare_exchange(exchange_, "topic", true);
  ch_.declare_queue(queue_);
  for (const auto& k : keys_)
    ch_.bind_queue(queue_, exchange_, k);
  consuming_ = false;
}

void TestQueue::reconnect() {
  open();
}

std::vector<amqp::Delivery> TestQueue::take(std::size_t n, std::chrono::milliseconds idle_timeout,
                                            std::chrono::milliseconds max_wait) {
  const auto deadline = std::chrono::steady_clock::now() + max_wait;
  if (!consuming_) {
    ch_.set_prefetch(1000);
    ch_.consume(queue_);
    consuming_ = true;
  }
  std::vector<amqp::Delivery> out;
  while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
    auto d = ch_.next_delivery(idle_timeout);
    if (!d) break;
    ch_.ack(d->delivery_tag);
    out.push_back(std::move(*d));
  }
  return out;
}

std::uint32_t TestQueue::ready() {
  amqp::Connection c(amqp::parse_url(amqp_url()));
  amqp::Channel ch = c.open_channel();
  return ch.declare_queue_passive(queue_);
}

}  // namespace pgcqrs::it
