// Mapping events to replica rows, and keeping the newest event per row of a batch.
#include "replica/batch.hpp"

#include <algorithm>
#include <unordered_map>
#include <utility>

#include "common/error.hpp"

namespace pgcqrs::replica {
namespace {

using json::Json;

constexpr std::string_view kRevision = "cqrs_revision";
constexpr std::string_view kUpdated = "cqrs_updated";

// `SAVE author pk=7` for messages.
std::string subject(const Event& e) {
  return std::string(to_string(e.signal)) + " " + e.cqrs_id + " pk=" + e.pk_text();
}

[[noreturn]] void fail(const Event& e, const std::string& cause) {
  throw MessageError(subject(e) + ": " + cause);
}

std::int64_t revision_of(const Event& e) {
  const auto it = e.instance_data.find(kRevision);
  if (it == e.instance_data.end()) {
    fail(e, "instance_data: missing required key '" + std::string(kRevision) + "'");
  }
  const auto rev = e.revision();
  if (!rev) {
    fail(e, "instance_data." + std::string(kRevision) + " '" + json::excerpt(*it) +
                "': not an integer");
  }
  return *rev;
}

void require_updated(const Event& e) {
  if (!e.instance_data.contains(kUpdated)) {
    fail(e, "instance_data: missing required key '" + std::string(kUpdated) + "'");
  }
}

std::string key_text(const Json& pk) {
  if (pk.is_string()) return pk.get<std::string>();
  return json::dump(pk);
}

// One member of instance_data under its replica name (pointers into the event and config).
struct Member {
  const std::string* name;
  Json* value;
};

// `data`'s members with their replica names: a key with a mapping takes the mapped name, others
// keep theirs; cqrs_revision and cqrs_updated are never renamed. When an unmapped key has the
// name a mapped key of `data` takes, the mapped one wins and the other is dropped.
std::vector<Member> renamed(const ReplicaModel& model, Json& data) {
  std::vector<Member> out;
  if (!data.is_object()) return out;
  auto& members = data.get_ref<Json::object_t&>();
  out.reserve(members.size());
  if (model.mapping.empty()) {
    for (auto& [k, v] : members)
      out.push_back({&k, &v});
    return out;
  }
  const auto sync_field = [](std::string_view name) {
    return name == kRevision || name == kUpdated;
  };
  // nullptr: no mapping; a mapping onto cqrs_revision or cqrs_updated is ignored (load_targets()
  // refuses it): those two always come from the event's own keys
  const auto mapped = [&](const std::string& key) -> const std::string* {
    if (sync_field(key)) return nullptr;
    const auto it = model.mapping.find(key);
    return it == model.mapping.end() || sync_field(it->second) ? nullptr : &it->second;
  };
  std::vector<const std::string*> taken;  // names taken by mapped keys
  for (const auto& [k, v] : members) {
    if (const std::string* to = mapped(k)) taken.push_back(to);
  }
  for (auto& [k, v] : members) {
    if (const std::string* to = mapped(k)) {
      out.push_back({to, &v});
      continue;
    }
    const bool keep =
        sync_field(k) || (!model.mapping.contains(k) &&
                          std::none_of(taken.begin(), taken.end(),
                                       [&k = k](const std::string* t) { return *t == k; }));
    if (keep) out.push_back({&k, &v});
  }
  return out;
}

Json renamed_object(const ReplicaModel& model, Json data) {
  if (!data.is_object() || model.mapping.empty()) return data;
  Json out = Json::object();
  auto& members = out.get_ref<Json::object_t&>();
  for (const auto& m : renamed(model, data))
    members.emplace_back(*m.name, std::move(*m.value));  // names are unique
  return out;
}

// The primary key of a DELETE, and of a SAVE/SYNC of an apply_function model.
Json delete_key(const Event& e) {
  const auto it = e.instance_data.find("id");
  if (it != e.instance_data.end() && !it->is_null()) return *it;
  if (!e.instance_pk.is_null()) return e.instance_pk;
  fail(e, "no primary key: instance_data has no 'id' and instance_pk is null");
}

// Moves the values out of `e` (validated first, so errors still quote it).
Row map_to_table(const Target& target, Event& e, Row row) {
  const auto& columns = target.table.columns;
  const auto key = target.table.index_of(target.table.primary_key);
  if (!key) {
    throw MessageError(subject(e) + ": table " + quoted(target.table.table) +
                       " has no usable primary key column (load_targets() checks this)");
  }
  std::vector<Json*> slot(columns.size(), nullptr);
  for (const auto& m : renamed(target.model, e.instance_data)) {
    if (const auto i = target.table.index_of(*m.name)) slot[*i] = m.value;
  }
  if (slot[*key] == nullptr || slot[*key]->is_null()) {
    if (e.instance_pk.is_null()) {
      fail(e, "no primary key: instance_data has no '" + target.table.primary_key +
                  "' and instance_pk is null");
    }
    slot[*key] = &e.instance_pk;
  }
  row.pk = *slot[*key];
  row.data = Json::object();
  auto& members = row.data.get_ref<Json::object_t&>();
  members.reserve(columns.size());
  row.columns.reserve(columns.size());
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (slot[i] == nullptr) continue;
    members.emplace_back(columns[i].name, std::move(*slot[i]));  // names are unique
    row.columns.push_back(i);
  }
  return row;
}

int signal_rank(Signal s) noexcept {
  switch (s) {
    case Signal::kSave:
      return 0;
    case Signal::kSync:
      return 1;
    case Signal::kDelete:
      return 2;
  }
  return 0;
}

}  // namespace

