// --filter compiles Django lookups to SQL whose values are bound parameters, with django-cqrs's
// messages for every bad filter.
#include "common/filter.hpp"

#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "common/error.hpp"
#include "common/sql_name.hpp"

using pgcqrs::CommandError;
using pgcqrs::compile_filter;
using pgcqrs::CompiledFilter;
using pgcqrs::FilterColumn;
using Params = std::vector<std::optional<std::string>>;

namespace {

const std::vector<FilterColumn> kColumns = {
    {"id", "integer"},
    {"name", "character varying(200)"},
    {"price", "numeric(12,2)"},
    {"cqrs_revision", "integer"},
    {"cqrs_updated", "timestamp with time zone"},
    {"attrs", "jsonb"},
    {"doc", "json"},
    {"tags", "text[]"},
    {"odd__name", "text"},
};

std::string quote(const std::string& s) {
  return pgcqrs::quote_identifier(s);
}

CompiledFilter compile(std::string_view text, int first = 1, std::string_view alias = "n") {
  return compile_filter(text, kColumns, "id", quote, alias, first);
}

std::string error_of(std::string_view text) {
  try {
    compile(text);
  } catch (const CommandError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("an empty object selects every row, with no parameter") {
  const auto f = compile("{}");
  CHECK(f.sql == "true");
  CHECK(f.params.empty());
}

TEST_CASE("exact: a bare field name, __exact and pk mean equality with a bound value") {
  auto f = compile(R"({"name": "Ann"})");
  CHECK(f.sql == R"(n."name" = $1)");
  CHECK(f.params == Params{"Ann"});
  f = compile(R"({"name__exact": "x'; DROP TABLE t; --"})");
  CHECK(f.sql == R"(n."name" = $1)");
  CHECK(f.params == Params{"x'; DROP TABLE t; --"});
  f = compile(R"({"pk": 7})");
  CHECK(f.sql == R"(n."id" = $1)");
  CHECK(f.params == Params{"7"});
}

TEST_CASE("numbers keep their exact text, booleans read true/false") {
  auto f = compile(R"({"price": 10.50})");
  CHECK(f.params == Params{"10.50"});
  f = compile(R"({"id": 9007199254740993})");
  CHECK(f.params == Params{"9007199254740993"});
  f = compile(R"({"name": true})");
  CHECK(f.params == Params{"true"});
}

TEST_CASE("null with exact or iexact is IS NULL; isnull takes a boolean") {
  CHECK(compile(R"({"name": null})").sql == R"(n."name" IS NULL)");
  CHECK(compile(R"({"name__iexact": null})").sql == R"(n."name" IS NULL)");
  CHECK(compile(R"({"name__isnull": true})").sql == R"(n."name" IS NULL)");
  const auto f = compile(R"({"name__isnull": false})");
  CHECK(f.sql == R"(n."name" IS NOT NULL)");
  CHECK(f.params.empty());
}

TEST_CASE("comparisons") {
  auto f = compile(R"({"cqrs_revision__gt": 1, "cqrs_revision__gte": 2})");
  CHECK(f.sql == R"((n."cqrs_revision" > $1) AND (n."cqrs_revision" >= $2))");
  CHECK(f.params == Params{"1", "2"});
  f = compile(
      R"({"cqrs_updated__lt": "2024-01-01", "cqrs_updated__lte": "2025-01-01 00:00:00+00:00"})");
  CHECK(f.sql == R"((n."cqrs_updated" < $1) AND (n."cqrs_updated" <= $2))");
  CHECK(f.params == Params{"2024-01-01", "2025-01-01 00:00:00+00:00"});
}

TEST_CASE("in binds one array literal; nulls are dropped; an empty list matches nothing") {
  auto f = compile(R"({"id__in": [1, 2, 3]})");
  CHECK(f.sql == R"(n."id" = ANY ($1))");
  CHECK(f.params == Params{"{\"1\",\"2\",\"3\"}"});
  f = compile(R"({"name__in": ["a\"b", "c\\d", "e,f", null]})");
  CHECK(f.params == Params{R"({"a\"b","c\\d","e,f"})"});
  f = compile(R"({"id__in": []})");
  CHECK(f.sql == "false");
  CHECK(f.params.empty());
  CHECK(compile(R"({"id__in": [null]})").sql == "false");
}

TEST_CASE("range binds both ends") {
  const auto f = compile(R"({"id__range": [5, 10]})");
  CHECK(f.sql == R"(n."id" BETWEEN $1 AND $2)");
  CHECK(f.params == Params{"5", "10"});
}

TEST_CASE("text lookups escape LIKE wildcards so the value matches itself") {
  auto f = compile(R"({"name__startswith": "50%_off\\"})");
  CHECK(f.sql == R"(n."name"::text LIKE $1::text)");
  CHECK(f.params == Params{R"(50\%\_off\\%)"});
  f = compile(R"({"name__endswith": "x"})");
  CHECK(f.params == Params{"%x"});
  f = compile(R"({"name__contains": "x"})");
  CHECK(f.params == Params{"%x%"});
  f = compile(R"({"name__icontains": "Ab"})");
  CHECK(f.sql == R"(upper(n."name"::text) LIKE upper($1::text))");
  CHECK(f.params == Params{"%Ab%"});
  f = compile(R"({"name__istartswith": "a"})");
  CHECK(f.params == Params{"a%"});
  f = compile(R"({"name__iendswith": "a"})");
  CHECK(f.params == Params{"%a"});
  f = compile(R"({"name__iexact": "ANN"})");
  CHECK(f.sql == R"(upper(n."name"::text) = upper($1::text))");
  CHECK(f.params == Params{"ANN"});
  f = compile(R"({"id__startswith": 12})");
  CHECK(f.sql == R"(n."id"::text LIKE $1::text)");
  CHECK(f.params == Params{"12%"});
}

TEST_CASE("regex lookups") {
  CHECK(compile(R"({"name__regex": "^a.*"})").sql == R"(n."name"::text ~ $1::text)");
  CHECK(compile(R"({"name__iregex": "^a.*"})").sql == R"(n."name"::text ~* $1::text)");
}

TEST_CASE("json columns compare as jsonb; contains is containment") {
  auto f = compile(R"({"attrs": {"a": [1, "x/y"]}})");
  CHECK(f.sql == R"(n."attrs" = $1::jsonb)");
  CHECK(f.params == Params{R"({"a":[1,"x\/y"]})"});
  f = compile(R"({"doc__contains": {"k": 1}})");
  CHECK(f.sql == R"(n."doc"::jsonb @> $1::jsonb)");
  f = compile(R"({"attrs": "text"})");
  CHECK(f.params == Params{R"("text")"});
  f = compile(R"({"attrs__in": [{"a": 1}, 2]})");
  CHECK(f.sql == R"(n."attrs" = ANY ($1::jsonb[]))");
  CHECK(f.params == Params{R"({"{\"a\":1}","2"})"});
}

TEST_CASE("array columns take arrays; contains is containment") {
  auto f = compile(R"({"tags": ["a", "b c"]})");
  CHECK(f.sql == R"(n."tags" = $1)");
  CHECK(f.params == Params{R"({"a","b c"})"});
  f = compile(R"({"tags__contains": ["a"]})");
  CHECK(f.sql == R"(n."tags" @> $1)");
  CHECK(pgcqrs::pg_array_literal(pgcqrs::json::parse(R"([[1,2],[null,"x"]])")) ==
        R"({{"1","2"},{NULL,"x"}})");
}

TEST_CASE("placeholders start where the caller says and the alias may be empty") {
  const auto f = compile(R"({"id__gt": 1, "name": "a"})", 3, "");
  CHECK(f.sql == R"(("id" > $3) AND ("name" = $4))");
  CHECK(f.params.size() == 2);
}

TEST_CASE("a column whose name contains __ is found before lookups are split off") {
  CHECK(compile(R"({"odd__name": "x"})").sql == R"(n."odd__name" = $1)");
  CHECK(compile(R"({"odd__name__startswith": "x"})").sql == R"(n."odd__name"::text LIKE $1::text)");
}

TEST_CASE("not JSON or not an object: django-cqrs's bare message") {
  for (const char* text :
       {"{arg}", "[1]", "", "1", "\"x\"", "null", "{\"a\":1}{}", "{\"id\":1,\"id\":2}"}) {
    CAPTURE(text);
    CHECK(error_of(text) == "Bad filter kwargs!");
  }
}

TEST_CASE("an unknown field names the keyword and the choices, as Django's FieldError") {
  CHECK(error_of(R"({"field": "value"})") ==
        "Bad filter kwargs! Cannot resolve keyword 'field' into field. Choices are: attrs, "
        "cqrs_revision, cqrs_updated, doc, id, name, odd__name, price, tags");
  CHECK(error_of(R"({"author__name": 1})")
            .rfind("Bad filter kwargs! Cannot resolve keyword 'author' into field.", 0) == 0);
  CHECK(error_of(R"({"": 1})").rfind("Bad filter kwargs! Cannot resolve keyword '' into", 0) == 0);
}

TEST_CASE("an unknown lookup names the lookup and the field") {
  CHECK(error_of(R"({"name__foo": 1})") ==
        "Bad filter kwargs! Unsupported lookup 'foo' for field 'name' (character varying(200)); "
        "supported: exact, iexact, in, gt, gte, lt, lte, isnull, startswith, istartswith, "
        "endswith, iendswith, contains, icontains, range, regex, iregex");
  CHECK(error_of(R"({"name__": 1})").rfind("Bad filter kwargs! Unsupported lookup '' for", 0) == 0);
  CHECK(error_of(R"({"cqrs_updated__date__gt": "2024-01-01"})")
            .rfind("Bad filter kwargs! Unsupported lookup 'date__gt' for field 'cqrs_updated'",
                   0) == 0);
}

TEST_CASE("values of the wrong shape are refused, naming the key") {
  CHECK(error_of(R"({"id__in": 5})") ==
        "Bad filter kwargs! 'id__in' expects an array, got integer 5");
  CHECK(error_of(R"({"id__in": [[1]]})") ==
        "Bad filter kwargs! 'id__in' expects an array of strings, numbers or booleans, got array "
        "[[1]]");
  CHECK(error_of(R"({"id": [1, 2]})") ==
        "Bad filter kwargs! 'id' expects a string, number or boolean, got array [1,2]");
  CHECK(error_of(R"({"id__gt": {"a": 1}})") ==
        "Bad filter kwargs! 'id__gt' expects a string, number or boolean, got object {\"a\":1}");
  CHECK(error_of(R"({"id__gt": null})") ==
        "Bad filter kwargs! 'id__gt': cannot use null as a query value");
  CHECK(error_of(R"({"name__isnull": "yes"})") ==
        "Bad filter kwargs! The QuerySet value for an isnull lookup must be True or False "
        "('name__isnull' is \"yes\")");
  CHECK(error_of(R"({"id__range": [1]})") ==
        "Bad filter kwargs! 'id__range' expects an array of two values, got array [1]");
  CHECK(
      error_of(R"({"id__range": [1, null]})").rfind("Bad filter kwargs! 'id__range' expects", 0) ==
      0);
  CHECK(error_of(R"({"tags": "a"})") ==
        "Bad filter kwargs! 'tags' expects an array, got string \"a\"");
  CHECK(error_of(R"({"tags__in": [["a"]]})") ==
        "Bad filter kwargs! 'tags__in': 'in' is not supported on array columns");
  CHECK(error_of(R"({"name": "a\u0000b"})") ==
        "Bad filter kwargs! a value of 'name' contains a NUL character");
}

TEST_CASE("hostile input: deep nesting and huge lists are handled without a crash") {
  std::string deep(200, '[');
  deep += std::string(200, ']');
  CHECK(error_of("{\"attrs\": " + deep + "}") == "Bad filter kwargs!");
  std::string many = "{\"id__in\": [";
  for (int i = 0; i < 100000; ++i) {
    if (i > 0) many += ',';
    many += std::to_string(i);
  }
  many += "]}";
  const auto f = compile(many);
  REQUIRE(f.params.size() == 1);
  CHECK(f.params[0]->size() > 100000 * 3);
}
