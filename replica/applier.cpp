// Set-based, revision-guarded statements over JSON array parameters, per-row outcomes, isolation.
#include "replica/applier.hpp"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "common/error.hpp"
#include "common/pg/error.hpp"
#include "common/timestamp.hpp"

namespace pgcqrs::replica {
namespace {

using json::Json;

constexpr std::string_view kRevision = "cqrs_revision";
// First key of the two-key advisory locks on rows: "pgqr". Two-key locks do not collide with
// the one-key (bigint) locks pgcqrs takes elsewhere.
constexpr int kKeyLockClass = 0x70677172;

std::string col_alias(std::size_t i) {
  std::string alias = "c";
  alias += std::to_string(i);
  return alias;
}

// `"reads"."author"`
std::string table_sql(const Target& target) {
  return quoted(target.table.table);
}

// The server's message without libpq's decoration: `ERROR:  x\nLINE 1: ...\nDETAIL:  y` ->
// `x; y` (the statement excerpt and context lines are dropped: they repeat the data).
std::string server_message(std::string_view what) {
  std::string out;
  while (!what.empty()) {
    const std::size_t nl = what.find('\n');
    std::string_view line = what.substr(0, nl);
    what.remove_prefix(nl == std::string_view::npos ? what.size() : nl + 1);
    bool keep = out.empty();
    for (const std::string_view prefix : {"ERROR:", "FATAL:", "DETAIL:"}) {
      if (line.substr(0, prefix.size()) == prefix) {
        line.remove_prefix(prefix.size());
        keep = true;
        break;
      }
    }
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
      line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r'))
      line.remove_suffix(1);
    if (!keep || line.empty()) continue;
    if (!out.empty()) out += "; ";
    out += line;
  }
  return out;
}

// Errors that are about the data of a row: worth isolating, permanent for that message.
bool about_data(const std::string& sqlstate, const Target& target) {
  if (target.uses_function()) return pg::classify_sqlstate(sqlstate) == pg::FailureKind::kPermanent;
  const std::string_view cls = std::string_view(sqlstate).substr(0, 2);
  return cls == "22" || cls == "23";
}

// A SAVEPOINT set, released or rolled back with plain exec(). (libpqxx 6.4's subtransaction
// sends its SAVEPOINT lazily at its first exec(); exec_params() does not trigger it, so a
// failing statement would abort the whole transaction.) Rolled back unless released.
class Savepoint {
 public:
  Savepoint(pqxx::transaction_base& txn, std::string name) : txn_(txn), name_(std::move(name)) {
    txn_.exec("SAVEPOINT " + name_);
  }
  ~Savepoint() {
    if (released_) return;
    try {
      txn_.exec("ROLLBACK TO SAVEPOINT " + name_ + "; RELEASE SAVEPOINT " + name_);
    } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): the connection is gone;
    }                                  // the caller sees that on its next statement
  }
  Savepoint(const Savepoint&) = delete;
  Savepoint& operator=(const Savepoint&) = delete;
  Savepoint(Savepoint&&) = delete;
  Savepoint& operator=(Savepoint&&) = delete;

  void release() {
    txn_.exec("RELEASE SAVEPOINT " + name_);
    released_ = true;
  }

 private:
  pqxx::transaction_base& txn_;
  std::string name_;
  bool released_ = false;
};

std::string function_sql(const Target& target) {
  return quoted(parse_qualified_name(*target.model.apply_function));
}

// ---- statements ------------------------------------------------------------------------

// The statements share a shape: CTE `r` holds the input rows typed by typed_rows() (one
// per key value: the newest, then the last), each with the stored revision and the tombstone
// revision read through the primary keys; it is MATERIALIZED so that it is computed once (an
// inlined join back to it is quadratic). The writing CTE acts on `r`; the final SELECT reports
// per input row (by ordinality): ord, stored revision, tombstone revision, written, inserted.
// Statement-level snapshot: the decisions are re-checked on the locked rows by the guards.
// json, not jsonb, input: a third faster here, and a json column keeps its text.

