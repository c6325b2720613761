// Helpers shared by the PostgreSQL tests of this folder: a fresh schema per test on a server, and
// a few one-line SQL reads of what the server holds.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "support/pg_server.hpp"
#include "taskjournal/error.hpp"
#include "taskjournal/types.hpp"

namespace taskjournal::testing {

/// One schema on a test server and the connection string whose search_path is that schema.
struct PgSchema {
  std::string name;      ///< the schema's name (lowercase letters, digits, '_')
  std::string conninfo;  ///< the server's conninfo with options='-c search_path=<name>'
  std::string admin;     ///< the server's conninfo without a search_path
  /// The NOTIFY channel of the journal in this schema ("taskjournal_<name>").
  std::string channel() const { return "taskjournal_" + name; }
};

/// A new, empty schema on `server` named after the running test and `suffix` (an older schema of
/// that name is dropped first, so a test starts from nothing also when it runs again).
PgSchema fresh_schema(const PgServer& server, std::string_view suffix = "");

/// The first column of the first row `sql` returns, as text ("" for NULL or no row).
std::string sql_text(const std::string& conninfo, const std::string& sql);
/// The same, read as an integer.
std::int64_t sql_int(const std::string& conninfo, const std::string& sql);
/// Runs `sql` (any statements), ignoring results.
void sql_run(const std::string& conninfo, const std::string& sql);

/// The what() of the taskjournal::Error `call` throws; a non-fatal test failure when it throws
/// nothing or an Error of another code than `code` (its message quoted).
std::string expect_error(const std::function<void()>& call, ErrorCode code);

/// The number of tables in `schema`.
std::int64_t table_count(const std::string& admin_conninfo, const std::string& schema);

/// JournalReader::verify's problems as text ("" when the journal verifies).
std::string problems_of(const std::string& conninfo);

/// True if the task carries an artifact named `name`.
bool has_artifact(const SessionTask& task, const std::string& name);

}  // namespace taskjournal::testing
