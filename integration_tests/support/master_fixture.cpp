// MasterFixture: temp database, schema, config, migrate, agent processes, queue.
#include "master_fixture.hpp"

#include <stdexcept>

namespace pgcqrs::it {

MasterFixture::MasterFixture(const std::string& schema_sql, const std::string& models,
                             const std::vector<std::string>& routing_keys,
                             const std::string& master_extra)
    : db("m"), exchange(unique_name("cqrs")) {
  conn = std::make_unique<pqxx::connection>(db.url());
  sql(schema_sql);
  queue = std::make_unique<TestQueue>(exchange, unique_name("q"), routing_keys);
  const std::string config =
      "[broker]\nurl = \"" + amqp_url() + "\"\nexchange = \"" + exchange +
      "\"\n\n[master]\ndatabase = \"" + db.url() + "\"\n" +
      (master_extra.find("poll_interval_ms") == std::string::npos ? "poll_interval_ms = 200\n"
                                                                  : "") +
      master_extra + "\n" + models;
  config_path = write_temp_file(db.name() + ".toml", config);
  std::string out;
  if (pgcqrs("migrate", &out) != 0) throw std::runtime_error("pgcqrs migrate failed:\n" + out);
}

int MasterFixture::pgcqrs(const std::string& args, std::string* out) const {
  return run_shell(pgcqrs_binary() + " --config '" + config_path + "' " + args + " 2>&1", out);
}

Process& MasterFixture::start_agent() {
  const std::string log = config_path + ".agent" + std::to_string(agents.size()) + ".log";
  agents.push_back(
      std::make_unique<Process>(std::vector<std::string>{pgcqrs_binary(), "--config", config_path,
                                                         "--log-level", "debug", "master"},
                                log));
  return *agents.back();
}

void MasterFixture::sql(const std::string& statements) const {
  pqxx::nontransaction txn(*conn);
  txn.exec(statements);
}

std::string MasterFixture::scalar(const std::string& query) const {
  pqxx::nontransaction txn(*conn);
  const auto r = txn.exec(query);
  if (r.empty() || r[0][0].is_null()) return "";
  return r[0][0].as<std::string>();
}

std::vector<json::Json> MasterFixture::take(std::size_t n, std::chrono::milliseconds idle,
                                            std::chrono::milliseconds max_wait) {
  std::vector<json::Json> out;
  for (const auto& d : queue->take(n, idle, max_wait))
    out.push_back(json::parse(d.body));
  return out;
}

}  // namespace pgcqrs::it
