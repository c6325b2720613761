// The journal on PostgreSQL: the engine half of the storage seam (DESIGN.md "Engines and the
// seam"). It stores rows the caller has already encoded and hashed (the same rows and the same
// SHA-256 chain as the SQLite journal; README "Storage format") and knows nothing of events.
//
// Writing is optimistic (notes/postgres-journal.md sections 2 and 8): the caller catches up to
// head(), decides, then begin_write(head) / append(row)... / commit(). commit() is one pipelined
// round trip, one transaction: advance journal_head WHERE seq = expected and INSERT the first
// row (one statement), INSERT the other rows, pg_notify, Sync (schema.hpp). If another writer
// appended since `expected`, commit() returns Conflict and wrote nothing: catch up (read_after)
// and decide again.
//
// Connections: one per PgJournal, made in the constructor. When it is lost (server restart,
// failover, network), the call in flight throws Error(Storage) and wrote all or nothing; the
// next call reconnects (and throws Error(Storage) while the server is unreachable). A reconnect
// finds the journal or throws Error(NotFound); it never creates one.
//
// Thread-safety: one thread at a time per PgJournal; use one PgJournal per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/chain.hpp"

namespace taskjournal::store::postgres {

class Connection;

struct PgJournalConfig {
  /// Any libpq connection string or postgresql:// URI; the journal lives in the first schema
  /// of its search_path.
  std::string conninfo;
  /// synchronous_commit for this session. true (on): an acknowledged append survives a crash
  /// of the client, of the server and of its host (with the server's fsync on). false (off): it
  /// survives a crash of the client and a clean (smart or fast) server shutdown; a server crash,
  /// an immediate shutdown or a host crash may lose the last acknowledged appends (up to 3 ×
  /// wal_writer_delay, 600 ms by default), whole commits from the newest back, never a gap.
  bool synchronous_commit = true;
  /// Each commit also runs pg_notify(channel(), "<newest seq>") (delivered at commit).
  bool notify = true;
  /// Create the schema when the search_path's schema has no journal (false: Error(NotFound)).
  bool create = true;
  /// lock_timeout for this session (0: wait as long as it takes); beyond it commit() throws
  /// Error(Busy).
  std::chrono::milliseconds lock_timeout{0};
};

/// The newest event's sequence number and hash: (0, 32 zero bytes) for an empty journal.
struct Head {
  std::int64_t seq = 0;
  std::string hash = std::string(32, '\0');
  friend bool operator==(const Head&, const Head&) = default;
};

/// One event row as stored (owning).
struct EventRow {
  std::int64_t seq = 0;
  std::string type;
  std::int32_t version = 0;
  std::int64_t recorded_at = 0;  ///< microseconds since the Unix epoch, UTC
  std::string session_id;
  std::string task_id;
  std::string payload;
  std::string hash;  ///< 32 bytes: SHA-256 chain over the previous hash and this row
};

/// One event row as read (store/chain.hpp's row, as every engine hands it over): views valid
/// during the callback only.
using EventView = store::EventRow;

enum class CommitResult {
  Committed,  ///< the rows are in the journal; the head is now the last row's (seq, hash)
  Conflict,   ///< another writer appended since begin_write's head: nothing was written
};

class PgJournal {
 public:
  /// Connects and makes sure the journal's schema exists (see ensure_schema in schema.hpp:
  /// Corrupt for another application's tables, Unsupported for a newer schema). Throws
  /// Error(Storage) naming the target when the server cannot be reached.
  explicit PgJournal(PgJournalConfig config);
  ~PgJournal();
  PgJournal(const PgJournal&) = delete;
  PgJournal& operator=(const PgJournal&) = delete;

  /// "host=... port=... dbname=... user=..." (no password).
  const std::string& target() const noexcept { return target_; }
  /// The schema that holds this journal.
  const std::string& schema() const noexcept { return schema_; }
  /// The LISTEN channel commits notify on ("taskjournal_<schema>", at most 63 bytes); the
  /// payload is the newest seq in decimal. A wake-up hint only: catch up with read_after().
  const std::string& channel() const noexcept { return channel_; }

  /// The newest sequence number and its hash, as committed now. Throws Error.
  Head head();
  /// The change check: true if the journal's head differs from `known` (an append anywhere;
  /// a head behind or unequal to `known` means history was lost or rewritten). Throws Error.
  bool changed_since(const Head& known);
  /// Calls `on_event` for every event with after < seq <= up_to, in seq order, from one
  /// snapshot, streamed (binary COPY, constant memory). Returns how many. Throws Error (Corrupt
  /// for rows of the wrong shape); an exception from `on_event` propagates.
  std::int64_t read_after(std::int64_t after, const std::function<void(const EventView&)>& on_event,
                          std::int64_t up_to = std::numeric_limits<std::int64_t>::max());

  /// Starts a write decided against `expected` (the head the caller caught up to). Throws
  /// Error(InvalidArgument) if a write is already open.
  void begin_write(const Head& expected);
  /// Adds a row to the open write. Its seq must be expected.seq + 1 + (rows already added) and
  /// its hash 32 bytes; otherwise Error(InvalidArgument), and the write stays as it was.
  void append(EventRow row);
  /// Commits the open write in one round trip and closes it (also when it throws). Returns
  /// Committed or Conflict (nothing written). Throws Error(Busy) past lock_timeout, Error(Storage)
  /// when the server fails the write (nothing written) or the connection is lost (the write
  /// committed whole or not at all: catch up to learn which). An open write without rows
  /// commits nothing and returns Committed.
  CommitResult commit();
  /// Discards the open write, if any.
  void rollback() noexcept;
  /// True between begin_write() and commit()/rollback().
  bool writing() const noexcept { return writing_; }
  /// The rows added to the open write.
  const std::vector<EventRow>& pending() const noexcept { return pending_; }

 private:
  Connection& connection();
  void connect();

  PgJournalConfig config_;
  std::unique_ptr<Connection> conn_;
  std::string target_, schema_, channel_, quoted_;
  bool opened_ = false;  // the first connect succeeded (reconnects do not create the schema)
  bool writing_ = false;
  Head expected_;
  std::vector<EventRow> pending_;
};

}  // namespace taskjournal::store::postgres
