// Channel operations: RPCs with reply checking, publish + confirm window, consume + ack.
#include "common/amqp/channel.hpp"

#include <utility>

#include <amqp.h>
#include <amqp_framing.h>
#include <spdlog/spdlog.h>

#include "common/amqp/core.hpp"
#include "common/amqp/error.hpp"

namespace pgcqrs::amqp {
namespace {

using detail::as_bytes;
using detail::ChannelState;
using detail::Clock;
using detail::Core;
using detail::to_string;

std::shared_ptr<Core> lock_core(const std::weak_ptr<Core>& weak, std::string_view context) {
  auto core = weak.lock();
  if (!core) throw ConnectionError(std::string(context) + ": connection is closed");
  return core;
}

std::string named(std::string_view what, std::string_view name) {
  return std::string(what) + " '" + std::string(name) + "'";
}

std::string on_channel(std::string_view what, std::uint16_t channel) {
  return std::string(what) + " on channel " + std::to_string(channel);
}

// An amqp_table_t view of `args`; valid while both live.
class Table {
 public:
  explicit Table(const Arguments& args) {
    entries_.reserve(args.size());
    for (const auto& [key, value] : args) {
      amqp_table_entry_t e{};
      e.key = as_bytes(key);
      if (const auto* s = std::get_if<std::string>(&value)) {
        e.value.kind = AMQP_FIELD_KIND_UTF8;
        e.value.value.bytes = as_bytes(*s);
      } else if (const auto* i = std::get_if<std::int64_t>(&value)) {
        e.value.kind = AMQP_FIELD_KIND_I64;
        e.value.value.i64 = *i;
      } else {
        e.value.kind = AMQP_FIELD_KIND_BOOLEAN;
        e.value.value.boolean = std::get<bool>(value) ? 1 : 0;
      }
      entries_.push_back(e);
    }
    table_.num_entries = static_cast<int>(entries_.size());
    table_.entries = entries_.empty() ? nullptr : entries_.data();
  }
  [[nodiscard]] amqp_table_t get() const noexcept { return table_; }

