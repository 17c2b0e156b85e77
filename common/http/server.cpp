// /metrics, /healthz and /readyz over cpp-httplib, served from one background thread.
#include "common/http/server.hpp"

#include <sys/socket.h>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "common/error.hpp"

namespace pgcqrs::http {

OpsServer::OpsServer(const Registry& registry, std::function<Health()> liveness,
                     std::function<Health()> readiness)
    : registry_(registry), liveness_(std::move(liveness)), readiness_(std::move(readiness)) {}

OpsServer::~OpsServer() {
  stop();
}

std::uint16_t OpsServer::start(const std::string& host, std::uint16_t port) {
  server_ = std::make_unique<httplib::Server>();
  server_->new_task_queue = [] { return new httplib::ThreadPool(2); };
  // httplib's default also sets SO_REUSEPORT, which would let two processes share the port
  // silently (and split the scrapes between them): keep only SO_REUSEADDR.
  server_->set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry_.render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  auto health = [](const std::function<Health()>& check) {
    return [&check](const httplib::Request&, httplib::Response& res) {
      const Health h = check ? check() : Health{};
      res.status = h.ok ? 200 : 503;
      res.set_content((h.ok ? "ok\n" : "unhealthy\n") + h.detail, "text/plain");
    };
  };
  server_->Get("/healthz", health(liveness_));
  server_->Get("/readyz", health(readiness_));

  int bound = port;
  if (port == 0) {
    bound = server_->bind_to_any_port(host);
  } else if (!server_->bind_to_port(host, port)) {
    bound = -1;
  }
  if (bound <= 0) {
    server_.reset();
    throw ConfigError("listen on " + host + ":" + std::to_string(port) +
                      " for /metrics: cannot bind (port in use or address not local); set "
                      "http_port to a free port, or 0 to turn the endpoint off");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  spdlog::info("serving /metrics, /healthz, /readyz on http://{}:{}", host, bound);
  return static_cast<std::uint16_t>(bound);
}

void OpsServer::stop() noexcept {
  try {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
  } catch (const std::exception& e) {
    spdlog::error("stop /metrics server: {}", e.what());
  }
}

}  // namespace pgcqrs::http