Row map_event(const Target& target, Event e, DeliveryRef delivery) {
  Row row;
  row.signal = e.signal;
  row.delivery = delivery;
  row.revision = revision_of(e);
  if (e.signal == Signal::kDelete) {
    row.pk = delete_key(e);
    row.data = std::move(e.instance_data);
  } else {
    require_updated(e);
    if (target.uses_function()) {
      row.pk = e.instance_pk.is_null() ? delete_key(e) : e.instance_pk;
      row.data = renamed_object(target.model, std::move(e.instance_data));
    } else {
      row = map_to_table(target, e, std::move(row));
    }
  }
  row.pk_text = key_text(row.pk);
  if (target.uses_function()) {
    row.previous_data = renamed_object(target.model, std::move(e.previous_data));
    row.meta = std::move(e.meta);
  }
  return row;
}

bool supersedes(const Row& later, const Row& earlier) noexcept {
  if (later.revision != earlier.revision) return later.revision > earlier.revision;
  return signal_rank(later.signal) >= signal_rank(earlier.signal);
}

std::size_t Plan::row_count() const noexcept {
  std::size_t n = 0;
  for (const auto& g : groups)
    n += g.rows.size();
  return n;
}

void Batch::add(const Target& target, Event event, DeliveryRef delivery) {
  entries_.push_back({&target, map_event(target, std::move(event), delivery)});
}

void Batch::add(const Target& target, Row row) {
  entries_.push_back({&target, std::move(row)});
}

Plan Batch::newest_per_row() {
  Plan plan;
  std::unordered_map<std::string, std::size_t> group_of;  // cqrs_id -> index in plan.groups
  std::unordered_map<std::string, std::size_t> row_of;    // cqrs_id \0 pk -> index in its rows
  row_of.reserve(entries_.size());
  for (auto& [target, row] : entries_) {
    const std::string& id = target->model.cqrs_id;
    const auto [g, new_group] = group_of.try_emplace(id, plan.groups.size());
    if (new_group) plan.groups.push_back({target, {}});
    auto& rows = plan.groups[g->second].rows;
    if (target->uses_function()) {
      rows.push_back(std::move(row));
      continue;
    }
    std::string key = id;
    key += '\0';
    key += row.pk_text;
    const auto [r, new_row] = row_of.try_emplace(std::move(key), rows.size());
    if (new_row) {
      rows.push_back(std::move(row));
      continue;
    }
    Row& kept = rows[r->second];
    const bool replace = supersedes(row, kept);
    const Row& loser = replace ? kept : row;
    plan.superseded.push_back({loser.delivery, replace ? row.delivery : kept.delivery, id,
                               loser.pk_text, loser.revision, loser.signal});
    if (replace) kept = std::move(row);
  }
  entries_.clear();
  // one fixed order of cqrs_ids, so that workers take their row locks in the same order
  std::stable_sort(plan.groups.begin(), plan.groups.end(), [](const Group& a, const Group& b) {
    return a.target->model.cqrs_id < b.target->model.cqrs_id;
  });
  return plan;
}

}  // namespace pgcqrs::replica
