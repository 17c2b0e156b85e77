// cqrs_diff_master (pairs of a master table, keyset batches) and cqrs_diff_sync (lines -> SYNCs).
#include "master/diff.hpp"

#include <memory>
#include <unistd.h>
#include <vector>

#include "common/error.hpp"
#include "common/filter.hpp"
#include "common/pg/error.hpp"
#include "common/pg/session.hpp"
#include "common/progress.hpp"
#include "common/resync_lines.hpp"
#include "master/capture.hpp"
#include "master/outbox.hpp"
#include "master/sync.hpp"
#include "master/table_info.hpp"

namespace pgcqrs::master {
std::string diff_header(std::string_view cqrs_id, Timestamp now) {
  std::string out(cqrs_id);
  out += ',';
  out += format_django(now);
  return out;
}

DiffMasterReport diff_master(const Config& config, const DiffMasterOptions& options, std::FILE* out,
                             std::FILE* err) {
  if (!config.master) {
    throw ConfigError(config.source +
                      ": [master] is not configured; diff-master reads a master table");
  }
  const MasterModel* model = config.find_master_model(options.cqrs_id);
  if (model == nullptr) throw CommandError("Wrong CQRS ID: " + options.cqrs_id + "!");
  pg::Session db(config.master->database, "pgcqrs diff-master");
  // one snapshot for every batch: the pairs describe the table at the moment of line 1
  pqxx::transaction<pqxx::isolation_level::repeatable_read, pqxx::readwrite_policy::read_only> txn(
      db.conn(), "diff-master");
  txn.exec0("SET LOCAL TimeZone = 'UTC'");
  const Timestamp now = now_utc();
  const TableInfo info = describe_table(txn, model->table);
  const RowSql r = row_sql(*model, info, quoter_for(txn));
  CompiledFilter filter{"true", {}};
  if (options.filter) {
    std::vector<FilterColumn> columns;
    for (const auto& c : info.columns)
      columns.push_back({c.name, c.type});
    const auto quote = [&txn](const std::string& n) { return txn.quote_name(n); };
    filter = compile_filter(*options.filter, columns, info.primary_key, quote, "n", 1);
  }
  const std::size_t n = filter.params.size();
  // the batch's rows in key order: key text (the next bound), key JSON, revision, filter
  const auto batch_sql = [&](bool bounded) {
    std::string where = "(" + filter.sql + ")";
    if (bounded) {
      where += " AND " + r.pk + " > $";
      where += std::to_string(n + 1);
    }
    std::string limit(1, '$');
    limit.append(std::to_string(bounded ? n + 2 : n + 1));
    return "SELECT " + r.pk + "::text, " + r.pk_json + "::text, n.cqrs_revision, " + r.is_sync +
           " FROM " + r.from + " WHERE " + where + " ORDER BY " + r.pk + " LIMIT " + limit;
  };
  const std::string first_sql = batch_sql(false);
  const std::string next_sql = batch_sql(true);
  const std::string limit = std::to_string(std::max(1, options.batch));
  const std::vector<const char*> params = pg::param_pointers(filter.params);

  DiffMasterReport report;
  std::unique_ptr<Progress> progress;  // stdout is the data: a live line on stderr, if a terminal
  std::optional<std::string> last;
  std::string line;
  for (;;) {
    std::vector<const char*> p = params;
    if (last) p.push_back(last->c_str());
    p.push_back(limit.c_str());
    pqxx::result rows;
    try {
      rows = txn.exec_params(last ? next_sql : first_sql, pqxx::prepare::make_dynamic_params(p));
    } catch (const pqxx::data_exception& e) {
      throw CommandError("Bad filter kwargs! " + pg::server_message(e));
    }
    const auto count = static_cast<std::uint64_t>(rows.size());
    if (count == 0) break;
    if (!report.found) {
      report.found = true;
      std::fprintf(out, "%s\n", diff_header(options.cqrs_id, now).c_str());
      if (::isatty(::fileno(err)) == 1) {
        const auto total =
            txn.exec_params1("SELECT count(*) FROM " + r.from + " WHERE (" + filter.sql + ")",
                             pqxx::prepare::make_dynamic_params(params))[0]
                .as<std::uint64_t>();
        progress = std::make_unique<Progress>("Diffing " + options.cqrs_id, total, false, err);
      }
    }
    report.rows += count;
    line.clear();
    line += '[';
    bool first = true;
    for (const auto& row : rows) {
      if (!row[3].as<bool>()) continue;  // the model's filter (is_sync_instance) leaves it out
      if (!first) line += ',';
      first = false;
      line += '[';
      // the key's JSON as ujson writes it (`/` escaped, non-ASCII as \u escapes)
      if (!splice_json(line, row[1].c_str())) {
        throw Error("diff-master " + options.cqrs_id + ": key " + row[0].as<std::string>() +
                    " has no JSON form");
      }
      line += ',';
      line += row[2].c_str();
      line += ']';
      ++report.pairs;
    }
    line += ']';
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), out);
    ++report.lines;
    if (progress) progress->add(count);
    last = rows[rows.size() - 1][0].as<std::string>();
    if (count < static_cast<std::uint64_t>(std::max(1, options.batch))) break;
  }
  std::fflush(out);
  if (progress) progress->finish();
  txn.commit();
  if (!report.found) {
    std::fputs("No objects found for filter!\n", err);
    std::fflush(err);
  }
  return report;
}

