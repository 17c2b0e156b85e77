// Capture DDL generation: per-model trigger functions that write django-cqrs events to the outbox.
//
// Shape of what is installed on a tracked table T for model M:
//   BEFORE UPDATE FOR EACH ROW  zz_cqrs_bump         revision + 1, cqrs_updated = now();
//                                                    a changed primary key -> DELETE of the old
//   AFTER INSERT  FOR EACH STATEMENT (NEW TABLE)     one outbox row per statement (a batch)
//   AFTER UPDATE  FOR EACH STATEMENT (OLD, NEW)      idem (+ DELETE for rows leaving the filter)
//   AFTER DELETE  FOR EACH STATEMENT (OLD TABLE)     one outbox row per deleted row
//   BEFORE TRUNCATE FOR EACH STATEMENT               refuses: a TRUNCATE would publish nothing
// Statement-level triggers with transition tables make a 100-row statement pay one trigger
// call, not 100. SAVE events are written as batches (migrations/master/0003): one outbox row
// per statement, per kBatchRows rows or kBatchBytes of it, holding each row's column texts;
// the agent formats the events (master/batch.hpp); a statement of one row skips the window and
// grouping that cut batches and stores its row directly. Building each row's JSON and inserting an
// outbox row per row cost the writer about five times what the batch costs per row
// (docs/benchmarks.md, "Batched capture"). Models with a serializer (their instance_data is
// filled at commit, per row) and models with more fields than one json_build_object call takes
// keep one outbox row per event.
#include "master/capture.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "common/error.hpp"

namespace pgcqrs::master {
namespace {

constexpr std::string_view kDollar = "$cqrs$";
// json_build_object takes at most 100 arguments: 50 key/value pairs per call
constexpr std::size_t kPairsPerCall = 45;
// Rows and bytes per batch outbox row: bound what the agent reads and holds for one outbox row,
// and keep a statement of many large rows far from PostgreSQL's 1 GB limit on one value.
constexpr int kBatchRows = 1000;
constexpr std::int64_t kBatchBytes = 16 << 20;

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 1469598103934665603ULL;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

std::string hex(std::uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = kHex[v & 0xF];
    v >>= 4;
  }
  return out;
}

bool compares_as_text(const Column& c) {
  static const std::set<std::string> kNoEquality = {"json", "xml",  "point", "box",   "polygon",
                                                    "line", "lseg", "path",  "circle"};
  return kNoEquality.count(c.base_type) != 0;
}

// The batch layout kind of a column (master/batch.hpp) and whether the trigger stores its cast
// to text (true) or its to_json() text (false). json_build_object() writes the types the agent
// knows from their text; every other type, and bpchar (whose cast to text drops the padding
// that json_build_object() keeps), is stored as to_json() writes it (kind 'j'). Dates and
// timestamps are stored as to_json() writes them too: their text output depends on the
// session's DateStyle, to_json()'s does not.
std::pair<char, bool> batch_kind(const Column& c) {
  if (c.is_array) return {'j', false};
  static const std::map<std::string, std::pair<char, bool>> kKinds = {
      {"int2", {'n', true}},   {"int4", {'n', true}},         {"int8", {'n', true}},
      {"float4", {'n', true}}, {"float8", {'n', true}},       {"numeric", {'n', true}},
      {"bool", {'b', true}},   {"text", {'s', true}},         {"varchar", {'s', true}},
      {"uuid", {'s', true}},   {"json", {'j', true}},         {"jsonb", {'j', true}},
      {"date", {'j', false}},  {"timestamptz", {'Z', false}}, {"timestamp", {'z', false}}};
  const auto it = kKinds.find(c.base_type);
  if (it == kKinds.end()) return {'j', false};
  return it->second;
}

class Generator {
 public:
  Generator(const MasterModel& m, const TableInfo& info, const SqlQuoter& q)
      : m_(m), info_(info), q_(q) {
    validate();
    select_fields();
  }

