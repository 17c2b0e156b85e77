// cqrs_bulk_dump: snapshot read with one binary COPY, lines spliced as the agent publishes them.
#include "master/dump.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <unistd.h>
#include <utility>

#include <libpq-fe.h>

#include "common/config.hpp"
#include "common/error.hpp"
#include "common/json.hpp"
#include "common/pg/session.hpp"
#include "common/progress.hpp"
#include "master/outbox.hpp"
#include "master/table_info.hpp"

namespace pgcqrs::master {
namespace {

constexpr std::string_view kCopySignature{"PGCOPY\n\377\r\n\0", 11};
constexpr std::size_t kFlushBytes = std::size_t{1} << 20;
constexpr std::string_view kNotJson = "MessageError: instance_data is not valid JSON";

[[noreturn]] void bad_stream(const std::string& what) {
  throw Error("COPY binary stream: " + what);
}

std::uint32_t read_u32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) | (std::uint32_t{u[2]} << 8) |
         std::uint32_t{u[3]};
}

std::int16_t read_i16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<std::int16_t>(static_cast<std::uint16_t>((u[0] << 8) | u[1]));
}

struct PgConnCloser {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
struct PgResultCloser {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using ConnPtr = std::unique_ptr<PGconn, PgConnCloser>;
using ResultPtr = std::unique_ptr<PGresult, PgResultCloser>;

// The server's primary message without libpq's "ERROR:  " prefix and trailing newline.
std::string pg_message(PGconn* c) {
  std::string m = PQerrorMessage(c);
  while (!m.empty() && (m.back() == '\n' || m.back() == ' '))
    m.pop_back();
  if (m.rfind("ERROR:  ", 0) == 0) m.erase(0, 8);
  return m;
}

ConnPtr connect_raw(const std::string& url) {
  const char* keys[] = {"dbname", "fallback_application_name", nullptr};
  const char* values[] = {url.c_str(), "pgcqrs bulk-dump", nullptr};
  ConnPtr c(PQconnectdbParams(keys, values, 1));
  if (!c) throw TransientError("connect to " + mask_secrets(url) + ": out of memory");
  if (PQstatus(c.get()) != CONNECTION_OK) {
    throw TransientError("connect to " + mask_secrets(url) + ": " + pg_message(c.get()));
  }
  return c;
}

ResultPtr exec(PGconn* c, const std::string& sql, ExecStatusType expected,
               const std::string& context) {
  ResultPtr r(PQexec(c, sql.c_str()));
  if (!r || PQresultStatus(r.get()) != expected) {
    if (PQstatus(c) != CONNECTION_OK) throw TransientError(context + ": " + pg_message(c));
    throw Error(context + ": " + pg_message(c));
  }
  return r;
}

void write_all(std::FILE* out, std::string& buf) {
  if (buf.empty()) return;
  if (std::fwrite(buf.data(), 1, buf.size(), out) != buf.size()) {
    throw Error(std::string("write dump output: ") + std::strerror(errno));
  }
  buf.clear();
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

[[noreturn]] void bad_timestamp(std::string_view text) {
  std::string m = "unexpected timestamp text from the server: ";
  m.append(text);
  throw Error(m);
}

// cqrs.django_ts() / django_ts_naive() of a timestamp whose text output (DateStyle ISO,
// TimeZone UTC) is `t`: to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS[.US]') (YYYY
// without the era: 44 BC is "0044") + "+00:00" for timestamptz; `t::text` for infinities.
void append_django_ts(std::string& out, std::string_view t, bool with_zone) {
  if (t == "infinity" || t == "-infinity") {
    json::append_pg_json_string(out, t);
    return;
  }
  std::string_view v = t;
  if (v.size() > 3 && v.substr(v.size() - 3) == " BC") v.remove_suffix(3);
  if (with_zone) {
    if (v.size() < 3 || v.substr(v.size() - 3) != "+00") bad_timestamp(t);
    v.remove_suffix(3);
  }
  // YYYY[Y...]-MM-DD HH:MM:SS[.f{1,6}]
  std::size_t i = 0;
  while (i < v.size() && is_digit(v[i]))
    ++i;
  if (i < 4) bad_timestamp(t);
  static constexpr std::string_view kShape = "-dd-dd dd:dd:dd";
  if (v.size() < i + kShape.size()) bad_timestamp(t);
  for (std::size_t k = 0; k < kShape.size(); ++k) {
    const char c = v[i + k];
    if (kShape[k] == 'd' ? !is_digit(c) : c != kShape[k]) bad_timestamp(t);
  }
  i += kShape.size();
  std::size_t frac = 0;
  if (i < v.size()) {
    if (v[i] != '.') bad_timestamp(t);
    frac = v.size() - i - 1;
    if (frac < 1 || frac > 6) bad_timestamp(t);
    for (std::size_t k = i + 1; k < v.size(); ++k) {
      if (!is_digit(v[k])) bad_timestamp(t);
    }
  }
  out.push_back('"');
  out.append(v);
  if (frac > 0) out.append(6 - frac, '0');
  if (with_zone) out.append("+00:00");
  out.push_back('"');
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<ClientKind> client_kind(std::uint32_t type_oid) {
  switch (type_oid) {
    case 20:    // int8
    case 21:    // int2
    case 23:    // int4
    case 700:   // float4
    case 701:   // float8
    case 1700:  // numeric
      return ClientKind::kNumber;
    case 16:  // bool
      return ClientKind::kBool;
    case 25:    // text
    case 1042:  // bpchar
    case 1043:  // varchar
    case 1082:  // date (json writes it as ISO text, like DateStyle ISO)
    case 2950:  // uuid
      return ClientKind::kString;
    case 114:   // json
    case 3802:  // jsonb
      return ClientKind::kJson;
    case 1184:  // timestamptz
      return ClientKind::kTimestampTz;
    case 1114:  // timestamp
      return ClientKind::kTimestamp;
    default:
      return std::nullopt;
  }
}

void append_client_value(std::string& out, ClientKind kind, std::string_view text) {
  switch (kind) {
    case ClientKind::kNumber:
      if (json::is_number_text(text)) {
        out.append(text);
      } else {
        json::append_pg_json_string(out, text);  // NaN, Infinity
      }
      return;
    case ClientKind::kBool:
      out.append(text == "t" ? "true" : "false");
      return;
    case ClientKind::kString:
      json::append_pg_json_string(out, text);
      return;
    case ClientKind::kJson:
      out.append(text);
      return;
    case ClientKind::kTimestampTz:
      append_django_ts(out, text, true);
      return;
    case ClientKind::kTimestamp:
      append_django_ts(out, text, false);
      return;
  }
}

namespace {

// A string splice_json() copies as it is: printable ASCII without `"`, `\` or `/`.
bool copies_plain(std::string_view text) {
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c > 0x7E || c == '"' || c == '\\' || c == '/') return false;
  }
  return true;
}

}  // namespace

bool append_line_value(std::string& out, ClientKind kind, std::string_view text,
                       std::size_t outer_depth) {
  switch (kind) {
    case ClientKind::kNumber:
      // splice_json() writes the number -0 as 0; NaN and infinities are plain strings
      if (text == "-0") {
        out.push_back('0');
        return true;
      }
      break;
    case ClientKind::kBool:
    case ClientKind::kTimestampTz:
    case ClientKind::kTimestamp:
      break;  // plain ASCII, copied by splice_json()
    case ClientKind::kString:
      if (copies_plain(text)) {
        out.push_back('"');
        out.append(text);
        out.push_back('"');
        return true;
      }
      {
        std::string escaped;
        json::append_pg_json_string(escaped, text);
        return splice_json(out, escaped, outer_depth);
      }
    case ClientKind::kJson:
      return splice_json(out, text, outer_depth);
  }
  append_client_value(out, kind, text);
  return true;
}

void decode_copy_text_row(std::string_view row, std::vector<std::string>& storage,
                          std::vector<std::optional<std::string_view>>& fields) {
  if (!row.empty() && row.back() == '\n') row.remove_suffix(1);
  fields.clear();
  // one slot per field, sized first: views into earlier slots must survive
  const auto count = static_cast<std::size_t>(std::count(row.begin(), row.end(), '\t')) + 1;
  if (storage.size() < count) storage.resize(count);
  std::size_t start = 0;
  for (;;) {
    std::size_t end = row.find('\t', start);
    if (end == std::string_view::npos) end = row.size();
    const std::string_view raw = row.substr(start, end - start);
    if (raw == "\\N") {
      fields.emplace_back(std::nullopt);
    } else if (raw.find('\\') == std::string_view::npos) {
      fields.emplace_back(raw);
    } else {
      std::string& s = storage[fields.size()];
      s.clear();
      for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] != '\\') {
          s.push_back(raw[i]);
          continue;
        }
        if (++i == raw.size()) throw Error("COPY text row: a field ends with a backslash");
        const char c = raw[i];
        switch (c) {
          case 'b':
            s.push_back('\b');
            break;
          case 'f':
            s.push_back('\f');
            break;
          case 'n':
            s.push_back('\n');
            break;
          case 'r':
            s.push_back('\r');
            break;
          case 't':
            s.push_back('\t');
            break;
          case 'v':
            s.push_back('\v');
            break;
          case 'x': {
            int v = 0;
            int n = 0;
            while (n < 2 && i + 1 < raw.size() && hex_value(raw[i + 1]) >= 0) {
              v = v * 16 + hex_value(raw[++i]);
              ++n;
            }
            if (n == 0) {
              s.push_back('x');
            } else {
              s.push_back(static_cast<char>(v));
            }
            break;
          }
          default:
            if (c >= '0' && c <= '7') {
              int v = c - '0';
              for (int n = 1; n < 3 && i + 1 < raw.size() && raw[i + 1] >= '0' && raw[i + 1] <= '7';
                   ++n) {
                v = v * 8 + (raw[++i] - '0');
              }
              s.push_back(static_cast<char>(v & 0xFF));
            } else {
              s.push_back(c);
            }
        }
      }
      fields.emplace_back(std::string_view(s));
    }
    if (end == row.size()) break;
    start = end + 1;
  }
}

