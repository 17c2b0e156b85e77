// cqrs_bulk_dump without a server: binary COPY decoding, line splicing, SQL shape, messages.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include <doctest/doctest.h>

#include "common/error.hpp"
#include "common/json.hpp"
#include "master/dump.hpp"

using namespace pgcqrs;
using namespace pgcqrs::master;

namespace {

std::string be16(int v) {
  std::string s(2, '\0');
  s[0] = static_cast<char>((v >> 8) & 0xFF);
  s[1] = static_cast<char>(v & 0xFF);
  return s;
}

std::string be32(std::int64_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i)
    s[static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * (3 - i))) & 0xFF);
  return s;
}

std::string header(std::string ext = "") {
  std::string h("PGCOPY\n\377\r\n\0", 11);
  h += be32(0);
  h += be32(static_cast<std::int64_t>(ext.size()));
  h += ext;
  return h;
}

std::string tuple(const std::vector<std::optional<std::string>>& fields) {
  std::string t = be16(static_cast<int>(fields.size()));
  for (const auto& f : fields) {
    if (!f) {
      t += be32(-1);
      continue;
    }
    t += be32(static_cast<std::int64_t>(f->size()));
    t += *f;
  }
  return t;
}

using Decoded = std::vector<std::vector<std::optional<std::string>>>;

// Feeds `stream` in chunks of `chunk` bytes and collects every tuple.
Decoded decode(const std::string& stream, std::size_t chunk) {
  CopyBinaryDecoder d;
  Decoded out;
  CopyBinaryDecoder::Fields f;
  for (std::size_t at = 0; at < stream.size(); at += chunk) {
    d.feed(std::string_view(stream).substr(at, chunk));
    while (d.next(f)) {
      std::vector<std::optional<std::string>> row;
      for (const auto& v : f)
        row.push_back(v ? std::optional<std::string>(std::string(*v)) : std::nullopt);
      out.push_back(std::move(row));
    }
  }
  d.finish();
  return out;
}

