// bulk-load's fast path against the slow one: same key, revision, columns and COPY text, or
// the line is left to prepare_line(); batches give the same plan, messages and COPY data.
#include "replica/load_fast.hpp"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "common/json.hpp"
#include "replica/load.hpp"
#include "target_fixture.hpp"

using namespace pgcqrs;
using namespace pgcqrs::replica;

namespace {

// Every column type copy_compatible() takes, a mapping with each of map_event()'s rules:
// a rename (label -> name), a mapped key whose column an unmapped key is also named like
// (old_code -> code), a key mapped onto cqrs_revision (ignored: dropped), two keys mapped onto
// one column (the last one of a line wins), a mapping onto a column the table lacks.
Target typed_target() {
  return testing::make_target("item", {"reads", "item"},
                              {{"id", "bigint", "int8"},
                               {"small", "smallint", "int2"},
                               {"num", "integer", "int4"},
                               {"name", "text", "text"},
                               {"code", "character varying(20)", "varchar"},
                               {"letter", "character(1)", "bpchar"},
                               {"price", "numeric(12,2)", "numeric"},
                               {"ratio", "real", "float4"},
                               {"weight", "double precision", "float8"},
                               {"on", "boolean", "bool"},
                               {"day", "date", "date"},
                               {"clock", "time without time zone", "time"},
                               {"at", "timestamp without time zone", "timestamp"},
                               {"at_tz", "timestamp(3) with time zone", "timestamptz"},
                               {"span", "interval", "interval"},
                               {"sku", "uuid", "uuid"},
                               {"doc", "jsonb", "jsonb"},
                               {"raw", "json", "json"},
                               {"cqrs_revision", "integer", "int4"},
                               {"cqrs_updated", "timestamp with time zone", "timestamptz"}},
                              {{"label", "name"},
                               {"old_code", "code"},
                               {"rev", "cqrs_revision"},
                               {"twin_a", "num"},
                               {"twin_b", "num"},
                               {"gone", "no_such_column"},
                               {"cqrs_updated", "ignored"}});
}

// The benchmark's table (integration_tests/bench/sql/bulk_schema.sql).
Target bench_target() {
  return testing::make_target("item", {"public", "bulk_item"},
                              {{"id", "integer", "int4"},
                               {"name", "text", "text"},
                               {"price", "numeric(12,2)", "numeric"},
                               {"at", "timestamp with time zone", "timestamptz"},
                               {"doc", "jsonb", "jsonb"},
                               {"cqrs_revision", "integer", "int4"},
                               {"cqrs_updated", "timestamp with time zone", "timestamptz"}});
}

// A line like bulk-dump writes for the benchmark's row i.
std::string bench_line(int i) {
  std::string s = R"({"id":)" + std::to_string(i) + R"(,"name":"item )" + std::to_string(i) +
                  R"( 0cc175b9c0f1b6a831c399e269772661","price":)" + std::to_string(i % 1000) +
                  R"(.05,"at":"2024-01-02 03:04:05.123456+00:00","doc":{"n":)" + std::to_string(i) +
                  R"(,"ok":)" + (i % 2 == 0 ? "true" : "false") + R"(,"tag":"t)" +
                  std::to_string(i % 97) + R"("},"cqrs_revision":)" + std::to_string(i % 5) +
                  R"(,"cqrs_updated":"2026-01-01 00:00:00.000007+00:00"})";
  return s;
}

struct Outcome {
  bool fast = false;  // the fast path took the line
  bool slow = false;  // prepare_line() maps it
};

