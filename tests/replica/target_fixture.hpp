// A replica Target built in memory for tests that need no catalog (load, COPY, fast path).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "replica/batch.hpp"

namespace pgcqrs::replica::testing {

// Model `cqrs_id` on `table` with `columns` (in table order), `mapping` and key `primary_key`.
inline Target make_target(std::string cqrs_id, QualifiedName table, std::vector<Column> columns,
                          std::map<std::string, std::string> mapping = {},
                          std::string primary_key = "id") {
  Target t;
  t.model.cqrs_id = std::move(cqrs_id);
  t.model.table = table;
  t.model.mapping = std::move(mapping);
  t.table.table = std::move(table);
  t.table.columns = std::move(columns);
  t.table.primary_key = std::move(primary_key);
  return t;
}

// Columns all of type text, named `names`.
inline std::vector<Column> text_columns(const std::vector<std::string>& names) {
  std::vector<Column> out;
  for (const auto& n : names)
    out.push_back({n, "text", "text"});
  return out;
}

}  // namespace pgcqrs::replica::testing
