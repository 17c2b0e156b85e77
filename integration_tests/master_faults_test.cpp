// Master agent under faults: concurrent writers, kill -9, broker restart, standby takeover.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <csignal>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <doctest/doctest.h>

#include "common/pg/listener.hpp"
#include "master/capture.hpp"
#include "support/master_fixture.hpp"

using namespace pgcqrs;
using namespace pgcqrs::it;
using namespace std::chrono_literals;

namespace {

const char* const kSchema = "CREATE TABLE counter (id integer PRIMARY KEY, n bigint NOT NULL);";
const char* const kModel = "[[master.model]]\ncqrs_id = \"counter\"\ntable = \"counter\"\n";

using Seen = std::map<std::int64_t, std::vector<std::int64_t>>;  // pk -> revisions in arrival order

void collect(const std::vector<json::Json>& msgs, Seen& seen) {
  for (const auto& m : msgs) {
    seen[m["instance_pk"].get<std::int64_t>()].push_back(
        m["instance_data"]["cqrs_revision"].get<std::int64_t>());
  }
}

// Every revision 0..final of every row arrived at least once; returns a description of the
// first hole, empty when there is none.
std::string first_missing(MasterFixture& f, const Seen& seen) {
  pqxx::nontransaction txn(*f.conn);
  for (const auto& row : txn.exec("SELECT id, cqrs_revision FROM counter ORDER BY id")) {
    const auto id = row[0].as<std::int64_t>();
    const auto final_rev = row[1].as<std::int64_t>();
    const auto it = seen.find(id);
    const std::set<std::int64_t> got =
        it == seen.end() ? std::set<std::int64_t>{}
                         : std::set<std::int64_t>(it->second.begin(), it->second.end());
    for (std::int64_t r = 0; r <= final_rev; ++r) {
      if (got.count(r) == 0) {
        return "row " + std::to_string(id) + " revision " + std::to_string(r) + " of " +
               std::to_string(final_rev) + " never arrived";
      }
    }
  }
  return {};
}

// The first arrival of each revision of a row comes in revision order (redeliveries after a
// fault may repeat earlier ones later); returns the first row where it does not, or "".
std::string first_out_of_order(const Seen& seen) {
  for (const auto& [id, revs] : seen) {
    std::set<std::int64_t> got;
    std::int64_t last = -1;
    for (const auto r : revs) {
      if (!got.insert(r).second) continue;
      if (r <= last) {
        return "row " + std::to_string(id) + ": revision " + std::to_string(r) +
               " first arrived after revision " + std::to_string(last);
      }
      last = r;
    }
  }
  return {};
}

// `rabbitmqctl -q <args>` against this run's broker; its exit status, its output in `out`.
int rabbitmqctl(const std::string& args, std::string* out) {
  return run_shell(". '" + std::string(std::getenv("PGCQRS_TEST_RMQ_BASE")) +
                       "/env.sh' && rabbitmqctl -q " + args + " 2>&1",
                   out);
}

// Drains the queue until `idle` passes without a message.
void drain(MasterFixture& f, Seen& seen, std::chrono::milliseconds idle = 5s) {
  for (;;) {
    auto msgs = f.take(100000, idle);
    if (msgs.empty()) return;
    collect(msgs, seen);
  }
}

}  // namespace

TEST_CASE("two writers hammering the same rows: revisions strictly increase, in order") {
  MasterFixture f(kSchema, kModel, {"counter"});
  f.sql("INSERT INTO counter SELECT g, 0 FROM generate_series(1, 10) g");
  f.start_agent();
  auto writer = [&f](unsigned seed) {
    pqxx::connection c(f.db.url());
    std::mt19937 rng(seed);
    for (int i = 0; i < 400; ++i) {
      pqxx::work txn(c);
      txn.exec_params("UPDATE counter SET n = n + 1 WHERE id = $1",
                      static_cast<int>(rng() % 10 + 1));
      txn.commit();
    }
  };
  std::thread a(writer, 1);
  std::thread b(writer, 2);
  a.join();
  b.join();
  Seen seen;
  drain(f, seen, 3s);
  CHECK(first_missing(f, seen).empty());
  std::size_t total = 0;
  for (const auto& [id, revs] : seen) {
    total += revs.size();
    CHECK_MESSAGE(
        std::adjacent_find(revs.begin(), revs.end(), std::greater_equal<>()) == revs.end(),
        "row " << id << " revisions not strictly increasing");
  }
  CHECK(total == 810);  // 10 inserts + 800 updates, each exactly once without faults
}

