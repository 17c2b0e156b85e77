// The django-cqrs message (Event) and its wire body: strict decoding, byte-compatible encoding.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/json.hpp"
#include "common/timestamp.hpp"

namespace pgcqrs {

enum class Signal { kSave, kDelete, kSync };

// "SAVE", "DELETE" or "SYNC".
std::string_view to_string(Signal s) noexcept;
// The inverse of to_string(); throws MessageError
// `signal_type 'FOO': unknown; expected SAVE, DELETE or SYNC`.
Signal parse_signal(std::string_view text);

// One django-cqrs message. Numbers inside the JSON members stay exact (see json.hpp).
struct Event {
  Signal signal = Signal::kSave;
  std::string cqrs_id;
  json::Json instance_data = json::Json::object();  // object
  json::Json instance_pk;                           // integer, string or null
  json::Json previous_data;                         // object or null
  json::Json correlation_id;                        // any JSON; null when absent
  std::int64_t retries = 0;
  std::optional<Timestamp> expires;  // nullopt = never expires
  json::Json meta;                   // any JSON; null when absent

  // instance_data.cqrs_revision when it is an integer that fits int64.
  [[nodiscard]] std::optional<std::int64_t> revision() const;
  // instance_data.cqrs_updated when it is a string.
  [[nodiscard]] std::optional<std::string_view> updated() const;
  // django-cqrs's rule: expired when expires <= now.
  [[nodiscard]] bool expired(Timestamp now) const noexcept;
  // The primary key for logs and SQL parameters: `42`, `abc` (a string unquoted), `null`.
  [[nodiscard]] std::string pk_text() const;
};

struct DecodeOptions {
  // The consuming service's CQRS_MESSAGE_TTL, applied when a body has no `expires` key.
  std::chrono::seconds default_ttl{86400};
  Timestamp now = now_utc();
  json::ParseLimits limits;
};

// Decodes a message body as django-cqrs's consumer does, but strictly: required keys
// `signal_type` (SAVE|DELETE|SYNC), `cqrs_id` (non-empty string), `instance_data` (object) and
// `instance_pk` (integer, string or null); optional `previous_data` (object|null),
// `correlation_id` (any), `retries` (missing/null -> 0, else a non-negative integer), `expires`
// (missing -> now + default_ttl, null -> never, else a timestamp with a UTC offset) and `meta`
// (any). Unknown keys are ignored. Throws MessageError naming the field and the bad value: the
// value as JSON (`retries '"3"': not a non-negative integer`), or for a string field the
// string's content (`signal_type 'FOO': unknown; ...`), escaped and cut to 80 characters.
Event decode_event(std::string_view body, const DecodeOptions& options = {});

// The compact body in django-cqrs's key order: signal_type, cqrs_id, instance_data,
// previous_data, instance_pk, correlation_id, retries, expires (format_expires or null), meta.
// A body decoded from django-cqrs re-encodes byte for byte (its `expires` has no microseconds).
std::string encode_event(const Event& e);

// One instance_data line of a cqrs_bulk_dump file (not line 1, the cqrs_id). Must be a JSON
// object; throws MessageError `dump line: ...` otherwise.
json::Json parse_dump_line(std::string_view line, const json::ParseLimits& limits = {});

}  // namespace pgcqrs
