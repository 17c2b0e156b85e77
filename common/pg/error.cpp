// Classification of libpqxx and pgcqrs exceptions into reconnect / retry / in doubt / permanent.
#include "common/pg/error.hpp"

#include <cctype>
#include <utility>

#include "common/pg/pqxx.hpp"
#include "common/pg/url.hpp"

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

std::string server_message(const std::exception& e) {
  std::string m = e.what();
  if (m.rfind("ERROR:", 0) == 0) m.erase(0, 6);
  while (!m.empty() && m.front() == ' ')
    m.erase(0, 1);
  const auto nl = m.find('\n');
  if (nl != std::string::npos) m.erase(nl);
  return m;
}

std::string server_message_detailed(const std::exception& e) {
  const auto trim = [](std::string_view v) {
    while (!v.empty() && std::isspace(static_cast<unsigned char>(v.front())))
      v.remove_prefix(1);
    while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back())))
      v.remove_suffix(1);
    return v;
  };
  std::string out;
  std::string_view what = e.what();
  while (!what.empty()) {
    const std::size_t nl = what.find('\n');
    std::string_view line = what.substr(0, nl);
    what.remove_prefix(nl == std::string_view::npos ? what.size() : nl + 1);
    bool keep = false;
    for (const std::string_view prefix : {"ERROR:", "FATAL:", "DETAIL:", "HINT:"}) {
      if (line.substr(0, prefix.size()) == prefix) {
        line.remove_prefix(prefix.size());
        keep = true;
        break;
      }
    }
    line = trim(line);
    if (!keep || line.empty()) continue;  // LINE n:, the caret, CONTEXT: repeat the input
    if (!out.empty()) out += "; ";
    out += line;
  }
  return out.empty() ? one_line(e.what()) : out;
}

std::vector<const char*> param_pointers(const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> p;
  p.reserve(params.size());
  for (const auto& v : params)
    p.push_back(v ? v->c_str() : nullptr);
  return p;
}

}  // namespace pgcqrs::pg