TEST_CASE("kill -9 of the agent at random moments during 50,000 writes loses nothing") {
  MasterFixture f(kSchema, kModel, {"counter"});
  Process* agent = &f.start_agent();
  std::atomic<bool> done{false};
  std::thread writer([&f, &done] {
    pqxx::connection c(f.db.url());
    // 10,000 transactions x (3 inserts + 2 updates) = 50,000 row writes
    for (int t = 0; t < 10000; ++t) {
      pqxx::work txn(c);
      txn.exec_params(
          "INSERT INTO counter SELECT g, 0 FROM generate_series($1::int, $1::int + 2) g", t * 3);
      txn.exec_params("UPDATE counter SET n = n + 1 WHERE id BETWEEN $1::int AND $1::int + 1",
                      t * 3);
      txn.commit();
    }
    done = true;
  });
  std::mt19937 rng(7);
  int kills = 0;
  Seen seen;
  while (!done) {
    collect(f.take(100000, 50ms, std::chrono::milliseconds(100 + rng() % 400)), seen);
    agent->signal(SIGKILL);
    agent->wait(5s);
    ++kills;
    agent = &f.start_agent();
  }
  writer.join();
  drain(f, seen);
  MESSAGE("agent killed " << kills << " times");
  CHECK(kills >= 3);
  CHECK(f.scalar("SELECT count(*) FROM counter") == "30000");
  CHECK(first_missing(f, seen) == "");
  CHECK(f.scalar("SELECT count(*) FROM cqrs.outbox") == "0");
}

TEST_CASE("RabbitMQ stopped or killed and restarted during a write stream: nothing missing") {
  bool kill = false;
  SUBCASE("stopped") {}
  // SIGKILL: no graceful close; publishes in flight are never confirmed
  SUBCASE("killed") {
    kill = true;
  }
  CAPTURE(kill);
  MasterFixture f(kSchema, kModel, {"counter"});
  f.start_agent();
  std::atomic<int> written{0};
  std::atomic<bool> stop{false};
  // five hot rows updated all along: their events must keep their order across the restart
  f.sql("INSERT INTO counter SELECT -g, 0 FROM generate_series(1, 5) g");
  std::thread writer([&] {
    pqxx::connection c(f.db.url());
    for (int i = 0; !stop; ++i) {
      pqxx::work txn(c);
      txn.exec_params("INSERT INTO counter VALUES ($1, 0)", i);
      txn.exec_params("UPDATE counter SET n = n + 1 WHERE id = $1", -(i % 5 + 1));
      txn.commit();
      written = i + 1;
      std::this_thread::sleep_for(5ms);
    }
  });
  Seen seen;
  collect(f.take(100000, 1s, 1s), seen);
  auto t0 = std::chrono::steady_clock::now();
  if (kill) {
    kill_rabbitmq();
  } else {
    stop_rabbitmq();
  }
  MESSAGE("broker stopped in " << std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::steady_clock::now() - t0)
                                      .count()
                               << " ms");
  std::this_thread::sleep_for(2s);
  t0 = std::chrono::steady_clock::now();
  start_rabbitmq();
  MESSAGE("broker started in " << std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::steady_clock::now() - t0)
                                      .count()
                               << " ms");
  stop = true;
  writer.join();
  f.queue->reconnect();
  drain(f, seen);
  MESSAGE(written.load() << " rows written across the broker restart");
  CHECK(written > 100);
  CHECK(first_missing(f, seen) == "");
  CHECK(first_out_of_order(seen) == "");
}