// Runs both paths on `line`. When the fast path takes it, the slow one must map it to the same
// pk_text, revision and columns, and copy_text() must write the same bytes; a refused line must
// leave the row and the COPY text alone.
Outcome compare(const Target& t, const FastLineMapper& m, FastLineMapper::Scratch& s,
                std::string_view line) {
  Outcome o;
  Row fast;
  fast.delivery = 99;
  std::string fast_copy = "before\n";
  o.fast = m.map(line, fast, fast_copy, s);
  const PreparedLine p = prepare_line(t, line, 2);
  o.slow = p.row.has_value();
  if (!o.fast) {
    CHECK(fast_copy == "before\n");
    CHECK(fast.pk_text.empty());
    CHECK(fast.columns.empty());
    return o;
  }
  CAPTURE(line);
  REQUIRE_MESSAGE(p.row.has_value(), p.reason);
  const Row& slow = *p.row;
  CHECK(fast.signal == Signal::kSave);
  CHECK(fast.delivery == 99);
  CHECK(fast.pk_text == slow.pk_text);
  CHECK(fast.revision == slow.revision);
  CHECK(fast.columns == slow.columns);
  std::string slow_copy = "before\n";
  copy_text(slow_copy, t, slow);
  CHECK(fast_copy == slow_copy);
  return o;
}

Outcome compare(const Target& t, std::string_view line) {
  const FastLineMapper m(t);
  FastLineMapper::Scratch s;
  return compare(t, m, s, line);
}

std::vector<std::string> dump_lines(const std::string& name) {
  std::ifstream in(std::string(PGCQRS_VECTORS_DIR) + "/" + name, std::ios::binary);
  REQUIRE(in.good());
  std::vector<std::string> out;
  std::string line;
  std::getline(in, line);  // the cqrs_id
  while (std::getline(in, line))
    out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("fast path: the lines it takes give exactly the slow path's row and COPY text") {
  const Target t = typed_target();
  const char* const lines[] = {
      // every column, plain values
      R"({"id":1,"small":-32768,"num":2147483647,"label":"plain","code":"c-1","letter":"x","price":10.50,"ratio":1.5,"weight":-0.25,"on":true,"day":"2024-02-29","clock":"23:59:59.999999","at":"2024-01-01 00:00:00","at_tz":"2024-01-01 00:00:00+05:30","span":"1 day 02:03:04","sku":"0419d87b-d477-44e4-82c4-310f56faa3c7","doc":{"k":[1,2.50,"x\"y"],"z":null},"raw":[1,"\/"],"cqrs_revision":3,"cqrs_updated":"2024-01-01 00:00:00+00:00"})",
      // tabs, newlines, carriage returns, backslashes, \N, unicode raw and escaped, \/
      R"({"id":2,"label":"a\tb\nc\rd\\e \\N é\u00e9 \ud83d\ude00 \/ \" \b\f \u0001 \u007f","code":"中文 😀","cqrs_revision":0,"cqrs_updated":"t"})",
      // upper-case hex escapes are fine at the top level (decoded)
      R"({"id":3,"label":"\u00C9\uD83D\uDE00","cqrs_revision":0,"cqrs_updated":"t"})",
      // nulls, missing optional columns, extra keys of any kind
      R"({"id":4,"label":null,"code":null,"doc":null,"raw":null,"extra":[1,{"a":"b"}],"books":[],"x":{},"cqrs_revision":1,"cqrs_updated":null})",
      // Python json.dumps spacing between the line's own tokens
      R"({"id": 5, "label": "spaced" , "cqrs_revision" : 2,	"cqrs_updated": "t"})",
      "  {\"id\":6,\"cqrs_revision\":0,\"cqrs_updated\":\"t\"}\r\n",
      // strings into json/jsonb: their JSON literal (escape_json)
      R"({"id":7,"doc":"plain","raw":"q\"\\ \u00e9","cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":7,"doc":"C:\\new\ttab\u0001 \/","raw":"\"","cqrs_revision":0,"cqrs_updated":"t"})",
      // scalars into json/jsonb, nested values into text columns, booleans into text
      R"({"id":8,"doc":1.5e3,"raw":true,"label":{"a":[true,false,null]},"code":false,"cqrs_revision":0,"cqrs_updated":"t"})",
      // nested canonical strings: escapes as json::dump writes them
      R"({"id":9,"doc":{"s":"\u00e9\ud83d\ude00\t\n\\\"\/\u0001\u001f\b\f\r","":"","e":{},"a":[]},"cqrs_revision":0,"cqrs_updated":"t"})",
      // numbers: exponents, decimals, beyond int64/uint64 (kept as text), negative
      R"({"id":10,"small":1e2,"num":-5,"price":9999999999.99,"ratio":1E-7,"weight":1e+300,"on":0,"sku":18446744073709551616,"cqrs_revision":9223372036854775807,"cqrs_updated":"t"})",
      R"({"id":-11,"price":123456789012345678901234567890,"weight":-0.0,"cqrs_revision":-9223372036854775808,"cqrs_updated":"t"})",
      // key as string, as decimal, as boolean, as object (whatever map_event keys by)
      R"({"id":"0419d87b-d477","cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":"a\tb\u00e9","cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":1.50,"cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":true,"cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":{"a":1},"cqrs_revision":0,"cqrs_updated":"t"})",
      // mapping: old_code takes `code`, the unmapped `code` is dropped (either order)
      R"({"id":12,"code":"dropped","old_code":"kept","cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":13,"old_code":"kept","code":"dropped","cqrs_revision":0,"cqrs_updated":"t"})",
      // ... and without old_code, `code` keeps its column
      R"({"id":14,"code":"kept","cqrs_revision":0,"cqrs_updated":"t"})",
      // a `name` key is dropped when label (mapped onto name) is on the line, else kept
      R"({"id":15,"name":"dropped","label":"kept","cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":16,"name":"kept","cqrs_revision":0,"cqrs_updated":"t"})",
      // a key mapped onto cqrs_revision is dropped; cqrs_updated's own mapping is ignored
      R"({"id":17,"rev":5,"cqrs_revision":1,"cqrs_updated":"t","ignored":"x"})",
      // two keys mapped onto one column: the last one wins; `num` itself is dropped
      R"({"id":18,"twin_a":1,"num":7,"twin_b":2,"cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":19,"twin_b":2,"twin_a":1,"cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":20,"num":7,"gone":1,"no_such_column":2,"cqrs_revision":0,"cqrs_updated":"t"})",
      // any key order
      R"({"cqrs_updated":"t","cqrs_revision":0,"id":21})",
  };
  const FastLineMapper m(t);
  FastLineMapper::Scratch s;
  for (const char* line : lines) {
    CAPTURE(line);
    CHECK(compare(t, m, s, line).fast);
  }
  // nested 32 levels deep (the line's object is level 1)
  const std::string deep = R"({"id":22,"doc":)" + std::string(31, '[') + "1" +
                           std::string(31, ']') + R"(,"cqrs_revision":0,"cqrs_updated":"t"})";
  CHECK(compare(t, m, s, deep).fast);
}

