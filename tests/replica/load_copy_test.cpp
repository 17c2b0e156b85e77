// cqrs_bulk_load's COPY path without a server: which tables may take it, the COPY text lines.
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "replica/load.hpp"
#include "target_fixture.hpp"

using namespace pgcqrs;
using namespace pgcqrs::replica;

namespace {

Target typed_target() {
  return testing::make_target("item", {"reads", "item"},
                              {{"id", "bigint", "int8"},
                               {"name", "text", "text"},
                               {"code", "character varying(20)", "varchar"},
                               {"price", "numeric(12,2)", "numeric"},
                               {"on", "boolean", "bool"},
                               {"doc", "jsonb", "jsonb"},
                               {"raw", "json", "json"},
                               {"at", "timestamp(3) with time zone", "timestamptz"},
                               {"cqrs_revision", "integer", "int4"},
                               {"cqrs_updated", "timestamp with time zone", "timestamptz"}},
                              {{"label", "name"}});
}

std::string copy_line(const Target& t, std::string_view line) {
  const PreparedLine p = prepare_line(t, line, 2);
  REQUIRE(p.row.has_value());
  std::string out;
  copy_text(out, t, *p.row);
  return out;
}

}  // namespace

TEST_CASE("COPY is for plain scalar, json and jsonb columns only") {
  Target t = typed_target();
  CHECK(copy_compatible(t));
  for (const Column& odd : {Column{"tags", "text[]", "_text"}, Column{"mood", "mood", "mood"},
                            Column{"pos", "point", "point"},
                            Column{"amount", "positive_int", "int4"},  // a domain over int4
                            Column{"x", "integerish", "int4"}}) {
    CAPTURE(odd.type);
    Target u = t;
    u.table.columns.push_back(odd);
    CHECK_FALSE(copy_compatible(u));
  }
  Target f = t;
  f.model.apply_function = "reads.apply_item";
  CHECK_FALSE(copy_compatible(f));
}

TEST_CASE("COPY text: tab-separated columns, \\N for null, escapes, JSON text for non-strings") {
  const Target t = typed_target();
  CHECK(
      copy_line(
          t,
          R"({"id":9223372036854775807,"label":"a\tb\nc\rd\\e \\N é\u00e9 \ud83d\ude00","code":null,"price":10.50,"on":true,"doc":{"k":[1,2.50,"x\"y"],"z":null},"raw":[1,"\/"],"at":"2024-01-01T00:00:00+05:30","cqrs_revision":3,"cqrs_updated":"2024-01-01 00:00:00+00:00","extra":1})") ==
      "9223372036854775807\ta\\tb\\nc\\rd\\\\e \\\\N \xc3\xa9\xc3\xa9 \xf0\x9f\x98\x80\t\\N\t10."
      "50\ttrue\t{\"k\":[1,2.50,\"x\\\\\"y\"],\"z\":null}\t[1,\"\\\\/\"]\t2024-01-01T00:00:00+"
      "05:30\t3\t2024-01-01 00:00:00+00:00\n");
  // a string into json/jsonb: the JSON literal of its text, as json_to_record makes it
  // (PostgreSQL's escape_json: `"` and `\` escaped, \n as \n, `/` and é as they are)
  CHECK(
      copy_line(
          t,
          R"({"id":"7","doc":"plain","raw":"q\"\\ C:\\new\n\/ \u00e9","cqrs_revision":0,"cqrs_updated":"2024-01-01 00:00:00+00:00"})") ==
      "7\t\"plain\"\t\"q\\\\\"\\\\\\\\ C:\\\\\\\\new\\\\n/ \xc3\xa9\"\t0\t2024-01-01 "
      "00:00:00+00:00\n");
  // numbers keep their JSON text, booleans and objects into text columns as JSON text
  CHECK(
      copy_line(
          t,
          R"({"id":1,"label":{"a":1},"code":false,"price":1e3,"cqrs_revision":0,"cqrs_updated":"t"})") ==
      "1\t{\"a\":1}\tfalse\t1e3\t0\tt\n");
}