TEST_CASE("a row committed after higher ids were published comes before its newer events") {
  MasterFixture f(kSchema, kModel, {"counter"});
  f.sql("INSERT INTO counter SELECT g, 0 FROM generate_series(1, 3) g");
  Process& agent = f.start_agent();
  Seen seen;
  collect(f.take(3), seen);
  // this transaction takes an outbox id for row 1 and stays open...
  pqxx::connection slow_conn(f.db.url());
  pqxx::work slow(slow_conn);
  slow.exec("UPDATE counter SET n = n + 1 WHERE id = 1");
  // ...while later ids are written and published: the agent reads past row 1's id
  f.sql("INSERT INTO counter SELECT g, 0 FROM generate_series(10, 2509) g");
  for (int i = 0; i < 20; ++i)
    f.sql("UPDATE counter SET n = n + 1 WHERE id = 2");
  collect(f.take(2520), seen);
  REQUIRE(seen[2].size() == 21);
  // with the agent paused, row 1's event commits late and a newer one follows it: the next
  // read sees both, the late one below the agent's position
  agent.signal(SIGSTOP);
  slow.commit();
  f.sql("UPDATE counter SET n = n + 1 WHERE id = 1");
  agent.signal(SIGCONT);
  drain(f, seen, 3s);
  CHECK(first_missing(f, seen) == "");
  CHECK(seen[1] == std::vector<std::int64_t>{0, 1, 2});
  CHECK(agent.log().find("committed after higher ids were read") != std::string::npos);
  CHECK(first_out_of_order(seen) == "");
  CHECK(eventually([&] { return f.scalar("SELECT count(*) FROM cqrs.outbox") == "0"; }, 10s));
}

namespace {
// Starts the agent and waits until it is past its short polls after start: from then on it
// waits on NOTIFY, or on its poll interval.
void start_listening_agent(MasterFixture& f) {
  Process& agent = f.start_agent();
  REQUIRE(eventually(
      [&] { return agent.log().find("master agent: publishing") != std::string::npos; }, 10s));
  std::this_thread::sleep_for(3s);
}

// One INSERT into counter in a session of its own: the session's NOTIFY throttle lets it notify.
void write_in_new_session(const MasterFixture& f, int id) {
  pqxx::connection c(f.db.url());
  pqxx::work txn(c);
  txn.exec_params("INSERT INTO counter VALUES ($1, 0)", id);
  txn.commit();
}
}  // namespace

TEST_CASE("throttled notifications: a session's quick successive writes arrive promptly") {
  // a poll interval far longer than the test: only NOTIFY and the agent's short polls after
  // work can explain prompt arrivals
  MasterFixture f(kSchema, kModel, {"counter"}, "poll_interval_ms = 60000\n");
  start_listening_agent(f);
  pg::Listener listener(f.db.url(), "test listener");
  listener.listen("pgcqrs_outbox");
  pqxx::connection c(f.db.url());
  constexpr int kWrites = 40;
  for (int i = 0; i < kWrites; ++i) {
    pqxx::work txn(c);
    txn.exec_params("INSERT INTO counter VALUES ($1, 0)", i);
    txn.commit();
    std::this_thread::sleep_for(10ms);
  }
  const auto last_commit = std::chrono::steady_clock::now();
  const auto msgs = f.take(kWrites, 5s, 10s);
  const auto took = std::chrono::steady_clock::now() - last_commit;
  MESSAGE("the last of " << kWrites << " writes 10 ms apart arrived within "
                         << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                         << " ms of its commit");
  CHECK(msgs.size() == kWrites);
  CHECK(took < 2s);
  std::size_t notifications = 0;
  for (auto n = listener.wait(500ms); !n.empty(); n = listener.wait(200ms))
    notifications += n.size();
  MESSAGE(notifications << " notifications for " << kWrites << " transactions of one session");
  CHECK(notifications >= 1);
  CHECK(notifications <= kWrites / 2);

  // idle again, a new session's first write notifies at once
  std::this_thread::sleep_for(3s);
  const auto t0 = std::chrono::steady_clock::now();
  f.sql("INSERT INTO counter VALUES (1000, 0)");
  REQUIRE(f.take(1, 5s, 10s).size() == 1);
  CHECK(std::chrono::steady_clock::now() - t0 < 1s);
}

