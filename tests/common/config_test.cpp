// Configuration: defaults, environment overrides, and messages that name key, value and fix.
#include "common/config.hpp"

#include <cstdlib>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "common/error.hpp"

using pgcqrs::ConfigError;
using pgcqrs::parse_config;

namespace {

const char* const kMinimal = R"(
[master]
database = "postgresql://app:s3cret@db/app"

[[master.model]]
cqrs_id = "author"
table = "public.author"

[replica]
database = "postgresql://r@db/replica"
queue = "replica"

[[replica.model]]
cqrs_id = "author"
table = 'reads."Author"'
mapping = { name = "title" }
)";

// Sets an environment variable for one scope.
struct ScopedEnv {
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ScopedEnv(ScopedEnv&&) = delete;
  ScopedEnv& operator=(ScopedEnv&&) = delete;
  const char* name_;
};

}  // namespace

TEST_CASE("config: defaults are django-cqrs's") {
  const auto c = parse_config(kMinimal, "t.toml");
  CHECK(c.broker.exchange == "cqrs");
  REQUIRE(c.master);
  CHECK(c.master->message_ttl.count() == 86400);
  REQUIRE(c.master->models.size() == 1);
  CHECK(c.master->models[0].produce);
  CHECK(c.master->models[0].table == pgcqrs::QualifiedName{"public", "author"});
  REQUIRE(c.replica);
  CHECK(c.replica->dead_letter_queue == "dead_letter_replica");
  CHECK(c.replica->max_retries == 30);
  CHECK(c.replica->retry_delay.count() == 2);
  CHECK(c.replica->dead_message_ttl.count() == 864000);
  CHECK(c.replica->models[0].table == pgcqrs::QualifiedName{"reads", "Author"});
  CHECK(c.replica->models[0].mapping.at("name") == "title");
  CHECK(c.find_replica_model("author") != nullptr);
  CHECK(c.find_replica_model("nope") == nullptr);
}

TEST_CASE("config: environment overrides connection strings and the broker password") {
  ScopedEnv a(pgcqrs::kEnvMasterDatabase, "postgresql://env@h/m");
  ScopedEnv b(pgcqrs::kEnvBrokerUrl, "amqp://u:p@rabbit:5672/vh");
  ScopedEnv p(pgcqrs::kEnvBrokerPassword, "n3w/p@ss");
  const auto c = parse_config(kMinimal, "t.toml");
  CHECK(c.master->database == "postgresql://env@h/m");
  CHECK(c.broker.url == "amqp://u:n3w%2Fp%40ss@rabbit:5672/vh");
}

TEST_CASE("config: render masks secrets and fills defaults") {
  ScopedEnv b(pgcqrs::kEnvBrokerUrl, "amqp://u:topsecret@rabbit:5672/");
  const std::string out = pgcqrs::render_config(parse_config(kMinimal, "t.toml"));
  CHECK(out.find("topsecret") == std::string::npos);
  CHECK(out.find("s3cret") == std::string::npos);
  CHECK(out.find("amqp://u:****@rabbit:5672/") != std::string::npos);
  CHECK(out.find("postgresql://app:****@db/app") != std::string::npos);
  CHECK(out.find("dead_letter_queue = 'dead_letter_replica'") != std::string::npos);
  CHECK(out.find("max_retries = 30") != std::string::npos);
}

TEST_CASE("config: mask_secrets") {
  CHECK(pgcqrs::mask_secrets("amqp://guest:guest@h:5672/") == "amqp://guest:****@h:5672/");
  CHECK(pgcqrs::mask_secrets("postgresql://u@h/db") == "postgresql://u@h/db");
  CHECK(pgcqrs::mask_secrets("host=h password=abc dbname=x") == "host=h password=**** dbname=x");
  CHECK(pgcqrs::mask_secrets("postgresql://h/db?password=abc&sslmode=require") ==
        "postgresql://h/db?password=****&sslmode=require");
}

