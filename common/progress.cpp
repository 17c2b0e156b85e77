#include "common/progress.hpp"

#include <cmath>
#include <unistd.h>
#include <utility>

#include <fmt/format.h>

namespace pgcqrs {

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kLiveInterval = std::chrono::milliseconds(200);
constexpr auto kLinesInterval = std::chrono::seconds(5);

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string clock_text(double seconds) {
  const auto s = static_cast<std::uint64_t>(std::llround(seconds));
  return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
}

}  // namespace

std::string group_thousands(std::uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  out.reserve(digits.size() + digits.size() / 3);
  const std::size_t lead = digits.size() % 3 == 0 ? 3 : digits.size() % 3;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i >= lead && (i - lead) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

Progress::Mode Progress::choose_mode(bool requested, bool is_terminal) noexcept {
  if (is_terminal) return Mode::kLive;
  return requested ? Mode::kLines : Mode::kSilent;
}

std::string Progress::format(const std::string& label, std::uint64_t done, std::uint64_t total,
                             double elapsed_seconds) {
  std::string line = label;
  line += ": ";
  line += group_thousands(done);
  const double rate = elapsed_seconds > 0 ? static_cast<double>(done) / elapsed_seconds : 0.0;
  if (total > 0) {
    line += "/";
    line += group_thousands(total);
    line +=
        fmt::format(" ({:.1f}%)", 100.0 * static_cast<double>(done) / static_cast<double>(total));
  }
  line += "  ";
  line += group_thousands(static_cast<std::uint64_t>(rate));
  line += "/s";
  if (total > 0 && done < total && rate > 0) {
    line += "  ETA ";
    line += clock_text(static_cast<double>(total - done) / rate);
  }
  return line;
}

std::string Progress::format_final(const std::string& label, std::uint64_t done,
                                   double elapsed_seconds) {
  const double rate = elapsed_seconds > 0 ? static_cast<double>(done) / elapsed_seconds : 0.0;
  return fmt::format("{}: {} done in {:.1f} s ({}/s)", label, group_thousands(done),
                     elapsed_seconds, group_thousands(static_cast<std::uint64_t>(rate)));
}

Progress::Progress(std::string label, std::uint64_t total, bool requested, std::FILE* out)
    : label_(std::move(label)),
      total_(total),
      out_(out),
      mode_(choose_mode(requested, out != nullptr && ::isatty(::fileno(out)) == 1)),
      start_(Clock::now()),
      last_draw_(start_) {
  if (out_ == nullptr) mode_ = Mode::kSilent;
}

Progress::~Progress() {
  try {
    finish();
  } catch (...) {  // NOLINT(bugprone-empty-catch): a progress line must never throw out of a dtor
  }
}

void Progress::add(std::uint64_t n) {
  done_ += n;
  if (mode_ == Mode::kSilent) return;
  const auto now = Clock::now();
  const auto interval = mode_ == Mode::kLive
                            ? std::chrono::duration_cast<Clock::duration>(kLiveInterval)
                            : std::chrono::duration_cast<Clock::duration>(kLinesInterval);
  if (now - last_draw_ < interval) return;
  last_draw_ = now;
  draw(false);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (mode_ == Mode::kSilent) return;
  draw(true);
}

void Progress::draw(bool final) {
  const double elapsed = seconds_since(start_);
  const std::string text =
      final ? format_final(label_, done_, elapsed) : format(label_, done_, total_, elapsed);
  if (mode_ == Mode::kLive) {
    // \r and erase-to-end-of-line keep one line; the final line ends it.
    std::fprintf(out_, "\r%s\x1b[K%s", text.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(out_, "%s\n", text.c_str());
  }
  std::fflush(out_);
}

}  // namespace pgcqrs
