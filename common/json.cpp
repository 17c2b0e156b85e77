// JSON codec: nlohmann SAX parsing into an exact-number DOM, and ujson-compatible writing.
#include "common/json.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <iterator>
#include <memory>
#include <system_error>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace pgcqrs::json {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// A key lookup in an object is linear up to this many keys; beyond it a hash set keeps the
// duplicate check (and the whole parse) linear for hostile objects with millions of keys.
constexpr std::size_t kLinearKeyLimit = 32;

// Bytes outside printable ASCII as \xHH, so nlohmann's "last read" text is safe in a log line.
std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    }
  }
  return out;
}

std::string cut(std::string s, std::size_t max_chars) {
  if (s.size() > max_chars) {
    s.resize(max_chars);
    s += "...";
  }
  return s;
}

Json decimal_unchecked(std::string_view text) {
  return Json::binary(Json::binary_t::container_type(text.begin(), text.end()), kDecimalSubtype);
}

// An input iterator over the text that publishes how far nlohmann's lexer has read, so the
// SAX handler can name the byte where nesting or a duplicate key was found.
class TrackingIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  TrackingIterator(const char* p, const char** high_water) : p_(p), high_water_(high_water) {}
  reference operator*() const { return *p_; }
  TrackingIterator& operator++() {
    ++p_;
    *high_water_ = p_;
    return *this;
  }
  TrackingIterator operator++(int) {
    TrackingIterator old = *this;
    ++*this;
    return old;
  }
  bool operator==(const TrackingIterator& o) const { return p_ == o.p_; }

 private:
  const char* p_;
  const char** high_water_;
};

// Builds the DOM from SAX events, like nlohmann's json_sax_dom_parser, plus: exact numbers, a
// depth limit, duplicate-key rejection and our error messages.
class DomBuilder {
 public:
  DomBuilder(const ParseLimits& limits, std::string_view subject, const char* begin,
             const char* const* read_to)
      : limits_(limits), subject_(subject), begin_(begin), read_to_(read_to) {}

  bool null() { return put(Json(nullptr)); }
  bool boolean(bool b) { return put(Json(b)); }
  bool number_integer(Json::number_integer_t v) { return put(Json(v)); }
  bool number_unsigned(Json::number_unsigned_t v) { return put(Json(v)); }
  bool number_float(Json::number_float_t /*rounded*/, const Json::string_t& text) {
    // The lexer spells the decimal point as the C locale's; restore JSON's '.'.
    std::string s = text;
    for (char& c : s) {
      if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e' || c == 'E')) c = '.';
    }
    return put(decimal_unchecked(s));
  }
  bool string(Json::string_t& s) { return put(Json(std::move(s))); }
  bool binary(Json::binary_t& /*b*/) { return fail("binary value in JSON text"); }

