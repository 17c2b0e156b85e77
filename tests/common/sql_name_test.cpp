// Table names from the configuration resolve as PostgreSQL would resolve them.
#include "common/sql_name.hpp"

#include <doctest/doctest.h>

#include "common/error.hpp"

using pgcqrs::parse_qualified_name;
using pgcqrs::QualifiedName;

TEST_CASE("qualified names fold unquoted parts and keep quoted ones") {
  CHECK(parse_qualified_name("author") == QualifiedName{"public", "author"});
  CHECK(parse_qualified_name("Shop.Author") == QualifiedName{"shop", "author"});
  CHECK(parse_qualified_name(R"("Shop"."Mixed.Case")") == QualifiedName{"Shop", "Mixed.Case"});
  CHECK(parse_qualified_name(R"(s."a""b")") == QualifiedName{"s", "a\"b"});
  CHECK(pgcqrs::quoted({"Shop", "a\"b"}) == R"("Shop"."a""b")");
}

TEST_CASE("bad qualified names are refused with the reason") {
  CHECK_THROWS_WITH_AS(parse_qualified_name(""), "table name '': empty", pgcqrs::ConfigError);
  CHECK_THROWS_WITH_AS(parse_qualified_name("a.b.c"),
                       "table name 'a.b.c': too many dots; write schema.table",
                       pgcqrs::ConfigError);
  CHECK_THROWS_WITH_AS(parse_qualified_name("a."),
                       "table name 'a.': empty name part; write schema.table", pgcqrs::ConfigError);
  CHECK_THROWS_WITH_AS(parse_qualified_name(R"("abc)"),
                       "table name '\"abc': unbalanced double quote", pgcqrs::ConfigError);
  CHECK_THROWS_WITH_AS(parse_qualified_name("a;drop"),
                       doctest::Contains("character ';' needs quoting"), pgcqrs::ConfigError);
}
