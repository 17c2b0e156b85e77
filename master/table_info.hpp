// What the capture generator needs to know of a tracked table, read from the catalog.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/pg/pqxx.hpp"
#include "common/sql_name.hpp"

namespace pgcqrs::master {

struct Column {
  std::string name;
  std::string type;       // format_type(), e.g. "numeric(12,2)", "timestamp with time zone"
  std::string base_type;  // pg_type.typname of the type (or of a domain's base), e.g. "numeric"
  bool is_array = false;
};

struct TableInfo {
  QualifiedName table;
  std::vector<Column> columns;  // in attnum order
  std::string primary_key;      // the single primary-key column
  bool has_revision = false;    // cqrs_revision exists
  bool has_updated = false;     // cqrs_updated exists

  [[nodiscard]] const Column* column(const std::string& name) const;
};

// Reads the table's columns and primary key. Throws ConfigError naming the table when it does
// not exist, is not a plain table (partitioned tables and partitions are refused: statement
// triggers miss the writes aimed at the other level), has no primary key or a composite one.
TableInfo describe_table(pqxx::transaction_base& txn, const QualifiedName& table);

}  // namespace pgcqrs::master