TEST_CASE("writers do not notify while the agent holds its awake lock") {
  // no agent: this connection plays the awake agent's part
  MasterFixture f(kSchema, kModel, {"counter"});
  pg::Listener listener(f.db.url(), "test listener");
  listener.listen("pgcqrs_outbox");
  const auto write = [&](int id) { write_in_new_session(f, id); };
  write(1);
  CHECK(listener.wait(2s).size() == 1);

  pqxx::connection agent(f.db.url());
  pqxx::nontransaction a(agent);
  a.exec_params("SELECT pg_advisory_lock($1)", master::kAgentAwakeLockKey);
  write(2);
  write(3);
  CHECK(listener.wait(500ms).empty());
  CHECK(f.scalar("SELECT coalesce(sum(events), 0) FROM cqrs.outbox") == "3");

  a.exec_params("SELECT pg_advisory_unlock($1)", master::kAgentAwakeLockKey);
  write(4);
  CHECK(listener.wait(2s).size() == 1);
}

TEST_CASE("many sessions writing while the agent polls: they skip their notifications") {
  // a poll interval far longer than the test: only NOTIFY and the agent's short polls after
  // work can explain prompt arrivals
  MasterFixture f(kSchema, kModel, {"counter"}, "poll_interval_ms = 60000\n");
  start_listening_agent(f);
  const std::string awake_held =
      "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
      "AND mode = 'ExclusiveLock' AND database = (SELECT oid FROM pg_database WHERE datname = "
      "current_database()) AND ((classid::bigint << 32) | objid::bigint) = " +
      std::to_string(master::kAgentAwakeLockKey);
  CHECK(f.scalar(awake_held) == "0");
  pg::Listener listener(f.db.url(), "test listener");
  listener.listen("pgcqrs_outbox");
  const auto write = [&](int id) { write_in_new_session(f, id); };
  // the first write notifies the idle agent, which publishes it and takes its lock
  write(0);
  REQUIRE(eventually([&] { return f.scalar(awake_held) == "1"; }, 5s));
  // each later session's first write passes its own throttle: without the lock every one of
  // them would notify
  constexpr int kSessions = 16;
  for (int i = 1; i < kSessions; ++i) {
    write(i);
    std::this_thread::sleep_for(20ms);
  }
  const auto last_commit = std::chrono::steady_clock::now();
  const auto msgs = f.take(kSessions, 5s, 10s);
  const auto took = std::chrono::steady_clock::now() - last_commit;
  CHECK(msgs.size() == kSessions);
  CHECK(took < 2s);
  std::size_t notifications = 0;
  for (auto n = listener.wait(200ms); !n.empty(); n = listener.wait(200ms))
    notifications += n.size();
  MESSAGE(notifications << " notification(s) for the first writes of " << kSessions
                        << " sessions, 20 ms apart");
  CHECK(notifications == 1);

  // its polls over, the agent lets go of the lock, and a write notifies at once again
  CHECK(eventually([&] { return f.scalar(awake_held) == "0"; }, 5s));
  const auto t0 = std::chrono::steady_clock::now();
  f.sql("INSERT INTO counter VALUES (1000, 0)");
  REQUIRE(f.take(1, 5s, 10s).size() == 1);
  CHECK(std::chrono::steady_clock::now() - t0 < 1s);
  CHECK(listener.wait(1s).size() == 1);
}

TEST_CASE("a standby agent takes over within seconds after kill -9 of the active one") {
  MasterFixture f(kSchema, kModel, {"counter"});
  Process& first = f.start_agent();
  REQUIRE(eventually([&] { return first.log().find("master agent: active") != std::string::npos; },
                     10s));
  Process& second = f.start_agent();
  REQUIRE(eventually([&] { return second.log().find("standby") != std::string::npos; }, 10s));
  f.sql("INSERT INTO counter VALUES (1, 0)");
  REQUIRE(f.take(1).size() == 1);
  first.signal(SIGKILL);
  const auto killed_at = std::chrono::steady_clock::now();
  f.sql("INSERT INTO counter VALUES (2, 0)");
  // row 1 may come again (the first agent may have died before deleting it): at-least-once
  bool got_2 = false;
  while (!got_2) {
    const auto msgs = f.take(1, 20s);
    REQUIRE_MESSAGE(msgs.size() == 1, second.log());
    got_2 = msgs[0]["instance_pk"] == 2;
  }
  const auto took = std::chrono::steady_clock::now() - killed_at;
  MESSAGE(
      "standby published " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                           << " ms after the kill");
  CHECK(took < 10s);
}

