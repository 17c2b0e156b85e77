// Loading, validating and rendering pgcqrs.toml; environment overrides for secrets.
#include "common/config.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>

#include <toml++/toml.h>

#include "common/error.hpp"
#include "common/topology.hpp"

namespace pgcqrs {
namespace {

std::string node_text(const toml::node& n) {
  std::ostringstream os;
  if (const auto* s = n.as_string()) {
    os << '"' << s->get() << '"';
  } else if (n.is_table()) {
    os << "{...}";
  } else if (n.is_array()) {
    os << "[...]";
  } else {
    n.visit([&os](const auto& v) { os << v; });
  }
  std::string out = os.str();
  if (out.size() > 80) out = out.substr(0, 77) + "...";
  return out;
}

// Reads one TOML table, remembering the keys it consumed so leftovers are reported.
class Reader {
 public:
  Reader(const toml::table& table, std::string path, const std::string& source)
      : table_(table), path_(std::move(path)), source_(source) {}

  [[noreturn]] void fail(const toml::node* node, const std::string& key,
                         const std::string& cause) const {
    std::string where = source_;
    const toml::node& at = node != nullptr ? *node : static_cast<const toml::node&>(table_);
    if (at.source().begin.line > 0) where += ":" + std::to_string(at.source().begin.line);
    std::string msg = where + ": " + qualified(key);
    if (node != nullptr) msg += " = " + node_text(*node);
    throw ConfigError(msg + ": " + cause);
  }

  [[nodiscard]] std::string qualified(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }

  const toml::node* node(const std::string& key) {
    seen_.insert(key);
    return table_.get(key);
  }

  std::optional<std::string> string(const std::string& key) {
    const toml::node* n = node(key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_string()) fail(n, key, "must be a string");
    return n->as_string()->get();
  }

  std::string required_string(const std::string& key, const std::string& fix) {
    auto v = string(key);
    if (!v) fail(nullptr, key, "missing; " + fix);
    if (v->empty()) fail(table_.get(key), key, "must not be empty; " + fix);
    return *v;
  }

  std::optional<bool> boolean(const std::string& key) {
    const toml::node* n = node(key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_boolean()) fail(n, key, "must be true or false");
    return n->as_boolean()->get();
  }

  std::optional<std::int64_t> integer(const std::string& key, std::int64_t min, std::int64_t max,
                                      const std::string& meaning) {
    const toml::node* n = node(key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_integer()) fail(n, key, "must be an integer (" + meaning + ")");
    const std::int64_t v = n->as_integer()->get();
    if (v < min || v > max) {
      fail(n, key,
           "must be between " + std::to_string(min) + " and " + std::to_string(max) + " (" +
               meaning + ")");
    }
    return v;
  }

  std::optional<double> number(const std::string& key, double min, double max,
                               const std::string& meaning) {
    const toml::node* n = node(key);
    if (n == nullptr) return std::nullopt;
    double v = 0;
    if (n->is_integer()) {
      v = static_cast<double>(n->as_integer()->get());
    } else if (n->is_floating_point()) {
      v = n->as_floating_point()->get();
    } else {
      fail(n, key, "must be a number (" + meaning + ")");
    }
    if (!(v >= min && v <= max)) {
      fail(n, key,
           "must be between " + fmt_num(min) + " and " + fmt_num(max) + " (" + meaning + ")");
    }
    return v;
  }

  // `what` and `example` name the items in messages: "column names", "[\"id\", \"name\"]".
  std::vector<std::string> string_list(const std::string& key,
                                       const std::string& what = "column names",
                                       const std::string& example = "[\"id\", \"name\"]") {
    const toml::node* n = node(key);
    if (n == nullptr) return {};
    const auto* arr = n->as_array();
    if (arr == nullptr) fail(n, key, "must be an array of " + what + ", e.g. " + example);
    std::vector<std::string> out;
    for (const auto& item : *arr) {
      if (!item.is_string() || item.as_string()->get().empty()) {
        fail(n, key, "must be an array of non-empty strings, e.g. " + example);
      }
      const std::string& s = item.as_string()->get();
      if (std::find(out.begin(), out.end(), s) != out.end()) {
        fail(n, key, "lists \"" + s + "\" twice");
      }
      out.push_back(s);
    }
    return out;
  }

