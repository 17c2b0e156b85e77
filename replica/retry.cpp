// Retry delays, delay queues, dead-letter routes and the classification of malformed bodies.
#include "replica/retry.hpp"

#include <algorithm>
#include <cmath>

#include "common/error.hpp"
#include "common/json.hpp"
#include "common/topology.hpp"

namespace pgcqrs::replica {

namespace {

// The longest delay: retry_delay_max, or (0 = no cap) a day.
double cap_of(const ReplicaConfig& config) {
  return config.retry_delay_max.count() > 0 ? static_cast<double>(config.retry_delay_max.count())
                                            : 86400.0;
}

}  // namespace

std::chrono::seconds retry_delay(const ReplicaConfig& config, std::int64_t retries) {
  const double cap = cap_of(config);
  double d = static_cast<double>(config.retry_delay.count());
  if (d <= 0) return std::chrono::seconds(0);
  // base * backoff^retries, stopping once past the cap (retries may be any int64 of a body)
  for (std::int64_t i = 0; i < retries && d < cap && config.retry_backoff > 1.0; ++i)
    d *= config.retry_backoff;
  d = std::min(d, cap);
  return std::chrono::seconds(static_cast<std::int64_t>(std::llround(d)));
}

std::vector<std::chrono::seconds> retry_delays(const ReplicaConfig& config) {
  std::vector<std::chrono::seconds> out;
  for (std::int64_t r = 0; r < config.max_retries; ++r) {
    const auto d = retry_delay(config, r);
    if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
    // every later retry waits as long: the cap, or a constant delay
    if (static_cast<double>(d.count()) >= cap_of(config) || config.retry_backoff <= 1.0) break;
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string delay_queue_name(std::string_view queue, std::chrono::seconds delay) {
  return std::string(queue) + ".retry." + std::to_string(delay.count()) + "s";
}

amqp::QueueOptions delay_queue_options(std::string_view queue, std::chrono::seconds delay) {
  amqp::QueueOptions o;
  o.durable = true;
  o.arguments = {
      {"x-message-ttl", static_cast<std::int64_t>(delay.count()) * 1000},
      {"x-dead-letter-exchange", std::string()},
      {"x-dead-letter-routing-key", std::string(queue)},
  };
  return o;
}

Route retry_route(const ReplicaConfig& config, const std::string& exchange,
                  std::string_view cqrs_id, std::int64_t retries) {
  const auto delay = retry_delay(config, retries);
  if (delay.count() == 0) return {exchange, topology::queue_key(config.queue, cqrs_id), ""};
  return {"", delay_queue_name(config.queue, delay), ""};
}

Route dead_letter_route(const ReplicaConfig& config, const std::string& exchange,
                        std::string_view cqrs_id) {
  Route r{exchange, topology::queue_key(config.dead_letter_queue, cqrs_id), ""};
  if (config.dead_message_ttl.count() > 0) {
    r.expiration = std::to_string(config.dead_message_ttl.count() * 1000);
  }
  return r;
}

std::string with_retries(std::string_view body, std::int64_t retries) {
  json::Json v = json::parse(body);
  if (!v.is_object()) throw MessageError("body: expected a JSON object to set retries in");
  v["retries"] = retries;
  return json::dump(v);
}

std::string_view to_string(MalformedKind k) noexcept {
  switch (k) {
    case MalformedKind::kBadJson:
      return "json";
    case MalformedKind::kMissingKey:
      return "missing_key";
    case MalformedKind::kUnknownCqrsId:
      return "unknown_cqrs_id";
    case MalformedKind::kBadField:
      return "bad_field";
  }
  return "json";
}

BodyShape body_shape(std::string_view body) {
  BodyShape s;
  json::Json v;
  try {
    v = json::parse(body);
  } catch (const MessageError&) {
    return s;
  }
  if (!v.is_object()) return s;
  s.object = true;
  s.required_keys = v.contains("signal_type") && v.contains("cqrs_id") &&
                    v.contains("instance_data") && v.contains("instance_pk");
  if (const auto it = v.find("cqrs_id"); it != v.end() && it->is_string()) {
    s.cqrs_id = it->get<std::string>();
  }
  if (const auto it = v.find("retries"); it != v.end() && it->is_number_integer()) {
    s.retries = std::max<std::int64_t>(0, it->get<std::int64_t>());
  }
  return s;
}

}  // namespace pgcqrs::replica
