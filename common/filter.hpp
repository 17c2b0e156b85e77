// Django-style lookup filters, as cqrs_sync / cqrs_diff_master / cqrs_deleted_diff_replica take
// them in --filter: a JSON object of ORM lookups, e.g.
//   {"id__in": [1, 2], "name__startswith": "Ann", "cqrs_updated__gte": "2024-01-01"}
// compiled to one SQL condition whose values are always bound parameters, never SQL text.
//
// Lookups: exact (`name` or `name__exact`), iexact, in, gt, gte, lt, lte, isnull, startswith,
// istartswith, endswith, iendswith, contains, icontains, range, regex, iregex; `pk` names the
// primary key. Several keys are ANDed; `{}` selects every row.
//
// How values meet columns (as Django does on PostgreSQL):
// - parameters are sent as text and PostgreSQL infers their type from the column they are
//   compared with (`n."id" = $1` makes $1 an integer, `= ANY ($1)` an integer[]), so no typmod
//   truncates a value (a cast to `character varying(3)` would) and a value the type refuses
//   is an SQL error (SQLSTATE class 22) that callers report as "Bad filter kwargs! <cause>";
// - `null` with exact/iexact means IS NULL; nulls inside `in` are ignored; `in []` is false;
// - json/jsonb columns compare as jsonb with the value's JSON text (`{"attrs": {"a": 1}}`),
//   `contains` on them and on array columns is containment (`@>`);
// - the text lookups (iexact, [i]startswith, [i]endswith, [i]contains, [i]regex) compare the
//   column's text form, LIKE wildcards in the value matching themselves.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.hpp"

namespace pgcqrs {

struct FilterColumn {
  std::string name;
  std::string type;  // format_type() of the column, e.g. "jsonb", "integer[]", "text"
};

struct CompiledFilter {
  std::string sql;  // a boolean SQL expression over `<alias>.<column>`; "true" for `{}`
  // Parameter values in $-number order (text form; nullopt = SQL NULL).
  std::vector<std::optional<std::string>> params;
};

// Compiles `json_text`. Placeholders start at $`first_param` so callers can bind their own
// parameters (keyset bounds, limits) before or after. `primary_key` is what `pk` stands for.
// `alias` may be empty (columns unqualified). Throws CommandError with django-cqrs's messages:
// "Bad filter kwargs!" when the text is not JSON or not an object; "Bad filter kwargs!
// <reason>" naming the field or lookup otherwise: an unknown field ("Cannot resolve keyword
// 'x' into field. Choices are: a, b"), an unknown lookup ("Unsupported lookup 'foo' for field
// 'name' ..."), a value of the wrong shape (a non-array for `in`, a non-boolean for `isnull`,
// an object for `gt`, ...).
CompiledFilter compile_filter(std::string_view json_text, const std::vector<FilterColumn>& columns,
                              const std::string& primary_key,
                              const std::function<std::string(const std::string&)>& quote_name,
                              std::string_view alias, int first_param = 1);

// The text a JSON scalar is bound as (`"abc"` -> abc, `10.50` -> 10.50, true -> true), and a
// PostgreSQL array literal of JSON values (`[1,"a b",null]` -> {"1","a b",NULL}): shared with
// the commands that bind lists of primary keys. Objects and arrays given to value_text come
// back as their JSON text.
std::string filter_value_text(const json::Json& value);
std::string pg_array_literal(const json::Json& array);

}  // namespace pgcqrs
