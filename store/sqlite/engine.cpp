// The SQLite engine: one connection to a journal file (internal).
//
// Storage format (schema version 2; README "Storage format" repeats it):
//
//   PRAGMA application_id = 0x544A524E ("TJRN")   -- identifies a taskjournal file
//   PRAGMA user_version   = 1                      -- the schema version: 1, raised to 2 by the
//                                                  -- first task_pruned event
//   CREATE TABLE events (
//     seq         INTEGER PRIMARY KEY CHECK (seq > 0),  -- 1, 2, 3, … without gaps
//     type        TEXT    NOT NULL,   -- task_created | task_updated | cancel_requested
//                                     -- | message_recorded | task_pruned (version 2)
//     version     INTEGER NOT NULL,   -- payload schema version (events::kPayloadVersion)
//     recorded_at INTEGER NOT NULL,   -- microseconds since the Unix epoch, UTC
//     session_id  TEXT    NOT NULL,
//     task_id     TEXT    NOT NULL,
//     payload     BLOB    NOT NULL,   -- cereal portable binary, grammar in events/codec.cpp
//     hash        BLOB    NOT NULL);  -- SHA-256 chain, see store/chain.hpp
//   CREATE INDEX events_by_task ON events(task_id, seq);
//   triggers events_no_update / events_no_delete: RAISE(ABORT) on UPDATE and DELETE
//
// Checkpoints, a cache derived from the events (created with the first checkpoint; a file
// without them is a complete journal, and readers that do not know them ignore them):
//
//   CREATE TABLE checkpoints (
//     seq        INTEGER PRIMARY KEY,  -- the last event the checkpoint covers
//     hash       BLOB    NOT NULL,     -- that event's hash
//     format     INTEGER NOT NULL,     -- events::kCheckpointFormat of the writer
//     chunks     INTEGER NOT NULL,     -- number of rows in checkpoint_chunks
//     tasks      INTEGER NOT NULL,     -- tasks in the views (to size them before restoring)
//     messages   INTEGER NOT NULL,     -- messages in the views
//     created_at INTEGER NOT NULL);    -- microseconds since the Unix epoch, UTC
//   CREATE TABLE checkpoint_chunks (
//     seq    INTEGER NOT NULL,         -- the checkpoint's seq
//     n      INTEGER NOT NULL,         -- 0, 1, 2, …
//     data   BLOB    NOT NULL,         -- grammar in events/checkpoint.hpp
//     digest BLOB    NOT NULL,         -- SHA-256 of data
//     PRIMARY KEY (seq, n));
//
// WAL mode; synchronous FULL or NORMAL by Durability.
#include "store/sqlite/engine.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <thread>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>
#include <sqlite3.h>

#include "events/checkpoint.hpp"
#include "taskjournal/error.hpp"