// `(SELECT t.cqrs_revision ...) AS old_rev` for key expression `key`.
std::string stored_revision(const Target& target, const std::string& key) {
  const std::string pk = quote_identifier(target.table.primary_key);
  return "(SELECT t." + quote_identifier(std::string(kRevision)) + "::bigint FROM " +
         table_sql(target) + " AS t WHERE t." + pk + " = " + key + ") AS old_rev";
}

// The tombstone of key expression `key` joined as `ts` (its revision and time in one probe;
// (cqrs_id, pk) is its primary key, so a row of `x` meets at most one).
std::string tombstone_join(const std::string& key) {
  return " LEFT JOIN cqrs.tombstone AS ts ON ts.cqrs_id = $2 AND ts.pk = " + key + "::text";
}

// The column lists of a statement over rows that all carry `columns`: `defs` types the JSON
// input (`"name" type, ...`), `aliases` names its columns (c0, c3, ...), `names` the table's
// columns, `values` the aliases with `prefix`, `sets` the ON CONFLICT assignments (all but the
// key).
struct ColumnLists {
  std::string defs, aliases, names, values, sets;
};

ColumnLists column_lists(const TableInfo& t, const std::vector<std::size_t>& columns,
                         std::size_t key, const std::string& prefix) {
  ColumnLists l;
  const auto sep = [](std::string& s) {
    if (!s.empty()) s += ", ";
  };
  for (const std::size_t i : columns) {
    const Column& c = t.columns[i];
    const std::string name = quote_identifier(c.name);
    sep(l.defs);
    l.defs.append(name).append(" ").append(c.type);
    sep(l.aliases);
    l.aliases += col_alias(i);
    sep(l.names);
    l.names += name;
    sep(l.values);
    l.values.append(prefix).append(col_alias(i));
    if (i != key) {
      sep(l.sets);
      l.sets.append(name).append(" = EXCLUDED.").append(name);
    }
  }
  return l;
}

// FROM items giving the elements of the JSON array $1 as rows `x(aliases)` typed by `defs`,
// with their position `e.ord` and, with `updated`, the element's cqrs_updated `e.upd` (the
// timestamptz[] $3, one element per row: the value parse_timestamp() gave, or NULL). Not
// json_to_recordset: PostgreSQL 15's json_to_recordset is quadratic in the array length when a
// column is json/jsonb (a 10,000-row array took 250 ms against 6 ms for 1,000 rows);
// json_to_record per element is linear and types alike.
std::string typed_rows(const std::string& defs, const std::string& aliases, bool updated = false) {
  std::string s = updated ? "ROWS FROM (json_array_elements($1::json), unnest($3::timestamptz[]))"
                            " WITH ORDINALITY AS e(doc, upd, ord),\n"
                          : "json_array_elements($1::json) WITH ORDINALITY AS e(doc, ord),\n";
  s.append("        ROWS FROM (json_to_record(e.doc) AS (").append(defs).append(")) AS x(");
  s.append(aliases).append(")");
  return s;
}

// The condition under which a SAVE of `r` (with columns r.<rev> and r.upd, and tombstone
// lookups tomb_rev and tomb_upd) may write: no tombstone, a revision above the tombstone's, or
// (the master created the key again) a cqrs_updated not before the DELETE's. A tombstone
// without a time (written before migration 0002) keeps the revision rule alone.
std::string passes_tombstone(const std::string& r, const std::string& rev) {
  return r + ".tomb_rev IS NULL OR " + r + ".tomb_rev < " + r + "." + rev + " OR " + r +
         ".upd >= " + r + ".tomb_upd";
}

// True when a SAVE of `r` passed its tombstone by its time alone (a re-created key).
std::string recreated(const std::string& r, const std::string& rev) {
  return "coalesce(" + r + ".tomb_rev >= " + r + "." + rev + " AND " + r + ".upd >= " + r +
         ".tomb_upd, false)";
}

// A timestamptz as microseconds since the epoch (exact; the text form would follow the
// session's DateStyle and TimeZone).
std::string epoch_us(const std::string& expr) {
  return "(extract(epoch FROM " + expr + ") * 1000000)::bigint";
}

