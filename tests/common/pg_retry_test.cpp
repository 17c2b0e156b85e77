// The retry loop itself, without a server: fake work throws what libpqxx throws.
#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

#include "common/error.hpp"
#include "common/pg/pqxx.hpp"
#include "common/pg/retry.hpp"
#include "common/pg/session.hpp"
#include "common/signals.hpp"

using namespace pgcqrs;
using namespace std::chrono_literals;
using pg::FailureKind;
using pg::InDoubtError;
using pg::RetryPolicy;
using pg::SqlError;
using pg::with_retry;
using ms = std::chrono::milliseconds;

namespace {

// libpq's texts, as libpqxx passes them on.
constexpr const char* kSerialization =
    "ERROR:  could not serialize access due to concurrent update\n";
constexpr const char* kRefused = "connect to postgresql://u:****@h/db: connection refused";

struct FakeSession {
  int reconnects = 0;
  int failing_reconnects = 0;  // the first N reconnect() calls fail
  bool open = true;

  void reconnect() {
    ++reconnects;
    if (failing_reconnects > 0) {
      --failing_reconnects;
      open = false;
      throw TransientError(kRefused);
    }
    open = true;
  }
  [[nodiscard]] bool is_open() const { return open; }
};
static_assert(pg::Reconnectable<FakeSession>);
static_assert(pg::Reconnectable<pg::Session>);

// Records the backoff delays instead of sleeping; `stop_at` > 0 reports a stop on that sleep.
struct SleepRecorder {
  std::vector<ms> delays;
  std::size_t stop_at = 0;
};

RetryPolicy policy(SleepRecorder& sleeps, int max_attempts) {
  RetryPolicy p;
  p.what = "claim batch";
  p.max_attempts = max_attempts;
  p.backoff = BackoffPolicy{10ms, 40ms, 2.0, 0.0};
  p.sleep = [&sleeps](ms d) {
    sleeps.delays.push_back(d);
    return sleeps.stop_at != 0 && sleeps.delays.size() >= sleeps.stop_at;
  };
  return p;
}

// Silences the retry loop's warnings for the duration of a test.
struct QuietLog {
  spdlog::level::level_enum old = spdlog::get_level();
  QuietLog() { spdlog::set_level(spdlog::level::off); }
  ~QuietLog() { spdlog::set_level(old); }
  QuietLog(const QuietLog&) = delete;
  QuietLog& operator=(const QuietLog&) = delete;
};

struct StopGuard {
  StopGuard() { reset_stop(); }
  ~StopGuard() { reset_stop(); }
  StopGuard(const StopGuard&) = delete;
  StopGuard& operator=(const StopGuard&) = delete;
};

}  // namespace

TEST_CASE("pg retry: success at the first attempt returns the work's value") {
  QuietLog quiet;
  FakeSession s;
  SleepRecorder sleeps;
  int calls = 0;
  const int v = with_retry(
      s, [&](FakeSession&) { return ++calls * 42; }, policy(sleeps, 3));
  CHECK(v == 42);
  CHECK(calls == 1);
  CHECK(sleeps.delays.empty());
  CHECK(s.reconnects == 0);

  // Move-only results and void work.
  auto p = with_retry(
      s, [](FakeSession&) { return std::make_unique<int>(7); }, policy(sleeps, 1));
  CHECK(*p == 7);
  with_retry(
      s, [&](FakeSession&) { ++calls; }, policy(sleeps, 1));
  CHECK(calls == 2);
}

TEST_CASE("pg retry: succeeds after k transient failures, backing off between them") {
  QuietLog quiet;
  FakeSession s;
  SleepRecorder sleeps;
  int calls = 0;
  const std::string v = with_retry(
      s,
      [&](FakeSession&) -> std::string {
        if (++calls <= 3) throw pqxx::serialization_failure(kSerialization);
        return "done";
      },
      policy(sleeps, 5));
  CHECK(v == "done");
  CHECK(calls == 4);
  CHECK(sleeps.delays == std::vector<ms>{10ms, 20ms, 40ms});
  CHECK(s.reconnects == 0);  // the connection stayed up
}