std::string dump_select(const RowSql& r) {
  std::string sql = "SELECT (";
  sql.append(r.pk).append(")::text, ").append(r.instance_data).append(" FROM ").append(r.from);
  return sql;
}

std::string dump_copy(const RowSql& r) {
  std::string sql = "COPY (";
  sql.append(dump_select(r)).append(") TO STDOUT (FORMAT binary)");
  return sql;
}

std::string dump_count(const RowSql& r) {
  std::string sql = "SELECT count(*) FROM ";
  sql.append(r.from);
  return sql;
}

std::string processing_message(std::uint64_t total, int batch) {
  std::string m = "Processing ";
  m.append(std::to_string(total)).append(" records with batch size ").append(std::to_string(batch));
  return m;
}

std::string done_message(const DumpCounts& c) {
  std::string m = "Done!\n";
  m.append(std::to_string(c.saved)).append(" instance(s) saved.\n");
  m.append(std::to_string(c.processed)).append(" instance(s) processed.");
  return m;
}

std::string record_failed_message(std::string_view pk, std::string_view cause) {
  std::string m = "\nDump record failed for pk=";
  m.append(pk).append(": ").append(cause);
  return m;
}

void CopyBinaryDecoder::feed(std::string_view chunk) {
  if (pos_ >= buffer_.size()) {
    buffer_.assign(chunk);
  } else {
    buffer_.erase(0, pos_);
    buffer_.append(chunk);
  }
  pos_ = 0;
}

