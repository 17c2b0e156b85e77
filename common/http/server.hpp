// The operations endpoint of long-running processes: /metrics, /healthz, /readyz.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/http/metrics.hpp"

namespace httplib {
class Server;
}

namespace pgcqrs::http {

struct Health {
  bool ok = true;
  std::string detail;  // one line per check, shown in the response body
};

// Serves in a background thread from start() until stop() or destruction.
class OpsServer {
 public:
  OpsServer(const Registry& registry, std::function<Health()> liveness,
            std::function<Health()> readiness);
  ~OpsServer();
  OpsServer(const OpsServer&) = delete;
  OpsServer& operator=(const OpsServer&) = delete;
  OpsServer(OpsServer&&) = delete;
  OpsServer& operator=(OpsServer&&) = delete;

  // Binds host:port (port 0 picks a free port) and returns the bound port. Throws ConfigError
  // naming the address when it cannot bind (in use, not a local address).
  std::uint16_t start(const std::string& host, std::uint16_t port);
  void stop() noexcept;

 private:
  const Registry& registry_;
  std::function<Health()> liveness_;
  std::function<Health()> readiness_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace pgcqrs::http
