// A replica database with read-model tables, its config, its queues, a publisher, and
// `pgcqrs consume` processes (header-only: the support library's sources are listed in CMake).
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/amqp/connection.hpp"
#include "common/config.hpp"
#include "common/json.hpp"
#include "common/pg/pqxx.hpp"
#include "common/timestamp.hpp"
#include "common/topology.hpp"
#include "replica/bindings.hpp"
#include "replica/retry.hpp"
#include "support.hpp"

namespace pgcqrs::it {

using Rows = std::vector<std::vector<std::string>>;

struct ReplicaFixture {
  // `schema_sql` creates the read-model tables; `models` is the [[replica.model]] TOML;
  // `replica_extra` more [replica] keys (they override nothing: do not repeat a key set here).
  // Declares the exchange, the queue with both bindings per model and the dead-letter queue
  // (as the consumer does), so that messages published before a consumer starts are kept, and
  // runs `pgcqrs migrate`.
  // `exchange_name` empty: a fresh one; else that one (e.g. a MasterFixture's).
  ReplicaFixture(const std::string& schema_sql, const std::string& models,
                 const std::string& replica_extra =
                     "max_retries = 2\nretry_delay = 1\n"
                     "retry_backoff = 2.0\nretry_delay_max = 2\n",
                 const std::string& exchange_name = "")
      : db("r"),
        exchange(exchange_name.empty() ? unique_name("cqrs") : exchange_name),
        queue(unique_name("replica")),
        dead_letter_queue("dead_letter_" + queue),
        http_port(free_port()) {
    conn = std::make_unique<pqxx::connection>(db.url());
    sql(schema_sql);
    const std::string text = "[broker]\nurl = \"" + amqp_url() + "\"\nexchange = \"" + exchange +
                             "\"\n\n[replica]\ndatabase = \"" + db.url() + "\"\nqueue = \"" +
                             queue + "\"\nhttp_port = " + std::to_string(http_port) + "\n" +
                             replica_extra + "\n" + models;
    config_path = write_temp_file(db.name() + ".toml", text);
    config = load_config(config_path);
    std::string out;
    if (pgcqrs("migrate", &out) != 0) throw std::runtime_error("pgcqrs migrate failed:\n" + out);
    open_broker();
    declare();
  }

