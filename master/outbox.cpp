// cqrs.outbox access for the agent, and the django-cqrs body of an outbox row.
#include "master/outbox.hpp"

#include <optional>
#include <string_view>

#include "common/error.hpp"
#include "common/event.hpp"
#include "common/json.hpp"
#include "master/batch.hpp"

namespace pgcqrs::master {
namespace {

// The rows after the cursor, as many as hold `$2` events (at least one), and from the same
// snapshot the ids at or before it (cqrs_id NULL marks them): both parts of a UNION ALL run
// under one snapshot. A batch row's events are built by the agent (master/batch.hpp).
constexpr const char* kFetchAfter = R"sql(
(SELECT id, cqrs_id, signal, instance_pk::text, instance_data::text, previous_data::text,
        meta::text, correlation_id, batch::text, batch_layout
 FROM (SELECT o.*, sum(o.events) OVER (ORDER BY o.id) AS upto
       FROM (SELECT * FROM cqrs.outbox WHERE id > $1 ORDER BY id LIMIT $2) o) o
 WHERE upto - events < $2 ORDER BY id)
UNION ALL
(SELECT id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
 FROM cqrs.outbox WHERE id <= $1 ORDER BY id LIMIT $3)
)sql";

// The rows of these ids, in id order, as many as hold `$2` events (at least one), as
// kFetchAfter counts them.
constexpr const char* kFetchIds = R"sql(
SELECT id, cqrs_id, signal, instance_pk::text, instance_data::text, previous_data::text,
       meta::text, correlation_id, batch::text, batch_layout
FROM (SELECT o.*, sum(o.events) OVER (ORDER BY o.id) AS upto
      FROM cqrs.outbox o WHERE id = ANY ($1::bigint[])) o
WHERE upto - events < $2 ORDER BY id
)sql";

// The layout a batch row's key names (migration 0004), read once per key: the agent keeps it.
constexpr const char* kLayout = "SELECT layout FROM cqrs.batch_layout WHERE key = $1";

constexpr const char* kRemove = "DELETE FROM cqrs.outbox WHERE id = ANY ($1::bigint[])";

// cqrs.outbox_failed has cqrs.outbox's columns, then the reason and the time (migration 0005):
// the move is one statement, so the row is in exactly one of the two.
constexpr const char* kPark = R"sql(
WITH moved AS (DELETE FROM cqrs.outbox WHERE id = $1 RETURNING *)
INSERT INTO cqrs.outbox_failed (id, cqrs_id, signal, instance_pk, revision, updated, instance_data,
                                previous_data, meta, correlation_id, created_at, batch,
                                batch_layout, events, error, failed_at)
SELECT id, cqrs_id, signal, instance_pk, revision, updated, instance_data, previous_data, meta,
       correlation_id, created_at, batch, batch_layout, events, $2, now()
FROM moved
)sql";

// Two probes of the outbox's primary key (and one heap fetch): constant cost at any backlog;
// and the rows set aside, which stay few (each is an error to act on).
constexpr const char* kBacklog = R"sql(
SELECT coalesce((SELECT max(id) FROM cqrs.outbox) - o.id + 1, 0),
       coalesce(extract(epoch FROM now() - o.created_at), 0)::float8,
       (SELECT count(*) FROM cqrs.outbox_failed)
FROM (SELECT NULL) AS one
LEFT JOIN LATERAL (SELECT id, created_at FROM cqrs.outbox ORDER BY id LIMIT 1) AS o ON true
)sql";

constexpr const char* kMayVacuum = R"sql(
SELECT pg_has_role(current_user, c.relowner, 'MEMBER') FROM pg_class c
WHERE c.oid = 'cqrs.outbox'::regclass
)sql";

std::optional<std::string> opt(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<std::string>();
}

// The layout text the batch_layout key `key` names; nullopt when none.
std::optional<std::string> read_layout(pqxx::transaction_base& txn, const std::string& key) {
  const pqxx::result r = txn.exec_prepared("outbox_layout", key);
  if (r.empty()) return std::nullopt;
  return r[0][0].as<std::string>();
}

// The events of one fetched row: itself, or the events of its batch. `layouts` keeps the
// layouts already parsed (one per model and configuration, in practice) by their key, or by
// their text in rows written before migration 0004; a key's layout is read through `txn`.
void append_row_events(std::vector<OutboxRow>& out, const pqxx::row& f, LayoutCache& layouts,
                       pqxx::transaction_base& txn);