TEST_CASE("SIGTERM: the agent stops reading, settles what is in flight, deletes it, exits 0") {
  MasterFixture f(kSchema, kModel, {"counter"});
  // one outbox row per event, several seconds of publishing
  constexpr int kRows = 50000;
  std::string writes;
  for (int id = 1; id <= kRows; ++id)
    writes += "INSERT INTO counter VALUES (" + std::to_string(id) + ", 0);";
  f.sql(writes);
  const auto waiting = [&] { return std::stoll(f.scalar("SELECT count(*) FROM cqrs.outbox")); };
  REQUIRE(waiting() == kRows);
  Process& agent = f.start_agent();
  REQUIRE(eventually([&] { return waiting() < kRows; }, 10s));
  agent.signal(SIGTERM);
  CHECK(agent.wait(15s) == 0);
  CHECK(agent.log().find("master agent: stopped") != std::string::npos);
  Seen seen;
  drain(f, seen, 2s);
  std::set<std::int64_t> left;
  {
    pqxx::nontransaction txn(*f.conn);
    for (const auto& row :
         txn.exec("SELECT coalesce(instance_pk::text, batch[1]) FROM cqrs.outbox"))
      left.insert(row[0].as<std::int64_t>());
  }
  MESSAGE(seen.size() << " rows published before the agent stopped, " << left.size() << " left");
  // it stopped reading: the rest waits for the next agent
  CHECK(!left.empty());
  // nothing lost, and every row it published was confirmed and then deleted: a row still in
  // the outbox that was also delivered means it exited before settling its publishes
  std::int64_t lost = 0;
  std::int64_t both = 0;
  for (std::int64_t id = 1; id <= kRows; ++id) {
    const bool delivered = seen.count(id) > 0;
    const bool kept = left.count(id) > 0;
    if (!delivered && !kept) ++lost;
    if (delivered && kept) ++both;
  }
  CHECK(lost == 0);
  CHECK(both == 0);
}

TEST_CASE("database restarted under the agent: it reconnects and catches up") {
  MasterFixture f(kSchema, kModel, {"counter"});
  Process& agent = f.start_agent();
  f.sql("INSERT INTO counter VALUES (1, 0)");
  REQUIRE(f.take(1).size() == 1);
  f.conn.reset();
  stop_postgres();
  std::this_thread::sleep_for(2s);
  start_postgres();
  f.conn = std::make_unique<pqxx::connection>(f.db.url());
  f.sql("INSERT INTO counter VALUES (2, 0)");
  const auto msgs = f.take(1, 30s);
  REQUIRE_MESSAGE(msgs.size() == 1, agent.log());
  CHECK(msgs[0]["instance_pk"] == 2);
  CHECK(agent.running());
  CHECK(agent.log().find("reconnecting in") != std::string::npos);
}

TEST_CASE("broker blocked by a resource alarm: the outbox grows, nothing is dropped") {
  MasterFixture f(kSchema, kModel, {"counter"});
  Process& agent = f.start_agent();
  f.sql("INSERT INTO counter VALUES (0, 0)");
  Seen seen;
  collect(f.take(1), seen);
  REQUIRE(seen.size() == 1);
  auto ctl = [](const std::string& args) {
    std::string out;
    REQUIRE_MESSAGE(rabbitmqctl(args, &out) == 0, out);
  };
  ctl("set_vm_memory_high_watermark 0");
  f.sql("INSERT INTO counter SELECT g, 0 FROM generate_series(1, 500) g");
  std::this_thread::sleep_for(3s);
  const auto waiting = std::stoll(f.scalar("SELECT count(*) FROM cqrs.outbox"));
  ctl("set_vm_memory_high_watermark 0.4");
  MESSAGE(waiting << " events waited in the outbox while the broker was blocked");
  CHECK(waiting > 0);
  drain(f, seen, 5s);
  CHECK(first_missing(f, seen) == "");
  CHECK(f.scalar("SELECT count(*) FROM cqrs.outbox") == "0");
  CHECK(agent.running());
  // one line when the block starts and one when it ends, not one every half second
  const std::string log = agent.log();
  const auto count = [&log](const std::string& what) {
    std::size_t n = 0;
    for (auto at = log.find(what); at != std::string::npos; at = log.find(what, at + 1))
      ++n;
    return n;
  };
  CHECK_MESSAGE(count("broker blocks publishing") == 1, log);
  CHECK(count("broker unblocked; publishing again") == 1);
}

