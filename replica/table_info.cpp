// Catalog lookup of a read-model table's writable columns and primary key.
#include "replica/table_info.hpp"

#include <algorithm>

namespace pgcqrs::replica {
namespace {

// One row per column (none when the table does not exist); generated columns are marked so
// that they are never written. pk_pos is the column's 1-based place in the primary key.
constexpr const char* kDescribeTable = R"sql(
SELECT c.relkind::text,
       a.attname::text,
       format_type(a.atttypid, a.atttypmod),
       CASE WHEN t.typtype = 'd' THEN bt.typname ELSE t.typname END::text,
       a.attgenerated <> '',
       coalesce((SELECT k.ord FROM unnest(pk.indkey) WITH ORDINALITY AS k(attnum, ord)
                 WHERE k.attnum = a.attnum), 0)::int
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
LEFT JOIN pg_index pk ON pk.indrelid = c.oid AND pk.indisprimary
WHERE n.nspname = $1 AND c.relname = $2
ORDER BY a.attnum
)sql";

}  // namespace

std::optional<std::size_t> TableInfo::index_of(std::string_view name) const {
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].name == name) return i;
  }
  return std::nullopt;
}

const Column* TableInfo::column(std::string_view name) const {
  const auto i = index_of(name);
  return i ? &columns[*i] : nullptr;
}

TableLookup lookup_table(pqxx::transaction_base& txn, const QualifiedName& table) {
  const pqxx::result r = txn.exec_params(kDescribeTable, table.schema, table.name);
  TableLookup out;
  out.info.table = table;
  if (r.empty()) return out;
  out.found = true;
  out.relkind = r[0][0].as<std::string>();
  std::vector<std::pair<int, std::string>> key;
  for (const auto& row : r) {
    std::string name = row[1].as<std::string>();
    if (const int pos = row[5].as<int>(); pos > 0) key.emplace_back(pos, name);
    if (row[4].as<bool>()) continue;  // generated: computed by the server, never written
    out.info.columns.push_back(
        {std::move(name), row[2].as<std::string>(), row[3].as<std::string>()});
  }
  std::sort(key.begin(), key.end());
  for (auto& [pos, name] : key)
    out.key_columns.push_back(std::move(name));
  if (out.key_columns.size() == 1) out.info.primary_key = out.key_columns.front();
  return out;
}

}  // namespace pgcqrs::replica