// SAVE (sync = false) or SYNC (sync = true) of rows that all carry `columns`.
std::string save_sql(const Target& target, const std::vector<std::size_t>& columns, bool sync) {
  const TableInfo& t = target.table;
  const std::size_t key = *t.index_of(t.primary_key);
  const std::size_t rev = *t.index_of(std::string(kRevision));
  const std::string k = col_alias(key);
  const std::string r = col_alias(rev);
  const ColumnLists l = column_lists(t, columns, key, "");
  const std::string pk = quote_identifier(t.primary_key);
  const std::string revision = quote_identifier(std::string(kRevision));
  std::string sql = "WITH r AS MATERIALIZED (\n  SELECT x.*,\n    " +
                    stored_revision(target, "x." + k) +
                    ", ts.revision AS tomb_rev, ts.updated AS tomb_upd";
  sql += "\n  FROM (SELECT DISTINCT ON (x." + k + ") x.*, e.ord, e.upd FROM " +
         typed_rows(l.defs, l.aliases, true) + "\n        ORDER BY x." + k + ", x." + r +
         " DESC, e.ord DESC) AS x\n" + tombstone_join("x." + k) + "\n),\n";
  if (sync) {
    sql +=
        "cleared AS (\n  DELETE FROM cqrs.tombstone AS ts USING r WHERE r.tomb_rev IS NOT NULL "
        "AND ts.cqrs_id = $2 AND ts.pk = r." +
        k + "::text\n),\n";
  }
  sql += "w AS (\n  INSERT INTO " + table_sql(target) + " AS t (" + l.names + ")\n  SELECT " +
         l.values + " FROM r\n";
  if (!sync) sql += "  WHERE " + passes_tombstone("r", r) + "\n";
  sql += "  ON CONFLICT (" + pk + ") DO UPDATE SET " + l.sets + "\n";
  if (!sync) sql += "  WHERE t." + revision + " < EXCLUDED." + revision + "\n";
  sql += "  RETURNING t." + pk + " AS k, (t.xmax = 0) AS inserted\n)\n";
  sql += "SELECT r.ord, r.old_rev, r.tomb_rev, w.k IS NOT NULL, coalesce(w.inserted, false), " +
         recreated("r", r) + ", " + epoch_us("r.tomb_upd") + "\nFROM r LEFT JOIN w ON w.k = r." + k;
  return sql;
}

// save_bulk(): SAVE of rows that all carry `columns`, counting inserted and updated rows.
std::string bulk_save_sql(const Target& target, const std::vector<std::size_t>& columns) {
  const TableInfo& t = target.table;
  const std::size_t key = *t.index_of(t.primary_key);
  const std::size_t rev = *t.index_of(std::string(kRevision));
  const std::string k = col_alias(key);
  const std::string r = col_alias(rev);
  const ColumnLists l = column_lists(t, columns, key, "x.");
  const std::string pk = quote_identifier(t.primary_key);
  const std::string revision = quote_identifier(std::string(kRevision));
  std::string sql = "WITH w AS (\n  INSERT INTO " + table_sql(target) + " AS t (" + l.names +
                    ")\n  SELECT " + l.values + "\n  FROM (SELECT DISTINCT ON (x." + k +
                    ") x.*, e.ord, e.upd FROM " + typed_rows(l.defs, l.aliases, true) +
                    "\n        ORDER BY x." + k + ", x." + r + " DESC, e.ord DESC) AS x\n";
  // apply()'s tombstone rule: see passes_tombstone()
  sql +=
      "  WHERE NOT EXISTS (SELECT 1 FROM cqrs.tombstone AS ts WHERE ts.cqrs_id = $2 AND ts.pk = "
      "x." +
      k + "::text AND ts.revision >= x." + r +
      " AND (ts.updated IS NULL OR x.upd IS NULL OR x.upd < ts.updated))\n";
  sql += "  ON CONFLICT (" + pk + ") DO UPDATE SET " + l.sets + "\n";
  sql += "  WHERE t." + revision + " < EXCLUDED." + revision + "\n";
  sql += "  RETURNING (t.xmax = 0) AS inserted\n)\n";
  sql += "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM w";
  return sql;
}

