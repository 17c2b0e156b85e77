// One PostgreSQL connection with its named statements, reconnected explicitly, never silently.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/pg/pqxx.hpp"

namespace pgcqrs::pg {

// A connection to `url` (postgresql:// or postgres:// URI, or key=value string: anything libpq
// accepts) that remembers its prepared statements across reconnects. Move-only.
//
//   Session db(url, "pgcqrs master");
//   db.prepare("claim", kClaimBatch);
//   pqxx::work txn(db.conn());
//   txn.exec_prepared("claim", 500);
//
// libpqxx 6.4 would quietly re-open a broken connection at the next BEGIN; a Session turns
// that off, so a lost connection always surfaces as pqxx::broken_connection and reconnecting
// is a decision (with_retry() makes it) that is logged.
class Session {
 public:
  // Connects. `application_name` is what pg_stat_activity shows unless the URL (or PGAPPNAME)
  // names one. Throws ConfigError for a URL libpq cannot parse and TransientError
  // `connect to <masked url>: <libpq's reason>` when the server cannot be reached or refuses.
  Session(std::string url, std::string application_name);
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // The connection, for transactions. Throws TransientError when there is none (the last
  // reconnect() failed). Do not keep the reference across reconnect().
  pqxx::connection& conn();

  // Defines a named statement on this connection and on every later one. libpqxx sends it to
  // the server at its first use, so an SQL error shows up in the first exec_prepared().
  // Defining a name again with the same SQL does nothing; with other SQL (or an empty name)
  // throws std::invalid_argument (a bug).
  void prepare(const std::string& name, const std::string& sql);

  // Closes the connection (if any) and opens a new one with every statement prepare()d so far.
  // No transaction may be open on the old connection. Throws like the constructor; the
  // session then has no connection until the next success.
  void reconnect();

  // Closes the connection, keeping the statements; the next use needs reconnect().
  void disconnect() noexcept;

  // True while the connection is up as far as libpq knows (it learns of a loss on next use).
  [[nodiscard]] bool is_open() const noexcept;
  // Server process id of the connection, 0 without one.
  [[nodiscard]] int backend_pid() const noexcept;
  // The URL with its password masked, for messages and logs.
  [[nodiscard]] const std::string& masked_url() const noexcept { return masked_url_; }
  [[nodiscard]] const std::string& application_name() const noexcept { return application_name_; }

 private:
  struct Connection;

  std::string url_;  // holds the password: never log it
  std::string masked_url_;
  std::string application_name_;
  std::map<std::string, std::string, std::less<>> statements_;
  std::unique_ptr<Connection> conn_;
  bool connected_before_ = false;  // reconnects are logged at info, the first connect at debug
};

}  // namespace pgcqrs::pg