  const toml::table* table(const std::string& key) {
    const toml::node* n = node(key);
    if (n == nullptr) return nullptr;
    if (!n->is_table()) fail(n, key, "must be a table ([" + qualified(key) + "])");
    return n->as_table();
  }

  // Rejects keys nobody read: a typo must not silently fall back to a default.
  void finish() const {
    for (const auto& [k, v] : table_) {
      const std::string key(k.str());
      if (seen_.count(key) == 0) {
        std::string allowed;
        for (const auto& s : seen_)
          allowed += (allowed.empty() ? "" : ", ") + s;
        fail(&v, key, "unknown key; known keys here: " + allowed);
      }
    }
  }

  [[nodiscard]] const toml::table& raw() const { return table_; }

 private:
  static std::string fmt_num(double d) {
    std::ostringstream os;
    os << d;
    return os.str();
  }

  const toml::table& table_;
  std::string path_;
  const std::string& source_;
  std::set<std::string> seen_;
};

std::string env(const char* name) {
  const char* v = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): read at start-up only
  return v == nullptr ? std::string() : std::string(v);
}

void check_cqrs_id(Reader& r, const std::string& id) {
  if (id.find_first_of(".*# \t") != std::string::npos) {
    r.fail(r.raw().get("cqrs_id"), "cqrs_id",
           "must not contain '.', '*', '#' or blanks (they are topic-routing syntax); use e.g. "
           "\"author\" or \"product_v2\"");
  }
}

// PostgreSQL cuts identifiers at 63 bytes, and capture names a master model's functions
// `<cqrs_id>__<what>` (master/capture.hpp function_name; the longest is `__serialize`): a
// longer cqrs_id would give two models, or two functions of one model, the same name.
constexpr std::size_t kMaxMasterCqrsIdBytes = 63 - std::string_view("__serialize").size();

void check_master_cqrs_id(Reader& r, const std::string& id) {
  if (id.size() > kMaxMasterCqrsIdBytes) {
    std::string cause = "is ";
    cause += std::to_string(id.size());
    cause += " bytes long; a master model's cqrs_id may have at most ";
    cause += std::to_string(kMaxMasterCqrsIdBytes);
    cause +=
        " (pgcqrs names its trigger functions <cqrs_id>__serialize and the like, and "
        "PostgreSQL cuts names at 63 bytes); choose a shorter one";
    r.fail(r.raw().get("cqrs_id"), "cqrs_id", cause);
  }
}

HttpEndpoint read_http(Reader& r) {
  HttpEndpoint h;
  if (auto host = r.string("http_host")) {
    if (*host != "127.0.0.1" && *host != "localhost" && *host != "::1" && *host != "0.0.0.0") {
      r.fail(r.raw().get("http_host"), "http_host",
             "must be an IP address to listen on, e.g. \"127.0.0.1\" (loopback, the default)");
    }
    h.host = *host;
  }
  if (auto p = r.integer("http_port", 0, 65535, "TCP port for /metrics and /healthz; 0 = off")) {
    h.port = static_cast<std::uint16_t>(*p);
  }
  return h;
}

std::string toml_to_json(const toml::node& n) {
  std::ostringstream os;
  if (const auto* t = n.as_table()) {
    os << toml::json_formatter{*t, toml::format_flags::none};
  } else if (const auto* a = n.as_array()) {
    os << toml::json_formatter{*a, toml::format_flags::none};
  } else {
    toml::table wrap;
    wrap.insert("v", n);
    std::ostringstream tmp;
    tmp << toml::json_formatter{wrap, toml::format_flags::none};
    const std::string s = tmp.str();  // {"v":<value>} or {"v" : <value>}
    const auto colon = s.find(':');
    std::string value = s.substr(colon + 1, s.rfind('}') - colon - 1);
    value.erase(0, value.find_first_not_of(" \n"));
    value.erase(value.find_last_not_of(" \n") + 1);
    return value;
  }
  return os.str();
}

MasterModel read_master_model(Reader& r) {
  MasterModel m;
  m.cqrs_id = r.required_string("cqrs_id", "set the entity name replicas subscribe to");
  check_cqrs_id(r, m.cqrs_id);
  check_master_cqrs_id(r, m.cqrs_id);
  const std::string table =
      r.required_string("table", "set the tracked table, e.g. \"public.author\"");
  try {
    m.table = parse_qualified_name(table);
  } catch (const ConfigError& e) {
    r.fail(r.raw().get("table"), "table", e.what());
  }
  m.fields = r.string_list("fields");
  m.tracked_fields = r.string_list("tracked_fields");
  m.filter = r.string("filter");
  m.serializer = r.string("serializer");
  m.produce = r.boolean("produce").value_or(true);
  if (const toml::node* meta = r.node("meta")) {
    if (meta->is_string()) {
      r.fail(meta, "meta",
             "a string is ambiguous; for constant meta write a TOML table (meta = { origin = "
             "\"shop\" }), for an SQL expression use meta_sql = \"...\"");
    }
    m.meta_json = toml_to_json(*meta);
  }
  m.meta_sql = r.string("meta_sql");
  if (m.meta_sql && m.meta_json) {
    r.fail(r.raw().get("meta_sql"), "meta_sql", "set either meta or meta_sql, not both");
  }
  r.finish();
  return m;
}

ReplicaModel read_replica_model(Reader& r) {
  ReplicaModel m;
  m.cqrs_id = r.required_string("cqrs_id", "set the entity name to consume");
  check_cqrs_id(r, m.cqrs_id);
  const std::string table =
      r.required_string("table", "set the read-model table, e.g. \"public.author\"");
  try {
    m.table = parse_qualified_name(table);
  } catch (const ConfigError& e) {
    r.fail(r.raw().get("table"), "table", e.what());
  }
  if (const toml::table* mapping = r.table("mapping")) {
    std::set<std::string> columns;
    for (const auto& [k, v] : *mapping) {
      if (!v.is_string() || v.as_string()->get().empty()) {
        r.fail(&v, "mapping." + std::string(k.str()),
               "must be the replica column name (a non-empty string)");
      }
      if (!columns.insert(v.as_string()->get()).second) {
        r.fail(&v, "mapping." + std::string(k.str()),
               "maps a second master field to the same column");
      }
      m.mapping.emplace(std::string(k.str()), v.as_string()->get());
    }
  }
  m.apply_function = r.string("apply_function");
  m.only_direct_syncs = r.boolean("only_direct_syncs").value_or(false);
  r.finish();
  return m;
}

template <class Model, class ReadFn>
std::vector<Model> read_models(Reader& parent, const std::string& section,
                               const std::string& source, ReadFn read) {
  std::vector<Model> out;
  const toml::node* n = parent.node("model");
  if (n == nullptr) return out;
  const auto* arr = n->as_array();
  if (arr == nullptr || !arr->is_array_of_tables()) {
    parent.fail(n, "model", "must be an array of tables: write each as [[" + section + ".model]]");
  }
  std::set<std::string> ids;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const auto& t = *arr->get(i)->as_table();
    Reader r(t, section + ".model[" + std::to_string(i) + "]", source);
    Model m = read(r);
    if (!ids.insert(m.cqrs_id).second) {
      r.fail(t.get("cqrs_id"), "cqrs_id",
             "duplicate; each cqrs_id may appear once in [" + section + "]");
    }
    out.push_back(std::move(m));
  }
  return out;
}

