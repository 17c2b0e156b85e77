// Installing, updating and removing capture on the master database.
#include "master/install.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <string_view>

#include <spdlog/spdlog.h>

#include "common/error.hpp"
#include "common/pg/error.hpp"
#include "master/capture.hpp"
#include "master/outbox.hpp"
#include "master/table_info.hpp"

namespace pgcqrs::master {
namespace {

constexpr const char* kInstalled = R"sql(
SELECT cqrs_id, table_schema, table_name, config_hash FROM cqrs.capture ORDER BY cqrs_id
)sql";

constexpr const char* kRecordCapture = R"sql(
INSERT INTO cqrs.capture (cqrs_id, table_schema, table_name, config_hash)
VALUES ($1, $2, $3, $4)
ON CONFLICT (cqrs_id) DO UPDATE
SET table_schema = EXCLUDED.table_schema, table_name = EXCLUDED.table_name,
    config_hash = EXCLUDED.config_hash, installed_at = now()
)sql";

constexpr const char* kForgetCapture = "DELETE FROM cqrs.capture WHERE cqrs_id = $1";

struct Installed {
  QualifiedName table;
  std::string hash;
};

// Whether schema-qualified relation `name` exists (pgcqrs's own tables, which older or
// uninstalled schemas lack).
bool relation_exists(pqxx::transaction_base& txn, const char* name) {
  return txn.exec_params1("SELECT to_regclass($1) IS NOT NULL", name)[0].as<bool>();
}

std::map<std::string, Installed> installed_captures(pqxx::transaction_base& txn) {
  std::map<std::string, Installed> out;
  if (!relation_exists(txn, "cqrs.capture")) return out;
  for (const auto& r : txn.exec(kInstalled)) {
    out[r[0].as<std::string>()] = {{r[1].as<std::string>(), r[2].as<std::string>()},
                                   r[3].as<std::string>()};
  }
  return out;
}

// Errors that say the snippet does not fit the table (classes 42: syntax, unknown column,
// type mismatch, rights; 22: data; 0A: not supported; 2F and 3F: routine, schema), as opposed
// to a lock timeout, a cancel or a lost connection, which say nothing about the snippet.
bool snippet_error(const std::string& sqlstate) {
  for (const char* cls : {"42", "22", "0A", "2F", "3F"}) {
    if (sqlstate.rfind(cls, 0) == 0) return true;
  }
  return false;
}

// A typo in a model's filter, meta_sql or serializer would otherwise fail only when the
// application writes, and then fail every write to the table: plan each snippet against the
// table now, in a savepoint that is rolled back, and refuse the configuration if one fails.
// (A plain SAVEPOINT: libpqxx 6.4's subtransaction sets its savepoint lazily.)
void check_snippets(pqxx::transaction_base& txn, const MasterModel& m, const TableInfo& info,
                    const SqlQuoter& q) {
  for (const auto& c : snippet_checks(m, info, q)) {
    txn.exec("SAVEPOINT pgcqrs_check");
    try {
      txn.exec(c.sql);
    } catch (const pqxx::sql_error& e) {
      // the caller's transaction is aborted with it: nothing of this migrate is kept
      if (!snippet_error(e.sqlstate())) throw;
      throw ConfigError("master.model '" + m.cqrs_id + "' (" + quoted(m.table) + ") " + c.key +
                        ": the SQL fails on the table: " + pg::server_message(e));
    }
    txn.exec("ROLLBACK TO SAVEPOINT pgcqrs_check; RELEASE SAVEPOINT pgcqrs_check");
  }
}

void run(pqxx::transaction_base& txn, InstallReport& report, const std::string& sql, bool dry_run) {
  report.ddl.push_back(sql);
  if (!dry_run) txn.exec(sql);
}

constexpr const char* kRoleExists = "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)";

