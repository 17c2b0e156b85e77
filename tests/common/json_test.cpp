// The JSON codec keeps numbers exact, writes what ujson writes, and refuses hostile input.
#include "common/json.hpp"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "common/error.hpp"

using pgcqrs::MessageError;
using namespace pgcqrs::json;

namespace {

std::string read_file(const std::string& name) {
  std::ifstream in(std::string(PGCQRS_VECTORS_DIR) + "/" + name, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open vector " << name);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

// The exact bodies django-cqrs published (messages.jsonl `body_raw`).
std::vector<std::string> vector_bodies() {
  std::vector<std::string> bodies;
  for (const auto& line : split_lines(read_file("messages.jsonl"))) {
    bodies.push_back(nlohmann::json::parse(line).at("body_raw").get<std::string>());
  }
  return bodies;
}

}  // namespace

TEST_CASE("numbers with a fraction or exponent keep their source text") {
  for (const char* text : {"10.50", "9999999999.99", "1e-7", "1E+2", "-0.0", "0.1", "4.0",
                           "123456789012345678901234567890.123456789", "2.5e-308"}) {
    CAPTURE(text);
    const Json v = parse(text);
    CHECK(is_decimal(v));
    CHECK(is_number(v));
    CHECK(decimal_text(v) == text);
    CHECK(dump(v) == text);
    CHECK(number_text(v) == text);
  }
}

TEST_CASE("integers stay integers while they fit int64/uint64, else exact text") {
  const Json big = parse("9007199254740993");
  CHECK(big.is_number_unsigned());
  CHECK(big.get<std::uint64_t>() == 9007199254740993ULL);
  CHECK(dump(big) == "9007199254740993");

  const Json neg = parse("-9223372036854775808");
  CHECK(neg.is_number_integer());
  CHECK(neg.get<std::int64_t>() == INT64_MIN);

  CHECK(parse("18446744073709551615").get<std::uint64_t>() == UINT64_MAX);
  for (const char* text :
       {"18446744073709551616", "-9223372036854775809", "100000000000000000000000000000"}) {
    CAPTURE(text);
    const Json v = parse(text);
    CHECK(is_decimal(v));
    CHECK(dump(v) == text);
  }
  CHECK(dump(parse("[0,-1,42]")) == "[0,-1,42]");
}

TEST_CASE("exact numbers inside documents survive a round trip") {
  const std::string text = R"({"price":10.50,"qty":9007199254740993,"w":1e-7,"l":[1.0,2.50]})";
  const Json v = parse(text);
  CHECK(decimal_text(v["price"]) == "10.50");
  CHECK(decimal_text(v["w"]) == "1e-7");
  CHECK(dump(v) == text);
}

TEST_CASE("is_number_text: JSON's number grammar, as PostgreSQL's IsValidJsonNumber") {
  for (const char* good : {"0", "-0", "42", "-17", "10.50", "0.1", "1e5", "1E-7", "1.5e+300",
                           "-0.0", "99999999999999999999999"}) {
    CAPTURE(good);
    CHECK(is_number_text(good));
  }
  for (const char* bad : {"", "-", "01", "-01", "1.", ".5", "1e", "1e+", "+1", "1,5", "NaN",
                          "Infinity", "0x10", " 1", "1 ", "1.5.2", "--1"}) {
    CAPTURE(bad);
    CHECK_FALSE(is_number_text(bad));
  }
}

TEST_CASE("make_decimal validates JSON number text") {
  CHECK(decimal_text(make_decimal("10.50")) == "10.50");
  CHECK(decimal_text(make_decimal("-0")) == "-0");
  CHECK(decimal_text(make_decimal("1E-7")) == "1E-7");
  CHECK(dump(Json{{"p", make_decimal("0.10")}}) == R"({"p":0.10})");
  for (const char* bad :
       {"", "-", "01", "1.", ".5", "1e", "1e+", "+1", "1,5", "NaN", "0x10", " 1", "1 "}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(make_decimal(bad), MessageError);
  }
  CHECK_THROWS_WITH_AS(make_decimal("12abc"), "number '12abc': not a JSON number", MessageError);
  CHECK_THROWS_WITH_AS(make_decimal("1\n"), "number '1\\x0a': not a JSON number", MessageError);
}

TEST_CASE("is_number and number_text") {
  CHECK(is_number(Json(1)));
  CHECK(is_number(Json(1u)));
  CHECK(is_number(Json(1.5)));
  CHECK(is_number(make_decimal("1.5")));
  CHECK_FALSE(is_number(Json("1")));
  CHECK_FALSE(is_number(Json(nullptr)));
  CHECK_FALSE(is_number(Json::binary({1, 2})));
  CHECK_FALSE(is_decimal(Json::binary({1, 2})));
  CHECK(decimal_text(Json(1)).empty());
  CHECK(number_text(Json(-7)) == "-7");
  CHECK_THROWS_WITH_AS(number_text(Json("7")), "number '\"7\"': not a number but string",
                       MessageError);
}

TEST_CASE("dump writes strings as ujson does") {
  CHECK(dump(Json("Caf\xC3\xA9")) == R"("Caf\u00e9")");
  CHECK(dump(Json("\xE4\xB8\xAD")) == R"("\u4e2d")");
  CHECK(dump(Json("\xF0\x9F\x98\x80")) == R"("\ud83d\ude00")");
  CHECK(dump(Json("a/b")) == R"("a\/b")");
  CHECK(dump(Json("q\"b\\s")) == R"("q\"b\\s")");
  CHECK(dump(Json("\b\f\n\r\t")) == R"("\b\f\n\r\t")");
  CHECK(dump(Json("\x01\x1f\x0b")) == R"("\u0001\u001f\u000b")");
  CHECK(dump(Json(std::string("a\0b", 3))) == R"("a\u0000b")");
  CHECK(dump(Json("<tag> &amp; \x7f")) == "\"<tag> &amp; \x7f\"");
  CHECK(dump(Json("\xEF\xBF\xBF")) == R"("\uffff")");
  CHECK(dump(Json("\xF4\x8F\xBF\xBF")) == R"("\udbff\udfff")");
  CHECK(dump(Json{{"k\xC3\xA9/", 1}}) == R"({"k\u00e9\/":1})");
}

TEST_CASE("dump refuses strings that are not UTF-8") {
  CHECK_THROWS_WITH_AS(dump(Json("ab\xFF")), "JSON string 'ab\\xff': invalid UTF-8 at byte 2",
                       MessageError);
  for (const char* bad : {"\xC3", "\xC0\x80", "\xE0\x80\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                          "\xF8\x88\x80\x80\x80", "\x80", "\xE4\xB8"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(dump(Json(bad)), MessageError);
  }
}

TEST_CASE("dump writes doubles in ujson's shortest form") {
  CHECK(dump(Json(1.0)) == "1.0");
  CHECK(dump(Json(0.1)) == "0.1");
  CHECK(dump(Json(-0.0)) == "-0.0");
  CHECK(dump(Json(0.0)) == "0.0");
  CHECK(dump(Json(10.5)) == "10.5");
  CHECK(dump(Json(1e-7)) == "1e-7");
  CHECK(dump(Json(0.0001)) == "0.0001");
  CHECK(dump(Json(0.00001)) == "1e-5");
  CHECK(dump(Json(1.5e-5)) == "1.5e-5");
  CHECK(dump(Json(1e15)) == "1000000000000000.0");
  CHECK(dump(Json(1e16)) == "1e+16");
  CHECK(dump(Json(1e20)) == "1e+20");
  CHECK(dump(Json(1.25e20)) == "1.25e+20");
  CHECK(dump(Json(123456.789)) == "123456.789");
  CHECK(dump(Json(-2.5)) == "-2.5");
  CHECK(dump(Json(9999999999.99)) == "9999999999.99");
  CHECK(dump(Json(5e-324)) == "5e-324");
  CHECK(dump(Json(1.7976931348623157e308)) == "1.7976931348623157e+308");
  CHECK_THROWS_WITH_AS(dump(Json(std::nan(""))), "JSON number: cannot encode NaN or infinity",
                       MessageError);
  CHECK_THROWS_AS(dump(Json(HUGE_VAL)), MessageError);
  CHECK_THROWS_WITH_AS(dump(Json::binary({1})), "JSON value: binary data cannot be encoded",
                       MessageError);
}

TEST_CASE("dump is compact and keeps key order") {
  Json v = Json::object();
  v["z"] = 1;
  v["a"] = Json::array({true, false, nullptr, "x"});
  v["m"] = Json::object();
  CHECK(dump(v) == R"({"z":1,"a":[true,false,null,"x"],"m":{}})");
  CHECK(dump(Json::array()) == "[]");
}

TEST_CASE("every captured django-cqrs body re-dumps byte for byte") {
  const auto bodies = vector_bodies();
  REQUIRE(bodies.size() == 45);
  for (std::size_t i = 0; i < bodies.size(); ++i) {
    CAPTURE(i);
    CHECK(dump(parse(bodies[i])) == bodies[i]);
  }
}

TEST_CASE("every dump file line and dead letter re-dumps byte for byte") {
  std::size_t checked = 0;
  for (const char* file : {"author.dump", "product.dump", "diff/dead_letters_dump.jsonl"}) {
    const auto lines = split_lines(read_file(file));
    const bool has_header = std::string(file).ends_with(".dump");
    for (std::size_t i = has_header ? 1 : 0; i < lines.size(); ++i) {
      CAPTURE(file);
      CAPTURE(i);
      CHECK(dump(parse(lines[i])) == lines[i]);
      ++checked;
    }
  }
  CHECK(checked == 9);
}

TEST_CASE("strings: escapes decode, \\u0000 survives, surrogate pairs combine") {
  const Json v = parse(R"(["a\u0000b","\/","\u00E9","\ud83d\ude00","\u20ac"])");
  CHECK(v[0].get<std::string>() == std::string("a\0b", 3));
  CHECK(v[1].get<std::string>() == "/");
  CHECK(v[2].get<std::string>() == "\xC3\xA9");
  CHECK(v[3].get<std::string>() == "\xF0\x9F\x98\x80");
  CHECK(dump(v) == R"(["a\u0000b","\/","\u00e9","\ud83d\ude00","\u20ac"])");
  // Raw UTF-8 in the input is accepted and written escaped.
  CHECK(dump(parse("\"Caf\xC3\xA9\"")) == R"("Caf\u00e9")");
}

TEST_CASE("parse: syntax errors name the byte") {
  CHECK_THROWS_WITH_AS(parse(""),
                       "JSON body: syntax error at byte 1: unexpected end of input; expected '[', "
                       "'{', or a literal",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse("   "),
                       "JSON body: syntax error at byte 4: unexpected end of input; expected '[', "
                       "'{', or a literal",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse("{}{}"),
                       "JSON body: syntax error at byte 3: unexpected '{'; expected end of input",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse(R"({"signal_type":"SAVE")"),
                       "JSON body: syntax error at byte 22: unexpected end of input; expected '}'",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse(R"({"a":1,})"),
                       "JSON body: syntax error at byte 8: unexpected '}'; expected string literal",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse("{'a':1}"),
                       "JSON body: syntax error at byte 2: invalid literal; last read: '{''",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse("[NaN]"),
                       "JSON body: syntax error at byte 2: invalid literal; last read: '[N'",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse("[1e400]"), "JSON body: number '1e400' out of range at byte 6",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse("\"abc"),
                       "JSON body: syntax error at byte 5: invalid string: missing closing quote; "
                       "last read: '\"abc'",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse("", {}, "dump line"),
                       "dump line: syntax error at byte 1: unexpected end of input; expected '[', "
                       "'{', or a literal",
                       MessageError);
}

TEST_CASE("parse: invalid UTF-8, control characters and lone surrogates are rejected") {
  CHECK_THROWS_WITH_AS(parse("\"ab\xFF\""),
                       "JSON body: syntax error at byte 4: invalid string: ill-formed UTF-8 byte; "
                       "last read: '\"ab\\xff'",
                       MessageError);
  CHECK_THROWS_AS(parse("\xFF"), MessageError);
  CHECK_THROWS_AS(parse("[\"\xC0\x80\"]"), MessageError);
  CHECK_THROWS_AS(parse("[\"\xED\xA0\x80\"]"), MessageError);
  CHECK_THROWS_AS(parse("\"a\nb\""), MessageError);
  CHECK_THROWS_WITH_AS(
      parse(R"(["\ud800"])"),
      "JSON body: syntax error at byte 9: invalid string: surrogate U+D800..U+DBFF "
      "must be followed by U+DC00..U+DFFF; last read: '\"\\ud800\"'",
      MessageError);
  CHECK_THROWS_AS(parse(R"(["\udc00"])"), MessageError);
  // The "last read" quote of a huge bad string is cut to its tail.
  const std::string huge = "\"" + std::string(100000, 'x') + "\xFF\"";
  try {
    parse(huge);
    FAIL("no exception");
  } catch (const MessageError& e) {
    CHECK(std::string(e.what()) ==
          "JSON body: syntax error at byte 100002: invalid string: ill-formed UTF-8 byte; last "
          "read: '..." +
              std::string(39, 'x') + "\\xff'");
  }
}

TEST_CASE("parse: duplicate keys are rejected at every level and size") {
  CHECK_THROWS_WITH_AS(parse(R"({"a":1,"a":2})"), "JSON body: duplicate key 'a' at byte 10",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse(R"({"o":{"x":1,"y":{},"x":[]}})"),
                       "JSON body: duplicate key 'x' at byte 22", MessageError);
  CHECK_THROWS_WITH_AS(parse(R"({"\u00e9":1,"é":2})"),
                       "JSON body: duplicate key '\\u00e9' at byte 16", MessageError);
  // Past the linear-scan limit the hash set takes over.
  std::string many = "{";
  for (int i = 0; i < 100; ++i)
    many += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  CHECK(parse(many + "\"k100\":0}").size() == 101);
  CHECK_THROWS_WITH_AS(parse(many + "\"k7\":0}"), "JSON body: duplicate key 'k7' at byte 885",
                       MessageError);
  CHECK_THROWS_AS(parse(many + "\"k99\":0}"), MessageError);
  // Same names in sibling objects are fine.
  CHECK(dump(parse(R"([{"a":1},{"a":2}])")) == R"([{"a":1},{"a":2}])");
}

TEST_CASE("parse: a million keys stay linear") {
  std::string text = "{";
  for (int i = 0; i < 1000000; ++i) {
    if (i) text += ',';
    text += '"';
    text += std::to_string(i);
    text += "\":0";
  }
  text += "}";
  const auto start = std::chrono::steady_clock::now();
  const Json v = parse(text);
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(v.size() == 1000000);
  CHECK(took < std::chrono::seconds(20));
}

TEST_CASE("parse: nesting is limited in the SAX handler, never on the stack") {
  const auto nested = [](int depth) {
    return std::string(static_cast<std::size_t>(depth), '[') +
           std::string(static_cast<std::size_t>(depth), ']');
  };
  CHECK(parse(nested(64)).is_array());
  CHECK_THROWS_WITH_AS(parse(nested(65)), "JSON body: nesting deeper than 64 levels at byte 65",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse(std::string(10000, '[')),
                       "JSON body: nesting deeper than 64 levels at byte 65", MessageError);
  std::string objects;
  for (int i = 0; i < 10000; ++i)
    objects += "{\"a\":";
  CHECK_THROWS_WITH_AS(parse(objects), "JSON body: nesting deeper than 64 levels at byte 321",
                       MessageError);
  CHECK_THROWS_WITH_AS(parse(R"({"a": [ {"b": [1]}]})", ParseLimits{.max_depth = 3}),
                       "JSON body: nesting deeper than 3 levels at byte 15", MessageError);
  CHECK(parse(std::string(100000, '[') + std::string(100000, ']'), ParseLimits{.max_depth = 100000})
            .is_array());
}

TEST_CASE("parse: input larger than the limit is refused before parsing") {
  CHECK_THROWS_WITH_AS(parse("[1,2,3]", ParseLimits{.max_bytes = 6}),
                       "JSON body: 7 bytes exceed the limit of 6 bytes", MessageError);
  CHECK(parse("[1,2,3]", ParseLimits{.max_bytes = 7}).size() == 3);
  const std::string big = "\"" + std::string(16u << 20, 'a') + "\"";
  CHECK_THROWS_WITH_AS(parse(big), "JSON body: 16777218 bytes exceed the limit of 16777216 bytes",
                       MessageError);
}

TEST_CASE("parse: every truncation of a real body throws MessageError") {
  const std::string body = vector_bodies().at(19);  // product 7, the edge case
  for (std::size_t n = 0; n < body.size(); ++n) {
    CAPTURE(n);
    CHECK_THROWS_AS(parse(std::string_view(body).substr(0, n)), MessageError);
  }
  CHECK_NOTHROW(parse(body));
}

TEST_CASE("excerpt quotes values safely and cuts them") {
  CHECK(excerpt(Json("3")) == "\"3\"");
  CHECK(excerpt(Json(std::string(200, 'a'))) == "\"" + std::string(79, 'a') + "...");
  CHECK(excerpt(Json("\xFF")) == "<string not encodable>");
  CHECK(excerpt_string("a\n\xC3\xA9") == "a\\n\\u00e9");
  CHECK(excerpt_string("\xFF") == "\\xff");
  CHECK(type_name(make_decimal("1.5")) == "number");
  CHECK(type_name(Json(1)) == "integer");
  CHECK(type_name(Json::object()) == "object");
}
