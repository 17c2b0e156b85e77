// Connection strings: masking in both libpq forms, hostile input, conninfo building, messages.
#include <string>

#include <doctest/doctest.h>

#include "common/error.hpp"
#include "common/pg/url.hpp"

using namespace pgcqrs;
using pg::mask_url;

TEST_CASE("pg url: mask_url hides the password of a URI") {
  CHECK(mask_url("postgresql://postgres:secret@127.0.0.1:5432/db") ==
        "postgresql://postgres:****@127.0.0.1:5432/db");
  CHECK(mask_url("postgres://u:secret@h/db") == "postgres://u:****@h/db");
  CHECK(mask_url("postgresql://u:@h/db") == "postgresql://u:****@h/db");
  CHECK(mask_url("postgresql://u:a:b@h/db") == "postgresql://u:****@h/db");
  CHECK(mask_url("postgresql://u:p%40ss@h1:5432,h2:5433/db?sslmode=require") ==
        "postgresql://u:****@h1:5432,h2:5433/db?sslmode=require");
  CHECK(mask_url("postgresql://h/db?sslmode=require&password=secret&connect_timeout=3") ==
        "postgresql://h/db?sslmode=require&password=****&connect_timeout=3");
  CHECK(mask_url("postgresql://h/db?sslpassword=k&PASS%57ORD=x") ==
        "postgresql://h/db?sslpassword=****&PASS%57ORD=****");
  // Scheme in capitals: libpq does not take it as a URI, but a password is still hidden.
  CHECK(mask_url("POSTGRESQL://u:secret@h/db") == "POSTGRESQL://u:****@h/db");
}

TEST_CASE("pg url: mask_url leaves URIs without secrets alone") {
  for (const char* url : {"postgresql://postgres@127.0.0.1:5432/postgres", "postgresql://",
                          "postgresql:///db?host=/tmp", "postgresql://h/path@x",
                          "postgresql://[::1]:5432/db?application_name=a%20b", "postgres://h?"}) {
    CAPTURE(url);
    CHECK(mask_url(url) == url);
  }
  CHECK(mask_url("postgresql://:@") == "postgresql://:****@");
}

TEST_CASE("pg url: mask_url hides the password of a key=value string") {
  CHECK(mask_url("host=h user=u password=secret dbname=d") ==
        "host=h user=u password=**** dbname=d");
  CHECK(mask_url("password = 'se cr\\'et' host=h") == "password = **** host=h");
  CHECK(mask_url("host=h password=sec\\ ret port=5") == "host=h password=**** port=5");
  CHECK(mask_url("sslpassword=k Password=p") == "sslpassword=**** Password=****");
  CHECK(mask_url("  host=h\tpassword=''  ") == "  host=h\tpassword=****  ");
  CHECK(mask_url("host='a b' dbname='x\\\\'") == "host='a b' dbname='x\\\\'");
}

