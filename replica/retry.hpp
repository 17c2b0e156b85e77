// Failed messages: retry delays and delay queues, dead-letter routing, and malformed bodies.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/amqp/channel.hpp"
#include "common/config.hpp"

namespace pgcqrs::replica {

// Delay before retry number `retries` + 1 of a message that carried `retries`:
// min(retry_delay_max, retry_delay * retry_backoff^retries), in whole seconds.
std::chrono::seconds retry_delay(const ReplicaConfig& config, std::int64_t retries);

// Every distinct delay retry_delay() gives for retries 0 .. max_retries-1, ascending (one delay
// queue each; at most a few dozen even with a large max_retries, because of the cap).
std::vector<std::chrono::seconds> retry_delays(const ReplicaConfig& config);

// The delay queue of one delay: `<queue>.retry.<seconds>s`. Messages wait there for exactly
// that long (queue-level x-message-ttl, so every message in it expires in arrival order and a
// long delay never holds back a short one), then RabbitMQ dead-letters them through the default
// exchange straight back into `<queue>`.
std::string delay_queue_name(std::string_view queue, std::chrono::seconds delay);
// Its declaration: durable, x-message-ttl = delay in ms, x-dead-letter-exchange = "" (the
// default exchange), x-dead-letter-routing-key = `<queue>`.
amqp::QueueOptions delay_queue_options(std::string_view queue, std::chrono::seconds delay);

// Where a failed message is published: exchange and routing key, and the AMQP expiration.
struct Route {
  std::string exchange;
  std::string routing_key;
  std::string expiration;  // milliseconds, "" = none
};

// The retry of a message of `cqrs_id` that carried `retries`: with a delay, into its delay
// queue (default exchange, routing key = the delay queue's name); with retry_delay 0, straight
// back to the exchange with `cqrs.<queue>.<cqrs_id>` as django-cqrs does.
Route retry_route(const ReplicaConfig& config, const std::string& exchange,
                  std::string_view cqrs_id, std::int64_t retries);
// A dead letter: the exchange, `cqrs.<dead_letter_queue>.<cqrs_id>`, expiration =
// dead_message_ttl in ms (none when 0), as django-cqrs.
Route dead_letter_route(const ReplicaConfig& config, const std::string& exchange,
                        std::string_view cqrs_id);

// The body with its `retries` member set to `retries` (added last when absent); every other
// member keeps its place and its exact value. Throws MessageError if `body` is not a JSON object.
std::string with_retries(std::string_view body, std::int64_t retries);

// Why a body could not be decoded, and what becomes of it.
enum class MalformedKind {
  kBadJson,        // not JSON, or not an object: rejected (django-cqrs: "couldn't be parsed")
  kMissingKey,     // signal_type, cqrs_id, instance_data or instance_pk absent: rejected
  kUnknownCqrsId,  // no model and no handler for its cqrs_id: rejected (django-cqrs nacks it)
  kBadField,       // a known cqrs_id, a field of the wrong type or value: dead-lettered at once
};

// "json", "missing_key", "unknown_cqrs_id", "bad_field": metric label values.
std::string_view to_string(MalformedKind k) noexcept;

struct Malformed {
  MalformedKind kind = MalformedKind::kBadJson;
  std::string cqrs_id;       // kBadField, kUnknownCqrsId: the body's cqrs_id
  std::int64_t retries = 0;  // kBadField: the body's retries when an integer, else 0
};

// Classifies a body that decode_event() refused. `known(cqrs_id)` says whether this replica
// handles that cqrs_id.
template <class Known>
Malformed classify_malformed(std::string_view body, const Known& known);

// The non-template part: the cqrs_id string of an object body ("" when absent or not a
// string), whether it has the four required keys, and whether it parsed as an object.
struct BodyShape {
  bool object = false;
  bool required_keys = false;
  std::string cqrs_id;
  std::int64_t retries = 0;
};
BodyShape body_shape(std::string_view body);

template <class Known>
Malformed classify_malformed(std::string_view body, const Known& known) {
  const BodyShape s = body_shape(body);
  if (!s.object) return {MalformedKind::kBadJson, "", 0};
  if (!s.required_keys) return {MalformedKind::kMissingKey, s.cqrs_id, 0};
  if (s.cqrs_id.empty() || !known(s.cqrs_id)) {
    return {MalformedKind::kUnknownCqrsId, s.cqrs_id, 0};
  }
  return {MalformedKind::kBadField, s.cqrs_id, s.retries};
}

}  // namespace pgcqrs::replica
