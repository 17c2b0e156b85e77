// Locating an error in an SQL script: server character positions and libpq's LINE n.
#include <doctest/doctest.h>

#include "common/pg/script.hpp"

using pgcqrs::pg::line_in_message;
using pgcqrs::pg::position_in;
using pgcqrs::pg::ScriptPosition;

TEST_CASE("pg script: position_in maps a character position to line and column") {
  const std::string_view sql = "select 1;\nselec 2;\n";
  CHECK(position_in(sql, 1) == ScriptPosition{1, 1});
  CHECK(position_in(sql, 9) == ScriptPosition{1, 9});
  CHECK(position_in(sql, 10) == ScriptPosition{1, 10});  // the line break itself
  CHECK(position_in(sql, 11) == ScriptPosition{2, 1});
  CHECK(position_in(sql, 15) == ScriptPosition{2, 5});
  CHECK(position_in(sql, 0) == ScriptPosition{});
  CHECK(position_in(sql, -3) == ScriptPosition{});
  CHECK(position_in(sql, 1000) == ScriptPosition{});
  CHECK(position_in("", 1) == ScriptPosition{});
}

TEST_CASE("pg script: position_in counts UTF-8 characters as the server does") {
  // 'é' and '€' are one character each (2 and 3 bytes).
  const std::string_view sql = "select 'é€';\nselec";
  CHECK(position_in(sql, 12) == ScriptPosition{1, 12});
  CHECK(position_in(sql, 14) == ScriptPosition{2, 1});
}

TEST_CASE("pg script: line_in_message reads libpq's LINE n") {
  CHECK(line_in_message("ERROR:  syntax error at or near \"selec\"\nLINE 3: selec 1;\n"
                        "        ^\n") == 3);
  CHECK(line_in_message("LINE 12: x") == 12);
  CHECK(line_in_message("ERROR:  relation \"x\" does not exist") == 0);
  CHECK(line_in_message("ERROR:  bad\nLINE x: y") == 0);
  CHECK(line_in_message("ERROR:  bad\nLINE 4") == 0);
  CHECK(line_in_message("see xLINE 4: y") == 0);
  CHECK(line_in_message("ERROR:  bad\nLINE 99999999999999999999: y") == 0);
  CHECK(line_in_message("") == 0);
}