namespace taskjournal::store::sqlite {
namespace {

constexpr char kGenesis[kHashSize] = {};
constexpr const char* kReadAfterSql =
    "SELECT seq, type, version, recorded_at, session_id, task_id, payload, hash FROM events "
    "WHERE seq > ? ORDER BY seq";

const char* const kSchemaSql = R"sql(
CREATE TABLE IF NOT EXISTS events (
  seq         INTEGER PRIMARY KEY CHECK (seq > 0),
  type        TEXT    NOT NULL,
  version     INTEGER NOT NULL,
  recorded_at INTEGER NOT NULL,
  session_id  TEXT    NOT NULL,
  task_id     TEXT    NOT NULL,
  payload     BLOB    NOT NULL,
  hash        BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_task ON events(task_id, seq);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
  BEGIN SELECT RAISE(ABORT, 'taskjournal events are immutable'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
  BEGIN SELECT RAISE(ABORT, 'taskjournal events are immutable'); END;
)sql";

// Created by the first archive (schema version 2): the anchor, and the immutability trigger
// replaced by one that lets the archived prefix go (and nothing after it).
const char* const kAnchorSchemaSql = R"sql(
CREATE TABLE IF NOT EXISTS anchor (
  id      INTEGER PRIMARY KEY CHECK (id = 1),
  seq     INTEGER NOT NULL,
  hash    BLOB    NOT NULL,
  archive TEXT    NOT NULL
);
DROP TRIGGER IF EXISTS events_no_delete;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
  WHEN old.seq > (SELECT coalesce(max(seq), 0) FROM anchor)
  BEGIN SELECT RAISE(ABORT, 'taskjournal events are immutable'); END;
CREATE TRIGGER IF NOT EXISTS anchor_no_delete BEFORE DELETE ON anchor
  BEGIN SELECT RAISE(ABORT, 'the taskjournal anchor cannot be removed'); END;
CREATE TRIGGER IF NOT EXISTS anchor_forward BEFORE UPDATE ON anchor
  WHEN new.seq < old.seq
  BEGIN SELECT RAISE(ABORT, 'the taskjournal anchor only moves forward'); END;
)sql";

const char* const kCheckpointSchemaSql = R"sql(
CREATE TABLE IF NOT EXISTS checkpoints (
  seq        INTEGER PRIMARY KEY,
  hash       BLOB    NOT NULL,
  format     INTEGER NOT NULL,
  chunks     INTEGER NOT NULL,
  tasks      INTEGER NOT NULL,
  messages   INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoint_chunks (
  seq    INTEGER NOT NULL,
  n      INTEGER NOT NULL,
  data   BLOB    NOT NULL,
  digest BLOB    NOT NULL,
  PRIMARY KEY (seq, n)
);
)sql";

ErrorCode code_of(int sqlite_code) {
  switch (sqlite_code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return ErrorCode::Busy;
    case SQLITE_READONLY:
      return ErrorCode::ReadOnly;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return ErrorCode::Corrupt;
    default:
      return ErrorCode::Storage;
  }
}

// Runs `body`, translating SQLite failures into Error(code, "<file>: <doing>: <sqlite message>").
// When `reading` stored rows, SQLITE_TOOBIG means a row's header claims a length beyond any
// that could have been written: a damaged file.
template <class F>
auto guarded(const std::string& path, std::string_view doing, F&& body, bool reading)
    -> decltype(body()) {
  try {
    return body();
  } catch (const SQLite::Exception& e) {
    int code = e.getErrorCode();
    std::string what = e.what();
    if ((code & 0xff) == SQLITE_FULL) what += " (disk full)";
    const ErrorCode ours =
        reading && (code & 0xff) == SQLITE_TOOBIG ? ErrorCode::Corrupt : code_of(code);
    throw Error(ours, path + ": " + std::string(doing) + ": " + what);
  }
}
template <class F>
auto guarded(const std::string& path, std::string_view doing, F&& body) -> decltype(body()) {
  return guarded(path, doing, std::forward<F>(body), false);
}
template <class F>
auto guarded_read(const std::string& path, std::string_view doing, F&& body) -> decltype(body()) {
  return guarded(path, doing, std::forward<F>(body), true);
}

// "file:<absolute path, percent-encoded>?immutable=1" (https://sqlite.org/uri.html).
std::string immutable_uri(const std::string& path) {
  std::error_code ec;
  const std::string absolute = std::filesystem::absolute(path, ec).string();
  std::string uri = "file:";
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : ec ? path : absolute) {
    if (c == '%' || c == '?' || c == '#' || c <= 0x20 || c >= 0x7f) {
      uri += '%';
      uri += kHex[c >> 4];
      uri += kHex[c & 0x0f];
    } else {
      uri += static_cast<char>(c);
    }
  }
  return uri + "?immutable=1";
}

// True if `<path>-wal` exists and is not empty (it may hold commits not yet in the file).
bool wal_holds_commits(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path + "-wal", ec);
  return !ec && size > 0;
}

std::function<void(sqlite3*)>& connection_hook() {
  static std::function<void(sqlite3*)> hook;
  return hook;
}

// Resets a statement when leaving a scope, however it is left, so that it never keeps a read
// transaction open.
struct ResetOnExit {
  SQLite::Statement& s;
  ~ResetOnExit() { s.tryReset(); }
};
struct RawResetOnExit {
  sqlite3_stmt* s;
  ~RawResetOnExit() { sqlite3_reset(s); }
};

// A statement stepped with SQLite's own API, for the per-call paths where SQLiteCpp's wrappers
// (shared_ptr copies per column, checks) cost more than the step.
struct FinalizeStatement {
  void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};
using RawStatement = std::unique_ptr<sqlite3_stmt, FinalizeStatement>;

RawStatement prepare_raw(SQLite::Database& db, const char* sql) {
  sqlite3_stmt* s = nullptr;
  const int rc =
      sqlite3_prepare_v3(db.getHandle(), sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  RawStatement owned(s);
  if (rc != SQLITE_OK) throw SQLite::Exception(db.getHandle(), rc);
  return owned;
}

std::string_view column_bytes(const SQLite::Column& column) {
  return {static_cast<const char*>(column.getBlob()), static_cast<std::size_t>(column.getBytes())};
}

// The eight event columns of the current row of `stmt` (seq, type, version, recorded_at,
// session_id, task_id, payload, hash), read with SQLite's own API: the fold reads every row.
EventRow row_of(sqlite3_stmt* stmt) {
  auto bytes = [&](int i) {
    const void* data = sqlite3_column_blob(stmt, i);  // before the size, as SQLite advises
    return std::string_view(static_cast<const char*>(data),
                            static_cast<std::size_t>(sqlite3_column_bytes(stmt, i)));
  };
  return {.seq = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 0)),
          .type = bytes(1),
          .version = sqlite3_column_int64(stmt, 2),
          .recorded_at = sqlite3_column_int64(stmt, 3),
          .session_id = bytes(4),
          .task_id = bytes(5),
          .payload = bytes(6),
          .hash = bytes(7)};
}

struct Sql {
  SQLite::Database db;
  RawStatement data_version;
  RawStatement begin_immediate;  // prepared once: sqlite3_exec would parse them on every write
  RawStatement commit;
  RawStatement read_after;
  RawStatement insert;
  std::int64_t last_data_version = -1;

