// TLS options of amqps:// URLs applied to rabbitmq-c's OpenSSL socket (SNI via OpenSSL itself).
#include "common/amqp/tls.hpp"

#include <dlfcn.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <string>

#include <amqp_ssl_socket.h>

#include "common/error.hpp"

namespace pgcqrs::amqp::detail {
namespace {

// rabbitmq-c links OpenSSL but pgcqrs does not: the few OpenSSL calls rabbitmq-c has no API
// for are looked up in the already loaded libssl/libcrypto.
template <class Fn>
Fn* openssl_symbol(const char* name) {
  // POSIX guarantees that a data pointer from dlsym converts to a function pointer
  return reinterpret_cast<Fn*>(::dlsym(RTLD_DEFAULT, name));
}

struct OpenSsl {
  decltype(&SSL_CTX_set_default_verify_paths) set_default_verify_paths =
      openssl_symbol<decltype(SSL_CTX_set_default_verify_paths)>(
          "SSL_CTX_set_default_verify_paths");
  decltype(&SSL_CTX_get0_param) get0_param =
      openssl_symbol<decltype(SSL_CTX_get0_param)>("SSL_CTX_get0_param");
  decltype(&X509_VERIFY_PARAM_set1_host) set1_host =
      openssl_symbol<decltype(X509_VERIFY_PARAM_set1_host)>("X509_VERIFY_PARAM_set1_host");
  decltype(&SSL_CTX_set_info_callback) set_info_callback =
      openssl_symbol<decltype(SSL_CTX_set_info_callback)>("SSL_CTX_set_info_callback");
  decltype(&SSL_ctrl) ctrl = openssl_symbol<decltype(SSL_ctrl)>("SSL_ctrl");
};

const OpenSsl& openssl() {
  static const OpenSsl fns;
  return fns;
}

// The SNI override of the handshake running on this thread (set by SniScope).
struct SniOverride {
  bool active = false;
  const char* name = nullptr;  // nullptr: send no SNI
};
thread_local SniOverride t_sni;

extern "C" void on_tls_info(const SSL* ssl, int where, int /*ret*/) {
  if ((where & SSL_CB_HANDSHAKE_START) == 0 || !t_sni.active) return;
  // the ClientHello is built after this callback: replace the host name rabbitmq-c set
  openssl().ctrl(const_cast<SSL*>(ssl), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(t_sni.name));
}

[[noreturn]] void fail(const Url& url, const std::string& detail) {
  throw ConfigError("AMQP URL '" + url.masked() + "': " + detail);
}

}  // namespace

void configure_tls(amqp_socket_t* socket, const Url& url) {
  const TlsOptions& t = url.tls_options;
  auto* ctx = static_cast<SSL_CTX*>(amqp_ssl_socket_get_context(socket));
  const OpenSsl& ssl = openssl();
  if (!t.cacertfile.empty()) {
    if (amqp_ssl_socket_set_cacert(socket, t.cacertfile.c_str()) != AMQP_STATUS_OK) {
      fail(url, "cacertfile '" + t.cacertfile +
                    "' cannot be loaded; give a readable PEM file of CA certificates");
    }
  } else if (t.verify == Verify::kPeer) {
    if (ctx == nullptr || ssl.set_default_verify_paths == nullptr ||
        ssl.set_default_verify_paths(ctx) != 1) {
      fail(url, "the system's CA certificates cannot be loaded; give cacertfile=<PEM file>");
    }
  }
  if (!t.certfile.empty()) {
    if (amqp_ssl_socket_set_key(socket, t.certfile.c_str(), t.keyfile.c_str()) != AMQP_STATUS_OK) {
      fail(url, "certfile '" + t.certfile + "' / keyfile '" + t.keyfile +
                    "' cannot be loaded; give a PEM certificate and its unencrypted PEM key");
    }
  }
  const bool verify = t.verify == Verify::kPeer;
  amqp_ssl_socket_set_verify_peer(socket, verify ? 1 : 0);
  const std::string& sni = t.server_name_indication;
  const bool override_sni = !sni.empty() && sni != url.host;
  // rabbitmq-c checks the certificate against the connect host: with another SNI name, let
  // OpenSSL check it against that name as part of the chain verification instead
  amqp_ssl_socket_set_verify_hostname(socket, verify && !override_sni ? 1 : 0);
  if (!override_sni) return;
  if (ctx == nullptr || ssl.set_info_callback == nullptr || ssl.ctrl == nullptr ||
      ssl.get0_param == nullptr || ssl.set1_host == nullptr) {
    fail(url,
         "server_name_indication needs OpenSSL functions not found in this process; "
         "leave the option out");
  }
  if (verify && sni != "disable" && ssl.set1_host(ssl.get0_param(ctx), sni.c_str(), 0) != 1) {
    fail(url, "server_name_indication '" + sni + "' is not a usable host name");
  }
  ssl.set_info_callback(ctx, on_tls_info);
}

SniScope::SniScope(const Url& url) noexcept {
  const std::string& sni = url.tls_options.server_name_indication;
  t_sni = {};
  if (!url.tls || sni.empty() || sni == url.host) return;
  t_sni.active = true;
  t_sni.name = sni == "disable" ? nullptr : sni.c_str();
}

SniScope::~SniScope() {
  t_sni = {};
}

}  // namespace pgcqrs::amqp::detail
