// The journal: one SQLite table of immutable, hash-chained events (internal).
//
// Storage format (schema version 1; README "Storage format" repeats it):
//
//   PRAGMA application_id = 0x544A524E ("TJRN")   -- identifies a taskjournal file
//   PRAGMA user_version   = 1                      -- the schema version below
//   CREATE TABLE events (
//     seq         INTEGER PRIMARY KEY CHECK (seq > 0),  -- 1, 2, 3, … without gaps
//     type        TEXT    NOT NULL,   -- task_created | task_updated | cancel_requested
//                                     -- | message_recorded
//     version     INTEGER NOT NULL,   -- payload schema version (events::kPayloadVersion)
//     recorded_at INTEGER NOT NULL,   -- microseconds since the Unix epoch, UTC
//     session_id  TEXT    NOT NULL,
//     task_id     TEXT    NOT NULL,
//     payload     BLOB    NOT NULL,   -- cereal portable binary, grammar in events/codec.cpp
//     hash        BLOB    NOT NULL);  -- SHA-256, see chain_hash() below
//   CREATE INDEX events_by_task ON events(task_id, seq);
//   triggers events_no_update / events_no_delete: RAISE(ABORT) on UPDATE and DELETE
//
//   hash(n) = SHA-256( hash(n-1) | u64le seq | u32le len, type | u32le version | i64le recorded_at
//                      | u32le len, session_id | u32le len, task_id | u32le len, payload )
//   hash(0) = 32 zero bytes
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
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "events/event.hpp"
#include "taskjournal/journal.hpp"
#include "taskjournal/options.hpp"

namespace taskjournal::store {

inline constexpr int kSchemaVersion = 1;
inline constexpr std::int32_t kApplicationId = 0x544A524E;  // "TJRN"

struct JournalConfig {
  std::string path;  ///< a file path or ":memory:"
  bool read_only = false;
  Durability durability = Durability::Full;
  std::chrono::milliseconds busy_timeout{5000};
  bool exclusive = false;  ///< locking_mode=EXCLUSIVE
};

/// One SQLite connection to a journal file. Not thread-safe: the Registry serialises calls.
/// Every method translates SQLite failures into taskjournal::Error naming the file.
class Journal {
 public:
  /// Opens (creating when missing and writable) and checks the file: Corrupt if it is not a
  /// taskjournal journal, Unsupported if its schema is newer.
  explicit Journal(const JournalConfig& config);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  const std::string& path() const noexcept { return config_.path; }

  /// True if a read-only open found the journal where its -shm file cannot be created (a
  /// directory the process may not write, a read-only file system) and no -wal file with
  /// commits: the file is then read in SQLite's immutable mode, as a snapshot that does not see
  /// later writes by others.
  bool immutable() const noexcept { return immutable_; }

  /// True if another connection committed since the previous call (true on the first call).
  bool changed_by_others();

  /// Reads every event after the last one this journal verified, checks sequence, hash chain,
  /// type and payload, and hands each to `sink` in order. An event counts as verified once
  /// `sink` returned. Throws Error(Corrupt) naming the file and sequence number.
  void read_new(const std::function<void(events::Event&&)>& sink);

  /// Sequence number of the newest verified event (0 for an empty journal).
  std::uint64_t verified_seq() const noexcept { return verified_seq_; }

  /// Forgets what was verified: the next read_new reads and checks every event from the first
  /// (for views that must be rebuilt). Not between an append and its commit.
  void restart();

  /// The events of one task of one session up to sequence number `up_to_seq`, in order, with
  /// JSON payloads; each row's hash is checked against its predecessor's. Found through the
  /// events_by_task index, which nothing checks: the caller compares the count with the fold's.
  std::vector<JournalEntry> task_entries(std::string_view session_id, std::string_view task_id,
                                         std::uint64_t up_to_seq);

  /// One stored row as it is, unchecked. The views point into SQLite's buffers: valid only during
  /// the scan() callback that receives the row.
  struct Row {
    std::uint64_t seq = 0;
    std::string_view type;
    std::int64_t version = 0;
    std::int64_t recorded_at = 0;
    std::string_view session_id;
    std::string_view task_id;
    std::string_view payload;
    std::string_view hash;
  };

  /// Calls `sink` for every row with seq > after_seq, in sequence order, checking nothing, until
  /// `sink` returns false. For readers that report problems instead of stopping at the first
  /// (the public JournalReader). Reads one snapshot of the file.
  void scan(std::uint64_t after_seq, const std::function<bool(const Row&)>& sink);