  CaptureDdl ddl() const {
    CaptureDdl out;
    const std::string table = q_.name(info_.table.schema) + "." + q_.name(info_.table.name);
    if (!info_.has_revision) {
      out.statements.push_back("ALTER TABLE " + table +
                               " ADD COLUMN cqrs_revision integer NOT NULL DEFAULT 0");
    }
    if (!info_.has_updated) {
      out.statements.push_back("ALTER TABLE " + table +
                               " ADD COLUMN cqrs_updated timestamptz NOT NULL DEFAULT now()");
    }
    // tables that came from a django-cqrs master have the columns without defaults; raw SQL
    // inserts need them
    out.statements.push_back("ALTER TABLE " + table +
                             " ALTER COLUMN cqrs_revision SET DEFAULT 0,"
                             " ALTER COLUMN cqrs_updated SET DEFAULT now()");
    out.statements.push_back(function("bump", bump_body()));
    out.statements.push_back(drop_trigger(kBumpTrigger, table));
    out.statements.push_back("CREATE TRIGGER " + q_.name(std::string(kBumpTrigger)) +
                             " BEFORE UPDATE ON " + table + " FOR EACH ROW EXECUTE FUNCTION " +
                             fn("bump") + "()");
    for (auto t : {kInsertTrigger, kUpdateTrigger, kDeleteTrigger}) {
      out.statements.push_back(drop_trigger(t, table));
    }
    if (m_.produce) {
      if (batched()) {
        const std::string key = q_.literal(layout_key());
        const std::string text = q_.literal(layout_text());
        out.statements.push_back("INSERT INTO cqrs.batch_layout (key, layout) VALUES (" + key +
                                 ", " + text + ") ON CONFLICT (key) DO NOTHING");
        // a 64-bit hash: two layouts with one key are not expected, but never mixed up
        out.statements.push_back(
            "DO " + std::string(kDollar) + " BEGIN IF (SELECT layout FROM cqrs.batch_layout " +
            "WHERE key = " + key + ") IS DISTINCT FROM " + text +
            " THEN RAISE EXCEPTION 'batch layout key % already names another layout', " + key +
            "; END IF; END " + std::string(kDollar));
      }
      out.statements.push_back(function("insert", insert_body()));
      out.statements.push_back(function("update", update_body()));
      out.statements.push_back(function("delete", delete_body()));
      out.statements.push_back("CREATE TRIGGER " + q_.name(std::string(kInsertTrigger)) +
                               " AFTER INSERT ON " + table +
                               " REFERENCING NEW TABLE AS cqrs_new FOR EACH STATEMENT"
                               " EXECUTE FUNCTION " +
                               fn("insert") + "()");
      // the old rows cost a tuplestore write each: only previous_data and filter read them
      // (a key change is detected per row, in the bump trigger)
      out.statements.push_back(
          "CREATE TRIGGER " + q_.name(std::string(kUpdateTrigger)) + " AFTER UPDATE ON " + table +
          " REFERENCING " + (update_reads_old() ? "OLD TABLE AS cqrs_old " : "") +
          "NEW TABLE AS cqrs_new FOR EACH STATEMENT EXECUTE FUNCTION " + fn("update") + "()");
      out.statements.push_back("CREATE TRIGGER " + q_.name(std::string(kDeleteTrigger)) +
                               " AFTER DELETE ON " + table +
                               " REFERENCING OLD TABLE AS cqrs_old FOR EACH STATEMENT"
                               " EXECUTE FUNCTION " +
                               fn("delete") + "()");
    } else {
      for (auto what : {"insert", "update", "delete"}) {
        out.statements.push_back("DROP FUNCTION IF EXISTS " + fn(what) + "()");
      }
    }
    if (m_.serializer) {
      out.statements.push_back("CREATE OR REPLACE FUNCTION " + fn("serialize") + "(pk " +
                               pk_column().type + ") RETURNS json LANGUAGE sql STABLE AS " +
                               std::string(kDollar) + "\n" + *m_.serializer + "\n" +
                               std::string(kDollar));
    } else {
      out.statements.push_back("DROP FUNCTION IF EXISTS " + fn("serialize") + "(" +
                               pk_column().type + ")");
    }
    out.statements.push_back(function("truncate", truncate_body(table)));
    out.statements.push_back(drop_trigger(kTruncateTrigger, table));
    out.statements.push_back("CREATE TRIGGER " + q_.name(std::string(kTruncateTrigger)) +
                             " BEFORE TRUNCATE ON " + table +
                             " FOR EACH STATEMENT EXECUTE FUNCTION " + fn("truncate") + "()");
    // the column additions depend on the table's state, not on the configuration
    std::string all;
    for (const auto& s : out.statements) {
      if (s.find(" ADD COLUMN ") == std::string::npos) all += s + ";\n";
    }
    out.config_hash = hex(fnv1a(all));
    return out;
  }