TEST_CASE("pg retry: every transient failure is retried on a live connection") {
  QuietLog quiet;
  // Each subcase throws `failure` once, then succeeds.
  std::function<void()> failure;
  SUBCASE("deadlock") {
    failure = [] { throw pqxx::deadlock_detected("ERROR:  deadlock detected\n"); };
  }
  SUBCASE("transaction_rollback") {
    failure = [] { throw pqxx::transaction_rollback("ERROR:  rolled back\n"); };
  }
  SUBCASE("40001 as a plain sql_error") {
    failure = [] { throw pqxx::sql_error("ERROR:  x\n", "SELECT 1", "40001"); };
  }
  SUBCASE("55P03 lock_not_available") {
    failure = [] {
      throw pqxx::sql_error("ERROR:  canceling statement due to lock timeout\n", "q", "55P03");
    };
  }
  SUBCASE("53100 disk_full") {
    failure = [] { throw pqxx::disk_full("ERROR:  could not extend file\n", "q", "53100"); };
  }
  SUBCASE("SqlError with a retryable sqlstate (from exec_script)") {
    failure = [] { throw SqlError("run script 'a.sql': ERROR: deadlock", "40P01"); };
  }
  SUBCASE("pgcqrs::TransientError") {
    failure = [] { throw TransientError("publish: broker busy"); };
  }
  FakeSession s;
  SleepRecorder sleeps;
  int calls = 0;
  with_retry(
      s,
      [&](FakeSession&) {
        if (++calls == 1) failure();
      },
      policy(sleeps, 2));
  CHECK(calls == 2);
  CHECK(sleeps.delays.size() == 1);
  CHECK(s.reconnects == 0);
}

TEST_CASE("pg retry: a broken connection is re-opened before the next attempt") {
  QuietLog quiet;
  SleepRecorder sleeps;
  std::function<void(FakeSession&)> failure;
  SUBCASE("broken_connection") {
    failure = [](FakeSession& fs) {
      fs.open = false;
      throw pqxx::broken_connection("server closed the connection unexpectedly\n");
    };
  }
  SUBCASE("too_many_connections") {
    failure = [](FakeSession&) {
      throw pqxx::too_many_connections("FATAL:  sorry, too many clients already\n");
    };
  }
  SUBCASE("57P01 admin_shutdown, even while libpq still thinks the connection is up") {
    failure = [](FakeSession&) {
      throw pqxx::sql_error("FATAL:  terminating connection due to administrator command\n", "q",
                            "57P01");
    };
  }
  SUBCASE("TransientError while the connection is closed") {
    failure = [](FakeSession& fs) {
      fs.open = false;
      throw TransientError("database postgresql://h/db: not connected");
    };
  }
  FakeSession s;
  int calls = 0;
  with_retry(
      s,
      [&](FakeSession& fs) {
        if (++calls == 1) failure(fs);
        CHECK(fs.open);
      },
      policy(sleeps, 2));
  CHECK(calls == 2);
  CHECK(s.reconnects == 1);
}

TEST_CASE("pg retry: a session known to be closed is reconnected before the first attempt") {
  QuietLog quiet;
  FakeSession s;
  s.open = false;
  s.failing_reconnects = 1;
  SleepRecorder sleeps;
  int calls = 0;
  with_retry(
      s,
      [&](FakeSession& fs) {
        ++calls;
        CHECK(fs.open);
      },
      policy(sleeps, 3));
  CHECK(calls == 1);         // the work never ran on a closed session
  CHECK(s.reconnects == 2);  // attempt 1 failed in reconnect()
  CHECK(sleeps.delays == std::vector<ms>{10ms});
}

TEST_CASE("pg retry: a failed reconnect uses up an attempt and is retried") {
  QuietLog quiet;
  FakeSession s;
  s.failing_reconnects = 2;
  SleepRecorder sleeps;
  int calls = 0;
  const int v = with_retry(
      s,
      [&](FakeSession& fs) {
        if (++calls == 1) {
          fs.open = false;
          throw pqxx::broken_connection("server closed the connection unexpectedly\n");
        }
        return calls;
      },
      policy(sleeps, 4));
  CHECK(v == 2);
  CHECK(calls == 2);         // the work ran at attempts 1 and 4
  CHECK(s.reconnects == 3);  // attempts 2 and 3 failed in reconnect()
  CHECK(sleeps.delays == std::vector<ms>{10ms, 20ms, 40ms});
}