  /// The hash `row` must carry when `prev` is its predecessor's hash (formula above; row.hash is
  /// not read). `prev` is genesis_hash() for event 1.
  std::string chain_hash(std::string_view prev, const Row& row);

  /// hash(0): 32 zero bytes.
  static std::string genesis_hash() { return std::string(32, '\0'); }

  /// The stored hash of event `seq`, or an empty string if there is no such row.
  std::string stored_hash(std::uint64_t seq);

  /// The largest sequence number in the file (0 for an empty journal), unchecked.
  std::uint64_t newest_seq();

  /// The schema version the file declares (PRAGMA user_version).
  int schema_version();

  // ---- checkpoints: a cache of the views, never trusted over the events ----------------------

  struct CheckpointInfo {
    std::uint64_t seq = 0;  ///< the last event it covers
    std::string hash;       ///< that event's hash, as the checkpoint recorded it
    std::int64_t format = 0;
    std::int64_t chunks = 0;
    std::uint64_t tasks = 0;     ///< as the checkpoint says: a hint, not checked
    std::uint64_t messages = 0;  ///< likewise
  };

  /// The stored checkpoints, newest first; none if the file has no checkpoint table.
  std::vector<CheckpointInfo> checkpoints();

  /// Hands the chunks of checkpoint `info` to `sink` in order, each after its digest matched.
  /// Throws Error(Corrupt) for a missing or extra chunk or a digest mismatch.
  void read_checkpoint(const CheckpointInfo& info,
                       const std::function<void(std::string_view)>& sink);

  /// Continues after views were restored from a checkpoint of event `seq` whose stored hash is
  /// `hash`: the next read_new reads from event seq + 1 and checks it against `hash`.
  void resume_after(std::uint64_t seq, std::string hash);

  /// The hash of event verified_seq() (32 zero bytes for an empty journal).
  const std::string& verified_hash() const noexcept { return verified_hash_; }

  using ChunkSink = std::function<void(std::string_view)>;

  /// Stores, in one transaction of its own, the checkpoint `info` (seq, hash, tasks, messages;
  /// format and chunks are filled in) made of the chunks `produce` hands to its sink, in order,
  /// then deletes all but the newest `keep` checkpoints. Does nothing (produce is not called) if
  /// a checkpoint of info.seq exists. Not inside a write. Throws like append() and commit(), and
  /// what produce throws.
  void write_checkpoint(const CheckpointInfo& info, std::int64_t created_at,
                        const std::function<void(const ChunkSink&)>& produce, int keep);

  /// BEGIN IMMEDIATE: takes the write lock (waiting up to busy_timeout, then Error(Busy)).
  void begin_write();
  /// Appends `event`, which must carry the sequence number after the last verified or appended
  /// event (call read_new first). Several appends may share one write.
  void append(const events::Event& event);
  /// COMMIT; the appended event counts as verified afterwards.
  void commit();
  /// ROLLBACK if a write is open; never throws.
  void rollback() noexcept;

 private:
  struct Sql;
  void read_new_unchecked(const std::function<void(events::Event&&)>& sink);
  // Throws Error(Storage) naming `doing` unless a write transaction is open on the connection.
  void ensure_in_write(std::string_view doing);
  JournalConfig config_;
  std::unique_ptr<Sql> sql_;
  std::uint64_t verified_seq_ = 0;
  std::string verified_hash_;  // hash of event verified_seq_
  std::uint64_t pending_seq_ = 0;
  std::string pending_hash_;
  bool in_write_ = false;
  bool immutable_ = false;

 public:
  /// Calls `sink` with every stored row of task `task_id` (any session) with seq <= up_to_seq,
  /// in sequence order, found through the events_by_task index, together with the stored hash of
  /// the row before it (seq - 1; empty when that row is missing, 32 zero bytes for event 1),
  /// checking nothing, until `sink` returns false. Reads one snapshot of the file. For the public
  /// JournalReader's per-task history, which checks each row against that hash.
  void scan_task(std::string_view task_id, std::uint64_t up_to_seq,
                 const std::function<bool(const Row&, std::string_view prev_hash)>& sink);
};

}  // namespace taskjournal::store

struct sqlite3;

namespace taskjournal::store::testing {

/// Test hook, not part of the API: when set, every Journal calls it with its SQLite connection
/// at the end of its constructor, so that a test can run a PRAGMA on a registry's own connection
/// (max_page_count to simulate a full disk). Set and clear it while no journal is being opened.
void set_connection_hook(std::function<void(sqlite3*)> hook);

}  // namespace taskjournal::store::testing
