// Connection strings: password masking (URI and key=value forms), conninfo building, messages.
#include "common/pg/url.hpp"

#include <cctype>
#include <cstdlib>
#include <memory>
#include <vector>

#include <libpq-fe.h>

#include "common/error.hpp"

namespace pgcqrs::pg {
namespace {

constexpr std::string_view kMask = "****";

bool is_space(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Length of a URI designator, or 0. libpq matches it case-sensitively; masking does not, so
// that a mistyped "POSTGRESQL://u:pw@h" still has its password hidden.
std::size_t uri_prefix_length(std::string_view s) {
  const std::string head = ascii_lower(s.substr(0, 13));
  for (const std::string_view p :
       {std::string_view("postgresql://"), std::string_view("postgres://")}) {
    if (std::string_view(head).substr(0, p.size()) == p) return p.size();
  }
  return 0;
}

bool is_secret_key(std::string_view key) {
  const std::string k = ascii_lower(key);
  return k == "password" || k == "sslpassword";
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `s`; malformed escapes are kept as written (we only compare keys with it).
std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = hex_value(s[i + 1]);
      const int lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

struct Masked {
  std::string text;
  std::vector<std::string> secrets;  // as written in the URL (still escaped/encoded)
};

// postgresql://[user[:password]@][netloc][/dbname][?param1=value1&...]
Masked mask_uri(std::string_view url, std::size_t prefix) {
  Masked m;
  m.text.reserve(url.size());
  m.text.append(url.substr(0, prefix));
  std::string_view rest = url.substr(prefix);

  // As libpq: credentials end at the first '@' met before any '/'.
  const std::size_t stop = rest.find_first_of("@/");
  if (stop != std::string_view::npos && rest[stop] == '@') {
    const std::string_view userinfo = rest.substr(0, stop);
    const std::size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      m.text.append(userinfo);
    } else {
      m.text.append(userinfo.substr(0, colon + 1)).append(kMask);
      m.secrets.emplace_back(userinfo.substr(colon + 1));
    }
    m.text += '@';
    rest.remove_prefix(stop + 1);
  }

  const std::size_t query = rest.find('?');
  m.text.append(rest.substr(0, query));
  if (query == std::string_view::npos) return m;
  m.text += '?';
  std::string_view params = rest.substr(query + 1);
  for (bool first = true;; first = false) {
    const std::size_t amp = params.find('&');
    const std::string_view param = params.substr(0, amp);
    if (!first) m.text += '&';
    const std::size_t eq = param.find('=');
    if (eq != std::string_view::npos && is_secret_key(percent_decode(param.substr(0, eq)))) {
      m.text.append(param.substr(0, eq + 1)).append(kMask);
      m.secrets.emplace_back(param.substr(eq + 1));
    } else {
      m.text.append(param);
    }
    if (amp == std::string_view::npos) break;
    params.remove_prefix(amp + 1);
  }
  return m;
}

// key = value ... with values unquoted (backslash escapes) or in single quotes (libpq rules).
Masked mask_keyword_value(std::string_view s) {
  Masked m;
  m.text.reserve(s.size());
  std::size_t i = 0;
  const auto copy_spaces = [&] {
    while (i < s.size() && is_space(s[i]))
      m.text += s[i++];
  };
  while (i < s.size()) {
    copy_spaces();
    if (i >= s.size()) break;
    const std::size_t key_begin = i;
    while (i < s.size() && s[i] != '=' && !is_space(s[i]))
      ++i;
    const std::string_view key = s.substr(key_begin, i - key_begin);
    const bool secret = is_secret_key(key);
    m.text.append(key);
    copy_spaces();
    if (i >= s.size() || s[i] != '=') {
      // Malformed (libpq rejects it). A secret key without '=' may still be followed by
      // the secret: hide everything after it.
      if (secret && i < s.size()) {
        m.text.append(kMask);
        m.secrets.emplace_back(s.substr(i));
        break;
      }
      continue;
    }
    m.text += s[i++];  // '='
    copy_spaces();
    const std::size_t value_begin = i;
    std::string_view secret_text;
    if (i < s.size() && s[i] == '\'') {
      ++i;
      const std::size_t inner = i;
      while (i < s.size() && s[i] != '\'')
        i += (s[i] == '\\' && i + 1 < s.size()) ? 2U : 1U;
      secret_text = s.substr(inner, std::min(i, s.size()) - inner);
      if (i < s.size()) ++i;  // closing quote; unterminated: the value runs to the end
    } else {
      while (i < s.size() && !is_space(s[i]))
        i += (s[i] == '\\' && i + 1 < s.size()) ? 2U : 1U;
      i = std::min(i, s.size());
      secret_text = s.substr(value_begin, i - value_begin);
    }
    if (secret) {
      m.text.append(kMask);
      m.secrets.emplace_back(secret_text);
    } else {
      m.text.append(s.substr(value_begin, i - value_begin));
    }
  }
  return m;
}

Masked mask(std::string_view url) {
  const std::size_t prefix = uri_prefix_length(url);
  return prefix > 0 ? mask_uri(url, prefix) : mask_keyword_value(url);
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  for (std::size_t pos = s.find(from); pos != std::string::npos;
       pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
}

std::string quote_conninfo_value(std::string_view v) {
  std::string out;
  out.reserve(v.size() + 2);
  out += '\'';
  for (const char c : v) {
    if (c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  out += '\'';
  return out;
}

struct ConninfoDeleter {
  void operator()(PQconninfoOption* p) const noexcept { PQconninfoFree(p); }
};
struct PqFreeDeleter {
  void operator()(char* p) const noexcept { PQfreemem(p); }
};

}  // namespace

std::string mask_url(std::string_view url) {
  return mask(url).text;
}

std::string redact(std::string_view message, std::string_view url) {
  std::string out(message);
  for (const std::string& secret : mask(url).secrets) {
    if (secret.empty()) continue;
    // libpq quotes the tokens it echoes; short secrets are only replaced when quoted, so that
    // a one-letter password does not garble the whole message.
    replace_all(out, "\"" + secret + "\"", "\"****\"");
    if (secret.size() >= 4) replace_all(out, secret, kMask);
  }
  return out;
}

std::string build_conninfo(std::string_view url, std::string_view application_name) {
  const std::string text(url);
  char* raw_error = nullptr;
  const std::unique_ptr<PQconninfoOption, ConninfoDeleter> options(
      PQconninfoParse(text.c_str(), &raw_error));
  const std::unique_ptr<char, PqFreeDeleter> error(raw_error);
  if (!options) {
    throw ConfigError("database url '" + mask_url(url) + "': " +
                      (error ? redact(one_line(error.get()), url) : std::string("out of memory")));
  }

  std::string conninfo;
  bool has_fallback_name = false;
  bool has_connect_timeout = false;
  for (const PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string_view keyword(o->keyword);
    has_fallback_name = has_fallback_name || keyword == "fallback_application_name";
    has_connect_timeout = has_connect_timeout || keyword == "connect_timeout";
    if (!conninfo.empty()) conninfo += ' ';
    conninfo.append(keyword).append("=").append(quote_conninfo_value(o->val));
  }
  const auto append = [&conninfo](std::string_view keyword, std::string_view value) {
    if (!conninfo.empty()) conninfo += ' ';
    conninfo.append(keyword).append("=").append(quote_conninfo_value(value));
  };
  if (!has_fallback_name && !application_name.empty()) {
    append("fallback_application_name", application_name);
  }
  // NOLINTNEXTLINE(concurrency-mt-unsafe): nothing sets the environment after start-up
  const char* env_timeout = std::getenv("PGCONNECT_TIMEOUT");
  if (!has_connect_timeout && (env_timeout == nullptr || *env_timeout == '\0')) {
    append("connect_timeout", std::to_string(kDefaultConnectTimeout.count()));
  }
  return conninfo;
}

std::string one_line(std::string_view message) {
  std::string out;
  out.reserve(message.size());
  while (!message.empty()) {
    const std::size_t nl = message.find_first_of("\r\n");
    std::string_view line = message.substr(0, nl);
    message.remove_prefix(nl == std::string_view::npos ? message.size() : nl + 1);

    while (!line.empty() && is_space(line.front()))
      line.remove_prefix(1);
    while (!line.empty() && is_space(line.back()))
      line.remove_suffix(1);
    if (line.empty() || line.find_first_not_of("^ \t") == std::string_view::npos) continue;

    std::string cleaned(line);
    // libpq writes "SEVERITY:  text" (two spaces): keep one.
    const std::size_t colon = cleaned.find(":  ");
    if (colon != std::string::npos && colon > 0 && colon < 16) {
      bool severity = true;
      for (std::size_t k = 0; k < colon; ++k) {
        severity = severity && std::isupper(static_cast<unsigned char>(cleaned[k])) != 0;
      }
      if (severity) {
        const std::size_t text = cleaned.find_first_not_of(' ', colon + 1);
        cleaned.erase(colon + 2, text - (colon + 2));
      }
    }
    if (!out.empty()) out += "; ";
    out += cleaned;
  }
  return out;
}

}  // namespace pgcqrs::pg
