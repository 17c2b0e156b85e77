// deleted-diff-replica and deleted-sync-replica: keyset listing of a replica's primary keys,
// and deletion (with tombstones) of the keys the master no longer has.
#include "replica/deleted.hpp"

#include <functional>
#include <istream>
#include <ostream>
#include <string>
#include <unistd.h>
#include <vector>

#include "common/error.hpp"
#include "common/filter.hpp"
#include "common/json.hpp"
#include "common/pg/error.hpp"
#include "common/pg/url.hpp"
#include "common/progress.hpp"
#include "common/resync_lines.hpp"
#include "common/sql_name.hpp"
#include "common/timestamp.hpp"
#include "replica/applier.hpp"
#include "replica/install.hpp"
#include "replica/table_info.hpp"

namespace pgcqrs::replica {
namespace {

// The key column's type without its modifier (so that a cast never truncates: `character
// varying`, not `character varying(3)`), and whether its values are numbers.
constexpr std::string_view kKeyType = R"sql(
SELECT format_type(a.atttypid, NULL), t.typcategory = 'N'
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped
)sql";

// What the deleted commands need of a model's table.
struct KeyedTable {
  TableInfo info;
  std::string key_type;  // format_type without modifier
  bool numeric = false;
};

const ReplicaModel& find_model(const ReplicaConfig& config, const std::string& cqrs_id) {
  for (const auto& m : config.models) {
    if (m.cqrs_id == cqrs_id) return m;
  }
  throw CommandError("Wrong CQRS ID: " + cqrs_id + "!");
}

KeyedTable keyed_table(pqxx::transaction_base& txn, const ReplicaModel& m) {
  const std::string which = "replica.model '" + m.cqrs_id + "' (" + quoted(m.table) + ")";
  if (m.apply_function) {
    throw CommandError(which + ": served by apply_function " + *m.apply_function +
                       ", not a table; the deleted-rows pipeline works on tables only");
  }
  TableLookup lookup = lookup_table(txn, m.table);
  if (!lookup.found) {
    throw CommandError(which + ": table not found in the replica database");
  }
  if (lookup.info.primary_key.empty()) {
    throw CommandError(which + ": needs a single-column primary key (it has " +
                       std::to_string(lookup.key_columns.size()) + " key columns)");
  }
  KeyedTable out;
  out.info = std::move(lookup.info);
  const pqxx::result r =
      txn.exec_params(std::string(kKeyType), quoted(m.table), out.info.primary_key);
  if (r.empty()) throw CommandError(which + ": primary key column vanished; run again");
  out.key_type = r[0][0].as<std::string>();
  out.numeric = r[0][1].as<bool>();
  return out;
}

bool stderr_is_terminal() {
  return ::isatty(STDERR_FILENO) == 1;
}

}  // namespace

// ---- writing a pk line --------------------------------------------------------------------

void append_pk(std::string& array, std::string_view text, bool numeric) {
  if (array.size() > 1) array += ',';
  if (numeric && json::is_number_text(text)) {
    array += text;
  } else {
    json::dump_to(array, json::Json(std::string(text)));
  }
}

// ---- deleted-diff-replica -----------------------------------------------------------------