TEST_CASE("fast path: what it is not sure of goes to the slow path") {
  const Target t = typed_target();
  const char* const lines[] = {
      // not JSON, or more than one value
      "",
      "{",
      "{}{}",
      R"({"id":1,)",
      R"({"id":1 "x":2})",
      R"({"id":1}x)",
      "[1]",
      "5",
      "null",
      R"({"id":01,"cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":1.,"cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":1,"label":'x',"cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":1,"label":tru,"cqrs_revision":0,"cqrs_updated":"t"})",
      "{\"id\":1,\"label\":\"raw\ttab\",\"cqrs_revision\":0,\"cqrs_updated\":\"t\"}",
      "{\"id\":1,\"label\":\"\xff\",\"cqrs_revision\":0,\"cqrs_updated\":\"t\"}",
      "{\"id\":1,\"label\":\"\xc0\xaf\",\"cqrs_revision\":0,\"cqrs_updated\":\"t\"}",
      "{\"id\":1,\"label\":\"\xed\xa0\x80\",\"cqrs_revision\":0,\"cqrs_updated\":\"t\"}",
      "{\"id\":1,\"cqrs_revision\":0,\"cqrs_updated\":\"t\"}\v{}",
      R"({"id":1,"label":"\x","cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":1,"label":"\ud83d","cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":1,"label":"\ude00","cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":1,"label":"\u12","cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":1,"weight":1e400,"cqrs_revision":0,"cqrs_updated":"t"})",
      // duplicate keys (known, unknown, nested)
      R"({"id":1,"id":2,"cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":1,"x":1,"x":2,"cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":1,"doc":{"a":1,"a":2},"cqrs_revision":0,"cqrs_updated":"t"})",
      // keys with escapes
      R"({"\u0069d":1,"cqrs_revision":0,"cqrs_updated":"t"})",
      // "-0" is read as the integer 0
      R"({"id":1,"num":-0,"cqrs_revision":0,"cqrs_updated":"t"})",
      // nested values not in json::dump's form
      R"({"id":1,"doc":{"a": 1},"cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":1,"doc":["é"],"cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":1,"doc":["\u00E9"],"cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":1,"doc":["a/b"],"cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":1,"doc":["\u0041"],"cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":1,"doc":["\u000a"],"cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":1,"doc":[-0],"cqrs_revision":0,"cqrs_updated":"t"})",
      // map_event refuses: no key, a null key, bad or missing revision, no cqrs_updated
      R"({"cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":null,"cqrs_revision":0,"cqrs_updated":"t"})",
      R"({"id":1,"cqrs_revision":"3","cqrs_updated":"t"})",
      R"({"id":1,"cqrs_revision":3.0,"cqrs_updated":"t"})",
      R"({"id":1,"cqrs_revision":1e2,"cqrs_updated":"t"})",
      R"({"id":1,"cqrs_revision":9223372036854775808,"cqrs_updated":"t"})",
      R"({"id":1,"cqrs_revision":-9223372036854775809,"cqrs_updated":"t"})",
      R"({"id":1,"cqrs_updated":"t"})",
      R"({"id":1,"rev":1,"cqrs_updated":"t"})",
      R"({"id":1,"cqrs_revision":1})",
  };
  const FastLineMapper m(t);
  FastLineMapper::Scratch s;
  for (const char* line : lines) {
    CAPTURE(line);
    CHECK_FALSE(compare(t, m, s, line).fast);
  }
  // deeper than 32 levels: json::parse takes up to 64
  const std::string deep = R"({"id":22,"doc":)" + std::string(32, '[') + "1" +
                           std::string(32, ']') + R"(,"cqrs_revision":0,"cqrs_updated":"t"})";
  const Outcome o = compare(t, m, s, deep);
  CHECK_FALSE(o.fast);
  CHECK(o.slow);
  // the ones the slow path does map go through it to the same result as before
  CHECK(compare(t, R"({"id":1,"doc":{"a": 1},"cqrs_revision":0,"cqrs_updated":"t"})").slow);
  CHECK(compare(t, R"({"\u0069d":1,"cqrs_revision":0,"cqrs_updated":"t"})").slow);
}

