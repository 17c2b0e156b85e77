// Generates the capture DDL of a master model: revision bump, outbox triggers, TRUNCATE guard.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.hpp"
#include "master/table_info.hpp"

namespace pgcqrs::master {

// Identifier and literal quoting. In production both come from the libpqxx connection
// (quote_name / quote); tests may supply their own.
struct SqlQuoter {
  std::function<std::string(const std::string&)> name;
  std::function<std::string(const std::string&)> literal;
};
SqlQuoter quoter_for(pqxx::transaction_base& txn);

// The channel the capture triggers notify and the agent listens on.
inline constexpr std::string_view kOutboxChannel = "pgcqrs_outbox";

// A session notifies the agent at most once per kNotifyThrottle (a transaction that notifies
// serializes the commits of every other notifying transaction, docs/benchmarks.md §1.3 a).
// Writes in between are found by the agent's short polls after work (AgentOptions::linger).
// kNotifySetting is the session setting that holds the time of the last notification (epoch ms).
inline constexpr std::chrono::milliseconds kNotifyThrottle{50};
inline constexpr std::string_view kNotifySetting = "pgcqrs.last_notify_ms";

// The advisory lock an awake agent holds (exclusively, at session level) from a read that
// published something until its polls after work end (AgentOptions::linger without new rows):
// meanwhile it reads the outbox every few milliseconds, or as soon as the broker lets it. A
// writer whose throttle would notify first tries it in shared mode for its transaction, and
// notifies only if that succeeds: the per-session throttle alone lets N busy sessions notify N
// times per interval, and every notifying commit holds PostgreSQL's cluster-wide notify lock
// through its WAL flush. An agent that dies or loses its connection releases the lock with its
// session.
inline constexpr std::int64_t kAgentAwakeLockKey = 0x70676371'72730003LL;  // "pgcqrs" + 3

// Trigger names on a tracked table. `zz_` makes the bump the last BEFORE trigger, so the
// revision it writes is final whatever other BEFORE triggers the application has.
inline constexpr std::string_view kBumpTrigger = "zz_cqrs_bump";
inline constexpr std::string_view kInsertTrigger = "cqrs_capture_insert";
inline constexpr std::string_view kUpdateTrigger = "cqrs_capture_update";
inline constexpr std::string_view kDeleteTrigger = "cqrs_capture_delete";
inline constexpr std::string_view kTruncateTrigger = "cqrs_refuse_truncate";

struct CaptureDdl {
  std::vector<std::string> statements;  // run in order, in one transaction
  std::string config_hash;              // changes when the generated DDL changes
};

// DDL that (re)installs capture for `model` on the table described by `info`: adds the
// cqrs_revision / cqrs_updated columns when missing, and creates or replaces the trigger
// functions and triggers. Idempotent. Throws ConfigError naming the model and key when
// `fields` / `tracked_fields` name unknown columns, SQL snippets contain the `$cqrs$` quote, or
// existing cqrs_revision / cqrs_updated columns have other types than the triggers write.
CaptureDdl capture_ddl(const MasterModel& model, const TableInfo& info, const SqlQuoter& q);

// A check of one of the model's SQL snippets: `sql` makes PostgreSQL parse and plan the snippet
// as the triggers use it (the row's columns unqualified, under the alias `t`) without reading
// or changing a row; run it in a savepoint, and roll that back. `key` is the configuration key
// of the snippet (filter, meta_sql, serializer).
struct SnippetCheck {
  std::string key;
  std::string sql;
};
std::vector<SnippetCheck> snippet_checks(const MasterModel& model, const TableInfo& info,
                                         const SqlQuoter& q);

// DDL that removes what capture_ddl installed (the columns stay).
std::vector<std::string> uncapture_ddl(const std::string& cqrs_id, const QualifiedName& table,
                                       const SqlQuoter& q);

// The deferred trigger on cqrs.outbox that fills instance_data at commit for models with a
// serializer, dispatching on cqrs_id. Regenerated from the whole configuration.
struct SerializedModel {
  std::string cqrs_id;
  std::string pk_type;    // format_type() of the primary key, the serializer's argument type
  QualifiedName table;    // the tracked table and its primary-key column: a NULL from the
  std::string pk_column;  // serializer for a row that still exists is an error, not a delete
};
std::vector<std::string> serializer_dispatch_ddl(const std::vector<SerializedModel>& models,
                                                 const SqlQuoter& q);

// How the capture triggers turn a row of the table into event members, for the commands that
// read the table itself (cqrs_bulk_dump, cqrs_sync, cqrs_diff_master). Use as
//   SELECT <instance_data>, ... FROM <from> WHERE <is_sync> AND <pk> > $1 ORDER BY <pk> LIMIT n
// Every expression reads the row through the alias `n`; the model's `filter` and `meta` SQL
// are written over unqualified columns and stay valid because `from` is the only FROM item.
struct RowSql {
  std::string from;           // `(SELECT t.*[, <meta> AS cqrs_meta__] FROM "s"."t" t) n`
  std::string pk;             // `n."id"`: the key column, for ORDER BY and keyset bounds
  std::string pk_json;        // the key as JSON, as in instance_pk / DELETE bodies
  std::string instance_data;  // SAVE instance_data exactly as the triggers store it (json)
  std::string meta;           // the event's meta (json)
  std::string is_sync;        // the model's `filter` (is_sync_instance), `true` when none
};
// Throws ConfigError as capture_ddl does when the model names unknown columns.
RowSql row_sql(const MasterModel& model, const TableInfo& info, const SqlQuoter& q);

// Names of the per-model functions in schema cqrs (unquoted).
std::string function_name(const std::string& cqrs_id, std::string_view what);

}  // namespace pgcqrs::master