// The capture triggers, and the deferred trigger that runs a serializer, run as the role that
// writes to the tracked table (not SECURITY DEFINER: that would run the model's SQL as the
// owner). What they need in schema cqrs: the schema itself; INSERT on the outbox (the events;
// its identity column needs no sequence right); EXECUTE of the helpers they call (PUBLIC has
// it unless default privileges took it away). A serializer model's row is filled or dropped
// at commit by SECURITY DEFINER helpers (capture.cpp, serializer_dispatch_ddl): no right to
// read, change or delete the outbox's rows. Nothing on cqrs.batch_layout: migrate writes the
// layouts, the agent reads them.
std::vector<std::string> writer_grants(pqxx::transaction_base& txn,
                                       const std::vector<std::string>& roles, const SqlQuoter& q) {
  if (roles.empty()) return {};
  std::string to;
  for (const auto& role : roles) {
    if (!txn.exec_params1(kRoleExists, role)[0].as<bool>()) {
      throw ConfigError("master.writer_roles: role \"" + role +
                        "\" does not exist in the master database; create it or remove it "
                        "from the list");
    }
    to += (to.empty() ? "" : ", ") + q.name(role);
  }
  return {"GRANT USAGE ON SCHEMA cqrs TO " + to, "GRANT INSERT ON cqrs.outbox TO " + to,
          "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA cqrs TO " + to};
}

// What migrations/master created in schema cqrs (their indexes, sequences and constraints go
// with the tables). No CASCADE: an object of the user's that depends on one of them (a view
// over the outbox, say) stops the uninstall with PostgreSQL's message naming it.
constexpr const char* kDropMasterObjects[] = {
    "DROP TABLE IF EXISTS cqrs.outbox, cqrs.outbox_failed, cqrs.batch_layout, cqrs.capture",
    "DROP FUNCTION IF EXISTS cqrs.django_ts(timestamptz), cqrs.django_ts_naive(timestamp), "
    "cqrs.correlation_id()",
};

constexpr const char* kOtherComponents =
    "SELECT count(*) FROM cqrs.schema_migrations WHERE component <> 'master'";

// Objects in schema cqrs (sequences and types that belong to a table go with it).
constexpr const char* kInSchema = R"sql(
SELECT 'cqrs.' || relname, relname, false FROM pg_class
 WHERE relnamespace = 'cqrs'::regnamespace AND relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
   AND NOT (relkind = 'S' AND EXISTS (SELECT FROM pg_depend d WHERE d.objid = pg_class.oid
                                       AND d.deptype IN ('a', 'i')))
UNION ALL
SELECT 'cqrs.' || proname || '()', proname, true FROM pg_proc
 WHERE pronamespace = 'cqrs'::regnamespace
UNION ALL
SELECT 'type cqrs.' || typname, typname, false FROM pg_type t
 WHERE typnamespace = 'cqrs'::regnamespace AND typtype IN ('c', 'd', 'e', 'r', 'm')
   AND NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
ORDER BY 1
)sql";

// What would be left in schema cqrs once the DDL of `report` ran. A dry run has run none of
// it, so the objects it drops are left out by name: the master's own, and the functions of
// the captures it removes (named `<cqrs_id>__<what>`, cut at PostgreSQL's 63 bytes).
std::vector<std::string> left_in_schema(pqxx::transaction_base& txn, const InstallReport& report,
                                        bool dry_run, bool dropping_migrations) {
  static const std::set<std::string> kMaster = {
      "outbox",          "outbox_failed",  "batch_layout",       "capture",     "django_ts",
      "django_ts_naive", "correlation_id", "fill_instance_data", "outbox_fill", "row_exists"};
  std::vector<std::string> out;
  for (const auto& r : txn.exec(kInSchema)) {
    const auto bare = r[1].as<std::string>();
    if (dropping_migrations && bare == "schema_migrations") continue;
    if (dry_run) {
      if (kMaster.count(bare) != 0) continue;
      const bool captures =
          r[2].as<bool>() &&
          std::any_of(report.removed.begin(), report.removed.end(), [&](const std::string& id) {
            const auto prefix = (id + "__").substr(0, 63);
            return bare.rfind(prefix, 0) == 0;
          });
      if (captures) continue;
    }
    out.push_back(r[0].as<std::string>());
  }
  return out;
}