  // One query per SQL snippet of the model that PostgreSQL plans (and so checks: columns,
  // types, a filter that is not boolean) without reading a row, over the row as the triggers
  // see it: the table's columns, unqualified, under the alias `t`.
  std::vector<SnippetCheck> checks() const {
    const std::string table = q_.name(info_.table.schema) + "." + q_.name(info_.table.name);
    std::string source = table;
    if (!info_.has_revision || !info_.has_updated) {
      // the columns the first migrate adds, which a snippet may read
      source = "(SELECT x.*";
      if (!info_.has_revision) source += ", 0::integer AS cqrs_revision";
      if (!info_.has_updated) source += ", now() AS cqrs_updated";
      source += " FROM " + table + " x)";
    }
    std::vector<SnippetCheck> out;
    if (m_.filter) {
      out.push_back({"filter", "SELECT FROM " + source + " t WHERE (" + *m_.filter + ") LIMIT 0"});
    }
    if (m_.meta_sql) {
      out.push_back(
          {"meta_sql", "SELECT to_json((" + *m_.meta_sql + ")) FROM " + source + " t LIMIT 0"});
    }
    if (m_.serializer) {
      // CREATE FUNCTION of an SQL function parses and plans its body against the catalog
      // (check_function_bodies) and checks that it returns json: the serializer is checked
      // without running it. In schema cqrs, where it will live (migrate has applied the
      // migrations, a dry run too), not pg_temp: that needs the TEMP right on the database.
      out.push_back({"serializer",
                     "SET LOCAL check_function_bodies = on; CREATE FUNCTION "
                     "cqrs.pgcqrs_check_serializer(pk " +
                         pk_column().type + ") RETURNS json LANGUAGE sql STABLE AS " +
                         std::string(kDollar) + "\n" + *m_.serializer + "\n" +
                         std::string(kDollar)});
    }
    return out;
  }

  RowSql row() const {
    RowSql r;
    r.from = rows(q_.name(info_.table.schema) + "." + q_.name(info_.table.name), false) + " n";
    r.pk = "n." + q_.name(pk_column().name);
    r.pk_json = pk_json("n");
    if (m_.serializer) {
      // as cqrs.fill_instance_data does at commit: the serializer's object + revision, updated
      r.instance_data = "(" + fn("serialize") + "(" + r.pk +
                        ")::jsonb || jsonb_build_object('cqrs_revision', n.cqrs_revision, "
                        "'cqrs_updated', cqrs.django_ts(n.cqrs_updated)))::json";
    } else {
      r.instance_data = instance_data("n");
    }
    r.meta = meta("n");
    r.is_sync = m_.filter ? "coalesce((" + *m_.filter + "), false)" : "true";
    return r;
  }

 private:
  [[noreturn]] void fail(const std::string& key, const std::string& cause) const {
    throw ConfigError("master.model '" + m_.cqrs_id + "' (" + quoted(info_.table) + ") " + key +
                      ": " + cause);
  }

  void validate() const {
    for (const auto& f : m_.fields) {
      if (info_.column(f) == nullptr) fail("fields", "no column \"" + f + "\" in the table");
    }
    for (const auto& f : m_.tracked_fields) {
      if (info_.column(f) == nullptr) {
        fail("tracked_fields", "no column \"" + f + "\" in the table");
      }
    }
    const std::pair<const char*, const std::optional<std::string>*> snippets[] = {
        {"filter", &m_.filter}, {"serializer", &m_.serializer}, {"meta_sql", &m_.meta_sql}};
    for (const auto& [key, snippet] : snippets) {
      if (*snippet && snippet->value().find(kDollar) != std::string::npos) {
        fail(key, "SQL must not contain the quote " + std::string(kDollar) +
                      " (pgcqrs wraps generated function bodies in it)");
      }
    }
    validate_cqrs_columns();
  }

  // Columns a django-cqrs master (or an earlier migrate) added must have the types the
  // triggers write and the events carry.
  void validate_cqrs_columns() const {
    const std::string table = quoted(info_.table);
    if (const Column* c = info_.column("cqrs_revision");
        c != nullptr && (c->is_array || (c->base_type != "int4" && c->base_type != "int8"))) {
      fail("table", "column cqrs_revision is " + c->type +
                        "; it must be integer or bigint (the revision replicas compare): ALTER "
                        "TABLE " +
                        table +
                        " ALTER COLUMN cqrs_revision TYPE integer USING cqrs_revision::integer");
    }
    if (const Column* c = info_.column("cqrs_updated");
        c != nullptr && (c->is_array || c->base_type != "timestamptz")) {
      std::string cause = "column cqrs_updated is " + c->type;
      if (!c->is_array && c->base_type == "timestamp") {
        // what Django creates with USE_TZ = False
        cause +=
            " (a Django USE_TZ = False table); it must be timestamptz: a timestamp without "
            "time zone holds local times of no stated zone, which the triggers would write and "
            "publish in each writing session's TimeZone. Convert it, naming the zone its "
            "values were written in (Django's TIME_ZONE): ALTER TABLE " +
            table +
            " ALTER COLUMN cqrs_updated TYPE timestamptz USING cqrs_updated AT TIME ZONE 'UTC'";
      } else {
        cause += "; it must be timestamptz: ALTER TABLE " + table +
                 " ALTER COLUMN cqrs_updated TYPE timestamptz";
      }
      fail("table", cause);
    }
  }

  void select_fields() {
    const std::set<std::string> wanted(m_.fields.begin(), m_.fields.end());
    fields_.push_back(&pk_column());
    for (const auto& c : info_.columns) {
      if (c.name == info_.primary_key || c.name == "cqrs_revision" || c.name == "cqrs_updated") {
        continue;
      }
      if (wanted.empty() || wanted.count(c.name) != 0) fields_.push_back(&c);
    }
    for (const auto& t : m_.tracked_fields)
      tracked_.push_back(info_.column(t));
  }