// append_row_events(), or, for a row that cannot be read as events, the row alone with the
// reason in `error` (the agent sets it aside: it must not stop the rows after it).
void append_events(std::vector<OutboxRow>& out, const pqxx::row& f, LayoutCache& layouts,
                   pqxx::transaction_base& txn) {
  const std::size_t before = out.size();
  try {
    append_row_events(out, f, layouts, txn);
  } catch (const MessageError& e) {
    out.resize(before);
    OutboxRow row;
    row.id = f[0].as<std::int64_t>();
    row.cqrs_id = f[1].as<std::string>();
    row.signal = f[2].as<std::string>();
    row.error = e.what();
    out.push_back(std::move(row));
  }
}

void append_row_events(std::vector<OutboxRow>& out, const pqxx::row& f, LayoutCache& layouts,
                       pqxx::transaction_base& txn) {
  OutboxRow row;
  row.id = f[0].as<std::int64_t>();
  row.cqrs_id = f[1].as<std::string>();
  row.signal = f[2].as<std::string>();
  row.meta = opt(f[6]);
  row.correlation_id = opt(f[7]);
  if (!f[8].is_null()) {
    const std::string_view named =
        f[9].is_null() ? std::string_view() : std::string_view(f[9].c_str(), f[9].size());
    auto it = layouts.find(named);
    if (it == layouts.end()) {
      std::string key(named);
      std::optional<std::string> text;
      if (!key.empty() && key[0] == '#') text = read_layout(txn, key);
      // a key that names no layout is parsed as it is, which refuses it by name
      BatchLayout layout = parse_layout(row, text ? *text : key);
      if (layouts.size() >= 256) layouts.clear();  // bounded: layouts change only on migrate
      it = layouts.emplace(std::move(key), std::move(layout)).first;
    }
    for (auto& e : expand_batch(row, std::string_view(f[8].c_str(), f[8].size()), it->second)) {
      out.push_back(std::move(e));
    }
    return;
  }
  if (f[3].is_null()) {
    throw MessageError("outbox id=" + std::to_string(row.id) +
                       " has neither instance_pk nor batch");
  }
  row.instance_pk = f[3].as<std::string>();
  row.instance_data = opt(f[4]);
  row.previous_data = opt(f[5]);
  if (!row.instance_data && parse_signal(row.signal) == Signal::kSave) {
    // a SAVE is filled at commit by its model's serializer (cqrs.fill_instance_data)
    throw MessageError("outbox id=" + std::to_string(row.id) + " (" + row.cqrs_id + ", key " +
                       row.instance_pk +
                       ") is a SAVE without instance_data: the model's serializer returned "
                       "NULL for a row that exists at commit (or the model has no serializer "
                       "any more); fix it, then move the row back (docs/master.md), which "
                       "serializes it again");
  }
  out.push_back(std::move(row));
}

std::string id_array(const std::vector<std::int64_t>& ids) {
  std::string array = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) array += ',';
    array += std::to_string(ids[i]);
  }
  array += '}';
  return array;
}

json::Json member(const std::optional<std::string>& text, const OutboxRow& row,
                  std::string_view what) {
  if (!text) return nullptr;
  return json::parse(*text, {}, "outbox id=" + std::to_string(row.id) + " " + std::string(what));
}

// The body through a parsed document: the reference that splice_json() must match, and the
// path that names the member when stored text is not valid JSON.
std::string build_body_parsed(const OutboxRow& row, Timestamp now, std::chrono::seconds ttl) {
  Event e;
  e.signal = parse_signal(row.signal);
  e.cqrs_id = row.cqrs_id;
  e.instance_data = member(row.instance_data, row, "instance_data");
  e.instance_pk = member(row.instance_pk, row, "instance_pk");
  e.previous_data = member(row.previous_data, row, "previous_data");
  e.meta = row.meta ? member(row.meta, row, "meta") : json::Json::object();
  if (row.correlation_id) e.correlation_id = *row.correlation_id;
  e.retries = 0;
  if (ttl.count() > 0) e.expires = now + ttl;
  return encode_event(e);
}

