// Process-wide logging setup: level and format (text or one JSON object per line) on stderr.
#pragma once

#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace pgcqrs {

enum class LogFormat { kText, kJson };

// Parses "text"/"json"; throws ConfigError naming the flag otherwise.
LogFormat parse_log_format(std::string_view s);
// Parses trace|debug|info|warn|error|critical|off; throws ConfigError otherwise.
spdlog::level::level_enum parse_log_level(std::string_view s);

// Installs the default logger (stderr, thread-safe). Safe to call more than once.
void init_logging(spdlog::level::level_enum level, LogFormat format);

// Escapes `s` as the body of a JSON string (no surrounding quotes).
std::string json_escape(std::string_view s);

}  // namespace pgcqrs
