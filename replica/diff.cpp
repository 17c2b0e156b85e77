// cqrs_diff_replica: master [pk, revision] lines -> one set-based query per line -> differing pks.
#include "replica/diff.hpp"

#include <string>

#include "common/error.hpp"
#include "common/pg/error.hpp"
#include "common/pg/session.hpp"
#include "common/resync_lines.hpp"
#include "replica/table_info.hpp"

namespace pgcqrs::replica {
namespace {

// `{"a","b\"c"}`: every element quoted, so no text needs to be told from NULL or a nested array.
void append_text_array(std::string& out, const std::vector<std::string>& items) {
  out += '{';
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (const char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
}

}  // namespace

MasterPairs parse_pairs_line(std::string_view line) {
  const json::Json pairs = json::parse(resync::trim_line(line), {}, "pairs");
  if (!pairs.is_array()) {
    throw MessageError("pairs: a JSON " + std::string(json::type_name(pairs)) +
                       ", not an array of [pk, revision]");
  }
  MasterPairs out;
  out.keys.reserve(pairs.size());
  out.key_texts.reserve(pairs.size());
  out.revisions.reserve(pairs.size());
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const json::Json& p = pairs[i];
    const std::string where = "pair " + std::to_string(i + 1) + " " + json::excerpt(p, 40);
    if (!p.is_array() || p.size() != 2) throw MessageError(where + ": not a [pk, revision] pair");
    if (!p[0].is_string() && !json::is_number(p[0])) {
      throw MessageError(where + ": the primary key is not a number or string");
    }
    if (!p[1].is_number_integer()) throw MessageError(where + ": the revision is not an integer");
    out.keys.push_back(p[0]);
    out.key_texts.push_back(resync::key_text(p[0]));
    out.revisions.push_back(p[1].is_number_unsigned()
                                ? static_cast<std::int64_t>(p[1].get<std::uint64_t>())
                                : p[1].get<std::int64_t>());
  }
  return out;
}

std::string diff_replica_header(std::string_view master_line, std::string_view queue) {
  std::string out(resync::trim_line(master_line));
  out += ',';
  out += queue;
  return out;
}

DiffReplicaReport diff_replica(const Config& config, std::istream& in, std::FILE* out,
                               std::FILE* err) {
  if (!config.replica) {
    throw ConfigError(config.source +
                      ": [replica] is not configured; diff-replica reads a replica table");
  }
  std::string line;
  if (!std::getline(in, line) || resync::trim_line(line).empty()) {
    throw CommandError("the input is empty: expected the output of cqrs_diff_master");
  }
  const std::string first(resync::trim_line(line));
  const std::string cqrs_id = first.substr(0, first.find(','));
  const ReplicaModel* model = config.find_replica_model(cqrs_id);
  if (model == nullptr) throw CommandError("Wrong CQRS ID: " + cqrs_id + "!");

  pg::Session db(config.replica->database, "pgcqrs diff-replica");
  std::string sql;
  {
    pqxx::nontransaction txn(db.conn());
    const TableLookup t = lookup_table(txn, model->table);
    const std::string which = "replica model '" + cqrs_id + "' table " + quoted(model->table);
    if (!t.found) throw CommandError(which + ": not found in the replica database");
    if (t.info.primary_key.empty()) {
      throw CommandError(which + ": has no single-column primary key to compare by");
    }
    if (t.info.column("cqrs_revision") == nullptr) {
      throw CommandError(which + ": has no cqrs_revision column to compare");
    }
    const Column& key = *t.info.column(t.info.primary_key);
    const std::string pk = "t." + txn.quote_name(key.name);
    // the keys are bound as an array of the key's base type (no typmod, which could shorten
    // a value, `varchar(3)`, and match another row): parsed once by the type's input function,
    // then joined without a cast per row
    sql = "SELECT i.o FROM unnest($1::" + txn.quote_name(key.base_type) +
          "[], $2::bigint[]) WITH ORDINALITY AS i(k, r, o) LEFT JOIN " +
          txn.quote_name(model->table.schema) + "." + txn.quote_name(model->table.name) +
          " AS t ON " + pk + " = i.k WHERE " + pk +
          " IS NULL OR t.cqrs_revision IS DISTINCT FROM i.r ORDER BY i.o";
  }
  db.prepare("diff_replica", sql);

  std::fprintf(out, "%s\n", diff_replica_header(first, config.replica->queue).c_str());
  std::fflush(out);

  DiffReplicaReport report;
  std::uint64_t number = 1;
  std::string keys_param, revs_param, result;
  while (std::getline(in, line)) {
    ++number;
    if (resync::trim_line(line).empty()) continue;
    ++report.lines;
    const auto skip = [&](const std::string& why) {
      ++report.bad_lines;
      std::fprintf(err, "diff-replica: line %llu: %s; skipped\n",
                   static_cast<unsigned long long>(number), why.c_str());
      std::fflush(err);
    };
    MasterPairs pairs;
    try {
      pairs = parse_pairs_line(line);
    } catch (const MessageError& e) {
      skip(e.what());
      continue;
    }
    report.pairs += pairs.keys.size();
    if (pairs.keys.empty()) continue;
    keys_param.clear();
    append_text_array(keys_param, pairs.key_texts);
    revs_param = "{";
    for (std::size_t i = 0; i < pairs.revisions.size(); ++i) {
      if (i > 0) revs_param += ',';
      revs_param += std::to_string(pairs.revisions[i]);
    }
    revs_param += '}';
    pqxx::result r;
    try {
      pqxx::nontransaction txn(db.conn());
      r = txn.exec_prepared("diff_replica", keys_param, revs_param);
    } catch (const pqxx::data_exception& e) {
      skip("a primary key is not a value of the key column's type: " + pg::server_message(e));
      continue;
    }
    if (r.empty()) continue;
    std::vector<std::size_t> differing;  // 0-based positions in the line, in its order
    differing.reserve(r.size());
    for (const auto& row : r) {
      differing.push_back(row[0].as<std::size_t>() - 1);
    }
    report.differing += differing.size();
    result = resync::json_list(pairs.keys, differing);
    result += '\n';
    std::fwrite(result.data(), 1, result.size(), out);
    std::fflush(out);
    std::fprintf(err, "PK to resync: %s\n", resync::python_set(pairs.keys, differing).c_str());
    std::fflush(err);
  }
  return report;
}

}  // namespace pgcqrs::replica
