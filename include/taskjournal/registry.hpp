// Registry: the event-sourced session task registry over one journal (a SQLite file or a
// PostgreSQL schema).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "taskjournal/error.hpp"
#include "taskjournal/export.hpp"
#include "taskjournal/host.hpp"
#include "taskjournal/journal.hpp"
#include "taskjournal/notifications.hpp"
#include "taskjournal/options.hpp"
#include "taskjournal/types.hpp"

namespace taskjournal {

class TaskSink;

/// The calls of one Registry::batch transaction. Each behaves exactly like the Registry call of
/// the same name (same answers, same errors) and sees the batch's earlier calls; nothing is
/// durable or visible to others until the batch commits. Valid only inside the batch's body, in
/// the thread that runs it.
class TASKJOURNAL_API Batch {
 public:
  SessionTask create(const CreateSessionTask& input);
  std::optional<SessionTask> update(std::string_view session_id, std::string_view task_id,
                                    const SessionTaskUpdate& update);
  std::optional<SessionTask> request_cancel(std::string_view session_id, std::string_view task_id);
  TaskMessage record_message(std::string_view session_id, std::string_view task_id,
                             const NewTaskMessage& message);
  /// The task as this batch sees it (its own changes included); nullopt if missing or foreign.
  std::optional<SessionTask> get(std::string_view session_id, std::string_view task_id) const;

  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

 private:
  friend class Registry;
  struct TASKJOURNAL_NO_EXPORT Context;
  explicit Batch(Context& context) : context_(context) {}
  Context& context_;
};

/// How Registry::open built the views.
struct OpenReport {
  /// The event the checkpoint used covers; 0 if the views were folded from the first event.
  std::uint64_t checkpoint_seq = 0;
  /// Events folded (and checked) after the checkpoint, or from the first event without one.
  std::uint64_t events_folded = 0;
  /// Why each checkpoint newer than the one used (or every one, without) was ignored.
  std::vector<std::string> ignored_checkpoints;
};

/// The session task registry of docs/contract.md, stored as an append-only journal of events.
///
/// Thread safety: one Registry may be used from any number of threads at once. Several Registry
/// objects, in one process or in several, may share one journal file: every write decides against
/// the newest state of the file, and every read sees each write committed anywhere before it
/// began. Slots run in the calling thread after the commit, outside the registry's locks, so a
/// slot may call the registry. Movable, not copyable; a moved-from Registry may only be destroyed
/// or assigned to. Subscriptions belong to the registry's state, not to the object: after a move
/// they keep firing, and a slot that captured the old object (a pointer or reference to it) must
/// not use it; capture what the slot needs, or subscribe again after the move.
///
/// Every call may also throw Error(Busy) (another writer held the lock beyond busy_timeout),
/// Error(Corrupt) (an event appended by another process fails its checks; the views stay as they
/// were) or Error(Storage) (I/O failure, disk full); an exception thrown by Options::clock
/// propagates as it is. A call that throws wrote nothing and changed no view, with one exception:
/// if memory runs out after the commit (std::bad_alloc while folding the event or building its
/// notifications), the call throws although its event is stored, and the next call rebuilds the
/// views from the journal and shows it.
class TASKJOURNAL_API Registry {
 public:
  /// Opens or creates the journal at `path` and folds it into the views. `":memory:"` gives a
  /// private in-memory journal. A new file is created with mode 0600.
  /// Throws Error(Corrupt) for a file that is not a taskjournal journal or an event that fails
  /// its checks (the message names the file and sequence number), Error(Unsupported) for a
  /// journal of a newer schema, Error(ReadOnly) when `options.read_only` and the file is missing
  /// or, without `options.read_only`, when the file cannot be written, Error(Storage) when the
  /// file cannot be opened (a symlink, not a regular file, owned by another user, or an I/O
  /// error). Error(Busy) if other processes kept the file locked beyond `busy_timeout`.
  static Registry open(const std::filesystem::path& path, Options options = {});

