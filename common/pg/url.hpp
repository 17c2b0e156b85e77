// libpq connection strings: masking passwords for logs, building the conninfo we connect with.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace pgcqrs::pg {

// Connect timeout added when neither the URL nor PGCONNECT_TIMEOUT sets one, so that a
// black-holed host fails (and is retried) instead of hanging in connect() for minutes.
inline constexpr std::chrono::seconds kDefaultConnectTimeout{10};

// `url` with its secrets replaced by `****`, in the form it was written in:
//   postgresql://user:****@host:5432/db?sslpassword=****
//   host=h user=u password=**** dbname=d
// Both URI schemes libpq knows (postgresql://, postgres://) and key=value strings are
// understood; secrets are `password` and `sslpassword` (keys compared case-insensitively,
// percent-decoded in URIs). Malformed input is masked conservatively: an unterminated quoted
// password hides the rest of the string. Never throws but for std::bad_alloc.
std::string mask_url(std::string_view url);

// `message` with the secrets of `url` replaced by `****` (libpq echoes some tokens of a
// malformed URL, e.g. `invalid percent-encoded token: "p%zz"`).
std::string redact(std::string_view message, std::string_view url);

// The libpq conninfo (key='value' ...) to connect with: every option `url` sets, plus
// `fallback_application_name` (used unless the URL or PGAPPNAME names the application) and
// `connect_timeout` (kDefaultConnectTimeout unless the URL or PGCONNECT_TIMEOUT sets one).
// Throws ConfigError `database url '<masked>': <libpq's reason>` when libpq cannot parse it.
// The result contains the password: never log it.
std::string build_conninfo(std::string_view url, std::string_view application_name);

// libpq's multi-line message as one line: lines trimmed, `ERROR:  x` -> `ERROR: x`, blank lines
// and caret (`^`) lines dropped, the rest joined with "; ".
std::string one_line(std::string_view message);

}  // namespace pgcqrs::pg
