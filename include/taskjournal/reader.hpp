// JournalReader: read-only access to a journal file, for inspection, audit and verification.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "taskjournal/export.hpp"
#include "taskjournal/types.hpp"

namespace taskjournal {

/// Called by long reads with (events done, events in all) every few thousand events and once at
/// the end (done == total). For a progress display; what it throws is passed on.
using ProgressCallback = std::function<void(std::uint64_t done, std::uint64_t total)>;

/// One stored event with its payload decoded (README, "Storage format").
struct JournalEvent {
  std::uint64_t seq = 0;
  std::string type;           ///< task_created | task_updated | cancel_requested | message_recorded
  std::uint32_t version = 0;  ///< payload schema version the event was written with
  Timestamp recorded_at{};
  std::string session_id;
  std::string task_id;
  Json payload;  ///< the payload as a JSON object, as in JournalEntry::payload
  bool operator==(const JournalEvent&) const = default;
};

/// Why the lifecycle rules (docs/contract.md §3) dropped an update whole.
enum class DropReason {
  None,      ///< not dropped (also: not an update)
  Fenced,    ///< rule 1: expected_attempt differs from the task's attempt
  Terminal,  ///< rule 2: a different state asked of a terminal task
};

/// "none", "fenced", "terminal".
TASKJOURNAL_API std::string_view to_string(DropReason reason) noexcept;

/// One event folded by JournalReader::replay, with the task it touched.
struct ReplayStep {
  JournalEvent event;
  std::optional<SessionTask> before;  ///< the task before the event; nullopt for task_created
  SessionTask after;                  ///< the task after the event
  DropReason dropped = DropReason::None;
  std::optional<TaskMessage> message;  ///< the stored message of a message_recorded event
};

/// Where a replay stops. Both unset: at the end of the journal. Both set: at whichever comes first.
struct ReplayLimit {
  std::optional<std::uint64_t> seq;  ///< fold events 1…seq
  /// Fold the events before the first one recorded after `time` (the longest prefix of the
  /// journal recorded at or before it; events are folded in sequence order, never skipped).
  std::optional<Timestamp> time;
  /// Optional: progress of the replay (or history), in events (or sequence numbers) read.
  ProgressCallback progress;
};

/// A task of the views with its messages, oldest first.
struct TaskView {
  SessionTask task;
  std::vector<TaskMessage> messages;
  bool operator==(const TaskView&) const = default;
};

/// The views after a replay: every task of every session, and what the folded events were.
struct JournalSnapshot {
  std::uint64_t last_seq = 0;  ///< the last folded event (0: none)
  std::optional<Timestamp> first_event_at;
  std::optional<Timestamp> last_event_at;  ///< recorded_at of the last folded event
  /// The distinct payload versions of the folded events, ascending.
  std::vector<std::uint32_t> payload_versions;
  /// All sessions, in creation (journal) order; after an archived prefix, the tasks of the
  /// anchor's checkpoint come first, ordered by created_at.
  std::vector<TaskView> tasks;

