// The storage seam (internal): what a storage engine offers the journal, whatever holds the rows.
//
// An engine stores rows and checkpoint chunks and runs transactions; it checks nothing of their
// content. store::Journal above it encodes events, computes and verifies the hash chain
// (store/chain.hpp), and hands the registry and the reader verified events, so every engine
// verifies the same way. The SQLite engine is in store/sqlite/, PostgreSQL's in store/postgres/;
// one place, store/open.hpp, picks
// the engine for a location. Modelled on LogCabin's Storage/Log.h: each method says what it
// returns for an empty journal and how long a result stays valid.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/chain.hpp"
#include "store/change_signal.hpp"
#include "taskjournal/options.hpp"

namespace taskjournal::store {

/// The newest schema version this build reads and writes, the same in every engine (README
/// "Storage format"). Version 2 adds the task_pruned event (issue 13); a journal is created at
/// version 1 and raised to 2 by its first task_pruned event, so that a journal that never pruned
/// stays readable by builds that know only version 1.
inline constexpr int kSchemaVersion = 2;
/// The version a new journal is created with.
inline constexpr int kNewJournalSchemaVersion = 1;
/// The version a journal holding task_pruned events declares at least.
inline constexpr int kPrunedSchemaVersion = 2;
/// Marks a taskjournal journal ("TJRN"): SQLite's application_id, a meta row elsewhere.
inline constexpr std::int32_t kApplicationId = 0x544A524E;

/// Which engine holds a journal.
enum class EngineKind {
  Sqlite,      ///< location: a file path or ":memory:"
  Postgresql,  ///< location: a libpq connection string or postgresql:// URI
};

/// How to open an engine.
struct EngineConfig {
  EngineKind kind = EngineKind::Sqlite;
  std::string location;  ///< a file path or ":memory:" (SQLite), a connection string (PostgreSQL)
  bool read_only = false;
  Durability durability = Durability::Full;
  std::chrono::milliseconds busy_timeout{5000};
  bool exclusive = false;  ///< no other connection may use the journal while this one is open
};

/// One stored checkpoint's head row (README "Checkpoints").
struct CheckpointInfo {
  std::uint64_t seq = 0;  ///< the last event it covers
  std::string hash;       ///< that event's hash, as the checkpoint recorded it
  std::int64_t format = 0;
  std::int64_t chunks = 0;
  std::uint64_t tasks = 0;     ///< as the checkpoint says: a hint, not checked
  std::uint64_t messages = 0;  ///< likewise
};

/// Where the live part of an archived journal begins (taskjournal-replay archive, issue 13): the
/// events up to `seq` were moved to an archive journal; the first event left chains to `hash`;
/// the checkpoint of `seq` (kept beside the events) holds the views at that point.
struct Anchor {
  std::uint64_t seq = 0;
  std::string hash;
  std::string archive;  ///< where the archive was written, as the archiving call named it
  friend bool operator==(const Anchor&, const Anchor&) = default;
};

/// One live task of an anchor's checkpoint: which chunk holds it (an engine whose registry loads
/// sessions one at a time reads only that session's chunks, PostgreSQL).
struct AnchorTask {
  std::string task_id;
  std::string session_id;
  std::int64_t chunk = 0;
};

/// Thrown by Engine::commit() of an optimistic write (begin_optimistic_write) when another
/// connection appended after the expected event: nothing of the write is stored. Not an Error:
/// the registry catches it, catches up and decides again; it never reaches a caller.
struct WriteConflict {};

/// One connection to one journal. Not thread-safe: the Registry serialises its use. Every
/// method throws taskjournal::Error naming the journal: Busy when the journal stayed locked by
/// another writer beyond the busy timeout, ReadOnly for a write on a read-only engine, Corrupt
/// for stored data the engine cannot read, Storage for any other failure.
class Engine {
 public:
  virtual ~Engine() = default;

  /// The journal's name for messages: the file path, or the server, database and schema (never a
  /// password).
  virtual const std::string& name() const noexcept = 0;

  /// True if another connection committed since the previous call (true on the first call).
  virtual bool changed_by_others() = 0;

  /// Calls `sink` for every row with seq > after_seq, in sequence order, until it returns
  /// false; nothing for an empty journal. Reads one snapshot. Views are valid during the call.
  virtual void scan(std::uint64_t after_seq, const std::function<bool(const EventRow&)>& sink) = 0;

  /// Calls `sink` for every row of task `task_id` (any session) with seq <= up_to_seq, in
  /// sequence order, with the stored hash of the row before it (seq - 1: genesis_hash() for
  /// event 1, empty when that row is missing), until it returns false. Found through an index
  /// that nothing checks: callers compare counts. One snapshot; views valid during the call.
  virtual void scan_task(
      std::string_view task_id, std::uint64_t up_to_seq,
      const std::function<bool(const EventRow&, std::string_view prev_hash)>& sink) = 0;

  /// The same for every row of session `session_id` (PostgreSQL: through an index; SQLite: a
  /// scan of the journal, as nothing there calls it).
  virtual void scan_session(
      std::string_view session_id, std::uint64_t up_to_seq,
      const std::function<bool(const EventRow&, std::string_view prev_hash)>& sink) = 0;

