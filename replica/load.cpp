// cqrs_bulk_load: lines parsed and mapped in batches, applied with the consumer's guarded upsert.
#include "replica/load.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <future>
#include <map>
#include <stdexcept>
#include <utility>

#include "common/error.hpp"
#include "common/event.hpp"
#include "common/pg/error.hpp"
#include "common/pg/pqxx.hpp"
// not in <pqxx/pqxx> (deprecated in 6.4, but the only public way to send raw COPY data)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <pqxx/tablewriter>
#pragma GCC diagnostic pop
#include "common/progress.hpp"
#include "replica/applier.hpp"
#include "replica/install.hpp"
#include "replica/load_fast.hpp"

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

namespace {

// format_type() spelling of each accepted pg_type.typname (a domain's format_type is its own
// name, so domains are left out).
bool copy_type(const Column& c) {
  static const std::pair<std::string_view, std::string_view> kTypes[] = {
      {"int2", "smallint"},     {"int4", "integer"},        {"int8", "bigint"},
      {"numeric", "numeric"},   {"float4", "real"},         {"float8", "double precision"},
      {"bool", "boolean"},      {"text", "text"},           {"varchar", "character varying"},
      {"bpchar", "character"},  {"date", "date"},           {"time", "time"},
      {"timetz", "time"},       {"timestamp", "timestamp"}, {"timestamptz", "timestamp"},
      {"interval", "interval"}, {"uuid", "uuid"},           {"json", "json"},
      {"jsonb", "jsonb"},
  };
  for (const auto& [base, spelled] : kTypes) {
    if (c.base_type != base) continue;
    const std::string_view t = c.type;
    if (t.substr(0, spelled.size()) != spelled) return false;
    return t.size() == spelled.size() || t[spelled.size()] == ' ' || t[spelled.size()] == '(';
  }
  return false;
}

bool is_json_column(const Column& c) {
  return c.base_type == "json" || c.base_type == "jsonb";
}

}  // namespace

bool copy_compatible(const Target& target) {
  if (target.uses_function() || target.table.primary_key.empty()) return false;
  return std::all_of(target.table.columns.begin(), target.table.columns.end(), copy_type);
}

void copy_text(std::string& out, const Target& target, const Row& row) {
  std::size_t n = 0;
  std::string text;
  for (auto it = row.data.begin(); it != row.data.end(); ++it) {
    const json::Json& value = *it;
    const Column& c = target.table.columns[row.columns[n]];
    if (n++ > 0) out += '\t';
    if (value.is_null()) {
      out.append("\\N");
    } else if (value.is_string()) {
      const auto& s = value.get_ref<const std::string&>();
      if (is_json_column(c)) {
        // json_to_record makes a string into json/jsonb the JSON string literal escape_json()
        // writes for it
        text.clear();
        json::append_pg_json_string(text, s);
        copy_escape(out, text);
      } else {
        copy_escape(out, s);
      }
    } else {
      text.clear();
      json::dump_to(text, value);
      copy_escape(out, text);
    }
  }
  out += '\n';
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
struct ReadBatch : LoadBatch {
  std::uint64_t last = 0;  // last line number
  std::size_t taken = 0;   // lines read
  bool eof = false;
};

// Runs work(from, to) over [0, n) in two halves, one on another thread, when n is worth it
// (parsing is most of the client's time, and the server needs a core only part of the time).
template <class Work>
void in_two(std::size_t n, const Work& work) {
  if (n < 256) {
    work(std::size_t{0}, n);
    return;
  }
  const std::size_t half = n / 2;
  std::future<void> other = std::async(std::launch::async, [&] { work(half, n); });
  work(std::size_t{0}, half);
  other.get();
}

ReadBatch read_batch(const Target& target, const FastLineMapper& fast, std::istream& in,
                     std::size_t batch_size, std::uint64_t& line_number, bool copy) {
  const std::uint64_t first = line_number + 1;
  std::vector<std::string> lines;
  lines.reserve(std::min<std::size_t>(batch_size, 100000));
  std::string line;
  bool eof = false;
  while (lines.size() < batch_size) {
    if (!std::getline(in, line)) {
      eof = true;
      break;
    }
    lines.push_back(std::move(line));
  }
  const std::size_t taken = lines.size();
  line_number += taken;
  // the fast path only serves COPY: the guarded upsert needs every row in full anyway
  ReadBatch b{prepare_batch(target, copy ? &fast : nullptr, std::move(lines), first, copy)};
  b.last = line_number;
  b.taken = taken;
  b.eof = eof;
  return b;
}

}  // namespace

