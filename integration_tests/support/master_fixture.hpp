// A master database with capture installed and (optionally) the agent running as a process.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "broker.hpp"
#include "common/json.hpp"
#include "common/pg/pqxx.hpp"
#include "support.hpp"

namespace pgcqrs::it {

struct MasterFixture {
  // `schema_sql` creates the tracked tables; `models` is the [[master.model]] TOML; every
  // cqrs_id in `routing_keys` is bound to the fixture's queue. `master_extra` is added to
  // [master]; poll_interval_ms is 200 unless it sets one.
  MasterFixture(const std::string& schema_sql, const std::string& models,
                const std::vector<std::string>& routing_keys, const std::string& master_extra = "");

  // Runs `pgcqrs <args>` with the fixture's config; returns the exit status, output in `out`.
  int pgcqrs(const std::string& args, std::string* out = nullptr) const;
  // Starts an agent process (several may run: the extra ones are standbys).
  Process& start_agent();
  // SQL on the master, autocommit.
  void sql(const std::string& statements) const;
  // First column of the first row.
  std::string scalar(const std::string& query) const;
  // Takes deliveries and parses their bodies.
  std::vector<json::Json> take(std::size_t n,
                               std::chrono::milliseconds idle = std::chrono::seconds(5),
                               std::chrono::milliseconds max_wait = std::chrono::minutes(5));

  TempDatabase db;
  std::string exchange;
  std::unique_ptr<TestQueue> queue;
  std::string config_path;
  std::vector<std::unique_ptr<Process>> agents;
  std::unique_ptr<pqxx::connection> conn;
};

}  // namespace pgcqrs::it
