// Session: connect with a masked-URL error, notices to the log, statements re-prepared on
// reconnect.
#include "common/pg/session.hpp"

#include <stdexcept>
#include <utility>

#include <spdlog/spdlog.h>

#include "common/error.hpp"
#include "common/pg/url.hpp"

namespace pgcqrs::pg {
namespace {

// Sends the server's NOTICE / WARNING messages (and libpqxx's own) to the log.
class NoticeLogger final : public pqxx::errorhandler {
 public:
  NoticeLogger(pqxx::connection_base& conn, const std::string& masked_url)
      : pqxx::errorhandler(conn), masked_url_(masked_url) {}

  bool operator()(const char msg[]) noexcept override {
    try {
      const std::string text = one_line(msg);
      if (text.rfind("WARNING:", 0) == 0) {
        spdlog::warn("database {}: {}", masked_url_, text);
      } else {
        spdlog::debug("database {}: {}", masked_url_, text);
      }
    } catch (...) {  // NOLINT(bugprone-empty-catch): a notice must never break the caller
    }
    return false;  // handled: no older handler needs it
  }

 private:
  std::string masked_url_;
};

}  // namespace

struct Session::Connection {
  Connection(const std::string& conninfo, const std::string& masked_url)
      : conn(conninfo), notices(conn, masked_url) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    // libpqxx 6.4 would otherwise reconnect behind our back at the next BEGIN, losing session
    // state and our chance to log the reconnect (the API is deprecated because libpqxx 7
    // removed reactivation altogether, which is the behaviour we want).
    conn.inhibit_reactivation(true);
#pragma GCC diagnostic pop
  }

  pqxx::connection conn;
  NoticeLogger notices;  // declared after conn: unregistered before conn closes
};

Session::Session(std::string url, std::string application_name)
    : url_(std::move(url)),
      masked_url_(mask_url(url_)),
      application_name_(std::move(application_name)) {
  reconnect();
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

pqxx::connection& Session::conn() {
  if (!conn_) throw TransientError("database " + masked_url_ + ": not connected");
  return conn_->conn;
}

void Session::prepare(const std::string& name, const std::string& sql) {
  if (name.empty()) throw std::invalid_argument("prepare statement: the name must not be empty");
  const auto [it, inserted] = statements_.try_emplace(name, sql);
  if (!inserted && it->second != sql) {
    throw std::invalid_argument("prepare statement '" + name +
                                "': already prepared with different SQL");
  }
  if (conn_) conn_->conn.prepare(name, sql);
}

void Session::reconnect() {
  if (url_.empty()) throw std::logic_error("reconnect of a moved-from pg::Session");
  conn_.reset();  // the old connection first: it holds a server slot
  const std::string conninfo = build_conninfo(url_, application_name_);
  try {
    conn_ = std::make_unique<Connection>(conninfo, masked_url_);
  } catch (const pqxx::failure& e) {
    throw TransientError("connect to " + masked_url_ + ": " + redact(one_line(e.what()), url_));
  }
  for (const auto& [name, sql] : statements_)
    conn_->conn.prepare(name, sql);
  if (!connected_before_) {
    connected_before_ = true;
    spdlog::debug("connected to {} (backend pid {})", masked_url_, backend_pid());
  } else {
    spdlog::info("reconnected to {} (backend pid {}, {} prepared statements)", masked_url_,
                 backend_pid(), statements_.size());
  }
}

void Session::disconnect() noexcept {
  if (conn_) conn_->conn.disconnect();
}

bool Session::is_open() const noexcept {
  return conn_ && conn_->conn.is_open();
}

int Session::backend_pid() const noexcept {
  return conn_ ? conn_->conn.backendpid() : 0;
}

}  // namespace pgcqrs::pg