  // The wal-index header (https://sqlite.org/walformat.html, "The WAL-Index Header": two copies
  // of 48 bytes at the start of the -shm file), as seen just before the last data_version check.
  // Every commit rewrites it (mxFrame grows or the salts change, and its checksum with them), and
  // while this connection is open the file cannot leave WAL mode (it holds a SHARED lock on the
  // database file), so an unchanged header means no commit since that check: reads skip the
  // read transaction, whose file locks are two fcntl calls and a stat. `wal_file` is null until
  // the connection is known to be in WAL mode with a shared-memory wal-index.
  using WalHeader = std::array<std::uint32_t, 24>;
  sqlite3_file* wal_file = nullptr;
  bool wal_mode_known = false;
  bool wal_header_valid = false;
  WalHeader wal_header{};

  bool read_wal_header(WalHeader& out) {
    void volatile* region = nullptr;
    // Region 0 is mapped already (the WAL is open); 32768 is SQLite's wal-index page size.
    if (wal_file->pMethods->xShmMap(wal_file, 0, 32768, 0, &region) != SQLITE_OK || !region) {
      return false;
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    const auto* words = static_cast<const volatile std::uint32_t*>(region);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = words[i];
    return true;
  }

  // After the first data_version check (which opened the WAL, if any): is the connection in WAL
  // mode with a shared-memory wal-index it can map?
  void find_wal() {
    wal_mode_known = true;
    const char* mode = nullptr;
    sqlite3_stmt* q = nullptr;
    if (sqlite3_prepare_v2(db.getHandle(), "PRAGMA main.journal_mode", -1, &q, nullptr) ==
            SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW) {
      mode = reinterpret_cast<const char*>(sqlite3_column_text(q, 0));
    }
    const bool wal = mode && std::string_view(mode) == "wal";
    sqlite3_finalize(q);
    sqlite3_file* file = nullptr;
    if (!wal ||
        sqlite3_file_control(db.getHandle(), "main", SQLITE_FCNTL_FILE_POINTER, &file) !=
            SQLITE_OK ||
        !file || !file->pMethods || file->pMethods->iVersion < 2 || !file->pMethods->xShmMap) {
      return;
    }
    wal_file = file;
    WalHeader probe;
    if (!read_wal_header(probe)) wal_file = nullptr;
  }

  Sql(const std::string& filename, const EngineConfig& c, int flags)
      : db(filename, flags, static_cast<int>(c.busy_timeout.count())),  // clamped by the engine
        data_version(prepare_raw(db, "PRAGMA data_version")),
        begin_immediate(prepare_raw(db, "BEGIN IMMEDIATE")),
        commit(prepare_raw(db, "COMMIT")) {}

  // Steps a statement that returns no row, then resets it; throws SQLite::Exception on failure.
  void run(sqlite3_stmt* stmt) {
    const int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) {
      SQLite::Exception failure(db.getHandle(), rc);
      sqlite3_reset(stmt);
      throw failure;
    }
    sqlite3_reset(stmt);
  }
};

}  // namespace

class SqliteEngine final : public Engine {
 public:
  explicit SqliteEngine(const EngineConfig& config);
  ~SqliteEngine() override { SqliteEngine::rollback(); }

  const std::string& name() const noexcept override { return config_.location; }
  bool changed_by_others() override;
  void scan(std::uint64_t after_seq, const std::function<bool(const EventRow&)>& sink) override;
  void scan_task(std::string_view task_id, std::uint64_t up_to_seq,
                 const std::function<bool(const EventRow&, std::string_view)>& sink) override;
  void scan_session(std::string_view session_id, std::uint64_t up_to_seq,
                    const std::function<bool(const EventRow&, std::string_view)>& sink) override;
  std::string stored_hash(std::uint64_t seq) override;
  std::uint64_t newest_seq() override;
  int schema_version() override;
  bool snapshot_only() const noexcept override { return immutable_; }
  // A second connection whose changed_by_others() is a read of the WAL index (shared memory).
  std::unique_ptr<ChangeSignal> change_signal(std::chrono::milliseconds interval,
                                              ProblemReporter report) override {
    if (immutable_ || config_.exclusive || config_.location == ":memory:") return nullptr;
    using std::chrono::milliseconds;
    const milliseconds period = std::clamp(interval / 4, milliseconds{1}, milliseconds{10});
    return std::make_unique<PollingChangeSignal>(std::make_unique<SqliteEngine>(config_), period,
                                                 std::move(report));
  }
  void begin_write() override;
  void append(const EventRow& row) override;
  void commit() override;
  void rollback() noexcept override;
  std::optional<Anchor> anchor() override;
  void archive_prefix(const Anchor& anchor, const std::vector<AnchorTask>& tasks) override;
  void scan_checkpoint_chunk(
      std::uint64_t seq, std::int64_t n,
      const std::function<void(std::string_view, std::string_view)>& sink) override;
  std::uint64_t stored_bytes() override;
  void compact() override;
  void raise_schema_version(int version) override {
    ensure_in_write("raise the schema version");
    guarded(config_.location, "raise the schema version", [&] {
      if (sql_->db.execAndGet("PRAGMA user_version").getInt() < version) {
        sql_->db.exec("PRAGMA user_version=" + std::to_string(version));
      }
    });
  }
  std::vector<CheckpointInfo> checkpoints() override;
  void scan_checkpoint(
      std::uint64_t seq,
      const std::function<void(std::int64_t, std::string_view, std::string_view)>& sink) override;
  bool write_checkpoint(const CheckpointInfo& info, std::int64_t created_at,
                        const std::function<void(const ChunkWriter&)>& produce, int keep) override;

