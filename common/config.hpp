// The one configuration file (TOML): broker, master models, replica models; env overrides.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/sql_name.hpp"

namespace pgcqrs {

// Environment variables that override keys of the file (secrets and connection strings).
inline constexpr const char* kEnvConfigPath = "PGCQRS_CONFIG";
inline constexpr const char* kEnvBrokerUrl = "PGCQRS_BROKER_URL";
inline constexpr const char* kEnvBrokerPassword = "PGCQRS_BROKER_PASSWORD";
inline constexpr const char* kEnvMasterDatabase = "PGCQRS_MASTER_DATABASE";
inline constexpr const char* kEnvReplicaDatabase = "PGCQRS_REPLICA_DATABASE";
inline constexpr const char* kDefaultConfigPath = "./pgcqrs.toml";

struct HttpEndpoint {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0 = no /metrics, /healthz endpoint
};

struct BrokerConfig {
  std::string url = "amqp://guest:guest@127.0.0.1:5672/";
  std::string exchange = "cqrs";
};

struct MasterModel {
  std::string cqrs_id;
  QualifiedName table;
  std::vector<std::string> fields;          // empty = all columns; the primary key is always sent
  std::vector<std::string> tracked_fields;  // -> previous_data
  std::optional<std::string> filter;        // SQL boolean expression over the row
  std::optional<std::string> serializer;    // SQL returning the JSON object for one primary key
  bool produce = true;
  std::optional<std::string> meta_sql;   // SQL expression giving the meta JSON
  std::optional<std::string> meta_json;  // constant meta, as JSON text
};

struct MasterConfig {
  std::string database;
  std::chrono::seconds message_ttl{86400};  // 0 = messages never expire
  int batch_size = 500;                     // outbox rows claimed per round
  int confirm_window = 1000;                // unconfirmed publishes in flight
  std::chrono::milliseconds poll_interval{1000};
  HttpEndpoint http;
  // Roles besides the one running `pgcqrs migrate` that write to tracked tables: migrate grants
  // them what the capture triggers need on schema cqrs (master/install.cpp, writer_grants).
  std::vector<std::string> writer_roles;
  std::vector<MasterModel> models;
};

struct ReplicaModel {
  std::string cqrs_id;
  QualifiedName table;
  std::map<std::string, std::string> mapping;  // master field -> replica column
  std::optional<std::string> apply_function;   // SQL function replacing the default apply
  bool only_direct_syncs = false;
};

struct ReplicaConfig {
  std::string database;
  std::string queue;
  std::string dead_letter_queue;  // default dead_letter_<queue>
  int max_retries = 30;
  std::chrono::seconds retry_delay{2};
  double retry_backoff = 2.0;                     // delay * backoff^retries ...
  std::chrono::seconds retry_delay_max{300};      // ... capped here
  std::chrono::seconds dead_message_ttl{864000};  // 0 = dead letters never expire
  std::chrono::seconds message_ttl{86400};        // for bodies without `expires`
  std::chrono::seconds tombstone_ttl{7 * 86400};
  int prefetch = 1000;
  int batch_size = 500;
  std::chrono::milliseconds batch_timeout{50};
  HttpEndpoint http;
  std::vector<ReplicaModel> models;
};

struct Config {
  std::string source;  // file path it was read from
  BrokerConfig broker;
  std::optional<MasterConfig> master;
  std::optional<ReplicaConfig> replica;

  [[nodiscard]] const MasterModel* find_master_model(std::string_view cqrs_id) const;
  [[nodiscard]] const ReplicaModel* find_replica_model(std::string_view cqrs_id) const;
};

// Which file to read: --config if given, else $PGCQRS_CONFIG, else ./pgcqrs.toml.
std::string resolve_config_path(const std::optional<std::string>& flag);

// Reads, validates and applies environment overrides. Throws ConfigError whose message names
// the file, line, key, the bad value and the fix:
//   `pgcqrs.toml:7: master.model[0].cqrs_id = "a.b": must not contain '.', '*' or '#' ...`
Config load_config(const std::string& path);
// Same from text (tests); `source` names it in messages.
Config parse_config(std::string_view toml_text, const std::string& source);

// The effective configuration as TOML, defaults filled in and secrets masked.
std::string render_config(const Config& config);

// `scheme://user:secret@host` -> `scheme://user:****@host`; `password=secret` -> `password=****`.
std::string mask_secrets(std::string_view url);

}  // namespace pgcqrs
