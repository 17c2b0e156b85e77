// Environment of the integration tests, as exported by integration_tests/with_servers.sh.
#include "support.hpp"

#include <arpa/inet.h>
#include <array>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <memory>
#include <netinet/in.h>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
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
void kill_rabbitmq() {
  run_or_throw("RMQ_FAST=1 " + rmq_cmd("rmq-down.sh"));
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
  if (out != nullptr) out->clear();
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

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("bind to a free port failed");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string pgcqrs_binary() {
  return std::string(PGCQRS_BINARY_DIR) + "/bin/pgcqrs";
}
std::string source_dir() {
  return PGCQRS_SOURCE_DIR;
}

}  // namespace pgcqrs::it

namespace pgcqrs::it {

Process::Process(std::vector<std::string> argv, std::string log_path,
                 std::vector<std::pair<std::string, std::string>> env)
    : log_path_(std::move(log_path)) {
  const int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("open " + log_path_ + ": " + std::strerror(errno));
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    for (const auto& [k, v] : env)
      ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (auto& a : argv)
      args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(fd);
}

Process::~Process() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait(std::chrono::seconds(10));
  }
}

bool Process::running() {
  if (status_ != -1) return false;
  int st = 0;
  const int r = ::waitpid(pid_, &st, WNOHANG);
  if (r == 0) return true;
  if (r == pid_) status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return false;
}

void Process::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

int Process::wait(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= until) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return status_;
}

std::string Process::log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

std::string server_base() {
  const std::string url = pg_url();
  return url.substr(0, url.rfind('/'));
}

void admin_sql(const std::string& sql) {
  std::string out;
  const int rc =
      run_shell("psql -X -q -v ON_ERROR_STOP=1 '" + pg_url() + "' -c '" + sql + "' 2>&1", &out);
  if (rc != 0) throw std::runtime_error("psql: " + sql + ": " + out);
}

}  // namespace

TempDatabase::TempDatabase(std::string_view prefix) : name_(unique_name(prefix)) {
  admin_sql("CREATE DATABASE " + name_);
  url_ = server_base() + "/" + name_;
}

TempDatabase::~TempDatabase() {
  try {
    admin_sql("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "drop test database %s: %s\n", name_.c_str(), e.what());
  }
}

std::string write_temp_file(std::string_view name, std::string_view text) {
  static const std::string dir = [] {
    std::string tmpl = std::filesystem::temp_directory_path().string() + "/pgcqrs-it-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    return tmpl;
  }();
  const std::string path = dir + "/" + std::string(name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("write " + path);
  return path;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= until) return condition();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace pgcqrs::it
