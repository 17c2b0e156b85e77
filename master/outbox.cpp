// cqrs.outbox access for the agent, and the django-cqrs body of an outbox row.
#include "master/outbox.hpp"

#include <string_view>

#include "common/event.hpp"
#include "common/json.hpp"

namespace pgcqrs::master {
namespace {

constexpr const char* kFetch = R"sql(
SELECT id, cqrs_id, signal, instance_pk::text, instance_data::text, previous_data::text,
       meta::text, correlation_id
FROM cqrs.outbox
ORDER BY id
LIMIT $1
)sql";

constexpr const char* kRemove = "DELETE FROM cqrs.outbox WHERE id = ANY ($1::bigint[])";

constexpr const char* kBacklog = R"sql(
SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
FROM cqrs.outbox
)sql";

std::optional<std::string> opt(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<std::string>();
}

json::Json member(const std::optional<std::string>& text, const OutboxRow& row,
                  std::string_view what) {
  if (!text) return nullptr;
  return json::parse(*text, {}, "outbox id=" + std::to_string(row.id) + " " + std::string(what));
}

}  // namespace

std::string build_body(const OutboxRow& row, Timestamp now, std::chrono::seconds ttl) {
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

Outbox::Outbox(pg::Session& db) : db_(db) {
  db_.prepare("outbox_fetch", kFetch);
  db_.prepare("outbox_remove", kRemove);
  db_.prepare("outbox_backlog", kBacklog);
}

std::vector<OutboxRow> Outbox::fetch(int limit) {
  pqxx::nontransaction txn(db_.conn());
  const pqxx::result r = txn.exec_prepared("outbox_fetch", limit);
  std::vector<OutboxRow> rows;
  rows.reserve(r.size());
  for (const auto& f : r) {
    rows.push_back(OutboxRow{f[0].as<std::int64_t>(), f[1].as<std::string>(),
                             f[2].as<std::string>(), f[3].as<std::string>(), opt(f[4]), opt(f[5]),
                             opt(f[6]), opt(f[7])});
  }
  return rows;
}

void Outbox::remove(const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return;
  std::string array = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) array += ',';
    array += std::to_string(ids[i]);
  }
  array += '}';
  pqxx::nontransaction txn(db_.conn());
  txn.exec_prepared("outbox_remove", array);
}

Backlog Outbox::backlog() {
  pqxx::nontransaction txn(db_.conn());
  const pqxx::row r = txn.exec_prepared1("outbox_backlog");
  return {r[0].as<std::int64_t>(), r[1].as<double>()};
}

}  // namespace pgcqrs::master
