// Batch outbox rows -> django-cqrs SAVE events (see batch.hpp).
#include "master/batch.hpp"

#include <algorithm>
#include <cstdint>

#include "common/error.hpp"
#include "common/json.hpp"
#include "master/dump.hpp"

namespace pgcqrs::master {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_null_word(std::string_view t) {
  return t.size() == 4 && (t[0] == 'N' || t[0] == 'n') && (t[1] == 'U' || t[1] == 'u') &&
         (t[2] == 'L' || t[2] == 'l') && (t[3] == 'L' || t[3] == 'l');
}

std::optional<ClientKind> client_kind_of(char kind) {
  switch (kind) {
    case 'n':
      return ClientKind::kNumber;
    case 'b':
      return ClientKind::kBool;
    case 's':
      return ClientKind::kString;
    case 'j':
      return ClientKind::kJson;
    case 'T':
    case 'Z':
      return ClientKind::kTimestampTz;
    case 't':
    case 'z':
      return ClientKind::kTimestamp;
    default:
      return std::nullopt;
  }
}

bool digits(std::string_view s, std::size_t at, std::size_t n, int& value) {
  if (at + n > s.size()) return false;
  value = 0;
  for (std::size_t k = at; k < at + n; ++k) {
    if (!is_digit(s[k])) return false;
    value = value * 10 + (s[k] - '0');
  }
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date with astronomical year numbering (1 BC
// is year 0), and back (H. Hinnant's civil calendar algorithms).
std::int64_t days_from_civil(std::int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t& y, int& m, int& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  y = yoe + era * 400 + (m <= 2 ? 1 : 0);
}

void append_padded(std::string& out, std::int64_t v, std::size_t width) {
  const std::string s = std::to_string(v);
  if (s.size() < width) out.append(width - s.size(), '0');
  out.append(s);
}

// Kinds Z and z: a timestamp as to_json() writes it, whatever the writing session's DateStyle:
// "YYYY-MM-DDTHH:MM:SS[.f{1,6}]" + for timestamptz the session's offset "+HH:MM[:SS]", then
// " BC" for years before 1 ("infinity" and "-infinity" as such). Appends what cqrs.django_ts()
// (converted to UTC, "+00:00") or django_ts_naive() writes for it; false when `json` does not
// have that shape.
bool append_django_ts_of_json(std::string& out, std::string_view json, bool with_zone) {
  if (json.size() < 2 || json.front() != '"' || json.back() != '"') return false;
  std::string_view v = json.substr(1, json.size() - 2);
  if (v == "infinity" || v == "-infinity") {
    out.append(json);
    return true;
  }
  bool bc = false;
  if (v.size() > 3 && v.substr(v.size() - 3) == " BC") {
    bc = true;
    v.remove_suffix(3);
  }
  std::size_t i = 0;
  while (i < v.size() && is_digit(v[i]))
    ++i;
  if (i < 4 || i > 9) return false;
  std::int64_t year = 0;
  for (std::size_t k = 0; k < i; ++k)
    year = year * 10 + (v[k] - '0');
  int month = 0;
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (!(i + 15 <= v.size() && v[i] == '-' && digits(v, i + 1, 2, month) && v[i + 3] == '-' &&
        digits(v, i + 4, 2, day) && v[i + 6] == 'T' && digits(v, i + 7, 2, hour) &&
        v[i + 9] == ':' && digits(v, i + 10, 2, minute) && v[i + 12] == ':' &&
        digits(v, i + 13, 2, second))) {
    return false;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) {
    return false;
  }
  i += 15;
  std::string_view frac;
  if (i < v.size() && v[i] == '.') {
    std::size_t j = i + 1;
    while (j < v.size() && is_digit(v[j]))
      ++j;
    frac = v.substr(i + 1, j - i - 1);
    if (frac.empty() || frac.size() > 6) return false;
    i = j;
  }
  std::int64_t offset = 0;  // seconds east of UTC
  if (with_zone) {
    // +HH:MM, +HH:MM:SS (XSD style always writes the minutes)
    int oh = 0;
    int om = 0;
    int os = 0;
    if (i + 6 > v.size() || (v[i] != '+' && v[i] != '-') || !digits(v, i + 1, 2, oh) ||
        v[i + 3] != ':' || !digits(v, i + 4, 2, om) || oh > 15 || om > 59) {
      return false;
    }
    const bool west = v[i] == '-';
    i += 6;
    if (i < v.size()) {
      if (i + 3 != v.size() || v[i] != ':' || !digits(v, i + 1, 2, os) || os > 59) return false;
      i += 3;
    }
    offset = (oh * 3600 + om * 60 + os) * (west ? -1 : 1);
  }
  if (i != v.size()) return false;
  if (bc) year = 1 - year;  // astronomical numbering: 1 BC is year 0
  std::int64_t secs = hour * 3600 + minute * 60 + second;
  if (offset != 0) {  // naive timestamps and UTC sessions have none
    std::int64_t days = days_from_civil(year, month, day);
    secs -= offset;  // offsets are under a day
    if (secs < 0) {
      secs += 86400;
      --days;
    } else if (secs >= 86400) {
      secs -= 86400;
      ++days;
    }
    civil_from_days(days, year, month, day);
  }
  // to_char's YYYY has no era: 44 BC is "0044"
  out.push_back('"');
  append_padded(out, year > 0 ? year : 1 - year, 4);
  out.push_back('-');
  append_padded(out, month, 2);
  out.push_back('-');
  append_padded(out, day, 2);
  out.push_back(' ');
  append_padded(out, secs / 3600, 2);
  out.push_back(':');
  append_padded(out, secs / 60 % 60, 2);
  out.push_back(':');
  append_padded(out, secs % 60, 2);
  if (!frac.empty()) {
    out.push_back('.');
    out.append(frac);
    out.append(6 - frac.size(), '0');
  }
  if (with_zone) out.append("+00:00");
  out.push_back('"');
  return true;
}

// The value of layout kind `kind` as json_build_object() writes it, in splice_json()'s form.
// A text without its kind's shape (the column's type changed since `pgcqrs migrate`) is
// written as it is when it is JSON (kinds Z and z store JSON), else as a string. False, with
// `out` as it was, when not even the string form can be written (a string the codec refuses):
// the caller must not publish the event.
[[nodiscard]] bool append_value(std::string& out, char kind, std::string_view text) {
  const ClientKind ck = *client_kind_of(kind);
  const std::size_t before = out.size();
  if (kind == 'Z' || kind == 'z') {
    if (append_django_ts_of_json(out, text, kind == 'Z')) return true;
    out.resize(before);
    if (append_line_value(out, ClientKind::kJson, text, 1)) return true;
    out.resize(before);
  } else if (ck == ClientKind::kBool) {
    // boolean's cast to text spells "true" / "false" (its output function "t" / "f")
    if (text == "true" || text == "t") {
      out.append("true");
      return true;
    }
    if (text == "false" || text == "f") {
      out.append("false");
      return true;
    }
  } else {
    bool ok = false;
    try {
      ok = append_line_value(out, ck, text, 1);
    } catch (const Error&) {
      ok = false;
    }
    if (ok) return true;
    out.resize(before);
  }
  bool ok = false;
  try {
    ok = append_line_value(out, ClientKind::kString, text, 1);
  } catch (const Error&) {
    ok = false;
  }
  if (!ok) out.resize(before);
  return ok;
}

[[noreturn]] void bad(const OutboxRow& row, const std::string& what) {
  throw MessageError("outbox id=" + std::to_string(row.id) + " (batch of " + row.cqrs_id +
                     "): " + what);
}

// parse_text_array()'s result without a string per element: the unescaped elements one after
// the other in `storage`, each a span of it (length kNull for NULL).
struct ArraySpans {
  static constexpr std::size_t kNull = static_cast<std::size_t>(-1);
  std::string storage;
  std::vector<std::pair<std::size_t, std::size_t>> spans;  // offset, length
  std::size_t rows = 0;
  int dims = 0;

  [[nodiscard]] bool is_null(std::size_t k) const { return spans[k].second == kNull; }
  [[nodiscard]] std::string_view at(std::size_t k) const {
    return std::string_view(storage).substr(spans[k].first, spans[k].second);
  }
};

bool parse_spans(std::string_view text, ArraySpans& a) {
  a.storage.clear();
  a.storage.reserve(text.size());
  a.spans.clear();
  a.rows = 0;
  a.dims = 0;
  std::size_t i = 0;
  const std::size_t n = text.size();
  if (n > 0 && text[0] == '[') {  // dimension decoration of a lower bound other than 1
    while (i < n && text[i] != '=')
      ++i;
    if (i == n) return false;
    ++i;
  }
  if (i >= n || text[i] != '{') return false;
  int depth = 0;
  std::size_t row_start = 0;
  std::size_t width = 0;  // elements per inner array, from the first one
  bool expect_element = true;
  bool after_comma = false;
  while (i < n) {
    const char c = text[i];
    if (c == '{') {
      if (!expect_element || depth >= 2) return false;
      after_comma = false;
      ++depth;
      a.dims = std::max(a.dims, depth);
      if (depth == 2) row_start = a.spans.size();
      ++i;
      continue;
    }
    if (c == '}') {
      if (depth == 0 || after_comma) return false;
      if (depth == 2) {
        const std::size_t w = a.spans.size() - row_start;
        if (a.rows == 0) {
          width = w;
        } else if (w != width) {
          return false;
        }
        ++a.rows;
      }
      --depth;
      ++i;
      expect_element = false;
      if (depth == 0) break;
      continue;
    }
    if (c == ',') {
      if (expect_element) return false;
      expect_element = true;
      after_comma = true;
      ++i;
      continue;
    }
    if (!expect_element || (a.dims == 2 && depth == 1)) return false;
    after_comma = false;
    const std::size_t start = a.storage.size();
    if (c == '"') {
      std::size_t j = i + 1;
      while (j < n && text[j] != '"') {
        // copy the run up to the next quote or backslash at once
        std::size_t k = j;
        while (k < n && text[k] != '"' && text[k] != '\\')
          ++k;
        a.storage.append(text.data() + j, k - j);
        j = k;
        if (j < n && text[j] == '\\') {
          if (++j >= n) return false;
          a.storage.push_back(text[j]);
          ++j;
        }
      }
      if (j >= n) return false;
      a.spans.emplace_back(start, a.storage.size() - start);
      i = j + 1;
    } else {
      std::size_t j = i;
      while (j < n && text[j] != ',' && text[j] != '}')
        ++j;
      const std::string_view token = text.substr(i, j - i);
      if (token.empty()) return false;
      if (is_null_word(token)) {
        a.spans.emplace_back(0, ArraySpans::kNull);
      } else {
        a.storage.append(token);
        a.spans.emplace_back(start, token.size());
      }
      i = j;
    }
    expect_element = false;
  }
  if (depth != 0 || i != n) return false;
  if (a.dims == 1) a.rows = a.spans.empty() ? 0 : 1;
  return true;
}

}  // namespace

bool parse_text_array(std::string_view text, std::vector<std::optional<std::string>>& elements,
                      std::size_t& rows) {
  elements.clear();
  ArraySpans a;
  if (!parse_spans(text, a)) {
    rows = 0;
    return false;
  }
  rows = a.rows;
  elements.reserve(a.spans.size());
  for (std::size_t k = 0; k < a.spans.size(); ++k) {
    if (a.is_null(k)) {
      elements.emplace_back(std::nullopt);
    } else {
      elements.emplace_back(std::string(a.at(k)));
    }
  }
  return true;
}

BatchLayout parse_layout(const OutboxRow& row, std::string_view layout) {
  if (!layout.empty() && layout[0] == '#') {
    bad(row, "batch_layout key " + std::string(layout) +
                 " names no layout in cqrs.batch_layout (`pgcqrs migrate` stores them)");
  }
  ArraySpans names;
  if (!parse_spans(layout, names) || names.dims != 1) {
    bad(row, "batch_layout is not a one-dimensional text array");
  }
  if (names.spans.size() < 3) bad(row, "batch_layout has fewer than 3 positions");
  BatchLayout out;
  out.positions.reserve(names.spans.size());
  for (std::size_t k = 0; k < names.spans.size(); ++k) {
    const std::string_view e = names.is_null(k) ? std::string_view() : names.at(k);
    if (e.size() < 2 || e[1] != ':') {
      bad(row, "batch_layout position " + std::to_string(k + 1) + " is not '<kind>:<name>'");
    }
    BatchLayout::Position p;
    p.kind = e[0];
    if (p.kind == 'P') {
      out.previous_at = static_cast<int>(k);
    } else if (p.kind == 'M') {
      out.meta_at = static_cast<int>(k);
    } else if (client_kind_of(p.kind)) {
      std::string pg_key;
      json::append_pg_json_string(pg_key, e.substr(2));
      splice_json(p.key, pg_key);  // a JSON string: cannot fail
      p.key.push_back(':');
    } else {
      bad(row, "batch_layout position " + std::to_string(k + 1) + ": unknown kind '" +
                   std::string(1, p.kind) + "'");
    }
    if (k < 3 && !client_kind_of(p.kind)) bad(row, "batch_layout must start with data columns");
    out.positions.push_back(std::move(p));
  }
  return out;
}

std::vector<OutboxRow> expand_batch(const OutboxRow& row, std::string_view batch,
                                    std::string_view layout) {
  return expand_batch(row, batch, parse_layout(row, layout));
}

std::vector<OutboxRow> expand_batch(const OutboxRow& row, std::string_view batch,
                                    const BatchLayout& layout) {
  const auto& positions = layout.positions;
  const int previous_at = layout.previous_at;
  const int meta_at = layout.meta_at;
  ArraySpans values;
  // a statement of one row stores its row's array itself: one dimension, one row
  if (!parse_spans(batch, values) || values.rows == 0 ||
      values.spans.size() != values.rows * positions.size()) {
    bad(row, "batch is not a text array of " + std::to_string(positions.size()) + "-column rows");
  }

  const std::size_t rows = values.rows;
  const std::size_t width = positions.size();
  std::vector<OutboxRow> events(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t at = r * width;
    OutboxRow& e = events[r];
    e.id = row.id;
    e.index = static_cast<int>(r + 1);
    e.formatted = true;
    e.cqrs_id = row.cqrs_id;
    e.signal = row.signal;
    e.correlation_id = row.correlation_id;
    if (values.is_null(at)) bad(row, "row " + std::to_string(r + 1) + " has no primary key");
    if (!append_value(e.instance_pk, positions[0].kind, values.at(at))) {
      bad(row, "row " + std::to_string(r + 1) + ": its primary key cannot be written as JSON");
    }
    std::string data;
    data.reserve(64 + 24 * width);
    data.push_back('{');
    for (std::size_t k = 0; k < width; ++k) {
      const BatchLayout::Position& p = positions[k];
      if (p.key.empty()) continue;
      if (data.size() > 1) data.push_back(',');
      data.append(p.key);
      if (values.is_null(at + k)) {
        data.append("null");
      } else if (!append_value(data, p.kind, values.at(at + k))) {
        bad(row, "row " + std::to_string(r + 1) + ", position " + std::to_string(k + 1) +
                     ": the value cannot be written as JSON");
      }
    }
    data.push_back('}');
    e.instance_data = std::move(data);
    if (previous_at >= 0 && !values.is_null(at + static_cast<std::size_t>(previous_at))) {
      e.previous_data = std::string(values.at(at + static_cast<std::size_t>(previous_at)));
    }
    if (meta_at < 0) {
      e.meta = row.meta;
    } else if (!values.is_null(at + static_cast<std::size_t>(meta_at))) {
      e.meta = std::string(values.at(at + static_cast<std::size_t>(meta_at)));
    }
  }
  return events;
}

}  // namespace pgcqrs::master
