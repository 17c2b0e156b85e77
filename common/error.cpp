// Error classification helpers: context on rethrow, and the exit code of each kind.
#include "common/error.hpp"

#include "common/exit_codes.hpp"

namespace pgcqrs {

void rethrow_with_context(const std::exception& e, const std::string& context) {
  const std::string msg = context + ": " + e.what();
  if (dynamic_cast<const ConfigError*>(&e)) throw ConfigError(msg);
  if (dynamic_cast<const MessageError*>(&e)) throw MessageError(msg);
  if (dynamic_cast<const TransientError*>(&e)) throw TransientError(msg);
  if (dynamic_cast<const CommandError*>(&e)) throw CommandError(msg);
  throw Error(msg);
}

int exit_code_for(const std::exception& e) noexcept {
  if (dynamic_cast<const ConfigError*>(&e)) return exit_code::kUsage;
  if (dynamic_cast<const CommandError*>(&e)) return exit_code::kFailure;
  if (dynamic_cast<const MessageError*>(&e)) return exit_code::kFailure;
  if (dynamic_cast<const TransientError*>(&e)) return exit_code::kTempFail;
  if (dynamic_cast<const Error*>(&e)) return exit_code::kFailure;
  return exit_code::kSoftware;
}

}  // namespace pgcqrs