LoadBatch prepare_batch(const Target& target, const FastLineMapper* fast,
                        std::vector<std::string> lines, std::uint64_t first, bool copy) {
  LoadBatch b;
  b.first = first;
  // A fast line's COPY text, in the text of the half that mapped it (size 0: a slow line).
  struct FastText {
    std::size_t half = 0;
    std::size_t offset = 0;
    std::size_t size = 0;
  };
  std::vector<FastText> fast_text(fast != nullptr ? lines.size() : 0);
  std::string text[2];
  std::vector<PreparedLine> prepared(lines.size());
  in_two(lines.size(), [&](std::size_t from, std::size_t to) {
    const std::size_t half = from == 0 ? 0 : 1;
    FastLineMapper::Scratch scratch;
    if (fast != nullptr) text[half].reserve((to - from) * 192);
    for (std::size_t i = from; i < to; ++i) {
      if (fast != nullptr) {
        Row row;
        const std::size_t offset = text[half].size();
        if (fast->map(lines[i], row, text[half], scratch)) {
          row.delivery = first + i;
          prepared[i].row = std::move(row);
          fast_text[i] = {half, offset, text[half].size() - offset};
          continue;  // the line stays, for materialize()
        }
      }
      prepared[i] = prepare_line(target, lines[i], first + i);
      std::string().swap(lines[i]);
    }
  });
  Batch batch;
  batch.reserve(prepared.size());
  for (std::size_t i = 0; i < prepared.size(); ++i) {
    PreparedLine& p = prepared[i];
    if (!p.row) {
      b.messages.emplace_back(first + i, std::move(p.message));
      continue;
    }
    batch.add(target, std::move(*p.row));
  }
  prepared.clear();
  b.plan = batch.newest_per_row();
  b.lazy =
      std::any_of(fast_text.begin(), fast_text.end(), [](const FastText& t) { return t.size > 0; });
  if (b.lazy) b.lazy_lines = std::move(lines);
  if (copy) {
    // COPY lines per column set
    std::map<std::vector<std::size_t>, std::size_t> chunk_of;
    std::vector<std::pair<const Row*, std::size_t>> rows;
    rows.reserve(b.plan.row_count());
    for (const Group& g : b.plan.groups) {
      for (const Row& row : g.rows) {
        const auto [it, added] = chunk_of.try_emplace(row.columns, b.copy.size());
        if (added) b.copy.emplace_back().columns = row.columns;
        rows.emplace_back(&row, it->second);
      }
    }
    const auto fast_span = [&](const Row& row) -> const FastText* {
      if (fast_text.empty()) return nullptr;
      const FastText& t = fast_text[row.delivery - first];
      return t.size > 0 ? &t : nullptr;
    };
    const auto slow_rows = static_cast<std::size_t>(std::count_if(
        rows.begin(), rows.end(), [&](const auto& r) { return fast_span(*r.first) == nullptr; }));
    if (slow_rows < 256) {
      // the fast path wrote (nearly) every line already: one copy of each, in plan order
      std::vector<std::size_t> size(b.copy.size(), 0);
      for (const auto& [row, c] : rows) {
        const FastText* t = fast_span(*row);
        size[c] += t != nullptr ? t->size : 256;
      }
      for (std::size_t c = 0; c < b.copy.size(); ++c)
        b.copy[c].data.reserve(size[c]);
      for (const auto& [row, c] : rows) {
        if (const FastText* t = fast_span(*row)) {
          b.copy[c].data.append(text[t->half], t->offset, t->size);
        } else {
          copy_text(b.copy[c].data, target, *row);
        }
      }
    } else {
      // copy_text() is most of the work: each half of the rows encoded on its own thread
      std::vector<std::string> second(b.copy.size());
      in_two(rows.size(), [&](std::size_t from, std::size_t to) {
        const bool first_half = from == 0;
        for (std::size_t i = from; i < to; ++i) {
          std::string& out = first_half ? b.copy[rows[i].second].data : second[rows[i].second];
          if (out.empty()) out.reserve((to - from) * 256);
          const Row& row = *rows[i].first;
          if (const FastText* t = fast_span(row)) {
            out.append(text[t->half], t->offset, t->size);
          } else {
            copy_text(out, target, row);
          }
        }
      });
      for (std::size_t c = 0; c < b.copy.size(); ++c)
        b.copy[c].data += second[c];
    }
  }
  return b;
}

void materialize(const Target& target, LoadBatch& b) {
  if (!b.lazy) return;
  std::vector<Row*> rows;
  for (Group& g : b.plan.groups) {
    for (Row& row : g.rows) {
      if (!b.lazy_lines[row.delivery - b.first].empty()) rows.push_back(&row);
    }
  }
  in_two(rows.size(), [&](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) {
      Row& row = *rows[i];
      PreparedLine p = prepare_line(target, b.lazy_lines[row.delivery - b.first], row.delivery);
      if (!p.row || p.row->pk_text != row.pk_text || p.row->revision != row.revision ||
          p.row->columns != row.columns) {
        std::string m = "bulk-load line ";
        m.append(std::to_string(row.delivery))
            .append(": the fast path and prepare_line() disagree (")
            .append(p.row ? "pk=" : "")
            .append(p.row ? p.row->pk_text : p.reason)
            .append(")");
        throw std::logic_error(m);
      }
      row = std::move(*p.row);
    }
  });
  b.lazy_lines.clear();
  b.lazy = false;
}