TEST_CASE("config: each bad value gets a message naming file, line, key, value and fix") {
  CHECK_THROWS_WITH_AS(parse_config("[master]\ndatabase = \"x\"\nmessage_ttl = -5\n", "p.toml"),
                       "p.toml:3: master.message_ttl = -5: must be between 0 and 315360000 "
                       "(seconds; 0 = never expires)",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_config("[master]\ndatabase = \"x\"\nmesage_ttl = 5\n", "p.toml"),
                       "p.toml:3: master.mesage_ttl = 5: unknown key; known keys here: "
                       "batch_size, confirm_window, database, http_host, http_port, "
                       "message_ttl, model, poll_interval_ms, writer_roles",
                       ConfigError);
  CHECK_THROWS_WITH_AS(
      parse_config("[master]\ndatabase = \"x\"\n[[master.model]]\ncqrs_id = \"a.b\"\n"
                   "table = \"t\"\n",
                   "p.toml"),
      "p.toml:4: master.model[0].cqrs_id = \"a.b\": must not contain '.', '*', '#' or blanks "
      "(they are topic-routing syntax); use e.g. \"author\" or \"product_v2\"",
      ConfigError);
  CHECK_THROWS_WITH_AS(
      parse_config("[master]\ndatabase = \"x\"\n[[master.model]]\ncqrs_id = \"a\"\n", "p.toml"),
      "p.toml:3: master.model[0].table: missing; set the tracked table, e.g. \"public.author\"",
      ConfigError);
  CHECK_THROWS_WITH_AS(
      parse_config("[master]\ndatabase = \"x\"\n[[master.model]]\ncqrs_id = \"a\"\n"
                   "table = \"My Table\"\n",
                   "p.toml"),
      "p.toml:5: master.model[0].table = \"My Table\": table name 'My Table': character ' ' "
      "needs quoting; write it as \"Name\" (double quotes inside the TOML string: table = "
      "'public.\"Name\"')",
      ConfigError);
  CHECK_THROWS_WITH_AS(
      parse_config("[master]\ndatabase = \"x\"\n[[master.model]]\ncqrs_id = \"a\"\ntable = \"t\""
                   "\n[[master.model]]\ncqrs_id = \"a\"\ntable = \"u\"\n",
                   "p.toml"),
      "p.toml:7: master.model[1].cqrs_id = \"a\": duplicate; each cqrs_id may appear once in "
      "[master]",
      ConfigError);
  CHECK_THROWS_WITH_AS(parse_config("[replica]\ndatabase = \"x\"\n", "p.toml"),
                       "p.toml:1: replica.queue: missing; set the replica's queue name, e.g. "
                       "queue = \"replica\"",
                       ConfigError);
  CHECK_THROWS_WITH_AS(
      parse_config("[replica]\ndatabase = \"x\"\nqueue = \"q\"\nprefetch = 10\n", "p.toml"),
      "p.toml: replica.prefetch = 10: must be >= replica.batch_size (500), or a worker waits "
      "forever for a batch it cannot receive",
      ConfigError);
  CHECK_THROWS_WITH_AS(parse_config("[master]\n", "p.toml"),
                       "p.toml: master.database: missing; set it to the master's PostgreSQL URL "
                       "(postgresql://user@host/db) or export PGCQRS_MASTER_DATABASE",
                       ConfigError);
  CHECK_THROWS_WITH_AS(
      parse_config("[broker]\nurl = \"http://x\"\n[master]\ndatabase=\"x\"\n", "p.toml"),
      "p.toml: broker.url = \"http://x\": must start with amqp:// or amqps://, "
      "e.g. amqp://user:password@host:5672/vhost",
      ConfigError);
  CHECK_THROWS_WITH_AS(parse_config("[master\n", "p.toml"),
                       doctest::Contains("p.toml:1:8: not valid TOML: "), ConfigError);
  CHECK_THROWS_WITH_AS(parse_config("", "p.toml"),
                       "p.toml: neither [master] nor [replica] is configured; add at least one "
                       "(see docs/configuration.md)",
                       ConfigError);
  CHECK_THROWS_WITH_AS(
      parse_config("[master]\ndatabase = \"x\"\n[[master.model]]\ncqrs_id = \"a\"\ntable = \"t\""
                   "\nmeta = \"now()\"\n",
                   "p.toml"),
      "p.toml:6: master.model[0].meta = \"now()\": a string is ambiguous; for constant meta "
      "write a TOML table (meta = { origin = \"shop\" }), for an SQL expression use meta_sql = "
      "\"...\"",
      ConfigError);
}

