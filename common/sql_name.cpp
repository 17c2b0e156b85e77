// Parsing and quoting of schema-qualified identifiers given in the configuration.
#include "common/sql_name.hpp"

#include <vector>

#include "common/error.hpp"

namespace pgcqrs {
namespace {

bool unquoted_char(char c, bool first) {
  const auto u = static_cast<unsigned char>(c);
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || u >= 0x80;
  return first ? alpha : (alpha || (c >= '0' && c <= '9') || c == '$');
}

[[noreturn]] void bad(std::string_view text, const std::string& cause) {
  throw ConfigError("table name '" + std::string(text) + "': " + cause);
}

}  // namespace

QualifiedName parse_qualified_name(std::string_view text) {
  std::vector<std::string> parts(1);
  std::size_t i = 0;
  bool part_started = false;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '"') {
      if (part_started) bad(text, "a quoted part must be a whole name, e.g. \"MyTable\"");
      ++i;
      bool closed = false;
      while (i < text.size()) {
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            parts.back() += '"';
            i += 2;
            continue;
          }
          closed = true;
          ++i;
          break;
        }
        parts.back() += text[i++];
      }
      if (!closed) bad(text, "unbalanced double quote");
      if (parts.back().empty()) bad(text, "empty quoted name");
      part_started = true;
      if (i < text.size() && text[i] != '.') bad(text, "unexpected text after a quoted name");
    } else if (c == '.') {
      if (!part_started) bad(text, "empty name part; write schema.table");
      parts.emplace_back();
      part_started = false;
      ++i;
    } else {
      if (!unquoted_char(c, !part_started)) {
        bad(text, std::string("character '") + c +
                      "' needs quoting; write it as \"Name\" (double quotes inside the TOML "
                      "string: table = 'public.\"Name\"')");
      }
      parts.back() += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
      part_started = true;
      ++i;
    }
  }
  if (!part_started) bad(text, text.empty() ? "empty" : "empty name part; write schema.table");
  if (parts.size() > 2) bad(text, "too many dots; write schema.table");
  if (parts.size() == 1) return {"public", parts[0]};
  return {parts[0], parts[1]};
}

std::string quote_identifier(std::string_view ident) {
  std::string out = "\"";
  for (const char c : ident) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string quoted(const QualifiedName& q) {
  return quote_identifier(q.schema) + "." + quote_identifier(q.name);
}

}  // namespace pgcqrs
