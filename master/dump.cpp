// cqrs_bulk_dump: snapshot read with one binary COPY, lines spliced as the agent publishes them.
#include "master/dump.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <unistd.h>
#include <utility>

#include <libpq-fe.h>

#include "common/config.hpp"
#include "common/error.hpp"
#include "common/pg/session.hpp"
#include "common/progress.hpp"
#include "master/outbox.hpp"
#include "master/table_info.hpp"

namespace pgcqrs::master {
namespace {

constexpr std::string_view kCopySignature{"PGCOPY\n\377\r\n\0", 11};
constexpr std::size_t kFlushBytes = std::size_t{1} << 20;

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

}  // namespace

std::string dump_select(const RowSql& r) {
  std::string sql = "SELECT (";
  sql.append(r.pk).append(")::text, ").append(r.instance_data).append(" FROM ").append(r.from);
  sql.append(" ORDER BY ").append(r.pk);
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
    return "MessageError: instance_data is not valid JSON";
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

DumpCounts dump_table(const std::string& database_url, const MasterModel& model, std::FILE* out,
                      const DumpOptions& options, std::FILE* err) {
  RowSql rs;
  {
    pg::Session meta(database_url, "pgcqrs bulk-dump");
    pqxx::read_transaction txn(meta.conn());
    const TableInfo info = describe_table(txn, model.table);
    if (!info.has_revision || !info.has_updated) {
      throw ConfigError("master.model '" + model.cqrs_id + "' (" + quoted(model.table) +
                        "): no cqrs_revision/cqrs_updated column; install capture first: "
                        "pgcqrs master install");
    }
    rs = row_sql(model, info, quoter_for(txn));
  }
  const std::string context = "dump " + model.cqrs_id + " from " + quoted(model.table);
  ConnPtr conn = connect_raw(database_url);
  PGconn* c = conn.get();
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
  exec(c, dump_copy(rs), PGRES_COPY_OUT, context);

  DumpCounts counts;
  CopyBinaryDecoder decoder;
  CopyBinaryDecoder::Fields fields;
  std::uint64_t in_batch = 0;
  for (;;) {
    char* data = nullptr;
    const int n = PQgetCopyData(c, &data, 0);
    if (n == -1) break;
    if (n == -2) throw TransientError(context + ": " + pg_message(c));
    struct Freer {
      char* p;
      ~Freer() { PQfreemem(p); }
    } freer{data};
    decoder.feed(std::string_view(data, static_cast<std::size_t>(n)));
    while (decoder.next(fields)) {
      if (fields.size() != 2) bad_stream("expected 2 fields, got " + std::to_string(fields.size()));
      ++counts.processed;
      if (auto failure = append_dump_line(buf, fields[1])) {
        const std::string_view pk = fields[0] ? *fields[0] : std::string_view("None");
        std::fprintf(err, "%s\n", record_failed_message(pk, *failure).c_str());
      } else {
        ++counts.saved;
      }
      if (++in_batch == static_cast<std::uint64_t>(batch)) {
        progress.add(in_batch);
        in_batch = 0;
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
  decoder.finish();
  exec(c, "COMMIT", PGRES_COMMAND_OK, context);
  progress.add(in_batch);
  write_all(out, buf);
  if (std::fflush(out) != 0) throw Error(std::string("write dump output: ") + std::strerror(errno));
  progress.finish();
  return counts;
}

}  // namespace pgcqrs::master