  /// The task with this id, or nullptr (linear search).
  TASKJOURNAL_API const TaskView* find(std::string_view task_id) const noexcept;
};

/// One problem JournalReader::verify found.
struct JournalProblem {
  std::uint64_t seq = 0;  ///< the event it concerns; 0 for the file as a whole
  std::string what;       ///< "event <seq>: …"
  bool operator==(const JournalProblem&) const = default;
};

/// The newest event of a journal and its stored hash: save it, and `verify` with it later proves
/// that the journal still holds exactly the events up to it (README, "tools/replay").
struct JournalDigest {
  std::uint64_t seq = 0;  ///< 0: an empty journal
  std::string hash;       ///< the event's SHA-256 chain hash, 64 lowercase hex digits
  bool operator==(const JournalDigest&) const = default;
};

/// "SEQ:HEX", e.g. "15:9f86d0…".
TASKJOURNAL_API std::string to_string(const JournalDigest& digest);

/// Strict inverse of to_string(JournalDigest) (hex digits in either case, stored lowercase);
/// nullopt when malformed.
TASKJOURNAL_API std::optional<JournalDigest> parse_digest(std::string_view text);

struct VerifyOptions {
  /// Called with (events read, events in the file) every few thousand events, once more when all
  /// are read (before the comparison with a registry's views), and at the end.
  std::function<void(std::uint64_t, std::uint64_t)> progress;
  /// Stop collecting after this many problems (the first is always reported).
  std::size_t max_problems = 100;
  /// A digest saved earlier (JournalReader::digest()): event digest->seq must exist with that
  /// hash. With the chain verified up to it, that proves the file still holds exactly that prefix
  /// (no newest rows removed, nothing up to it rewritten). A mismatch is a problem of seq 0.
  std::optional<JournalDigest> digest;
  /// The archive of this journal's prefix (README "Archiving"; a file or PostgreSQL URI): it
  /// must verify on its own, hold the anchor's event with the anchor's hash, and fold, up to
  /// that event, to the views of the anchor's checkpoint; so the two are one unbroken history.
  /// Its problems are reported with "archive: " in front.
  std::optional<std::string> archive;
};

struct VerifyReport {
  std::uint64_t events = 0;    ///< rows read
  std::uint64_t last_seq = 0;  ///< sequence number of the last row read
  std::size_t tasks = 0;
  std::size_t messages = 0;
  /// In journal order; problems[0] is the first. A problem may cause others after it (an event
  /// that does not decode leaves its task out of the fold).
  std::vector<JournalProblem> problems;
  bool truncated = false;  ///< more problems than VerifyOptions::max_problems
  /// Why the comparison with a registry's views was not made although no problem came first:
  /// Registry::open refused the path itself (Error(Storage): a symlink, a file owned by another
  /// user). Empty otherwise.
  std::string comparison_skipped;
  /// The checkpoint the compared registry restored its views from (0: none, or not compared):
  /// the comparison then checked that checkpoint, plus the events after it, against this fold.
  std::uint64_t checkpoint_seq = 0;
  /// The journal's anchor (README "Archiving"): the events up to it are in an archive, and the
  /// fold began from the anchor's checkpoint (0: not archived).
  std::uint64_t archived_through = 0;
  /// Checkpoints that registry ignored, and why (Registry::open_report). Not problems of the
  /// journal, whose events alone decide; a damaged checkpoint is worth knowing about.
  std::vector<std::string> ignored_checkpoints;
  /// VerifyOptions::digest, when one was given (checked: a mismatch is in `problems`).
  std::optional<JournalDigest> digest;
  bool ok() const noexcept { return problems.empty(); }
};

/// One field whose public JSON (docs/contract.md §6) differs between two snapshots of a task.
struct FieldChange {
  std::string field;           ///< "state", "attempt", "progress", …
  std::optional<Json> before;  ///< the field's JSON before; nullopt when absent
  std::optional<Json> after;   ///< the field's JSON after; nullopt when absent
  bool operator==(const FieldChange&) const = default;
};

/// One event of a task's audit trail (JournalReader::history).
struct TaskHistoryStep {
  JournalEvent event;
  DropReason dropped = DropReason::None;
  /// The task after the event; valid only during the callback.
  const SessionTask* task = nullptr;
  /// What the event changed, as task_changes(); for task_created every field of the new task
  /// (before = nullopt).
  std::vector<FieldChange> changes;
  std::optional<TaskMessage> message;  ///< the stored message of a message_recorded event
  /// Of a task_updated event: the state it asked for and its attempt fence, if any.
  std::optional<SessionTaskState> asked_state;
  std::optional<std::int32_t> expected_attempt;
};

/// What JournalReader::history read.
struct TaskHistory {
  bool found = false;          ///< the task exists as of last_seq
  std::uint64_t last_seq = 0;  ///< the last event of the journal the limit allowed (0: none)
  std::uint64_t events = 0;    ///< events of the task handed to the sink
  /// Not 0: the task's first events are in the archive up to this event (README "Archiving");
  /// the steps begin from the task as the anchor's checkpoint holds it.
  std::uint64_t archived_through = 0;
};

/// Counts of the views of a snapshot, as `taskjournal-replay summary` prints them.
struct JournalSummary {
  std::string file;
  std::optional<std::uint64_t> as_of_seq;  ///< set when the replay had a limit
  int schema_version = 0;
  std::vector<std::uint32_t> payload_versions;
  std::uint64_t events = 0;
  std::optional<Timestamp> first_event_at;
  std::optional<Timestamp> last_event_at;
  std::size_t sessions = 0;
  std::size_t tasks = 0;
  /// Tasks by state, indexed by SessionTaskState (queued … canceled).
  std::vector<std::size_t> tasks_by_state = std::vector<std::size_t>(6, 0);
  std::vector<std::pair<std::string, std::size_t>> tasks_by_kind;  ///< by kind, ascending
  std::size_t messages = 0;
};

/// The counts of `snapshot` (file, as_of_seq and schema_version are left for the caller).
TASKJOURNAL_API JournalSummary summarize(const JournalSnapshot& snapshot);

/// JSON forms of the reader's results, one compact object each (README, "tools/replay"). Text
/// that is not UTF-8 (a file name) has each invalid byte replaced by U+FFFD, so the output is
/// always valid JSON. Throws Error(Corrupt) only if a stored JSON field is not JSON.
///
/// {"seq":…,"type":…,"version":…,"recorded_at":…,"session_id":…,"task_id":…,"payload":{…}}
TASKJOURNAL_API std::string to_json(const JournalEvent& event);
/// {"seq":…,"recorded_at":…,"type":…,"version":…,"payload":{…}[,"dropped":…],"changes":[
/// {"field":…,"before":…|null,"after":…|null},…]} (a dropped update lists no changes)
TASKJOURNAL_API std::string to_json(const TaskHistoryStep& step);
/// {"ok":…,"events":…,"last_seq":…,"tasks":…,"messages":…,"problems":[{"seq":…,"what":…}],
/// "truncated":…[,"comparison_skipped":…],"checkpoint_seq":…,"ignored_checkpoints":[…]
/// [,"digest":{…}]}
TASKJOURNAL_API std::string to_json(const VerifyReport& report);
/// {"seq":…,"hash":"<64 hex>","digest":"SEQ:HEX"}
TASKJOURNAL_API std::string to_json(const JournalDigest& digest);
/// {"file":…[,"as_of_seq":…],"schema_version":…,"payload_versions":[…],"events":…
/// [,"first_event_at":…][,"last_event_at":…],"sessions":…,"tasks":…,"tasks_by_state":{…},
/// "tasks_by_kind":{…},"messages":…}
TASKJOURNAL_API std::string to_json(const JournalSummary& summary);
/// {"task":{…},"messages":[…]}: the task in its public JSON (docs/contract.md §6), messages oldest
/// first.
TASKJOURNAL_API std::string to_json(const TaskView& view);

/// How JournalReader opens a journal.
struct ReaderOptions {
  /// How long a read waits for a lock another connection holds (a Registry opened with
  /// Options::exclusive, a write in progress) before it throws Error(Busy).
  std::chrono::milliseconds busy_timeout{5000};
};

/// The members of to_json(task) (docs/contract.md §6), in order: (field name, the value's JSON
/// text).
TASKJOURNAL_API std::vector<std::pair<std::string, Json>> task_fields(const SessionTask& task);

/// The fields of the public JSON forms of `before` and `after` that differ, in the order of the
/// public JSON (updated_at included). Spec secrets stay redacted. Throws Error(Corrupt) only if a
/// stored JSON field is not JSON.
TASKJOURNAL_API std::vector<FieldChange> task_changes(const SessionTask& before,
                                                      const SessionTask& after);

/// Read-only access to a journal file: its events in order, the views as of any event, and a full
/// verification. Never writes to the journal and never creates it (SQLite's WAL protocol may
/// create the `-wal`/`-shm` side files, as for any reader). Every call reads the file anew, so
/// events appended by other processes show up on the next call.
///
/// Thread safety: one JournalReader per thread (it holds one SQLite connection). Any number of
/// readers and Registry objects may share the file. Movable, not copyable.
///
/// Every call may also throw Error(Storage) (I/O failure) or Error(Busy).
class TASKJOURNAL_API JournalReader {
 public:
  /// Opens `path` read-only and checks that it is a taskjournal journal.
  /// Throws Error(ReadOnly) if the file does not exist ("no such journal"), Error(Storage) if it
  /// is not a regular file or cannot be opened, Error(Corrupt) if it is not a taskjournal journal
  /// (also an empty file), Error(Unsupported) for a newer schema version.
  /// Error(Busy) when another connection holds the file locked beyond options.busy_timeout; its
  /// message names the process holding the lock when the system tells (Linux: /proc/locks).
  static JournalReader open(const std::filesystem::path& path);
  static JournalReader open(const std::filesystem::path& path, const ReaderOptions& options);

