// Environment of the integration tests, as exported by integration_tests/with_servers.sh.
#include "support.hpp"

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

namespace pgcqrs::it {
namespace {

std::string env_or_throw(const char* name) {
  const char* v = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): read-only after start
  if (v == nullptr || *v == '\0') {
    throw std::runtime_error(std::string("environment variable ") + name +
                             " is not set: run integration tests through "
                             "integration_tests/run_tests.sh (or with_servers.sh)");
  }
  return v;
}

void run_or_throw(const std::string& cmd) {
  std::string out;
  const int rc = run_shell(cmd + " 2>&1", &out);
  if (rc != 0) {
    throw std::runtime_error("command failed (" + std::to_string(rc) + "): " + cmd + "\n" + out);
  }
}

std::string rmq_cmd(const char* script) {
  return "RMQ_KEEP=1 RMQ_BASE='" + env_or_throw("PGCQRS_TEST_RMQ_BASE") + "' '" +
         env_or_throw("PGCQRS_TEST_SERVERS") + "/" + script + "' " +
         env_or_throw("PGCQRS_TEST_RMQ_PORT") + " >/dev/null";
}

std::string pg_cmd(const char* script) {
  return "PG_KEEP=1 PG_BASE='" + env_or_throw("PGCQRS_TEST_PG_BASE") + "' '" +
         env_or_throw("PGCQRS_TEST_SERVERS") + "/" + script + "' " +
         env_or_throw("PGCQRS_TEST_PG_PORT") + " >/dev/null";
}

}  // namespace

std::string pg_url() {
  return env_or_throw("PGCQRS_TEST_PG_URL");
}
std::string amqp_url() {
  return env_or_throw("PGCQRS_TEST_AMQP_URL");
}

void stop_rabbitmq() {
  run_or_throw(rmq_cmd("rmq-down.sh"));
}
void start_rabbitmq() {
  run_or_throw(rmq_cmd("rmq-up.sh"));
}
void stop_postgres() {
  run_or_throw(pg_cmd("pg-down.sh"));
}
void start_postgres() {
  run_or_throw(pg_cmd("pg-up.sh"));
}

std::string unique_name(std::string_view prefix) {
  static std::atomic<int> counter{0};
  return std::string(prefix) + "_" + std::to_string(::getpid()) + "_" +
         std::to_string(counter.fetch_add(1));
}

int run_shell(const std::string& command, std::string* out) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed: " + command);
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) {
    if (out != nullptr) out->append(buf.data(), n);
  }
  const int status = ::pclose(pipe);
  if (status == -1) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string pgcqrs_binary() {
  return std::string(PGCQRS_BINARY_DIR) + "/bin/pgcqrs";
}
std::string source_dir() {
  return PGCQRS_SOURCE_DIR;
}

}  // namespace pgcqrs::it
