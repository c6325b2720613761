// The engine a contract test runs against, and fresh journals on it (issue 11, item 3).
//
// The contract suites (registry, batches, notifications, session isolation, bad input, the
// RapidCheck model test, replay equivalence) are one source: they open their journals through
// journal_at() and open_registry()/open_reader(), and ctest runs each of them twice, once per
// engine (tests/CMakeLists.txt, TASKJOURNAL_TEST_ENGINE). On PostgreSQL the first journal a test
// process asks for starts a throwaway server (support/pg_server.hpp), shared by the process and
// stopped at its exit; each journal is a schema of its own on it.
#pragma once

#include <string>
#include <string_view>

#include "support/temp_dir.hpp"
#include "taskjournal/taskjournal.hpp"

namespace taskjournal::testing {

enum class TestEngine { Sqlite, Postgresql };

/// TASKJOURNAL_TEST_ENGINE: "postgresql" or "sqlite" (unset: sqlite). Anything else aborts the
/// test program with a message: a typo must not quietly test the other engine.
TestEngine test_engine();
/// "sqlite" / "postgresql".
const char* engine_name(TestEngine engine) noexcept;

/// Where one journal lives: a file path, or a PostgreSQL connection string whose search_path is
/// the journal's own schema.
struct JournalLocation {
  TestEngine engine = TestEngine::Sqlite;
  std::string where;
  /// What taskjournal-replay takes for it: the file, or a postgresql:// URI.
  std::string uri() const;
  friend bool operator==(const JournalLocation&, const JournalLocation&) = default;
};

/// The journal `name` of the test that owns `dir`, on test_engine(): `dir / name` for SQLite; for
/// PostgreSQL a schema named after `dir` and `name` (the same arguments give the same journal, so
/// a test can reopen it), created empty on first use.
JournalLocation journal_at(const TempDir& dir, std::string_view name);
/// The same on a given engine.
JournalLocation journal_at(const TempDir& dir, std::string_view name, TestEngine engine);

/// A new, private, empty journal on test_engine(): ":memory:" for SQLite, a schema of its own for
/// PostgreSQL (dropped with the test's server).
JournalLocation fresh_journal();

/// Registry::open or Registry::open_postgresql, as `at` says.
Registry open_registry(const JournalLocation& at, Options options = {});
/// JournalReader::open or JournalReader::open_postgresql, as `at` says.
JournalReader open_reader(const JournalLocation& at, const ReaderOptions& options = {});

/// The connection string of this process's test server, with `extra` appended; starts the
/// server on first use.
std::string test_server_conninfo(const std::string& extra = "");

}  // namespace taskjournal::testing