TEST_CASE("fast path: not for apply_function models or tables without a key column") {
  Target f = typed_target();
  f.model.apply_function = "reads.apply_item";
  CHECK_FALSE(FastLineMapper(f).usable());
  Target k = typed_target();
  k.table.primary_key.clear();
  CHECK_FALSE(FastLineMapper(k).usable());
  CHECK(FastLineMapper(typed_target()).usable());
}

TEST_CASE("fast path: django-cqrs's dumps and message bodies (vectors)") {
  const Target product =
      testing::make_target("product", {"reads", "product"},
                           {{"id", "integer", "int4"},
                            {"name", "character varying(200)", "varchar"},
                            {"description", "text", "text"},
                            {"price", "numeric(12,2)", "numeric"},
                            {"in_stock", "boolean", "bool"},
                            {"released_at", "timestamp with time zone", "timestamptz"},
                            {"release_date", "date", "date"},
                            {"sku", "uuid", "uuid"},
                            {"attrs", "jsonb", "jsonb"},
                            {"quantity", "bigint", "int8"},
                            {"weight", "double precision", "float8"},
                            {"note", "character varying(100)", "varchar"},
                            {"discontinued_on", "date", "date"},
                            {"author_id", "integer", "int4"},
                            {"cqrs_revision", "integer", "int4"},
                            {"cqrs_updated", "timestamp with time zone", "timestamptz"}},
                           {{"author", "author_id"}});
  const Target author =
      testing::make_target("author", {"reads", "author"},
                           {{"id", "integer", "int4"},
                            {"name", "character varying(200)", "varchar"},
                            {"cqrs_revision", "integer", "int4"},
                            {"cqrs_updated", "timestamp with time zone", "timestamptz"}});
  for (const std::string& line : dump_lines("product.dump"))
    CHECK(compare(product, line).fast);
  for (const std::string& line : dump_lines("author.dump"))
    CHECK(compare(author, line).fast);
  // every SAVE's instance_data as ujson wrote it in a message body
  std::ifstream in(std::string(PGCQRS_VECTORS_DIR) + "/messages.jsonl", std::ios::binary);
  REQUIRE(in.good());
  int taken = 0;
  for (std::string line; std::getline(in, line);) {
    const json::Json message = json::parse(line);
    const json::Json body = json::parse(message.at("body_raw").get<std::string>());
    if (body.at("signal_type") != "SAVE") continue;
    const std::string data = json::dump(body.at("instance_data"));
    const Target& t = body.at("cqrs_id") == "product" ? product : author;
    CAPTURE(data);
    CHECK(compare(t, data).fast);
    ++taken;
  }
  CHECK(taken > 10);
}