// The tombstone of a key deleted more than once keeps the highest revision and the latest time
// of its DELETEs (each its own maximum: a later DELETE of a re-created row has a lower revision
// and a later time, and both must keep the late SAVEs of their own rows out).
std::string delete_sql(const Target& target) {
  const TableInfo& t = target.table;
  const std::string pk = quote_identifier(t.primary_key);
  const std::string revision = quote_identifier(std::string(kRevision));
  const std::string type = t.column(t.primary_key)->type;
  const std::string table = table_sql(target);
  return "WITH r AS MATERIALIZED (\n  SELECT x.*,\n    " + stored_revision(target, "x.k") +
         ", ts.revision AS tomb_rev"
         "\n  FROM (SELECT DISTINCT ON (k) * FROM ROWS FROM (json_to_recordset($1::json) AS (k " +
         type +
         ", rev bigint, upd timestamptz)) WITH ORDINALITY AS x(k, rev, upd, ord)\n"
         "        ORDER BY k, rev DESC, ord DESC) AS x\n" +
         tombstone_join("x.k") +
         "\n),\n"
         "d AS (\n  DELETE FROM " +
         table + " AS t USING r WHERE t." + pk + " = r.k AND t." + revision +
         " <= r.rev RETURNING t." + pk +
         " AS k\n),\n"
         "tomb AS (\n  INSERT INTO cqrs.tombstone AS ts (cqrs_id, pk, revision, updated)\n"
         "  SELECT $2, r.k::text, r.rev, r.upd FROM r\n"
         "  ON CONFLICT (cqrs_id, pk) DO UPDATE\n"
         "  SET revision = greatest(ts.revision, EXCLUDED.revision),\n"
         "      updated = greatest(ts.updated, EXCLUDED.updated), deleted_at = now()\n)\n"
         "SELECT r.ord, r.old_rev, r.tomb_rev, d.k IS NOT NULL FROM r LEFT JOIN d ON d.k = r.k";
}

// One transaction-level advisory lock per key, in hash order (so that two workers never wait
// on each other in a cycle within one call). Runs before the data statements, whose snapshots
// then include whatever a concurrent holder of the same key committed. The hashes come from
// the client (a third of the server's cost of hashing the typed keys from the JSON).
constexpr const char* kLockKeys =
    "SELECT count(pg_advisory_xact_lock(1885827442, h)) FROM unnest($1::int4[]) AS h";
static_assert(kKeyLockClass == 1885827442);

// FNV-1a of `cqrs_id \0 pk_text`: the same in every worker for the same key text.
std::int32_t key_hash(const std::string& cqrs_id, const std::string& pk_text) {
  std::uint32_t h = 2166136261u;
  const auto mix = [&h](unsigned char c) {
    h ^= c;
    h *= 16777619u;
  };
  for (const char c : cqrs_id)
    mix(static_cast<unsigned char>(c));
  mix(0);
  for (const char c : pk_text)
    mix(static_cast<unsigned char>(c));
  return static_cast<std::int32_t>(h);
}

// `{h1,h2,...}`: `hashes` sorted, without repeats, as an int4[] literal.
std::string hash_array(std::vector<std::int32_t> hashes) {
  std::sort(hashes.begin(), hashes.end());
  hashes.erase(std::unique(hashes.begin(), hashes.end()), hashes.end());
  std::string out = "{";
  for (const std::int32_t h : hashes) {
    if (out.size() > 1) out += ',';
    out += std::to_string(h);
  }
  out += '}';
  return out;
}

// The rows' advisory-lock hashes.
std::string key_hashes(const Target& target, std::span<const Row> rows) {
  std::vector<std::int32_t> hashes;
  hashes.reserve(rows.size());
  for (const Row& row : rows)
    hashes.push_back(key_hash(target.model.cqrs_id, row.pk_text));
  return hash_array(std::move(hashes));
}

// The advisory-lock hashes of `pk_texts` of `cqrs_id` (lock_keys()).
std::string key_hashes(const std::string& cqrs_id, const std::vector<std::string>& pk_texts) {
  std::vector<std::int32_t> hashes;
  hashes.reserve(pk_texts.size());
  for (const auto& pk : pk_texts)
    hashes.push_back(key_hash(cqrs_id, pk));
  return hash_array(std::move(hashes));
}