bool CopyBinaryDecoder::next(Fields& fields) {
  if (finished_) return false;
  const std::size_t avail = buffer_.size() - pos_;
  const char* p = buffer_.data() + pos_;
  if (!header_done_) {
    if (avail < kCopySignature.size() + 8) {
      const std::size_t n = std::min(avail, kCopySignature.size());
      if (std::string_view(p, n) != kCopySignature.substr(0, n)) bad_stream("no PGCOPY signature");
      return false;
    }
    if (std::string_view(p, kCopySignature.size()) != kCopySignature) {
      bad_stream("no PGCOPY signature");
    }
    const std::uint32_t flags = read_u32(p + kCopySignature.size());
    if ((flags & 0xFFFF0000U) != 0) bad_stream("unknown critical header flags");
    const std::uint32_t ext = read_u32(p + kCopySignature.size() + 4);
    const std::size_t header = kCopySignature.size() + 8 + std::size_t{ext};
    if (ext > (1U << 30)) bad_stream("header extension too long");
    if (avail < header) return false;
    pos_ += header;
    header_done_ = true;
    return next(fields);
  }
  if (avail < 2) return false;
  const std::int16_t count = read_i16(p);
  if (count == -1) {
    finished_ = true;
    pos_ += 2;
    return false;
  }
  if (count < 0) bad_stream("negative field count " + std::to_string(count));
  std::size_t at = 2;
  fields.clear();
  for (int i = 0; i < count; ++i) {
    if (avail < at + 4) return false;
    const auto len = static_cast<std::int32_t>(read_u32(p + at));
    at += 4;
    if (len == -1) {
      fields.emplace_back(std::nullopt);
      continue;
    }
    if (len < 0) bad_stream("negative field length " + std::to_string(len));
    if (avail < at + static_cast<std::size_t>(len)) return false;
    fields.emplace_back(std::string_view(p + at, static_cast<std::size_t>(len)));
    at += static_cast<std::size_t>(len);
  }
  pos_ += at;
  return true;
}

