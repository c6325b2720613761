// The journal: verified, hash-chained events over any storage engine (internal).
//
// The registry and the reader use this class; it holds an Engine (store/engine.hpp), which only
// stores rows. Here events are encoded (events/), the hash chain is computed and every row read
// is verified (store/chain.hpp), so every engine is verified the same way.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/checkpoint.hpp"
#include "events/event.hpp"
#include "store/chain.hpp"
#include "store/engine.hpp"
#include "taskjournal/journal.hpp"

namespace taskjournal::store {

/// Where and how a Journal opens its engine; store/open.hpp picks the engine for `path`.
struct JournalConfig {
  EngineKind kind = EngineKind::Sqlite;
  std::string path;  ///< a file path or ":memory:", or a PostgreSQL connection string
  bool read_only = false;
  Durability durability = Durability::Full;
  std::chrono::milliseconds busy_timeout{5000};
  bool exclusive = false;
};

/// Thrown by Journal::read_new when another connection archived the journal's prefix past the
/// events this journal verified: the views must be rebuilt from the anchor (restart()). Not an
/// Error: the registry catches it and rebuilds; it never reaches a caller.
struct PrefixArchived {};

/// The journal over one engine connection. Not thread-safe: the Registry serialises calls.
/// Every method throws taskjournal::Error naming the journal (see Engine).
class Journal {
 public:
  explicit Journal(std::unique_ptr<Engine> engine);
  /// Opens the engine open_engine() picks for config.path.
  explicit Journal(const JournalConfig& config);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  /// The journal's name for messages (Engine::name).
  const std::string& path() const noexcept { return engine_->name(); }
  /// The engine, for what the journal does not wrap (raw rows for the reader).
  Engine& engine() noexcept { return *engine_; }
  /// Engine::snapshot_only.
  bool immutable() const noexcept { return engine_->snapshot_only(); }

  /// True if another connection committed since the previous call (true on the first call), or
  /// if the last read failed (so that a bad event keeps failing reads rather than being skipped).
  bool changed_by_others();

  /// Reads every event after the last one this journal verified, checks sequence, hash chain,
  /// type and payload, and hands each to `sink` in order. An event counts as verified once
  /// `sink` returned. Throws Error(Corrupt) naming the journal and sequence number.
  /// With `wants_payload`, an event whose session it refuses reaches `sink` with its payload
  /// unspecified (not decoded; still chained and numbered); it is asked as each row is read,
  /// which in a large read may be before earlier events reached `sink`. A large read hashes and
  /// decodes on worker threads (store/parallel_chain.hpp); `sink` runs on the calling thread.
  /// The first read after opening, restart() or resume_after() (the one that may be large) may
  /// read the engine on a scan thread meanwhile, unless `wants_payload` is given: `sink` must
  /// not use the engine (nothing of this Journal but what it is handed).
  void read_new(const std::function<void(events::Event&&)>& sink,
                const std::function<bool(std::string_view session_id)>& wants_payload = {});

  /// Sequence number of the newest verified event (0 for an empty journal).
  std::uint64_t verified_seq() const noexcept { return verified_seq_; }
  /// The hash of event verified_seq() (32 zero bytes for an empty journal).
  const std::string& verified_hash() const noexcept { return verified_hash_; }

  /// Forgets what was verified: the next read_new reads and checks every event from the first
  /// one stored, after the anchor if the prefix was archived (for views that must be rebuilt;
  /// the anchor's checkpoint holds the views up to it). Not between an append and its commit.
  void restart();

  /// The hash row `row` must chain to, given its stored predecessor's hash `prev` (empty if that
  /// row is missing): the anchor's for the first event after an archived prefix.
  std::string_view linked(const EventRow& row, std::string_view prev) const;
  /// Reads the anchor again (a reader, between calls: another connection may have archived).
  void reload_anchor() { load_anchor(); }
  /// The anchor as this journal last read it (at open, restart() or a PrefixArchived).
  const std::optional<Anchor>& anchor() const noexcept { return anchor_; }
  /// The sequence number and hash the stored events chain from: the anchor's, or 0 and the
  /// genesis hash.
  std::uint64_t base_seq() const noexcept { return anchor_ ? anchor_->seq : 0; }
  std::string base_hash() const { return anchor_ ? anchor_->hash : genesis_hash(); }
  /// Continues after views were restored from a checkpoint of event `seq` whose stored hash is
  /// `hash`: the next read_new reads from event seq + 1 and checks it against `hash`.
  void resume_after(std::uint64_t seq, std::string hash);

  /// The events of one task of one session up to sequence number `up_to_seq`, in order, with
  /// JSON payloads; each row's hash is checked against its predecessor's. Found through an index
  /// that nothing checks: the caller compares the count with the fold's.
  std::vector<JournalEntry> task_entries(std::string_view session_id, std::string_view task_id,
                                         std::uint64_t up_to_seq);