// Rows and events in an outbox table (`table` is one of pgcqrs's, never input). A row holds
// `events` events (migration 0003; a row of an older schema holds one).
struct Pending {
  long long rows = 0;
  long long events = 0;
};
Pending pending_in(pqxx::transaction_base& txn, const std::string& table) {
  const auto r = txn.exec1(
      "SELECT count(*), coalesce(sum(coalesce((to_jsonb(o) ->> 'events')::bigint, 1)), 0) FROM " +
      table + " AS o");
  return {r[0].as<long long>(), r[1].as<long long>()};
}

InstallReport finish(pqxx::work& txn, InstallReport& report, bool dry_run) {
  if (dry_run) {
    txn.abort();
  } else {
    txn.commit();
  }
  return report;
}

}  // namespace

InstallReport install_capture(pqxx::connection& conn, const MasterConfig& config, bool dry_run) {
  InstallReport report;
  pqxx::work txn(conn, "pgcqrs master install");
  const SqlQuoter q = quoter_for(txn);

  std::set<std::pair<std::string, std::string>> tables;
  for (const auto& m : config.models) {
    if (!tables.insert({m.table.schema, m.table.name}).second) {
      throw ConfigError("master.model '" + m.cqrs_id + "': table " + quoted(m.table) +
                        " is already captured by another model; one model per table");
    }
  }

  if (dry_run) {
    for (const auto& m : pg::pending_migrations(txn, "master", migrations())) {
      report.migrations.emplace_back(m.name);
      report.ddl.push_back("-- migration " + std::string(m.name) + "\n" + std::string(m.sql));
    }
  }
  // a dry run applies them too, rolled back with the rest of it: the models are checked
  // against the schema the real run would see (a serializer may call cqrs.django_ts)
  const auto applied = pg::apply_migrations(txn, "master", migrations());
  if (!dry_run) report.migrations = applied;

  const auto before = installed_captures(txn);
  std::vector<SerializedModel> serialized;
  for (const auto& m : config.models) {
    const TableInfo info = describe_table(txn, m.table);
    const CaptureDdl ddl = capture_ddl(m, info, q);
    check_snippets(txn, m, info, q);
    if (m.serializer) {
      serialized.push_back(
          {m.cqrs_id, info.column(info.primary_key)->type, info.table, info.primary_key});
    }
    const auto it = before.find(m.cqrs_id);
    if (it != before.end() && it->second.hash == ddl.config_hash && it->second.table == m.table) {
      report.unchanged.push_back(m.cqrs_id);
      continue;
    }
    if (it != before.end() && !(it->second.table == m.table)) {
      // the model moved to another table: take capture off the old one first
      for (const auto& s : uncapture_ddl(m.cqrs_id, it->second.table, q)) {
        run(txn, report, s, dry_run);
      }
    }
    for (const auto& s : ddl.statements)
      run(txn, report, s, dry_run);
    report.ddl.push_back("-- record capture of " + m.cqrs_id);
    if (!dry_run) {
      txn.exec_params(kRecordCapture, m.cqrs_id, m.table.schema, m.table.name, ddl.config_hash);
    }
    report.installed.push_back(m.cqrs_id);
  }
  for (const auto& [id, inst] : before) {
    if (config.models.end() !=
        std::find_if(config.models.begin(), config.models.end(),
                     [&id = id](const auto& m) { return m.cqrs_id == id; })) {
      continue;
    }
    for (const auto& s : uncapture_ddl(id, inst.table, q))
      run(txn, report, s, dry_run);
    if (!dry_run) txn.exec_params(kForgetCapture, id);
    report.removed.push_back(id);
  }
  for (const auto& s : serializer_dispatch_ddl(serialized, q))
    run(txn, report, s, dry_run);
  // last: the functions they cover exist now
  for (const auto& s : writer_grants(txn, config.writer_roles, q))
    run(txn, report, s, dry_run);
  report.writer_roles = config.writer_roles;
  return finish(txn, report, dry_run);
}

