// AMQP URLs (amqp:// and amqps://, RabbitMQ URI spec): parsing into settings, masking for logs.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace pgcqrs::amqp {

inline constexpr std::uint16_t kDefaultPort = 5672;
inline constexpr std::uint16_t kDefaultTlsPort = 5671;
inline constexpr std::chrono::seconds kDefaultHeartbeat{30};
inline constexpr std::chrono::milliseconds kDefaultConnectionTimeout{10'000};
inline constexpr std::uint32_t kDefaultFrameMax = 131'072;

// How an amqps:// connection checks the broker's certificate.
enum class Verify { kPeer, kNone };

// TLS settings of an amqps:// URL (query options cacertfile, certfile, keyfile, verify,
// server_name_indication). Empty strings mean "not given".
struct TlsOptions {
  std::string cacertfile;  // PEM CA bundle; without it the system's default CA paths are used
  std::string certfile;    // client certificate (PEM), together with keyfile
  std::string keyfile;     // client private key (PEM, not password-protected)
  Verify verify = Verify::kPeer;
  // The name sent as SNI and checked against the certificate; empty = the URL's host;
  // "disable" = send no SNI and skip the host name check (the chain is still verified).
  std::string server_name_indication;

  bool operator==(const TlsOptions&) const = default;
};

// Everything needed to open one AMQP connection. Defaults are those of an empty
// `amqp://` URL: guest:guest@localhost:5672, vhost "/".
struct Url {
  bool tls = false;
  std::string user = "guest";
  std::string password = "guest";
  std::string host = "localhost";
  std::uint16_t port = kDefaultPort;
  std::string vhost = "/";
  std::chrono::seconds heartbeat = kDefaultHeartbeat;  // 0 disables heartbeats
  std::chrono::milliseconds connection_timeout = kDefaultConnectionTimeout;
  std::uint16_t channel_max = 0;  // 0 = no limit requested (the broker's, usually 2047)
  std::uint32_t frame_max = kDefaultFrameMax;
  TlsOptions tls_options;

  // Canonical form with the password replaced by `****`, for logs and error messages:
  // amqp://guest:****@127.0.0.1:5672/ (vhost "/" is written as the bare "/" path,
  // any other vhost percent-encoded; query options are left out).
  [[nodiscard]] std::string masked() const;

  bool operator==(const Url&) const = default;
};

// Parses an amqp:// or amqps:// URL:
//   amqp[s]://[user[:password]@]host[:port][/vhost][?option=value&...]
// User, password, host, vhost and option values are percent-decoded. No path and the path
// "/" both mean vhost "/" (as pika, django-cqrs's client, reads them); "/%2f" is "/" too.
// amqps defaults to port 5671. An IPv6 host is written in brackets: amqp://[::1]:5672/.
// Query options: heartbeat (s), connection_timeout (ms), channel_max, frame_max, and for
// amqps only cacertfile, certfile, keyfile, verify=verify_peer|verify_none,
// server_name_indication=<host>|disable.
// Throws ConfigError `AMQP URL '<masked>': <which part> <what is wrong>; <the fix>`.
Url parse_url(std::string_view text);

// `text` as written, with the password (between "user:" and "@") replaced by `****`.
// Works on malformed URLs too (used in parse errors); never throws but for std::bad_alloc.
std::string mask_url(std::string_view text);

}  // namespace pgcqrs::amqp