std::string replace_password(const std::string& url, const std::string& password) {
  const auto scheme_end = url.find("://");
  const auto at = url.find('@', scheme_end == std::string::npos ? 0 : scheme_end + 3);
  if (scheme_end == std::string::npos || at == std::string::npos) {
    throw ConfigError(std::string(kEnvBrokerPassword) +
                      " is set but the broker URL has no user part; write amqp://user@host/");
  }
  const auto user_start = scheme_end + 3;
  const auto colon = url.find(':', user_start);
  const auto user_end = (colon != std::string::npos && colon < at) ? colon : at;
  std::string encoded;
  for (const char ch : password) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      encoded += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      encoded += '%';
      encoded += kHex[c >> 4];
      encoded += kHex[c & 0xF];
    }
  }
  return url.substr(0, user_end) + ":" + encoded + url.substr(at);
}

}  // namespace

const MasterModel* Config::find_master_model(std::string_view cqrs_id) const {
  if (!master) return nullptr;
  for (const auto& m : master->models) {
    if (m.cqrs_id == cqrs_id) return &m;
  }
  return nullptr;
}

const ReplicaModel* Config::find_replica_model(std::string_view cqrs_id) const {
  if (!replica) return nullptr;
  for (const auto& m : replica->models) {
    if (m.cqrs_id == cqrs_id) return &m;
  }
  return nullptr;
}

