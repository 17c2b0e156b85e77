// Catalog lookup of a tracked table's columns and primary key.
#include "master/table_info.hpp"

#include "common/error.hpp"

namespace pgcqrs::master {
namespace {

constexpr const char* kDescribeTable = R"sql(
SELECT c.relkind::text,
       a.attname::text,
       format_type(a.atttypid, a.atttypmod),
       CASE WHEN t.typtype = 'd' THEN bt.typname ELSE t.typname END::text,
       t.typcategory = 'A',
       coalesce(a.attnum = ANY (pk.indkey), false),
       coalesce(pk.indnatts, 0),
       c.relispartition,
       (SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = c.oid LIMIT 1)
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

const Column* TableInfo::column(const std::string& name) const {
  for (const auto& c : columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

TableInfo describe_table(pqxx::transaction_base& txn, const QualifiedName& table) {
  const pqxx::result r = txn.exec_params(kDescribeTable, table.schema, table.name);
  const std::string which = "table " + quoted(table);
  if (r.empty()) {
    throw ConfigError(which +
                      ": not found in the master database; create it first or fix "
                      "the model's table key (mixed case needs quotes: 'public.\"Name\"')");
  }
  const std::string kind = r[0][0].as<std::string>();
  // Statement-level triggers (capture's insert, update and delete triggers) fire only on the
  // table a statement names: a partitioned parent's do not fire for writes aimed directly at
  // a partition, and a partition's do not fire for writes routed through its parent. Either way
  // events would be lost without a word.
  if (kind == "p") {
    throw ConfigError(which +
                      ": is a partitioned table; pgcqrs cannot capture it (its statement "
                      "triggers do not fire for writes aimed directly at a partition, whose "
                      "events would be lost); capture a plain table instead");
  }
  if (r[0][7].as<bool>()) {
    throw ConfigError(which + ": is a partition of " + r[0][8].as<std::string>() +
                      "; pgcqrs cannot capture it (its statement triggers do not fire for "
                      "writes routed through the parent, whose events would be lost); "
                      "capture a plain table instead");
  }
  if (kind != "r") {
    throw ConfigError(which + ": is not a table (relkind '" + kind +
                      "'); only plain tables can be captured");
  }
  TableInfo info;
  info.table = table;
  const int pk_columns = r[0][6].as<int>();
  if (pk_columns == 0) {
    throw ConfigError(which + ": has no primary key; events are keyed by it, add one");
  }
  if (pk_columns > 1) {
    throw ConfigError(which +
                      ": has a composite primary key; django-cqrs events carry one "
                      "key value, so use a single-column key");
  }
  for (const auto& row : r) {
    Column c{row[1].as<std::string>(), row[2].as<std::string>(), row[3].as<std::string>(),
             row[4].as<bool>()};
    if (row[5].as<bool>()) info.primary_key = c.name;
    if (c.name == "cqrs_revision") info.has_revision = true;
    if (c.name == "cqrs_updated") info.has_updated = true;
    info.columns.push_back(std::move(c));
  }
  return info;
}

}  // namespace pgcqrs::master
