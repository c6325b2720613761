// copy_journal: a journal copied event by event to another location, SQLite file or PostgreSQL,
// with the same sequence numbers, payload bytes and hashes (`taskjournal-replay copy`).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "taskjournal/export.hpp"
#include "taskjournal/reader.hpp"

namespace taskjournal {

/// How copy_journal copies.
struct CopyOptions {
  /// Events appended per transaction of the destination (at least 1): an interrupted copy keeps
  /// every batch committed before it, and a rerun resumes after them.
  std::uint64_t batch_events = 10'000;
  /// How long to wait for a lock another connection holds on either journal, as
  /// Options::busy_timeout.
  std::chrono::milliseconds busy_timeout{5000};
  /// Called with (source events read, source events in all) every few thousand events and once
  /// at the end; what it throws is passed on (committed batches stay).
  ProgressCallback progress;
};

/// What copy_journal did.
struct CopyResult {
  std::string source;        ///< the file, or the server, database and schema (never a password)
  std::string destination;   ///< likewise
  std::uint64_t kept = 0;    ///< events the destination held before: a prefix of the source
  std::uint64_t copied = 0;  ///< events appended after them
  std::uint64_t transactions = 0;  ///< destination transactions committed
  /// The source's newest event when the copy began (its stored hash, checked against the chain),
  /// now also the destination's newest: compare it with both journals' digest().
  JournalDigest digest;
};

/// Copies the journal at `source` to `destination`, each a file path or a PostgreSQL URI
/// (postgresql://… or postgres://…, the journal in the first schema of its search_path). Reads
/// the source's events in order, each checked as JournalReader::read checks it (sequence, hash
/// chain, type, version, payload), up to the newest event when the copy began, and appends them
/// as stored: the same sequence numbers, types, versions, times, ids, payload bytes and hashes.
/// Appends in transactions of options.batch_events events. A missing destination file, or a
/// schema without a journal, is created; a destination that holds events must hold a prefix of
/// the source (its newest event has the source's hash at that sequence number): the copy then
/// goes on after it (an interrupted copy resumes). Checkpoints are not copied: they are a cache
/// of the views, and a registry opening the copy folds the events instead (and writes
/// checkpoints of its own as Options::checkpoint_every says).
///
/// Does not verify the copy as a whole: JournalReader::verify(destination) with the result's
/// digest does (taskjournal-replay copy runs it).
///
/// Throws Error(InvalidArgument) when the destination holds events that are not a prefix of the
/// source (nothing written), or batch_events is 0; Error(Corrupt) naming the source and sequence
/// number at the first event that fails its checks (the batches before it stay committed);
/// Error(Storage) when the destination changed during the copy (another writer); otherwise what
/// JournalReader::open (source) and Registry::open (destination) throw for their location.
TASKJOURNAL_API CopyResult copy_journal(const std::string& source, const std::string& destination,
                                        const CopyOptions& options = {});

}  // namespace taskjournal