DeletedDiffReport deleted_diff_replica(pqxx::connection& conn, const ReplicaConfig& config,
                                       const DeletedDiffOptions& options, std::ostream& out,
                                       std::ostream& err) {
  if (options.batch < 1) {
    throw CommandError("--batch " + std::to_string(options.batch) + ": must be at least 1");
  }
  const ReplicaModel& model = find_model(config, options.cqrs_id);
  pqxx::transaction<pqxx::isolation_level::repeatable_read, pqxx::readwrite_policy::read_only> txn(
      conn, "deleted-diff-replica");
  txn.exec("SET LOCAL TimeZone = 'UTC'");
  txn.exec("SET LOCAL DateStyle = 'ISO, YMD'");
  const KeyedTable table = keyed_table(txn, model);
  const auto quote = [&txn](const std::string& name) { return txn.quote_name(name); };

  CompiledFilter filter{"true", {}};
  if (options.filter) {
    std::vector<FilterColumn> columns;
    columns.reserve(table.info.columns.size());
    for (const auto& c : table.info.columns)
      columns.push_back({c.name, c.type});
    filter = compile_filter(*options.filter, columns, table.info.primary_key, quote, "t", 1);
  }
  const std::string pk = "t." + quote(table.info.primary_key);
  const std::string from = " FROM " + quote(model.table.schema) + "." + quote(model.table.name) +
                           " AS t WHERE (" + filter.sql + ")";
  const std::size_t n = filter.params.size();
  const std::string first_sql =
      "SELECT " + pk + "::text" + from + " ORDER BY " + pk + " LIMIT $" + std::to_string(n + 1);
  const std::string next_sql = "SELECT " + pk + "::text" + from + " AND " + pk + " > $" +
                               std::to_string(n + 1) + "::" + table.key_type + " ORDER BY " + pk +
                               " LIMIT $" + std::to_string(n + 2);
  const std::string count_sql = "SELECT count(*)" + from;

  std::vector<const char*> params = pg::param_pointers(filter.params);
  const std::string limit = std::to_string(options.batch);
  const auto run = [&](const std::string& sql, const std::vector<const char*>& p,
                       bool filter_check) {
    try {
      return txn.exec_params(sql, pqxx::prepare::make_dynamic_params(p));
    } catch (const pqxx::sql_error& e) {
      // a value the column's type refuses (`{"id": "abc"}`) shows up at the first statement
      const std::string cls = e.sqlstate().substr(0, 2);
      if (filter_check && options.filter && (cls == "22" || cls == "42")) {
        throw CommandError("Bad filter kwargs! " + pg::server_message_detailed(e));
      }
      throw;
    }
  };

  const Progress::Mode mode = Progress::choose_mode(options.progress, stderr_is_terminal());
  std::uint64_t total = 0;
  if (mode != Progress::Mode::kSilent) {
    total = run(count_sql, params, true)[0][0].as<std::uint64_t>();
  }
  DeletedDiffReport report;
  std::optional<Progress> progress;
  std::string last;
  std::string line;
  for (bool first = true;; first = false) {
    std::vector<const char*> p = params;
    if (!first) p.push_back(last.c_str());
    p.push_back(limit.c_str());
    const pqxx::result r = run(first ? first_sql : next_sql, p, first);
    if (r.empty()) break;
    if (first) {
      out << model.cqrs_id << ',' << format_django(now_utc()) << '\n';
      progress.emplace("Listing " + model.cqrs_id, total, options.progress);
    }
    line.assign("[");
    for (const auto& row : r)
      append_pk(line, row[0].c_str(), table.numeric);
    line += "]\n";
    out << line << std::flush;
    last = r[r.size() - 1][0].as<std::string>();
    report.rows += r.size();
    ++report.lines;
    progress->add(r.size());
    if (r.size() < static_cast<std::size_t>(options.batch)) break;
  }
  txn.commit();
  if (report.rows == 0) err << "No objects found for filter!\n";
  return report;
}

// ---- deleted-sync-replica -----------------------------------------------------------------

namespace {

// Deletes the keys of one line and records their tombstones, in one statement: $1 the keys as
// a JSON array of their text forms, $2 the cqrs_id. Returns the rows deleted. The tombstone's
// time is one microsecond after the deleted row's cqrs_updated (when the table has that
// column): the master deleted the row at some unknown time after it wrote what the replica
// had, so a SAVE written after that (a row the master created again) passes the tombstone, and
// the SAVEs the replica had already applied do not.
std::string delete_sql(const ReplicaModel& m, const KeyedTable& t,
                       const std::function<std::string(const std::string&)>& quote) {
  const std::string pk = quote(t.info.primary_key);
  const std::string updated = t.info.column("cqrs_updated") != nullptr
                                  ? "t.cqrs_updated::timestamptz + interval '1 microsecond'"
                                  : "NULL::timestamptz";
  return "WITH d AS (\n  DELETE FROM " + quote(m.table.schema) + "." + quote(m.table.name) +
         " AS t\n  WHERE t." + pk + " = ANY (ARRAY(SELECT k::" + t.key_type +
         " FROM json_array_elements_text($1::json) AS k))\n  RETURNING t." + pk +
         "::text AS k, t.cqrs_revision::bigint AS rev, " + updated +
         " AS upd\n),\n"
         "tomb AS (\n  INSERT INTO cqrs.tombstone AS ts (cqrs_id, pk, revision, updated)\n"
         "  SELECT $2, d.k, d.rev, d.upd FROM d\n"
         "  ON CONFLICT (cqrs_id, pk) DO UPDATE\n"
         "  SET revision = greatest(ts.revision, EXCLUDED.revision),\n"
         "      updated = greatest(ts.updated, EXCLUDED.updated), deleted_at = now()\n)\n"
         "SELECT count(*) FROM d";
}

}  // namespace