  /// Opens the journal in a PostgreSQL database (README "Scaling out"): `conninfo` is any libpq
  /// connection string ("host=/run/postgresql dbname=app") or postgresql:// URI. The journal
  /// lives in the first schema of the connection's search_path, created on first use (several
  /// journals can share a database in different schemas). Registries on any number of hosts may
  /// share it with the guarantees above. Durability::Full is synchronous_commit=on, Normal is
  /// off (options.hpp); busy_timeout bounds the wait for the journal's write lock
  /// (lock_timeout); `exclusive` is a SQLite mode (Error(InvalidArgument)).
  /// Throws Error(Storage) naming the server when it cannot be reached or refuses the user,
  /// Error(Corrupt) when the schema holds tables of another application, Error(Unsupported) for
  /// a journal of a newer schema, Error(ReadOnly) with `read_only` when the schema holds no
  /// journal, and what open() throws for the events. When the connection is lost later (server
  /// restart, failover), the call in flight throws Error(Storage) having written all or
  /// nothing, and the next call connects again.
  static Registry open_postgresql(const std::string& conninfo, Options options = {});

  Registry(Registry&&) noexcept;
  Registry& operator=(Registry&&) noexcept;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;
  ~Registry();

  /// Creates a task (docs/contract.md §4). Without `input.id`, generates `task_<uuidv7>`. If the id
  /// exists in the same session, returns the stored task unchanged and writes nothing. Throws
  /// Error(Conflict) if the id exists under another session, Error(InvalidArgument) for bad input
  /// (empty session id or kind, an id empty or over 256 bytes, a string that is not UTF-8, a spec
  /// that is not JSON), Error(ReadOnly) on a read-only registry.
  SessionTask create(const CreateSessionTask& input);

  /// Applies `update` by docs/contract.md §3 and returns the task, also when the rules dropped it.
  /// nullopt (nothing written) if the task is missing or belongs to another session.
  /// Throws Error(InvalidArgument) for a string that is not UTF-8, an `expected` that is not JSON,
  /// or an increment_attempt that would overflow; Error(ReadOnly) on a read-only registry.
  std::optional<SessionTask> update(std::string_view session_id, std::string_view task_id,
                                    const SessionTaskUpdate& update);

  /// The task, or nullopt if missing or of another session.
  std::optional<SessionTask> get(std::string_view session_id, std::string_view task_id);

  /// The session's tasks in creation order, filtered by exact kind and state (AND).
  std::vector<SessionTask> list(std::string_view session_id, const SessionTaskFilter& filter = {});

  /// Records cooperative cancel intent: sets cancel_requested_at the first time, never the state.
  /// Returns the task (unchanged on a repeated call); nullopt if missing or of another session.
  /// Throws Error(ReadOnly) on a read-only registry.
  std::optional<SessionTask> request_cancel(std::string_view session_id, std::string_view task_id);

  /// Stores a message on the task's channel and returns it with its new `tmsg_` id. An inbound
  /// message whose in_reply_to names the pending input request resumes the task (state running).
  /// Throws Error(NotFound) if the task is missing or of another session, Error(StaleAttempt) if
  /// `message.expected_attempt` differs from the task's attempt, Error(InvalidArgument) for a
  /// string that is not UTF-8 or a data part that is not JSON, Error(ReadOnly) on a read-only
  /// registry.
  TaskMessage record_message(std::string_view session_id, std::string_view task_id,
                             const NewTaskMessage& message);

  /// The task's messages, oldest first. With `after_id`: those after that message (empty if it
  /// names no message of this task), the first `limit` of them. Without: the most recent `limit`.
  /// Empty for a missing or foreign task and for `limit == 0`.
  std::vector<TaskMessage> list_messages(std::string_view session_id, std::string_view task_id,
                                         std::optional<std::uint32_t> limit = std::nullopt,
                                         std::optional<std::string_view> after_id = std::nullopt);

  /// The task's events in journal order (its audit trail); empty if missing or foreign.
  std::vector<JournalEntry> history(std::string_view session_id, std::string_view task_id);

  /// Calls `slot` for every notification of docs/contract.md §5, after the commit, in the writing
  /// thread. Exceptions thrown by the slot are swallowed: they never fail the call or stop other
  /// slots.
  Subscription on_event(std::function<void(const RegistryEvent&)> slot);

