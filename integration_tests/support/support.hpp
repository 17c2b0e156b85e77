// What integration tests need from their environment: server URLs, restarts, unique names.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgcqrs::it {

// URLs exported by integration_tests/with_servers.sh. Throws with a hint when run without it.
std::string pg_url();
std::string amqp_url();

// Stops / starts this run's RabbitMQ node, keeping its durable queues and messages.
void stop_rabbitmq();
// SIGKILL of the broker's VM: no graceful close of connections, unconfirmed publishes lost.
void kill_rabbitmq();
void start_rabbitmq();
// Stops / starts this run's PostgreSQL, keeping its data.
void stop_postgres();
void start_postgres();

// A name unique to this process and call: "<prefix>_<pid>_<n>" (schemas, queues, exchanges).
std::string unique_name(std::string_view prefix);

// Runs a shell command; returns its exit status. Stdout is captured into `out` if given.
int run_shell(const std::string& command, std::string* out = nullptr);

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
int free_port();

// Path of the built `pgcqrs` executable and the source tree.
std::string pgcqrs_binary();
std::string source_dir();

}  // namespace pgcqrs::it

namespace pgcqrs::it {

// A child process (e.g. `pgcqrs master`) with stdout+stderr appended to a log file.
class Process {
 public:
  Process(std::vector<std::string> argv, std::string log_path,
          std::vector<std::pair<std::string, std::string>> env = {});
  ~Process();  // SIGKILL if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  Process(Process&&) = delete;
  Process& operator=(Process&&) = delete;

  [[nodiscard]] int pid() const noexcept { return pid_; }
  bool running();
  void signal(int sig);
  // Waits for exit up to `timeout`; returns the exit status (128+signal), or -1 on timeout.
  int wait(std::chrono::milliseconds timeout);
  [[nodiscard]] std::string log() const;
  [[nodiscard]] const std::string& log_path() const noexcept { return log_path_; }

 private:
  int pid_ = -1;
  int status_ = -1;
  std::string log_path_;
};

// A fresh database on the test server, dropped at destruction.
class TempDatabase {
 public:
  explicit TempDatabase(std::string_view prefix);
  ~TempDatabase();
  TempDatabase(const TempDatabase&) = delete;
  TempDatabase& operator=(const TempDatabase&) = delete;
  TempDatabase(TempDatabase&&) = delete;
  TempDatabase& operator=(TempDatabase&&) = delete;
  [[nodiscard]] const std::string& url() const noexcept { return url_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }

 private:
  std::string name_;
  std::string url_;
};

// Writes `text` to a new file under the test's temporary folder and returns its path.
std::string write_temp_file(std::string_view name, std::string_view text);

// Polls `condition` every 50 ms until it is true or `timeout` passes; returns its last value.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

}  // namespace pgcqrs::it