std::string resolve_config_path(const std::optional<std::string>& flag) {
  if (flag && !flag->empty()) return *flag;
  std::string from_env = env(kEnvConfigPath);
  return from_env.empty() ? std::string(kDefaultConfigPath) : from_env;
}

Config load_config(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw ConfigError("config file '" + path + "': not found; pass --config FILE or set " +
                      kEnvConfigPath + " (see docs/configuration.md)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("config file '" + path + "': cannot be read (permissions?)");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
}

Config parse_config(std::string_view toml_text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    throw ConfigError(source + ":" + std::to_string(e.source().begin.line) + ":" +
                      std::to_string(e.source().begin.column) +
                      ": not valid TOML: " + std::string(e.description()));
  }
  Config c;
  c.source = source;
  Reader top(root, "", source);

  if (const toml::table* b = top.table("broker")) {
    Reader r(*b, "broker", source);
    if (auto url = r.string("url")) c.broker.url = *url;
    if (auto ex = r.string("exchange")) {
      if (ex->empty())
        r.fail(b->get("exchange"), "exchange", "must not be empty; default is \"cqrs\"");
      c.broker.exchange = *ex;
    }
    r.finish();
  }
  if (std::string u = env(kEnvBrokerUrl); !u.empty()) c.broker.url = u;
  if (std::string p = env(kEnvBrokerPassword); !p.empty())
    c.broker.url = replace_password(c.broker.url, p);
  if (c.broker.url.rfind("amqp://", 0) != 0 && c.broker.url.rfind("amqps://", 0) != 0) {
    throw ConfigError(source + ": broker.url = \"" + mask_secrets(c.broker.url) +
                      "\": must start with amqp:// or amqps://, e.g. "
                      "amqp://user:password@host:5672/vhost");
  }

  if (const toml::table* m = top.table("master")) {
    Reader r(*m, "master", source);
    MasterConfig mc;
    if (auto db = r.string("database")) mc.database = *db;
    if (auto ttl = r.integer("message_ttl", 0, 10LL * 365 * 86400, "seconds; 0 = never expires")) {
      mc.message_ttl = std::chrono::seconds(*ttl);
    }
    if (auto v = r.integer("batch_size", 1, 100000, "outbox rows per round"))
      mc.batch_size = static_cast<int>(*v);
    if (auto v = r.integer("confirm_window", 1, 100000, "unconfirmed publishes in flight")) {
      mc.confirm_window = static_cast<int>(*v);
    }
    if (auto v = r.integer("poll_interval_ms", 10, 3600000, "milliseconds between outbox polls")) {
      mc.poll_interval = std::chrono::milliseconds(*v);
    }
    mc.http = read_http(r);
    mc.writer_roles = r.string_list("writer_roles", "role names", "[\"app\", \"worker\"]");
    mc.models = read_models<MasterModel>(r, "master", source, read_master_model);
    r.finish();
    if (std::string db = env(kEnvMasterDatabase); !db.empty()) mc.database = db;
    if (mc.database.empty()) {
      throw ConfigError(source +
                        ": master.database: missing; set it to the master's PostgreSQL "
                        "URL (postgresql://user@host/db) or export " +
                        kEnvMasterDatabase);
    }
    c.master = std::move(mc);
  }

  if (const toml::table* rt = top.table("replica")) {
    Reader r(*rt, "replica", source);
    ReplicaConfig rc;
    if (auto db = r.string("database")) rc.database = *db;
    rc.queue = r.required_string("queue", "set the replica's queue name, e.g. queue = \"replica\"");
    rc.dead_letter_queue =
        r.string("dead_letter_queue").value_or(topology::default_dead_letter_queue(rc.queue));
    if (auto v = r.integer("max_retries", 0, 1000000, "retries before dead-lettering; 0 = none")) {
      rc.max_retries = static_cast<int>(*v);
    }
    if (auto v = r.integer("retry_delay", 0, 86400, "seconds before the first retry")) {
      rc.retry_delay = std::chrono::seconds(*v);
    }
    if (auto v = r.number("retry_backoff", 1.0, 10.0, "delay multiplier per retry; 1 = constant")) {
      rc.retry_backoff = *v;
    }
    if (auto v = r.integer("retry_delay_max", 0, 7 * 86400, "seconds; cap of the retry delay")) {
      rc.retry_delay_max = std::chrono::seconds(*v);
    }
    if (auto v =
            r.integer("dead_message_ttl", 0, 10LL * 365 * 86400, "seconds; 0 = never expire")) {
      rc.dead_message_ttl = std::chrono::seconds(*v);
    }
    if (auto v = r.integer("message_ttl", 0, 10LL * 365 * 86400,
                           "seconds; for bodies without expires")) {
      rc.message_ttl = std::chrono::seconds(*v);
    }
    if (auto v = r.integer("tombstone_ttl", 60, 10LL * 365 * 86400,
                           "seconds a delete tombstone is kept")) {
      rc.tombstone_ttl = std::chrono::seconds(*v);
    }
    if (auto v = r.integer("prefetch", 1, 65535, "unacked deliveries per worker"))
      rc.prefetch = static_cast<int>(*v);
    if (auto v = r.integer("batch_size", 1, 100000, "deliveries applied per transaction")) {
      rc.batch_size = static_cast<int>(*v);
    }
    if (auto v = r.integer("batch_timeout_ms", 1, 60000, "milliseconds to fill a batch")) {
      rc.batch_timeout = std::chrono::milliseconds(*v);
    }
    rc.http = read_http(r);
    rc.models = read_models<ReplicaModel>(r, "replica", source, read_replica_model);
    r.finish();
    if (rc.prefetch < rc.batch_size) {
      throw ConfigError(source + ": replica.prefetch = " + std::to_string(rc.prefetch) +
                        ": must be >= replica.batch_size (" + std::to_string(rc.batch_size) +
                        "), or a worker waits forever for a batch it cannot receive");
    }
    if (std::string db = env(kEnvReplicaDatabase); !db.empty()) rc.database = db;
    if (rc.database.empty()) {
      throw ConfigError(source +
                        ": replica.database: missing; set it to the replica's PostgreSQL "
                        "URL (postgresql://user@host/db) or export " +
                        kEnvReplicaDatabase);
    }
    c.replica = std::move(rc);
  }
  top.finish();
  if (!c.master && !c.replica) {
    throw ConfigError(source +
                      ": neither [master] nor [replica] is configured; add at least one "
                      "(see docs/configuration.md)");
  }
  return c;
}

