// bulk-load's fast path: one scan of a dump line gives its key, revision, columns and COPY text.
#include "replica/load_fast.hpp"

#include <algorithm>
#include <charconv>
#include <system_error>

#include "common/json.hpp"
#include "replica/load.hpp"

namespace pgcqrs::replica {
namespace {

using Kind = FastLineMapper::Kind;
using Value = FastLineMapper::Value;

constexpr std::string_view kRevision = "cqrs_revision";
constexpr std::string_view kUpdated = "cqrs_updated";

// Nesting json::parse refuses is 64 levels; the fast path leaves anything past 32 to it.
constexpr int kMaxDepth = 32;
// Beyond this many keys in one object, duplicates are left to json::parse (a linear check).
constexpr std::size_t kMaxKeys = 256;

bool sync_field(std::string_view name) {
  return name == kRevision || name == kUpdated;
}

// The scanner: each function starts at its token, advances `p` past it, and returns false for
// anything the fast path does not take (the caller then gives up on the whole line).
struct Cursor {
  const char* p;
  const char* end;

  [[nodiscard]] bool at(char c) const { return p != end && *p == c; }
  // JSON's whitespace, which json::parse allows between the tokens of the line's own object.
  void skip_space() {
    while (p != end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
      ++p;
  }
  bool literal(std::string_view word) {
    if (static_cast<std::size_t>(end - p) < word.size() || std::string_view(p, word.size()) != word)
      return false;
    p += word.size();
    return true;
  }
};

int hex_digit(char c, bool lower_only) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (!lower_only && c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The 4 hex digits after `\u` at p (p at the backslash).
bool u_escape(const char* p, const char* end, bool lower_only, unsigned& cp) {
  if (end - p < 6 || p[0] != '\\' || p[1] != 'u') return false;
  cp = 0;
  for (int i = 2; i < 6; ++i) {
    const int d = hex_digit(p[i], lower_only);
    if (d < 0) return false;
    cp = cp * 16 + static_cast<unsigned>(d);
  }
  return true;
}

// The escapes of JSON's grammar other than \uXXXX: \" \\ \/ \b \f \n \r \t.
bool two_char_escape(char c) {
  return c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
         c == 't';
}

bool high_surrogate(unsigned cp) {
  return cp >= 0xD800 && cp <= 0xDBFF;
}
bool low_surrogate(unsigned cp) {
  return cp >= 0xDC00 && cp <= 0xDFFF;
}

// Length of the well-formed UTF-8 sequence at p (RFC 3629, as nlohmann's lexer checks it: no
// overlongs, no surrogates, at most U+10FFFF), 0 when it is not one.
std::size_t utf8_length(const char* p, const char* end) {
  const auto byte = [&](std::size_t i) {
    return p + i < end ? static_cast<unsigned char>(p[i]) : 0u;
  };
  const auto cont = [&](std::size_t i, unsigned lo = 0x80, unsigned hi = 0xBF) {
    const unsigned b = byte(i);
    return b >= lo && b <= hi;
  };
  const unsigned c = byte(0);
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

// A string json::parse accepts (p at its opening quote): `raw` is its content, `escaped` whether
// that has backslash escapes (all valid, surrogates paired, so decode() cannot fail).
bool scan_string(Cursor& c, std::string_view& raw, bool& escaped) {
  const char* start = ++c.p;
  escaped = false;
  while (c.p != c.end) {
    const auto ch = static_cast<unsigned char>(*c.p);
    if (ch == '"') {
      raw = std::string_view(start, static_cast<std::size_t>(c.p - start));
      ++c.p;
      return true;
    }
    if (ch == '\\') {
      escaped = true;
      if (c.end - c.p < 2) return false;
      if (two_char_escape(c.p[1])) {
        c.p += 2;
        continue;
      }
      unsigned cp = 0;
      if (!u_escape(c.p, c.end, false, cp) || low_surrogate(cp)) return false;
      c.p += 6;
      if (high_surrogate(cp)) {
        unsigned low = 0;
        if (!u_escape(c.p, c.end, false, low) || !low_surrogate(low)) return false;
        c.p += 6;
      }
      continue;
    }
    if (ch < 0x20) return false;  // control characters must be escaped
    if (ch < 0x80) {
      ++c.p;
      continue;
    }
    const std::size_t n = utf8_length(c.p, c.end);
    if (n == 0) return false;
    c.p += n;
  }
  return false;  // unterminated
}

void append_utf8(std::string& out, unsigned cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// The text of a string scan_string() accepted with escapes.
void decode(std::string_view raw, std::string& out) {
  out.clear();
  const char* p = raw.data();
  const char* end = p + raw.size();
  while (p != end) {
    if (*p != '\\') {
      out += *p++;
      continue;
    }
    const char e = p[1];
    switch (e) {
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        unsigned cp = 0;
        u_escape(p, end, false, cp);
        if (high_surrogate(cp)) {
          unsigned low = 0;
          p += 6;
          u_escape(p, end, false, low);
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        append_utf8(out, cp);
        p += 6;
        continue;
      }
      default:  // " \ /
        out += e;
    }
    p += 2;
  }
}

// A JSON number whose text json::parse keeps and json::dump() writes back unchanged: every
// number but "-0" (read as the integer 0) and those a double cannot hold (json::parse's "out
// of range"; from_chars says so also for an underflow, which json::parse would take: rare
// enough to leave to it).
bool scan_number(Cursor& c, std::string_view& token, bool& integer) {
  const char* start = c.p;
  const auto digits = [&] {
    const char* from = c.p;
    while (c.p != c.end && *c.p >= '0' && *c.p <= '9')
      ++c.p;
    return c.p - from;
  };
  if (c.at('-')) ++c.p;
  if (c.at('0')) {
    ++c.p;
  } else if (digits() == 0) {
    return false;
  }
  const std::ptrdiff_t int_length = c.p - start;
  integer = true;
  if (c.at('.')) {
    ++c.p;
    if (digits() == 0) return false;
    integer = false;
  }
  if (c.at('e') || c.at('E')) {
    ++c.p;
    if (c.at('+') || c.at('-')) ++c.p;
    if (digits() == 0) return false;
    integer = false;
  }
  token = std::string_view(start, static_cast<std::size_t>(c.p - start));
  if (token == "-0") return false;
  if (integer && int_length <= 18) return true;
  double d = 0;
  const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), d);
  return ec == std::errc() && end == token.data() + token.size();
}

// A string exactly as json::dump() writes its text: printable ASCII except `"`, `\` and `/`
// raw; those and \b \f \n \r \t as two-character escapes; other control characters and every
// non-ASCII character as lowercase \uXXXX (surrogate pairs above the BMP).
bool canonical_string(Cursor& c) {
  ++c.p;
  while (c.p != c.end) {
    const auto ch = static_cast<unsigned char>(*c.p);
    if (ch == '"') {
      ++c.p;
      return true;
    }
    if (ch != '\\') {
      if (ch < 0x20 || ch >= 0x80 || ch == '/') return false;
      ++c.p;
      continue;
    }
    if (c.end - c.p < 2) return false;
    if (two_char_escape(c.p[1])) {
      c.p += 2;
      continue;
    }
    unsigned cp = 0;
    if (!u_escape(c.p, c.end, true, cp)) return false;
    c.p += 6;
    if (cp < 0x20) {
      if (cp == '\b' || cp == '\f' || cp == '\n' || cp == '\r' || cp == '\t') return false;
    } else if (cp < 0x80 || low_surrogate(cp)) {
      return false;
    } else if (high_surrogate(cp)) {
      unsigned low = 0;
      if (!u_escape(c.p, c.end, true, low) || !low_surrogate(low)) return false;
      c.p += 6;
    }
  }
  return false;
}

// A value exactly as json::dump() writes it (so its text is what copy_text() writes for the
// parsed value): no whitespace, canonical strings, numbers scan_number() takes, objects
// without duplicate keys (canonical keys are equal exactly when their text is), `depth`
// levels deep counting the line's own object as 1.
bool canonical_value(Cursor& c, int depth, std::vector<std::string_view>& keys) {
  if (c.p == c.end) return false;
  switch (*c.p) {
    case '"':
      return canonical_string(c);
    case 't':
      return c.literal("true");
    case 'f':
      return c.literal("false");
    case 'n':
      return c.literal("null");
    case '{': {
      if (depth > kMaxDepth) return false;
      ++c.p;
      if (c.at('}')) {
        ++c.p;
        return true;
      }
      const std::size_t base = keys.size();
      for (;;) {
        if (!c.at('"')) return false;
        const char* start = c.p;
        if (!canonical_string(c)) return false;
        const std::string_view key(start, static_cast<std::size_t>(c.p - start));
        for (std::size_t i = base; i < keys.size(); ++i) {
          if (keys[i] == key) return false;
        }
        if (keys.size() - base >= kMaxKeys) return false;
        keys.push_back(key);
        if (!c.at(':')) return false;
        ++c.p;
        if (!canonical_value(c, depth + 1, keys)) return false;
        if (c.at(',')) {
          ++c.p;
          continue;
        }
        if (!c.at('}')) return false;
        ++c.p;
        keys.resize(base);
        return true;
      }
    }
    case '[': {
      if (depth > kMaxDepth) return false;
      ++c.p;
      if (c.at(']')) {
        ++c.p;
        return true;
      }
      for (;;) {
        if (!canonical_value(c, depth + 1, keys)) return false;
        if (c.at(',')) {
          ++c.p;
          continue;
        }
        if (!c.at(']')) return false;
        ++c.p;
        return true;
      }
    }
    default: {
      std::string_view token;
      bool integer = false;
      return scan_number(c, token, integer);
    }
  }
}

// One member value of the line's object.
bool scan_value(Cursor& c, Value& v, std::vector<std::string_view>& keys) {
  if (c.p == c.end) return false;
  const char* start = c.p;
  switch (*c.p) {
    case '"':
      v.kind = Kind::kString;
      return scan_string(c, v.text, v.escaped);
    case 't':
      v.kind = Kind::kTrue;
      v.text = "true";
      return c.literal(v.text);
    case 'f':
      v.kind = Kind::kFalse;
      v.text = "false";
      return c.literal(v.text);
    case 'n':
      v.kind = Kind::kNull;
      return c.literal("null");
    case '{':
    case '[':
      v.kind = Kind::kNested;
      if (!canonical_value(c, 2, keys)) return false;
      v.text = std::string_view(start, static_cast<std::size_t>(c.p - start));
      return true;
    default: {
      v.kind = Kind::kNumber;
      bool integer = false;
      return scan_number(c, v.text, integer);
    }
  }
}

// The text of a string value (decoded into `scratch` when it has escapes).
std::string_view string_text(const Value& v, std::string& scratch) {
  if (!v.escaped) return v.text;
  decode(v.text, scratch);
  return scratch;
}

// cqrs_revision as Event::revision() reads it: an integer token that fits int64.
bool revision_of(const Value& v, std::int64_t& revision) {
  if (v.kind != Kind::kNumber) return false;
  const char* end = v.text.data() + v.text.size();
  const auto [stop, ec] = std::from_chars(v.text.data(), end, revision);
  return ec == std::errc() && stop == end;  // stops at '.' or 'e' of a non-integer
}

}  // namespace

void copy_escape(std::string& out, std::string_view s) {
  std::size_t from = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const char* esc = nullptr;
    switch (c) {
      case '\\':
        esc = "\\\\";
        break;
      case '\t':
        esc = "\\t";
        break;
      case '\n':
        esc = "\\n";
        break;
      case '\r':
        esc = "\\r";
        break;
      default:
        continue;
    }
    out.append(s.data() + from, i - from);
    out.append(esc);
    from = i + 1;
  }
  out.append(s.data() + from, s.size() - from);
}

FastLineMapper::FastLineMapper(const Target& target) : target_(target) {
  const TableInfo& table = target.table;
  const auto key = table.index_of(table.primary_key);
  if (target.uses_function() || !key) return;
  usable_ = true;
  key_column_ = *key;
  for (const Column& c : table.columns)
    json_column_.push_back(c.base_type == "json" || c.base_type == "jsonb");
  const auto column = [&](std::string_view name) { return table.index_of(name).value_or(kNone); };
  // Each key's fate as renamed() and map_to_table() in batch.cpp decide it. A key the table
  // has no role for (not a column, not in the mapping) is dropped: it is not listed here.
  const auto add = [&](const std::string& name) {
    if (roles_.contains(name)) return;
    Role r;
    r.id = static_cast<std::uint32_t>(roles_.size());
    const auto m = target.model.mapping.find(name);
    if (sync_field(name)) {  // never renamed, always kept
      r.column = column(name);
      r.revision = name == kRevision;
      r.updated = name == kUpdated;
    } else if (m == target.model.mapping.end()) {
      // kept unless a mapped key of the same line takes its name (map() checks that)
      r.column = column(name);
    } else if (!sync_field(m->second)) {
      r.mapped = true;
      r.column = column(m->second);
    }  // else: a key mapped onto cqrs_revision/cqrs_updated is dropped
    roles_.emplace(name, r);
  };
  for (const Column& c : table.columns)
    add(c.name);
  for (const auto& [from, to] : target.model.mapping)
    add(from);
  add(std::string(kRevision));
  add(std::string(kUpdated));
}

bool FastLineMapper::map(std::string_view line, Row& row, std::string& copy, Scratch& s) const {
  if (!usable_) return false;
  line = strip(line);
  if (line.size() > json::ParseLimits{}.max_bytes) return false;
  Cursor c{line.data(), line.data() + line.size()};
  if (!c.at('{')) return false;
  ++c.p;

  const std::size_t n_columns = target_.table.columns.size();
  if (s.seen.size() != roles_.size()) s.seen.assign(roles_.size(), 0);
  if (++s.epoch == 0) {  // wrapped: forget every earlier line
    std::fill(s.seen.begin(), s.seen.end(), 0);
    s.epoch = 1;
  }
  s.other_keys.clear();
  s.nested_keys.clear();
  s.values.clear();
  s.mapped.assign(n_columns, kNone);
  s.unmapped.assign(n_columns, kNone);
  std::size_t revision_value = kNone;
  bool updated = false;

  c.skip_space();
  if (c.at('}')) {
    ++c.p;
  } else {
    for (;;) {
      std::string_view key;
      bool escaped = false;
      // keys with escapes would need decoding before the lookup: rare, left to json::parse
      if (!c.at('"') || !scan_string(c, key, escaped) || escaped) return false;
      c.skip_space();
      if (!c.at(':')) return false;
      ++c.p;
      c.skip_space();
      Value v;
      if (!scan_value(c, v, s.nested_keys)) return false;
      const auto it = roles_.find(key);
      if (it == roles_.end()) {
        // dropped, but a duplicate is still json::parse's error
        for (const std::string_view k : s.other_keys) {
          if (k == key) return false;
        }
        if (s.other_keys.size() >= kMaxKeys) return false;
        s.other_keys.push_back(key);
      } else {
        const Role& r = it->second;
        if (s.seen[r.id] == s.epoch) return false;  // duplicate key
        s.seen[r.id] = s.epoch;
        const std::size_t index = s.values.size();
        s.values.push_back(v);
        if (r.revision) revision_value = index;
        if (r.updated) updated = true;
        // several mapped keys onto one column: the last one wins, as in map_to_table()
        if (r.column != kNone) (r.mapped ? s.mapped : s.unmapped)[r.column] = index;
      }
      c.skip_space();
      if (c.at(',')) {
        ++c.p;
        c.skip_space();
        continue;
      }
      if (!c.at('}')) return false;
      ++c.p;
      break;
    }
  }
  c.skip_space();
  if (c.p != c.end) return false;  // more text after the object

  std::int64_t revision = 0;
  if (revision_value == kNone || !revision_of(s.values[revision_value], revision) || !updated) {
    return false;  // map_event() refuses it
  }
  // a mapped key owns its column: the key named like that column is dropped
  for (std::size_t i = 0; i < n_columns; ++i) {
    if (s.mapped[i] == kNone) s.mapped[i] = s.unmapped[i];
  }
  const std::vector<std::size_t>& slot = s.mapped;
  if (slot[key_column_] == kNone) return false;  // no key: instance_pk is null in a dump
  const Value& pk = s.values[slot[key_column_]];
  if (pk.kind == Kind::kNull) return false;

  row.signal = Signal::kSave;
  row.revision = revision;
  if (pk.kind == Kind::kString) {
    row.pk_text = string_text(pk, s.decoded);
  } else {
    row.pk_text = pk.text;  // canonical: what json::dump() writes
  }
  row.columns.clear();
  for (std::size_t i = 0; i < n_columns; ++i) {
    if (slot[i] == kNone) continue;
    if (!row.columns.empty()) copy += '\t';
    row.columns.push_back(i);
    const Value& v = s.values[slot[i]];
    switch (v.kind) {
      case Kind::kNull:
        copy += "\\N";
        break;
      case Kind::kString:
        if (json_column_[i]) {
          // json_to_record makes a string into json/jsonb the JSON string literal
          // escape_json() writes for it
          s.literal.clear();
          json::append_pg_json_string(s.literal, string_text(v, s.decoded));
          copy_escape(copy, s.literal);
        } else if (v.escaped) {
          copy_escape(copy, string_text(v, s.decoded));
        } else {
          copy += v.text;  // no backslash, and control characters cannot be raw
        }
        break;
      case Kind::kNested:  // canonical JSON text: no raw control characters, maybe backslashes
        copy_escape(copy, v.text);
        break;
      default:  // numbers and booleans: their JSON text, nothing to escape
        copy += v.text;
    }
  }
  copy += '\n';
  return true;
}

}  // namespace pgcqrs::replica