  const Column& pk_column() const { return *info_.column(info_.primary_key); }

  // Whether the UPDATE trigger needs the statement's old rows (REFERENCING OLD TABLE).
  bool update_reads_old() const { return !tracked_.empty() || m_.filter.has_value(); }

  std::string fn(std::string_view what) const {
    return "cqrs." + q_.name(function_name(m_.cqrs_id, what));
  }

  // The trigger functions run in the writing session's settings (TimeZone, DateStyle, ...):
  // the model's filter and meta SQL see what the application sees, and what the batch
  // triggers store does not depend on them (batch_kind()). A function SET clause would cost
  // every 1-row statement a settings save and restore.
  std::string function(std::string_view what, const std::string& body) const {
    return "CREATE OR REPLACE FUNCTION " + fn(what) + "() RETURNS trigger LANGUAGE plpgsql AS " +
           std::string(kDollar) + "\n" + body + std::string(kDollar);
  }

  std::string drop_trigger(std::string_view name, const std::string& table) const {
    return "DROP TRIGGER IF EXISTS " + q_.name(std::string(name)) + " ON " + table;
  }

  // JSON value of column `c` of row alias `a`, in django-cqrs's formats.
  std::string value(const std::string& a, const Column& c) const {
    const std::string ref = a + "." + q_.name(c.name);
    if (!c.is_array && c.base_type == "timestamptz") return "cqrs.django_ts(" + ref + ")";
    if (!c.is_array && c.base_type == "timestamp") return "cqrs.django_ts_naive(" + ref + ")";
    return ref;
  }

  std::string pk_json(const std::string& a) const {
    return "to_json(" + value(a, pk_column()) + ")";
  }

  std::string instance_data(const std::string& a) const {
    if (m_.serializer) return "NULL::json";
    std::vector<std::string> pairs;
    pairs.push_back(q_.literal(pk_column().name) + ", " + value(a, pk_column()));
    pairs.push_back("'cqrs_revision', " + a + ".cqrs_revision");
    pairs.push_back("'cqrs_updated', cqrs.django_ts(" + a + ".cqrs_updated)");
    for (std::size_t i = 1; i < fields_.size(); ++i) {
      pairs.push_back(q_.literal(fields_[i]->name) + ", " + value(a, *fields_[i]));
    }
    std::vector<std::string> calls;
    for (std::size_t i = 0; i < pairs.size(); i += kPairsPerCall) {
      std::string call = "json_build_object(";
      for (std::size_t j = i; j < std::min(pairs.size(), i + kPairsPerCall); ++j) {
        call += (j == i ? "" : ", ") + pairs[j];
      }
      calls.push_back(call + ")");
    }
    if (calls.size() == 1) return calls[0];
    std::string merged = "(";
    for (std::size_t i = 0; i < calls.size(); ++i) {
      merged += (i == 0 ? "" : " || ") + calls[i] + "::jsonb";
    }
    return merged + ")::json";
  }

  std::string delete_data(const std::string& a) const {
    return "json_build_object('id', " + value(a, pk_column()) + ", 'cqrs_revision', " + a +
           ".cqrs_revision + 1, 'cqrs_updated', cqrs.django_ts(now()))";
  }

  // previous_data of a new row: the tracked fields that are not null, mapped to null.
  std::string previous_on_insert(const std::string& a) const {
    if (tracked_.empty()) return "NULL::json";
    std::string arr;
    for (const auto* c : tracked_) {
      arr += (arr.empty() ? "" : ", ") + std::string("CASE WHEN ") + a + "." + q_.name(c->name) +
             " IS NOT NULL THEN " + q_.literal(c->name) + " END";
    }
    return "coalesce((SELECT json_object_agg(k, NULL) FROM unnest(ARRAY[" + arr +
           "]::text[]) AS k WHERE k IS NOT NULL), '{}'::json)";
  }

  // previous_data of an updated row: the tracked fields that changed, with their old values.
  std::string previous_on_update() const {
    if (tracked_.empty()) return "NULL::json";
    std::string rows;
    for (const auto* c : tracked_) {
      const std::string o = "o." + q_.name(c->name);
      const std::string n = "n." + q_.name(c->name);
      const std::string changed = compares_as_text(*c)
                                      ? o + "::text IS DISTINCT FROM " + n + "::text"
                                      : o + " IS DISTINCT FROM " + n;
      rows += (rows.empty() ? "" : ", ") + std::string("(") + q_.literal(c->name) + ", to_json(" +
              value("o", *c) + "), " + changed + ")";
    }
    return "coalesce((SELECT json_object_agg(x.k, x.v) FROM (VALUES " + rows +
           ") AS x(k, v, changed) WHERE x.changed), '{}'::json)";
  }

