// cqrs_sync core: keyset batches of a master table -> SYNC bodies -> confirmed, mandatory
// publishes.
#include "master/sync.hpp"

#include <map>
#include <set>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "common/amqp/connection.hpp"
#include "common/amqp/error.hpp"
#include "common/error.hpp"
#include "common/pg/error.hpp"
#include "common/pg/session.hpp"
#include "common/progress.hpp"
#include "master/capture.hpp"
#include "master/outbox.hpp"
#include "master/publish_target.hpp"
#include "master/table_info.hpp"

namespace pgcqrs::master {
namespace {

using Clock = std::chrono::steady_clock;

// Failures printed one by one before they are only counted (a broadcast nobody is bound for
// would otherwise print one line per row).
constexpr std::uint64_t kFailuresShown = 10;

bool stream_is_terminal(std::FILE* f) {
  return f != nullptr && ::isatty(::fileno(f)) == 1;
}

}  // namespace

std::string sync_report_text(const SyncReport& report) {
  if (!report.found) return "No objects found for filter!\n";
  std::string out = "Done!\n";
  out += std::to_string(report.synced);
  out += " instance(s) synced.\n";
  out += std::to_string(report.processed);
  out += " instance(s) processed.\n";
  return out;
}

std::string sync_body(const std::string& cqrs_id, const std::string& pk_json,
                      const std::string& instance_data, const std::string& meta, Timestamp now,
                      std::chrono::seconds ttl) {
  OutboxRow row;
  row.cqrs_id = cqrs_id;
  row.signal = "SYNC";
  row.instance_pk = pk_json;
  row.instance_data = instance_data;
  row.meta = meta;
  return build_body(row, now, ttl);
}

struct Syncer::State {
  const Config& config;
  const MasterModel& model;
  pg::Session db;
  TableInfo info;
  RowSql rows;
  std::vector<FilterColumn> columns;
  std::unique_ptr<amqp::Connection> broker;
  amqp::Channel ch;

  State(const Config& c, const MasterModel& m)
      : config(c), model(m), db(c.master->database, "pgcqrs sync") {
    pqxx::nontransaction txn(db.conn());
    txn.exec0("SET TimeZone = 'UTC'");
    info = describe_table(txn, model.table);
    rows = row_sql(model, info, quoter_for(txn));
    for (const auto& col : info.columns)
      columns.push_back({col.name, col.type});
  }

