// cqrs_bulk_load: lines parsed and mapped in batches, applied with the consumer's guarded upsert.
#include "replica/load.hpp"

#include <algorithm>
#include <cctype>
#include <future>
#include <utility>

#include "common/error.hpp"
#include "common/event.hpp"
#include "common/pg/error.hpp"
#include "common/progress.hpp"
#include "replica/applier.hpp"
#include "replica/install.hpp"

namespace pgcqrs::replica {
namespace {

std::string line_message(std::string_view what, std::uint64_t line) {
  std::string m(what);
  m.append(": line ").append(std::to_string(line)).append("!");
  return m;
}

bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

void print(std::FILE* err, const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), err);
  std::fputc('\n', err);
}

}  // namespace

std::string file_missing_message(const std::string& name) {
  std::string m = "File ";
  m.append(name).append(" doesn't exist!");
  return m;
}

std::string file_empty_message(const std::string& name) {
  std::string m = "File ";
  m.append(name).append(" is empty!");
  return m;
}

std::string wrong_cqrs_id_message(std::string_view id) {
  std::string m = "Wrong CQRS ID: ";
  m.append(id).append("!");
  return m;
}

std::string cant_parse_message(std::uint64_t line) {
  return line_message("Dump file can't be parsed", line);
}

std::string cant_save_message(std::uint64_t line) {
  return line_message("Instance can't be saved", line);
}

std::string unexpected_message(std::uint64_t line, std::string_view cause) {
  std::string m = line_message("Unexpected error", line);
  m.append(" ").append(cause);
  return m;
}

std::string loaded_message(std::uint64_t loaded) {
  std::string m = "Done!\n";
  m.append(std::to_string(loaded)).append(" instance(s) loaded.");
  return m;
}

std::string_view strip(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_space(s.back()))
    s.remove_suffix(1);
  return s;
}

std::optional<bool> parse_bool(std::string_view text) noexcept {
  std::string t;
  for (const char c : strip(text))
    t.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  for (const std::string_view yes : {"true", "1", "yes", "on", "t", "y"}) {
    if (t == yes) return true;
  }
  for (const std::string_view no : {"false", "0", "no", "off", "f", "n"}) {
    if (t == no) return false;
  }
  return std::nullopt;
}

PreparedLine prepare_line(const Target& target, std::string_view line, std::uint64_t line_number) {
  PreparedLine out;
  json::Json data;
  try {
    data = json::parse(strip(line), {}, "dump line");
  } catch (const std::exception& e) {
    out.message = cant_parse_message(line_number);
    out.reason = e.what();
    return out;
  }
  if (!data.is_object()) {
    out.message = cant_save_message(line_number);
    out.reason = "dump line: a JSON " + std::string(json::type_name(data)) + ", not an object";
    return out;
  }
  Event e;
  e.signal = Signal::kSave;
  e.cqrs_id = target.model.cqrs_id;
  e.instance_data = std::move(data);
  e.expires = std::nullopt;
  try {
    out.row = map_event(target, std::move(e), line_number);
  } catch (const MessageError& err) {
    out.message = cant_save_message(line_number);
    out.reason = err.what();
  }
  return out;
}

std::string read_cqrs_id(std::istream& in, const std::string& name) {
  std::string line;
  if (!std::getline(in, line)) throw CommandError(file_empty_message(name));
  const std::string_view id = strip(line);
  if (id.empty()) throw CommandError(file_empty_message(name));
  return std::string(id);
}

Target load_target(pqxx::connection& conn, const ReplicaConfig& config,
                   const std::string& cqrs_id) {
  ReplicaConfig one = config;
  one.models.clear();
  for (const auto& m : config.models) {
    if (m.cqrs_id == cqrs_id) one.models.push_back(m);
  }
  if (one.models.empty()) throw CommandError(wrong_cqrs_id_message(cqrs_id));
  pqxx::read_transaction txn(conn);
  require_schema(txn);
  std::vector<Target> targets = load_targets(txn, one);
  return std::move(targets.front());
}

void clear_table(pqxx::connection& conn, const Target& target) {
  if (target.uses_function()) {
    throw CommandError(std::string(kDeleteFailed) + " replica.model '" + target.model.cqrs_id +
                       "' has an apply_function: there is no table to clear");
  }
  try {
    pqxx::work txn(conn, "pgcqrs bulk-load clear");
    txn.exec0("DELETE FROM " + quoted(target.table.table));
    txn.commit();
  } catch (const pqxx::broken_connection&) {
    throw;
  } catch (const pqxx::sql_error& e) {
    std::string cause = e.what();
    while (!cause.empty() && (cause.back() == '\n' || cause.back() == ' '))
      cause.pop_back();
    throw CommandError(std::string(kDeleteFailed) + " " + cause);
  }
}