bool is_space(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

bool is_number_char(char c) {
  return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

// Escapes that json::dump() writes the same way as they are read: \" \\ \/ \b \f \n \r \t.
bool is_kept_escape(char c) {
  return c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
         c == 't';
}

// json::parse's default nesting limit: deeper text goes to the parser, which refuses it.
constexpr std::size_t kMaxDepth = 64;

}  // namespace

bool splice_json(std::string& out, std::string_view text, std::size_t outer_depth) {
  // what may come next: a value, an object key, a colon, a comma or the container's end
  enum class Next { kValue, kValueOrEnd, kKey, kKeyOrEnd, kColon, kCommaOrEnd, kDone };
  std::string stack;  // '{' and '[' of the open containers
  Next next = Next::kValue;
  const auto value_done = [&] { next = stack.empty() ? Next::kDone : Next::kCommaOrEnd; };
  const auto value_expected = [&] { return next == Next::kValue || next == Next::kValueOrEnd; };
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    const char c = text[i];
    if (is_space(c)) {
      ++i;
      continue;
    }
    switch (c) {
      case '{':
      case '[':
        if (!value_expected() || outer_depth + stack.size() >= kMaxDepth) return false;
        stack += c;
        next = c == '{' ? Next::kKeyOrEnd : Next::kValueOrEnd;
        out += c;
        ++i;
        continue;
      case '}':
      case ']': {
        const bool empty_ok = c == '}' ? next == Next::kKeyOrEnd : next == Next::kValueOrEnd;
        if (stack.empty() || stack.back() != (c == '}' ? '{' : '[') ||
            !(empty_ok || next == Next::kCommaOrEnd)) {
          return false;
        }
        stack.pop_back();
        value_done();
        out += c;
        ++i;
        continue;
      }
      case ':':
        if (next != Next::kColon) return false;
        next = Next::kValue;
        out += c;
        ++i;
        continue;
      case ',':
        if (next != Next::kCommaOrEnd) return false;
        next = stack.back() == '{' ? Next::kKey : Next::kValue;
        out += c;
        ++i;
        continue;
      case '"': {
        if (next == Next::kKey || next == Next::kKeyOrEnd) {
          next = Next::kColon;
        } else if (value_expected()) {
          value_done();
        } else {
          return false;
        }
        // find the closing quote; plain printable ASCII and the kept escapes are copied
        std::size_t j = i + 1;
        bool plain = true;
        while (j < n && text[j] != '"') {
          const auto b = static_cast<unsigned char>(text[j]);
          if (b == '\\') {
            if (j + 1 >= n) return false;
            if (!is_kept_escape(text[j + 1])) plain = false;
            j += 2;
            continue;
          }
          if (b < 0x20 || b > 0x7E || b == '/') plain = false;
          ++j;
        }
        if (j >= n) return false;
        const std::string_view token = text.substr(i, j + 1 - i);
        if (plain) {
          out += token;
        } else {
          // `/`, \uXXXX or non-ASCII: let the codec decode and write it
          try {
            json::dump_to(out, json::parse(token));
          } catch (const MessageError&) {
            return false;
          }
        }
        i = j + 1;
        continue;
      }
      default:
        break;
    }
    if (!value_expected()) return false;
    value_done();
    std::size_t j = i;
    if (is_number_char(c)) {
      while (j < n && is_number_char(text[j]))
        ++j;
      const std::string_view token = text.substr(i, j - i);
      if (!json::is_number_text(token)) return false;
      // the parser reads -0 as the integer 0; every other number is written as it is read
      out += token == "-0" ? std::string_view("0") : token;
      i = j;
      continue;
    }
    for (const std::string_view word : {"true", "false", "null"}) {
      if (text.substr(i, word.size()) == word) {
        out += word;
        j = i + word.size();
        break;
      }
    }
    if (j == i) return false;
    i = j;
  }
  return next == Next::kDone;
}