  /// The stored hash of event `seq`; empty if there is no such row.
  virtual std::string stored_hash(std::uint64_t seq) = 0;
  /// The largest sequence number stored, unchecked; 0 for an empty journal.
  virtual std::uint64_t newest_seq() = 0;
  /// The schema version the journal declares.
  virtual int schema_version() = 0;
  /// True if the journal is read as a snapshot that does not see later writes (SQLite's
  /// immutable mode where its -shm file cannot be made).
  virtual bool snapshot_only() const noexcept { return false; }

  /// Opens the write transaction, taking the journal's write lock (waiting up to the busy
  /// timeout). Throws ReadOnly on a read-only engine.
  virtual void begin_write() = 0;
  /// Opens a write that takes no lock now: the appended rows are stored at commit() only if the
  /// journal's newest event is still `expected_seq`, else commit() throws WriteConflict, having
  /// stored nothing. The caller decided on views of the journal up to expected_seq. Engines
  /// without it (SQLite, whose lock is cheap) take the lock as begin_write() does.
  virtual void begin_optimistic_write(std::uint64_t expected_seq) {
    static_cast<void>(expected_seq);
    begin_write();
  }
  /// Stores `row` as it is. Throws Storage if no write transaction is open (also when the
  /// engine rolled it back after an earlier failure) or the statement fails.
  virtual void append(const EventRow& row) = 0;
  /// Commits the write transaction. Throws Storage if none is open, WriteConflict (optimistic
  /// writes only) when another connection appended first.
  virtual void commit() = 0;
  /// Rolls back the write transaction if one is open; never throws.
  virtual void rollback() noexcept = 0;
  /// The journal's anchor, if its prefix was archived.
  virtual std::optional<Anchor> anchor() = 0;
  /// Inside a write begun with begin_write(): records `anchor` (its seq later than any earlier
  /// anchor's, its checkpoint stored) and deletes the events up to anchor.seq and the checkpoints
  /// before it, committed with the write.
  virtual void archive_prefix(const Anchor& anchor, const std::vector<AnchorTask>& tasks) = 0;
  /// The session of task `task_id` if the anchor's checkpoint holds it and the engine indexes
  /// it (PostgreSQL), else empty.
  virtual std::string anchor_session_of(std::string_view task_id) {
    (void)task_id;
    return {};
  }
  /// The chunks of the anchor's checkpoint that hold tasks of `session_id` (PostgreSQL), in
  /// order; nullopt if the engine does not index them (read the whole checkpoint).
  virtual std::optional<std::vector<std::int64_t>> anchor_chunks_of(std::string_view session_id) {
    (void)session_id;
    return std::nullopt;
  }
  /// Hands `sink` chunk `n` of checkpoint `seq` (data, digest); nothing if there is none.
  virtual void scan_checkpoint_chunk(
      std::uint64_t seq, std::int64_t n,
      const std::function<void(std::string_view, std::string_view)>& sink) = 0;
  /// Bytes the journal takes in storage (SQLite: the file and its -wal; PostgreSQL: its tables
  /// and indexes).
  virtual std::uint64_t stored_bytes() = 0;
  /// Outside a write: returns the space of deleted rows to the file system where the engine can
  /// (SQLite: VACUUM, then a WAL checkpoint that truncates the -wal file). Other writers wait
  /// meanwhile, up to their busy timeout.
  virtual void compact() {}
  /// Inside a write begun with begin_write(): makes the journal declare at least `version`,
  /// committed with the write (before an event that older builds must not read).
  virtual void raise_schema_version(int version) = 0;

  /// A signal of other connections' commits over a connection of its own, checking about every
  /// `interval` where the engine has no push (store/change_signal.hpp); nullptr when no other
  /// connection can write this journal (":memory:", exclusive, an immutable snapshot).
  virtual std::unique_ptr<ChangeSignal> change_signal(std::chrono::milliseconds interval,
                                                      ProblemReporter report) {
    (void)interval;
    (void)report;
    return nullptr;
  }

  /// The stored checkpoints, newest first; none if the journal has none.
  virtual std::vector<CheckpointInfo> checkpoints() = 0;
  /// Calls `sink(n, data, digest)` for each stored chunk of checkpoint `seq` in order of n, as
  /// stored, unchecked. Views valid during the call.
  virtual void scan_checkpoint(std::uint64_t seq,
                               const std::function<void(std::int64_t n, std::string_view data,
                                                        std::string_view digest)>& sink) = 0;
  /// Stores a checkpoint in one transaction of its own: does nothing (and returns false without
  /// calling `produce`) if one of info.seq exists; otherwise calls `produce` with a sink that
  /// stores each (data, digest) chunk in order, then the head row (format, chunks filled in),
  /// deletes all but the newest `keep` checkpoints, commits, and returns true.
  using ChunkWriter = std::function<void(std::string_view data, std::string_view digest)>;
  virtual bool write_checkpoint(const CheckpointInfo& info, std::int64_t created_at,
                                const std::function<void(const ChunkWriter&)>& produce,
                                int keep) = 0;
};

}  // namespace taskjournal::store
