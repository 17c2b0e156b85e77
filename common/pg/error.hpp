// PostgreSQL error kinds beyond common/error.hpp, and how a failure is classified for retrying.
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace pgcqrs::pg {

// The outcome of a COMMIT is unknown: the connection was lost while the server was finishing
// it (libpqxx's in_doubt_error, SQLSTATE 40003 statement_completion_unknown). The transaction
// may or may not have been applied. Never retried automatically: before doing the work again
// the caller must find out what happened (re-read the state it wrote) or rely on the work
// being idempotent.
class InDoubtError : public Error {
 public:
  using Error::Error;
};

// A statement failed for a reason that trying again will not fix: constraint violation,
// syntax error, missing table, bad data... The message reads `<what>: <server's message>`;
// sqlstate() lets the caller tell bad input (class 22, 23: MessageError) from a bug.
class SqlError : public Error {
 public:
  SqlError(const std::string& message, std::string sqlstate);
  [[nodiscard]] const std::string& sqlstate() const noexcept { return sqlstate_; }

 private:
  std::string sqlstate_;
};

// For one-line reports of a failed statement (resync commands): the server's first message line
// without libpq's "ERROR:  " prefix.
std::string server_message(const std::exception& e);
// The same with the DETAIL and HINT lines joined by "; " (LINE, caret and CONTEXT dropped).
std::string server_message_detailed(const std::exception& e);

// Pointers to bind text parameters through libpq: nullptr for SQL NULL. Valid while `params` is.
std::vector<const char*> param_pointers(const std::vector<std::optional<std::string>>& params);

// What a retry loop does about a failure.
enum class FailureKind {
  kReconnect,  // the connection is gone: back off, reconnect, try again
  kRetry,      // transient on a live connection: back off, try again
  kInDoubt,    // the commit may have happened: stop, report InDoubtError
  kPermanent,  // retrying cannot help: stop, report it
};

// By SQLSTATE:
//   kRetry      40000 transaction_rollback, 40001 serialization_failure, 40P01 deadlock_detected,
//               55P03 lock_not_available (lock_timeout / NOWAIT), class 53 insufficient
//               resources (disk full, out of memory) but 53300
//   kReconnect  class 08 connection exception, 53300 too_many_connections, 57P01
//               admin_shutdown (pg_terminate_backend, fast shutdown), 57P02 crash_shutdown,
//               57P03 cannot_connect_now (starting up / shutting down), 25006
//               read_only_sql_transaction (we reached a standby, e.g. during a failover)
//   kInDoubt    40003 statement_completion_unknown
//   kPermanent  everything else, notably 57014 query_canceled (a statement_timeout would
//               recur; a cancel is deliberate) and 40002 (deferred constraint at COMMIT)
FailureKind classify_sqlstate(std::string_view sqlstate) noexcept;

// By exception type: pqxx::in_doubt_error and statement_completion_unknown -> kInDoubt;
// pqxx::broken_connection -> kReconnect; pqxx::transaction_rollback -> kRetry;
// pqxx::sql_error and SqlError -> classify_sqlstate(); pgcqrs::TransientError -> kRetry;
// anything else (MessageError, ConfigError, usage_error, logic errors...) -> kPermanent.
FailureKind classify(const std::exception& e) noexcept;

}  // namespace pgcqrs::pg
