// Registry::Impl: the registry's state and its command loop (internal; DESIGN.md).
//
//   queue (group commit) → lock → BEGIN IMMEDIATE → catch up on others' events
//        → for each queued call: decide (validate, build one event) → append
//        → COMMIT → fold the events into the views → unlock → notify, in journal order
//
// A call alone runs that with a group of one; calls from other threads that arrive while a
// commit is in flight wait in the queue and commit together next (store/group_commit.hpp).
//
// store/registry.cpp holds the public calls of registry.hpp; store/host.cpp the host's side of
// the lifecycle (orphans, the reaper, sinks, waiting, watching).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <system_error>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <boost/signals2/signal.hpp>

#include "events/checkpoint.hpp"
#include "events/event.hpp"
#include "events/ids.hpp"
#include "events/validate.hpp"
#include "projections/commands.hpp"
#include "projections/live_tasks.hpp"
#include "projections/notices.hpp"
#include "projections/session_views.hpp"
#include "projections/views.hpp"
#include "store/checkpoint_io.hpp"
#include "store/group_commit.hpp"
#include "store/handoff.hpp"
#include "store/journal.hpp"
#include "store/sqlite/file_checks.hpp"
#include "taskjournal/lifecycle.hpp"
#include "taskjournal/registry.hpp"

namespace taskjournal {

struct Registry::Impl {
  using Notice = projections::Notice;
  static Timestamp system_now() {
    return std::chrono::floor<std::chrono::microseconds>(std::chrono::system_clock::now());
  }

  Options options;
  std::mutex mutex;
  std::atomic<std::thread::id> batch_thread{};
  store::Journal journal;
  // SQLite: the views of the whole journal, folded at open. PostgreSQL: `sessions`, the views of
  // the sessions this registry serves, each loaded when a call first names it, so that memory
  // and open time do not grow with the journal (projections/session_views.hpp).
  projections::Views views;
  std::optional<projections::SessionViews> sessions;
  boost::signals2::signal<void(const RegistryEvent&)> event_signal;
  boost::signals2::signal<void(TaskTransition, const SessionTask&)> transition_signal;
  boost::signals2::signal<void(const WakeNotice&)> wake_signal;