void CopyBinaryDecoder::finish() const {
  if (!finished_) bad_stream("ended before its trailer");
  if (pos_ != buffer_.size()) bad_stream("data after the trailer");
}

std::optional<std::string> append_dump_line(std::string& out,
                                            const std::optional<std::string_view>& instance_data) {
  if (!instance_data) return "MessageError: instance_data is NULL (the serializer returned NULL)";
  const std::size_t before = out.size();
  out.push_back('\n');
  if (!splice_json(out, *instance_data)) {
    out.resize(before);
    return std::string(kNotJson);
  }
  return std::nullopt;
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  const std::filesystem::path p(path_);
  std::string name = ".";
  name.append(p.filename().string()).append(".tmp.").append(std::to_string(::getpid()));
  temp_ = (p.parent_path() / name).string();
  file_ = std::fopen(temp_.c_str(), "wbx");
  if (file_ == nullptr) throw Error("create " + temp_ + ": " + std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (file_ != nullptr) std::fclose(file_);
  if (!committed_) std::remove(temp_.c_str());
}

void AtomicFile::commit() {
  const auto fail = [this](const std::string& what) {
    throw Error(what + " " + temp_ + ": " + std::strerror(errno));
  };
  if (std::fflush(file_) != 0) fail("write");
  if (::fsync(fileno(file_)) != 0) fail("sync");
  const int rc = std::fclose(file_);
  file_ = nullptr;
  if (rc != 0) fail("close");
  if (std::rename(temp_.c_str(), path_.c_str()) != 0) {
    throw Error("rename " + temp_ + " to " + path_ + ": " + std::strerror(errno));
  }
  committed_ = true;
}

namespace {

// The client-formatted dump of a model: one text COPY of the columns json_build_object()
// reads, in row_sql()'s pair order, and how to write each.
struct ClientPlan {
  std::string copy_sql;
  std::vector<std::string> keys;  // `"name":` as a dump line carries the key
  std::vector<ClientKind> kinds;
};

constexpr const char* kColumnTypes = R"sql(
SELECT a.attname::text, (CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END)::bigint
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
)sql";

// row_sql()'s json_build_object call, reproduced by the client; nullopt when the model is not
// one it reproduces exactly: a serializer, more pairs than one call takes (the calls are then
// merged through jsonb, which reorders keys), or a column type client_kind() does not know.
std::optional<ClientPlan> client_plan(pqxx::transaction_base& txn, const MasterModel& model,
                                      const TableInfo& info, const RowSql& rs, const SqlQuoter& q) {
  if (model.serializer) return std::nullopt;
  std::string table = q.name(info.table.schema);
  table.append(".").append(q.name(info.table.name));
  std::map<std::string, std::uint32_t> oids;
  for (const auto& row : txn.exec_params(kColumnTypes, table)) {
    oids[row[0].as<std::string>()] = static_cast<std::uint32_t>(row[1].as<std::int64_t>());
  }
  const Column* pk = info.column(info.primary_key);
  if (pk == nullptr) return std::nullopt;
  // row_sql()'s fields: the key, then the table's columns in order (model.fields when set)
  std::vector<const Column*> fields{pk};
  const std::set<std::string> wanted(model.fields.begin(), model.fields.end());
  for (const auto& c : info.columns) {
    if (c.name == info.primary_key || c.name == "cqrs_revision" || c.name == "cqrs_updated") {
      continue;
    }
    if (wanted.empty() || wanted.count(c.name) != 0) fields.push_back(&c);
  }
  if (fields.size() + 2 > 45) return std::nullopt;  // capture.cpp's kPairsPerCall
  const auto oid_of = [&](const std::string& name) -> std::uint32_t {
    const auto it = oids.find(name);
    return it == oids.end() ? 0 : it->second;
  };
  const std::uint32_t revision = oid_of("cqrs_revision");
  if (revision != 20 && revision != 21 && revision != 23) return std::nullopt;
  if (oid_of("cqrs_updated") != 1184) return std::nullopt;  // django_ts(timestamptz)

  ClientPlan plan;
  std::string select = "SELECT ";
  const auto add = [&](const std::string& name, ClientKind kind, const std::string& expr) {
    std::string pg_key;
    json::append_pg_json_string(pg_key, name);
    std::string key;
    splice_json(key, pg_key);  // a JSON string: cannot fail
    key.push_back(':');
    plan.keys.push_back(std::move(key));
    plan.kinds.push_back(kind);
    if (plan.kinds.size() > 1) select.append(", ");
    select.append(expr);
  };
  const auto add_column = [&](const Column& c) {
    const auto kind = c.is_array ? std::nullopt : client_kind(oid_of(c.name));
    if (!kind) return false;
    // capture.cpp's value() wraps timestamps by the catalog's base type name
    if ((*kind == ClientKind::kTimestampTz) != (c.base_type == "timestamptz")) return false;
    if ((*kind == ClientKind::kTimestamp) != (c.base_type == "timestamp")) return false;
    std::string expr = "n.";
    expr.append(q.name(c.name));
    add(c.name, *kind, expr);
    return true;
  };
  if (!add_column(*pk)) return std::nullopt;
  add("cqrs_revision", ClientKind::kNumber, "n.cqrs_revision");
  add("cqrs_updated", ClientKind::kTimestampTz, "n.cqrs_updated");
  for (std::size_t i = 1; i < fields.size(); ++i) {
    if (!add_column(*fields[i])) return std::nullopt;
  }
  select.append(" FROM ").append(rs.from);
  plan.copy_sql = "COPY (";
  plan.copy_sql.append(select).append(") TO STDOUT");
  return plan;
}

struct Freer {
  char* p;
  ~Freer() { PQfreemem(p); }
};

}  // namespace