std::string mask_secrets(std::string_view url) {
  std::string s(url);
  const auto scheme_end = s.find("://");
  if (scheme_end != std::string::npos) {
    const auto start = scheme_end + 3;
    const auto at = s.find('@', start);
    const auto slash = s.find('/', start);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      const auto colon = s.find(':', start);
      if (colon != std::string::npos && colon < at) s.replace(colon + 1, at - colon - 1, "****");
    }
  }
  // key=value form and URI query parameters: password=...
  for (std::size_t pos = s.find("password="); pos != std::string::npos;
       pos = s.find("password=", pos + 1)) {
    const auto v = pos + 9;
    auto end = s.find_first_of(" &", v);
    if (end == std::string::npos) end = s.size();
    s.replace(v, end - v, "****");
  }
  return s;
}

std::string render_config(const Config& c) {
  auto arr = [](const std::vector<std::string>& v) {
    toml::array a;
    for (const auto& s : v)
      a.push_back(s);
    return a;
  };
  toml::table root;
  root.insert("broker",
              toml::table{{"url", mask_secrets(c.broker.url)}, {"exchange", c.broker.exchange}});
  if (c.master) {
    const auto& m = *c.master;
    toml::table t{{"database", mask_secrets(m.database)},
                  {"message_ttl", m.message_ttl.count()},
                  {"batch_size", m.batch_size},
                  {"confirm_window", m.confirm_window},
                  {"poll_interval_ms", m.poll_interval.count()},
                  {"http_host", m.http.host},
                  {"http_port", m.http.port},
                  {"writer_roles", arr(m.writer_roles)}};
    toml::array models;
    for (const auto& mm : m.models) {
      toml::table mt{{"cqrs_id", mm.cqrs_id},
                     {"table", quoted(mm.table)},
                     {"fields", arr(mm.fields)},
                     {"tracked_fields", arr(mm.tracked_fields)},
                     {"produce", mm.produce}};
      if (mm.filter) mt.insert("filter", *mm.filter);
      if (mm.serializer) mt.insert("serializer", *mm.serializer);
      if (mm.meta_sql) mt.insert("meta_sql", *mm.meta_sql);
      if (mm.meta_json) mt.insert("meta_json", *mm.meta_json);
      models.push_back(std::move(mt));
    }
    t.insert("model", std::move(models));
    root.insert("master", std::move(t));
  }
  if (c.replica) {
    const auto& r = *c.replica;
    toml::table t{{"database", mask_secrets(r.database)},
                  {"queue", r.queue},
                  {"dead_letter_queue", r.dead_letter_queue},
                  {"max_retries", r.max_retries},
                  {"retry_delay", r.retry_delay.count()},
                  {"retry_backoff", r.retry_backoff},
                  {"retry_delay_max", r.retry_delay_max.count()},
                  {"dead_message_ttl", r.dead_message_ttl.count()},
                  {"message_ttl", r.message_ttl.count()},
                  {"tombstone_ttl", r.tombstone_ttl.count()},
                  {"prefetch", r.prefetch},
                  {"batch_size", r.batch_size},
                  {"batch_timeout_ms", r.batch_timeout.count()},
                  {"http_host", r.http.host},
                  {"http_port", r.http.port}};
    toml::array models;
    for (const auto& rm : r.models) {
      toml::table mapping;
      for (const auto& [k, v] : rm.mapping)
        mapping.insert(k, v);
      toml::table mt{{"cqrs_id", rm.cqrs_id},
                     {"table", quoted(rm.table)},
                     {"mapping", std::move(mapping)},
                     {"only_direct_syncs", rm.only_direct_syncs}};
      if (rm.apply_function) mt.insert("apply_function", *rm.apply_function);
      models.push_back(std::move(mt));
    }
    t.insert("model", std::move(models));
    root.insert("replica", std::move(t));
  }
  std::ostringstream os;
  os << root << "\n";
  return os.str();
}

}  // namespace pgcqrs