  std::string meta(const std::string& a) const {
    if (m_.meta_json) return q_.literal(*m_.meta_json) + "::json";
    if (m_.meta_sql) return a + ".cqrs_meta__";
    return "'{}'::json";
  }

  // `(SELECT t.*, <meta> AS cqrs_meta__ FROM <transition> t WHERE <filter>)`
  std::string rows(const std::string& transition, bool filtered, bool negate = false) const {
    std::string s = "(SELECT t.*";
    if (m_.meta_sql) s += ", to_json((" + *m_.meta_sql + ")) AS cqrs_meta__";
    s += " FROM " + transition + " t";
    if (filtered && m_.filter) {
      s += negate ? " WHERE NOT coalesce((" + *m_.filter + "), false)"
                  : " WHERE (" + *m_.filter + ")";
    }
    return s + ")";
  }

  std::string outbox_insert() const {
    return "INSERT INTO cqrs.outbox (cqrs_id, signal, instance_pk, revision, updated, "
           "instance_data, previous_data, meta, correlation_id)\n";
  }

  // Wakes the agent, at most once per kNotifyThrottle per session, and only when the agent
  // is not polling anyway: a transaction that called pg_notify takes a cluster-wide lock at
  // commit and holds it until its commit record is flushed, which serializes every committing
  // writer that notifies. The time of this session's last notification (or of its last
  // decision not to) lives in a session setting; set_config is undone with the transaction,
  // like the notification, when it rolls back. An agent polling every few ms after work holds
  // kAgentAwakeLockKey, and the shared try fails. A skipped notification costs latency, never
  // data: the agent polls, quickly for a while after work (see AgentOptions::linger).
  // One condition, not a variable and nested IFs: plpgsql prepares each expression of a
  // function again in every transaction, which a 1-row transaction pays in full.
  std::string notify() const {
    const std::string setting = q_.literal(std::string(kNotifySetting));
    const std::string now_ms = "(date_part('epoch', clock_timestamp()) * 1000)::bigint";
    std::string s = "  IF FOUND AND " + now_ms + " - coalesce(nullif(current_setting(" + setting +
                    ", true), '')::bigint, 0) >= ";
    s += std::to_string(kNotifyThrottle.count());
    s += " THEN\n    PERFORM set_config(" + setting + ", " + now_ms + "::text, false), ";
    s += "CASE WHEN pg_try_advisory_xact_lock_shared(";
    s += std::to_string(kAgentAwakeLockKey);
    s += ") THEN pg_notify(" + q_.literal(std::string(kOutboxChannel)) + ", '') END;\n";
    s += "  END IF;\n";
    return s;
  }

  // The start of a statement trigger's body. It declares nothing: the correlation id is read in
  // each INSERT (an inlined SQL function), not into a variable.
  static std::string begin() { return "BEGIN\n  "; }

  // Whether SAVE events go to the outbox as statement batches (see the top of this file).
  bool batched() const { return !m_.serializer && fields_.size() + 2 <= kPairsPerCall; }

  // One position of a batch row: its layout kind and name (master/batch.hpp) and the SQL of
  // its text over the row alias `n` (and `o`, the old row, in previous_data on update).
  struct BatchPosition {
    char kind;
    std::string name;
    std::string text;
  };

  // The positions of a batch row, in order: key, cqrs_revision, cqrs_updated, the other
  // fields, then previous_data and meta when the model has them.
  std::vector<BatchPosition> batch_positions(const std::string& previous) const {
    std::vector<BatchPosition> out;
    const auto column = [&](const Column& c) {
      const auto [kind, cast] = batch_kind(c);
      const std::string ref = "n." + q_.name(c.name);
      out.push_back({kind, c.name, cast ? ref + "::text" : "to_json(" + ref + ")::text"});
    };
    column(pk_column());
    out.push_back({'n', "cqrs_revision", "n.cqrs_revision::text"});
    out.push_back({'Z', "cqrs_updated", "to_json(n.cqrs_updated)::text"});
    for (std::size_t i = 1; i < fields_.size(); ++i)
      column(*fields_[i]);
    if (!tracked_.empty()) out.push_back({'P', "previous_data", "(" + previous + ")::text"});
    if (m_.meta_sql) out.push_back({'M', "meta", "n.cqrs_meta__::text"});
    return out;
  }

  // ARRAY[...] of one row's texts.
  static std::string batch_values(const std::vector<BatchPosition>& positions) {
    std::string arr = "ARRAY[";
    for (std::size_t i = 0; i < positions.size(); ++i) {
      if (i > 0) arr += ", ";
      arr += positions[i].text;
    }
    return arr + "]";
  }

