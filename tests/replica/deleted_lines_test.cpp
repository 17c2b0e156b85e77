// deleted-diff-replica's pk lines (the rest of the line format: tests/common/resync_lines_test).
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "common/resync_lines.hpp"
#include "replica/deleted.hpp"

using namespace pgcqrs;
using namespace pgcqrs::replica;

namespace {

std::string array_of(const std::vector<std::string>& texts, bool numeric) {
  std::string a = "[";
  for (const auto& t : texts)
    append_pk(a, t, numeric);
  return a + "]";
}

}  // namespace

TEST_CASE("append_pk: numbers bare, everything else as a ujson string") {
  CHECK(array_of({"1", "2", "9"}, true) == "[1,2,9]");
  CHECK(array_of({"-5", "10.50", "1e+20"}, true) == "[-5,10.50,1e+20]");
  CHECK(array_of({}, true) == "[]");
  // numeric text PostgreSQL may give that is no JSON number
  CHECK(array_of({"NaN", "Infinity", "01"}, true) == "[\"NaN\",\"Infinity\",\"01\"]");
  CHECK(array_of({"0419d87b-d477-44e4-82c4-310f56faa3c7"}, false) ==
        "[\"0419d87b-d477-44e4-82c4-310f56faa3c7\"]");
  CHECK(array_of({"a/b", "caf\xc3\xa9", "q\"\\", "12"}, false) ==
        "[\"a\\/b\",\"caf\\u00e9\",\"q\\\"\\\\\",\"12\"]");
}

TEST_CASE("append_pk's lines read back as the same key texts in the next stages") {
  const std::vector<std::string> texts{"1", "10.50", "NaN", "a/b", "caf\xc3\xa9", "q\"\\", "01"};
  for (const bool numeric : {true, false}) {
    const resync::PkLine l = resync::parse_pk_line(array_of(texts, numeric));
    REQUIRE(l.error.empty());
    REQUIRE(l.pks.size() == texts.size());
    for (std::size_t i = 0; i < texts.size(); ++i)
      CHECK(resync::key_text(l.pks[i]) == texts[i]);
  }
}