 private:
  std::vector<amqp_table_entry_t> entries_;
  amqp_table_t table_{};
};

// Runs one rabbitmq-c RPC on an open channel: `call` returns the decoded *-ok (nullptr on
// failure), `take` copies what is needed out of it before rabbitmq-c recycles its memory.
template <class Call, class Take>
auto rpc(const std::weak_ptr<Core>& weak, std::uint16_t channel, const std::string& context,
         Call call, Take take) {
  const auto core = lock_core(weak, context);
  core->usable(channel, context);
  const auto* ok = call(core->state());
  if (ok == nullptr) core->fail_last_rpc(channel, context);
  auto result = take(*ok);
  core->release(channel);
  return result;
}

constexpr auto kNothing = [](const auto& /*ok*/) { return 0; };

}  // namespace

Channel::Channel(Channel&& other) noexcept
    : core_(std::move(other.core_)), number_(std::exchange(other.number_, 0)) {}

Channel& Channel::operator=(Channel&& other) noexcept {
  if (this != &other) {
    close();
    core_ = std::move(other.core_);
    number_ = std::exchange(other.number_, 0);
  }
  return *this;
}

Channel::~Channel() {
  close();
}

bool Channel::is_open() const noexcept {
  const auto core = core_.lock();
  if (!core || core->dead()) return false;
  const ChannelState* cs = core->find(number_);
  return cs != nullptr && cs->open;
}

void Channel::reopen() {
  lock_core(core_, on_channel("reopen channel", number_))->reopen_channel(number_);
}

void Channel::close() noexcept {
  if (const auto core = core_.lock()) core->close_channel(number_);
  core_.reset();
}

void Channel::declare_exchange(std::string_view name, std::string_view type, bool durable) {
  rpc(
      core_, number_, named("declare exchange", name),
      [&](amqp_connection_state_t s) {
        return amqp_exchange_declare(s, number_, as_bytes(name), as_bytes(type), 0, durable ? 1 : 0,
                                     0, 0, amqp_empty_table);
      },
      kNothing);
}

void Channel::declare_exchange_passive(std::string_view name) {
  rpc(
      core_, number_, named("check exchange", name),
      [&](amqp_connection_state_t s) {
        return amqp_exchange_declare(s, number_, as_bytes(name), as_bytes("topic"), 1, 0, 0, 0,
                                     amqp_empty_table);
      },
      kNothing);
}

void Channel::delete_exchange(std::string_view name) {
  rpc(
      core_, number_, named("delete exchange", name),
      [&](amqp_connection_state_t s) {
        return amqp_exchange_delete(s, number_, as_bytes(name), 0);
      },
      kNothing);
}

std::uint32_t Channel::declare_queue(std::string_view name, const QueueOptions& options) {
  const Table args(options.arguments);
  return rpc(
      core_, number_, named("declare queue", name),
      [&](amqp_connection_state_t s) {
        return amqp_queue_declare(s, number_, as_bytes(name), 0, options.durable ? 1 : 0,
                                  options.exclusive ? 1 : 0, options.auto_delete ? 1 : 0,
                                  args.get());
      },
      [](const amqp_queue_declare_ok_t& ok) { return ok.message_count; });
}

std::uint32_t Channel::declare_queue_passive(std::string_view name) {
  return rpc(
      core_, number_, named("check queue", name),
      [&](amqp_connection_state_t s) {
        return amqp_queue_declare(s, number_, as_bytes(name), 1, 0, 0, 0, amqp_empty_table);
      },
      [](const amqp_queue_declare_ok_t& ok) { return ok.message_count; });
}

void Channel::bind_queue(std::string_view queue, std::string_view exchange,
                         std::string_view routing_key, const Arguments& arguments) {
  const Table args(arguments);
  rpc(
      core_, number_,
      named("bind queue", queue) + " to " + named("exchange", exchange) + " with " +
          named("routing key", routing_key),
      [&](amqp_connection_state_t s) {
        return amqp_queue_bind(s, number_, as_bytes(queue), as_bytes(exchange),
                               as_bytes(routing_key), args.get());
      },
      kNothing);
}

void Channel::unbind_queue(std::string_view queue, std::string_view exchange,
                           std::string_view routing_key) {
  rpc(
      core_, number_,
      named("unbind queue", queue) + " from " + named("exchange", exchange) + " with " +
          named("routing key", routing_key),
      [&](amqp_connection_state_t s) {
        return amqp_queue_unbind(s, number_, as_bytes(queue), as_bytes(exchange),
                                 as_bytes(routing_key), amqp_empty_table);
      },
      kNothing);
}

std::uint32_t Channel::purge_queue(std::string_view name) {
  return rpc(
      core_, number_, named("purge queue", name),
      [&](amqp_connection_state_t s) { return amqp_queue_purge(s, number_, as_bytes(name)); },
      [](const amqp_queue_purge_ok_t& ok) { return ok.message_count; });
}

std::uint32_t Channel::delete_queue(std::string_view name) {
  return rpc(
      core_, number_, named("delete queue", name),
      [&](amqp_connection_state_t s) {
        return amqp_queue_delete(s, number_, as_bytes(name), 0, 0);
      },
      [](const amqp_queue_delete_ok_t& ok) { return ok.message_count; });
}

void Channel::enable_confirms() {
  const std::string context = on_channel("enable publisher confirms", number_);
  const auto core = lock_core(core_, context);
  if (core->usable(number_, context).confirms) return;
  rpc(
      core_, number_, context,
      [&](amqp_connection_state_t s) { return amqp_confirm_select(s, number_); }, kNothing);
  ChannelState& cs = core->usable(number_, context);
  cs.confirms = true;
  cs.tracker.reset();
}

bool Channel::confirms_enabled() const noexcept {
  const auto core = core_.lock();
  const ChannelState* cs = core ? core->find(number_) : nullptr;
  return cs != nullptr && cs->confirms;
}

std::uint64_t Channel::publish(std::string_view exchange, std::string_view routing_key,
                               std::string_view body, const PublishOptions& options) {
  const auto context = [&] {
    return named("publish to exchange", exchange) + " with " + named("routing key", routing_key);
  };
  const auto core = core_.lock();
  if (!core) throw ConnectionError(context() + ": connection is closed");
  ChannelState* cs = core->find(number_);
  if (core->dead() || cs == nullptr || !cs->open || amqp_frames_enqueued(core->state()) != 0) {
    cs = &core->usable(number_, context());
  }
  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
  props.delivery_mode = options.persistent ? 2 : 1;
  if (!options.content_type.empty()) {
    props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
    props.content_type = as_bytes(options.content_type);
  }
  if (!options.expiration.empty()) {
    props._flags |= AMQP_BASIC_EXPIRATION_FLAG;
    props.expiration = as_bytes(options.expiration);
  }
  if (!options.message_id.empty()) {
    props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
    props.message_id = as_bytes(options.message_id);
  }
  // the broker numbers every publish it receives on a confirm channel: count ours the same way
  const std::uint64_t tag = cs->confirms ? cs->tracker.on_publish() : 0;
  const int rc =
      amqp_basic_publish(core->state(), number_, as_bytes(exchange), as_bytes(routing_key),
                         options.mandatory ? 1 : 0, 0, &props, as_bytes(body));
  if (rc != AMQP_STATUS_OK) core->fail_status(rc, context());
  return tag;
}

Confirms Channel::poll_confirms(std::chrono::milliseconds timeout) {
  const std::string context = on_channel("wait for publisher confirms", number_);
  const auto core = lock_core(core_, context);
  ChannelState* cs = core->find(number_);
  if (cs == nullptr) throw ChannelError(context + ": channel is closed", 0, "");
  // confirms read before a channel or connection error are still good news
  if (!cs->settled.empty()) return std::exchange(cs->settled, {});
  core->usable(number_, context);
  const auto deadline = Clock::now() + timeout;
  core->wait_until([cs] { return !cs->settled.empty() || !cs->open; }, deadline, context, false);
  if (cs->open) core->drain(context);  // take every confirm already received, not just one
  if (cs->settled.empty() && !cs->open) core->throw_closed(*cs, context);
  return std::exchange(cs->settled, {});
}

Confirms Channel::wait_all_confirms(std::chrono::milliseconds timeout) {
  const std::string context = on_channel("wait for all publisher confirms", number_);
  const auto core = lock_core(core_, context);
  ChannelState* cs = core->find(number_);
  if (cs == nullptr) throw ChannelError(context + ": channel is closed", 0, "");
  if (cs->open && cs->tracker.outstanding() > 0) {
    core->usable(number_, context);
    const auto deadline = Clock::now() + timeout;
    core->wait_until([cs] { return cs->tracker.outstanding() == 0 || !cs->open; }, deadline,
                     context, false);
  }
  if (cs->settled.empty() && !cs->open) core->throw_closed(*cs, context);
  return std::exchange(cs->settled, {});
}

std::size_t Channel::unconfirmed() const noexcept {
  const auto core = core_.lock();
  const ChannelState* cs = core ? core->find(number_) : nullptr;
  return cs != nullptr ? cs->tracker.outstanding() : 0;
}

std::vector<std::uint64_t> Channel::unconfirmed_tags() const {
  const auto core = core_.lock();
  const ChannelState* cs = core ? core->find(number_) : nullptr;
  return cs != nullptr ? cs->tracker.outstanding_tags() : std::vector<std::uint64_t>{};
}

std::vector<Returned> Channel::take_returns() {
  const auto core = core_.lock();
  ChannelState* cs = core ? core->find(number_) : nullptr;
  return cs != nullptr ? std::exchange(cs->returns, {}) : std::vector<Returned>{};
}

std::uint64_t Channel::returned_count() const noexcept {
  const auto core = core_.lock();
  const ChannelState* cs = core ? core->find(number_) : nullptr;
  return cs != nullptr ? cs->returned_total : 0;
}

void Channel::set_prefetch(std::uint16_t count) {
  const std::string context = on_channel("set prefetch " + std::to_string(count), number_);
  rpc(
      core_, number_, context,
      [&](amqp_connection_state_t s) { return amqp_basic_qos(s, number_, 0, count, 0); }, kNothing);
  lock_core(core_, context)->usable(number_, context).prefetch = count;
}

std::string Channel::consume(std::string_view queue, std::string_view tag, bool exclusive) {
  return rpc(
      core_, number_, named("consume queue", queue),
      [&](amqp_connection_state_t s) {
        return amqp_basic_consume(s, number_, as_bytes(queue), as_bytes(tag), 0, 0,
                                  exclusive ? 1 : 0, amqp_empty_table);
      },
      [](const amqp_basic_consume_ok_t& ok) { return to_string(ok.consumer_tag); });
}

void Channel::cancel(std::string_view consumer_tag) {
  rpc(
      core_, number_, named("cancel consumer", consumer_tag),
      [&](amqp_connection_state_t s) {
        return amqp_basic_cancel(s, number_, as_bytes(consumer_tag));
      },
      kNothing);
}

std::optional<Delivery> Channel::next_delivery(std::chrono::milliseconds timeout) {
  const std::string context = on_channel("wait for deliveries", number_);
  const auto core = lock_core(core_, context);
  ChannelState* cs = &core->usable(number_, context);
  const auto pop = [cs] {
    Delivery d = std::move(cs->deliveries.front());
    cs->deliveries.pop_front();
    return d;
  };
  if (!cs->deliveries.empty()) return pop();
  const auto deadline = Clock::now() + timeout;
  core->wait_until(
      [cs] { return !cs->deliveries.empty() || !cs->open || !cs->cancelled_consumer.empty(); },
      deadline, context, true);
  if (!cs->deliveries.empty()) return pop();
  if (!cs->open) core->throw_closed(*cs, context);
  if (!cs->cancelled_consumer.empty()) {
    const std::string tag = std::exchange(cs->cancelled_consumer, {});
    throw ChannelError(context + ": consumer '" + tag +
                           "' cancelled by the broker (queue deleted?); declare and consume again",
                       0, "");
  }
  return std::nullopt;
}

void Channel::ack(std::uint64_t delivery_tag, bool multiple) {
  const auto context = [&] {
    return on_channel("ack delivery " + std::to_string(delivery_tag), number_);
  };
  const auto core = lock_core(core_, "ack");
  core->usable(number_, context());
  const int rc = amqp_basic_ack(core->state(), number_, delivery_tag, multiple ? 1 : 0);
  if (rc != AMQP_STATUS_OK) core->fail_status(rc, context());
}

void Channel::nack(std::uint64_t delivery_tag, bool multiple, bool requeue) {
  const auto context = [&] {
    return on_channel("nack delivery " + std::to_string(delivery_tag), number_);
  };
  const auto core = lock_core(core_, "nack");
  core->usable(number_, context());
  const int rc =
      amqp_basic_nack(core->state(), number_, delivery_tag, multiple ? 1 : 0, requeue ? 1 : 0);
  if (rc != AMQP_STATUS_OK) core->fail_status(rc, context());
}

void Channel::reject(std::uint64_t delivery_tag, bool requeue) {
  const auto context = [&] {
    return on_channel("reject delivery " + std::to_string(delivery_tag), number_);
  };
  const auto core = lock_core(core_, "reject");
  core->usable(number_, context());
  const int rc = amqp_basic_reject(core->state(), number_, delivery_tag, requeue ? 1 : 0);
  if (rc != AMQP_STATUS_OK) core->fail_status(rc, context());
}

std::optional<Delivery> Channel::get(std::string_view queue, bool no_ack) {
  const std::string context = named("get from queue", queue);
  const auto core = lock_core(core_, context);
  ChannelState* cs = &core->usable(number_, context);
  const amqp_rpc_reply_t reply =
      amqp_basic_get(core->state(), number_, as_bytes(queue), no_ack ? 1 : 0);
  if (reply.reply_type != AMQP_RESPONSE_NORMAL) core->fail_reply(number_, reply, context);
  if (reply.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) {
    core->release(number_);
    return std::nullopt;
  }
  const auto* m = static_cast<const amqp_basic_get_ok_t*>(reply.reply.decoded);
  Delivery d;
  d.delivery_tag = m->delivery_tag;
  d.redelivered = m->redelivered != 0;
  d.exchange = to_string(m->exchange);
  d.routing_key = to_string(m->routing_key);
  d.message_count = m->message_count;
  const bool read = core->read_delivery(number_, cs, d, context);
  core->release(number_);
  if (!read) core->throw_closed(*cs, context);
  return d;
}

}  // namespace pgcqrs::amqp