  bool start_object(std::size_t /*elements*/) { return open(Json::object()); }
  bool start_array(std::size_t /*elements*/) { return open(Json::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(Json::string_t& k) {
    Frame& f = stack_.back();
    auto& members = f.value->get_ref<Json::object_t&>();
    bool duplicate = false;
    if (!f.keys && members.size() < kLinearKeyLimit) {
      for (const auto& [name, _] : members) {
        if (name == k) {
          duplicate = true;
          break;
        }
      }
    } else {
      if (!f.keys) {
        f.keys = std::make_unique<std::unordered_set<std::string>>();
        for (const auto& [name, _] : members)
          f.keys->insert(name);
      }
      duplicate = !f.keys->insert(k).second;
    }
    if (duplicate) {
      return fail("duplicate key '" + excerpt_string(k) + "' at byte " + std::to_string(pos()));
    }
    f.key = std::move(k);
    return true;
  }

  bool parse_error(std::size_t position, const std::string& last_token,
                   const nlohmann::detail::exception& ex) {
    std::string detail = ex.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 7: syntax error while
    // parsing object - unexpected end of input; expected '}'" -> the part after " - ".
    if (const auto dash = detail.find(" - "); dash != std::string::npos) {
      detail.erase(0, dash + 3);
    } else if (const auto bracket = detail.find("] "); bracket != std::string::npos) {
      detail.erase(0, bracket + 2);
    }
    // The lexer quotes everything it read of the bad token (a whole string, perhaps megabytes,
    // with raw bytes): keep its printable tail.
    if (const auto lr = detail.find("; last read: '"); lr != std::string::npos) {
      detail.erase(lr);
      constexpr std::size_t kTail = 40;
      std::string_view tail = last_token;
      std::string shown;
      if (tail.size() > kTail) {
        shown = "...";
        tail.remove_prefix(tail.size() - kTail);
      }
      shown += printable(tail);
      detail += "; last read: '" + shown + "'";
    }
    if (ex.id == 406) {  // out_of_range.406: a number beyond the range of a double
      error_ = subject_ + ": number '" + cut(printable(last_token), 80) +
               "' out of range at byte " + std::to_string(position);
    } else {
      error_ = subject_ + ": syntax error at byte " + std::to_string(position) + ": " +
               printable(detail);
    }
    return false;
  }

  [[nodiscard]] const std::string& error() const { return error_; }
  Json take() { return std::move(root_); }

 private:
  struct Frame {
    Json* value;
    std::string key;  // pending key of an object member
    std::unique_ptr<std::unordered_set<std::string>> keys;
  };

  // Bytes consumed so far = 1-based position of the last byte the lexer read.
  [[nodiscard]] std::size_t pos() const { return static_cast<std::size_t>(*read_to_ - begin_); }

  bool fail(std::string cause) {
    error_ = subject_ + ": " + std::move(cause);
    return false;
  }

  // Stores `v` where the parser stands; returns its address for containers.
  Json* insert(Json&& v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Frame& f = stack_.back();
    if (f.value->is_array()) {
      auto& items = f.value->get_ref<Json::array_t&>();
      items.push_back(std::move(v));
      return &items.back();
    }
    // Uniqueness is already checked in key(): append without ordered_map's linear search.
    auto& members = static_cast<Json::object_t::Container&>(f.value->get_ref<Json::object_t&>());
    members.emplace_back(std::move(f.key), std::move(v));
    return &members.back().second;
  }

  bool put(Json&& v) {
    insert(std::move(v));
    return true;
  }

  bool open(Json&& container) {
    if (stack_.size() >= static_cast<std::size_t>(std::max(limits_.max_depth, 0))) {
      return fail("nesting deeper than " + std::to_string(limits_.max_depth) + " levels at byte " +
                  std::to_string(pos()));
    }
    Json* where = insert(std::move(container));
    stack_.push_back(Frame{where, {}, nullptr});
    return true;
  }

  bool close() {
    stack_.pop_back();
    return true;
  }

  const ParseLimits& limits_;
  std::string subject_;
  const char* begin_;
  const char* const* read_to_;
  Json root_;
  std::vector<Frame> stack_;
  std::string error_;
};

void append_u16(std::string& out, unsigned v) {
  out += "\\u";
  out += kHex[(v >> 12) & 0xF];
  out += kHex[(v >> 8) & 0xF];
  out += kHex[(v >> 4) & 0xF];
  out += kHex[v & 0xF];
}

[[noreturn]] void bad_utf8(std::string_view s, std::size_t at) {
  throw MessageError("JSON string '" + printable(s.substr(0, std::min<std::size_t>(s.size(), 40))) +
                     "': invalid UTF-8 at byte " + std::to_string(at));
}

void dump_string(std::string& out, std::string_view s) {
  out += '"';
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '/':
          out += "\\/";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20) {
            append_u16(out, c);
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    // Decode one UTF-8 sequence strictly (no overlongs, no surrogates, at most U+10FFFF).
    std::size_t len = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2, cp = c & 0x1Fu, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3, cp = c & 0x0Fu, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4, cp = c & 0x07u, min = 0x10000;
    } else {
      bad_utf8(s, i);
    }
    if (s.size() - i < len) bad_utf8(s, i);
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0u) != 0x80u) bad_utf8(s, i);
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) bad_utf8(s, i);
    if (cp >= 0x10000) {
      const char32_t v = cp - 0x10000;
      append_u16(out, static_cast<unsigned>(0xD800 + (v >> 10)));
      append_u16(out, static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
    } else {
      append_u16(out, static_cast<unsigned>(cp));
    }
    i += len;
  }
  out += '"';
}