std::string call_sql(const Target& target) {
  return "SELECT e.ord, " + function_sql(target) + "(x.s, x.d, x.p, x.m)::text FROM " +
         typed_rows("s text, d jsonb, p jsonb, m jsonb", "s, d, p, m");
}

// Runs `sql` as a named prepared statement of this connection: planned once per connection,
// not per batch (planning the statements costs about as much as applying 100 rows). The name
// is derived from the text, so each distinct statement (model, column set, kind) gets one.
// libpqxx re-prepares on a new connection object, and prepare() with the same text is a no-op.
template <class... Args>
pqxx::result exec_statement(pqxx::transaction_base& txn, const std::string& sql, Args&&... args) {
  char name[32];
  std::snprintf(name, sizeof name, "pgcqrs_apply_%016zx", std::hash<std::string>{}(sql));
  txn.conn().prepare(name, sql);
  return txn.exec_prepared(name, std::forward<Args>(args)...);
}

// ---- parameters ------------------------------------------------------------------------

// Appends `{"k":<key>,"rev":<revision>,"upd":"<cqrs_updated>"|null}`.
void append_delete(std::string& out, const Row& row) {
  out += "{\"k\":";
  json::dump_to(out, row.pk);
  out += ",\"rev\":";
  out += std::to_string(row.revision);
  out += ",\"upd\":";
  if (row.updated) {
    out += '"';
    out += format_django(*row.updated);
    out += '"';
  } else {
    out += "null";
  }
  out += '}';
}

// The rows' cqrs_updated as a timestamptz[] literal, in the order of `which`: `{"<time>",NULL}`.
std::string updated_array(std::span<const Row> rows, const std::vector<std::size_t>& which) {
  std::string out;
  out.reserve(which.size() * 36);
  out += '{';
  for (const std::size_t i : which) {
    if (out.size() > 1) out += ',';
    if (const auto& u = rows[i].updated) {
      out += '"';
      out += format_django(*u);
      out += '"';
    } else {
      out += "NULL";
    }
  }
  out += '}';
  return out;
}

void append_call(std::string& out, const Row& row) {
  out += "{\"s\":\"";
  out += to_string(row.signal);
  out += "\",\"d\":";
  json::dump_to(out, row.data);
  out += ",\"p\":";
  json::dump_to(out, row.previous_data);
  out += ",\"m\":";
  json::dump_to(out, row.meta);
  out += '}';
}

template <class Append>
std::string json_array(std::span<const Row> rows, const std::vector<std::size_t>& which,
                       Append append) {
  std::string out;
  out.reserve(which.size() * 256);
  out += '[';
  for (const std::size_t i : which) {
    if (out.size() > 1) out += ',';
    append(out, rows[i]);
  }
  out += ']';
  return out;
}

std::optional<std::int64_t> opt_int(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<std::int64_t>();
}

// A field of epoch_us().
std::optional<Timestamp> opt_time(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return Timestamp(std::chrono::microseconds(f.as<std::int64_t>()));
}

// The input index of a result row (1-based ordinality into `which`).
std::size_t input_index(const pqxx::field& ord, const std::vector<std::size_t>& which) {
  return which.at(ord.as<std::size_t>() - 1);
}

// ---- per-kind application --------------------------------------------------------------

void run_saves(pqxx::dbtransaction& txn, const Target& target, std::span<const Row> rows,
               const std::vector<std::size_t>& which, const std::vector<std::size_t>& columns,
               bool sync, std::vector<RowResult>& out) {
  const std::string param =
      json_array(rows, which, [](std::string& s, const Row& row) { json::dump_to(s, row.data); });
  const pqxx::result res = exec_statement(txn, save_sql(target, columns, sync), param,
                                          target.model.cqrs_id, updated_array(rows, which));
  for (const auto& rec : res) {
    const std::size_t i = input_index(rec[0], which);
    const Row& row = rows[i];
    RowResult& r = out[i];
    r.stored_revision = opt_int(rec[1]);
    r.tombstone_revision = opt_int(rec[2]);
    const bool written = rec[3].as<bool>();
    const bool inserted = rec[4].as<bool>();
    r.recreated = !sync && rec[5].as<bool>();
    r.tombstone_updated = opt_time(rec[6]);
    const auto stored = r.stored_revision;
    if (written) {
      r.outcome = inserted ? Outcome::kInserted : Outcome::kUpdated;
      if (!inserted && stored) {
        if (!sync && row.revision > *stored + 1) r.lost = row.revision - *stored - 1;
        if (sync && row.revision < *stored) r.downgrade = true;
      }
    } else if (!sync && r.tombstone_revision && *r.tombstone_revision >= row.revision &&
               !r.recreated) {
      r.outcome = Outcome::kSkippedDeleted;
    } else if (stored && *stored == row.revision) {
      r.outcome = Outcome::kSkippedDuplicate;
    } else {
      r.outcome = Outcome::kSkippedOlder;  // stored is newer (or a concurrent writer's is)
    }
  }
}

