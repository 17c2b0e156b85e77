// Process exit codes of every pgcqrs command, in one place (sysexits.h numbering where it fits).
#pragma once

namespace pgcqrs::exit_code {

inline constexpr int kOk = 0;
inline constexpr int kFailure = 1;       // the command ran and reports a failure (CommandError)
inline constexpr int kUsage = 2;         // bad flags, bad configuration, not implemented yet
inline constexpr int kUnavailable = 69;  // a server (database, broker) could not be reached
inline constexpr int kSoftware = 70;     // a bug in pgcqrs: please report it
inline constexpr int kTempFail = 75;     // transient failure; running again may succeed

}  // namespace pgcqrs::exit_code