TEST_CASE("pg retry: gives up after max attempts with the last cause") {
  QuietLog quiet;
  FakeSession s;
  SleepRecorder sleeps;
  int calls = 0;
  const auto always_fails = [&](FakeSession&) {
    ++calls;
    throw pqxx::serialization_failure(kSerialization);
  };
  CHECK_THROWS_WITH_AS(with_retry(s, always_fails, policy(sleeps, 3)),
                       "claim batch: gave up after 3 attempts: ERROR: could not serialize access "
                       "due to concurrent update",
                       TransientError);
  CHECK(calls == 3);
  CHECK(sleeps.delays.size() == 2);  // no sleep after the last attempt

  calls = 0;
  sleeps.delays.clear();
  CHECK_THROWS_WITH_AS(with_retry(s, always_fails, policy(sleeps, 1)),
                       "claim batch: gave up after 1 attempt: ERROR: could not serialize access "
                       "due to concurrent update",
                       TransientError);
  CHECK(calls == 1);
  CHECK(sleeps.delays.empty());
}

TEST_CASE("pg retry: gives up with the reconnect failure when the server stays away") {
  QuietLog quiet;
  FakeSession s;
  s.failing_reconnects = 100;
  SleepRecorder sleeps;
  int calls = 0;
  CHECK_THROWS_WITH_AS(with_retry(
                           s,
                           [&](FakeSession& fs) {
                             ++calls;
                             fs.open = false;
                             throw pqxx::broken_connection("server closed the connection\n");
                           },
                           policy(sleeps, 3)),
                       (std::string("claim batch: gave up after 3 attempts: ") + kRefused).c_str(),
                       TransientError);
  CHECK(calls == 1);
  CHECK(s.reconnects == 2);
}

TEST_CASE("pg retry: an in-doubt commit is never retried") {
  QuietLog quiet;
  FakeSession s;
  SleepRecorder sleeps;
  int calls = 0;
  std::function<void()> failure;
  std::string cause;
  SUBCASE("in_doubt_error") {
    failure = [] { throw pqxx::in_doubt_error("Lost connection to backend during commit\n"); };
    cause = "Lost connection to backend during commit";
  }
  SUBCASE("statement_completion_unknown") {
    failure = [] { throw pqxx::statement_completion_unknown("ERROR:  completion unknown\n"); };
    cause = "ERROR: completion unknown";
  }
  SUBCASE("40003 as a plain sql_error") {
    failure = [] { throw pqxx::sql_error("ERROR:  completion unknown\n", "COMMIT", "40003"); };
    cause = "ERROR: completion unknown";
  }
  const auto work = [&](FakeSession&) {
    ++calls;
    failure();
  };
  CHECK_THROWS_WITH_AS(with_retry(s, work, policy(sleeps, 5)),
                       ("claim batch: commit outcome unknown, not retried: " + cause).c_str(),
                       InDoubtError);
  CHECK(calls == 1);
  CHECK(sleeps.delays.empty());
  CHECK(s.reconnects == 0);

  // A distinct kind: whoever retries TransientErrors will not retry it.
  try {
    with_retry(s, work, policy(sleeps, 5));
    FAIL("no exception");
  } catch (const TransientError&) {
    FAIL("an in-doubt commit must not look transient");
  } catch (const InDoubtError&) {
  }
}

TEST_CASE("pg retry: in doubt after transient failures is still not retried") {
  QuietLog quiet;
  FakeSession s;
  SleepRecorder sleeps;
  int calls = 0;
  CHECK_THROWS_AS(with_retry(
                      s,
                      [&](FakeSession& fs) {
                        ++calls;
                        if (calls == 1) {
                          fs.open = false;
                          throw pqxx::broken_connection("server closed the connection\n");
                        }
                        throw pqxx::in_doubt_error("Lost connection to backend during commit");
                      },
                      policy(sleeps, 10)),
                  InDoubtError);
  CHECK(calls == 2);
  CHECK(sleeps.delays.size() == 1);
}

