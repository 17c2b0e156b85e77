// Schema-qualified SQL names from configuration: parsed once, quoted with libpq's rules on use.
#pragma once

#include <string>
#include <string_view>

namespace pgcqrs {

// `schema.table` as PostgreSQL resolves it: unquoted parts fold to lower case, `"Quoted"`
// parts keep their case and may contain dots and doubled quotes. Schema defaults to `public`.
struct QualifiedName {
  std::string schema;
  std::string name;
  bool operator==(const QualifiedName&) const = default;
};

// Throws ConfigError `table name '<text>': <cause>` for empty parts, unbalanced quotes,
// more than two parts or characters PostgreSQL does not accept unquoted.
QualifiedName parse_qualified_name(std::string_view text);

// Double-quoted identifier (`"a""b"`): the same text pqxx::connection::quote_name produces,
// usable where no connection exists yet (DDL printed by --dry-run, error messages).
std::string quote_identifier(std::string_view ident);
// `"schema"."name"`.
std::string quoted(const QualifiedName& q);

}  // namespace pgcqrs
