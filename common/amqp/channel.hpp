// One AMQP channel: topology, publishing with confirms and returns, consuming with manual ack.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/amqp/confirms.hpp"

namespace pgcqrs::amqp {

namespace detail {
class Core;
}

// Queue and binding arguments (x-queue-type, x-message-ttl, ...); empty by default so that a
// django-cqrs consumer can share or redeclare the queue.
using ArgumentValue = std::variant<std::string, std::int64_t, bool>;
using Arguments = std::vector<std::pair<std::string, ArgumentValue>>;

struct QueueOptions {
  bool durable = true;
  bool exclusive = false;
  bool auto_delete = false;
  Arguments arguments;
};

// Properties of one published message. The defaults are django-cqrs's: text/plain,
// delivery_mode 2 (persistent), no expiration.
struct PublishOptions {
  bool mandatory = false;  // unroutable messages come back as Returned (still acked!)
  std::string expiration;  // per-message TTL in milliseconds, decimal ("60000"); "" = none
  std::string message_id;  // "" = none; echoed in Returned for correlation
  std::string content_type = "text/plain";  // "" = no content_type property
  bool persistent = true;                   // delivery_mode 2
};

// A message received by consume (next_delivery) or basic.get (get).
struct Delivery {
  std::uint64_t delivery_tag = 0;  // ack/nack/reject it on the channel it came from
  bool redelivered = false;
  std::string exchange;
  std::string routing_key;
  std::string body;
  std::string content_type;         // "" when the property is absent
  std::string expiration;           // "" when the property is absent
  std::string message_id;           // "" when the property is absent
  std::string consumer_tag;         // consume only
  std::uint32_t message_count = 0;  // basic.get only: messages left in the queue
};

// A mandatory message the broker could not route (basic.return). The broker still acks it.
struct Returned {
  std::uint16_t reply_code = 0;  // 312 NO_ROUTE
  std::string reply_text;
  std::string exchange;
  std::string routing_key;
  std::string body;
  std::string message_id;
};

// A channel of a Connection (Connection::open_channel). Move-only; the destructor closes the
// channel (noexcept). A Channel borrows its connection: once the Connection is closed or
// destroyed every call throws ConnectionError. Not thread-safe: one thread per connection.
//
// Errors: ChannelError when the broker closed this channel (reopen() it, the connection is
// fine); ConnectionError when the connection is gone (reconnect).
class Channel {
 public:
  Channel() = default;  // not usable; assign from Connection::open_channel()
  Channel(Channel&& other) noexcept;
  Channel& operator=(Channel&& other) noexcept;
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;
  ~Channel();

  [[nodiscard]] std::uint16_t number() const noexcept { return number_; }
  // False once the broker closed the channel, after close(), or when the connection is gone.
  [[nodiscard]] bool is_open() const noexcept;
  // Opens the channel again (closing it first if still open): confirm mode and prefetch are
  // restored; delivery tags start at 1; consumers, pending deliveries, unconfirmed tags and
  // returns of the old channel are dropped (read unconfirmed_tags() before).
  void reopen();
  // Closes the channel; idempotent, never throws (errors are logged).
  void close() noexcept;

  // --- topology (RPCs; a broker refusal closes the channel: ChannelError 404/406/403)
  void declare_exchange(std::string_view name, std::string_view type = "topic",
                        bool durable = true);
  void declare_exchange_passive(std::string_view name);  // ChannelError 404 if missing
  void delete_exchange(std::string_view name);
  // Returns the number of ready messages in the queue.
  std::uint32_t declare_queue(std::string_view name, const QueueOptions& options = {});
  std::uint32_t declare_queue_passive(std::string_view name);  // ChannelError 404 if missing
  void bind_queue(std::string_view queue, std::string_view exchange, std::string_view routing_key,
                  const Arguments& arguments = {});
  void unbind_queue(std::string_view queue, std::string_view exchange,
                    std::string_view routing_key);
  std::uint32_t purge_queue(std::string_view name);   // returns the number of purged messages
  std::uint32_t delete_queue(std::string_view name);  // returns the number of deleted messages

  // --- publishing
  // confirm.select: from now on every publish gets a delivery tag, settled by poll_confirms.
  void enable_confirms();
  [[nodiscard]] bool confirms_enabled() const noexcept;
  // Publishes one message; returns its delivery tag (1, 2, ...) in confirm mode, 0 otherwise.
  // A missing exchange is reported asynchronously: ChannelError 404 from a later call.
  std::uint64_t publish(std::string_view exchange, std::string_view routing_key,
                        std::string_view body, const PublishOptions& options = {});
  // Waits up to `timeout` until at least one publish is settled, then also takes every
  // confirm already received; returns the settled tags (empty on timeout).
  Confirms poll_confirms(std::chrono::milliseconds timeout);
  // Waits up to `timeout` until no publish is outstanding; returns what was settled meanwhile.
  // On timeout unconfirmed() > 0.
  Confirms wait_all_confirms(std::chrono::milliseconds timeout);
  // Publishes not yet acked or nacked (the window). After a ChannelError or ConnectionError
  // these are the messages to publish again.
  [[nodiscard]] std::size_t unconfirmed() const noexcept;
  [[nodiscard]] std::vector<std::uint64_t> unconfirmed_tags() const;
  // Mandatory messages the broker returned, since the last call (each is logged once).
  std::vector<Returned> take_returns();
  [[nodiscard]] std::uint64_t returned_count() const noexcept;  // total on this channel

  // --- consuming
  void set_prefetch(std::uint16_t count);  // basic.qos; 0 = unlimited
  // basic.consume with manual ack; returns the consumer tag (the broker's when `tag` is "").
  std::string consume(std::string_view queue, std::string_view tag = "", bool exclusive = false);
  void cancel(std::string_view consumer_tag);
  // The next delivery of this channel's consumers, waiting up to `timeout` (heartbeats are
  // serviced while waiting); nullopt on timeout or when pgcqrs::stop_requested(). Throws
  // ChannelError when the broker closed the channel or cancelled the consumer (queue deleted).
  std::optional<Delivery> next_delivery(std::chrono::milliseconds timeout);
  void ack(std::uint64_t delivery_tag, bool multiple = false);
  void nack(std::uint64_t delivery_tag, bool multiple = false, bool requeue = true);
  void reject(std::uint64_t delivery_tag, bool requeue = false);
  // basic.get: one message or nullopt when the queue is empty. With no_ack=false ack or
  // reject it, or nack(requeue) it to leave the queue as it was (non-destructive dumps).
  std::optional<Delivery> get(std::string_view queue, bool no_ack = false);

 private:
  friend class Connection;
  Channel(std::weak_ptr<detail::Core> core, std::uint16_t number)
      : core_(std::move(core)), number_(number) {}

  std::weak_ptr<detail::Core> core_;
  std::uint16_t number_ = 0;
};

}  // namespace pgcqrs::amqp