  /// Opens the journal of a PostgreSQL database read-only: `conninfo` is any libpq connection
  /// string or postgresql:// URI, the journal the first schema of its search_path (as
  /// Registry::open_postgresql). Throws Error(ReadOnly) when that schema holds no journal,
  /// Error(Storage) naming the server when it cannot be reached, Error(Corrupt) for tables of
  /// another application, Error(Unsupported) for a newer schema. path() is then the server,
  /// database and schema (never the password).
  static JournalReader open_postgresql(const std::string& conninfo);
  static JournalReader open_postgresql(const std::string& conninfo, const ReaderOptions& options);

  JournalReader(JournalReader&&) noexcept;
  JournalReader& operator=(JournalReader&&) noexcept;
  JournalReader(const JournalReader&) = delete;
  JournalReader& operator=(const JournalReader&) = delete;
  ~JournalReader();

  /// The file; for PostgreSQL the server, database and schema (never the password).
  const std::filesystem::path& path() const noexcept;

  /// The schema version the file declares.
  int schema_version();

  /// The largest sequence number in the file, 0 when empty. Not checked: use read() or verify().
  std::uint64_t newest_seq();

  /// Calls `sink` with each event after `after_seq` in sequence order, until it returns false or
  /// the events end. Checks each event as the registry does (no gap, hash chained to the
  /// predecessor's stored hash, known type and version, decodable payload) before handing it on.
  /// Throws Error(Corrupt) / Error(Unsupported) naming the file and sequence number at the first
  /// event that fails (the events before it were delivered).
  void read(std::uint64_t after_seq, const std::function<bool(const JournalEvent&)>& sink);

