// deleted-diff-master: one anti-join per line of replica keys against the master table.
#include "master/deleted.hpp"

#include <cctype>
#include <istream>
#include <ostream>

#include "common/error.hpp"
#include "common/pg/error.hpp"
#include "common/pg/url.hpp"
#include "common/sql_name.hpp"
#include "master/table_info.hpp"

namespace pgcqrs::master {
namespace {

constexpr std::size_t kMaxLineBytes = std::size_t{256} << 20;

// The key column's type without its modifier, so that a cast never truncates a value
// (`character varying`, not `character varying(3)`).
constexpr std::string_view kKeyType = R"sql(
SELECT format_type(a.atttypid, NULL)
FROM pg_attribute a
WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped
)sql";

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return s;
}

void python_repr(std::string& out, const json::Json& pk) {
  if (!pk.is_string()) {
    out += json::number_text(pk);
    return;
  }
  const std::string s = pk.get<std::string>();
  const char quote =
      s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
  out += quote;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\\' || c == quote) {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  out += quote;
}

}  // namespace

std::string header_cqrs_id(std::string_view line) {
  line = trim(line);
  return std::string(trim(line.substr(0, line.find(','))));
}

PkLine parse_pk_line(std::string_view line) {
  PkLine out;
  line = trim(line);
  if (line.empty()) {
    out.error = "empty line: expected a JSON array of primary keys";
    return out;
  }
  json::Json v;
  try {
    v = json::parse(line, json::ParseLimits{kMaxLineBytes, 64}, "JSON");
  } catch (const std::exception& e) {
    out.error = std::string("not a JSON array of primary keys: ") + e.what();
    return out;
  }
  if (!v.is_array()) {
    out.error = "not a JSON array of primary keys: a JSON " + std::string(json::type_name(v));
    return out;
  }
  for (std::size_t i = 0; i < v.size(); ++i) {
    const json::Json& e = v[i];
    if (!e.is_string() && !json::is_number(e)) {
      out.error = "element " + std::to_string(i + 1) + " is ";
      out.error += e.is_null() ? "null" : "a JSON " + std::string(json::type_name(e));
      out.error += " (" + json::excerpt(e, 40) + "): a primary key is a number or a string";
      return out;
    }
  }
  out.pks.reserve(v.size());
  for (auto& e : v)
    out.pks.push_back(std::move(e));
  return out;
}

std::string json_list(const std::vector<json::Json>& pks,
                      const std::vector<std::size_t>& positions) {
  std::string out = "[";
  for (const std::size_t i : positions) {
    if (out.size() > 1) out += ',';
    json::dump_to(out, pks.at(i));
  }
  out += ']';
  return out;
}

std::string python_list(const std::vector<json::Json>& pks,
                        const std::vector<std::size_t>& positions) {
  std::string out = "[";
  for (const std::size_t i : positions) {
    if (out.size() > 1) out += ", ";
    python_repr(out, pks.at(i));
  }
  out += ']';
  return out;
}

DeletedDiffMasterReport deleted_diff_master(pqxx::connection& conn, const MasterConfig& config,
                                            std::istream& in, std::ostream& out,
                                            std::ostream& err) {
  DeletedDiffMasterReport report;
  std::string header;
  if (!std::getline(in, header)) {
    report.empty_input = true;
    return report;
  }
  const std::string cqrs_id = header_cqrs_id(header);
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

  out << trim(header) << '\n' << std::flush;
  std::string line;
  for (std::uint64_t number = 2; std::getline(in, line); ++number) {
    if (trim(line).empty()) continue;
    ++report.lines;
    const PkLine pks = parse_pk_line(line);
    if (!pks.error.empty()) {
      ++report.bad_lines;
      err << "line " << number << ": skipped: " << pks.error << '\n' << std::flush;
      continue;
    }
    if (pks.pks.empty()) continue;
    std::vector<std::size_t> missing;
    try {
      // the line itself: json_array_elements_text gives each element's text (a number's
      // digits, a string's content), the same as pk_text would
      pqxx::nontransaction txn(conn, "deleted-diff-master");
      for (const auto& row : txn.exec_prepared(statement, std::string(trim(line))))
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
    out << json_list(pks.pks, missing) << '\n' << std::flush;
    err << "PK to delete: " << python_list(pks.pks, missing) << '\n' << std::flush;
  }
  return report;
}

}  // namespace pgcqrs::master