  /// Calls `slot` for each transition (terminal, awaiting input, outbound message), whatever the
  /// task's wake policy, with the task's snapshot after the change.
  Subscription on_transition(std::function<void(TaskTransition, const SessionTask&)> slot);

  /// Calls `slot` for each wake-up the task's wake policy asks for, with docs/contract.md §5's
  /// text.
  Subscription on_wake(std::function<void(const WakeNotice&)> slot);

  /// Runs `body` as one transaction (group commit): every call made through the Batch is
  /// appended to the journal and committed together, or — if `body` throws, or the commit fails —
  /// none is, and the views stay as they were; the exception propagates. A call rejected inside
  /// the batch (e.g. Error(Conflict)) writes nothing; if `body` catches it, the batch goes on.
  /// Notifications for all calls are delivered after the commit, in call order. `body` must not
  /// call this Registry (that throws Error(InvalidArgument)); other threads' calls on this
  /// Registry, reads included, wait until the batch ends, however long (busy_timeout bounds only
  /// the wait for other connections). After a call inside the batch failed in the storage layer
  /// (Error(Storage) or Busy: disk full, I/O error, a lost lock), the batch is dead even if
  /// `body` catches that error: every later call through the Batch throws Error(Storage), and
  /// batch() throws Error(Storage) and commits nothing, so the journal never has a gap.
  void batch(const std::function<void(Batch&)>& body);

  /// The sequence number of the newest event these views include (0 for an empty journal).
  std::uint64_t last_seq();

  /// Stores a checkpoint of the views now, whatever Options::checkpoint_every says, and returns
  /// the sequence number it covers (0 for an empty journal: nothing is written). A checkpoint of
  /// that event that already exists is kept. Throws Error(ReadOnly) on a read-only registry,
  /// Error(Busy) or Error(Storage) as a write does; the events are never affected.
  std::uint64_t checkpoint();

  /// How open built the views: from which checkpoint, how many events were folded, which
  /// checkpoints were ignored and why.
  const OpenReport& open_report() const noexcept;

  // ---- bounded growth (README "Retention") ----------------------------------------------------

  /// Prunes finished tasks: across all sessions, the tasks in a terminal state whose finished_at
  /// is older than now − `ttl` (now from Options::clock), oldest finished_at first (ties by task
  /// id), at most `limit` (capped at 1000), returned in that order. Each is one task_pruned event
  /// (docs/contract.md §4.11), written together in one transaction: afterwards the task and its
  /// messages are gone from every view — get() gives nullopt, list() leaves it out,
  /// list_messages() is empty, update() and request_cancel() give nullopt, record_message()
  /// throws Error(NotFound) — and their memory is freed (checkpoints hold only the tasks left).
  /// history() still returns the task's events, the task_pruned one last, until they are
  /// archived. create() with a pruned task's id throws Error(Conflict): ids are not reused while
  /// the journal holds their events. Pruning notifies nobody. The first prune raises the
  /// journal's schema version to 2 (older builds refuse it with Error(Unsupported)). Throws
  /// Error(InvalidArgument) for `ttl` ≤ 0 or `limit` == 0, Error(ReadOnly) on a read-only
  /// registry, and what a write throws. On PostgreSQL the first call reads the whole journal
  /// once, as list_orphaned does.
  std::vector<PrunedTask> prune_terminal(std::chrono::seconds ttl, std::uint32_t limit = 100);

  // ---- the host's side of the lifecycle (README "Running a host") ----------------------------

  /// The tasks of every session whose worker looks dead: state queued or running (never
  /// awaiting_input), heartbeat_at set and older than now − `stale_after` (now from
  /// Options::clock), ordered by task id, at most `limit` (capped at 1000). A task that never
  /// sent a heartbeat is never an orphan. Throws Error(InvalidArgument) for `stale_after` ≤ 0 or
  /// `limit` == 0. On PostgreSQL the first call reads the whole journal once (the registry holds
  /// only the sessions it serves); later calls read only the new events.
  std::vector<SessionTask> list_orphaned(std::chrono::seconds stale_after,
                                         std::uint32_t limit = 50);