TEST_CASE("fast path: random lines and their mutations never differ from the slow path") {
  const Target t = typed_target();
  const FastLineMapper m(t);
  FastLineMapper::Scratch s;
  std::mt19937 rng(20261201);
  const auto pick = [&](std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
  };
  const std::vector<std::string> keys = {
      "id",   "small", "num",           "label",        "code",   "letter",  "price",
      "doc",  "raw",   "name",          "old_code",     "twin_a", "twin_b",  "rev",
      "gone", "extra", "cqrs_revision", "cqrs_updated", "x y",    "\\u0069d"};
  const std::vector<std::string> pieces = {
      "a",       "Z",       " ",       "\\t", "\\n",     "\\r",     "\\\\",
      "\\\"",    "\\/",     "\\b",     "\\f", "\\u00e9", "\\u00E9", "\\ud83d\\ude00",
      "\\u0001", "\\u0041", "\\ud83d", "é",   "中",      "😀",       "/",
      "\t",      "\xff",    "\\N",     "\\x"};
  std::function<std::string(int)> value = [&](int depth) -> std::string {
    switch (pick(depth > 3 ? 8 : 11)) {
      case 0:
        return "null";
      case 1:
        return pick(2) ? "true" : "false";
      case 2:
        return std::to_string(static_cast<long long>(rng() % 2000000) - 1000000);
      case 3: {
        const char* const numbers[] = {"0",
                                       "-0",
                                       "1.50",
                                       "-0.0",
                                       "1e5",
                                       "1E-7",
                                       "2.5e+3",
                                       "18446744073709551616",
                                       "9223372036854775807",
                                       "1e400",
                                       "01",
                                       "1.",
                                       "-"};
        return numbers[pick(std::size(numbers))];
      }
      case 4:
      case 5:
      case 6:
      case 7: {
        std::string str = "\"";
        for (std::size_t n = pick(6); n > 0; --n)
          str += pieces[pick(pieces.size())];
        return str + "\"";
      }
      case 8: {
        std::string arr = "[";
        for (std::size_t n = pick(4); n > 0; --n)
          arr += value(depth + 1) + (n > 1 ? (pick(8) == 0 ? ", " : ",") : "");
        return arr + "]";
      }
      default: {
        std::string obj = "{";
        for (std::size_t n = pick(4); n > 0; --n) {
          obj += "\"" + keys[pick(4)] + "\":" + value(depth + 1);
          if (n > 1) obj += ",";
        }
        return obj + "}";
      }
    }
  };
  int fast = 0;
  int slow = 0;
  int total = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string line = "{";
    const bool plain = pick(3) != 0;  // mostly lines the slow path maps
    if (plain) {
      line += "\"id\":" + std::to_string(pick(50)) +
              ",\"cqrs_revision\":" + std::to_string(pick(5)) + ",\"cqrs_updated\":\"t\"";
    }
    for (std::size_t n = pick(6); n > 0; --n) {
      if (line.size() > 1) line += pick(10) == 0 ? " , " : ",";
      line += "\"" + keys[pick(keys.size())] + "\":" + value(1);
    }
    line += "}";
    // sometimes a mutation: cut, a byte changed, a byte dropped
    if (pick(4) == 0 && !line.empty()) {
      const std::size_t at = pick(line.size());
      switch (pick(3)) {
        case 0:
          line.resize(at);
          break;
        case 1:
          line[at] = "{}[]\",: \\0\t\xc3"[pick(13)];
          break;
        default:
          line.erase(at, 1);
      }
    }
    CAPTURE(line);
    const Outcome o = compare(t, m, s, line);
    fast += o.fast ? 1 : 0;
    slow += o.slow ? 1 : 0;
    ++total;
  }
  MESSAGE("of " << total << " random lines, the fast path took " << fast << ", the slow one "
                << slow);
  CHECK(fast > total / 10);
}