namespace {

// The lines of one transaction, read and mapped (on the read-ahead thread).
struct ReadBatch {
  Plan plan;
  std::vector<std::pair<std::uint64_t, std::string>> messages;  // (line, message)
  std::uint64_t first = 0;                                      // first and last line number
  std::uint64_t last = 0;
  std::size_t taken = 0;  // lines read
  bool eof = false;
};

ReadBatch read_batch(const Target& target, std::istream& in, std::size_t batch_size,
                     std::uint64_t& line_number) {
  ReadBatch b;
  Batch batch;
  b.first = line_number + 1;
  std::string line;
  while (b.taken < batch_size) {
    if (!std::getline(in, line)) {
      b.eof = true;
      break;
    }
    ++line_number;
    ++b.taken;
    PreparedLine p = prepare_line(target, line, line_number);
    if (!p.row) {
      b.messages.emplace_back(line_number, std::move(p.message));
      continue;
    }
    batch.add(target, std::move(*p.row));
  }
  b.last = line_number;
  b.plan = batch.newest_per_row();
  return b;
}

}  // namespace

LoadCounts load_lines(pqxx::connection& conn, const Target& target, std::istream& in,
                      const LoadOptions& options, std::FILE* err) {
  const std::size_t batch_size = options.batch > 0 ? static_cast<std::size_t>(options.batch) : 1;
  // live on a terminal only: django-cqrs's bulk_load has no --progress
  Progress progress("Loading " + target.model.cqrs_id, 0, false, err);
  ApplyOptions apply_options;
  // One bulk-load process per table: per-key advisory locks would fill the lock table
  // (max_locks_per_transaction) at 10,000 keys per transaction.
  apply_options.lock_keys = false;

  LoadCounts counts;
  std::uint64_t line_number = 1;
  // the next batch is read and mapped while the server applies this one (one read at a time,
  // so `in` and `line_number` are only ever touched by one thread)
  const auto read_next = [&] {
    return std::async(std::launch::async,
                      [&] { return read_batch(target, in, batch_size, line_number); });
  };
  std::future<ReadBatch> next = read_next();
  for (;;) {
    ReadBatch b = next.get();
    if (!b.eof) next = read_next();
    counts.lines += b.taken;
    const std::string context = "load " + target.model.cqrs_id + " lines " +
                                std::to_string(b.first) + ".." + std::to_string(b.last);
    if (!b.plan.groups.empty()) {
      try {
        pqxx::work txn(conn, "pgcqrs bulk-load");
        std::uint64_t loaded = b.plan.superseded.size();
        std::uint64_t inserted = 0;
        std::uint64_t updated = 0;
        std::uint64_t skipped = b.plan.superseded.size();
        for (const Group& g : b.plan.groups) {
          if (!target.uses_function()) {
            // the fast path: one statement per batch; on a value a column refuses, back to
            // apply_isolating(), which finds the bad lines
            std::optional<BulkSaveResult> fast;
            txn.exec0("SAVEPOINT pgcqrs_load");
            try {
              fast = save_bulk(txn, target, g.rows);
              txn.exec0("RELEASE SAVEPOINT pgcqrs_load");
            } catch (const pg::SqlError& e) {
              const std::string_view cls = std::string_view(e.sqlstate()).substr(0, 2);
              if (cls != "22" && cls != "23" && cls != "21") throw;
              txn.exec0("ROLLBACK TO SAVEPOINT pgcqrs_load");
            }
            if (fast) {
              loaded += g.rows.size();
              inserted += fast->inserted;
              updated += fast->updated;
              skipped += fast->skipped;
              continue;
            }
          }
          const ApplyResult r = apply_isolating(txn, target, g.rows, apply_options);
          for (std::size_t i = 0; i < r.rows.size(); ++i) {
            if (r.rows[i].outcome == Outcome::kFailed) {
              b.messages.emplace_back(g.rows[i].delivery,
                                      unexpected_message(g.rows[i].delivery, r.rows[i].error));
            } else {
              ++loaded;
            }
          }
          inserted += r.inserted;
          updated += r.updated;
          skipped += r.skipped;
        }
        txn.commit();
        counts.loaded += loaded;
        counts.inserted += inserted;
        counts.updated += updated;
        counts.skipped += skipped;
      } catch (const pqxx::broken_connection& e) {
        throw TransientError(context + ": " + e.what());
      } catch (const std::exception& e) {
        rethrow_with_context(e, context);
      }
    }
    std::stable_sort(b.messages.begin(), b.messages.end(),
                     [](const auto& x, const auto& y) { return x.first < y.first; });
    for (const auto& [l, text] : b.messages)
      print(err, text);
    if (!b.messages.empty()) std::fflush(err);
    progress.add(b.taken);
    if (b.eof) break;
  }
  progress.finish();
  return counts;
}

}  // namespace pgcqrs::replica
