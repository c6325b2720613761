// The SQLite engine behind the storage seam (internal): a journal in one SQLite file, WAL mode.
// The schema and the file's identity marks are documented at the top of engine.cpp.
#pragma once

#include <functional>
#include <memory>

#include "store/engine.hpp"

struct sqlite3;

namespace taskjournal::store::sqlite {

/// Opens (creating when missing and writable) and checks the journal file config.location
/// (":memory:" for a private in-memory journal): Corrupt if it is not a taskjournal journal,
/// Unsupported if its schema is newer, ReadOnly if it must be written and cannot be, Busy if
/// other connections kept it locked beyond the busy timeout (negative: InvalidArgument; above
/// INT_MAX ms it is INT_MAX ms, SQLite's limit). A read-only open where SQLite cannot create the
/// -shm file and no -wal file holds commits reads the file as a snapshot (snapshot_only()).
std::unique_ptr<Engine> open(const EngineConfig& config);

}  // namespace taskjournal::store::sqlite

namespace taskjournal::store::testing {

/// Test hook, not part of the API: when set, every SQLite engine calls it with its connection at
/// the end of its constructor, so that a test can run a PRAGMA on a registry's own connection
/// (max_page_count to simulate a full disk). Set and clear it while no journal is being opened.
void set_connection_hook(std::function<void(sqlite3*)> hook);

}  // namespace taskjournal::store::testing