DeletedSyncReport deleted_sync_replica(pqxx::connection& conn, const ReplicaConfig& config,
                                       std::istream& in, std::ostream& err, bool progress) {
  DeletedSyncReport report;
  std::string header;
  if (!std::getline(in, header)) {
    report.empty_input = true;
    return report;
  }
  const ReplicaModel& model = find_model(config, resync::header_cqrs_id(header));
  KeyedTable table;
  {
    pqxx::read_transaction txn(conn, "deleted-sync-replica check");
    require_schema(txn);
    table = keyed_table(txn, model);
    if (table.info.column("cqrs_revision") == nullptr) {
      throw CommandError("replica.model '" + model.cqrs_id + "' (" + quoted(model.table) +
                         "): column \"cqrs_revision\" missing; run `pgcqrs migrate` to see "
                         "the fix");
    }
  }
  const std::string sql =
      delete_sql(model, table, [&conn](const std::string& name) { return conn.quote_name(name); });
  const std::string statement = "pgcqrs_deleted_sync";
  conn.prepare(statement, sql);

  Progress shown("Deleting " + model.cqrs_id, 0, progress);
  std::string line;
  for (std::uint64_t number = 2; std::getline(in, line); ++number) {
    if (resync::trim_line(line).empty()) continue;
    ++report.lines;
    resync::PkLine pks = resync::parse_pk_line(line);
    if (!pks.error.empty()) {
      ++report.bad_lines;
      err << "line " << number << ": skipped: " << pks.error << '\n' << std::flush;
      continue;
    }
    report.requested += pks.pks.size();
    if (pks.pks.empty()) continue;
    json::Json texts = json::Json::array();
    std::vector<std::string> lock_texts;
    lock_texts.reserve(pks.pks.size());
    for (const auto& pk : pks.pks) {
      lock_texts.push_back(resync::key_text(pk));
      texts.push_back(lock_texts.back());
    }
    try {
      pqxx::work txn(conn, "deleted-sync-replica");
      // the consumer's per-key locks: an apply of the same keys waits for this delete and then
      // sees its tombstones (or this delete waits for the apply and deletes what it wrote)
      lock_keys(txn, model.cqrs_id, lock_texts);
      const pqxx::result r = txn.exec_prepared(statement, json::dump(texts), model.cqrs_id);
      txn.commit();
      report.deleted += r[0][0].as<std::uint64_t>();
    } catch (const pqxx::broken_connection& e) {
      throw TransientError("deleted-sync-replica line " + std::to_string(number) +
                           ": connection lost (" + pg::one_line(e.what()) +
                           "); the lines before it were applied, run again from this line");
    } catch (const pqxx::in_doubt_error& e) {
      throw TransientError("deleted-sync-replica line " + std::to_string(number) +
                           ": connection lost during COMMIT (" + pg::one_line(e.what()) +
                           "); the line may or may not be applied; running it again is safe");
    } catch (const pqxx::sql_error& e) {
      ++report.bad_lines;
      err << "line " << number << ": not deleted: " << pg::server_message_detailed(e) << '\n'
          << std::flush;
      continue;
    }
    shown.add(pks.pks.size());
  }
  return report;
}

}  // namespace pgcqrs::replica
