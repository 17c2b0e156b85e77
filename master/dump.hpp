// cqrs_bulk_dump: one consistent snapshot of a master table written as a django-cqrs dump file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.hpp"
#include "master/capture.hpp"

namespace pgcqrs::master {

// Who builds each line's JSON. kAuto: the client, from the raw columns, when every column
// the model publishes has a type whose format is reproduced exactly (see client_kind), the
// model has no serializer and fits one json_build_object call; the server (row_sql()) else.
// kServer: always the server (the reference the client formatting is tested against).
enum class DumpFormatting { kAuto, kServer };

struct DumpOptions {
  int batch = 10000;      // rows between progress updates and output flushes (--batch)
  bool progress = false;  // --progress: "Processing N records ..." and the progress line
  DumpFormatting formatting = DumpFormatting::kAuto;
};

// django-cqrs's two counters: rows read (processed) and lines written (saved).
struct DumpCounts {
  std::uint64_t saved = 0;
  std::uint64_t processed = 0;
  bool client_formatted = false;  // the lines were built by the client (DumpFormatting::kAuto)
};

// How json_build_object() writes a value of a type (PostgreSQL's json_categorize_type), with
// the capture's cqrs.django_ts()/django_ts_naive() applied to timestamps.
enum class ClientKind {
  kNumber,       // int2/4/8, float4/8, numeric: the text output, quoted when not a JSON number
  kBool,         // true / false
  kString,       // text, varchar, bpchar, uuid, date: the text output as a JSON string
  kJson,         // json, jsonb: the text output as is
  kTimestampTz,  // cqrs.django_ts(): "YYYY-MM-DD HH24:MI:SS[.US]+00:00"
  kTimestamp,    // cqrs.django_ts_naive(): "YYYY-MM-DD HH24:MI:SS[.US]"
};
// The kind of a (domain-resolved) type oid; nullopt: the client does not format this type.
std::optional<ClientKind> client_kind(std::uint32_t type_oid);

// Appends to `out` the JSON text json_build_object() writes for a non-NULL value of `kind`
// whose text output (DateStyle ISO, TimeZone UTC) is `text`. Throws Error on a timestamp text
// of an unexpected shape.
void append_client_value(std::string& out, ClientKind kind, std::string_view text);
// Appends the value as a dump line carries it: what splice_json() makes of
// append_client_value()'s text, written in one step (plain strings, numbers and timestamps are
// copied; only json/jsonb values and strings that need re-encoding go through the codec).
// `outer_depth` is the nesting of the value in its line (1 for a member of the row's object).
// Returns false when the value is not valid JSON (a json column's text); `out` is then
// unspecified. Throws Error as append_client_value() does.
bool append_line_value(std::string& out, ClientKind kind, std::string_view text,
                       std::size_t outer_depth);

// Splits one row of `COPY ... TO STDOUT` text format (with or without its final newline) into
// its fields, unescaped into `storage` (NULL, `\N`, gives nullopt). Views stay valid until the
// next call with the same storage. Throws Error on a malformed row.
void decode_copy_text_row(std::string_view row, std::vector<std::string>& storage,
                          std::vector<std::optional<std::string_view>>& fields);

// The statement that streams the dump: one row per table row, in the table's physical order
// (a sequential scan, as COPY of the table; ordering by key costs an index scan, about a
// quarter of the dump's time, and a dump's lines need no order), with two columns: the key as
// text (for error messages) and the SAVE instance_data exactly as the capture triggers store
// it (row_sql()). Every row of the table: the model's filter is not applied (django-cqrs dumps
// the default manager's rows).
std::string dump_select(const RowSql& r);
// `COPY (<dump_select>) TO STDOUT (FORMAT binary)`.
std::string dump_copy(const RowSql& r);
// `SELECT count(*) FROM <from>`: the total for the progress line.
std::string dump_count(const RowSql& r);

// django-cqrs's messages on stderr (without the final newline print() adds).
std::string processing_message(std::uint64_t total, int batch);  // Processing N records ...
std::string done_message(const DumpCounts& c);  // Done!\nN instance(s) saved.\nM ...
std::string record_failed_message(std::string_view pk, std::string_view cause);

// Decodes the stream of `COPY ... TO STDOUT (FORMAT binary)`: the signature header, then
// tuples (int16 field count, then per field int32 length, -1 = NULL, and that many bytes),
// then the int16 -1 trailer. Chunks may split anything anywhere. Throws Error
// `COPY binary stream: <what is wrong>` on a malformed stream.
class CopyBinaryDecoder {
 public:
  using Fields = std::vector<std::optional<std::string_view>>;

  // Adds bytes. Views returned by next() stay valid until the next feed().
  void feed(std::string_view chunk);
  // The next complete tuple's fields (views into the buffer); false when the buffered bytes
  // hold no complete tuple (feed more) or the trailer was reached.
  bool next(Fields& fields);
  // The trailer was read.
  [[nodiscard]] bool finished() const noexcept { return finished_; }
  // Call at the end of the stream: throws when it stopped before the trailer or has bytes
  // after it.
  void finish() const;

 private:
  std::string buffer_;
  std::size_t pos_ = 0;
  bool header_done_ = false;
  bool finished_ = false;
};

// Appends one dump line for a row ("\n" + compact instance_data) to `out`, as the agent
// publishes it (splice_json). Returns the cause when the row cannot be dumped (`out` is then
// unchanged): its instance_data is NULL (a serializer returned nothing) or not JSON.
std::optional<std::string> append_dump_line(std::string& out,
                                            const std::optional<std::string_view>& instance_data);

// A file written under a temporary name beside `path` and renamed to `path` by commit(), so
// that a failed dump never leaves a half file under the target name. Removed by the
// destructor unless committed.
class AtomicFile {
 public:
  // Throws Error `create <tmp>: <reason>`.
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  AtomicFile(AtomicFile&&) = delete;
  AtomicFile& operator=(AtomicFile&&) = delete;

  [[nodiscard]] std::FILE* file() const noexcept { return file_; }
  [[nodiscard]] const std::string& temp_path() const noexcept { return temp_; }
  // Flushes, syncs, closes and renames. Throws Error naming the file on failure.
  void commit();

 private:
  std::string path_;
  std::string temp_;
  std::FILE* file_ = nullptr;
  bool committed_ = false;
};

// Dumps `model`'s table from the master database `database_url` into `out`: line 1 the
// cqrs_id, then "\n" + instance_data per row, no trailing newline. Reads in one REPEATABLE
// READ READ ONLY snapshot with one COPY. A row that cannot be dumped is reported on `err` and
// skipped (processed, not saved). With options.progress prints "Processing N records with
// batch size B" and a Progress line on `err`. Throws ConfigError when the table does not fit
// the model, TransientError when the database cannot be reached, Error on a write failure.
DumpCounts dump_table(const std::string& database_url, const MasterModel& model, std::FILE* out,
                      const DumpOptions& options, std::FILE* err = stderr);

}  // namespace pgcqrs::master
