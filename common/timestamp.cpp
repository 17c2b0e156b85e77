// ISO 8601 timestamps with a UTC offset: a strict hand parser over <chrono> and two formatters.
#include "common/timestamp.hpp"

#include <cstdio>

#include "common/error.hpp"
#include "common/json.hpp"

namespace pgcqrs {
namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::minutes;
using std::chrono::seconds;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Reads `n` digits at `pos`; false if any is missing.
bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (s.size() < pos + n) return false;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!is_digit(s[pos + i])) return false;
    v = v * 10 + (s[pos + i] - '0');
  }
  out = v;
  return true;
}

std::string pad(int v, int width) {
  std::string s = std::to_string(v < 0 ? -v : v);
  if (static_cast<int>(s.size()) < width) {
    s.insert(0, static_cast<std::size_t>(width) - s.size(), '0');
  }
  return v < 0 ? "-" + s : s;
}

std::string quoted(std::string_view s) {
  std::string out(1, '\'');  // built by appending: `"'" + std::string` trips GCC 12's -Wrestrict
  out += json::excerpt_string(s);
  out += '\'';
  return out;
}

// Parses `text`; on failure returns false with the cause in `cause`.
bool parse_impl(std::string_view s, Timestamp& out, std::string& cause) {
  int year = 0;
  int month = 0;
  int day = 0;
  if (!digits(s, 0, 4, year) || s.size() < 5 || s[4] != '-' || !digits(s, 5, 2, month) ||
      s.size() < 8 || s[7] != '-' || !digits(s, 8, 2, day)) {
    cause = "expected a date 'YYYY-MM-DD' at the start";
    return false;
  }
  if (s.size() == 10) {
    cause = "no time; expected 'YYYY-MM-DD HH:MM:SS' and a UTC offset";
    return false;
  }
  if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') {
    cause = "expected 'T' or ' ' after the date, got " + quoted(s.substr(10, 1));
    return false;
  }
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (!digits(s, 11, 2, hour) || s.size() < 14 || s[13] != ':' || !digits(s, 14, 2, minute) ||
      s.size() < 17 || s[16] != ':' || !digits(s, 17, 2, second)) {
    cause = "expected a time 'HH:MM:SS' after the date";
    return false;
  }
  if (year < 1) {
    cause = "year 0000 out of range 0001..9999";
    return false;
  }
  if (month < 1 || month > 12) {
    cause = "month " + pad(month, 2) + " out of range 01..12";
    return false;
  }
  const std::chrono::year_month_day ymd{std::chrono::year{year},
                                        std::chrono::month{static_cast<unsigned>(month)},
                                        std::chrono::day{static_cast<unsigned>(day)}};
  if (!ymd.ok()) {
    cause = "day " + pad(day, 2) + " out of range for " + pad(year, 4) + "-" + pad(month, 2);
    return false;
  }
  if (hour > 23) {
    cause = "hour " + pad(hour, 2) + " out of range 00..23";
    return false;
  }
  if (minute > 59) {
    cause = "minute " + pad(minute, 2) + " out of range 00..59";
    return false;
  }
  if (second > 59) {
    cause = "second " + pad(second, 2) + " out of range 00..59";
    return false;
  }
  std::size_t i = 19;
  std::int64_t micros = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    std::size_t n = 0;
    while (i + n < s.size() && is_digit(s[i + n]))
      ++n;
    if (n == 0) {
      cause = "expected digits after '.'";
      return false;
    }
    if (n > 6) {
      cause = "fraction of " + std::to_string(n) + " digits; at most 6 (microseconds)";
      return false;
    }
    for (std::size_t k = 0; k < 6; ++k)
      micros = micros * 10 + (k < n ? s[i + k] - '0' : 0);
    i += n;
  }
  if (i == s.size()) {
    cause = "no UTC offset";
    return false;
  }
  minutes offset{0};
  const std::size_t offset_at = i;
  const char sign = s[i];
  if (sign == 'Z' || sign == 'z') {
    ++i;
  } else if (sign == '+' || sign == '-') {
    ++i;
    int oh = 0;
    int om = 0;
    if (!digits(s, i, 2, oh)) {
      cause = "UTC offset " + quoted(s.substr(offset_at)) + " is not [+-]HH:MM, [+-]HHMM or [+-]HH";
      return false;
    }
    i += 2;
    if (i < s.size()) {
      if (s[i] == ':') ++i;
      if (!digits(s, i, 2, om)) {
        cause =
            "UTC offset " + quoted(s.substr(offset_at)) + " is not [+-]HH:MM, [+-]HHMM or [+-]HH";
        return false;
      }
      i += 2;
    }
    if (oh > 23 || om > 59) {
      cause = "UTC offset " + quoted(s.substr(offset_at)) + " out of range; at most [+-]23:59";
      return false;
    }
    offset = hours{oh} + minutes{om};
    if (sign == '-') offset = -offset;
  } else {
    cause = "expected a UTC offset ('Z' or [+-]HH:MM) at " + quoted(s.substr(i));
    return false;
  }
  if (i != s.size()) {
    cause = "unexpected " + quoted(s.substr(i)) + " after the UTC offset";
    return false;
  }
  out = Timestamp{std::chrono::sys_days{ymd}} + hours{hour} + minutes{minute} + seconds{second} +
        microseconds{micros} - offset;
  return true;
}

// Date and time of day, UTC.
struct Civil {
  std::chrono::year_month_day ymd;
  std::chrono::hh_mm_ss<microseconds> tod;
};

Civil civil(Timestamp t) {
  const auto day = std::chrono::floor<days>(t);
  return {std::chrono::year_month_day{day}, std::chrono::hh_mm_ss<microseconds>{t - day}};
}

std::string date_time(const Civil& c, char separator) {
  std::string s = pad(static_cast<int>(c.ymd.year()), 4) + "-" +
                  pad(static_cast<int>(static_cast<unsigned>(c.ymd.month())), 2) + "-" +
                  pad(static_cast<int>(static_cast<unsigned>(c.ymd.day())), 2);
  s += separator;
  s += pad(static_cast<int>(c.tod.hours().count()), 2) + ":" +
       pad(static_cast<int>(c.tod.minutes().count()), 2) + ":" +
       pad(static_cast<int>(c.tod.seconds().count()), 2);
  return s;
}

}  // namespace

Timestamp parse_timestamp(std::string_view text) {
  Timestamp t;
  std::string cause;
  if (!parse_impl(text, t, cause)) {
    throw MessageError("timestamp " + quoted(text) + ": " + cause);
  }
  return t;
}

std::string timestamp_error(std::string_view text) {
  Timestamp t;
  std::string cause;
  parse_impl(text, t, cause);
  return cause;
}

std::string format_django(Timestamp t) {
  const Civil c = civil(t);
  std::string s = date_time(c, ' ');
  if (const auto us = c.tod.subseconds().count(); us != 0) {
    s += '.';
    s += pad(static_cast<int>(us), 6);
  }
  return s + "+00:00";
}

std::string format_expires(Timestamp t) {
  return date_time(civil(t), 'T') + "+00:00";
}

Timestamp now_utc() {
  return std::chrono::time_point_cast<microseconds>(std::chrono::system_clock::now());
}

}  // namespace pgcqrs
