// Progress of a long command (dump, load, sync, diff) on stderr.
//
// On a terminal: one live line, redrawn at most 5 times a second:
//   Dumping author: 123,456/1,000,000 (12.3%)  45,678/s  ETA 0:00:19
// Not a terminal but --progress given: the same text as plain lines, one every 5 seconds, so a
// log collector or `kubectl logs` gets counts without carriage returns.
// Neither: silent (commands print their own django-cqrs summary lines).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace pgcqrs {

class Progress {
 public:
  enum class Mode { kSilent, kLive, kLines };

  // `total` 0 means unknown (no percentage, no ETA). `requested` is the command's --progress.
  Progress(std::string label, std::uint64_t total, bool requested, std::FILE* out = stderr);
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  ~Progress();

  // Counts `n` more items done and redraws when due.
  void add(std::uint64_t n);
  // Prints the final line (rows, seconds, rate) when not silent. Called by the destructor too.
  void finish();

  [[nodiscard]] std::uint64_t done() const noexcept { return done_; }
  [[nodiscard]] Mode mode() const noexcept { return mode_; }

  // How a command decides: live on a terminal, lines when asked for, else silent.
  [[nodiscard]] static Mode choose_mode(bool requested, bool is_terminal) noexcept;

  // The text of one progress line (no "\r", no newline); pure, for tests.
  [[nodiscard]] static std::string format(const std::string& label, std::uint64_t done,
                                          std::uint64_t total, double elapsed_seconds);
  // The final line: "<label>: 1,000,000 done in 21.9 s (45,678/s)".
  [[nodiscard]] static std::string format_final(const std::string& label, std::uint64_t done,
                                                double elapsed_seconds);

 private:
  void draw(bool final);

  std::string label_;
  std::uint64_t total_;
  std::uint64_t done_ = 0;
  std::FILE* out_;
  Mode mode_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

// 1234567 -> "1,234,567".
[[nodiscard]] std::string group_thousands(std::uint64_t n);

}  // namespace pgcqrs