  /// Hands `sink` every event of session `session_id` up to `up_to_seq`, in order, each row's
  /// hash checked against its predecessor's and its payload decoded (as task_entries).
  void session_events(std::string_view session_id, std::uint64_t up_to_seq,
                      const std::function<void(events::Event&&)>& sink);
  /// Hands `sink` every event up to `up_to_seq`, in order, each checked against the one before
  /// it from the first stored (after the anchor, if archived: the chain as read_new checks it)
  /// and decoded; does not move what
  /// read_new reads next. For an index of the whole journal built after open (the live tasks of
  /// a PostgreSQL registry).
  void events_up_to(std::uint64_t up_to_seq, const std::function<void(events::Event&&)>& sink);
  /// Engine::change_signal.
  std::unique_ptr<ChangeSignal> change_signal(std::chrono::milliseconds interval,
                                              ProblemReporter report) {
    return engine_->change_signal(interval, std::move(report));
  }
  /// Hands `sink` the anchor's checkpoint entries of session `session_id` (none without an
  /// anchor), each chunk's digest checked, reading only that session's chunks where the engine
  /// indexes them. Throws Error(Corrupt) for a damaged or missing chunk.
  void anchor_entries_of(std::string_view session_id,
                         const std::function<void(events::CheckpointEntry&&)>& sink);
  /// The session of task `task_id` (its first event's, up to `up_to_seq`, or the anchor's
  /// checkpoint's where the engine indexes it); empty if none.
  std::string session_of(std::string_view task_id, std::uint64_t up_to_seq);

  /// The stored hash of event `seq` (the anchor's for an archived anchor event), or an empty
  /// string if there is no such row.
  std::string stored_hash(std::uint64_t seq) {
    std::string hash = engine_->stored_hash(seq);
    if (hash.empty() && anchor_ && seq == anchor_->seq) hash = anchor_->hash;
    return hash;
  }
  /// The largest sequence number stored, or archived (0 for an empty journal), unchecked.
  std::uint64_t newest_seq() { return std::max(engine_->newest_seq(), base_seq()); }
  /// The schema version the journal declares.
  int schema_version() { return engine_->schema_version(); }

  // ---- checkpoints: a cache of the views, never trusted over the events ----------------------

  /// The stored checkpoints, newest first.
  std::vector<CheckpointInfo> checkpoints() { return engine_->checkpoints(); }
  /// Hands the chunks of checkpoint `info` to `sink` in order, each after its digest matched.
  /// Throws Error(Corrupt) for a missing or extra chunk or a digest mismatch.
  void read_checkpoint(const CheckpointInfo& info,
                       const std::function<void(std::string_view)>& sink);
  using ChunkSink = std::function<void(std::string_view)>;
  /// Stores, in one transaction of its own, the checkpoint `info` (seq, hash, tasks, messages)
  /// made of the chunks `produce` hands to its sink, in order, then deletes all but the newest
  /// `keep` checkpoints. Does nothing (produce is not called) if a checkpoint of info.seq exists.
  /// Not inside a write. Throws like append() and commit(), and what produce throws.
  void write_checkpoint(const CheckpointInfo& info, std::int64_t created_at,
                        const std::function<void(const ChunkSink&)>& produce, int keep);

  // ---- writing ---------------------------------------------------------------------------------

  /// Opens the write transaction (waiting up to busy_timeout, then Error(Busy)).
  void begin_write();
  /// Opens a write decided on the events verified so far, without a lock: commit() throws
  /// WriteConflict (store/engine.hpp) if another connection appended after verified_seq().
  void begin_optimistic_write();
  /// Appends `event`, which must carry the sequence number after the last verified or appended
  /// event (call read_new first; Error(Storage) otherwise). Several appends may share one write.
  void append(const events::Event& event);
  /// Engine::raise_schema_version (inside begin_write()).
  void raise_schema_version(int version) { engine_->raise_schema_version(version); }
  /// Commits; the appended events count as verified afterwards.
  void commit();
  /// Rolls back if a write is open; never throws.
  void rollback() noexcept;

 private:
  void load_anchor();
  // Throws PrefixArchived if another connection archived past verified_seq_.
  void check_archived();

  std::unique_ptr<Engine> engine_;
  std::optional<Anchor> anchor_;
  ChainHasher hasher_;
  std::uint64_t verified_seq_ = 0;
  std::string verified_hash_ = genesis_hash();
  std::uint64_t pending_seq_ = 0;
  std::string pending_hash_;
  bool must_read_ = false;
  bool fresh_ = true;  // no read_new since opening, restart() or resume_after()
};

}  // namespace taskjournal::store