  Impl(store::EngineKind kind, const std::string& location, Options opts)
      : options(std::move(opts)),
        journal(store::JournalConfig{.kind = kind,
                                     .path = location,
                                     .read_only = options.read_only,
                                     .durability = options.durability,
                                     .busy_timeout = options.busy_timeout,
                                     .exclusive = options.exclusive}) {
    if (options.watch && options.watch->count() <= 0) {
      throw Error(ErrorCode::InvalidArgument,
                  "invalid argument: Options::watch must be a positive interval (got " +
                      std::to_string(options.watch->count()) + " ms); leave it unset not to watch");
    }
    if (kind == store::EngineKind::Postgresql) {
      open_sessions();
    } else {
      open_views();
    }
    told_seq = position();
    if (options.watch) start_watching(*options.watch);
  }
  ~Impl() { stop_watching(); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // ---- the views a call reads: one session's -------------------------------------------------

  // The sequence number of the newest event the views include.
  std::uint64_t position() const { return sessions ? sessions->last_seq() : views.last_seq(); }

  // The views holding session `session_id`'s tasks: all views, or the session's own, loaded now
  // if no call named it since it was last forgotten.
  projections::Views& views_of(std::string_view session_id) {
    if (!sessions) return views;
    if (projections::Views* loaded = sessions->find(session_id)) return *loaded;
    projections::Views folded(projections::Sequence::Subset);
    if (const auto& anchor = journal.anchor()) {
      // Its tasks as the anchor's checkpoint holds them: the events before it are archived.
      journal.anchor_entries_of(session_id, [&](events::CheckpointEntry&& entry) {
        folded.restore_task(std::move(entry));
      });
      folded.finish_restore_subset(anchor->seq);
    }
    journal.session_events(session_id, sessions->last_seq(),
                           [&](events::Event&& event) { folded.apply(event); });
    return sessions->install(std::string(session_id), std::move(folded));
  }

  // The task with this id in any session (create's conflict check).
  // With `in_journal`: also whether the journal holds events of that id (a pruned task's, when
  // the task is not found).
  const SessionTask* find_any(std::string_view task_id, bool* in_journal = nullptr) {
    if (!sessions) {
      const SessionTask* task = views.find_any(task_id);
      if (in_journal) {
        *in_journal = task || (views.pruned_events() > 0 &&
                               !journal.session_of(task_id, views.last_seq()).empty());
      }
      return task;
    }
    const std::string session = journal.session_of(task_id, sessions->last_seq());
    if (in_journal) *in_journal = !session.empty();
    return session.empty() ? nullptr : views_of(session).find(session, task_id);
  }

  // PostgreSQL: starts at the newest event without folding anything. Each event read later is
  // checked against its predecessor's stored hash; the chain as a whole is verify's business.
  void open_sessions() {
    sessions.emplace();
    const std::uint64_t seq = journal.newest_seq();
    journal.resume_after(seq, seq == 0 ? store::genesis_hash() : journal.stored_hash(seq));
    sessions->reset(seq);
  }

  // The time of an event. Every stored time must be expressible in RFC 3339 (years 0000–9999),
  // and a generated id's time field must be the event's millisecond: a clock outside that range
  // fails the call before anything is written.
  Timestamp now() const {
    const Timestamp t = options.clock ? options.clock() : system_now();
    if (!projections::in_time_range(t, /*event_time=*/true)) {
      throw Error(ErrorCode::InvalidArgument,
                  "invalid argument: the clock (Options::clock) returned " +
                      std::to_string(t.time_since_epoch().count()) +
                      " microseconds since 1970, outside the years 1970-9999 that event times "
                      "and generated ids can hold; fix the clock");
    }
    return t;
  }
  // now() as the commands' clock, asked only once a command passed its checks.
  const projections::Clock clock_ = [this] { return now(); };

  // The registry's lock. A call from inside this registry's own batch body would deadlock (or
  // nest transactions): refuse it instead.
  std::unique_lock<std::mutex> lock() {
    refuse_inside_batch();
    return std::unique_lock(mutex);
  }

  // Folds every event other connections appended since we last looked. With Options::watch
  // and a slot connected, the notices of the events not told yet go to `pending`, for the watch
  // thread to deliver (store/host.cpp); waiters are woken whenever the views moved.
  void catch_up() {
    const std::uint64_t before = position();
    // Whether anyone listens is asked after each event was read, never before: a slot connected
    // before another registry wrote an event hears of it, even if this catch-up began earlier.
    if (!sessions) {
      journal.read_new([&](events::Event&& event) {
        const projections::Applied applied = apply(event);
        if (options.watch && event.seq > told_seq && has_slots()) {
          projections::notices_for(event, applied, pending);
        }
      });
    } else if (!options.watch) {
      // Others' events of sessions this registry does not hold are chained, not decoded (unless
      // the live-task index of list_orphaned follows every task).
      std::function<bool(std::string_view)> wanted;
      if (!live) wanted = [this](std::string_view session) { return sessions->loaded(session); };
      journal.read_new([this](events::Event&& event) { apply(event); }, wanted);
    } else {
      // A notice carries the task: the session of each event is loaded first, which reads the
      // journal, so the new events are read before any is folded.
      std::vector<events::Event> read;
      std::exception_ptr failure;
      try {
        journal.read_new([&](events::Event&& event) { read.push_back(std::move(event)); });
      } catch (...) {
        failure = std::current_exception();  // fold what was read (and verified) first
      }
      const bool tell = has_slots();
      for (const auto& event : read) {
        const bool told = tell && event.seq > told_seq;
        if (told) views_of(event.session_id);
        const projections::Applied applied = apply(event);
        if (told) projections::notices_for(event, applied, pending);
      }
      if (failure) std::rethrow_exception(failure);
    }
    told_seq = std::max(told_seq, position());
    if (position() != before) {
      advanced.notify_all();
      // The watch thread delivers them after this catch-up; another thread wakes it.
      if (!pending.empty() && signal && std::this_thread::get_id() != watcher_id.load()) {
        signal->interrupt();
      }
    }
  }
  // What refresh() does without asking the journal whether others appended.
  void refresh_locally() {
    if (sessions) sessions->trim();  // before the call loads what it needs
    if (views_stale) rebuild();
  }
  void refresh() {
    if (sessions) sessions->trim();  // before the call loads what it needs
    if (views_stale) {
      rebuild();
    } else if (!options.exclusive && journal.changed_by_others()) {
      try {
        catch_up();
      } catch (const store::PrefixArchived&) {
        rebuild();  // another process archived past these views: start again from the anchor
      }
    }
  }

  // Folds one event into the views. Views::apply checks an event before it changes anything,
  // so its Error leaves them as they were; anything else thrown from inside the fold (an
  // allocation failure) may leave them half changed: they are then rebuilt on the next call.
  projections::Applied apply(const events::Event& event) {
    try {
      if (live) live->apply(event);
      if (sessions) {
        // A call's own events are of sessions it loaded; others' may be of any session.
        const auto applied = sessions->apply(event);
        return applied ? *applied : projections::Applied{};
      }
      return views.apply(event);
    } catch (const Error&) {
      throw;
    } catch (...) {
      views_stale = true;
      throw;
    }
  }

  // ---- checkpoints ----------------------------------------------------------------------------

  OpenReport open_report;
  std::uint64_t checkpointed_seq = 0;  // the newest checkpoint known to exist (or attempted)

  static constexpr int kCheckpointsKept = 2;

  // Hands `problem` to Options::on_problem, which must not fail anything.
  void report(const Error& problem) const {
    if (!options.on_problem) return;
    try {
      options.on_problem(problem);
    } catch (...) {
    }
  }

  // Builds the views at open: from the newest checkpoint that decodes and agrees with the
  // events, then the events after it; or from the first event. A checkpoint is a cache: every
  // doubt about one falls back to the events.
  void open_views() {
    const auto checkpoints = journal.checkpoints();  // newest first
    if (!checkpoints.empty()) checkpointed_seq = checkpoints.front().seq;
    const std::optional<store::Anchor> anchor = journal.anchor();
    for (const auto& info : checkpoints) {
      // Without open_from_checkpoint, an archived journal still starts from its anchor's.
      if (!options.open_from_checkpoint && !(anchor && info.seq == anchor->seq)) continue;
      if (restore(info)) break;
    }
    if (anchor && open_report.checkpoint_seq == 0) throw anchor_unusable(*anchor);
    try {
      catch_up();
    } catch (const store::PrefixArchived&) {
      rebuild();
    } catch (const Error& e) {
      if (open_report.checkpoint_seq == 0 || e.code() != ErrorCode::Corrupt) throw;
      // The events after the checkpoint do not fit it. Either is wrong: fold them all to know.
      ignore_checkpoint(open_report.checkpoint_seq,
                        std::string("the events after it do not fit it (") + e.what() + ")");
      open_report.checkpoint_seq = 0;
      rebuild();
    }
    open_report.events_folded = views.last_seq() - open_report.checkpoint_seq;
  }

  // Restores the views from checkpoint `info`; false (views untouched) if it is not usable.
  bool restore(const store::CheckpointInfo& info) {
    if (info.format < events::kOldestCheckpointFormat || info.format > events::kCheckpointFormat) {
      return ignore_checkpoint(
          info.seq, "format " + std::to_string(info.format) + " (this build reads formats " +
                        std::to_string(events::kOldestCheckpointFormat) + " to " +
                        std::to_string(events::kCheckpointFormat) + ")");
    }
    // The anchor's event is in the archive; the anchor holds its hash.
    const auto& anchor = journal.anchor();
    std::string hash =
        anchor && info.seq == anchor->seq ? anchor->hash : journal.stored_hash(info.seq);
    if (hash.empty()) return ignore_checkpoint(info.seq, "the journal has no such event");
    if (hash != info.hash) {
      return ignore_checkpoint(info.seq,
                               "it disagrees with the journal (the event's hash differs)");
    }
    try {
      projections::Views restored;
      // Each task and message took at least one event: a count beyond seq is not believed.
      restored.reserve(std::min(info.tasks, info.seq), std::min(info.messages, info.seq));
      std::uint64_t pruned = 0;
      read_checkpoint_entries(info, [&](events::CheckpointChunk&& chunk) {
        pruned += chunk.pruned_events;
        for (auto& entry : chunk.entries) restored.restore_task(std::move(entry));
      });
      restored.finish_restore(info.seq, pruned);
      views = std::move(restored);
    } catch (const Error& e) {
      if (e.code() != ErrorCode::Corrupt && e.code() != ErrorCode::Unsupported) throw;
      return ignore_checkpoint(info.seq, e.what());
    }
    journal.resume_after(info.seq, std::move(hash));
    open_report.checkpoint_seq = info.seq;
    return true;
  }

  // Hands the entries of checkpoint `info` to `sink`, a chunk at a time, in order. A second
  // thread reads and checks the chunks and decodes two in three of them, while this one decodes
  // the third and runs `sink` (building the views): profiled on two cores, that split keeps both
  // busy and restores a large checkpoint in about half the time. What either side throws
  // propagates here.
  void read_checkpoint_entries(const store::CheckpointInfo& info,
                               const std::function<void(events::CheckpointChunk&&)>& sink) {
    using Entries = events::CheckpointChunk;
    const auto format = static_cast<std::uint32_t>(info.format);
    auto decode = [format](std::string_view chunk) {
      return events::decode_checkpoint_chunk(chunk, format);
    };
    struct Piece {
      std::string raw;  // not decoded yet, if not empty
      Entries entries;
    };
    struct Stopped {};
    store::Handoff<Piece> handoff(3);
    auto produce = [&] {
      try {
        std::size_t n = 0;
        journal.read_checkpoint(info, [&](std::string_view chunk) {
          Piece piece;
          if (n++ % 3 == 2) {
            piece.raw = chunk;
          } else {
            piece.entries = decode(chunk);
          }
          if (!handoff.push(std::move(piece))) throw Stopped{};
        });
        handoff.close();
      } catch (const Stopped&) {
        handoff.close();
      } catch (...) {
        handoff.close(std::current_exception());
      }
    };
    std::optional<std::thread> reader;
    try {
      reader.emplace(produce);
    } catch (const std::system_error&) {  // no thread to be had: read in this one
      journal.read_checkpoint(info, [&](std::string_view chunk) { sink(decode(chunk)); });
      return;
    }
    try {
      while (auto piece = handoff.pop()) {
        sink(piece->raw.empty() ? std::move(piece->entries) : decode(piece->raw));
      }
    } catch (...) {
      handoff.stop();
      reader->join();
      throw;
    }
    reader->join();
  }

  bool ignore_checkpoint(std::uint64_t seq, std::string_view why) {
    const std::string subject = journal.path() + ": checkpoint of event " + std::to_string(seq);
    if (why.starts_with(subject + ": ")) why.remove_prefix(subject.size() + 2);
    std::string what = subject + " ignored: " + std::string(why);
    open_report.ignored_checkpoints.push_back(what);
    report(Error(ErrorCode::Corrupt, std::move(what)));
    return false;
  }

  // Stores a checkpoint of the views as they are (under the lock, views fresh); returns its seq.
  std::uint64_t write_checkpoint() {
    const std::uint64_t seq = views.last_seq();
    if (seq == 0) return 0;
    store::write_views_checkpoint(journal, views, journal.verified_hash(),
                                  system_now().time_since_epoch().count(), kCheckpointsKept);
    checkpointed_seq = seq;
    return seq;
  }

  // After a commit: the checkpoint Options::checkpoint_every asks for, if it is due. A failure
  // is reported, not thrown (the call's events are committed), and tried again a period later.
  // The period grows to a tenth of the journal: writing a checkpoint costs time in proportion to
  // the views, so a fixed period would cost ever more per event as the journal grows.
  void checkpoint_if_due() {
    if (options.checkpoint_every == 0 || options.read_only || views_stale || sessions) return;
    const std::uint64_t every = std::max(options.checkpoint_every, checkpointed_seq / 10);
    if (views.last_seq() - std::min(checkpointed_seq, views.last_seq()) < every) return;
    if (journal.verified_seq() != views.last_seq()) return;
    try {
      write_checkpoint();
    } catch (const Error& e) {
      checkpointed_seq = views.last_seq();
      report(Error(e.code(), std::string("checkpoint not written: ") + e.what()));
    } catch (const std::exception& e) {
      checkpointed_seq = views.last_seq();
      report(Error(ErrorCode::Storage, std::string("checkpoint not written: ") + e.what()));
    }
  }

  // Folds the whole journal again from the first event, into new views (PostgreSQL: forgets the
  // sessions, which load again from the events).
  void rebuild() {
    live.reset();
    if (sessions) {
      // Past an anchor another connection set after these views (PrefixArchived): go on from it.
      if (const auto& anchor = journal.anchor(); anchor && anchor->seq > journal.verified_seq()) {
        journal.resume_after(anchor->seq, anchor->hash);
      }
      sessions->reset(journal.verified_seq());
      views_stale = false;
      return;
    }
    views = projections::Views{};
    journal.restart();
    if (const auto anchor = journal.anchor()) {
      // The events up to the anchor are archived: its checkpoint is where the fold begins.
      bool restored = false;
      for (const auto& info : journal.checkpoints()) {
        if (info.seq == anchor->seq) restored = restore(info);
      }
      if (!restored) throw anchor_unusable(*anchor);
    }
    catch_up();
    views_stale = false;
  }

  Error anchor_unusable(const store::Anchor& anchor) const {
    std::string why;
    for (const auto& reason : open_report.ignored_checkpoints) why += "; " + reason;
    return Error(ErrorCode::Corrupt,
                 journal.path() + ": its events up to " + std::to_string(anchor.seq) +
                     " were archived (to " + anchor.archive + ") and the checkpoint of event " +
                     std::to_string(anchor.seq) +
                     ", which holds the views up to there, is missing or unusable" + why +
                     ". The live journal cannot be folded without it: restore it from the "
                     "archive (taskjournal-replay copy ARCHIVE NEW, then copy the live journal's "
                     "events after it)");
  }

  // True when the views may differ from the fold of the verified journal (a fold failed).
  bool views_stale = false;

  // One write transaction: take the write lock, catch up, then the views plus this transaction's
  // own events (an overlay of the tasks they touched, folded with the same fold_into_task).
  // Rolled back unless commit() succeeds; the views change only after COMMIT.
  //
  // Optimistic (PostgreSQL, single calls): no lock and no catching up first. The commit stores
  // the events only if nobody appended after the views' newest event (one round trip), else it
  // throws store::WriteConflict; a commit with nothing to store first checks the same. single()
  // then catches up and decides again, so no decision rests on stale views.
  class Transaction {
   public:
    explicit Transaction(Impl& r, bool optimistic = false) : r_(r), optimistic_(optimistic) {
      if (r_.options.read_only) {
        throw Error(ErrorCode::ReadOnly, r_.journal.path() + ": journal opened read-only");
      }
      if (optimistic_) {
        r_.refresh_locally();
        r_.journal.begin_optimistic_write();
        open_ = true;
        return;
      }
      r_.journal.begin_write();
      open_ = true;
      try {
        r_.refresh();
      } catch (...) {
        r_.journal.rollback();
        throw;
      }
    }
    bool optimistic() const noexcept { return optimistic_; }
    ~Transaction() {
      if (open_) r_.journal.rollback();
    }
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;

    // A task pruned by an earlier call of this transaction is gone (a group's calls see the
    // events before them, task_pruned included).
    const SessionTask* find(std::string_view session_id, std::string_view task_id) const {
      if (pruned_.contains(task_id)) return nullptr;
      if (auto it = overlay_.find(task_id); it != overlay_.end()) {
        return it->second.session_id == session_id ? &it->second : nullptr;
      }
      return r_.views_of(session_id).find(session_id, task_id);
    }
    const SessionTask* find_any(std::string_view task_id, bool* in_journal = nullptr) const {
      if (pruned_.contains(task_id)) {
        if (in_journal) *in_journal = true;  // its events are in the journal: no reuse
        return nullptr;
      }
      if (auto it = overlay_.find(task_id); it != overlay_.end()) {
        if (in_journal) *in_journal = true;
        return &it->second;
      }
      return r_.find_any(task_id, in_journal);
    }

    // Appends `event` under the next sequence number and folds it into the overlay; returns the
    // task as it is after the event.
    const SessionTask& append(events::Event event) {
      check_alive();
      if (pruned_.contains(event.task_id)) {
        // A decision that missed the prune before it (not through find()): its event would
        // follow the task's task_pruned, and the journal would no longer fold. Refused before
        // anything is written.
        throw Error(ErrorCode::Conflict,
                    "task " + event.task_id + " was pruned by an earlier call of this commit");
      }
      event.seq = r_.position() + events_.size() + 1;
      r_.views_of(event.session_id);  // loaded (or kept) for the fold after the commit
      try {
        r_.journal.append(event);
      } catch (const std::exception& e) {
        // The statement failed: SQLite may have rolled back this statement or the whole
        // transaction. Either way the batch cannot go on, or its later events would commit
        // behind a gap: it is dead, and nothing of it commits.
        failure_ = e.what();
        throw;
      } catch (...) {
        failure_ = "unknown error";
        throw;
      }
      SessionTask* task = nullptr;
      if (std::holds_alternative<events::TaskPruned>(event.payload)) {
        // The task as it was, for the caller; gone for every later call of the transaction.
        auto it = overlay_.find(event.task_id);
        pruned_last_ = it != overlay_.end()
                           ? std::move(it->second)
                           : *r_.views_of(event.session_id).find(event.session_id, event.task_id);
        if (it != overlay_.end()) overlay_.erase(it);
        pruned_.emplace(event.task_id);
        events_.push_back(std::move(event));
        return pruned_last_;
      }
      if (const auto* created = std::get_if<events::TaskCreated>(&event.payload)) {
        task = &(overlay_[event.task_id] = new_session_task(created->input, event.recorded_at));
      } else {
        auto it = overlay_.find(event.task_id);
        if (it == overlay_.end()) {
          it = overlay_
                   .emplace(event.task_id,
                            *r_.views_of(event.session_id).find(event.session_id, event.task_id))
                   .first;
        }
        task = &it->second;
        projections::fold_into_task(*task, event);
      }
      events_.push_back(std::move(event));
      return *task;
    }

    // Throws Error(Storage) once a statement of this transaction failed (see append()).
    void check_alive() const {
      if (failure_) {
        throw Error(ErrorCode::Storage,
                    r_.journal.path() + ": batch aborted: an earlier call of this batch failed (" +
                        *failure_ + "); nothing of the batch is committed");
      }
    }

    // The events appended so far, and whether the transaction can still commit (no statement
    // of it failed).
    std::size_t size() const noexcept { return events_.size(); }
    bool alive() const noexcept { return !failure_; }

    // COMMIT, then folds the events into the views; returns their notifications. With `ends`:
    // (*ends)[i] is the number of notifications of the events up to event i of this transaction.
    std::vector<Notice> commit(std::vector<std::size_t>* ends = nullptr) {
      check_alive();
      std::vector<Notice> notices;
      if (events_.empty()) {
        r_.journal.rollback();
        open_ = false;
        // An answer from the views (a task missing, an idempotent create) holds only if they
        // were the newest.
        if (optimistic_ && r_.journal.changed_by_others()) {
          r_.catch_up();
          throw store::WriteConflict{};
        }
        return notices;
      }
      r_.journal.commit();
      open_ = false;
      try {
        // Whether anyone listens is asked once (a mutex per signal), not once per event.
        const bool listened = r_.has_slots();
        for (const auto& event : events_) {
          const projections::Applied applied = r_.apply(event);
          if (listened) r_.notices_for(event, applied, notices);
          if (ends) ends->push_back(notices.size());
        }
      } catch (...) {
        // The events are committed and count as read: views that missed one are rebuilt from
        // the journal on the next call instead of deciding (and numbering events) on a stale fold.
        r_.views_stale = true;
        throw;
      }
      r_.told_seq = std::max(r_.told_seq, r_.position());
      r_.advanced.notify_all();
      return notices;
    }

   private:
    Impl& r_;
    projections::StringMap<SessionTask> overlay_;
    std::unordered_set<std::string, projections::StringHash, std::equal_to<>> pruned_;
    SessionTask pruned_last_;             // what append() returned for the last task_pruned
    std::deque<events::Event> events_;    // never moved once appended (big payloads)
    std::optional<std::string> failure_;  // what made a statement fail: the transaction is dead
    bool optimistic_ = false;
    bool open_ = false;
  };

  // ---- the commands: validate against the transaction's view, append one event -------------

  SessionTask create(Transaction& tx, const CreateSessionTask& input) {
    bool in_journal = false;
    const SessionTask* existing = input.id ? tx.find_any(*input.id, &in_journal) : nullptr;
    auto decision = projections::decide_create(input, existing, clock_);
    if (decision.existing) return *decision.existing;
    if (in_journal) {
      throw Error(ErrorCode::Conflict,
                  "task id " + *input.id +
                      " belongs to a task pruned from this journal (prune_terminal): ids are "
                      "not reused while the journal holds their events; give another id");
    }
    return tx.append(std::move(*decision.event));
  }

  std::optional<SessionTask> update(Transaction& tx, std::string_view session_id,
                                    std::string_view task_id, const SessionTaskUpdate& update) {
    auto event = projections::decide_update(session_id, task_id, update,
                                            tx.find(session_id, task_id), clock_);
    if (!event) return std::nullopt;
    return tx.append(std::move(*event));
  }

  std::optional<SessionTask> request_cancel(Transaction& tx, std::string_view session_id,
                                            std::string_view task_id) {
    auto event =
        projections::decide_cancel(session_id, task_id, tx.find(session_id, task_id), clock_);
    if (!event) return std::nullopt;
    return tx.append(std::move(*event));
  }

  TaskMessage record_message(Transaction& tx, std::string_view session_id, std::string_view task_id,
                             const NewTaskMessage& message) {
    auto event = projections::decide_message(session_id, task_id, message,
                                             tx.find(session_id, task_id), clock_);
    TaskMessage stored = std::get<events::MessageRecorded>(event.payload).message;
    tx.append(std::move(event));
    return stored;
  }

  // After a conflict, this many single calls take the lock first instead of trying optimistically:
  // while other hosts write to the journal too, a decision on the views held would mostly
  // conflict again (a failed round trip each time); the locked write catches up in its first
  // round trip.
  static constexpr int kLockedAfterConflict = 16;
  int locked_calls_left = 0;

  // Runs one command as one call of the writer queue (store/group_commit.hpp): its own
  // transaction, or the one a leader commits for it and the calls queued with it; then notifies
  // after the commit, outside the lock, in journal order.
  template <class Command>
  auto single(Command&& command) {
    return single(std::forward<Command>(command), true);
  }
  // `may_be_optimistic` false: the locked write (a command that must write under the journal's
  // lock, such as one raising the schema version).
  template <class Command>
  auto single(Command&& command, bool may_be_optimistic) {
    using Answer = std::invoke_result_t<Command&, Transaction&>;
    refuse_inside_batch();
    std::optional<Answer> answer;
    GroupWriter writer;
    writer.run = [&](Transaction& tx) { answer.emplace(command(tx)); };
    writer.may_be_optimistic = may_be_optimistic;
    write(writer);
    if (writer.failure) std::rethrow_exception(writer.failure);
    deliver(writer.ticket, writer.notices);
    return std::move(*answer);
  }

  // ---- group commit (store/group_commit.cpp) -------------------------------------------------

  // One call in the writer queue. A leader runs `run` (decide, append at most what the command
  // appends) in the group's transaction; `failure` is what the call throws, `notices` what it
  // delivers with `ticket` (0: none).
  struct GroupWriter : store::WriterQueue::Writer {
    std::function<void(Transaction&)> run;
    bool may_be_optimistic = true;
    std::exception_ptr failure;
    std::size_t events = 0;  // of the group's transaction, appended by `run`
    std::vector<Notice> notices;
    std::uint64_t ticket = 0;
  };
  // At most this many calls share one commit (leveldb caps a group by bytes; a call here
  // appends one event).
  static constexpr std::size_t kMaxGroup = 256;

  store::WriterQueue writers;
  store::DeliveryOrder delivery;
  std::atomic<std::size_t> last_group{0};  // the size of the newest group (write())
  // Queues `writer` and returns once its group committed (or failed): led by this thread or by
  // the thread at the front when it arrived.
  void write(GroupWriter& writer);
  // The leader's work, under the lock: one transaction for the group (again after a conflict),
  // each call deciding against every event before it; a call refused leaves no trace and fails
  // alone; any other failure fails the whole group, nothing of it committed.
  void commit_group(std::span<GroupWriter* const> group);
  std::vector<std::size_t> group_ends;  // commit_group's, kept for its capacity
  // Delivers `notices` in the turn of `ticket` (0: nothing to deliver).
  void deliver(std::uint64_t ticket, const std::vector<Notice>& notices);

  void refuse_inside_batch() const {
    if (batch_thread.load() == std::this_thread::get_id()) {
      throw Error(ErrorCode::InvalidArgument,
                  "invalid argument: Registry called inside its own batch; use the Batch");
    }
  }

  // ---- notifications ------------------------------------------------------------------------

  bool has_slots() const {
    return !event_signal.empty() || !transition_signal.empty() || !wake_signal.empty();
  }

  // Appends the notices of docs/contract.md §5 for one folded event.
  void notices_for(const events::Event& event, const projections::Applied& a,
                   std::vector<Notice>& out) {
    if (has_slots()) projections::notices_for(event, a, out);
  }

  void notify(const std::vector<Notice>& notices) {
    for (const auto& n : notices) {
      if (n.event) event_signal(*n.event);
      if (n.transition) transition_signal(n.transition->first, n.transition->second);
      if (n.wake) wake_signal(*n.wake);
    }
  }

  // ---- the host's side (store/host.cpp) ------------------------------------------------------

  // Change detection and the watch thread. `signal` and `watcher` are set once, under the lock;
  // the thread stops (and is joined) when the state is destroyed.
  std::condition_variable advanced;  // notified whenever the views folded new events
  std::uint64_t told_seq = 0;        // events up to this one were told, own, or before open
  std::vector<Notice> pending;       // others' events' notices, for the watch thread
  std::unique_ptr<store::ChangeSignal> signal;
  std::thread watcher;
  std::atomic<std::thread::id> watcher_id{};  // set by the watch thread itself
  std::vector<Error> signal_problems;         // the watch thread's own, reported under the lock
  std::atomic<bool> stopping{false};
  bool watch_started = false;
  // Without Options::watch, how often the detection a waiter starts looks (SQLite: every
  // quarter of it, at most 10 ms) or falls back to reading (PostgreSQL: at least every second).
  static constexpr std::chrono::milliseconds kWaitInterval{100};
  void start_watching(std::chrono::milliseconds interval);
  void watch_loop(std::chrono::milliseconds interval);
  void stop_watching() noexcept;

  // PostgreSQL: every unfinished task of the journal, built by the first list_orphaned.
  std::optional<projections::LiveTasks> live;
  void for_each_unfinished(const std::function<void(const SessionTask&)>& f);
  // Every terminal task not pruned: id, session, finished_at (store/retention.cpp).
  void for_each_finished(
      const std::function<void(const std::string&, const std::string&, Timestamp)>& f);
  // PostgreSQL: builds `live` if it is not (reads the whole journal once; not inside a write,
  // which would hold the journal's lock that long).
  void ensure_live();

  // update() through single(), also telling whether the task, as the transaction saw it, was
  // at the update's expected attempt and not terminal, so that the update took effect. When it
  // was not, nothing is written (the reaper's steps, which must never act twice).
  struct Fenced {
    bool took_effect = false;
    std::optional<SessionTask> task;
  };
  Fenced fenced_update(std::string_view session_id, std::string_view task_id,
                       const SessionTaskUpdate& update);
};

struct Batch::Context {
  Registry::Impl& registry;
  Registry::Impl::Transaction& tx;
};

}  // namespace taskjournal