TEST_CASE("pg url: mask_url on malformed and hostile input") {
  CHECK(mask_url("") == "");
  CHECK(mask_url("   ") == "   ");
  CHECK(mask_url("garbage") == "garbage");
  CHECK(mask_url("host=h password") == "host=h password");
  CHECK(mask_url("host=h password secret") == "host=h password ****");
  CHECK(mask_url("password='unterminated host=h") == "password=****");
  CHECK(mask_url("password=\\") == "password=****");
  CHECK(mask_url("==") == "==");
  CHECK(mask_url(std::string("password=a\0b c=d", 16)) == "password=**** c=d");
  const std::string long_password(100'000, 'x');
  CHECK(mask_url("postgresql://u:" + long_password + "@h/db") == "postgresql://u:****@h/db");
  CHECK(mask_url("password='" + long_password) == "password=****");
  const std::string many_params = "postgresql://h/db?" + std::string(10'000, '&');
  CHECK(mask_url(many_params) == many_params);
}

TEST_CASE("pg url: redact removes secrets libpq echoes") {
  CHECK(pg::redact("invalid percent-encoded token: \"p%zzw\"", "postgresql://u:p%zzw@h/db") ==
        "invalid percent-encoded token: \"****\"");
  CHECK(pg::redact("bad \"a\" and a", "password=a") == "bad \"****\" and a");
  CHECK(pg::redact("no secrets here", "host=h") == "no secrets here");
}

TEST_CASE("pg url: build_conninfo keeps every option and adds our defaults") {
  const std::string c =
      pg::build_conninfo("postgresql://u:p@h:5433/db?sslmode=disable", "pgcqrs master");
  CHECK(c.find("user='u'") != std::string::npos);
  CHECK(c.find("password='p'") != std::string::npos);
  CHECK(c.find("host='h'") != std::string::npos);
  CHECK(c.find("port='5433'") != std::string::npos);
  CHECK(c.find("dbname='db'") != std::string::npos);
  CHECK(c.find("sslmode='disable'") != std::string::npos);
  CHECK(c.find("fallback_application_name='pgcqrs master'") != std::string::npos);
  CHECK(c.find("connect_timeout='10'") != std::string::npos);

  // Values with quotes and backslashes survive a round trip through libpq's parser.
  const std::string q = pg::build_conninfo("host=h dbname='a\\'b\\\\c'", "");
  CHECK(q.find("dbname='a\\'b\\\\c'") != std::string::npos);
  CHECK(q.find("fallback_application_name") == std::string::npos);
  const std::string again = pg::build_conninfo(q, "");
  CHECK(again.find("dbname='a\\'b\\\\c'") != std::string::npos);
  CHECK(again.find("connect_timeout") == again.rfind("connect_timeout"));

  // The URL's own choices win.
  const std::string own =
      pg::build_conninfo("host=h connect_timeout=3 fallback_application_name=x", "pgcqrs");
  CHECK(own.find("connect_timeout='3'") != std::string::npos);
  CHECK(own.find("connect_timeout='10'") == std::string::npos);
  CHECK(own.find("'pgcqrs'") == std::string::npos);
}

TEST_CASE("pg url: build_conninfo rejects what libpq rejects, without leaking the password") {
  CHECK_THROWS_WITH_AS(pg::build_conninfo("host=h bogus=1 password=secret", "pgcqrs"),
                       "database url 'host=h bogus=1 password=****': invalid connection "
                       "option \"bogus\"",
                       ConfigError);
  CHECK_THROWS_WITH_AS(pg::build_conninfo("postgresql://u:p%zzw@h/db", "pgcqrs"),
                       "database url 'postgresql://u:****@h/db': invalid percent-encoded "
                       "token: \"****\"",
                       ConfigError);
  CHECK_THROWS_AS(pg::build_conninfo("host='unterminated", "pgcqrs"), ConfigError);
}

TEST_CASE("pg url: one_line flattens libpq messages") {
  CHECK(pg::one_line("connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n"
                     "\tIs the server running on that host and accepting TCP/IP connections?\n") ==
        "connection to server at \"127.0.0.1\", port 1 failed: Connection refused; Is the server "
        "running on that host and accepting TCP/IP connections?");
  CHECK(pg::one_line("ERROR:  syntax error at or near \"selec\"\nLINE 3: selec 1;\n        ^\n") ==
        "ERROR: syntax error at or near \"selec\"; LINE 3: selec 1;");
  CHECK(pg::one_line("ERROR:  duplicate key value violates unique constraint \"a_pkey\"\n"
                     "DETAIL:  Key (id)=(1) already exists.\n") ==
        "ERROR: duplicate key value violates unique constraint \"a_pkey\"; DETAIL: Key (id)=(1) "
        "already exists.");
  CHECK(pg::one_line("value:  two  spaces kept\r\n") == "value:  two  spaces kept");
  CHECK(pg::one_line("") == "");
  CHECK(pg::one_line("\n \n\t\n") == "");
}
