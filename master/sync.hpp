// SYNC events for the rows a selection picks, published with confirms (cqrs_sync, cqrs_diff_sync).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/filter.hpp"
#include "common/json.hpp"
#include "common/timestamp.hpp"

namespace pgcqrs::master {

// What one cqrs_sync run did, counted as django-cqrs counts it.
struct SyncReport {
  bool found = false;           // false: "No objects found for filter!" (nothing selected)
  std::uint64_t processed = 0;  // rows selected
  // rows whose SYNC the broker confirmed, plus rows the model's `filter` (is_sync_instance) or
  // `produce = false` keeps from being published: django-cqrs counts those as synced too
  std::uint64_t synced = 0;
  std::uint64_t failed = 0;         // nacked, returned as unroutable, or not confirmed
  std::uint64_t not_published = 0;  // of `synced`: skipped by the model's filter or produce
};

// django-cqrs's closing lines: "Done!\n{synced} instance(s) synced.\n{processed} instance(s)
// processed.\n", or "No objects found for filter!\n" when nothing was selected.
std::string sync_report_text(const SyncReport& report);

// The body of the SYNC event of one row: what the agent would publish for the row's SAVE
// (same instance_data, meta, no correlation id, retries 0, expires now + ttl, 0 = never) with
// signal SYNC. Members are the JSON text PostgreSQL gives (row_sql()).
std::string sync_body(const std::string& cqrs_id, const std::string& pk_json,
                      const std::string& instance_data, const std::string& meta, Timestamp now,
                      std::chrono::seconds ttl);

struct SyncOptions {
  std::optional<std::string> queue;  // one replica queue; nullopt, "" or "None": broadcast
  int batch = 10000;                 // rows per keyset batch
  bool progress = false;             // --progress
};

// Publishes SYNC events of one master model. Holds one database session and, from the first
// publish on, one broker connection in confirm mode, for any number of runs (cqrs_diff_sync
// runs one per input line).
//
// Rows are read in primary-key order in keyset batches (`pk > last` ... LIMIT batch, never
// OFFSET), each row's events built by the capture triggers' own SQL (row_sql()); publishes are
// persistent and mandatory, up to [master] confirm_window unconfirmed at a time. A nack, a
// return (no queue bound for the routing key) or no confirm within `confirm_timeout` is a
// failure of that row: printed as django-cqrs prints one (`Sync record failed for pk=<pk>:
// ...`, the first ten of each kind, then a count) and counted in `failed`, never dropped
// silently. A lost broker or database connection throws TransientError after what was
// confirmed is counted.
class Syncer {
 public:
  // Throws CommandError "Wrong CQRS ID: <id>!" when the configuration has no such master model,
  // ConfigError without [master].
  Syncer(const Config& config, const std::string& cqrs_id);
  ~Syncer();
  Syncer(const Syncer&) = delete;
  Syncer& operator=(const Syncer&) = delete;

  // cqrs_sync: the rows `filter_json` selects (nullopt: none, as django-cqrs). Throws
  // CommandError "Bad filter kwargs! ..." for a bad filter, also when PostgreSQL refuses one of
  // its values (`{"id": "x"}` on an integer column). Report lines go to `out`.
  SyncReport sync_filter(const std::optional<std::string>& filter_json, const SyncOptions& options,
                         std::FILE* out);
  // cqrs_diff_sync: the rows with these primary keys (a JSON array of scalars). Throws
  // MessageError when a key is not a value of the key column's type.
  SyncReport sync_keys(const json::Json& keys, const SyncOptions& options, std::FILE* out);

  // The key column's name, and the filter columns of the table.
  [[nodiscard]] const std::string& primary_key() const noexcept;
  void set_confirm_timeout(std::chrono::milliseconds t) noexcept { confirm_timeout_ = t; }

 private:
  struct State;
  SyncReport run(const CompiledFilter& selection, const SyncOptions& options, std::FILE* out,
                 bool bad_values_are_filter_errors);

  std::unique_ptr<State> s_;
  std::chrono::milliseconds confirm_timeout_{30000};
};

}  // namespace pgcqrs::master