namespace {

// A batch of lines through prepare_batch() with and without the fast path.
void check_same_batches(const Target& t, const std::vector<std::string>& lines) {
  const FastLineMapper m(t);
  LoadBatch fast = prepare_batch(t, &m, lines, 2, true);
  const LoadBatch slow = prepare_batch(t, nullptr, lines, 2, true);
  CHECK(fast.messages == slow.messages);
  REQUIRE(fast.copy.size() == slow.copy.size());
  for (std::size_t i = 0; i < fast.copy.size(); ++i) {
    CHECK(fast.copy[i].columns == slow.copy[i].columns);
    CHECK(fast.copy[i].data == slow.copy[i].data);
  }
  REQUIRE(fast.plan.superseded.size() == slow.plan.superseded.size());
  for (std::size_t i = 0; i < fast.plan.superseded.size(); ++i) {
    CHECK(fast.plan.superseded[i].delivery == slow.plan.superseded[i].delivery);
    CHECK(fast.plan.superseded[i].by == slow.plan.superseded[i].by);
    CHECK(fast.plan.superseded[i].pk == slow.plan.superseded[i].pk);
    CHECK(fast.plan.superseded[i].revision == slow.plan.superseded[i].revision);
  }
  // the guarded upsert's rows: materialize() makes the lazy ones what the slow path made
  CHECK(fast.lazy);
  materialize(t, fast);
  CHECK_FALSE(fast.lazy);
  REQUIRE(fast.plan.groups.size() == slow.plan.groups.size());
  for (std::size_t g = 0; g < fast.plan.groups.size(); ++g) {
    const auto& a = fast.plan.groups[g].rows;
    const auto& b = slow.plan.groups[g].rows;
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i].delivery == b[i].delivery);
      CHECK(a[i].pk_text == b[i].pk_text);
      CHECK(json::dump(a[i].pk) == json::dump(b[i].pk));
      CHECK(a[i].revision == b[i].revision);
      CHECK(a[i].columns == b[i].columns);
      CHECK(json::dump(a[i].data) == json::dump(b[i].data));
    }
  }
}

}  // namespace

