// Django-style lookup filters, as cqrs_sync / cqrs_diff_master / cqrs_deleted_diff_replica take
// them in --filter: a JSON object of ORM lookups, e.g.
//   {"id__in": [1, 2], "name__startswith": "Ann", "cqrs_updated__gte": "2024-01-01"}
// compiled to one SQL condition whose values are always bound parameters, never SQL text.
//
// Lookups: exact (`name` or `name__exact`), iexact, in, gt, gte, lt, lte, isnull, startswith,
// istartswith, endswith, iendswith, contains, icontains, range; `pk` names the primary key.
// Several keys are ANDed; `{}` selects every row.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgcqrs {

struct FilterColumn {
  std::string name;
  std::string type;  // format_type() of the column: values are cast to it, e.g. `$1::integer`
};

struct CompiledFilter {
  std::string sql;  // a boolean SQL expression over `<alias>.<column>`; "true" for `{}`
  // Parameter values in $-number order (text form; nullopt = SQL NULL).
  std::vector<std::optional<std::string>> params;
};

// Compiles `json_text`. Placeholders start at $`first_param` so callers can bind their own
// parameters (keyset bounds, limits) before or after. `primary_key` is what `pk` stands for.
// Throws CommandError with django-cqrs's messages: "Bad filter kwargs!" when the text is not
// JSON or not an object; "Bad filter kwargs! <reason>" naming the field or lookup otherwise
// (unknown field, unknown lookup, a value of the wrong shape such as a non-array for `in`).
CompiledFilter compile_filter(std::string_view json_text, const std::vector<FilterColumn>& columns,
                              const std::string& primary_key,
                              const std::function<std::string(const std::string&)>& quote_name,
                              std::string_view alias, int first_param = 1);

}  // namespace pgcqrs