  // What each position is: the text[] literal of '<kind>:<name>' per position, every element
  // quoted. Stored once in cqrs.batch_layout (migration 0004); batch rows carry its key.
  static std::string batch_layout(const std::vector<BatchPosition>& positions) {
    std::string arr = "{";
    for (const auto& p : positions) {
      if (arr.size() > 1) arr += ',';
      arr += '"';
      arr += p.kind;
      arr += ':';
      for (const char c : p.name) {
        if (c == '"' || c == '\\') arr += '\\';
        arr += c;
      }
      arr += '"';
    }
    return arr + "}";
  }

  std::string layout_text() const { return batch_layout(batch_positions("NULL")); }
  std::string layout_key() const { return "#" + hex(fnv1a(layout_text())); }

  // One outbox row per kBatchRows rows of `from` (rows with alias n, and o when joined), cut
  // again every kBatchBytes of row texts. OFFSET 0 keeps the row's array from being built twice.
  // A statement that changed one row takes the first INSERT, which stores the row's array
  // itself, without the window and grouping that cut batches: their set-up was a large part of
  // a 1-row statement's capture (docs/benchmarks.md, "1-row statements, the agent's cork and
  // the drain's harness"). The row-count test is in that INSERT, not a statement of its own:
  // each statement a trigger runs costs a 1-row transaction an executor start and a snapshot.
  // A statement of no rows, or whose one row the filter drops, runs the second test too.
  std::string batch_insert(const std::string& from, const std::string& previous) const {
    const std::string meta_const = m_.meta_json ? q_.literal(*m_.meta_json) + "::json" : "NULL";
    const auto positions = batch_positions(previous);
    const std::string insert =
        "INSERT INTO cqrs.outbox (cqrs_id, signal, batch, batch_layout, events, meta, "
        "correlation_id)\n  ";
    const std::string head = "SELECT " + q_.literal(m_.cqrs_id) + ", 'SAVE', ";
    const std::string tail = meta_const + ", cqrs.correlation_id()\n";
    const std::string layout = q_.literal(layout_key());
    const std::string several = "EXISTS (SELECT FROM cqrs_new OFFSET 1)";
    return insert + head + batch_values(positions) + ", " + layout + ", 1, " + tail + "  FROM " +
           from + " WHERE NOT " + several + ";\n  IF NOT FOUND THEN\n    IF " + several +
           " THEN\n      " + insert + "    " + head + "array_agg(b.v), " + layout + ", count(*), " +
           tail +
           "      FROM (SELECT r.v, row_number() OVER w AS rn, sum(pg_column_size(r.v)) OVER w "
           "AS upto\n"
           "            FROM (SELECT " +
           batch_values(positions) + " AS v FROM " + from +
           " OFFSET 0) r\n            WINDOW w AS (ROWS UNBOUNDED PRECEDING)) b\n      GROUP BY "
           "(b.rn - 1) / " +
           std::to_string(kBatchRows) + ", (b.upto - 1) / " + std::to_string(kBatchBytes) +
           ";\n    END IF;\n  END IF;\n";
  }

  std::string insert_body() const {
    if (batched()) {
      return begin() + batch_insert(rows("cqrs_new", true) + " n", previous_on_insert("n")) +
             notify() + "  RETURN NULL;\nEND\n";
    }
    return begin() + outbox_insert() + "  SELECT " + q_.literal(m_.cqrs_id) + ", 'SAVE', " +
           pk_json("n") + ", n.cqrs_revision, n.cqrs_updated, " + instance_data("n") + ", " +
           previous_on_insert("n") + ", " + meta("n") + ", cqrs.correlation_id()\n  FROM " +
           rows("cqrs_new", true) + " n;\n" + notify() + "  RETURN NULL;\nEND\n";
  }

  std::string update_body() const {
    const std::string pk = q_.name(pk_column().name);
    std::string from = rows("cqrs_new", true) + " n";
    if (!tracked_.empty()) from += " LEFT JOIN cqrs_old o ON o." + pk + " = n." + pk;
    std::string body;
    if (batched()) {
      body = begin() + batch_insert(from, previous_on_update()) + notify();
    } else {
      body = begin() + outbox_insert() + "  SELECT " + q_.literal(m_.cqrs_id) + ", 'SAVE', " +
             pk_json("n") + ", n.cqrs_revision, n.cqrs_updated, " + instance_data("n") + ", " +
             previous_on_update() + ", " + meta("n") + ", cqrs.correlation_id()\n  FROM " + from +
             ";\n" + notify();
    }
    if (m_.filter) {
      // a row that stops matching the filter leaves the replicas: publish its delete
      body += "  " + outbox_insert() + "  SELECT " + q_.literal(m_.cqrs_id) + ", 'DELETE', " +
              pk_json("n") + ", n.cqrs_revision, now(), " + "json_build_object('id', " +
              value("n", pk_column()) +
              ", 'cqrs_revision', n.cqrs_revision, 'cqrs_updated', cqrs.django_ts(now())), " +
              "NULL, " + meta("n") + ", cqrs.correlation_id()\n  FROM " +
              rows("cqrs_new", true, true) + " n JOIN " + rows("cqrs_old", true) + " o ON o." + pk +
              " = n." + pk + ";\n" + notify();
    }
    return body + "  RETURN NULL;\nEND\n";
  }