// double-conversion's ToShortest as ujson configures it: decimal notation for decimal
// exponents -4..15 with a trailing ".0" on whole numbers, else `d[.ddd]e[+-]x`.
void dump_double(std::string& out, double d) {
  if (!std::isfinite(d)) throw MessageError("JSON number: cannot encode NaN or infinity");
  std::array<char, 64> buf{};
  const auto res =
      std::to_chars(buf.data(), buf.data() + buf.size(), d, std::chars_format::scientific);
  const std::string_view sci(buf.data(), static_cast<std::size_t>(res.ptr - buf.data()));
  // sci = -?D(.DDD)?e[+-]XX
  std::size_t i = 0;
  const bool negative = sci[0] == '-';
  if (negative) ++i;
  std::string digits;
  while (i < sci.size() && sci[i] != 'e') {
    if (sci[i] != '.') digits += sci[i];
    ++i;
  }
  int exponent = 0;
  std::from_chars(sci.data() + i + (sci[i + 1] == '+' ? 2 : 1), sci.data() + sci.size(), exponent);
  // to_chars writes "0e+00" for zero; the digits are otherwise shortest, without zeros at
  // the end.
  if (negative) out += '-';
  const auto n = static_cast<int>(digits.size());
  if (exponent >= -4 && exponent < 16) {
    const int point = exponent + 1;  // digits before the decimal point
    if (point <= 0) {
      out += "0.";
      out.append(static_cast<std::size_t>(-point), '0');
      out += digits;
    } else if (point >= n) {
      out += digits;
      out.append(static_cast<std::size_t>(point - n), '0');
      out += ".0";
    } else {
      out.append(digits, 0, static_cast<std::size_t>(point));
      out += '.';
      out.append(digits, static_cast<std::size_t>(point));
    }
  } else {
    out += digits[0];
    if (n > 1) {
      out += '.';
      out.append(digits, 1);
    }
    out += 'e';
    out += exponent < 0 ? '-' : '+';
    out += std::to_string(exponent < 0 ? -exponent : exponent);
  }
}

template <typename Int>
void dump_int(std::string& out, Int v) {
  std::array<char, 24> buf{};
  const auto res = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  out.append(buf.data(), res.ptr);
}

}  // namespace

void append_pg_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0;  // start of the pending unescaped run
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text.substr(run, i - run));
    run = i + 1;
    switch (c) {
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      default:
        out.append("\\u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xF]);
    }
  }
  out.append(text.substr(run));
  out.push_back('"');
}

bool is_number_text(std::string_view s) noexcept {
  std::size_t i = 0;
  const auto digit = [&](std::size_t k) { return k < s.size() && s[k] >= '0' && s[k] <= '9'; };
  if (i < s.size() && s[i] == '-') ++i;
  if (!digit(i)) return false;
  if (s[i] == '0') {
    ++i;
  } else {
    while (digit(i))
      ++i;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digit(i)) return false;
    while (digit(i))
      ++i;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digit(i)) return false;
    while (digit(i))
      ++i;
  }
  return i == s.size();
}