void run_deletes(pqxx::dbtransaction& txn, const Target& target, std::span<const Row> rows,
                 const std::vector<std::size_t>& which, std::vector<RowResult>& out) {
  const std::string param = json_array(rows, which, append_delete);
  const pqxx::result res = exec_statement(txn, delete_sql(target), param, target.model.cqrs_id);
  for (const auto& rec : res) {
    const std::size_t i = input_index(rec[0], which);
    RowResult& r = out[i];
    r.stored_revision = opt_int(rec[1]);
    r.tombstone_revision = opt_int(rec[2]);
    if (rec[3].as<bool>()) {
      r.outcome = Outcome::kDeleted;
    } else if (!r.stored_revision) {
      r.outcome = Outcome::kDeleteMissing;
    } else {
      r.outcome = Outcome::kSkippedOlder;
    }
  }
}

void run_calls(pqxx::dbtransaction& txn, const Target& target, std::span<const Row> rows,
               std::vector<RowResult>& out) {
  std::vector<std::size_t> which(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i)
    which[i] = i;
  const std::string param = json_array(rows, which, append_call);
  const pqxx::result res = exec_statement(txn, call_sql(target), param);
  for (const auto& rec : res) {
    RowResult& r = out[input_index(rec[0], which)];
    if (!rec[1].is_null() && rec[1].as<std::string>() == "false") {
      r.outcome = Outcome::kFailed;
      r.error = "apply_function " + function_sql(target) + " returned false";
    } else {
      r.outcome = Outcome::kCalled;
    }
  }
}

// Every statement of apply(), without error handling.
ApplyResult run_all(pqxx::dbtransaction& txn, const Target& target, std::span<const Row> rows,
                    const ApplyOptions& options) {
  std::vector<RowResult> out(rows.size());
  if (target.uses_function()) {
    run_calls(txn, target, rows, out);
  } else {
    if (options.lock_keys) exec_statement(txn, kLockKeys, key_hashes(target, rows));
    // DELETEs first: a key the rows delete and create again (Batch::newest_per_row() keeps
    // both) must meet the DELETE's tombstone, not be deleted by it. Then the SAVEs and SYNCs in
    // passes: a key's first one in the first pass, its second (Batch keeps the newest revision
    // and then one written later, which the tombstone may let in where it stops the other) in
    // the second; each pass by kind and column set.
    std::vector<std::size_t> deletes;
    using Kinds = std::map<std::pair<bool, std::vector<std::size_t>>, std::vector<std::size_t>>;
    std::vector<Kinds> passes;
    std::unordered_map<std::string_view, std::size_t> seen;  // pk_text -> SAVEs/SYNCs so far
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const Row& row = rows[i];
      if (row.signal == Signal::kDelete) {
        deletes.push_back(i);
      } else {
        const std::size_t pass = seen[row.pk_text]++;
        if (passes.size() <= pass) passes.resize(pass + 1);
        passes[pass][{row.signal == Signal::kSync, row.columns}].push_back(i);
      }
    }
    if (!deletes.empty()) run_deletes(txn, target, rows, deletes, out);
    for (const Kinds& saves : passes) {
      for (const auto& [kind, which] : saves)
        run_saves(txn, target, rows, which, kind.second, kind.first, out);
    }
  }
  ApplyResult result;
  result.rows.reserve(out.size());
  for (const auto& r : out)
    result.add(r);
  return result;
}

