// Runs SQL scripts (several statements in one text, e.g. migrations) inside a transaction.
#pragma once

#include <string_view>

#include "common/pg/pqxx.hpp"

namespace pgcqrs::pg {

// Runs `sql` in `txn` as one simple query: every statement, in order, all or nothing with the
// transaction. `name` (a file name) only serves messages. The script must not contain
// transaction control (BEGIN/COMMIT/ROLLBACK) or statements that refuse to run in a
// transaction block (CREATE INDEX CONCURRENTLY, VACUUM...).
// An SQL error becomes SqlError (sqlstate kept, so with_retry still retries a deadlock or a
// lock timeout) reading
//   run script '0002_outbox.sql' at line 3, column 5: ERROR: syntax error at or near "TABL"; ...
// with the position when the server reports one. Connection loss and transaction rollbacks
// (serialization failure, deadlock) propagate as the libpqxx exceptions they are.
void exec_script(pqxx::transaction_base& txn, std::string_view sql, std::string_view name);

// 1-based line and column; 0 when unknown.
struct ScriptPosition {
  int line = 0;
  int column = 0;
  bool operator==(const ScriptPosition&) const = default;
};

// Where PostgreSQL's 1-based character position (PG_DIAG_STATEMENT_POSITION, counted in
// characters of the UTF-8 text, as the server counts them) falls in `text`. {0, 0} when the
// position is not in the text.
ScriptPosition position_in(std::string_view text, int position);

// The line libpq quotes in an error message (`LINE 3: ...`), or 0.
int line_in_message(std::string_view message);

}  // namespace pgcqrs::pg
