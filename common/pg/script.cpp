// exec_script(): one simple query per script, errors located by line and column in the script.
#include "common/pg/script.hpp"

#include <cctype>
#include <string>

#include "common/pg/error.hpp"
#include "common/pg/url.hpp"

namespace pgcqrs::pg {
namespace {

std::string where(std::string_view name, ScriptPosition pos) {
  std::string s = "run script '" + std::string(name) + "'";
  if (pos.line > 0) s += " at line " + std::to_string(pos.line);
  if (pos.column > 0) s += ", column " + std::to_string(pos.column);
  return s;
}

bool is_utf8_continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0U) == 0x80U;
}

}  // namespace

ScriptPosition position_in(std::string_view text, int position) {
  if (position < 1) return {};
  ScriptPosition pos{1, 0};
  int chars = 0;
  for (const char c : text) {
    if (is_utf8_continuation(c)) continue;
    ++chars;
    if (c == '\n') {
      if (chars == position) return {pos.line, pos.column + 1};  // points at the line break
      ++pos.line;
      pos.column = 0;
      continue;
    }
    ++pos.column;
    if (chars == position) return pos;
  }
  return {};
}

int line_in_message(std::string_view message) {
  constexpr std::string_view kLine = "LINE ";
  for (std::size_t at = message.find(kLine); at != std::string_view::npos;
       at = message.find(kLine, at + 1)) {
    if (at > 0 && message[at - 1] != '\n') continue;  // only at the start of a line
    int line = 0;
    std::size_t i = at + kLine.size();
    const std::size_t digits_begin = i;
    while (i < message.size() && std::isdigit(static_cast<unsigned char>(message[i])) != 0 &&
           line < 100'000'000) {
      line = line * 10 + (message[i] - '0');
      ++i;
    }
    if (i > digits_begin && i < message.size() && message[i] == ':') return line;
  }
  return 0;
}

void exec_script(pqxx::transaction_base& txn, std::string_view sql, std::string_view name) {
  try {
    txn.exec(std::string(sql), "script " + std::string(name));
  } catch (const pqxx::syntax_error& e) {
    ScriptPosition pos = position_in(sql, e.error_position);
    if (pos.line == 0) pos.line = line_in_message(e.what());
    throw SqlError(where(name, pos) + ": " + one_line(e.what()), e.sqlstate());
  } catch (const pqxx::sql_error& e) {
    throw SqlError(where(name, {line_in_message(e.what()), 0}) + ": " + one_line(e.what()),
                   e.sqlstate());
  }
}

}  // namespace pgcqrs::pg
