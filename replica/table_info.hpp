// What the replica applier needs to know of a read-model table, read from the catalog.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/pg/pqxx.hpp"
#include "common/sql_name.hpp"

namespace pgcqrs::replica {

struct Column {
  std::string name;
  std::string type;       // format_type(), e.g. "numeric(12,2)", "timestamp with time zone"
  std::string base_type;  // pg_type.typname of the type (or of a domain's base), e.g. "int4"
};

// A table's writable columns (generated columns are left out) and its primary key.
struct TableInfo {
  QualifiedName table;
  std::vector<Column> columns;  // in attnum order
  std::string primary_key;      // the single primary-key column; empty when there is none

  // Index of the column `name` in `columns`.
  [[nodiscard]] std::optional<std::size_t> index_of(std::string_view name) const;
  [[nodiscard]] const Column* column(std::string_view name) const;
};

// What the catalog says about a table, before any judgement (install.cpp judges).
struct TableLookup {
  bool found = false;
  std::string relkind;                   // "r" table, "p" partitioned table, "v" view...
  TableInfo info;                        // primary_key empty unless the key has one column
  std::vector<std::string> key_columns;  // the primary key's columns (0, 1 or more)
};

TableLookup lookup_table(pqxx::transaction_base& txn, const QualifiedName& table);

}  // namespace pgcqrs::replica
