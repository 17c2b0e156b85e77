// The resync pipelines' line formats: line 1, primary-key lines, their JSON and Python reprs.
#include "common/resync_lines.hpp"

namespace pgcqrs::resync {
namespace {

// A line of pks is at most this long (10,000 UUIDs take 400 kB; a million integers 8 MB).
constexpr std::size_t kMaxLineBytes = std::size_t{256} << 20;

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

// Python's repr() of a str, appended.
void append_python_str(std::string& out, const std::string& s) {
  const char quote =
      s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
  out += quote;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\\' || c == quote) {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;  // printable, UTF-8 included, as Python 3 shows it
    }
  }
  out += quote;
}

// Python's repr() of a sequence of the chosen keys between `open` and `close`.
std::string python_sequence(const std::vector<json::Json>& keys,
                            const std::vector<std::size_t>& positions, char open, char close) {
  std::string out(1, open);
  bool first = true;
  for (const std::size_t i : positions) {
    const json::Json& key = keys.at(i);
    if (!first) out += ", ";
    first = false;
    if (key.is_string()) {
      append_python_str(out, key.get_ref<const std::string&>());
    } else {
      out += json::number_text(key);
    }
  }
  out += close;
  return out;
}

}  // namespace

std::string_view trim_line(std::string_view line) {
  while (!line.empty() && is_space(line.front()))
    line.remove_prefix(1);
  while (!line.empty() && is_space(line.back()))
    line.remove_suffix(1);
  return line;
}

std::string header_cqrs_id(std::string_view line) {
  line = trim_line(line);
  return std::string(trim_line(line.substr(0, line.find(','))));
}

PkLine parse_pk_line(std::string_view line) {
  PkLine out;
  line = trim_line(line);
  if (line.empty()) {
    out.error = "empty line: expected a JSON array of primary keys";
    return out;
  }
  json::Json v;
  try {
    v = json::parse(line, json::ParseLimits{kMaxLineBytes, 64}, "JSON");
  } catch (const std::exception& e) {
    out.error = "not a JSON array of primary keys: ";
    out.error += e.what();
    return out;
  }
  if (!v.is_array()) {
    out.error = "not a JSON array of primary keys: a JSON ";
    out.error += json::type_name(v);
    return out;
  }
  for (std::size_t i = 0; i < v.size(); ++i) {
    const json::Json& e = v[i];
    if (!e.is_string() && !json::is_number(e)) {
      out.error = "element ";
      out.error += std::to_string(i + 1);
      out.error += e.is_null() ? " is null" : " is a JSON ";
      if (!e.is_null()) out.error += json::type_name(e);
      out.error += " (";
      out.error += json::excerpt(e, 40);
      out.error += "): a primary key is a number or a string";
      return out;
    }
  }
  out.pks.reserve(v.size());
  for (auto& e : v)
    out.pks.push_back(std::move(e));
  return out;
}

std::string key_text(const json::Json& key) {
  if (key.is_string()) return key.get<std::string>();
  return json::number_text(key);
}

std::string json_list(const std::vector<json::Json>& keys,
                      const std::vector<std::size_t>& positions) {
  std::string out = "[";
  bool first = true;
  for (const std::size_t i : positions) {
    const json::Json& key = keys.at(i);
    if (!first) out += ',';
    first = false;
    json::dump_to(out, key);
  }
  out += ']';
  return out;
}

std::string python_list(const std::vector<json::Json>& keys,
                        const std::vector<std::size_t>& positions) {
  return python_sequence(keys, positions, '[', ']');
}

std::string python_set(const std::vector<json::Json>& keys,
                       const std::vector<std::size_t>& positions) {
  return python_sequence(keys, positions, '{', '}');
}

}  // namespace pgcqrs::resync