 private:
  // scan_task / scan_session: the rows whose `column` is `value`, each with its predecessor's hash.
  void scan_linked(const char* column, std::string_view value, std::uint64_t up_to_seq,
                   const std::function<bool(const EventRow&, std::string_view)>& sink);
  // Throws Error(Storage) naming `doing` unless a write transaction is open on the connection.
  void ensure_in_write(std::string_view doing);

  EngineConfig config_;
  std::unique_ptr<Sql> sql_;
  bool in_write_ = false;
  bool immutable_ = false;
  bool scanning_ = false;  // scan() is using the prepared statement
};

SqliteEngine::SqliteEngine(const EngineConfig& config) : config_(config) {
  // SQLite takes the busy timeout as an int of milliseconds: a longer one waits INT_MAX ms
  // (24.8 days) instead of wrapping around to no wait at all.
  if (config_.busy_timeout.count() < 0) {
    throw Error(ErrorCode::InvalidArgument, "invalid argument: busy_timeout is negative (" +
                                                std::to_string(config_.busy_timeout.count()) +
                                                " ms)");
  }
  config_.busy_timeout = std::min<std::chrono::milliseconds>(
      config_.busy_timeout, std::chrono::milliseconds{std::numeric_limits<int>::max()});
  // NOMUTEX: the Registry serialises every use of its connection, so SQLite's own per-call
  // mutex is pure overhead (measurable on every column read of a fold).
  const int flags =
      (config.read_only ? SQLite::OPEN_READONLY : (SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE)) |
      SQLite::OPEN_NOMUTEX;
  // Opening races with other processes opening or creating the same file, and SQLite reports
  // some of those conflicts (two connections switching a new file to WAL) as SQLITE_BUSY at once,
  // without waiting: try again until busy_timeout has passed.
  const auto deadline = std::chrono::steady_clock::now() + config_.busy_timeout;
  // A read-only open of a WAL journal needs its -shm file, which SQLite creates when it is
  // missing: in a directory the process cannot write, or on a read-only file system, it cannot
  // (https://sqlite.org/wal.html#readonly). When no -wal file holds commits, the database file
  // alone is the whole journal, and SQLite's immutable mode reads it without -shm or locks.
  bool immutable = false;
  struct NeedsSideFiles {};
  for (;;) {
    try {
      guarded(config_.location, "open", [&] {
        sql_ = std::make_unique<Sql>(immutable ? immutable_uri(config_.location) : config_.location,
                                     config_, immutable ? (flags | SQLITE_OPEN_URI) : flags);
        auto& db = sql_->db;

        // A file SQLite could open for reading only (the OS refused writing) is opened read-only
        // only when that was asked for.
        if (!config_.read_only && sqlite3_db_readonly(db.getHandle(), "main") == 1) {
          throw Error(
              ErrorCode::ReadOnly,
              config_.location +
                  ": the file is not writable (open it with Options::read_only to read it)");
        }

        // Identify the file before changing anything in it, reading the three marks in one
        // statement, so in one snapshot: another process may be creating the journal right now.
        struct Identity {
          int app_id = 0;
          int user_version = 0;
          int objects = 0;
          bool fresh() const { return app_id == 0 && user_version == 0 && objects == 0; }
        };
        auto identify = [&] {
          SQLite::Statement q(db,
                              "SELECT (SELECT application_id FROM pragma_application_id), "
                              "(SELECT user_version FROM pragma_user_version), "
                              "(SELECT count(*) FROM sqlite_schema)");
          q.executeStep();
          return Identity{q.getColumn(0).getInt(), q.getColumn(1).getInt(),
                          q.getColumn(2).getInt()};
        };
        auto check = [&](const Identity& id) {
          if (id.fresh()) return;
          if (id.app_id != kApplicationId) {
            throw Error(ErrorCode::Corrupt, config_.location +
                                                ": not a taskjournal journal (application_id " +
                                                std::to_string(id.app_id) + ")");
          }
          if (id.user_version > kSchemaVersion) {
            throw Error(ErrorCode::Unsupported, config_.location + ": journal schema version " +
                                                    std::to_string(id.user_version) +
                                                    " is newer than this taskjournal supports (" +
                                                    std::to_string(kSchemaVersion) + ")");
          }
          if (id.user_version < 1) {
            throw Error(ErrorCode::Corrupt, config_.location + ": journal has no schema version");
          }
        };
        Identity id;
        try {
          id = identify();
        } catch (const SQLite::Exception& e) {
          const int code = e.getErrorCode() & 0xff;
          if (code == SQLITE_READONLY || code == SQLITE_CANTOPEN) {
            if (config_.read_only && !immutable) throw NeedsSideFiles{};
            if (!config_.read_only) {
              throw Error(ErrorCode::ReadOnly,
                          config_.location +
                              ": cannot write the journal here: SQLite must create or write its "
                              "-wal and -shm files beside it, and the directory (or file system) "
                              "does not allow that (" +
                              e.what() + "); open it with Options::read_only to read it");
            }
          }
          throw;
        }
        check(id);
        if (id.fresh() && config_.read_only) {
          throw Error(ErrorCode::ReadOnly, config_.location + ": empty file opened read-only");
        }

        if (!config_.read_only) {
          db.exec("PRAGMA journal_mode=WAL");
          db.exec(config_.durability == Durability::Full ? "PRAGMA synchronous=FULL"
                                                         : "PRAGMA synchronous=NORMAL");
          if (config_.exclusive) db.exec("PRAGMA locking_mode=EXCLUSIVE");
          if (id.fresh()) {
            db.exec("BEGIN IMMEDIATE");
            try {
              // Under the write lock: the process that got it first may have made the journal.
              id = identify();
              if (id.fresh()) {
                db.exec(kSchemaSql);
                db.exec("PRAGMA application_id=" + std::to_string(kApplicationId));
                db.exec("PRAGMA user_version=" + std::to_string(kNewJournalSchemaVersion));
              }
              db.exec("COMMIT");
            } catch (...) {
              sqlite3_exec(db.getHandle(), "ROLLBACK", nullptr, nullptr, nullptr);
              throw;
            }
            check(id);
          }
        }
        if (config_.exclusive && !config_.read_only) {
          // Take the exclusive lock now (kept until close): from here on nobody else commits.
          db.exec("BEGIN EXCLUSIVE");
          db.exec("COMMIT");
        }
        if (!db.tableExists("events")) {
          throw Error(ErrorCode::Corrupt,
                      config_.location + ": taskjournal journal without events table");
        }
        try {
          sql_->read_after = prepare_raw(db, kReadAfterSql);
          if (!config_.read_only) {
            sql_->insert = prepare_raw(db,
                                       "INSERT INTO events (seq, type, version, recorded_at, "
                                       "session_id, task_id, payload, hash) VALUES (?, ?, ?, ?, ?, "
                                       "?, ?, ?)");
          }
        } catch (const SQLite::Exception& e) {
          // The file says it is a schema-1 journal, yet its table lacks what schema 1 has.
          if ((e.getErrorCode() & 0xff) != SQLITE_ERROR) throw;
          throw Error(ErrorCode::Corrupt,
                      config_.location + ": the events table does not match schema " +
                          std::to_string(kSchemaVersion) + " (" + e.what() + ")");
        }
      });
      break;
    } catch (const NeedsSideFiles&) {
      sql_.reset();
      if (wal_holds_commits(config_.location)) {
        throw Error(ErrorCode::Storage,
                    config_.location +
                        ": cannot read the journal here: its -wal file holds commits, and the "
                        "-shm file SQLite needs to read them is missing and cannot be created "
                        "(the directory is not writable, or the file system is read-only). "
                        "Copy the journal together with its -wal file to a writable directory "
                        "and open the copy");
      }
      immutable = true;
      immutable_ = true;
    } catch (const Error& e) {
      if (e.code() != ErrorCode::Busy || std::chrono::steady_clock::now() >= deadline) throw;
      sql_.reset();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  if (connection_hook()) connection_hook()(sql_->db.getHandle());
}

bool SqliteEngine::changed_by_others() {
  Sql& sql = *sql_;
  Sql::WalHeader header{};
  const bool peeked = sql.wal_file && sql.read_wal_header(header);
  if (peeked && sql.wal_header_valid && sql.last_data_version != -1 && header == sql.wal_header) {
    return false;
  }
  sql.wal_header_valid = false;
  const bool changed = guarded(config_.location, "check for new events", [&] {
    sqlite3_stmt* stmt = sql.data_version.get();
    const int rc = sqlite3_step(stmt);
    const std::int64_t version = sqlite3_column_int64(stmt, 0);
    // Reset at once: a stepped statement keeps a read transaction (an old WAL snapshot) open,
    // which makes the next BEGIN IMMEDIATE fail with SQLITE_BUSY without waiting.
    sqlite3_reset(stmt);
    if (rc != SQLITE_ROW) throw SQLite::Exception(sql.db.getHandle(), rc);
    const bool changed = version != sql.last_data_version;
    sql.last_data_version = version;
    return changed;
  });
  if (peeked) {
    sql.wal_header = header;  // taken before the check: at worst one more check than needed
    sql.wal_header_valid = true;
  } else if (!sql.wal_mode_known && !config_.exclusive) {
    sql.find_wal();
  }
  return changed;
}

void SqliteEngine::scan(std::uint64_t after_seq, const std::function<bool(const EventRow&)>& sink) {
  guarded_read(config_.location, "read events", [&] {
    // The prepared statement, unless a sink scans again from inside a scan (a reader's caller
    // may): that one gets a statement of its own.
    RawStatement own;
    sqlite3_stmt* stmt = sql_->read_after.get();
    if (scanning_) {
      own = prepare_raw(sql_->db, kReadAfterSql);
      stmt = own.get();
    }
    sqlite3_reset(stmt);
    // Also when the sink throws: a statement left stepped keeps a read transaction on an old
    // snapshot, and the next BEGIN IMMEDIATE fails as Busy.
    RawResetOnExit reset_on_exit{stmt};
    const bool outer = !scanning_;
    scanning_ = true;
    struct Done {
      bool& flag;
      bool outer;
      ~Done() {
        if (outer) flag = false;
      }
    } done{scanning_, outer};
    int rc = sqlite3_bind_int64(
        stmt, 1, static_cast<std::int64_t>(std::min<std::uint64_t>(after_seq, INT64_MAX)));
    if (rc != SQLITE_OK) throw SQLite::Exception(sql_->db.getHandle(), rc);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      if (!sink(row_of(stmt))) return;  // steps nothing: the row's views stay valid
    }
    if (rc != SQLITE_DONE) throw SQLite::Exception(sql_->db.getHandle(), rc);
  });
}

void SqliteEngine::scan_task(std::string_view task_id, std::uint64_t up_to_seq,
                             const std::function<bool(const EventRow&, std::string_view)>& sink) {
  scan_linked("task_id", task_id, up_to_seq, sink);
}

void SqliteEngine::scan_session(
    std::string_view session_id, std::uint64_t up_to_seq,
    const std::function<bool(const EventRow&, std::string_view)>& sink) {
  scan_linked("session_id", session_id, up_to_seq, sink);
}

void SqliteEngine::scan_linked(const char* column, std::string_view value, std::uint64_t up_to_seq,
                               const std::function<bool(const EventRow&, std::string_view)>& sink) {
  guarded_read(config_.location, "read task history", [&] {
    SQLite::Statement stmt(
        sql_->db,
        std::string("SELECT e.seq, e.type, e.version, e.recorded_at, e.session_id, e.task_id, "
                    "e.payload, e.hash, p.hash FROM events AS e LEFT JOIN events AS p ON p.seq = "
                    "e.seq - 1 WHERE e.") +
            column + " = ? AND e.seq <= ? ORDER BY e.seq");
    stmt.bind(1, std::string(value));
    stmt.bind(2, static_cast<std::int64_t>(std::min<std::uint64_t>(up_to_seq, INT64_MAX)));
    while (stmt.executeStep()) {
      const EventRow row{.seq = static_cast<std::uint64_t>(stmt.getColumn(0).getInt64()),
                         .type = column_bytes(stmt.getColumn(1)),
                         .version = stmt.getColumn(2).getInt64(),
                         .recorded_at = stmt.getColumn(3).getInt64(),
                         .session_id = column_bytes(stmt.getColumn(4)),
                         .task_id = column_bytes(stmt.getColumn(5)),
                         .payload = column_bytes(stmt.getColumn(6)),
                         .hash = column_bytes(stmt.getColumn(7))};
      const std::string_view prev =
          row.seq == 1 ? std::string_view(kGenesis, kHashSize) : column_bytes(stmt.getColumn(8));
      if (!sink(row, prev)) break;
    }
  });
}

std::string SqliteEngine::stored_hash(std::uint64_t seq) {
  return guarded(config_.location, "read event hash", [&] {
    SQLite::Statement stmt(sql_->db, "SELECT hash FROM events WHERE seq = ?");
    stmt.bind(1, static_cast<std::int64_t>(seq));
    return stmt.executeStep() ? std::string(column_bytes(stmt.getColumn(0))) : std::string();
  });
}

std::uint64_t SqliteEngine::newest_seq() {
  return guarded(config_.location, "read newest event", [&] {
    return static_cast<std::uint64_t>(
        sql_->db.execAndGet("SELECT coalesce(max(seq), 0) FROM events").getInt64());
  });
}

int SqliteEngine::schema_version() {
  return guarded(config_.location, "read schema version",
                 [&] { return sql_->db.execAndGet("PRAGMA user_version").getInt(); });
}

std::vector<CheckpointInfo> SqliteEngine::checkpoints() {
  return guarded_read(config_.location, "read checkpoints", [&] {
    std::vector<CheckpointInfo> out;
    if (!sql_->db.tableExists("checkpoints")) return out;
    SQLite::Statement stmt(sql_->db,
                           "SELECT seq, hash, format, chunks, tasks, messages FROM checkpoints "
                           "ORDER BY seq DESC");
    while (stmt.executeStep()) {
      out.push_back(CheckpointInfo{.seq = static_cast<std::uint64_t>(stmt.getColumn(0).getInt64()),
                                   .hash = std::string(column_bytes(stmt.getColumn(1))),
                                   .format = stmt.getColumn(2).getInt64(),
                                   .chunks = stmt.getColumn(3).getInt64(),
                                   .tasks = static_cast<std::uint64_t>(
                                       std::max<std::int64_t>(0, stmt.getColumn(4).getInt64())),
                                   .messages = static_cast<std::uint64_t>(
                                       std::max<std::int64_t>(0, stmt.getColumn(5).getInt64()))});
    }
    return out;
  });
}

void SqliteEngine::scan_checkpoint(
    std::uint64_t seq,
    const std::function<void(std::int64_t, std::string_view, std::string_view)>& sink) {
  guarded_read(config_.location, "read checkpoint", [&] {
    SQLite::Statement stmt(
        sql_->db, "SELECT n, data, digest FROM checkpoint_chunks WHERE seq = ? ORDER BY n");
    stmt.bind(1, static_cast<std::int64_t>(seq));
    while (stmt.executeStep()) {
      sink(stmt.getColumn(0).getInt64(), column_bytes(stmt.getColumn(1)),
           column_bytes(stmt.getColumn(2)));
    }
  });
}

bool SqliteEngine::write_checkpoint(const CheckpointInfo& info, std::int64_t created_at,
                                    const std::function<void(const ChunkWriter&)>& produce,
                                    int keep) {
  const std::uint64_t seq = info.seq;
  begin_write();
  try {
    const bool written = guarded(config_.location, "write checkpoint", [&] {
      auto& db = sql_->db;
      db.exec(kCheckpointSchemaSql);
      SQLite::Statement exists(db, "SELECT 1 FROM checkpoints WHERE seq = ?");
      exists.bind(1, static_cast<std::int64_t>(seq));
      if (exists.executeStep()) return false;
      exists.reset();
      SQLite::Statement chunk(
          db, "INSERT INTO checkpoint_chunks (seq, n, data, digest) VALUES (?, ?, ?, ?)");
      std::int64_t n = 0;
      produce([&](std::string_view data, std::string_view digest) {
        if (data.size() > static_cast<std::size_t>(INT32_MAX)) {
          throw Error(ErrorCode::Storage, config_.location + ": checkpoint chunk of " +
                                              std::to_string(data.size()) + " bytes is too large");
        }
        chunk.bind(1, static_cast<std::int64_t>(seq));
        chunk.bind(2, n);
        chunk.bindNoCopy(3, data.data(), static_cast<int>(data.size()));
        chunk.bindNoCopy(4, digest.data(), static_cast<int>(digest.size()));
        chunk.exec();
        chunk.reset();
        chunk.clearBindings();
        ++n;
      });
      SQLite::Statement head(
          db,
          "INSERT INTO checkpoints (seq, hash, format, chunks, tasks, messages, created_at) "
          "VALUES (?, ?, ?, ?, ?, ?, ?)");
      head.bind(1, static_cast<std::int64_t>(seq));
      head.bindNoCopy(2, info.hash.data(), static_cast<int>(info.hash.size()));
      head.bind(3, static_cast<std::int64_t>(events::kCheckpointFormat));
      head.bind(4, n);
      head.bind(5, static_cast<std::int64_t>(info.tasks));
      head.bind(6, static_cast<std::int64_t>(info.messages));
      head.bind(7, created_at);
      head.exec();
      // The anchor's checkpoint is never pruned: the live events begin after it.
      const std::string anchored =
          db.tableExists("anchor") ? " AND seq NOT IN (SELECT seq FROM anchor)" : "";
      SQLite::Statement prune_chunks(db,
                                     "DELETE FROM checkpoint_chunks WHERE seq NOT IN "
                                     "(SELECT seq FROM checkpoints ORDER BY seq DESC LIMIT ?)" +
                                         anchored);
      prune_chunks.bind(1, keep);
      prune_chunks.exec();
      SQLite::Statement prune(db,
                              "DELETE FROM checkpoints WHERE seq NOT IN "
                              "(SELECT seq FROM checkpoints ORDER BY seq DESC LIMIT ?)" +
                                  anchored);
      prune.bind(1, keep);
      prune.exec();
      return true;
    });
    commit();
    return written;
  } catch (...) {
    rollback();
    throw;
  }
}

void SqliteEngine::begin_write() {
  if (config_.read_only) {
    throw Error(ErrorCode::ReadOnly, config_.location + ": journal opened read-only");
  }
  guarded(config_.location, "begin write", [&] { sql_->run(sql_->begin_immediate.get()); });
  in_write_ = true;
}

void SqliteEngine::append(const EventRow& row) {
  // Never a row outside the write transaction: after a failed statement SQLite may have rolled
  // the transaction back on its own, and an INSERT would then commit by itself, behind a gap.
  ensure_in_write("append event " + std::to_string(row.seq));
  // Bound and stepped with SQLite's own API (type, session_id and task_id TEXT, payload and
  // hash BLOB); the error message is built only on failure.
  sqlite3_stmt* stmt = sql_->insert.get();
  // A null pointer would bind NULL: an empty view read from another journal (SQLite hands out
  // a zero-length BLOB as a null pointer) must stay an empty value.
  auto text = [&](int i, std::string_view s) {
    return sqlite3_bind_text(stmt, i, s.data() ? s.data() : "", static_cast<int>(s.size()),
                             SQLITE_STATIC);
  };
  auto blob = [&](int i, std::string_view s) {
    return sqlite3_bind_blob(stmt, i, s.data() ? s.data() : "", static_cast<int>(s.size()),
                             SQLITE_STATIC);
  };
  int rc = sqlite3_bind_int64(stmt, 1, static_cast<std::int64_t>(row.seq));
  if (rc == SQLITE_OK) rc = text(2, row.type);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 3, row.version);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 4, row.recorded_at);
  if (rc == SQLITE_OK) rc = text(5, row.session_id);
  if (rc == SQLITE_OK) rc = text(6, row.task_id);
  if (rc == SQLITE_OK) rc = blob(7, row.payload);
  if (rc == SQLITE_OK) rc = blob(8, row.hash);
  if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE) {
    SQLite::Exception failure(sql_->db.getHandle(), rc);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    guarded(config_.location, "append event " + std::to_string(row.seq), [&] { throw failure; });
  }
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
}