TEST_CASE("fast path in a batch: same plan (newest per key), messages and COPY data") {
  const Target t = typed_target();
  check_same_batches(
      t,
      {
          R"({"id":1,"label":"a","cqrs_revision":1,"cqrs_updated":"t"})",
          R"({"id":1,"label":"older","cqrs_revision":0,"cqrs_updated":"t"})",  // loses
          R"({"id":2,"label":"b","cqrs_revision":1,"cqrs_updated":"t"})",
          R"({"id":2,"label":"same revision, later: wins","cqrs_revision":1,"cqrs_updated":"t"})",
          R"({"id":3, "doc": {"a": 1}, "cqrs_revision":1,"cqrs_updated":"t"})",  // slow
          R"({"id":3,"doc":{"a":2},"cqrs_revision":2,"cqrs_updated":"t"})",      // fast wins
          R"({"id":4,"doc":{"a":2},"cqrs_revision":2,"cqrs_updated":"t"})",      // fast loses
          R"({"id":4, "doc": {"a": 1}, "cqrs_revision":3,"cqrs_updated":"t"})",  // to slow
          R"({"id":"4","cqrs_revision":1,"cqrs_updated":"t"})",  // the same key text "4"
          "{}{}",                                                // can't be parsed
          R"({"id":5,"cqrs_revision":"1","cqrs_updated":"t"})",  // can't be saved
          R"({"id":6,"code":"other columns","cqrs_revision":1,"cqrs_updated":"t"})",
          "",
          R"({"id":7,"label":"\u00e9\t","cqrs_revision":0,"cqrs_updated":"t"})",
      });
  // big enough to be mapped on two threads
  std::vector<std::string> many;
  for (int i = 0; i < 3000; ++i) {
    many.push_back(R"({"id":)" + std::to_string(i % 1200) + R"(,"label":"n)" + std::to_string(i) +
                   R"(","doc":)" + (i % 7 == 0 ? R"({"a": 1})" : R"({"a":1})") +
                   R"(,"cqrs_revision":)" + std::to_string(i % 4) + R"(,"cqrs_updated":"t"})");
  }
  check_same_batches(t, many);
  std::vector<std::string> bench;
  for (int i = 1; i <= 1000; ++i)
    bench.push_back(bench_line(i));
  check_same_batches(bench_target(), bench);
}

// Not a test: `pgcqrs_unit_tests -tc='*us/line*' --no-skip` prints the client's per-line cost
// of the slow path (prepare_line + copy_text) and the fast path on the benchmark's lines.
TEST_CASE("bulk-load us/line, slow vs fast path (measurement)" * doctest::skip()) {
  const Target t = bench_target();
  std::vector<std::string> lines;
  constexpr int kLines = 100000;
  for (int i = 1; i <= kLines; ++i)
    lines.push_back(bench_line(i));
  using Clock = std::chrono::steady_clock;
  const auto us_per_line = [&](Clock::time_point start) {
    return std::chrono::duration<double, std::micro>(Clock::now() - start).count() / kLines;
  };
  std::string out;
  out.reserve(lines.size() * 200);
  auto start = Clock::now();
  int failed = 0;
  for (int i = 0; i < kLines; ++i) {
    const PreparedLine p = prepare_line(t, lines[static_cast<std::size_t>(i)], 2);
    failed += p.row ? 0 : 1;
  }
  const double prepare = us_per_line(start);
  start = Clock::now();
  for (int i = 0; i < kLines; ++i) {
    PreparedLine p = prepare_line(t, lines[static_cast<std::size_t>(i)], 2);
    copy_text(out, t, *p.row);
  }
  const double slow = us_per_line(start);
  out.clear();
  const FastLineMapper m(t);
  FastLineMapper::Scratch s;
  start = Clock::now();
  for (int i = 0; i < kLines; ++i) {
    Row row;
    failed += m.map(lines[static_cast<std::size_t>(i)], row, out, s) ? 0 : 1;
  }
  const double fast = us_per_line(start);
  // prepare_batch() as load_lines() calls it: --batch 10000 (the default), 2 threads
  const auto batches = [&](const FastLineMapper* mapper) {
    double us = 0;
    for (std::size_t from = 0; from < lines.size(); from += 10000) {
      std::vector<std::string> chunk(lines.begin() + static_cast<std::ptrdiff_t>(from),
                                     lines.begin() + static_cast<std::ptrdiff_t>(from + 10000));
      const auto t0 = Clock::now();
      const LoadBatch b = prepare_batch(t, mapper, std::move(chunk), 2, true);
      us += std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
      failed += b.messages.empty() && b.copy.size() == 1 ? 0 : 1;
    }
    return us / kLines;
  };
  const double batch_slow = batches(nullptr);
  const double batch_fast = batches(&m);
  std::printf(
      "%d lines: prepare_line %.2f us, prepare_line+copy_text %.2f us, fast map %.2f us "
      "(%.1fx); prepare_batch (2 threads, plan + COPY chunks) slow %.2f us, fast %.2f us "
      "(%.1fx)\n",
      kLines, prepare, slow, fast, slow / fast, batch_slow, batch_fast, batch_slow / batch_fast);
  CHECK(failed == 0);
}
