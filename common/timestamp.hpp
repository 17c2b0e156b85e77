// UTC timestamps as django-cqrs writes and reads them: ISO 8601 with a required UTC offset.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace pgcqrs {

using Timestamp = std::chrono::sys_time<std::chrono::microseconds>;

// Parses `YYYY-MM-DD[T| ]HH:MM:SS[.f{1,6}]` followed by `Z`, `z`, `±HH:MM`, `±HHMM` or `±HH`,
// and converts it to UTC. Years 0001..9999, real calendar dates (Feb 29 on leap years only),
// hours 00..23, minutes and seconds 00..59, offsets up to ±23:59. Throws MessageError
// `timestamp '<text>': <cause>`, e.g. `timestamp '2024-05-01 12:00:00': no UTC offset`.
Timestamp parse_timestamp(std::string_view text);

// The cause alone (empty when `text` is valid), for callers that name the field themselves.
std::string timestamp_error(std::string_view text);

// Python's str(datetime) of an aware UTC datetime: `YYYY-MM-DD HH:MM:SS[.ffffff]+00:00`, the
// fraction omitted when the microseconds are 0 (django-cqrs's `cqrs_updated`).
std::string format_django(Timestamp t);

// django-cqrs's `expires`: `YYYY-MM-DDTHH:MM:SS+00:00`, microseconds dropped (truncated).
std::string format_expires(Timestamp t);

// The current time at microsecond precision.
Timestamp now_utc();

}  // namespace pgcqrs
