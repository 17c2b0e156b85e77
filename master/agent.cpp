// Agent loop: advisory lock -> fetch outbox rows -> publish with confirms -> delete acked rows.
#include "master/agent.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/amqp/connection.hpp"
#include "common/amqp/error.hpp"
#include "common/backoff.hpp"
#include "common/error.hpp"
#include "common/pg/error.hpp"
#include "common/pg/listener.hpp"
#include "common/pg/session.hpp"
#include "common/signals.hpp"
#include "master/capture.hpp"
#include "master/install.hpp"
#include "master/outbox.hpp"
#include "master/outbox_confirms.hpp"

namespace pgcqrs::master {
namespace {

constexpr const char* kTryLock = "SELECT pg_try_advisory_lock($1)";
constexpr const char* kLock = "SELECT pg_advisory_lock($1)";
constexpr const char* kUnlock = "SELECT pg_advisory_unlock($1)";
// How long the agent waits for kAgentAwakeLockKey (writers hold it shared from their
// notification check to their commit; a waiting exclusive request fails their new tries at
// once), and how long it leaves the lock alone after a wait timed out (a long transaction
// that notified holds it).
constexpr std::chrono::milliseconds kAwakeLockWait{20};
constexpr std::chrono::milliseconds kAwakeRetry{1000};
// After it releases kAgentAwakeLockKey the agent still polls this long: a writer that skipped
// its notification just before the release, or whose session's throttle (kNotifyThrottle)
// then still holds its next writes back, commits within it unless its transaction is long.
constexpr std::chrono::milliseconds kAwakeGrace{250};

using Clock = std::chrono::steady_clock;

// Active this long before a fault, the agent reconnects after the backoff's first delay.
constexpr std::chrono::seconds kHealthyStretch{60};
// Returned (unroutable) events are logged at most this often per routing key.
constexpr std::chrono::seconds kReturnLogEvery{60};

// The database notices a vanished agent host (power, network) within about
// idle + interval * count seconds and ends its session, which frees the agent lock for a
// standby; the operating system's default keeps a dead peer's session for about two hours.
constexpr const char* kKeepalives =
    "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; "
    "SET tcp_keepalives_count = 3; SET tcp_user_timeout = 25000";

}  // namespace

Agent::Agent(const Config& config, http::Registry& metrics, AgentOptions options)
    : config_(config),
      options_(std::move(options)),
      m_{metrics.counter("pgcqrs_master_published_total", "Events published to the broker"),
         metrics.counter("pgcqrs_master_confirmed_total", "Publishes the broker confirmed (ack)"),
         metrics.counter("pgcqrs_master_nacked_total", "Publishes the broker refused (nack)"),
         metrics.counter("pgcqrs_master_returned_total",
                         "Mandatory publishes returned as unroutable (no queue bound)"),
         metrics.counter("pgcqrs_master_reconnects_total",
                         "Reconnects to the database or the broker after a failure"),
         metrics.counter("pgcqrs_master_failed_total",
                         "Outbox rows that could not be published, moved to cqrs.outbox_failed"),
         metrics.gauge("pgcqrs_master_outbox_backlog", "Rows waiting in cqrs.outbox"),
         metrics.gauge("pgcqrs_master_outbox_oldest_age_seconds",
                       "Age of the oldest row waiting in cqrs.outbox"),
         metrics.gauge("pgcqrs_master_outbox_failed_rows",
                       "Rows set aside in cqrs.outbox_failed (docs/master.md)"),
         metrics.gauge("pgcqrs_master_active", "1 while this agent holds the lock, else 0")} {}

void Agent::run() {
  Backoff backoff(BackoffPolicy{std::chrono::milliseconds(200), std::chrono::seconds(10)});
  while (!stop_requested()) {
    try {
      run_once();
      backoff.reset();
    } catch (const ConfigError&) {
      throw;  // retrying cannot help: exit 2 with the message
    } catch (const std::exception& e) {
      // anything else may heal (a server back, a migration run, a channel reopened): keep
      // the outbox, back off, start over
      // a fault after a long healthy stretch starts the backoff over: only faults in a row
      // should wait up to its cap
      if (state_ == AgentState::kActive && Clock::now() - active_since_ >= kHealthyStretch) {
        backoff.reset();
      }
      state_ = AgentState::kReconnecting;
      m_.active.set(0);
      m_.reconnects.inc();
      const auto delay = backoff.next();
      spdlog::warn("master agent: {}; reconnecting in {} ms", e.what(), delay.count());
      sleep_unless_stopped(delay);
    }
  }
  state_ = AgentState::kStopping;
  m_.active.set(0);
}

void Agent::run_once() {
  const MasterConfig& mc = *config_.master;
  pg::Session db(mc.database, options_.application_name);
  {
    pqxx::nontransaction txn(db.conn());
    txn.exec(kKeepalives);  // before the lock: a standby's session holds it next
  }

  // one active agent per master database: the others wait as hot standbys
  bool announced = false;
  for (;;) {
    pqxx::nontransaction txn(db.conn());
    if (txn.exec_params1(kTryLock, kAgentLockKey)[0].as<bool>()) break;
    if (!announced) {
      const int holder = txn.exec_params1(kLockHolderSql, kAgentLockKey)[0].as<int>();
      spdlog::info("master agent: standby; the agent with backend pid {} is active", holder);
      announced = true;
    }
    state_ = AgentState::kStandby;
    if (sleep_unless_stopped(options_.standby_poll)) return;
  }
  spdlog::info("master agent: active on {}", db.masked_url());
  {
    pqxx::nontransaction txn(db.conn());
    if (!txn.exec1("SELECT to_regclass('cqrs.outbox') IS NOT NULL")[0].as<bool>()) {
      throw ConfigError("master database " + db.masked_url() +
                        ": schema cqrs has no outbox; run `pgcqrs migrate` first");
    }
    // an outbox older than this agent (a batch column it reads is missing, say): the agent
    // would fail at every read; the operator upgrades the schema with the triggers
    const auto pending = pg::pending_migrations(txn, "master", migrations());
    if (!pending.empty()) {
      throw ConfigError("master database " + db.masked_url() + ": schema cqrs lacks migration " +
                        std::string(pending.front().name) +
                        " of this pgcqrs; run `pgcqrs migrate` first");
    }
  }

  // holding the lock, not publishing yet: /readyz must not say standby meanwhile
  state_ = AgentState::kReconnecting;
  pg::Listener listener(mc.database, options_.application_name + " listener");
  listener.listen(std::string(kOutboxChannel));

  Outbox outbox(db);
  auto last_backlog = Clock::now() - options_.backlog_refresh;
  const auto refresh_backlog = [&] {
    if (Clock::now() - last_backlog < options_.backlog_refresh) return;
    const Backlog b = outbox.backlog();
    m_.backlog.set(static_cast<double>(b.rows));
    m_.oldest_age.set(b.oldest_age_seconds);
    m_.failed_rows.set(static_cast<double>(b.failed));
    last_backlog = Clock::now();
  };

  // the backlog metrics stay current while the broker is away: that is when they matter
  const amqp::Url url = amqp::parse_url(config_.broker.url);
  amqp::Connection conn = [&] {
    Backoff backoff(BackoffPolicy{std::chrono::milliseconds(200), std::chrono::seconds(10)});
    for (int attempt = 1;; ++attempt) {
      refresh_backlog();
      try {
        return amqp::Connection(
            url, amqp::ConnectOptions{options_.application_name, std::chrono::milliseconds(30000)});
      } catch (const amqp::ConnectionError& e) {
        const auto delay = backoff.next();
        spdlog::warn("{} (attempt {}); retrying in {} ms", e.what(), attempt, delay.count());
        if (sleep_unless_stopped(delay)) throw;
      }
    }
  }();
  amqp::Channel ch = conn.open_channel();
  ch.declare_exchange(config_.broker.exchange, "topic", true);
  ch.enable_confirms();
  spdlog::info("master agent: publishing to exchange '{}' on {}", config_.broker.exchange,
               conn.masked_url());

  state_ = AgentState::kActive;
  active_since_ = Clock::now();
  m_.active.set(1);
  amqp::PublishOptions props;
  props.mandatory = true;

  const auto window = static_cast<std::size_t>(std::max(1, mc.confirm_window));
  // read ahead once half the window is free: each read also scans the ids at or below the
  // cursor (those in flight), so fewer, larger reads cost the database less per event
  const std::size_t min_read = std::max<std::size_t>(1, window / 2);
  // ids at or below the cursor are the rows in flight or acked but not deleted (about 2
  // windows + a delete batch; more while a slow confirm holds the acked rows above it back,
  // which stops the reads until it comes or confirm_timeout passes) plus rows that committed
  // late
  const int below_limit = static_cast<int>(2 * window + options_.delete_batch + 64);

  OutboxConfirms confirms;  // published rows until they are deleted
  std::int64_t cursor = 0;  // highest id read in id order
  auto linger_until = Clock::now() + options_.linger;
  // holding kAgentAwakeLockKey: writers skip their notifications, this loop reads anyway
  bool awake = false;
  auto next_awake_try = Clock::now();
  const auto take_awake = [&] {
    if (Clock::now() < next_awake_try) return;
    try {
      pqxx::work txn(db.conn());
      txn.exec("SET LOCAL lock_timeout = " + std::to_string(kAwakeLockWait.count()));
      txn.exec_params(kLock, kAgentAwakeLockKey);
      txn.commit();  // the lock is the session's: it outlives the transaction
      awake = true;
    } catch (const pqxx::sql_error& e) {
      if (e.sqlstate() != "55P03") throw;  // lock_not_available: writers notify meanwhile
      next_awake_try = Clock::now() + kAwakeRetry;
    }
  };
  const auto release_awake = [&] {
    pqxx::nontransaction txn(db.conn());
    txn.exec_params1(kUnlock, kAgentAwakeLockKey);
    awake = false;
  };
  auto last_confirm = Clock::now();
  bool blocked_logged = false;  // the broker's block is logged when it starts and ends
  std::unordered_map<std::string, Clock::time_point> last_return_log;
  std::unordered_map<std::string, std::int64_t> returns_unlogged;
  auto last_vacuum = Clock::now();
  std::int64_t deleted_since_vacuum = 0;

  // deletes the confirmed rows below every unconfirmed one (OutboxConfirms says why)
  const auto flush = [&] {
    if (confirms.done() == 0) return;
    const std::vector<std::int64_t> ids = confirms.take_deletable();
    if (ids.empty()) return;
    outbox.remove(ids);
    deleted_since_vacuum += static_cast<std::int64_t>(ids.size());
  };
  const auto maybe_vacuum = [&] {
    if (deleted_since_vacuum < options_.vacuum_after_rows ||
        Clock::now() - last_vacuum < options_.vacuum_every) {
      return;
    }
    flush();
    const auto t0 = Clock::now();
    if (outbox.vacuum()) {
      spdlog::debug(
          "master agent: vacuumed cqrs.outbox after {} deletes in {} ms", deleted_since_vacuum,
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
    }
    last_vacuum = Clock::now();
    deleted_since_vacuum = 0;
  };
  // Takes settled publishes: acked rows are queued for deletion; a nack deletes the acked rows
  // below it and starts over (throws), unless `nack_throws` is false (stopping).
  const auto absorb = [&](const amqp::Confirms& c, bool nack_throws) {
    for (const auto& r : ch.take_returns()) {
      m_.returned.inc();
      // once a minute per routing key: a model nobody consumes would flood the log otherwise
      auto& last = last_return_log[r.routing_key];
      auto& quiet = returns_unlogged[r.routing_key];
      if (last != Clock::time_point{} && Clock::now() - last < kReturnLogEvery) {
        ++quiet;
        continue;
      }
      spdlog::warn(
          "master agent: event outbox id={} returned by the broker: {} {}; no queue is "
          "bound for routing key '{}' (is a replica consuming it?){}",
          r.message_id, r.reply_code, r.reply_text, r.routing_key,
          quiet == 0 ? std::string()
                     : "; " + std::to_string(quiet) + " more returned since the last report");
      last = Clock::now();
      quiet = 0;
    }
    if (c.empty()) return;
    last_confirm = Clock::now();
    for (const auto tag : c.acked)
      confirms.acked(tag);
    m_.confirmed.inc(c.acked.size());
    if (c.nacked.empty()) return;
    m_.nacked.inc(c.nacked.size());
    const std::int64_t first = confirms.id_of(c.nacked.front());
    const std::string id = first == 0 ? "?" : std::to_string(first);
    if (!nack_throws) return;
    flush();
    throw TransientError("publish outbox id=" + id + ": " + std::to_string(c.nacked.size()) +
                         " nacked by the broker, " + std::to_string(confirms.in_flight()) +
                         " unconfirmed in all; publishing them and the rows after them again");
  };
  // A row that cannot become messages (not one the generated triggers write) is moved to
  // cqrs.outbox_failed with the reason, and publishing goes on with the next rows: retrying
  // it would fail again and hold up every row of the database behind it.
  const auto set_aside = [&](const OutboxRow& row, const std::string& why) {
    {
      // a row of a newer format is not malformed: this agent is older than the schema (an
      // upgrade ran under it). Stop, exit 2, and leave the row to the new agent.
      pqxx::nontransaction txn(db.conn());
      pg::pending_migrations(txn, "master", migrations());
    }
    outbox.park(row.id, why);
    m_.failed.inc();
    spdlog::error(
        "master agent: outbox id={} ({} {}) cannot be published: {}; moved to "
        "cqrs.outbox_failed, publishing goes on (docs/master.md, \"Rows that cannot be "
        "published\")",
        row.id, row.cqrs_id, row.signal, why);
  };
  std::vector<std::string> bodies;
  // Publishes the events `rows` holds, in order; returns how many it handled (went out, or
  // were set aside: progress either way). The events of one outbox row (a batch row has many)
  // are built before any is published: a row goes out whole or is set aside whole.
  const auto publish = [&](const std::vector<OutboxRow>& rows, Timestamp now) {
    std::size_t handled = 0;
    for (std::size_t i = 0; i < rows.size();) {
      std::size_t end = i + 1;
      while (end < rows.size() && rows[end].id == rows[i].id)
        ++end;
      const OutboxRow& first = rows[i];
      if (first.error) {
        set_aside(first, *first.error);
        handled += end - i;
        i = end;
        continue;
      }
      bodies.clear();
      try {
        for (std::size_t k = i; k < end; ++k)
          bodies.push_back(build_body(rows[k], now, mc.message_ttl));
      } catch (const MessageError& e) {
        set_aside(first, e.what());
        handled += end - i;
        i = end;
        continue;
      }
      if (confirms.in_flight() == 0) last_confirm = Clock::now();  // the timeout starts now
      for (std::size_t k = i; k < end; ++k) {
        const OutboxRow& row = rows[k];
        props.message_id = std::to_string(row.id);
        if (row.index > 0) {
          props.message_id.push_back('.');
          props.message_id.append(std::to_string(row.index));
        }
        confirms.published(ch.publish(config_.broker.exchange, row.cqrs_id, bodies[k - i], props),
                           row.id);
        m_.published.inc();
        ++handled;
      }
      i = end;
    }
    return handled;
  };

  try {
    while (!stop_requested()) {
      refresh_backlog();
      if (conn.blocked()) {
        if (!blocked_logged) {
          spdlog::warn("master agent: broker blocks publishing ({}); waiting",
                       conn.blocked_reason());
          blocked_logged = true;
        }
        if (confirms.in_flight() > 0) absorb(ch.poll_confirms(std::chrono::milliseconds(0)), true);
        flush();
        conn.process_events(std::chrono::milliseconds(500));
        continue;
      }
      if (blocked_logged) {
        spdlog::info("master agent: broker unblocked; publishing again");
        blocked_logged = false;
      }
      if (confirms.in_flight() > 0) absorb(ch.poll_confirms(std::chrono::milliseconds(0)), true);
      if (confirms.done() >= options_.delete_batch) flush();

      // read ahead while the window has room: rows after the cursor, in id order, and first
      // any row at or below it that committed after the cursor passed its id (a row's older
      // event always commits before its newer one is written, so publishing the late rows
      // first keeps every row's events in revision order)
      std::size_t published = 0;
      bool caught_up = false;
      const std::size_t room = window - std::min(window, confirms.in_flight());
      if (room >= min_read) {
        flush();  // deleted first, the acked rows drop out of the read's scan of known ids
        const Fetched f = outbox.fetch_after(cursor, static_cast<int>(room), below_limit);
        std::vector<std::int64_t> late;
        bool late_cut = false;
        for (const auto id : f.below) {
          if (!confirms.known(id)) late.push_back(id);
        }
        const Timestamp now = now_utc();
        // the read's events leave in full TCP segments: the broker reads them in fewer, larger
        // reads, and the agent's sends cost less (docs/benchmarks.md, "1-row statements, the
        // agent's cork and the drain's harness")
        std::optional<amqp::Cork> cork;
        if (!late.empty() || !f.ahead.empty()) cork.emplace(conn);
        if (!late.empty()) {
          spdlog::debug(
              "master agent: {} outbox row(s) committed after higher ids were read (first "
              "id={}); publishing them first",
              late.size(), late.front());
          // as many as the window has room for: a late bulk statement's batch rows hold up
          // to 1,000 events each
          const std::vector<OutboxRow> rows = outbox.fetch_ids(late, static_cast<int>(room));
          late_cut = !rows.empty() && rows.back().id < late.back();
          published += publish(rows, now);
        }
        // with more late rows than one read returns or the window takes, the rows ahead wait
        // for the next read
        if (!f.below_truncated && !late_cut) {
          published += publish(f.ahead, now);
          if (!f.ahead.empty()) cursor = f.ahead.back().id;
          caught_up = f.ahead.size() < room;
        }
      }
      if (published > 0) {
        linger_until = Clock::now() + options_.linger;
        if (!awake) take_awake();
      }
      if (published > 0 && !caught_up) continue;

      if (confirms.in_flight() > 0) {
        // window full, or caught up with publishes in flight: wait for confirms a little
        if (caught_up) maybe_vacuum();
        const auto wait = room < min_read ? std::chrono::milliseconds(100) : options_.linger_poll;
        const amqp::Confirms c = ch.poll_confirms(wait);
        absorb(c, true);
        if (c.empty() && Clock::now() - last_confirm > options_.confirm_timeout) {
          throw TransientError(
              "publish outbox ids from " + std::to_string(confirms.first_in_flight_id()) + ": " +
              std::to_string(confirms.in_flight()) + " unconfirmed after " +
              std::to_string(options_.confirm_timeout.count()) + " ms; publishing them again");
        }
        continue;
      }

      // nothing in flight, nothing new: delete, maybe vacuum, then wait
      flush();
      maybe_vacuum();
      if (Clock::now() < linger_until) {
        // a short poll: writes whose notification the throttle skipped show up here
        listener.wait(options_.linger_poll);
        conn.process_events(std::chrono::milliseconds(0));
        continue;
      }
      if (awake) {
        // writers notify again from now on; the polls go on a little for those that skipped
        // their notification and have not committed yet
        release_awake();
        linger_until = Clock::now() + kAwakeGrace;
        continue;
      }
      // idle: wake on NOTIFY or after the poll interval; keep the broker's heartbeats going
      const auto until = Clock::now() + mc.poll_interval;
      while (!stop_requested() && Clock::now() < until) {
        if (!listener.wait(std::chrono::milliseconds(200)).empty()) break;
        conn.process_events(std::chrono::milliseconds(0));
      }
    }
    // stopping: publish nothing new, settle what is in flight, delete what was acked
    if (confirms.in_flight() > 0) {
      absorb(ch.wait_all_confirms(options_.confirm_timeout), false);
    }
    flush();
  } catch (...) {
    // whatever failed, rows the broker already acked need not be published again; when the
    // database is what failed this fails too and they are, harmlessly (at-least-once)
    try {
      flush();
    } catch (const std::exception& e) {
      spdlog::debug("master agent: could not delete {} acked row(s) before reconnecting: {}",
                    confirms.done(), e.what());
    }
    throw;
  }
  spdlog::info(
      "master agent: stopped; confirmed events are removed from the outbox, the others stay "
      "for the next agent");
}

}  // namespace pgcqrs::master
