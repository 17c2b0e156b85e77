// AMQP URL parser and masker: amqp[s]://user:password@host:port/vhost?options -> Url.
#include "common/amqp/url.hpp"

#include <charconv>
#include <limits>
#include <optional>
#include <set>

#include "common/error.hpp"

namespace pgcqrs::amqp {
namespace {

constexpr std::size_t kMaxUrlLength = 8192;
constexpr std::string_view kUrlShape = "amqp://user:password@host:port/vhost";
constexpr std::string_view kKnownOptions =
    "heartbeat, connection_timeout, channel_max, frame_max, cacertfile, certfile, keyfile, "
    "verify or server_name_indication";

// Builds the ConfigError of one URL: `AMQP URL '<masked>': <detail>`.
class UrlErrors {
 public:
  explicit UrlErrors(std::string_view text) : text_(text) {}
  [[noreturn]] void fail(const std::string& detail) const {
    throw ConfigError("AMQP URL '" + mask_url(text_) + "': " + detail);
  }

 private:
  std::string_view text_;
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `s`; a bad escape fails naming `part` (and, unless `secret`, the escape).
std::string decode(std::string_view s, std::string_view part, bool secret, const UrlErrors& err) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    const int hi = i + 1 < s.size() ? hex_value(s[i + 1]) : -1;
    const int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      const std::string token = secret ? "" : " '" + std::string(s.substr(i, 3)) + "'";
      err.fail("bad percent-encoding" + token + " in the " + std::string(part) +
               "; write '%' as %25 and other special characters as %XX");
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

bool is_unreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

std::string encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    if (is_unreserved(c)) {
      out += c;
    } else {
      const auto u = static_cast<unsigned char>(c);
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    }
  }
  return out;
}

// Parses all of `s` as an unsigned decimal within [lo, hi]; nullopt otherwise.
std::optional<std::uint64_t> parse_uint(std::string_view s, std::uint64_t lo, std::uint64_t hi) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  std::uint64_t v = 0;
  const auto* end = s.data() + s.size();
  const auto [ptr, ec] = std::from_chars(s.data(), end, v);
  if (ec != std::errc() || ptr != end || v < lo || v > hi) return std::nullopt;
  return v;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

void parse_userinfo(std::string_view userinfo, Url& url, const UrlErrors& err) {
  const auto colon = userinfo.find(':');
  url.user = decode(userinfo.substr(0, colon), "user", false, err);
  url.password = colon == std::string_view::npos
                     ? ""
                     : decode(userinfo.substr(colon + 1), "password", true, err);
  if (url.user.empty()) {
    err.fail(
        "the user name before '@' is empty; write amqp://user:password@host/ or leave out "
        "'user:password@' for guest");
  }
}

void parse_hostport(std::string_view hostport, Url& url, const UrlErrors& err) {
  std::string_view host = hostport;
  std::optional<std::string_view> port;
  if (!hostport.empty() && hostport.front() == '[') {
    const auto close = hostport.find(']');
    if (close == std::string_view::npos) {
      err.fail("IPv6 host '" + std::string(hostport) + "' has no closing ']'; write it as [::1]");
    }
    host = hostport.substr(1, close - 1);
    const auto after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        err.fail("unexpected '" + std::string(after) + "' after the IPv6 host; write [host]:port");
      }
      port = after.substr(1);
    }
    if (host.empty()) err.fail("the IPv6 host in '[]' is empty; write it as [::1]");
  } else {
    const auto colon = hostport.find(':');
    if (colon != std::string_view::npos) {
      host = hostport.substr(0, colon);
      port = hostport.substr(colon + 1);
      if (port->find(':') != std::string_view::npos) {
        err.fail("host '" + std::string(hostport) +
                 "' has more than one ':'; write an IPv6 address in brackets: [::1]:5672");
      }
    }
  }
  if (!host.empty()) url.host = decode(host, "host", false, err);
  if (port) {
    const auto p = parse_uint(*port, 1, 65535);
    if (!p) {
      err.fail("port '" + std::string(*port) +
               "' is not a number from 1 to 65535; fix the number after the host's ':'");
    }
    url.port = static_cast<std::uint16_t>(*p);
  }
}

void parse_vhost(std::string_view path, Url& url, const UrlErrors& err) {
  if (path.empty() || path == "/") return;  // vhost "/"
  const auto segment = path.substr(1);
  if (segment.find('/') != std::string_view::npos) {
    err.fail("path '" + std::string(path) +
             "' has more than one segment; the vhost is one segment, write '/' inside it as %2F");
  }
  url.vhost = decode(segment, "vhost", false, err);
}