std::string build_body(const OutboxRow& row, Timestamp now, std::chrono::seconds ttl) {
  std::string out;
  out.reserve(160 + row.cqrs_id.size() + row.instance_pk.size() +
              (row.instance_data ? row.instance_data->size() : 0) +
              (row.previous_data ? row.previous_data->size() : 0) +
              (row.meta ? row.meta->size() : 0));
  const auto splice = [&out](const std::optional<std::string>& text, std::string_view dflt) {
    if (!text) {
      out += dflt;
      return true;
    }
    return splice_json(out, *text);
  };
  out += "{\"signal_type\":";
  json::dump_to(out, json::Json(std::string(to_string(parse_signal(row.signal)))));
  out += ",\"cqrs_id\":";
  json::dump_to(out, json::Json(row.cqrs_id));
  out += ",\"instance_data\":";
  bool ok = true;
  if (row.formatted && row.instance_data) {
    out += *row.instance_data;
  } else {
    ok = splice(row.instance_data, "null");
  }
  out += ",\"previous_data\":";
  ok = ok && splice(row.previous_data, "null");
  out += ",\"instance_pk\":";
  if (row.formatted) {
    out += row.instance_pk;
  } else {
    ok = ok && splice_json(out, row.instance_pk);
  }
  out += ",\"correlation_id\":";
  if (row.correlation_id) {
    json::dump_to(out, json::Json(*row.correlation_id));
  } else {
    out += "null";
  }
  out += ",\"retries\":0,\"expires\":";
  if (ttl.count() > 0) {
    out += '"';
    out += format_expires(now + ttl);
    out += '"';
  } else {
    out += "null";
  }
  out += ",\"meta\":";
  ok = ok && splice(row.meta, "{}");
  out += '}';
  // text the splice does not recognise: the parser names the member and the position
  if (!ok) return build_body_parsed(row, now, ttl);
  return out;
}

Outbox::Outbox(pg::Session& db) : db_(db) {
  {
    // The agent's deletes need not wait for their WAL flush: a delete lost in a crash of the
    // database only means its rows are published again, which at-least-once allows. Waiting
    // for the shared disk at every batch held the agent up while confirms piled up.
    pqxx::nontransaction txn(db_.conn());
    txn.exec0("SET synchronous_commit = off");
  }
  db_.prepare("outbox_fetch", kFetchAfter);
  db_.prepare("outbox_fetch_ids", kFetchIds);
  db_.prepare("outbox_remove", kRemove);
  db_.prepare("outbox_backlog", kBacklog);
  db_.prepare("outbox_layout", kLayout);
  db_.prepare("outbox_park", kPark);
}

Fetched Outbox::fetch_after(std::int64_t after, int limit, int below_limit) {
  pqxx::nontransaction txn(db_.conn());
  const pqxx::result r = txn.exec_prepared("outbox_fetch", after, limit, below_limit);
  Fetched out;
  out.ahead.reserve(r.size());
  for (const auto& f : r) {
    if (f[1].is_null()) {
      out.below.push_back(f[0].as<std::int64_t>());
    } else {
      append_events(out.ahead, f, layouts_, txn);
    }
  }
  out.below_truncated = static_cast<int>(out.below.size()) >= below_limit;
  return out;
}

std::vector<OutboxRow> Outbox::fetch_ids(const std::vector<std::int64_t>& ids, int limit) {
  if (ids.empty()) return {};
  pqxx::nontransaction txn(db_.conn());
  const pqxx::result r = txn.exec_prepared("outbox_fetch_ids", id_array(ids), limit);
  std::vector<OutboxRow> rows;
  rows.reserve(r.size());
  for (const auto& f : r)
    append_events(rows, f, layouts_, txn);
  return rows;
}

void Outbox::remove(const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return;
  pqxx::nontransaction txn(db_.conn());
  txn.exec_prepared("outbox_remove", id_array(ids));
}

Backlog Outbox::backlog() {
  pqxx::nontransaction txn(db_.conn());
  const pqxx::row r = txn.exec_prepared1("outbox_backlog");
  return {r[0].as<std::int64_t>(), r[1].as<double>(), r[2].as<std::int64_t>()};
}

void Outbox::park(std::int64_t id, const std::string& error) {
  pqxx::nontransaction txn(db_.conn());
  txn.exec_prepared("outbox_park", id, error);
}

bool Outbox::vacuum() {
  if (!may_vacuum_) {
    pqxx::nontransaction txn(db_.conn());
    may_vacuum_ = txn.exec1(kMayVacuum)[0].as<bool>();
  }
  if (!*may_vacuum_) return false;
  pqxx::nontransaction txn(db_.conn());
  txn.exec0("VACUUM (SKIP_LOCKED) cqrs.outbox");
  return true;
}

}  // namespace pgcqrs::master
