// What integration tests need from their environment: server URLs, restarts, unique names.
#pragma once

#include <string>
#include <string_view>

namespace pgcqrs::it {

// URLs exported by integration_tests/with_servers.sh. Throws with a hint when run without it.
std::string pg_url();
std::string amqp_url();

// Stops / starts this run's RabbitMQ node, keeping its durable queues and messages.
void stop_rabbitmq();
void start_rabbitmq();
// Stops / starts this run's PostgreSQL, keeping its data.
void stop_postgres();
void start_postgres();

// A name unique to this process and call: "<prefix>_<pid>_<n>" (schemas, queues, exchanges).
std::string unique_name(std::string_view prefix);

// Runs a shell command; returns its exit status. Stdout is captured into `out` if given.
int run_shell(const std::string& command, std::string* out = nullptr);

// Path of the built `pgcqrs` executable and the source tree.
std::string pgcqrs_binary();
std::string source_dir();

}  // namespace pgcqrs::it