// Nacks lose nothing, and each row's last copy to arrive is its newest event (the order of
// deletions that guarantees it is unit-tested in tests/master/outbox_confirms_test.cpp: which
// publishes a broker nacks here is up to its timing).
TEST_CASE("nacks from a full queue: everything is published again, each row ends newest") {
  MasterFixture f(kSchema, kModel, {"counter"});
  auto ctl = [](const std::string& args) {
    std::string out;
    REQUIRE_MESSAGE(rabbitmqctl(args, &out) == 0, out);
  };
  // the queue takes 10 messages; the broker nacks every publish to it beyond that
  ctl("set_policy pgcqrs-it-nack '^" + f.queue->queue() +
      "$' '{\"max-length\": 10, \"overflow\": \"reject-publish\"}' --apply-to queues");
  struct ClearPolicy {  // also when a check below throws; never throws itself
    ~ClearPolicy() {
      std::string out;
      rabbitmqctl("clear_policy pgcqrs-it-nack", &out);
    }
  } clear_policy;
  // 10 rows with 4 revisions each, one outbox row per event, a row's revisions interleaved
  // with the other rows': 40 events, of which the first publishes only 10 fit
  std::string writes;
  for (int id = 1; id <= 10; ++id)
    writes += "INSERT INTO counter VALUES (" + std::to_string(id) + ", 0);";
  for (int round = 1; round <= 3; ++round) {
    for (int id = 1; id <= 10; ++id)
      writes += "UPDATE counter SET n = n + 1 WHERE id = " + std::to_string(id) + ";";
  }
  f.sql(writes);
  Process& agent = f.start_agent();
  // nobody consumes yet: the queue fills up and the broker nacks the rest
  CHECK_MESSAGE(
      eventually([&] { return agent.log().find("nacked by the broker") != std::string::npos; },
                 10s),
      agent.log());
  Seen seen;
  drain(f, seen, 8s);
  CHECK(first_missing(f, seen) == "");
  for (const auto& [id, revs] : seen) {
    CAPTURE(id);
    CHECK(revs.back() == 3);
  }
  CHECK(eventually([&] { return f.scalar("SELECT count(*) FROM cqrs.outbox") == "0"; }, 10s));
  CHECK(agent.running());
}

TEST_CASE("an agent older than the schema leaves a row it cannot read and exits 2") {
  MasterFixture f(kSchema, kModel, {"counter"});
  Process& agent = f.start_agent();
  f.sql("INSERT INTO counter VALUES (1, 0)");
  REQUIRE(f.take(1).size() == 1);
  // a newer pgcqrs migrated the schema under the running agent and writes a row it cannot read
  f.sql(
      "INSERT INTO cqrs.schema_migrations (component, version, name)"
      " VALUES ('master', 99, '0099_future.sql');"
      "INSERT INTO cqrs.outbox (cqrs_id, signal, instance_pk, instance_data)"
      " VALUES ('counter', 'UPSERT', '2', '{\"id\": 2}');");
  CHECK(agent.wait(10s) == 2);
  CHECK_MESSAGE(
      agent.log().find("at migration 99 but this pgcqrs knows only up to") != std::string::npos,
      agent.log());
  CHECK(f.scalar("SELECT count(*) FROM cqrs.outbox WHERE signal = 'UPSERT'") == "1");
  CHECK(f.scalar("SELECT count(*) FROM cqrs.outbox_failed") == "0");
}