// `apply SAVE product pk=7 revision=3 to "reads"."product"`
std::string row_subject(const Target& target, const Row& row) {
  std::string s = "apply " + std::string(to_string(row.signal)) + " " + target.model.cqrs_id +
                  " pk=" + row.pk_text + " revision=" + std::to_string(row.revision);
  if (target.uses_function()) return s + " with apply_function " + function_sql(target);
  return s + " to " + table_sql(target);
}

// After `row` failed: the first of its values its column's type refuses, as
// `column "x" value '<json>'`; empty when every value converts (the error was a constraint).
// Each probe runs in its own savepoint.
std::string find_bad_value(pqxx::dbtransaction& txn, const Target& target, const Row& row) {
  std::vector<std::pair<const Column*, const Json*>> probes;
  if (row.signal == Signal::kDelete) {
    probes.emplace_back(target.table.column(target.table.primary_key), &row.pk);
  } else {
    std::size_t n = 0;
    for (const auto& [name, value] : row.data.items()) {
      probes.emplace_back(&target.table.columns.at(row.columns.at(n++)), &value);
    }
  }
  for (const auto& [column, value] : probes) {
    if (column == nullptr) continue;
    std::string param = "[{";
    json::dump_to(param, Json(column->name));
    param += ':';
    json::dump_to(param, *value);
    param += "}]";
    try {
      Savepoint probe(txn, "pgcqrs_probe");
      txn.exec_params("SELECT * FROM json_to_recordset($1::json) AS (" +
                          quote_identifier(column->name) + " " + column->type + ")",
                      param);
      probe.release();
    } catch (const pqxx::sql_error&) {
      return "column " + quote_identifier(column->name) + " value '" + json::excerpt(*value) + "'";
    }
  }
  return {};
}

}  // namespace

std::string_view to_string(Outcome o) noexcept {
  switch (o) {
    case Outcome::kInserted:
      return "inserted";
    case Outcome::kUpdated:
      return "updated";
    case Outcome::kDeleted:
      return "deleted";
    case Outcome::kDeleteMissing:
      return "delete_missing";
    case Outcome::kSkippedOlder:
      return "skipped_older";
    case Outcome::kSkippedDuplicate:
      return "skipped_duplicate";
    case Outcome::kSkippedDeleted:
      return "skipped_deleted";
    case Outcome::kSkippedSuperseded:
      return "skipped_superseded";
    case Outcome::kCalled:
      return "called";
    case Outcome::kFailed:
      return "failed";
  }
  return "unknown";
}

bool RowResult::applied() const noexcept {
  switch (outcome) {
    case Outcome::kInserted:
    case Outcome::kUpdated:
    case Outcome::kDeleted:
    case Outcome::kDeleteMissing:
    case Outcome::kCalled:
      return true;
    default:
      return false;
  }
}

void ApplyResult::add(const RowResult& r) {
  rows.push_back(r);
  switch (r.outcome) {
    case Outcome::kInserted:
      ++inserted;
      break;
    case Outcome::kUpdated:
      ++updated;
      break;
    case Outcome::kDeleted:
    case Outcome::kDeleteMissing:
      ++deleted;
      break;
    case Outcome::kCalled:
      ++called;
      break;
    case Outcome::kFailed:
      ++failed;
      break;
    default:
      ++skipped;
      break;
  }
}

void lock_keys(pqxx::transaction_base& txn, const std::string& cqrs_id,
               const std::vector<std::string>& pk_texts) {
  if (pk_texts.empty()) return;
  exec_statement(txn, kLockKeys, key_hashes(cqrs_id, pk_texts));
}

