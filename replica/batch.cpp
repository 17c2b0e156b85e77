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

// instance_data.cqrs_updated as a time; nullopt when absent, not a string or not a timestamp
// (a SAVE's value still goes to its column, which decides whether it is acceptable).
std::optional<Timestamp> updated_of(const Event& e) {
  const auto text = e.updated();
  if (!text) return std::nullopt;
  try {
    return parse_timestamp(*text);
  } catch (const MessageError&) {
    return std::nullopt;
  }
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
  row.updated = updated_of(e);
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

bool recreates(const Row& later, const Row& del) noexcept {
  return later.updated && del.updated && *later.updated >= *del.updated;
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

namespace {

// True when SAVE/SYNC `row`, older by revision than `newest`, was written after it: the only
// way that happens on a master (clocks aside) is a row created again after a delete, and only
// the tombstone in the database can tell whether `newest` is the deleted row's late SAVE.
bool written_later(const Row& row, const Row& newest) noexcept {
  return row.revision < newest.revision && row.updated && newest.updated &&
         *row.updated > *newest.updated;
}

// What a key of a table model keeps so far, applied in this order: a DELETE; the SAVE/SYNC
// that supersedes() the others and survived the DELETE (by a higher revision, or because it
// recreates() the key); and a SAVE/SYNC written_later() than that one.
struct Kept {
  std::optional<Row> del;
  std::optional<Row> save;
  std::optional<Row> later;
};

}  // namespace

Plan Batch::newest_per_row() {
  Plan plan;
  std::unordered_map<std::string, std::size_t> group_of;  // cqrs_id -> index in plan.groups
  std::unordered_map<std::string, std::size_t> key_of;    // cqrs_id \0 pk -> index in its keys
  std::vector<std::vector<Kept>> keys;                    // per group, by first arrival
  key_of.reserve(entries_.size());
  for (auto& [target, row] : entries_) {
    const std::string& id = target->model.cqrs_id;
    const auto [g, new_group] = group_of.try_emplace(id, plan.groups.size());
    if (new_group) {
      plan.groups.push_back({target, {}});
      keys.emplace_back();
    }
    if (target->uses_function()) {
      plan.groups[g->second].rows.push_back(std::move(row));
      continue;
    }
    const auto lose = [&plan, &id](const Row& loser, const Row& winner) {
      plan.superseded.push_back(
          {loser.delivery, winner.delivery, id, loser.pk_text, loser.revision, loser.signal});
    };
    std::string key = id;
    key += '\0';
    key += row.pk_text;
    auto& group_keys = keys[g->second];
    const auto [k, new_key] = key_of.try_emplace(std::move(key), group_keys.size());
    if (new_key) group_keys.emplace_back();
    Kept& kept = group_keys[k->second];
    if (row.signal == Signal::kDelete) {
      if (kept.del) {
        // the tombstone takes the highest revision and the latest time of the two
        std::optional<Timestamp> updated = kept.del->updated;
        if (row.updated && (!updated || *row.updated > *updated)) updated = row.updated;
        if (supersedes(row, *kept.del)) {
          lose(*kept.del, row);
          kept.del = std::move(row);
        } else {
          lose(row, *kept.del);
        }
        kept.del->updated = updated;
      } else if (kept.save && !supersedes(row, *kept.save)) {
        // older than the kept SAVE/SYNC: pointless (a `later` one it would delete goes)
        if (kept.later && supersedes(row, *kept.later)) {
          lose(*kept.later, row);
          kept.later.reset();
        }
        lose(row, *kept.save);
        continue;
      } else {
        kept.del = std::move(row);
      }
      // the SAVEs/SYNCs kept before this DELETE are deleted by it unless they are newer
      for (std::optional<Row>* r : {&kept.save, &kept.later}) {
        if (*r && supersedes(*kept.del, **r)) {
          lose(**r, *kept.del);
          r->reset();
        }
      }
      if (!kept.save && kept.later) {
        kept.save = std::move(kept.later);
        kept.later.reset();
      }
      continue;
    }
    if (kept.del) {
      if (supersedes(row, *kept.del)) {  // a higher revision: the DELETE is pointless
        lose(*kept.del, row);
        kept.del.reset();
      } else if (!recreates(row, *kept.del)) {  // deleted by it (or stopped by its tombstone)
        lose(row, *kept.del);
        continue;
      }
    }
    if (!kept.save) {
      kept.save = std::move(row);
      continue;
    }
    // the newest by revision, and of the others the one written last, if after it
    std::optional<Row> other;
    if (supersedes(row, *kept.save)) {
      other = std::move(kept.save);
      kept.save = std::move(row);
    } else {
      other = std::move(row);
    }
    for (std::optional<Row>* r : {&kept.later, &other}) {  // drop what is not written later
      if (*r && !written_later(**r, *kept.save)) {
        lose(**r, *kept.save);
        r->reset();
      }
    }
    if (kept.later && other) {  // two written later: the one written last (or the newer)
      const bool other_wins =
          *other->updated > *kept.later->updated ||
          (*other->updated == *kept.later->updated && supersedes(*other, *kept.later));
      if (other_wins) std::swap(kept.later, other);
      lose(*other, *kept.later);
    } else if (other) {
      kept.later = std::move(other);
    }
  }
  entries_.clear();
  for (std::size_t gi = 0; gi < plan.groups.size(); ++gi) {
    auto& rows = plan.groups[gi].rows;
    for (Kept& kept : keys[gi]) {
      if (kept.del) rows.push_back(std::move(*kept.del));  // first: the SAVE must see its tombstone
      if (kept.save) rows.push_back(std::move(*kept.save));
      if (kept.later) rows.push_back(std::move(*kept.later));
    }
  }
  // one fixed order of cqrs_ids, so that workers take their row locks in the same order
  std::stable_sort(plan.groups.begin(), plan.groups.end(), [](const Group& a, const Group& b) {
    return a.target->model.cqrs_id < b.target->model.cqrs_id;
  });
  return plan;
}

}  // namespace pgcqrs::replica