void apply_option(const std::string& key, const std::string& value, Url& url,
                  const UrlErrors& err) {
  const auto bad_value = [&](std::string_view what) {
    err.fail("query option " + key + "='" + value + "' is not " + std::string(what));
  };
  const auto needs_tls = [&] {
    if (!url.tls) err.fail("query option '" + key + "' needs TLS; use an amqps:// URL");
  };
  if (key == "heartbeat") {
    const auto v = parse_uint(value, 0, 65535);
    if (!v) bad_value("a whole number of seconds from 0 to 65535 (0 disables heartbeats)");
    url.heartbeat = std::chrono::seconds(static_cast<std::int64_t>(*v));
  } else if (key == "connection_timeout") {
    const auto v = parse_uint(value, 1, std::numeric_limits<std::int32_t>::max());
    if (!v) bad_value("a whole number of milliseconds from 1 to 2147483647");
    url.connection_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(*v));
  } else if (key == "channel_max") {
    const auto v = parse_uint(value, 0, 65535);
    if (!v) bad_value("a number from 0 to 65535 (0 = the broker's limit)");
    url.channel_max = static_cast<std::uint16_t>(*v);
  } else if (key == "frame_max") {
    const auto v = parse_uint(value, 0, std::numeric_limits<std::int32_t>::max());
    if (!v || (*v != 0 && *v < 4096)) {
      bad_value("0 (no limit) or a number of bytes from 4096 to 2147483647");
    }
    url.frame_max = static_cast<std::uint32_t>(*v);
  } else if (key == "cacertfile" || key == "certfile" || key == "keyfile") {
    needs_tls();
    if (value.empty()) err.fail("query option '" + key + "' is empty; give the path of a PEM file");
    (key == "cacertfile"
         ? url.tls_options.cacertfile
         : (key == "certfile" ? url.tls_options.certfile : url.tls_options.keyfile)) = value;
  } else if (key == "verify") {
    needs_tls();
    if (value == "verify_peer") {
      url.tls_options.verify = Verify::kPeer;
    } else if (value == "verify_none") {
      url.tls_options.verify = Verify::kNone;
    } else {
      bad_value("known; use verify_peer or verify_none");
    }
  } else if (key == "server_name_indication") {
    needs_tls();
    if (value.empty()) bad_value("a host name; give the name on the certificate, or disable");
    url.tls_options.server_name_indication = value;
  } else {
    err.fail("query option '" + key + "' is unknown; use " + std::string(kKnownOptions));
  }
}

void parse_query(std::string_view query, Url& url, const UrlErrors& err) {
  std::set<std::string> seen;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;
    const auto eq = item.find('=');
    const std::string key = decode(item.substr(0, eq), "query option name", false, err);
    if (eq == std::string_view::npos) {
      err.fail("query option '" + key + "' has no value; write " + key + "=<value>");
    }
    if (!seen.insert(key).second) {
      err.fail("query option '" + key + "' is given twice; keep one");
    }
    apply_option(key,
                 decode(item.substr(eq + 1), "value of query option '" + key + "'", false, err),
                 url, err);
  }
  const auto& t = url.tls_options;
  if (t.certfile.empty() != t.keyfile.empty()) {
    err.fail(std::string("query option ") + (t.certfile.empty() ? "keyfile" : "certfile") +
             " needs " + (t.certfile.empty() ? "certfile" : "keyfile") +
             " too; give both (client certificate and its key) or neither");
  }
}

}  // namespace

std::string Url::masked() const {
  std::string out = tls ? "amqps://" : "amqp://";
  out += encode(user);
  out += ":****@";
  if (host.find(':') != std::string::npos) {
    out += '[' + host + ']';
  } else {
    out += encode(host);
  }
  out += ':';
  out += std::to_string(port);
  out += '/';
  if (vhost != "/") out += encode(vhost);
  return out;
}

Url parse_url(std::string_view text) {
  if (text.size() > kMaxUrlLength) {
    throw ConfigError("AMQP URL of " + std::to_string(text.size()) + " characters: longer than " +
                      std::to_string(kMaxUrlLength) + "; check the configured value");
  }
  const UrlErrors err(text);
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto u = static_cast<unsigned char>(text[i]);
    if (u <= 0x20 || u == 0x7f) {
      err.fail("a space or control character at offset " + std::to_string(i) +
               "; remove it or percent-encode it (a space is %20)");
    }
  }
  const auto sep = text.find("://");
  if (sep == std::string_view::npos) {
    err.fail("no scheme; write it as " + std::string(kUrlShape));
  }
  Url url;
  const std::string scheme = lower(text.substr(0, sep));
  if (scheme == "amqps") {
    url.tls = true;
    url.port = kDefaultTlsPort;
  } else if (scheme != "amqp") {
    err.fail("scheme '" + std::string(text.substr(0, sep)) +
             "' is not supported; use amqp:// or amqps://");
  }
  std::string_view rest = text.substr(sep + 3);
  if (const auto hash = rest.find('#'); hash != std::string_view::npos) {
    err.fail("fragment '" + std::string(rest.substr(hash)) +
             "' is not allowed; remove it, or write '#' as %23");
  }
  std::string_view query;
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  const auto slash = rest.find('/');
  const auto authority = rest.substr(0, slash);
  const auto path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  const auto at = authority.rfind('@');
  if (at != std::string_view::npos) parse_userinfo(authority.substr(0, at), url, err);
  parse_hostport(at == std::string_view::npos ? authority : authority.substr(at + 1), url, err);
  parse_vhost(path, url, err);
  parse_query(query, url, err);
  return url;
}

std::string mask_url(std::string_view text) {
  const auto sep = text.find("://");
  const std::size_t start = sep == std::string_view::npos ? 0 : sep + 3;
  const auto q = text.find('?', start);
  const auto before_query = text.substr(0, q);
  const auto at = before_query.rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(text);
  const auto colon = text.find(':', start);
  if (colon == std::string_view::npos || colon > at) return std::string(text);
  std::string out(text.substr(0, colon + 1));
  out += "****";
  out += text.substr(at);
  return out;
}

}  // namespace pgcqrs::amqp