ApplyResult apply(pqxx::dbtransaction& txn, const Target& target, std::span<const Row> rows,
                  const ApplyOptions& options) {
  if (rows.empty()) return {};
  if (!target.uses_function() && (!target.table.column(target.table.primary_key) ||
                                  !target.table.column(std::string(kRevision)))) {
    throw std::logic_error("apply " + target.model.cqrs_id + ": target without primary key or " +
                           std::string(kRevision) + " column (use load_targets())");
  }
  if (rows.size() > 1) {
    try {
      return run_all(txn, target, rows, options);
    } catch (const pqxx::sql_error& e) {
      throw pg::SqlError("apply " + std::to_string(rows.size()) + " rows of " +
                             target.model.cqrs_id + " to " +
                             (target.uses_function() ? function_sql(target) : table_sql(target)) +
                             ": " + server_message(e.what()),
                         e.sqlstate());
    }
  }
  const Row& row = rows.front();
  std::string cause;
  try {
    Savepoint savepoint(txn, "pgcqrs_apply_row");
    ApplyResult result = run_all(txn, target, rows, options);
    savepoint.release();
    return result;
  } catch (const pqxx::sql_error& e) {
    // the savepoint is rolled back: txn is usable again
    cause = server_message(e.what());
    if (!about_data(e.sqlstate(), target)) {
      throw pg::SqlError(row_subject(target, row) + ": " + cause, e.sqlstate());
    }
  }
  std::string which;
  if (!target.uses_function()) which = find_bad_value(txn, target, row);
  throw MessageError(row_subject(target, row) + ": " + (which.empty() ? "" : which + ": ") + cause);
}

ApplyResult apply_isolating(pqxx::dbtransaction& txn, const Target& target,
                            std::span<const Row> rows, const ApplyOptions& options) {
  if (rows.empty()) return {};
  if (rows.size() == 1) {
    try {
      return apply(txn, target, rows, options);  // runs in its own savepoint
    } catch (const MessageError& e) {
      ApplyResult result;
      RowResult r;
      r.outcome = Outcome::kFailed;
      r.error = e.what();
      result.add(r);
      return result;
    }
  }
  try {
    Savepoint savepoint(txn, "pgcqrs_apply_rows");
    ApplyResult result = apply(txn, target, rows, options);
    savepoint.release();
    return result;
  } catch (const pg::SqlError& e) {
    if (!about_data(e.sqlstate(), target)) throw;
  }
  const std::size_t half = rows.size() / 2;
  ApplyResult result = apply_isolating(txn, target, rows.first(half), options);
  const ApplyResult second = apply_isolating(txn, target, rows.subspan(half), options);
  for (const auto& r : second.rows)
    result.add(r);
  return result;
}

BulkSaveResult save_bulk(pqxx::dbtransaction& txn, const Target& target,
                         std::span<const Row> rows) {
  BulkSaveResult result;
  if (rows.empty()) return result;
  if (target.uses_function() || !target.table.column(target.table.primary_key) ||
      !target.table.column(std::string(kRevision))) {
    throw std::logic_error("save_bulk " + target.model.cqrs_id +
                           ": needs a table target with a primary key and " +
                           std::string(kRevision));
  }
  std::map<std::vector<std::size_t>, std::vector<std::size_t>> sets;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].signal != Signal::kSave) {
      throw std::logic_error("save_bulk " + target.model.cqrs_id + ": " +
                             std::string(to_string(rows[i].signal)) + " row; SAVE rows only");
    }
    sets[rows[i].columns].push_back(i);
  }
  try {
    for (const auto& [columns, which] : sets) {
      const std::string param = json_array(
          rows, which, [](std::string& s, const Row& row) { json::dump_to(s, row.data); });
      const pqxx::result res = exec_statement(txn, bulk_save_sql(target, columns), param,
                                              target.model.cqrs_id, updated_array(rows, which));
      const auto inserted = res[0][0].as<std::size_t>();
      const auto updated = res[0][1].as<std::size_t>();
      result.inserted += inserted;
      result.updated += updated;
      result.skipped += which.size() - inserted - updated;
    }
  } catch (const pqxx::sql_error& e) {
    throw pg::SqlError("apply " + std::to_string(rows.size()) + " rows of " + target.model.cqrs_id +
                           " to " + table_sql(target) + ": " + server_message(e.what()),
                       e.sqlstate());
  }
  return result;
}

std::int64_t prune_tombstones(pqxx::transaction_base& txn, std::chrono::seconds max_age) {
  const pqxx::result r = txn.exec_params(
      "DELETE FROM cqrs.tombstone WHERE deleted_at < now() - make_interval(secs => $1)",
      static_cast<double>(max_age.count()));
  return static_cast<std::int64_t>(r.affected_rows());
}

}  // namespace pgcqrs::replica
