// The progress line shows what an operator needs: done/total, percentage, rate and ETA.
#include "common/progress.hpp"

#include <cstdio>
#include <string>

#include <doctest/doctest.h>

using pgcqrs::group_thousands;
using pgcqrs::Progress;

TEST_CASE("thousands are grouped with commas") {
  CHECK(group_thousands(0) == "0");
  CHECK(group_thousands(999) == "999");
  CHECK(group_thousands(1000) == "1,000");
  CHECK(group_thousands(123456) == "123,456");
  CHECK(group_thousands(1234567) == "1,234,567");
  CHECK(group_thousands(18446744073709551615ULL) == "18,446,744,073,709,551,615");
}

TEST_CASE("a progress line with a known total shows percentage, rate and ETA") {
  CHECK(Progress::format("Dumping author", 250000, 1000000, 5.0) ==
        "Dumping author: 250,000/1,000,000 (25.0%)  50,000/s  ETA 0:00:15");
}

TEST_CASE("an unknown total shows only count and rate") {
  CHECK(Progress::format("Loading", 3000, 0, 2.0) == "Loading: 3,000  1,500/s");
}

TEST_CASE("no ETA when complete or before any rate is known") {
  CHECK(Progress::format("Sync", 10, 10, 1.0) == "Sync: 10/10 (100.0%)  10/s");
  CHECK(Progress::format("Sync", 0, 10, 0.0) == "Sync: 0/10 (0.0%)  0/s");
}

TEST_CASE("long ETAs read as hours:minutes:seconds") {
  CHECK(Progress::format("Diff", 1, 7201, 1.0) == "Diff: 1/7,201 (0.0%)  1/s  ETA 2:00:00");
}

TEST_CASE("the final line gives the count, the time and the rate") {
  CHECK(Progress::format_final("Dumping author", 1000000, 20.0) ==
        "Dumping author: 1,000,000 done in 20.0 s (50,000/s)");
}

TEST_CASE("live on a terminal, plain lines only when asked for, else silent") {
  CHECK(Progress::choose_mode(false, true) == Progress::Mode::kLive);
  CHECK(Progress::choose_mode(true, true) == Progress::Mode::kLive);
  CHECK(Progress::choose_mode(true, false) == Progress::Mode::kLines);
  CHECK(Progress::choose_mode(false, false) == Progress::Mode::kSilent);
}

TEST_CASE("with --progress on a file, the final line is written once") {
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  {
    Progress p("Loading", 4, true, f);
    CHECK(p.mode() == Progress::Mode::kLines);
    p.add(2);
    p.add(2);
    CHECK(p.done() == 4);
    p.finish();
    p.finish();
  }
  std::rewind(f);
  char buf[256] = {};
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  const std::string text(buf, n);
  CHECK(text.rfind("Loading: 4 done in ", 0) == 0);
  CHECK(text.find('\n') == text.size() - 1);
}