Json parse(std::string_view text, const ParseLimits& limits, std::string_view subject) {
  if (text.size() > limits.max_bytes) {
    throw MessageError(std::string(subject) + ": " + std::to_string(text.size()) +
                       " bytes exceed the limit of " + std::to_string(limits.max_bytes) + " bytes");
  }
  const char* read_to = text.data();
  DomBuilder builder(limits, subject, text.data(), &read_to);
  const bool ok = Json::sax_parse(TrackingIterator(text.data(), &read_to),
                                  TrackingIterator(text.data() + text.size(), &read_to), &builder,
                                  nlohmann::json::input_format_t::json, /*strict=*/true,
                                  /*ignore_comments=*/false);
  if (!ok) {
    throw MessageError(builder.error().empty() ? std::string(subject) + ": invalid JSON"
                                               : builder.error());
  }
  return builder.take();
}

bool is_decimal(const Json& v) noexcept {
  return v.is_binary() && v.get_binary().has_subtype() &&
         v.get_binary().subtype() == kDecimalSubtype;
}

std::string_view decimal_text(const Json& v) noexcept {
  if (!is_decimal(v)) return {};
  const auto& bytes = v.get_binary();
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

Json make_decimal(std::string_view text) {
  if (!is_number_text(text)) {
    throw MessageError("number '" + cut(printable(text), 80) + "': not a JSON number");
  }
  return decimal_unchecked(text);
}

bool is_number(const Json& v) noexcept {
  return v.is_number() || is_decimal(v);
}

std::string number_text(const Json& v) {
  if (!is_number(v)) {
    throw MessageError("number '" + excerpt(v) + "': not a number but " +
                       std::string(type_name(v)));
  }
  std::string out;
  dump_to(out, v);
  return out;
}

void dump_to(std::string& out, const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      out += "null";
      return;
    case Json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      return;
    case Json::value_t::number_integer:
      dump_int(out, v.get<Json::number_integer_t>());
      return;
    case Json::value_t::number_unsigned:
      dump_int(out, v.get<Json::number_unsigned_t>());
      return;
    case Json::value_t::number_float:
      dump_double(out, v.get<double>());
      return;
    case Json::value_t::string:
      dump_string(out, v.get_ref<const Json::string_t&>());
      return;
    case Json::value_t::binary:
      if (!is_decimal(v)) throw MessageError("JSON value: binary data cannot be encoded");
      out += decimal_text(v);
      return;
    case Json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& item : v.get_ref<const Json::array_t&>()) {
        if (!first) out += ',';
        first = false;
        dump_to(out, item);
      }
      out += ']';
      return;
    }
    case Json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [name, item] : v.get_ref<const Json::object_t&>()) {
        if (!first) out += ',';
        first = false;
        dump_string(out, name);
        out += ':';
        dump_to(out, item);
      }
      out += '}';
      return;
    }
    case Json::value_t::discarded:
      throw MessageError("JSON value: discarded value");
  }
}

std::string dump(const Json& v) {
  std::string out;
  dump_to(out, v);
  return out;
}

std::string excerpt(const Json& v, std::size_t max_chars) {
  std::string text;
  try {
    dump_to(text, v);
  } catch (const MessageError&) {
    text = "<" + std::string(type_name(v)) + " not encodable>";
  }
  return cut(std::move(text), max_chars);
}

std::string excerpt_string(std::string_view s, std::size_t max_chars) {
  std::string text;
  try {
    dump_string(text, s);
    text = text.substr(1, text.size() - 2);
  } catch (const MessageError&) {
    text = printable(s);
  }
  return cut(std::move(text), max_chars);
}

std::string_view type_name(const Json& v) noexcept {
  switch (v.type()) {
    case Json::value_t::object:
      return "object";
    case Json::value_t::array:
      return "array";
    case Json::value_t::string:
      return "string";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "integer";
    case Json::value_t::number_float:
      return "number";
    case Json::value_t::boolean:
      return "boolean";
    case Json::value_t::null:
      return "null";
    case Json::value_t::binary:
      return is_decimal(v) ? "number" : "binary";
    case Json::value_t::discarded:
      return "discarded";
  }
  return "unknown";
}

}  // namespace pgcqrs::json