  amqp::Channel& channel() {
    if (!broker) {
      broker = std::make_unique<amqp::Connection>(
          amqp::parse_url(config.broker.url),
          amqp::ConnectOptions{"pgcqrs sync", std::chrono::milliseconds(30000)});
      ch = broker->open_channel();
      ch.declare_exchange(config.broker.exchange, "topic", true);
      ch.enable_confirms();
    }
    return ch;
  }
};

Syncer::Syncer(const Config& config, const std::string& cqrs_id) {
  if (!config.master) {
    throw ConfigError(config.source + ": [master] is not configured; sync reads a master table");
  }
  const MasterModel* model = config.find_master_model(cqrs_id);
  if (model == nullptr) throw CommandError("Wrong CQRS ID: " + cqrs_id + "!");
  s_ = std::make_unique<State>(config, *model);
}

Syncer::~Syncer() = default;

const std::string& Syncer::primary_key() const noexcept {
  return s_->info.primary_key;
}

SyncReport Syncer::sync_filter(const std::optional<std::string>& filter_json,
                               const SyncOptions& options, std::FILE* out) {
  if (!filter_json) {
    // django-cqrs: no filter selects nothing
    const SyncReport none;
    std::fputs(sync_report_text(none).c_str(), out);
    return none;
  }
  const auto quote = [this](const std::string& n) { return s_->db.conn().quote_name(n); };
  const CompiledFilter f =
      compile_filter(*filter_json, s_->columns, s_->info.primary_key, quote, "n", 1);
  return run(f, options, out, true);
}

SyncReport Syncer::sync_keys(const json::Json& keys, const SyncOptions& options, std::FILE* out) {
  if (!keys.is_array()) throw MessageError("primary keys: not a JSON array");
  for (const auto& k : keys) {
    if (!k.is_string() && !json::is_number(k)) {
      throw MessageError("primary key " + json::excerpt(k, 40) + ": not a string or number");
    }
  }
  CompiledFilter f;
  if (keys.empty()) {
    f.sql = "false";
  } else {
    f.sql = s_->rows.pk + " = ANY ($1)";
    f.params.emplace_back(pg_array_literal(keys));
  }
  return run(f, options, out, false);
}

SyncReport Syncer::run(const CompiledFilter& selection, const SyncOptions& options, std::FILE* out,
                       bool bad_values_are_filter_errors) {
  State& s = *s_;
  const MasterConfig& mc = *s.config.master;
  const RowSql& r = s.rows;
  const std::size_t n = selection.params.size();
  const std::string select = "SELECT " + r.pk + "::text, " + r.pk_json + "::text, " +
                             r.instance_data + "::text, " + r.meta + "::text, " + r.is_sync +
                             " FROM " + r.from + " WHERE (" + selection.sql + ")";
  const std::string first_sql = select + " ORDER BY " + r.pk + " LIMIT $" + std::to_string(n + 1);
  const std::string next_sql = select + " AND " + r.pk + " > $" + std::to_string(n + 1) +
                               " ORDER BY " + r.pk + " LIMIT $" + std::to_string(n + 2);
  const std::string count_sql = "SELECT count(*) FROM " + r.from + " WHERE (" + selection.sql + ")";
  const std::string limit = std::to_string(std::max(1, options.batch));

  const auto query = [&](const std::string& sql, const std::vector<const char*>& p) {
    pqxx::nontransaction txn(s.db.conn());
    try {
      return txn.exec_params(sql, pqxx::prepare::make_dynamic_params(p));
    } catch (const pqxx::data_exception& e) {
      // a value the column's type refuses (`{"id": "abc"}`) shows up at the first statement
      if (bad_values_are_filter_errors)
        throw CommandError("Bad filter kwargs! " + pg::server_message(e));
      throw MessageError(pg::server_message(e));
    }
  };

  std::vector<const char*> params = pg::param_pointers(selection.params);
  SyncReport report;

  // --progress: django-cqrs's header and progress on `out` (stdout), live when it is a
  // terminal, else plain lines; without it a live line on stderr when that is a terminal
  std::unique_ptr<Progress> progress;
  const bool live_stderr = !options.progress && stream_is_terminal(stderr);
  if (options.progress || live_stderr) {
    const auto total = query(count_sql, params)[0][0].as<std::uint64_t>();
    if (total == 0) {
      std::fputs(sync_report_text(report).c_str(), out);
      return report;
    }
    if (options.progress) {
      std::fprintf(out, "Processing %llu records with batch size %s\n",
                   static_cast<unsigned long long>(total), limit.c_str());
      std::fflush(out);
    }
    progress = std::make_unique<Progress>("Syncing " + s.model.cqrs_id, total, options.progress,
                                          options.progress ? out : stderr);
  }

  const std::string routing = routing_key(s.model.cqrs_id, options.queue);
  amqp::PublishOptions props;
  props.mandatory = true;
  const auto window = static_cast<std::size_t>(std::max(1, mc.confirm_window));

  // Each publish carries a message_id (a sequence number of this run) so that a returned
  // message names its row; the broker returns a message before it acks it.
  std::map<std::uint64_t, std::string> in_flight;  // delivery tag -> pk text
  std::map<std::string, std::uint64_t> tag_of;     // message_id -> delivery tag
  std::set<std::uint64_t> returned;                // tags returned, not yet acked
  std::uint64_t seq = 0;
  std::uint64_t shown_nacked = 0, shown_returned = 0, shown_other = 0, printed = 0;
  std::uint64_t total_returned = 0;
  auto last_confirm = Clock::now();

  const auto fail = [&](const std::string& pk, const std::string& why, std::uint64_t& shown) {
    ++report.failed;
    if (shown++ < kFailuresShown) {
      ++printed;
      std::fprintf(out, "\nSync record failed for pk=%s: %s\n", pk.c_str(), why.c_str());
      std::fflush(out);
    }
  };
  const auto absorb = [&](const amqp::Confirms& c) {
    for (const auto& ret : s.ch.take_returns()) {
      const auto it = tag_of.find(ret.message_id);
      if (it != tag_of.end()) {
        returned.insert(it->second);
        tag_of.erase(it);
      }
      if (total_returned++ == 0) {
        spdlog::warn(
            "sync {}: the broker returned SYNC events: {} {}; no queue is bound for "
            "routing key '{}'",
            s.model.cqrs_id, ret.reply_code, ret.reply_text, ret.routing_key);
      }
    }
    if (!c.empty()) last_confirm = Clock::now();
    const auto settle = [&](std::uint64_t tag, bool acked) {
      const auto it = in_flight.find(tag);
      if (it == in_flight.end()) return;
      if (!acked) {
        fail(it->second, "ChannelError: nacked by the broker (the message may be lost)",
             shown_nacked);
      } else if (returned.erase(tag) != 0) {
        fail(it->second,
             "ChannelError: returned by the broker (312 NO_ROUTE): no queue is bound for "
             "routing key '" +
                 routing + "'",
             shown_returned);
      } else {
        ++report.synced;
      }
      in_flight.erase(it);
    };
    for (const auto tag : c.acked)
      settle(tag, true);
    // message ids of settled publishes can no longer come back
    if (in_flight.empty()) tag_of.clear();
    for (const auto tag : c.nacked)
      settle(tag, false);
  };
  const auto wait_below = [&](std::size_t limit_in_flight) {
    while (in_flight.size() > limit_in_flight) {
      const amqp::Confirms c = s.ch.poll_confirms(std::chrono::milliseconds(200));
      absorb(c);
      if (c.empty() && Clock::now() - last_confirm > confirm_timeout_) {
        throw TransientError(
            "sync " + s.model.cqrs_id + ": " + std::to_string(in_flight.size()) +
            " SYNC event(s) from pk=" + in_flight.begin()->second +
            " not confirmed by the broker after " + std::to_string(confirm_timeout_.count()) +
            " ms; " + std::to_string(report.synced) + " confirmed so far; run the command again");
      }
    }
  };

  std::optional<std::string> last_pk;
  bool first = true;
  try {
    for (;;) {
      std::vector<const char*> p = params;
      if (last_pk) p.push_back(last_pk->c_str());
      p.push_back(limit.c_str());
      const pqxx::result batch = query(last_pk ? next_sql : first_sql, p);
      if (first && batch.empty()) break;
      first = false;
      if (batch.empty()) break;
      report.found = true;
      const Timestamp now = now_utc();
      for (const auto& row : batch) {
        ++report.processed;
        const std::string pk = row[0].as<std::string>();
        const bool publish = s.model.produce && row[4].as<bool>();
        if (!publish) {
          // django-cqrs: cqrs_sync() publishes nothing, yet the row counts as synced
          ++report.synced;
          ++report.not_published;
          continue;
        }
        if (row[2].is_null()) {
          fail(pk, "ValueError: the serializer returned no data", shown_other);
          continue;
        }
        const std::string body =
            sync_body(s.model.cqrs_id, row[1].as<std::string>(), row[2].as<std::string>(),
                      row[3].as<std::string>(), now, mc.message_ttl);
        amqp::Channel& ch = s.channel();
        if (in_flight.empty()) last_confirm = Clock::now();
        props.message_id = std::to_string(++seq);
        const std::uint64_t tag = ch.publish(s.config.broker.exchange, routing, body, props);
        in_flight.emplace(tag, pk);
        tag_of.emplace(props.message_id, tag);
        if (in_flight.size() >= window) wait_below(window / 2);
      }
      if (progress) progress->add(batch.size());
      last_pk = batch[batch.size() - 1][0].as<std::string>();
      if (batch.size() < static_cast<std::size_t>(std::max(1, options.batch))) break;
    }
    if (!in_flight.empty()) wait_below(0);
    absorb(amqp::Confirms{});
  } catch (const amqp::ConnectionError& e) {
    s.ch = amqp::Channel();
    s.broker.reset();
    throw TransientError("sync " + s.model.cqrs_id + ": broker connection lost with " +
                         std::to_string(in_flight.size()) + " SYNC event(s) unconfirmed, " +
                         std::to_string(report.synced) + " confirmed: " + e.what() +
                         "; run the command again");
  } catch (const amqp::ChannelError& e) {
    s.ch = amqp::Channel();
    s.broker.reset();
    throw TransientError("sync " + s.model.cqrs_id + ": broker closed the channel with " +
                         std::to_string(in_flight.size()) + " SYNC event(s) unconfirmed, " +
                         std::to_string(report.synced) + " confirmed: " + e.what() +
                         "; run the command again");
  }
  if (progress) progress->finish();
  if (report.failed > printed) {
    std::fprintf(out, "\nSync failed for %llu more record(s) (not shown).\n",
                 static_cast<unsigned long long>(report.failed - printed));
  }
  if (report.not_published > 0) {
    spdlog::debug("sync {}: {} row(s) not published: the model's filter or produce = false",
                  s.model.cqrs_id, report.not_published);
  }
  std::fputs(sync_report_text(report).c_str(), out);
  std::fflush(out);
  return report;
}

}  // namespace pgcqrs::master
