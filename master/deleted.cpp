// deleted-diff-master: one anti-join per line of replica keys against the master table.
#include "master/deleted.hpp"

#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/pg/error.hpp"
#include "common/pg/url.hpp"
#include "common/resync_lines.hpp"
#include "common/sql_name.hpp"
#include "master/table_info.hpp"

namespace pgcqrs::master {
namespace {

// The key column's type without its modifier, so that a cast never truncates a value
// (`character varying`, not `character varying(3)`).
constexpr std::string_view kKeyType = R"sql(
SELECT format_type(a.atttypid, NULL)
FROM pg_attribute a
WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped
)sql";

}  // namespace

DeletedDiffMasterReport deleted_diff_master(pqxx::connection& conn, const MasterConfig& config,
                                            std::istream& in, std::ostream& out,
                                            std::ostream& err) {
  DeletedDiffMasterReport report;
  std::string header;
  if (!std::getline(in, header)) {
    report.empty_input = true;
    return report;
  }
  const std::string cqrs_id = resync::header_cqrs_id(header);
  const MasterModel* model = nullptr;
  for (const auto& m : config.models) {
    if (m.cqrs_id == cqrs_id) model = &m;
  }
  if (model == nullptr) throw CommandError("Wrong CQRS ID: " + cqrs_id + "!");

  std::string key_type;
  std::string key;
  {
    pqxx::read_transaction txn(conn, "deleted-diff-master check");
    const TableInfo info = describe_table(txn, model->table);
    key = info.primary_key;
    const pqxx::result r = txn.exec_params(std::string(kKeyType), quoted(model->table), key);
    if (r.empty()) {
      throw CommandError("master.model '" + cqrs_id + "' (" + quoted(model->table) +
                         "): primary key column vanished; run again");
    }
    key_type = r[0][0].as<std::string>();
  }
  // ordinals (0-based) of the line's keys that no row has, in input order
  const std::string sql =
      "SELECT (e.ord - 1)::bigint FROM json_array_elements_text($1::json) WITH ORDINALITY "
      "AS e(k, ord)\nWHERE NOT EXISTS (SELECT 1 FROM " +
      conn.quote_name(model->table.schema) + "." + conn.quote_name(model->table.name) +
      " AS t WHERE t." + conn.quote_name(key) + " = e.k::" + key_type + ")\nORDER BY e.ord";
  const std::string statement = "pgcqrs_deleted_diff_master";
  conn.prepare(statement, sql);

  out << resync::trim_line(header) << '\n' << std::flush;
  std::string line;
  for (std::uint64_t number = 2; std::getline(in, line); ++number) {
    if (resync::trim_line(line).empty()) continue;
    ++report.lines;
    const resync::PkLine pks = resync::parse_pk_line(line);
    if (!pks.error.empty()) {
      ++report.bad_lines;
      err << "line " << number << ": skipped: " << pks.error << '\n' << std::flush;
      continue;
    }
    if (pks.pks.empty()) continue;
    std::vector<std::size_t> missing;
    try {
      // the line itself: json_array_elements_text gives each element's text (a number's
      // digits, a string's content), the same as resync::key_text
      pqxx::nontransaction txn(conn, "deleted-diff-master");
      for (const auto& row : txn.exec_prepared(statement, std::string(resync::trim_line(line))))
        missing.push_back(row[0].as<std::size_t>());
    } catch (const pqxx::broken_connection& e) {
      throw TransientError("deleted-diff-master line " + std::to_string(number) +
                           ": connection lost (" + pg::one_line(e.what()) + ")");
    } catch (const pqxx::sql_error& e) {
      ++report.bad_lines;
      err << "line " << number << ": skipped: " << pg::server_message_detailed(e) << '\n'
          << std::flush;
      continue;
    }
    report.checked += pks.pks.size();
    if (missing.empty()) continue;
    report.missing += missing.size();
    out << resync::json_list(pks.pks, missing) << '\n' << std::flush;
    err << "PK to delete: " << resync::python_list(pks.pks, missing) << '\n' << std::flush;
  }
  return report;
}

}  // namespace pgcqrs::master