// PostgreSQL's json output spelling of compact JSON: `{"a" : 1, "b" : [1, 2]}`.
std::string spaced(std::string_view compact) {
  std::string out;
  bool in_string = false;
  bool escaped = false;
  for (const char c : compact) {
    out.push_back(c);
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') in_string = true;
    if (c == ':') {
      out.pop_back();
      out += " : ";
    }
    if (c == ',') out.push_back(' ');
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("the binary COPY stream decodes whatever the chunk boundaries") {
  const std::string stream = header("xy") + tuple({"1", R"({"id" : 1})"}) +
                             tuple({"22", std::nullopt}) + tuple({"", std::string("a\0b", 3)}) +
                             be16(-1);
  const Decoded expected{
      {"1", R"({"id" : 1})"}, {"22", std::nullopt}, {"", std::string("a\0b", 3)}};
  for (const std::size_t chunk : {std::size_t{1}, std::size_t{2}, std::size_t{7}, stream.size()}) {
    CAPTURE(chunk);
    CHECK(decode(stream, chunk) == expected);
  }
}

TEST_CASE("an empty table is a header and the trailer") {
  CHECK(decode(header() + be16(-1), 3).empty());
}

TEST_CASE("malformed binary COPY streams are refused with the reason") {
  CHECK_THROWS_WITH_AS(decode("PGCOPX\n\377\r\n\0" + be32(0) + be32(0) + be16(-1), 64),
                       "COPY binary stream: no PGCOPY signature", Error);
  CHECK_THROWS_WITH_AS(decode(header() + tuple({"1", "{}"}), 64),
                       "COPY binary stream: ended before its trailer", Error);
  CHECK_THROWS_WITH_AS(decode(header() + tuple({"1", "{}"}).substr(0, 9), 64),
                       "COPY binary stream: ended before its trailer", Error);
  CHECK_THROWS_WITH_AS(decode(header() + be16(1) + be32(-7) + be16(-1), 64),
                       "COPY binary stream: negative field length -7", Error);
  CHECK_THROWS_WITH_AS(decode(header() + be16(-3), 64),
                       "COPY binary stream: negative field count -3", Error);
  CHECK_THROWS_WITH_AS(decode(header() + be16(-1) + "x", 64),
                       "COPY binary stream: data after the trailer", Error);
  std::string critical = header();
  critical[11] = '\x01';
  CHECK_THROWS_WITH_AS(decode(critical + be16(-1), 64),
                       "COPY binary stream: unknown critical header flags", Error);
}

TEST_CASE("a dump line is the compact instance_data the agent publishes") {
  std::string out = "author";
  // as PostgreSQL's json_build_object writes it
  REQUIRE_FALSE(append_dump_line(
      out,
      std::string_view(
          R"({"id" : 3, "cqrs_revision" : 1, "cqrs_updated" : "2026-11-22 02:05:11.120867+00:00", "name" : "a/b Café", "price" : 10.50, "attrs" : {"k": [1, 2.50, null]}})")));
  CHECK(
      out ==
      "author\n"
      R"({"id":3,"cqrs_revision":1,"cqrs_updated":"2026-11-22 02:05:11.120867+00:00","name":"a\/b Caf\u00e9","price":10.50,"attrs":{"k":[1,2.50,null]}})");
}

TEST_CASE("a row whose instance_data is NULL or not JSON is reported, the output untouched") {
  std::string out = "author";
  CHECK(append_dump_line(out, std::nullopt) ==
        std::optional<std::string>("MessageError: instance_data is NULL (the serializer "
                                   "returned NULL)"));
  CHECK(append_dump_line(out, std::string_view(R"({"id" : )")) ==
        std::optional<std::string>("MessageError: instance_data is not valid JSON"));
  CHECK(out == "author");
}

TEST_CASE("the vectors' lines splice to themselves (our line format is django-cqrs's)") {
  for (const char* name : {"author.dump", "product.dump"}) {
    const std::string text = read_file(std::string(PGCQRS_VECTORS_DIR) + "/" + name);
    REQUIRE(!text.empty());
    REQUIRE(text.back() != '\n');
    std::istringstream in(text);
    std::string line;
    std::getline(in, line);
    std::string rebuilt = line;
    while (std::getline(in, line)) {
      // PostgreSQL's json spelling of the same value, then spliced back
      const std::string text_pg = spaced(line);
      REQUIRE(text_pg != line);
      REQUIRE_FALSE(append_dump_line(rebuilt, std::string_view(text_pg)));
    }
    CHECK(rebuilt == text);
  }
}

TEST_CASE("the dump reads every row in one COPY of a sequential scan, filter not applied") {
  RowSql r;
  r.from = R"((SELECT t.* FROM "s"."T" t) n)";
  r.pk = R"(n."Key")";
  r.instance_data = "json_build_object('Key', n.\"Key\")";
  r.is_sync = "coalesce((x > 1), false)";
  CHECK(
      dump_select(r) ==
      R"(SELECT (n."Key")::text, json_build_object('Key', n."Key") FROM (SELECT t.* FROM "s"."T" t) n)");
  CHECK(dump_copy(r) == "COPY (" + dump_select(r) + ") TO STDOUT (FORMAT binary)");
  CHECK(dump_count(r) == R"(SELECT count(*) FROM (SELECT t.* FROM "s"."T" t) n)");
  CHECK(dump_select(r).find("x > 1") == std::string::npos);
}

TEST_CASE("django-cqrs's dump messages") {
  CHECK(processing_message(149, 10000) == "Processing 149 records with batch size 10000");
  CHECK(done_message({148, 149}) == "Done!\n148 instance(s) saved.\n149 instance(s) processed.");
  CHECK(record_failed_message("2", "MessageError: x") ==
        "\nDump record failed for pk=2: MessageError: x");
}

TEST_CASE("AtomicFile shows the target name only after commit") {
  const auto dir =
      std::filesystem::temp_directory_path() / ("pgcqrs_dump_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string target = (dir / "author.dump").string();
  {
    AtomicFile f(target);
    std::fputs("author", f.file());
    CHECK_FALSE(std::filesystem::exists(target));
    CHECK(std::filesystem::exists(f.temp_path()));
  }  // not committed: gone
  CHECK_FALSE(std::filesystem::exists(target));
  CHECK(std::filesystem::is_empty(dir));
  {
    AtomicFile f(target);
    std::fputs("author\n{}", f.file());
    f.commit();
  }
  CHECK(read_file(target) == "author\n{}");
  {
    AtomicFile f(target);  // replaces an existing file (--force) only at commit
    std::fputs("author", f.file());
    CHECK(read_file(target) == "author\n{}");
    f.commit();
  }
  CHECK(read_file(target) == "author");
  CHECK_THROWS_AS(AtomicFile((dir / "no" / "such" / "x.dump").string()), Error);
  std::filesystem::remove_all(dir);
}
