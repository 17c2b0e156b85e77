// AMQP URL parsing (RabbitMQ URI spec + pika's vhost reading), masking and exact error texts.
#include <string>

#include <doctest/doctest.h>

#include "common/amqp/url.hpp"
#include "common/error.hpp"

using namespace pgcqrs;
using namespace pgcqrs::amqp;
using namespace std::chrono_literals;

TEST_CASE("amqp url: defaults of a bare amqp:// URL") {
  const Url u = parse_url("amqp://");
  CHECK_FALSE(u.tls);
  CHECK(u.user == "guest");
  CHECK(u.password == "guest");
  CHECK(u.host == "localhost");
  CHECK(u.port == 5672);
  CHECK(u.vhost == "/");
  CHECK(u.heartbeat == 30s);
  CHECK(u.connection_timeout == 10'000ms);
  CHECK(u.channel_max == 0);
  CHECK(u.frame_max == 131'072);
  CHECK(u == Url{});
}

TEST_CASE("amqp url: every part") {
  const Url u = parse_url("amqp://user:secret@rabbit.example:5673/prod");
  CHECK(u.user == "user");
  CHECK(u.password == "secret");
  CHECK(u.host == "rabbit.example");
  CHECK(u.port == 5673);
  CHECK(u.vhost == "prod");
}

TEST_CASE("amqp url: the URL of the test servers") {
  const Url u = parse_url("amqp://guest:guest@127.0.0.1:45123/");
  CHECK(u.host == "127.0.0.1");
  CHECK(u.port == 45123);
  CHECK(u.vhost == "/");
}

TEST_CASE("amqp url: vhost encodings") {
  CHECK(parse_url("amqp://h").vhost == "/");
  CHECK(parse_url("amqp://h/").vhost == "/");
  CHECK(parse_url("amqp://h/%2f").vhost == "/");
  CHECK(parse_url("amqp://h/%2F").vhost == "/");
  CHECK(parse_url("amqp://h/%2Fprod").vhost == "/prod");
  CHECK(parse_url("amqp://h/a%2Fb").vhost == "a/b");
  CHECK(parse_url("amqp://h/my%20vhost").vhost == "my vhost");
  CHECK(parse_url("amqp://h/caf%C3%A9").vhost == "caf\xC3\xA9");
  CHECK(parse_url("amqp://h?heartbeat=5").vhost == "/");
}

TEST_CASE("amqp url: percent-decoded user, password and host") {
  const Url u = parse_url("amqp://us%40er:p%3Aa%2Fss%40@h%2Dost");
  CHECK(u.user == "us@er");
  CHECK(u.password == "p:a/ss@");
  CHECK(u.host == "h-ost");
  CHECK(parse_url("amqp://user@h").password.empty());
  CHECK(parse_url("amqp://user:@h").password.empty());
  CHECK(parse_url("amqp://u:p@ss@h").password == "p@ss");  // the last '@' ends the userinfo
}

TEST_CASE("amqp url: amqps defaults to port 5671, scheme case-insensitive, IPv6") {
  const Url s = parse_url("amqps://h/");
  CHECK(s.tls);
  CHECK(s.port == 5671);
  CHECK(s.tls_options.verify == Verify::kPeer);
  CHECK(parse_url("amqps://h:5999").port == 5999);
  CHECK(parse_url("AMQP://h").port == 5672);
  const Url v6 = parse_url("amqp://[::1]:5673/v");
  CHECK(v6.host == "::1");
  CHECK(v6.port == 5673);
  CHECK(parse_url("amqp://[fe80::1]").port == 5672);
}

TEST_CASE("amqp url: query options") {
  const Url u = parse_url(
      "amqps://h/?heartbeat=0&connection_timeout=2500&channel_max=16&frame_max=4096"
      "&cacertfile=%2Fetc%2Fca.pem&certfile=/c.pem&keyfile=/k.pem&verify=verify_none"
      "&server_name_indication=rabbit.example");
  CHECK(u.heartbeat == 0s);
  CHECK(u.connection_timeout == 2500ms);
  CHECK(u.channel_max == 16);
  CHECK(u.frame_max == 4096);
  CHECK(u.tls_options.cacertfile == "/etc/ca.pem");
  CHECK(u.tls_options.certfile == "/c.pem");
  CHECK(u.tls_options.keyfile == "/k.pem");
  CHECK(u.tls_options.verify == Verify::kNone);
  CHECK(u.tls_options.server_name_indication == "rabbit.example");
  CHECK(parse_url("amqp://h?frame_max=0").frame_max == 0);
  CHECK(parse_url("amqp://h?&heartbeat=7&").heartbeat == 7s);
  CHECK(parse_url("amqps://h?verify=verify_peer").tls_options.verify == Verify::kPeer);
}

TEST_CASE("amqp url: masking") {
  CHECK(parse_url("amqp://user:secret@h:5673/prod").masked() == "amqp://user:****@h:5673/prod");
  CHECK(parse_url("amqp://").masked() == "amqp://guest:****@localhost:5672/");
  CHECK(parse_url("amqps://u:p@h/%2F").masked() == "amqps://u:****@h:5671/");
  CHECK(parse_url("amqp://u:p@h/a%2Fb").masked() == "amqp://u:****@h:5672/a%2Fb");
  CHECK(parse_url("amqp://u:p@[::1]/").masked() == "amqp://u:****@[::1]:5672/");
  CHECK(mask_url("amqp://user:secret@h/v?heartbeat=5") == "amqp://user:****@h/v?heartbeat=5");
  CHECK(mask_url("amqp://user:se/cr@et@h/v") == "amqp://user:****@h/v");
  CHECK(mask_url("amqp://user@h/") == "amqp://user@h/");
  CHECK(mask_url("amqp://h:5672/") == "amqp://h:5672/");
  CHECK(mask_url("guest:secret@h") == "guest:****@h");
  CHECK(mask_url("") == "");
}

TEST_CASE("amqp url: exact ConfigError messages") {
  CHECK_THROWS_WITH_AS(parse_url("http://u:secret@h/"),
                       "AMQP URL 'http://u:****@h/': scheme 'http' is not supported; use amqp:// "
                       "or amqps://",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("localhost:5672"),
                       "AMQP URL 'localhost:5672': no scheme; write it as "
                       "amqp://user:password@host:port/vhost",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url(""),
                       "AMQP URL '': no scheme; write it as amqp://user:password@host:port/vhost",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqp://u:secret@h:abc/"),
                       "AMQP URL 'amqp://u:****@h:abc/': port 'abc' is not a number from 1 to "
                       "65535; fix the number after the host's ':'",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqp://h:0/"),
                       "AMQP URL 'amqp://h:0/': port '0' is not a number from 1 to 65535; fix "
                       "the number after the host's ':'",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqp://h:65536"),
                       "AMQP URL 'amqp://h:65536': port '65536' is not a number from 1 to "
                       "65535; fix the number after the host's ':'",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqp://h:/"),
                       "AMQP URL 'amqp://h:/': port '' is not a number from 1 to 65535; fix the "
                       "number after the host's ':'",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqp://h:-1/"),
                       "AMQP URL 'amqp://h:-1/': port '-1' is not a number from 1 to 65535; fix "
                       "the number after the host's ':'",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqp://h/?heartbeet=5"),
                       "AMQP URL 'amqp://h/?heartbeet=5': query option 'heartbeet' is unknown; "
                       "use heartbeat, connection_timeout, channel_max, frame_max, cacertfile, "
                       "certfile, keyfile, verify or server_name_indication",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqp://h/?heartbeat=x"),
                       "AMQP URL 'amqp://h/?heartbeat=x': query option heartbeat='x' is not a "
                       "whole number of seconds from 0 to 65535 (0 disables heartbeats)",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqp://h/?heartbeat"),
                       "AMQP URL 'amqp://h/?heartbeat': query option 'heartbeat' has no value; "
                       "write heartbeat=<value>",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqp://h/?heartbeat=1&heartbeat=2"),
                       "AMQP URL 'amqp://h/?heartbeat=1&heartbeat=2': query option 'heartbeat' "
                       "is given twice; keep one",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqp://h/?connection_timeout=0"),
                       "AMQP URL 'amqp://h/?connection_timeout=0': query option "
                       "connection_timeout='0' is not a whole number of milliseconds from 1 to "
                       "2147483647",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqp://h/?frame_max=100"),
                       "AMQP URL 'amqp://h/?frame_max=100': query option frame_max='100' is not "
                       "0 (no limit) or a number of bytes from 4096 to 2147483647",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqp://h/?channel_max=70000"),
                       "AMQP URL 'amqp://h/?channel_max=70000': query option "
                       "channel_max='70000' is not a number from 0 to 65535 (0 = the broker's "
                       "limit)",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqp://h/?cacertfile=/ca.pem"),
                       "AMQP URL 'amqp://h/?cacertfile=/ca.pem': query option 'cacertfile' needs "
                       "TLS; use an amqps:// URL",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqps://h/?verify=yes"),
                       "AMQP URL 'amqps://h/?verify=yes': query option verify='yes' is not "
                       "known; use verify_peer or verify_none",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqps://h/?certfile=/c.pem"),
                       "AMQP URL 'amqps://h/?certfile=/c.pem': query option certfile needs "
                       "keyfile too; give both (client certificate and its key) or neither",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqps://h/?keyfile=/k.pem"),
                       "AMQP URL 'amqps://h/?keyfile=/k.pem': query option keyfile needs "
                       "certfile too; give both (client certificate and its key) or neither",
                       ConfigError);
}

TEST_CASE("amqp url: malformed parts") {
  CHECK_THROWS_WITH_AS(parse_url("amqp://u:p%zzw@h/"),
                       "AMQP URL 'amqp://u:****@h/': bad percent-encoding in the password; write "
                       "'%' as %25 and other special characters as %XX",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqp://h/v%4"),
                       "AMQP URL 'amqp://h/v%4': bad percent-encoding '%4' in the vhost; write "
                       "'%' as %25 and other special characters as %XX",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqp://h/a/b"),
                       "AMQP URL 'amqp://h/a/b': path '/a/b' has more than one segment; the vhost "
                       "is one segment, write '/' inside it as %2F",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqp://:p@h/"),
                       "AMQP URL 'amqp://:****@h/': the user name before '@' is empty; write "
                       "amqp://user:password@host/ or leave out 'user:password@' for guest",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqp://[::1/"),
                       "AMQP URL 'amqp://[::1/': IPv6 host '[::1' has no closing ']'; write it as "
                       "[::1]",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqp://::1/"),
                       "AMQP URL 'amqp://::1/': host '::1' has more than one ':'; write an IPv6 "
                       "address in brackets: [::1]:5672",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqp://h/#frag"),
                       "AMQP URL 'amqp://h/#frag': fragment '#frag' is not allowed; remove it, or "
                       "write '#' as %23",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqp://u:se cret@h/"),
                       "AMQP URL 'amqp://u:****@h/': a space or control character at offset 11; "
                       "remove it or percent-encode it (a space is %20)",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_url(" amqp://h/"),
                       "AMQP URL ' amqp://h/': a space or control character at offset 0; remove "
                       "it or percent-encode it (a space is %20)",
                       ConfigError);
}

TEST_CASE("amqp url: hostile and oversized input") {
  CHECK_THROWS_AS(parse_url(std::string("amqp://h/\0x", 11)), ConfigError);
  CHECK_THROWS_AS(parse_url("amqp://h/?heartbeat=99999999999999999999999"), ConfigError);
  CHECK_THROWS_AS(parse_url("amqp://h/?=5"), ConfigError);
  CHECK_THROWS_AS(parse_url("amqp://h%"), ConfigError);
  CHECK_THROWS_WITH_AS(parse_url("amqp://" + std::string(9000, 'h')),
                       "AMQP URL of 9007 characters: longer than 8192; check the configured value",
                       ConfigError);
  const std::string long_host(4000, 'a');
  CHECK(parse_url("amqp://" + long_host + "/").host == long_host);
  CHECK_THROWS_AS(parse_url("amqp://@h"), ConfigError);  // an empty user name
}
