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
  /// Copy the events up to this one only (0: up to the newest when the copy began).
  std::uint64_t up_to_seq = 0;
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

/// How archive_journal archives (README "Archiving").
struct ArchiveOptions {
  /// Archive the events up to this one (the newest, if the journal holds fewer); at least 1.
  std::uint64_t before_seq = 0;
  /// Events appended per transaction of the archive, as CopyOptions::batch_events.
  std::uint64_t batch_events = 10'000;
  /// As Options::busy_timeout, for both journals.
  std::chrono::milliseconds busy_timeout{5000};
  /// Give the space of the archived events back to the file system (SQLite VACUUM; other
  /// writers wait meanwhile, up to their busy timeout; PostgreSQL's autovacuum does it there).
  bool compact = true;
  /// Progress of the copy into the archive, as CopyOptions::progress.
  ProgressCallback progress;
};

/// What archive_journal did.
struct ArchiveResult {
  std::string journal;  ///< the live journal's name
  std::string archive;  ///< the archive's name, as the anchor records it
  /// The anchor: events 1…archived_through are in the archive (and no longer in the journal).
  std::uint64_t archived_through = 0;
  std::uint64_t events_archived = 0;  ///< events this call copied into the archive
  std::uint64_t bytes_before = 0;     ///< the journal's file and -wal file before
  std::uint64_t bytes_after = 0;      ///< and after
};

/// Moves the events 1…min(before_seq, newest) of the journal `journal` (a file or a PostgreSQL
/// URI) into the journal `archive` (likewise; created if missing, or an earlier archive of this
/// journal, which the new events are appended to) and leaves in `journal` an anchor: the checkpoint
/// of the last archived event and that event's hash, from which the journal opens, folds and
/// verifies on its own (README "Archiving"). Steps: fold and check the events up to there; store
/// and read back that checkpoint; copy the events into the archive (each checked, resumable); then,
/// in one transaction of the journal, record the anchor and delete the archived events and older
/// checkpoints; then, on SQLite, VACUUM (options.compact). A crash at any step leaves the journal
/// as it was or archived, never unreadable; running the call again finishes the work. Writers of
/// the journal keep working; they wait for the deletion and the VACUUM. Events of tasks still live
/// may be archived: the anchor's checkpoint holds those tasks.
///
/// Throws Error(InvalidArgument) for before_seq 0 or an archive that is not this journal's (its
/// events differ, or it lacks an earlier archived part), and what copy_journal and Registry::open
/// throw.
TASKJOURNAL_API ArchiveResult archive_journal(const std::string& journal,
                                              const std::string& archive,
                                              const ArchiveOptions& options);

}  // namespace taskjournal