TEST_CASE("pg retry: permanent SQL errors are rethrown once, with context and sqlstate") {
  QuietLog quiet;
  FakeSession s;
  SleepRecorder sleeps;
  int calls = 0;
  const auto run = [&](const std::function<void()>& failure) {
    calls = 0;
    try {
      with_retry(
          s,
          [&](FakeSession&) {
            ++calls;
            failure();
          },
          policy(sleeps, 5));
    } catch (...) {
      CHECK(calls == 1);
      CHECK(sleeps.delays.empty());
      throw;
    }
  };

  try {
    run([] {
      throw pqxx::unique_violation(
          "ERROR:  duplicate key value violates unique constraint \"author_pkey\"\n"
          "DETAIL:  Key (id)=(1) already exists.\n",
          "INSERT INTO author VALUES (1)", "23505");
    });
    FAIL("no exception");
  } catch (const SqlError& e) {
    CHECK(std::string(e.what()) ==
          "claim batch: ERROR: duplicate key value violates unique constraint \"author_pkey\"; "
          "DETAIL: Key (id)=(1) already exists.");
    CHECK(e.sqlstate() == "23505");
  }

  CHECK_THROWS_WITH_AS(run([] {
                         throw pqxx::syntax_error("ERROR:  syntax error at or near \"selec\"\n",
                                                  "selec 1", "42601", 1);
                       }),
                       "claim batch: ERROR: syntax error at or near \"selec\"", SqlError);
  CHECK_THROWS_WITH_AS(
      run([] {
        throw pqxx::sql_error("ERROR:  canceling statement due to statement timeout\n", "q",
                              "57014");
      }),
      "claim batch: ERROR: canceling statement due to statement timeout", SqlError);
  // Already a pgcqrs error with its context: unchanged.
  CHECK_THROWS_WITH_AS(run([] { throw SqlError("run script 'a.sql': ERROR: boom", "42P01"); }),
                       "run script 'a.sql': ERROR: boom", SqlError);
  CHECK_THROWS_WITH_AS(run([] { throw MessageError("apply author id=1: bad field"); }),
                       "apply author id=1: bad field", MessageError);
  CHECK_THROWS_WITH_AS(run([] { throw ConfigError("table 'x': missing"); }), "table 'x': missing",
                       ConfigError);
  // Bugs stay bugs.
  CHECK_THROWS_AS(run([] { throw pqxx::usage_error("Started twice"); }), pqxx::usage_error);
  CHECK_THROWS_AS(run([] { throw std::logic_error("oops"); }), std::logic_error);
  CHECK_THROWS_AS(run([] { throw pqxx::conversion_error("bad int"); }), pqxx::conversion_error);
  CHECK_THROWS_AS(run([] { throw 42; }), int);
}

TEST_CASE("pg retry: a stop request ends the retrying") {
  QuietLog quiet;
  StopGuard guard;
  FakeSession s;
  SleepRecorder sleeps;
  int calls = 0;

  SUBCASE("stop during the backoff sleep") {
    sleeps.stop_at = 2;
    CHECK_THROWS_WITH_AS(with_retry(
                             s,
                             [&](FakeSession&) {
                               ++calls;
                               throw pqxx::serialization_failure(kSerialization);
                             },
                             policy(sleeps, 10)),
                         "claim batch: stop requested, not retried after 2 attempts: ERROR: could "
                         "not serialize access due to concurrent update",
                         TransientError);
    CHECK(calls == 2);
    CHECK(sleeps.delays.size() == 2);
  }
  SUBCASE("stop requested before the failure: no sleep at all") {
    CHECK_THROWS_WITH_AS(with_retry(
                             s,
                             [&](FakeSession&) {
                               ++calls;
                               request_stop();
                               throw TransientError("db: gone");
                             },
                             policy(sleeps, 10)),
                         "claim batch: stop requested, not retried after 1 attempt: db: gone",
                         TransientError);
    CHECK(calls == 1);
    CHECK(sleeps.delays.empty());
  }
  SUBCASE("the default sleep wakes up on a stop") {
    RetryPolicy p;
    p.what = "claim batch";
    p.max_attempts = 3;
    p.backoff = BackoffPolicy{10'000ms, 10'000ms, 2.0, 0.0};  // would take 20 s without a stop
    const auto started = std::chrono::steady_clock::now();
    std::thread stopper([] {
      std::this_thread::sleep_for(50ms);
      request_stop();
    });
    CHECK_THROWS_AS(with_retry(
                        s,
                        [&](FakeSession&) {
                          ++calls;
                          throw TransientError("db: gone");
                        },
                        p),
                    TransientError);
    stopper.join();
    CHECK(calls == 1);
    CHECK(std::chrono::steady_clock::now() - started < 5s);
  }
}