DumpCounts dump_table(const std::string& database_url, const MasterModel& model, std::FILE* out,
                      const DumpOptions& options, std::FILE* err) {
  RowSql rs;
  std::optional<ClientPlan> plan;
  {
    pg::Session meta(database_url, "pgcqrs bulk-dump");
    pqxx::read_transaction txn(meta.conn());
    const TableInfo info = describe_table(txn, model.table);
    if (!info.has_revision || !info.has_updated) {
      throw ConfigError("master.model '" + model.cqrs_id + "' (" + quoted(model.table) +
                        "): no cqrs_revision/cqrs_updated column; install capture first: "
                        "pgcqrs master install");
    }
    const SqlQuoter q = quoter_for(txn);
    rs = row_sql(model, info, q);
    if (options.formatting == DumpFormatting::kAuto) plan = client_plan(txn, model, info, rs, q);
  }
  const std::string context = "dump " + model.cqrs_id + " from " + quoted(model.table);
  ConnPtr conn = connect_raw(database_url);
  PGconn* c = conn.get();
  if (plan) {
    // the client parses the text output of dates and timestamps in these settings
    exec(c, "SET TimeZone = 'UTC'", PGRES_COMMAND_OK, context);
    exec(c, "SET DateStyle = 'ISO, MDY'", PGRES_COMMAND_OK, context);
  }
  exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", PGRES_COMMAND_OK, context);

  const bool terminal = ::isatty(fileno(err)) == 1;
  const int batch = options.batch > 0 ? options.batch : 10000;
  std::uint64_t total = 0;
  if (Progress::choose_mode(options.progress, terminal) != Progress::Mode::kSilent) {
    const ResultPtr r = exec(c, dump_count(rs), PGRES_TUPLES_OK, context);
    total = std::stoull(PQgetvalue(r.get(), 0, 0));
  }
  if (options.progress) {
    std::fprintf(err, "%s\n", processing_message(total, batch).c_str());
    std::fflush(err);
  }
  Progress progress("Dumping " + model.cqrs_id, total, options.progress, err);

  std::string buf;
  buf.reserve(kFlushBytes + 65536);
  buf.append(model.cqrs_id);
  exec(c, plan ? plan->copy_sql : dump_copy(rs), PGRES_COPY_OUT, context);

  DumpCounts counts;
  counts.client_formatted = plan.has_value();
  std::uint64_t in_batch = 0;
  const auto counted = [&](const std::optional<std::string_view>& pk,
                           const std::optional<std::string>& failure) {
    ++counts.processed;
    if (failure) {
      std::fprintf(err, "%s\n", record_failed_message(pk ? *pk : "None", *failure).c_str());
    } else {
      ++counts.saved;
    }
    if (++in_batch == static_cast<std::uint64_t>(batch)) {
      progress.add(in_batch);
      in_batch = 0;
    }
  };
  CopyBinaryDecoder decoder;
  CopyBinaryDecoder::Fields fields;
  std::vector<std::string> storage;
  for (;;) {
    char* data = nullptr;
    const int n = PQgetCopyData(c, &data, 0);
    if (n == -1) break;
    if (n == -2) throw TransientError(context + ": " + pg_message(c));
    const Freer freer{data};
    const std::string_view chunk(data, static_cast<std::size_t>(n));
    if (plan) {
      // text format: libpq returns one row per call
      decode_copy_text_row(chunk, storage, fields);
      if (fields.size() != plan->kinds.size()) {
        throw Error("COPY text row: expected " + std::to_string(plan->kinds.size()) +
                    " fields, got " + std::to_string(fields.size()));
      }
      // the line as append_dump_line() would splice json_build_object's text, written directly
      const std::size_t before = buf.size();
      buf.append("\n{");
      bool valid = true;
      for (std::size_t i = 0; i < fields.size() && valid; ++i) {
        if (i != 0) buf.push_back(',');
        buf.append(plan->keys[i]);
        if (fields[i]) {
          valid = append_line_value(buf, plan->kinds[i], *fields[i], 1);
        } else {
          buf.append("null");
        }
      }
      buf.push_back('}');
      if (valid) {
        counted(fields[0], std::nullopt);
      } else {
        buf.resize(before);
        counted(fields[0], std::string(kNotJson));
      }
    } else {
      decoder.feed(chunk);
      while (decoder.next(fields)) {
        if (fields.size() != 2) {
          bad_stream("expected 2 fields, got " + std::to_string(fields.size()));
        }
        counted(fields[0], append_dump_line(buf, fields[1]));
      }
    }
    if (buf.size() >= kFlushBytes) write_all(out, buf);
  }
  bool copy_ok = false;
  while (PGresult* raw = PQgetResult(c)) {
    const ResultPtr r(raw);
    copy_ok = PQresultStatus(r.get()) == PGRES_COMMAND_OK;
  }
  if (!copy_ok) throw Error(context + ": " + pg_message(c));
  if (!plan) decoder.finish();
  exec(c, "COMMIT", PGRES_COMMAND_OK, context);
  progress.add(in_batch);
  write_all(out, buf);
  if (std::fflush(out) != 0) throw Error(std::string("write dump output: ") + std::strerror(errno));
  progress.finish();
  return counts;
}

}  // namespace pgcqrs::master