TEST_CASE("config: constant meta becomes JSON; fields and tracked_fields are lists") {
  const auto c = parse_config(
      "[master]\ndatabase = \"x\"\n[[master.model]]\ncqrs_id = \"p\"\ntable = \"t\"\n"
      "fields = [\"id\", \"name\"]\ntracked_fields = [\"name\"]\nproduce = false\n"
      "meta = { origin = \"shop\", n = 1 }\n",
      "m.toml");
  const auto& m = c.master->models.at(0);
  CHECK(m.fields == std::vector<std::string>{"id", "name"});
  CHECK(m.tracked_fields == std::vector<std::string>{"name"});
  CHECK_FALSE(m.produce);
  REQUIRE(m.meta_json);
  CHECK(m.meta_json->find("\"origin\"") != std::string::npos);
  CHECK(m.meta_json->find("\"shop\"") != std::string::npos);
}

TEST_CASE("config: a master cqrs_id fits PostgreSQL's 63-byte names with its function suffix") {
  const auto model = [](const std::string& id) {
    return "[master]\ndatabase = \"x\"\n[[master.model]]\ncqrs_id = \"" + id +
           "\"\ntable = \"t\"\n";
  };
  // <cqrs_id>__serialize, the longest function name, is 63 bytes
  const std::string longest(52, 'a');
  CHECK(parse_config(model(longest), "p.toml").master->models.at(0).cqrs_id == longest);
  CHECK_THROWS_WITH_AS(parse_config(model(longest + "b"), "p.toml"),
                       ("p.toml:4: master.model[0].cqrs_id = \"" + longest +
                        "b\": is 53 bytes long; a master model's cqrs_id may have at most 52 "
                        "(pgcqrs names its trigger functions <cqrs_id>__serialize and the like, "
                        "and PostgreSQL cuts names at 63 bytes); choose a shorter one")
                           .c_str(),
                       ConfigError);
  // bytes, not characters: 26 two-byte characters are 52 bytes
  std::string accents;
  for (int i = 0; i < 26; ++i)
    accents += "\xc3\xa9";
  CHECK_NOTHROW(parse_config(model(accents), "p.toml"));
  CHECK_THROWS_AS(parse_config(model(accents + "x"), "p.toml"), ConfigError);
  // replicas name nothing after the cqrs_id: a long one is theirs to consume
  CHECK_NOTHROW(
      parse_config("[replica]\ndatabase = \"x\"\nqueue = \"q\"\n[[replica.model]]\n"
                   "cqrs_id = \"" +
                       std::string(80, 'r') + "\"\ntable = \"t\"\n",
                   "p.toml"));
}

TEST_CASE("config: master.writer_roles is a list of role names, empty by default") {
  CHECK(parse_config(kMinimal, "t.toml").master->writer_roles.empty());
  const auto c =
      parse_config("[master]\ndatabase = \"x\"\nwriter_roles = [\"app\", \"Worker\"]\n", "w.toml");
  CHECK(c.master->writer_roles == std::vector<std::string>{"app", "Worker"});
  CHECK(pgcqrs::render_config(c).find("writer_roles = [ 'app', 'Worker' ]") != std::string::npos);
  CHECK_THROWS_WITH_AS(
      parse_config("[master]\ndatabase = \"x\"\nwriter_roles = \"app\"\n", "w.toml"),
      "w.toml:3: master.writer_roles = \"app\": must be an array of role names, e.g. "
      "[\"app\", \"worker\"]",
      ConfigError);
  CHECK_THROWS_WITH_AS(
      parse_config("[master]\ndatabase = \"x\"\nwriter_roles = [\"app\", \"\"]\n", "w.toml"),
      "w.toml:3: master.writer_roles = [...]: must be an array of non-empty strings, e.g. "
      "[\"app\", \"worker\"]",
      ConfigError);
}

TEST_CASE("config: load_config names a missing file and the ways to give one") {
  CHECK_THROWS_WITH_AS(pgcqrs::load_config("/nonexistent/pgcqrs.toml"),
                       "config file '/nonexistent/pgcqrs.toml': not found; pass --config FILE or "
                       "set PGCQRS_CONFIG (see docs/configuration.md)",
                       ConfigError);
}