void SqliteEngine::ensure_in_write(std::string_view doing) {
  if (!in_write_ || sqlite3_get_autocommit(sql_->db.getHandle()) != 0) {
    const bool rolled_back = in_write_;
    in_write_ = false;
    throw Error(ErrorCode::Storage,
                config_.location + ": " + std::string(doing) + ": " +
                    (rolled_back ? "the write transaction was rolled back after an earlier failure"
                                 : "no write transaction is open"));
  }
}

std::optional<Anchor> SqliteEngine::anchor() {
  return guarded_read(config_.location, "read the anchor", [&]() -> std::optional<Anchor> {
    if (!sql_->db.tableExists("anchor")) return std::nullopt;
    SQLite::Statement q(sql_->db, "SELECT seq, hash, archive FROM anchor WHERE id = 1");
    if (!q.executeStep()) return std::nullopt;
    return Anchor{.seq = static_cast<std::uint64_t>(q.getColumn(0).getInt64()),
                  .hash = std::string(column_bytes(q.getColumn(1))),
                  .archive = q.getColumn(2).getString()};
  });
}

void SqliteEngine::scan_checkpoint_chunk(
    std::uint64_t seq, std::int64_t n,
    const std::function<void(std::string_view, std::string_view)>& sink) {
  guarded_read(config_.location, "read checkpoint", [&] {
    SQLite::Statement q(sql_->db,
                        "SELECT data, digest FROM checkpoint_chunks WHERE seq = ? AND n = ?");
    q.bind(1, static_cast<std::int64_t>(seq));
    q.bind(2, n);
    if (q.executeStep()) sink(column_bytes(q.getColumn(0)), column_bytes(q.getColumn(1)));
  });
}

