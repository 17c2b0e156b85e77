// Internal: TLS setup of an amqps:// socket (CA, client certificate, verification, SNI).
#pragma once

#include <amqp.h>

#include "common/amqp/url.hpp"

namespace pgcqrs::amqp::detail {

// Applies the TLS options of `url` to a socket made by amqp_ssl_socket_new. Throws ConfigError
// naming the query option when a file cannot be loaded or a feature is unavailable.
void configure_tls(amqp_socket_t* socket, const Url& url);

// rabbitmq-c 0.11 always sends the connect host as SNI and checks the certificate against it.
// While an SniScope lives, the handshakes of sockets configured for a different
// server_name_indication (a name, or "disable") send that name instead (or none). Wrap the
// amqp_socket_open call in one; `url` must outlive the scope.
class SniScope {
 public:
  explicit SniScope(const Url& url) noexcept;
  SniScope(const SniScope&) = delete;
  SniScope& operator=(const SniScope&) = delete;
  ~SniScope();
};

}  // namespace pgcqrs::amqp::detail
