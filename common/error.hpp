// Error kinds, classified by what the caller must do about them, not by where they come from.
#pragma once

#include <stdexcept>
#include <string>

namespace pgcqrs {

// Base of every pgcqrs error. `what()` reads `<what> <which>: <cause>`.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Transient: the operation may succeed later. Back off, reconnect, try again.
class TransientError : public Error {
 public:
  using Error::Error;
};

// Permanent for this one message or input line: retry later / dead-letter it, keep serving.
class MessageError : public Error {
 public:
  using Error::Error;
};

// Configuration or usage is wrong: stop with exit code 2, naming the key, the value and the fix.
class ConfigError : public Error {
 public:
  using Error::Error;
};

// A command-level failure reported to the operator as django-cqrs's CommandError (exit 1).
class CommandError : public Error {
 public:
  using Error::Error;
};

// Rethrow `e` as the same kind with `context` prefixed: "<context>: <original message>".
[[noreturn]] void rethrow_with_context(const std::exception& e, const std::string& context);

// Exit code for an exception that reached main(): config 2, command 1, transient 75, bug 70.
int exit_code_for(const std::exception& e) noexcept;

}  // namespace pgcqrs
