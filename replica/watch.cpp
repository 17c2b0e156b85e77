// watch(): a throwaway consumer of the cqrs exchange, for demos and debugging.
#include "replica/watch.hpp"

#include <unistd.h>

#include "common/amqp/connection.hpp"
#include "common/signals.hpp"

namespace pgcqrs::replica {

std::size_t watch(const BrokerConfig& broker, const WatchOptions& options,
                  const std::function<void()>& ready,
                  const std::function<void(const std::string&, const std::string&)>& on_event) {
  amqp::Connection conn(amqp::parse_url(broker.url), amqp::ConnectOptions{"pgcqrs watch"});
  amqp::Channel ch = conn.open_channel();
  ch.declare_exchange(broker.exchange, "topic", true);
  const std::string queue = "pgcqrs.watch." + std::to_string(::getpid());
  ch.declare_queue(queue, amqp::QueueOptions{false, true, true, {}});
  for (const auto& id : options.cqrs_ids)
    ch.bind_queue(queue, broker.exchange, id);
  ch.set_prefetch(100);
  ch.consume(queue, "", true);
  if (ready) ready();
  std::size_t seen = 0;
  const auto wait =
      options.idle_timeout.count() > 0 ? options.idle_timeout : std::chrono::milliseconds(1000);
  while (!stop_requested() && (options.count == 0 || seen < options.count)) {
    auto d = ch.next_delivery(wait);
    if (!d) {
      if (options.idle_timeout.count() > 0) break;
      continue;
    }
    on_event(d->routing_key, d->body);
    ch.ack(d->delivery_tag);
    ++seen;
  }
  return seen;
}

}  // namespace pgcqrs::replica