namespace {

// COPY of one chunk into the target's table (the column list quoted; the data is data).
void copy_rows(pqxx::dbtransaction& txn, const Target& target, const CopyChunk& chunk) {
  std::vector<std::string> names;
  names.reserve(chunk.columns.size());
  for (const std::size_t i : chunk.columns)
    names.push_back(quote_identifier(target.table.columns[i].name));
  if (chunk.data.empty()) return;
    // libpqxx 6.4's stream_to cannot send raw lines; tablewriter (deprecated) can, and sends the
    // table name and column list as given (quoted here). The data goes as "lines" of ~64 KiB of
    // whole rows, each without its last newline, which write_raw_line() adds back: it copies
    // what it is given twice, and copies of a whole batch (megabytes, fresh memory each time)
    // cost a page fault every 4 KiB, a third of the client's time when sent in one piece.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  pqxx::tablewriter writer(txn, quoted(target.table.table), names.begin(), names.end());
  constexpr std::size_t kPiece = 64 * 1024;
  const std::string& data = chunk.data;  // whole lines, each ending with '\n'
  std::string piece;
  for (std::size_t from = 0; from < data.size();) {
    std::size_t end = data.size();
    if (data.size() - from > kPiece) {
      const std::size_t nl = data.find('\n', from + kPiece - 1);
      if (nl != std::string::npos) end = nl + 1;
    }
    piece.assign(data, from, end - from - 1);
    writer.write_raw_line(piece);
    from = end;
  }
  writer.complete();
#pragma GCC diagnostic pop
}

// Whether COPY straight into the table may start: copy_compatible(), the table empty (so the
// first batches cannot meet a stored key), without user triggers or rules (COPY fires only
// INSERT triggers, where ON CONFLICT DO UPDATE fires UPDATE statement triggers too), and the
// rights the guarded path needs anyway (UPDATE also allows the LOCK).
bool direct_copy_possible(pqxx::connection& conn, const Target& target) {
  if (!copy_compatible(target)) return false;
  pqxx::read_transaction txn(conn);
  const std::string table = quoted(target.table.table);
  const pqxx::result r = txn.exec_params(
      "SELECT NOT EXISTS (SELECT 1 FROM " + table +
          ") AND NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT "
          "tgisinternal) AND NOT EXISTS (SELECT 1 FROM pg_rewrite WHERE ev_class = $1::regclass) "
          "AND has_table_privilege($1::regclass, 'INSERT, UPDATE')",
      table);
  return r[0][0].as<bool>();
}

// In `txn`, before anything else: the batch's rows by COPY when no tombstone of the cqrs_id
// exists (under a lock that keeps every other writer of the table out until commit). Returns
// false, with `txn` as it was after the lock, when the guarded path must run; clears `direct`
// when later batches should not try again (a stored key, a tombstone).
bool copy_batch(pqxx::dbtransaction& txn, const Target& target, const std::vector<CopyChunk>& copy,
                std::atomic<bool>& direct) {
  txn.exec0("LOCK TABLE " + quoted(target.table.table) + " IN SHARE ROW EXCLUSIVE MODE");
  const pqxx::result ts = txn.exec_params(
      "SELECT EXISTS (SELECT 1 FROM cqrs.tombstone WHERE cqrs_id = $1)", target.model.cqrs_id);
  if (ts[0][0].as<bool>()) {
    direct = false;
    return false;
  }
  txn.exec0("SAVEPOINT pgcqrs_copy");
  try {
    for (const CopyChunk& chunk : copy)
      copy_rows(txn, target, chunk);
    txn.exec0("RELEASE SAVEPOINT pgcqrs_copy");
    return true;
  } catch (const pqxx::broken_connection&) {
    throw;
  } catch (const pqxx::sql_error& e) {
    // a key already stored (an earlier batch's line, or a row written since the start):
    // the guarded path decides, for this batch and the next ones
    if (e.sqlstate() == "23505") direct = false;
  }
  txn.exec0("ROLLBACK TO SAVEPOINT pgcqrs_copy");
  return false;
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
  std::atomic<bool> direct = options.copy && direct_copy_possible(conn, target);
  const FastLineMapper mapper(target);
  // the next batch is read and mapped while the server applies this one (one read at a time,
  // so `in` and `line_number` are only ever touched by one thread)
  const auto read_next = [&] {
    return std::async(std::launch::async, [&] {
      return read_batch(target, mapper, in, batch_size, line_number, direct.load());
    });
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
        if (direct && !b.copy.empty() && copy_batch(txn, target, b.copy, direct)) {
          for (const Group& g : b.plan.groups) {
            loaded += g.rows.size();
            inserted += g.rows.size();
          }
          txn.commit();
          counts.loaded += loaded;
          counts.inserted += inserted;
          counts.skipped += skipped;
          b.plan.groups.clear();
        }
        materialize(target, b);  // the guarded upsert needs the rows' values
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
        if (!b.plan.groups.empty()) {
          txn.commit();
          counts.loaded += loaded;
          counts.inserted += inserted;
          counts.updated += updated;
          counts.skipped += skipped;
        }
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