std::uint64_t SqliteEngine::stored_bytes() {
  std::uint64_t total = 0;
  for (const char* suffix : {"", "-wal"}) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(config_.location + suffix, ec);
    if (!ec) total += size;
  }
  return total;
}

// The views hold every task in memory: the anchor's tasks need no index here.
void SqliteEngine::archive_prefix(const Anchor& anchor, const std::vector<AnchorTask>&) {
  ensure_in_write("archive the prefix");
  guarded(config_.location, "archive the prefix", [&] {
    auto& db = sql_->db;
    db.exec(kAnchorSchemaSql);
    SQLite::Statement set(db,
                          "INSERT INTO anchor (id, seq, hash, archive) VALUES (1, ?, ?, ?) "
                          "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, "
                          "hash = excluded.hash, archive = excluded.archive");
    set.bind(1, static_cast<std::int64_t>(anchor.seq));
    set.bind(2, anchor.hash.data(), static_cast<int>(anchor.hash.size()));
    set.bind(3, anchor.archive);
    set.exec();
    SQLite::Statement drop(db, "DELETE FROM events WHERE seq <= ?");
    drop.bind(1, static_cast<std::int64_t>(anchor.seq));
    drop.exec();
    if (db.tableExists("checkpoints")) {
      for (const char* table : {"checkpoint_chunks", "checkpoints"}) {
        SQLite::Statement old(db, std::string("DELETE FROM ") + table + " WHERE seq < ?");
        old.bind(1, static_cast<std::int64_t>(anchor.seq));
        old.exec();
      }
    }
  });
}

void SqliteEngine::compact() {
  guarded(config_.location, "compact", [&] {
    sql_->db.exec("VACUUM");
    sql_->db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  });
}

void SqliteEngine::commit() {
  ensure_in_write("commit");
  guarded(config_.location, "commit", [&] { sql_->run(sql_->commit.get()); });
  in_write_ = false;
  // Our own commit does not move data_version; nothing to re-read for it.
}

void SqliteEngine::rollback() noexcept {
  if (!in_write_) return;
  in_write_ = false;
  if (sql_) sqlite3_exec(sql_->db.getHandle(), "ROLLBACK", nullptr, nullptr, nullptr);
}
std::unique_ptr<Engine> open(const EngineConfig& config) {
  return std::make_unique<SqliteEngine>(config);
}

}  // namespace taskjournal::store::sqlite

namespace taskjournal::store::testing {

void set_connection_hook(std::function<void(sqlite3*)> hook) {
  sqlite::connection_hook() = std::move(hook);
}

}  // namespace taskjournal::store::testing