  std::string delete_body() const {
    return begin() + outbox_insert() + "  SELECT " + q_.literal(m_.cqrs_id) + ", 'DELETE', " +
           pk_json("o") + ", o.cqrs_revision + 1, now(), " + delete_data("o") + ", NULL, " +
           meta("o") + ", cqrs.correlation_id()\n  FROM " + rows("cqrs_old", true) + " o;\n" +
           notify() + "  RETURN NULL;\nEND\n";
  }

  std::string bump_body() const {
    const std::string pk = q_.name(pk_column().name);
    std::string body =
        "BEGIN\n  NEW.cqrs_revision := OLD.cqrs_revision + 1;\n  NEW.cqrs_updated := now();\n";
    if (m_.produce) {
      // the old key disappears: replicas must delete it (the new key arrives as a SAVE)
      std::string cond = "NEW." + pk + " IS DISTINCT FROM OLD." + pk;
      if (m_.filter) {
        cond += " AND EXISTS (SELECT 1 FROM (SELECT (OLD).*) t WHERE (" + *m_.filter + "))";
      }
      std::string meta_expr = meta("o");
      if (m_.meta_sql) {
        meta_expr = "(SELECT to_json((" + *m_.meta_sql + ")) FROM (SELECT (OLD).*) t)";
      }
      body += "  IF " + cond + " THEN\n    " + outbox_insert() + "    SELECT " +
              q_.literal(m_.cqrs_id) + ", 'DELETE', " + pk_json("o") +
              ", o.cqrs_revision + 1, now(), " + delete_data("o") + ", NULL, " + meta_expr +
              ", cqrs.correlation_id() FROM (SELECT (OLD).*) o;\n  END IF;\n";
    }
    return body + "  RETURN NEW;\nEND\n";
  }

  std::string truncate_body(const std::string& table) const {
    return "BEGIN\n  RAISE EXCEPTION 'TRUNCATE of % is refused: pgcqrs captures its changes "
           "(cqrs_id %)', " +
           q_.literal(table) + ", " + q_.literal(m_.cqrs_id) +
           "\n    USING HINT = 'DELETE the rows instead so replicas delete them too, or remove "
           "capture first (pgcqrs master uninstall)', ERRCODE = 'feature_not_supported';\nEND\n";
  }

  const MasterModel& m_;
  const TableInfo& info_;
  const SqlQuoter& q_;
  std::vector<const Column*> fields_;  // primary key first
  std::vector<const Column*> tracked_;
};

}  // namespace

SqlQuoter quoter_for(pqxx::transaction_base& txn) {
  return SqlQuoter{[&txn](const std::string& s) { return txn.quote_name(s); },
                   [&txn](const std::string& s) { return txn.quote(s); }};
}

std::string function_name(const std::string& cqrs_id, std::string_view what) {
  return cqrs_id + "__" + std::string(what);
}

CaptureDdl capture_ddl(const MasterModel& model, const TableInfo& info, const SqlQuoter& q) {
  return Generator(model, info, q).ddl();
}

std::vector<SnippetCheck> snippet_checks(const MasterModel& model, const TableInfo& info,
                                         const SqlQuoter& q) {
  return Generator(model, info, q).checks();
}

RowSql row_sql(const MasterModel& model, const TableInfo& info, const SqlQuoter& q) {
  return Generator(model, info, q).row();
}

std::vector<std::string> uncapture_ddl(const std::string& cqrs_id, const QualifiedName& table,
                                       const SqlQuoter& q) {
  const std::string t = q.name(table.schema) + "." + q.name(table.name);
  std::vector<std::string> out;
  for (auto trig :
       {kBumpTrigger, kInsertTrigger, kUpdateTrigger, kDeleteTrigger, kTruncateTrigger}) {
    out.push_back("DROP TRIGGER IF EXISTS " + q.name(std::string(trig)) + " ON " + t);
  }
  for (auto what : {"bump", "insert", "update", "delete", "truncate"}) {
    out.push_back("DROP FUNCTION IF EXISTS cqrs." + q.name(function_name(cqrs_id, what)) + "()");
  }
  // the serializer takes the key's type: drop it whatever that type is
  out.push_back(
      "DO " + std::string(kDollar) +
      " DECLARE f regprocedure; BEGIN FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN "
      "pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'cqrs' AND p.proname = " +
      q.literal(function_name(cqrs_id, "serialize")) +
      " LOOP EXECUTE 'DROP FUNCTION ' || f; END LOOP; END " + std::string(kDollar));
  return out;
}

