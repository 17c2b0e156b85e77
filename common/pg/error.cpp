// Classification of libpqxx and pgcqrs exceptions into reconnect / retry / in doubt / permanent.
#include "common/pg/error.hpp"

#include <utility>

#include "common/pg/pqxx.hpp"

namespace pgcqrs::pg {

SqlError::SqlError(const std::string& message, std::string sqlstate)
    : Error(message), sqlstate_(std::move(sqlstate)) {}

FailureKind classify_sqlstate(std::string_view s) noexcept {
  if (s == "40003") return FailureKind::kInDoubt;
  if (s == "40000" || s == "40001" || s == "40P01" || s == "55P03") return FailureKind::kRetry;
  if (s.substr(0, 2) == "08" || s == "53300" || s == "57P01" || s == "57P02" || s == "57P03" ||
      s == "25006") {
    return FailureKind::kReconnect;
  }
  if (s.size() == 5 && s.substr(0, 2) == "53") return FailureKind::kRetry;
  return FailureKind::kPermanent;
}

FailureKind classify(const std::exception& e) noexcept {
  // Order matters: in_doubt_error and statement_completion_unknown first, so that nothing
  // below (a transaction_rollback) can make them retried.
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) return FailureKind::kInDoubt;
  if (dynamic_cast<const pqxx::statement_completion_unknown*>(&e) != nullptr) {
    return FailureKind::kInDoubt;
  }
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) return FailureKind::kReconnect;
  if (dynamic_cast<const pqxx::transaction_rollback*>(&e) != nullptr) return FailureKind::kRetry;
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    return classify_sqlstate(sql->sqlstate());
  }
  if (const auto* sql = dynamic_cast<const SqlError*>(&e))
    return classify_sqlstate(sql->sqlstate());
  if (dynamic_cast<const TransientError*>(&e) != nullptr) return FailureKind::kRetry;
  return FailureKind::kPermanent;
}

}  // namespace pgcqrs::pg
