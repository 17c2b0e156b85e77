// Events -> rows to apply: mapping to replica columns, and the newest event per row of a batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/event.hpp"
#include "common/json.hpp"
#include "common/timestamp.hpp"
#include "replica/table_info.hpp"

namespace pgcqrs::replica {

// Opaque reference to the delivery an event came from (for the consumer: its delivery tag).
using DeliveryRef = std::uint64_t;

// Everything needed to map and apply the events of one cqrs_id: its configuration and, unless
// the model has an apply_function, its table as the catalog describes it (load_targets()).
struct Target {
  ReplicaModel model;
  TableInfo table;  // empty for apply_function models and handler-only targets
  // A cqrs_id served only by a handler registered through the embedding API (Consumer::handle)
  // with no [[replica.model]] table: its rows are built as an apply_function model's are
  // (instance_data renamed, previous_data and meta kept, every event kept in order).
  bool handler_only = false;

  // Rows carry the event's own data rather than table columns (apply_function or handler_only).
  [[nodiscard]] bool uses_function() const noexcept {
    return handler_only || model.apply_function.has_value();
  }
};

// One event ready to apply: keyed, with its revision, its values renamed to replica columns.
struct Row {
  Signal signal = Signal::kSave;
  json::Json pk;        // the primary key's JSON value (never null)
  std::string pk_text;  // its text: `42`, `abc` (a string unquoted); batch key and logs
  std::int64_t revision = 0;
  // instance_data.cqrs_updated, parsed (parse_timestamp()); nullopt when absent or not a valid
  // timestamp. A DELETE's is the time of the delete: it lets a SAVE of a key the master created
  // again (at cqrs_revision 0) through the DELETE's tombstone (docs/replica.md, "Tombstones").
  std::optional<Timestamp> updated;
  // SAVE/SYNC into a table: replica column -> value, only columns of the table, in the table's
  //   column order; always holds the primary key, cqrs_revision and cqrs_updated.
  // SAVE/SYNC with an apply_function: instance_data with its keys renamed by the mapping.
  // DELETE: instance_data as received.
  json::Json data;
  // SAVE/SYNC into a table: for each key of `data`, in order, its index in
  // Target::table.columns (so, ascending). Rows with equal `columns` share one statement.
  std::vector<std::size_t> columns;
  json::Json previous_data;  // apply_function models: previous_data renamed; else null
  json::Json meta;           // apply_function models: the event's meta; else null
  DeliveryRef delivery = 0;
};

// Maps one decoded event for `target` (its cqrs_id is not checked: routing is the caller's).
// SAVE/SYNC: each instance_data key becomes the column `mapping[key]`, or keeps its name when
// it has no mapping (cqrs_revision and cqrs_updated always keep theirs); a key whose column the
// table lacks is dropped (django-cqrs drops excess keys), as is an unmapped key named like the
// column a mapped key of the same event takes (the mapped field owns that
// column). The key's value is data[primary key column] or, when absent or null, instance_pk.
// DELETE: the key is instance_data.id (django-cqrs sends `id` whatever the key is called) or,
// when absent or null, instance_pk. Both need an integer instance_data.cqrs_revision; SAVE and
// SYNC also cqrs_updated. Throws MessageError naming the event, e.g.
//   `SAVE author pk=7: instance_data.cqrs_revision '"3"': not an integer`.
Row map_event(const Target& target, Event event, DeliveryRef delivery = 0);

// True when `later` (arrived after `earlier`, same row) replaces it in a batch: a higher
// revision wins; on equal revisions DELETE beats SYNC beats SAVE, and between equals the
// later one wins (a redelivery). Batch::newest_per_row() adds one exception for a SAVE or SYNC
// that follows a DELETE: see recreates().
bool supersedes(const Row& later, const Row& earlier) noexcept;

// True when SAVE or SYNC `later`, which arrived after DELETE `del` of the same key and does not
// supersede() it, is a row the master created again after that delete: both carry cqrs_updated
// and later's is not before del's (equal times: a delete and re-insert in one master
// transaction). The database applies the same rule to a SAVE against a stored tombstone.
bool recreates(const Row& later, const Row& del) noexcept;

// A delivery whose event another event of the same batch made pointless. It is acked with the
// batch and counted as skipped.
struct Superseded {
  DeliveryRef delivery = 0;
  DeliveryRef by = 0;  // the delivery whose event replaced it
  std::string cqrs_id;
  std::string pk;
  std::int64_t revision = 0;
  Signal signal = Signal::kSave;
};

// The rows of one cqrs_id, one per primary key, except that a key deleted and created again
// may have up to three: a DELETE, then up to two SAVEs/SYNCs (newest_per_row()); apply_function
// models: every event, in order.
struct Group {
  const Target* target = nullptr;
  std::vector<Row> rows;
};

struct Plan {
  std::vector<Group> groups;  // by cqrs_id (one lock order for every worker)
  std::vector<Superseded> superseded;

  [[nodiscard]] std::size_t row_count() const noexcept;
};

// The events of one batch, mapped on arrival. Targets are referenced, not copied: they must
// outlive the batch.
class Batch {
 public:
  // Maps `event` (map_event(); pass it with std::move to spare copying its values) and adds
  // it. Throws MessageError, leaving the batch unchanged: that delivery alone fails.
  void add(const Target& target, Event event, DeliveryRef delivery);
  // Adds an already mapped row.
  void add(const Target& target, Row row);

  // Room for `n` events (a bulk load knows its batch size).
  void reserve(std::size_t n) { entries_.reserve(n); }
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
  [[nodiscard]] bool empty() const noexcept { return entries_.empty(); }
  void clear() noexcept { entries_.clear(); }

  // Keeps, per (cqrs_id, primary key), the row that supersedes() all others, in the place of
  // that key's first event; lists the deliveries that lost. Two exceptions, for a key the master
  // deleted and created again (its revisions start at 0 again; docs/replica.md, "Tombstones"):
  //  - A SAVE/SYNC that arrives after the kept DELETE and recreates() it is kept too, right after
  //    the DELETE: applied in that order, the DELETE leaves its tombstone and the new row passes
  //    it, as if they had come in two batches. A DELETE that arrives after it wins again unless
  //    the SAVE/SYNC has the higher revision.
  //  - Of the SAVEs/SYNCs, the one that supersedes() the others is kept and, right after it, the
  //    one written last if that is later than it with a lower revision (a late SAVE of a deleted
  //    row and the new row's SAVE: only the tombstone knows which is which). apply() runs them
  //    in two passes: a tombstone stops the first and lets the second in, or the stored row's
  //    revision guard stops the second.
  // Of several DELETEs, the one kept carries the latest cqrs_updated among them. Rows of
  // apply_function models are all kept, in arrival order: the function sees every event. Moves
  // the rows into the plan: the batch is empty afterwards.
  [[nodiscard]] Plan newest_per_row();

 private:
  struct Entry {
    const Target* target = nullptr;
    Row row;
  };
  std::vector<Entry> entries_;
};

}  // namespace pgcqrs::replica