std::vector<std::string> serializer_dispatch_ddl(const std::vector<SerializedModel>& models,
                                                 const SqlQuoter& q) {
  // the key travels as JSON; the serializer takes the column's type: cast its text form
  // (django formats parse back for every supported key type)
  std::string serialize_cases;
  std::string exists_cases;
  for (const auto& m : models) {
    const std::string when = "    WHEN " + q.literal(m.cqrs_id) + " THEN ";
    serialize_cases += when + "data := cqrs." + q.name(function_name(m.cqrs_id, "serialize")) +
                       "((NEW.instance_pk #>> '{}')::" + m.pk_type + ");\n";
    exists_cases += when + "RETURN EXISTS (SELECT FROM " + q.name(m.table.schema) + "." +
                    q.name(m.table.name) + " WHERE " + q.name(m.pk_column) +
                    " = (p_pk #>> '{}')::" + m.pk_type + ");\n";
  }
  std::vector<std::string> out;
  out.push_back("DROP TRIGGER IF EXISTS fill_instance_data ON cqrs.outbox");
  if (serialize_cases.empty()) {
    out.push_back("DROP FUNCTION IF EXISTS cqrs.fill_instance_data()");
    out.push_back("DROP FUNCTION IF EXISTS cqrs.outbox_fill(bigint, json)");
    out.push_back("DROP FUNCTION IF EXISTS cqrs.row_exists(text, json)");
    return out;
  }
  const std::string dollar(kDollar);
  // The writer runs the serializer (the model's SQL, with the writer's rights), then these two
  // with the rights of the role that ran migrate: the writer needs neither UPDATE nor DELETE
  // on the outbox, nor SELECT on the table, and row-level security cannot hide a row from the
  // existence check (which would drop its SAVE). Both run only pgcqrs's own SQL, with a fixed
  // search_path; outbox_fill touches only a SAVE row still waiting for its data.
  out.push_back(
      "CREATE OR REPLACE FUNCTION cqrs.outbox_fill(p_id bigint, p_data json) RETURNS void "
      "LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS " +
      dollar +
      "\nBEGIN\n"
      "  IF p_data IS NULL THEN\n"
      "    DELETE FROM cqrs.outbox WHERE id = p_id AND signal = 'SAVE' AND batch IS NULL\n"
      "      AND instance_data IS NULL;\n"
      "  ELSE\n"
      "    UPDATE cqrs.outbox SET instance_data = p_data WHERE id = p_id AND signal = 'SAVE'\n"
      "      AND batch IS NULL AND instance_data IS NULL;\n"
      "  END IF;\n"
      "END\n" +
      dollar);
  out.push_back(
      "CREATE OR REPLACE FUNCTION cqrs.row_exists(p_cqrs_id text, p_pk json) RETURNS boolean "
      "LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS " +
      dollar + "\nBEGIN\n  CASE p_cqrs_id\n" + exists_cases +
      "    ELSE RETURN true;\n  END CASE;\nEND\n" + dollar);
  const std::string body =
      "DECLARE data json;\nBEGIN\n  CASE NEW.cqrs_id\n" + serialize_cases +
      "    ELSE RETURN NULL;\n  END CASE;\n"
      "  IF data IS NOT NULL THEN\n"
      "    PERFORM cqrs.outbox_fill(NEW.id, (data::jsonb || jsonb_build_object("
      "'cqrs_revision', NEW.revision, 'cqrs_updated', cqrs.django_ts(NEW.updated)))::json);\n"
      "  ELSIF NOT cqrs.row_exists(NEW.cqrs_id, NEW.instance_pk) THEN\n"
      "    -- the row is gone by commit time: its DELETE event follows, nothing to save\n"
      "    PERFORM cqrs.outbox_fill(NEW.id, NULL);\n"
      "  ELSE\n"
      "    -- a serializer that misses a row that exists: the event stays without its data,\n"
      "    -- and the agent sets it aside (cqrs.outbox_failed) rather than lose the change\n"
      "    RAISE WARNING 'pgcqrs: the serializer of % returned NULL for key %, a row that "
      "exists; its SAVE event will be set aside in cqrs.outbox_failed', NEW.cqrs_id, "
      "NEW.instance_pk;\n"
      "  END IF;\n  RETURN NULL;\nEND\n";
  out.push_back(
      "CREATE OR REPLACE FUNCTION cqrs.fill_instance_data() RETURNS trigger "
      "LANGUAGE plpgsql AS " +
      dollar + "\n" + body + dollar);
  out.push_back(
      "CREATE CONSTRAINT TRIGGER fill_instance_data AFTER INSERT ON cqrs.outbox "
      "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.instance_data IS NULL AND "
      "NEW.signal = 'SAVE' AND NEW.batch IS NULL) EXECUTE FUNCTION cqrs.fill_instance_data()");
  return out;
}

}  // namespace pgcqrs::master