  /// One run of the orphan reaper (README "Running a host"): each candidate of
  /// list_orphaned(options.stale_after, options.limit) is re-read, then either re-attached to a
  /// new attempt (options.can_reattach says yes and its attempt is below max_attempts; then
  /// options.start runs) or failed with error kind "orphaned"; every step is one update fenced
  /// with the attempt it saw, so reapers in several processes or hosts never reap or re-attach a
  /// task twice. Throws what update() throws (the outcomes so far are then lost; the journal
  /// holds them) and Error(InvalidArgument) as list_orphaned does.
  ReapReport reap_orphans(const ReaperOptions& options = {});

  /// The writing handle of the worker of attempt `attempt` of a task: every write is fenced with
  /// that attempt, so a worker whose attempt was superseded (re-attached or reaped) changes
  /// nothing. The sink refers to this registry's state: it stays valid across a move of the
  /// Registry and must not outlive it. Checks nothing now (a missing task shows in each write).
  TaskSink sink(std::string_view session_id, std::string_view task_id, std::int32_t attempt = 1);

  /// Waits until the task is terminal or awaiting input, whichever registry, process or host
  /// makes the change, and returns it; after `timeout` returns the newest snapshot with
  /// `timed_out`. Returns at once if the task already is. nullopt for a missing or foreign task
  /// (also one that disappears while waiting). Any number of threads may wait at once; each
  /// waits on the registry's change detection (Options::watch, or with it unset the same
  /// detection started for the waiters), not by reading the journal in a loop. Throws
  /// Error(InvalidArgument) inside this registry's batch. From a slot that the watch thread runs
  /// (another registry's event), a wait for a change only another registry can make lasts until
  /// its timeout: the thread that would fold that change is the one waiting.
  std::optional<WaitResult> wait(std::string_view session_id, std::string_view task_id,
                                 std::chrono::milliseconds timeout);

 private:
  friend class Batch;
  friend class TaskSink;
  struct TASKJOURNAL_NO_EXPORT Impl;
  explicit Registry(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// The writing handle of one attempt's worker (Registry::sink). Each call is one update()
/// (record_message() for post) with `expected_attempt = attempt()`, returning what update
/// returns: the task (unchanged when the attempt was superseded), nullopt if the task is missing
/// or foreign. Copyable; safe to use from several threads like the registry. Only heartbeat()
/// sets heartbeat_at: a worker keeps itself from being reaped by calling it well within the
/// reaper's stale_after.
class TASKJOURNAL_API TaskSink {
 public:
  /// Moves the task to `state` (with its state_detail when given).
  std::optional<SessionTask> state(SessionTaskState state,
                                   std::optional<std::string> detail = std::nullopt);
  std::optional<SessionTask> progress(TaskProgress progress);
  /// Sets heartbeat_at to now (Options::clock).
  std::optional<SessionTask> heartbeat();
  /// Asks the session for input: the task becomes awaiting_input with this request.
  std::optional<SessionTask> request_input(TaskInputRequest request);
  /// Adds one artifact at the end of the task's list (append_artifact: concurrent sinks never
  /// lose each other's artifacts).
  std::optional<SessionTask> artifact(TaskArtifact artifact);
  /// Records a message on the task's channel (usually outbound). Throws Error(StaleAttempt) from
  /// a superseded attempt, Error(NotFound) for a missing or foreign task, and what
  /// record_message throws.
  TaskMessage post(NewTaskMessage message);

  const std::string& session_id() const noexcept { return session_id_; }
  const std::string& task_id() const noexcept { return task_id_; }
  std::int32_t attempt() const noexcept { return attempt_; }

 private:
  friend class Registry;
  TaskSink(Registry::Impl& registry, std::string session_id, std::string task_id,
           std::int32_t attempt)
      : registry_(&registry),
        session_id_(std::move(session_id)),
        task_id_(std::move(task_id)),
        attempt_(attempt) {}
  std::optional<SessionTask> fenced(SessionTaskUpdate update);
  Registry::Impl* registry_;
  std::string session_id_;
  std::string task_id_;
  std::int32_t attempt_;
};

}  // namespace taskjournal
