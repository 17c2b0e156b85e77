// `cqrs_dead_letters dump|retry|purge`: inspect, send back or drop a replica's dead letters.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>

#include "common/config.hpp"
#include "common/timestamp.hpp"

namespace pgcqrs::replica {

// ---- pure parts ---------------------------------------------------------------------------

// One dead letter ready to be published again.
struct RetryPlan {
  std::string body;     // the body with retries 0 and a fresh expires
  std::string cqrs_id;  // where it goes: cqrs.<queue>.<cqrs_id>
  std::string error;    // why it cannot be retried (then body and cqrs_id are empty)
};

// The body django-cqrs's `cqrs_dead_letters retry` would publish, from a dead letter's body:
// `retries` set to 0 (in its place; appended when absent), and a truthy `expires` (a message
// that had an expiry) replaced by `now + ttl` as `YYYY-MM-DDTHH:MM:SS+00:00`, or null when
// `ttl` is 0 (never expires); a null or absent `expires` stays as it is. Every other member
// keeps its place and exact value; written compact as ujson (json::dump). Never throws: a
// body that is not a JSON object or has no string cqrs_id comes back with `error`.
// `ttl` is replica.message_ttl (django-cqrs always uses 86400 s, the default of that key).
RetryPlan plan_retry(std::string_view body, Timestamp now, std::chrono::seconds ttl);

// A body as one output line of `dump`: unchanged when it holds no line break. A JSON body's
// line breaks can only be white space between tokens, so they become spaces (same JSON); in a
// body that is not JSON they are written as `\n` and `\r`. `problem` (if given) is set to
// why the body is not a JSON object, and cleared when it is one.
std::string dump_line(std::string_view body, std::string* problem = nullptr);

// ---- the command --------------------------------------------------------------------------

enum class DeadLetterAction { kDump, kRetry, kPurge };

struct DeadLetterOptions {
  // Longest wait for the broker to confirm one republished message.
  std::chrono::milliseconds confirm_timeout{30000};
};

struct DeadLetterReport {
  std::uint32_t total = 0;    // messages in the dead-letter queue when the command started
  std::uint32_t dumped = 0;   // dump: bodies printed
  std::uint32_t retried = 0;  // retry: published (confirmed) and removed from the queue
  std::uint32_t kept = 0;     // retry: left in the queue (malformed, unroutable, unconfirmed)
  std::uint32_t purged = 0;   // purge: messages the broker dropped
};

// Connects to the broker, declares the topology as the consumer does (exchange, queue and
// dead-letter queue, each bound for every [[replica.model]]) and reads the dead-letter
// queue's message count N, then:
//  - dump: prints up to N bodies (dump_line()), one per line, taken with basic.get and held
//    unacknowledged, then returned with one nack(requeue): the queue keeps the same messages
//    in the same order. A body that is not JSON is printed too, with a warning on `err`.
//  - retry: prints `Total dead letters: N`, then for each message `Retrying: i/N`, takes it
//    (basic.get: never waits for messages that are not there), publishes plan_retry()'s body
//    to `cqrs.<queue>.<cqrs_id>` (this replica only; mandatory, with publisher confirms),
//    prints that body, and only then acks the dead-letter copy. A message that cannot be
//    retried (not JSON, no cqrs_id, returned unroutable, nacked or unconfirmed) is reported
//    on `err` and stays in the dead-letter queue, in its place.
//  - purge: prints `Total dead letters: N`; when N > 0 purges the queue and prints `Purged`.
// Throws ConfigError without [replica], amqp errors when the broker fails (messages held
// unacknowledged then return to the queue by themselves).
DeadLetterReport run_dead_letters(const Config& config, DeadLetterAction action, std::ostream& out,
                                  std::ostream& err, const DeadLetterOptions& options = {});

}  // namespace pgcqrs::replica
