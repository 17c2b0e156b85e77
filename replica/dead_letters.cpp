// cqrs_dead_letters: dump (non-destructive), retry (confirmed republish, then ack), purge.
#include "replica/dead_letters.hpp"

#include <optional>
#include <ostream>
#include <vector>

#include "common/amqp/connection.hpp"
#include "common/amqp/url.hpp"
#include "common/error.hpp"
#include "common/json.hpp"
#include "common/topology.hpp"
#include "replica/bindings.hpp"

namespace pgcqrs::replica {
namespace {

// Dead letters are bodies this replica once received; allow more than the consumer's default
// so that whatever got in can be shown and sent back.
const json::ParseLimits kLimits{std::size_t{128} << 20, 64};

// django-cqrs's `if dct.get('expires')`: Python truthiness of the JSON value.
bool truthy(const json::Json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string()) return !v.get_ref<const std::string&>().empty();
  if (v.is_number_integer()) return v.get<std::int64_t>() != 0;
  if (v.is_number_unsigned()) return v.get<std::uint64_t>() != 0;
  if (v.is_number_float()) return v.get<double>() != 0.0;
  if (json::is_decimal(v))
    return json::decimal_text(v).find_first_not_of("-0.eE+") != std::string_view::npos;
  return !v.empty();  // object, array
}

}  // namespace

RetryPlan plan_retry(std::string_view body, Timestamp now, std::chrono::seconds ttl) {
  RetryPlan plan;
  json::Json v;
  try {
    v = json::parse(body, kLimits, "body");
  } catch (const std::exception& e) {
    plan.error = std::string("not JSON (") + e.what() + ")";
    return plan;
  }
  if (!v.is_object()) {
    plan.error = "not a JSON object but a JSON " + std::string(json::type_name(v));
    return plan;
  }
  const auto id = v.find("cqrs_id");
  if (id == v.end() || !id->is_string() || id->get_ref<const std::string&>().empty()) {
    plan.error = id == v.end() ? "no cqrs_id: nowhere to send it"
                               : "cqrs_id " + json::excerpt(*id, 60) + " is not a name";
    return plan;
  }
  plan.cqrs_id = id->get<std::string>();
  v["retries"] = 0;
  if (const auto e = v.find("expires"); e != v.end() && truthy(*e)) {
    *e = ttl.count() == 0 ? json::Json(nullptr)
                          : json::Json(format_expires(
                                now + std::chrono::duration_cast<std::chrono::microseconds>(ttl)));
  }
  try {
    plan.body = json::dump(v);
  } catch (const std::exception& e) {
    plan = RetryPlan{};
    plan.error = std::string("cannot be written back as JSON (") + e.what() + ")";
  }
  return plan;
}

std::string dump_line(std::string_view body, std::string* problem) {
  std::string why;
  try {
    const json::Json v = json::parse(body, kLimits, "body");
    if (!v.is_object()) why = "not a JSON object but a JSON " + std::string(json::type_name(v));
  } catch (const std::exception& e) {
    why = std::string("not JSON (") + e.what() + ")";
  }
  const bool json_text = why.empty() || why.rfind("not a JSON object", 0) == 0;
  std::string line;
  line.reserve(body.size());
  for (const char c : body) {
    if (c == '\n' || c == '\r') {
      if (json_text) {
        line += ' ';
      } else {
        line += c == '\n' ? "\\n" : "\\r";
      }
    } else {
      line += c;
    }
  }
  if (problem != nullptr) *problem = why;
  return line;
}

namespace {

// The broker side of the command: one connection, one channel, the consumer's topology.
class DeadLetterQueue {
 public:
  explicit DeadLetterQueue(const Config& config)
      : config_(config),
        rc_(*config.replica),
        conn_(amqp::parse_url(config.broker.url), amqp::ConnectOptions{"pgcqrs dead-letters"}),
        ch_(conn_.open_channel()) {}

  // Declares exchange, queue, dead-letter queue and bindings; returns the dead letters ready.
  std::uint32_t declare() {
    const std::string& exchange = config_.broker.exchange;
    ch_.declare_exchange(exchange, "topic", true);
    ch_.declare_queue(rc_.queue);
    const std::uint32_t ready = ch_.declare_queue(rc_.dead_letter_queue);
    std::vector<std::string> ids;
    ids.reserve(rc_.models.size());
    for (const auto& m : rc_.models)
      ids.push_back(m.cqrs_id);
    for (const auto& b : replica_bindings(rc_.queue, rc_.dead_letter_queue, ids))
      ch_.bind_queue(b.queue, exchange, b.routing_key);
    return ready;
  }

  std::optional<amqp::Delivery> take() { return ch_.get(rc_.dead_letter_queue, false); }