TEST_CASE("pg retry: backoff delays grow and are capped") {
  QuietLog quiet;
  FakeSession s;
  SleepRecorder sleeps;
  int calls = 0;
  const auto always_fails = [&](FakeSession&) {
    ++calls;
    throw TransientError("db: gone");
  };
  CHECK_THROWS_AS(with_retry(s, always_fails, policy(sleeps, 6)), TransientError);
  CHECK(calls == 6);
  CHECK(sleeps.delays == std::vector<ms>{10ms, 20ms, 40ms, 40ms, 40ms});

  // With the default 20 % jitter: each delay within +-20 % of the nominal one, never over max.
  RetryPolicy p = policy(sleeps, 8);
  p.backoff = BackoffPolicy{100ms, 1000ms, 2.0, 0.2};
  sleeps.delays.clear();
  CHECK_THROWS_AS(with_retry(s, always_fails, p), TransientError);
  REQUIRE(sleeps.delays.size() == 7);
  const std::vector<int> nominal{100, 200, 400, 800, 1000, 1000, 1000};
  for (std::size_t i = 0; i < nominal.size(); ++i) {
    CAPTURE(i);
    CHECK(sleeps.delays[i].count() >= nominal[i] * 8 / 10);
    CHECK(sleeps.delays[i].count() <= std::min(nominal[i] * 12 / 10, 1000));
  }
}

TEST_CASE("pg retry: a fresh backoff for every call") {
  QuietLog quiet;
  FakeSession s;
  SleepRecorder sleeps;
  RetryPolicy p = policy(sleeps, 2);
  for (int round = 0; round < 3; ++round) {
    int calls = 0;
    with_retry(
        s,
        [&](FakeSession&) {
          if (++calls == 1) throw TransientError("db: gone");
        },
        p);
  }
  CHECK(sleeps.delays == std::vector<ms>{10ms, 10ms, 10ms});
}

TEST_CASE("pg retry: max_attempts below 1 is a bug, reported before any work") {
  FakeSession s;
  SleepRecorder sleeps;
  int calls = 0;
  CHECK_THROWS_WITH_AS(with_retry(
                           s, [&](FakeSession&) { ++calls; }, policy(sleeps, 0)),
                       "claim batch: max_attempts must be at least 1, not 0",
                       std::invalid_argument);
  CHECK(calls == 0);
}

TEST_CASE("pg retry: classification by SQLSTATE") {
  using pg::classify_sqlstate;
  CHECK(classify_sqlstate("40001") == FailureKind::kRetry);
  CHECK(classify_sqlstate("40P01") == FailureKind::kRetry);
  CHECK(classify_sqlstate("40000") == FailureKind::kRetry);
  CHECK(classify_sqlstate("55P03") == FailureKind::kRetry);
  CHECK(classify_sqlstate("53100") == FailureKind::kRetry);
  CHECK(classify_sqlstate("53200") == FailureKind::kRetry);
  CHECK(classify_sqlstate("53300") == FailureKind::kReconnect);
  CHECK(classify_sqlstate("08006") == FailureKind::kReconnect);
  CHECK(classify_sqlstate("57P01") == FailureKind::kReconnect);
  CHECK(classify_sqlstate("57P02") == FailureKind::kReconnect);
  CHECK(classify_sqlstate("57P03") == FailureKind::kReconnect);
  CHECK(classify_sqlstate("25006") == FailureKind::kReconnect);
  CHECK(classify_sqlstate("40003") == FailureKind::kInDoubt);
  CHECK(classify_sqlstate("40002") == FailureKind::kPermanent);
  CHECK(classify_sqlstate("57014") == FailureKind::kPermanent);
  CHECK(classify_sqlstate("23505") == FailureKind::kPermanent);
  CHECK(classify_sqlstate("42601") == FailureKind::kPermanent);
  CHECK(classify_sqlstate("") == FailureKind::kPermanent);
  CHECK(classify_sqlstate("5") == FailureKind::kPermanent);
  CHECK(classify_sqlstate("53") == FailureKind::kPermanent);
}