DiffSyncTarget parse_diff_sync_header(std::string_view line) {
  const std::string_view t = resync::trim_line(line);
  const auto first = t.find(',');
  const auto last = t.rfind(',');
  if (t.empty() || first == std::string_view::npos || first == last) {
    throw CommandError(
        "line 1 '" + json::excerpt_string(t) +
        "': expected '<cqrs_id>,<time>,<queue>' (the first line of cqrs_diff_replica's output)");
  }
  DiffSyncTarget target;
  target.cqrs_id = std::string(t.substr(0, first));
  const std::string queue(resync::trim_line(t.substr(last + 1)));
  if (!queue.empty() && queue != "None") target.queue = queue;
  return target;
}

json::Json parse_key_line(std::string_view line) {
  json::Json keys = json::parse(resync::trim_line(line), {}, "primary keys");
  if (!keys.is_array()) {
    throw MessageError("primary keys: a JSON " + std::string(json::type_name(keys)) +
                       ", not an array");
  }
  for (const auto& k : keys) {
    if (!k.is_string() && !json::is_number(k)) {
      throw MessageError("primary key " + json::excerpt(k, 40) + ": not a number or string");
    }
  }
  return keys;
}

DiffSyncReport diff_sync(const Config& config, std::istream& in, const DiffSyncOptions& options,
                         std::FILE* out, std::FILE* err) {
  std::string line;
  if (!std::getline(in, line) || resync::trim_line(line).empty()) {
    throw CommandError("the input is empty: expected the output of cqrs_diff_replica");
  }
  const DiffSyncTarget target = parse_diff_sync_header(line);
  Syncer syncer(config, target.cqrs_id);
  SyncOptions so;
  so.queue = target.queue;
  so.batch = options.batch;
  so.progress = options.progress;
  DiffSyncReport report;
  std::uint64_t number = 1;
  while (std::getline(in, line)) {
    ++number;
    if (resync::trim_line(line).empty()) continue;
    ++report.lines;
    json::Json keys;
    try {
      keys = parse_key_line(line);
    } catch (const MessageError& e) {
      ++report.bad_lines;
      std::fprintf(err, "diff-sync: line %llu: %s; skipped\n",
                   static_cast<unsigned long long>(number), e.what());
      std::fflush(err);
      continue;
    }
    try {
      const SyncReport r = syncer.sync_keys(keys, so, out);
      report.synced += r.synced;
      report.processed += r.processed;
      report.failed += r.failed;
    } catch (const MessageError& e) {
      // a key the key column's type refuses ("abc" for an integer key)
      ++report.bad_lines;
      std::fprintf(err, "diff-sync: line %llu: primary keys %s: %s; skipped\n",
                   static_cast<unsigned long long>(number), json::excerpt(keys, 60).c_str(),
                   e.what());
      std::fflush(err);
    }
  }
  return report;
}

}  // namespace pgcqrs::master