  ~ReplicaFixture() {
    consumers.clear();  // SIGKILL whatever still runs
    try {
      open_broker();
      ch.delete_queue(queue);
      ch.delete_queue(dead_letter_queue);
      for (const auto d : replica::retry_delays(*config.replica))
        ch.delete_queue(replica::delay_queue_name(queue, d));
    } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): broker gone after a fault
    }
  }

  ReplicaFixture(const ReplicaFixture&) = delete;
  ReplicaFixture& operator=(const ReplicaFixture&) = delete;
  ReplicaFixture(ReplicaFixture&&) = delete;
  ReplicaFixture& operator=(ReplicaFixture&&) = delete;

  void open_broker() {
    broker = std::make_unique<amqp::Connection>(amqp::parse_url(amqp_url()));
    ch = broker->open_channel();
    ch.enable_confirms();
  }

  void declare() {
    ch.declare_exchange(exchange, "topic", true);
    ch.declare_queue(queue);
    ch.declare_queue(dead_letter_queue);
    std::vector<std::string> ids;
    for (const auto& m : config.replica->models)
      ids.push_back(m.cqrs_id);
    for (const auto& b : replica::replica_bindings(queue, dead_letter_queue, ids))
      ch.bind_queue(b.queue, exchange, b.routing_key);
  }

  // Runs `pgcqrs <args>` with the fixture's config; returns the exit status, output in `out`.
  int pgcqrs(const std::string& args, std::string* out = nullptr) const {
    return run_shell(pgcqrs_binary() + " --config '" + config_path + "' " + args + " 2>&1", out);
  }

  // Starts `pgcqrs consume <args>`; its log is <config>.consumeN.log.
  Process& start_consumer(const std::vector<std::string>& args = {},
                          const std::string& log_level = "info") {
    std::vector<std::string> argv{pgcqrs_binary(), "--config", config_path,
                                  "--log-level",   log_level,  "consume"};
    argv.insert(argv.end(), args.begin(), args.end());
    const std::string log = config_path + ".consume" + std::to_string(consumers.size()) + ".log";
    consumers.push_back(std::make_unique<Process>(argv, log));
    return *consumers.back();
  }

  // Publishes (with confirms) each (routing key, body) to the exchange.
  void publish(const std::vector<std::pair<std::string, std::string>>& messages,
               const amqp::PublishOptions& props = {}) {
    for (const auto& [key, body] : messages)
      ch.publish(exchange, key, body, props);
    const auto c = ch.wait_all_confirms(std::chrono::seconds(60));
    if (!c.nacked.empty() || ch.unconfirmed() > 0)
      throw std::runtime_error("publish not confirmed");
  }
  void publish(const std::string& key, const std::string& body) { publish({{key, body}}); }

  // Takes (acks) up to `n` messages from `q` (default: the dead-letter queue), waiting up to
  // `wait` for them.
  std::vector<amqp::Delivery> take(std::size_t n, std::chrono::milliseconds wait,
                                   const std::string& q = "") {
    const std::string name = q.empty() ? dead_letter_queue : q;
    std::vector<amqp::Delivery> out;
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
      auto d = ch.get(name);
      if (!d) {
        broker->process_events(std::chrono::milliseconds(50));
        continue;
      }
      ch.ack(d->delivery_tag);
      out.push_back(std::move(*d));
    }
    return out;
  }

  // Ready messages in `q` (default: the replica queue).
  std::uint32_t ready(const std::string& q = "") {
    return ch.declare_queue_passive(q.empty() ? queue : q);
  }

  void sql(const std::string& statements) const {
    pqxx::nontransaction txn(*conn);
    txn.exec(statements);
  }

  // Each row of `query` as text, NULL as "<null>", timestamps in UTC.
  Rows rows(const std::string& query) const {
    pqxx::work txn(*conn);
    txn.exec("SET LOCAL TimeZone = 'UTC'");
    Rows out;
    for (const auto& r : txn.exec(query)) {
      std::vector<std::string> row;
      for (const auto& f : r)
        row.push_back(f.is_null() ? "<null>" : f.as<std::string>());
      out.push_back(std::move(row));
    }
    return out;
  }

  std::string scalar(const std::string& query) const {
    const Rows r = rows(query);
    if (r.empty() || r[0].empty()) return "";
    return r[0][0];
  }

  // Reconnects the test's own connections (after a server restart).
  void reconnect() {
    conn = std::make_unique<pqxx::connection>(db.url());
    open_broker();
  }

  // GET /metrics of the consumer (empty when it does not answer).
  [[nodiscard]] std::string metrics() const {
    std::string out;
    run_shell("curl -sf http://127.0.0.1:" + std::to_string(http_port) + "/metrics", &out);
    return out;
  }
  // The value of one sample, e.g. `pgcqrs_replica_applied_total{cqrs_id="author"}`; -1 when
  // absent.
  [[nodiscard]] double metric(const std::string& sample) const {
    const std::string text = metrics();
    const std::string prefix = sample + " ";
    for (std::size_t pos = 0; pos < text.size();) {
      const std::size_t nl = text.find('\n', pos);
      const std::string line =
          text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      if (line.rfind(prefix, 0) == 0) return std::stod(line.substr(prefix.size()));
      if (nl == std::string::npos) break;
      pos = nl + 1;
    }
    return -1;
  }
  // /readyz answers 200.
  [[nodiscard]] bool consumer_ready() const {
    return run_shell("curl -sf -o /dev/null http://127.0.0.1:" + std::to_string(http_port) +
                     "/readyz") == 0;
  }

  TempDatabase db;
  std::string exchange;
  std::string queue;
  std::string dead_letter_queue;
  int http_port;
  std::string config_path;
  Config config;
  std::unique_ptr<pqxx::connection> conn;
  std::unique_ptr<amqp::Connection> broker;
  amqp::Channel ch;
  std::vector<std::unique_ptr<Process>> consumers;
};

// A django-cqrs body: SAVE/SYNC/DELETE of `cqrs_id` row `pk` at `revision` with `fields`.
// The cqrs_updated of test events, as a master that writes each revision of a row after the
// one before gives it: revision N at 10:00:00.123456 + N s, and a DELETE (revision N = the last
// SAVE's + 1) half a second later than a SAVE of its revision would be. So a SAVE is after a
// DELETE exactly when its revision is higher, and the replica's tombstone time rule never
// decides differently from the revision rule unless a test sets cqrs_updated itself (a row the
// master created again: revision 0, later time).
inline std::string updated_at(std::int64_t revision, bool is_delete = false) {
  Timestamp t =
      parse_timestamp("2026-11-22 10:00:00.123456+00:00") + std::chrono::seconds(revision);
  if (is_delete) t += std::chrono::milliseconds(500);
  return format_django(t);
}

// A message body; `fields` go into instance_data last, so they may replace cqrs_updated.
inline std::string event_body(const std::string& signal, const std::string& cqrs_id,
                              const json::Json& pk, std::int64_t revision,
                              const json::Json& fields = json::Json::object(), int retries = 0,
                              const std::string& expires = "2099-01-01T00:00:00+00:00") {
  json::Json data = json::Json::object();
  data["id"] = pk;
  data["cqrs_revision"] = revision;
  data["cqrs_updated"] = updated_at(revision, signal == "DELETE");
  for (const auto& [k, v] : fields.items())
    data[k] = v;
  json::Json body = json::Json::object();
  body["signal_type"] = signal;
  body["cqrs_id"] = cqrs_id;
  body["instance_data"] = data;
  body["previous_data"] = nullptr;
  body["instance_pk"] = pk;
  body["correlation_id"] = nullptr;
  body["retries"] = retries;
  body["expires"] = expires.empty() ? json::Json(nullptr) : json::Json(expires);
  body["meta"] = json::Json::object();
  return json::dump(body);
}

}  // namespace pgcqrs::it