InstallReport uninstall_capture(pqxx::connection& conn, const UninstallOptions& options) {
  const bool dry_run = options.dry_run;
  InstallReport report;
  pqxx::work txn(conn, "pgcqrs master uninstall");
  // one install or uninstall at a time: a migrate committing capture of a new model meanwhile
  // would leave its triggers writing to a dropped outbox
  txn.exec_params("SELECT pg_advisory_xact_lock($1)", pg::kInstallLockKey);
  const SqlQuoter q = quoter_for(txn);
  // a schema newer than this pgcqrs may hold objects it does not know: ConfigError
  pg::pending_migrations(txn, "master", migrations());
  // capture first: DROP TRIGGER waits for the transactions writing a tracked table, so once
  // they are gone no event can reach the outbox any more
  for (const auto& [id, inst] : installed_captures(txn)) {
    for (const auto& s : uncapture_ddl(id, inst.table, q))
      run(txn, report, s, dry_run);
    if (!dry_run) txn.exec_params(kForgetCapture, id);
    report.removed.push_back(id);
  }
  const bool has_outbox = relation_exists(txn, "cqrs.outbox");
  if (has_outbox) {
    for (const auto& s : serializer_dispatch_ddl({}, q))
      run(txn, report, s, dry_run);
  }
  if (options.keep_schema || !has_outbox) return finish(txn, report, dry_run);

  // nothing can add a row now; the lock keeps an agent from reading meanwhile (a dry run takes
  // no lock: it must not stall the agent)
  const bool has_failed = relation_exists(txn, "cqrs.outbox_failed");
  if (!dry_run) {
    txn.exec(std::string("LOCK TABLE cqrs.outbox") + (has_failed ? ", cqrs.outbox_failed" : "") +
             " IN ACCESS EXCLUSIVE MODE");
  }
  // after the lock: a standby that took over before it shows now
  if (const auto pid = txn.exec_params1(kLockHolderSql, kAgentLockKey)[0].as<long long>();
      pid != 0) {
    throw CommandError(
        "master uninstall: an agent is running on this database (it holds the master lock, "
        "backend pid " +
        std::to_string(pid) +
        "); nothing was changed. Stop `pgcqrs master` and its standbys first, or pass "
        "--keep-schema to remove only the triggers and functions");
  }
  const Pending waiting = pending_in(txn, "cqrs.outbox");
  const Pending failed = has_failed ? pending_in(txn, "cqrs.outbox_failed") : Pending{};
  if ((waiting.rows != 0 || failed.rows != 0) && !options.discard_events) {
    std::string what;
    if (waiting.rows != 0) {
      what += "cqrs.outbox holds " + std::to_string(waiting.events) + " unpublished event(s) in " +
              std::to_string(waiting.rows) + " row(s)";
    }
    if (failed.rows != 0) {
      if (!what.empty()) what += " and ";
      what += "cqrs.outbox_failed holds " + std::to_string(failed.events) + " event(s) in " +
              std::to_string(failed.rows) +
              " row(s) set aside (docs/master.md, \"Rows that cannot be published\")";
    }
    throw CommandError(
        "master uninstall: " + what +
        "; nothing was changed. Run the agent (`pgcqrs master`) until they are published, "
        "pass --keep-schema to remove only the triggers and functions (the agent can drain the "
        "outbox after), or --discard-events to drop them too (replicas then miss those "
        "changes until a resync: cqrs_sync or the cqrs_diff pipeline)");
  }
  report.events_discarded = waiting.events + failed.events;
  for (const char* s : kDropMasterObjects)
    run(txn, report, s, dry_run);
  report.schema_objects_dropped = true;

  // schema_migrations is shared with the replica side (same database as both): drop it, and
  // the schema, only when nothing else is left
  run(txn, report, "DELETE FROM cqrs.schema_migrations WHERE component = 'master'", dry_run);
  const auto others = txn.exec1(kOtherComponents)[0].as<long long>();
  if (others == 0) run(txn, report, "DROP TABLE cqrs.schema_migrations", dry_run);
  report.schema_kept_for = left_in_schema(txn, report, dry_run, others == 0);
  if (report.schema_kept_for.empty()) {
    run(txn, report, "DROP SCHEMA cqrs", dry_run);
    report.schema_dropped = true;
  }
  return finish(txn, report, dry_run);
}

}  // namespace pgcqrs::master