  // Puts every delivery taken and not acked back in its place.
  void give_back(std::uint64_t last_tag) {
    if (last_tag != 0) ch_.nack(last_tag, true, true);
  }

  amqp::Channel& channel() { return ch_; }
  amqp::Connection& connection() { return conn_; }

 private:
  const Config& config_;
  const ReplicaConfig& rc_;
  amqp::Connection conn_;
  amqp::Channel ch_;
};

void dump(DeadLetterQueue& q, DeadLetterReport& report, std::ostream& out, std::ostream& err) {
  std::uint64_t last = 0;
  for (std::uint32_t i = 1; i <= report.total; ++i) {
    auto d = q.take();
    if (!d) {
      err << "only " << i - 1 << " of " << report.total
          << " dead letters were left to dump (the others expired or were taken meanwhile)\n";
      break;
    }
    last = d->delivery_tag;
    std::string problem;
    out << dump_line(d->body, &problem) << '\n';
    if (!problem.empty()) {
      err << "dead letter " << i << "/" << report.total << " (routing key " << d->routing_key
          << ") is malformed: " << problem << "; shown as is\n";
    }
    ++report.dumped;
  }
  out << std::flush;
  q.give_back(last);
}

void retry(DeadLetterQueue& q, const Config& config, const DeadLetterOptions& options,
           DeadLetterReport& report, std::ostream& out, std::ostream& err) {
  const ReplicaConfig& rc = *config.replica;
  amqp::Channel& ch = q.channel();
  ch.enable_confirms();
  out << "Total dead letters: " << report.total << '\n' << std::flush;
  std::uint64_t last_kept = 0;
  const auto keep = [&](std::uint32_t i, const amqp::Delivery& d, const std::string& why) {
    err << "dead letter " << i << "/" << report.total << " not retried, left in "
        << rc.dead_letter_queue << ": " << why << '\n'
        << std::flush;
    last_kept = d.delivery_tag;
    ++report.kept;
  };
  for (std::uint32_t i = 1; i <= report.total; ++i) {
    out << "Retrying: " << i << "/" << report.total << '\n' << std::flush;
    auto d = q.take();
    if (!d) {
      err << "the dead-letter queue holds no more messages (" << i - 1 << " of " << report.total
          << " taken; the others expired or were taken meanwhile)\n";
      break;
    }
    const RetryPlan plan = plan_retry(d->body, now_utc(), rc.message_ttl);
    if (!plan.error.empty()) {
      keep(i, *d, plan.error);
      continue;
    }
    const std::string key = topology::queue_key(rc.queue, plan.cqrs_id);
    amqp::PublishOptions props;
    props.mandatory = true;
    ch.publish(config.broker.exchange, key, plan.body, props);
    const amqp::Confirms c = ch.wait_all_confirms(options.confirm_timeout);
    const auto returned = ch.take_returns();
    if (!returned.empty()) {
      keep(i, *d,
           "routing key " + key + " reaches no queue (" + returned.front().reply_text +
               "); is cqrs_id '" + plan.cqrs_id + "' a [[replica.model]] of this replica?");
      continue;
    }
    if (!c.nacked.empty()) {
      keep(i, *d, "the broker refused the republished copy (basic.nack)");
      continue;
    }
    if (ch.unconfirmed() > 0) {
      keep(i, *d,
           "the broker did not confirm the republished copy within " +
               std::to_string(options.confirm_timeout.count()) +
               " ms; it may arrive as well (revisions make the duplicate harmless)");
      continue;
    }
    out << plan.body << '\n' << std::flush;
    ch.ack(d->delivery_tag);
    ++report.retried;
  }
  q.give_back(last_kept);
}

}  // namespace

DeadLetterReport run_dead_letters(const Config& config, DeadLetterAction action, std::ostream& out,
                                  std::ostream& err, const DeadLetterOptions& options) {
  if (!config.replica) {
    throw ConfigError(config.source + ": [replica] is not configured; dead-letters needs it");
  }
  DeadLetterQueue q(config);
  DeadLetterReport report;
  report.total = q.declare();
  switch (action) {
    case DeadLetterAction::kDump:
      dump(q, report, out, err);
      break;
    case DeadLetterAction::kRetry:
      retry(q, config, options, report, out, err);
      break;
    case DeadLetterAction::kPurge:
      out << "Total dead letters: " << report.total << '\n';
      if (report.total > 0) {
        report.purged = q.channel().purge_queue(config.replica->dead_letter_queue);
        out << "Purged\n";
      }
      out << std::flush;
      break;
  }
  q.channel().close();
  q.connection().close();
  return report;
}

}  // namespace pgcqrs::replica