  /// Folds the events from the first, in order, through the registry's own fold (the same
  /// projections and apply_task_update), until `limit`, and returns the views. When `on_step` is
  /// set it is called after each folded event (only for events of task `step_task` when that is
  /// set) with the task before and after and whether the rules dropped the update.
  /// Throws like read() at the first event that fails its checks or does not fit the views.
  JournalSnapshot replay(const ReplayLimit& limit = {},
                         const std::function<void(const ReplayStep&)>& on_step = {},
                         std::optional<std::string> step_task = std::nullopt);

  /// Checks the whole journal and reports what is wrong instead of throwing: the sequence starts
  /// at 1 without gaps; every hash matches its chained value; every version is known and every
  /// type and payload decodes; every event fits the fold (no unknown or foreign task, no second
  /// create, no reused message id); along the fold every task obeys the lifecycle invariants (a
  /// terminal state is final, started_at and finished_at are stamped once and never change,
  /// cancel_requested_at is set once, attempt never decreases or overflows, a dropped update
  /// leaves the task unchanged, a task past queued has started_at, a terminal one finished_at);
  /// and, when all of that holds, a read-only Registry opened on the file returns the same
  /// tasks, lists and messages as the fold (see VerifyReport::comparison_skipped). After a problem
  /// it goes on where it can (the chain continues from the stored hash; an event that does not
  /// decode or fit is left out of the fold). Throws only if the file cannot be read at all.
  VerifyReport verify(const VerifyOptions& options = {});

  /// The newest event's sequence number and stored hash ({0, 64 zeros} for an empty journal).
  /// Not checked: verify() the journal to know the chain up to it holds.
  JournalDigest digest();

 private:
  void check_archive(const std::string& location, const VerifyOptions& options,
                     const std::function<void(std::uint64_t, std::string)>& problem);

 public:
  /// The audit trail of task `task_id` up to `limit`: calls `sink` with each of its events in
  /// order, the task folded through the registry's lifecycle functions. Reads only that task's
  /// events (through the events_by_task index; `limit.time` also reads the journal's times up to
  /// it) and holds only that task, so memory is bounded by one task and time is linear in its
  /// events; unchanged fields are never serialised. Each row's hash is checked against its
  /// predecessor's stored hash, and its type, version and payload as read() does; the chain as a
  /// whole and the completeness of the index are verify()'s business. Returns found = false, and
  /// calls nothing, if the task does not exist as of the limit. Throws Error(Corrupt) naming the
  /// file and sequence number at the first event that fails (the events before it were delivered)
  /// or does not fit the task (not created first, created twice, another session).
  TaskHistory history(std::string_view task_id, const ReplayLimit& limit,
                      const std::function<void(const TaskHistoryStep&)>& sink);

 private:
  struct TASKJOURNAL_NO_EXPORT Impl;
  explicit JournalReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace taskjournal
