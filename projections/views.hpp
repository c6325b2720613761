// The task and message views: the projections of the journal (internal).
//
// Views hold no SQL and read no clock: apply() folds one decoded event through the lifecycle
// functions of lifecycle.hpp. Folding a journal from the first event gives exactly the live views.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "events/checkpoint.hpp"
#include "events/event.hpp"
#include "projections/string_map.hpp"
#include "taskjournal/types.hpp"

namespace taskjournal::projections {

/// What folding one event did, for the registry's notifications. Pointers stay valid until the
/// next apply().
struct Applied {
  const SessionTask* task = nullptr;  ///< the task after the event
  SessionTaskState state_before = SessionTaskState::Queued;
  bool created = false;                  ///< TaskCreated stored a new task
  bool cancel_set = false;               ///< CancelRequested set the flag (first request)
  bool resumed = false;                  ///< MessageRecorded answered the pending request
  const TaskMessage* message = nullptr;  ///< MessageRecorded's stored message
  bool pruned = false;                   ///< TaskPruned removed the task (`task` is then nullptr)
};

/// What folding a non-create event did to its task.
struct TaskFold {
  bool cancel_set = false;  ///< CancelRequested set the flag
  bool resumed = false;     ///< MessageRecorded answered the pending input request
};

/// The lifecycle part of the fold for one existing task: TaskUpdated through apply_task_update,
/// CancelRequested's first-time stamp, MessageRecorded's resume rule. TaskCreated does nothing
/// here. Views::apply and the registry's in-transaction overlay both fold through this.
TaskFold fold_into_task(SessionTask& task, const events::Event& event);

/// Which sequence numbers Views::apply accepts.
enum class Sequence {
  Whole,   ///< every event of the journal: each apply() takes the event after last_seq()
  Subset,  ///< some of its events (one session's, SessionViews): each a later one than last_seq()
};

class Views {
 public:
  // Not copyable: the indexes point into the task map's nodes (a move keeps them).
  Views() = default;
  explicit Views(Sequence sequence) : sequence_(sequence) {}
  Views(const Views&) = delete;
  Views& operator=(const Views&) = delete;
  Views(Views&&) noexcept = default;
  Views& operator=(Views&&) noexcept = default;

  /// Folds `event`, which must be the event after last_seq() (Sequence::Subset: any later one).
  /// Throws Error(Corrupt) naming the sequence number, and changes nothing, if the event does not
  /// fit the views: a sequence gap (Whole) or an event not after last_seq() (Subset),
  /// a create of an existing id, an event for an unknown task or for a task of another session,
  /// a message id already used.
  Applied apply(const events::Event& event);

  /// Sequence number of the last folded event; 0 before the first.
  std::uint64_t last_seq() const noexcept { return last_seq_; }

  /// The task if it exists in `session_id`; nullptr otherwise (also when it is another session's).
  const SessionTask* find(std::string_view session_id, std::string_view task_id) const noexcept;

  /// The task with this id in any session (for create's conflict check); nullptr if none.
  const SessionTask* find_any(std::string_view task_id) const noexcept;

  /// docs/contract.md §4 list: the session's tasks in creation order, exact-match filter.
  std::vector<SessionTask> list(std::string_view session_id, const SessionTaskFilter& filter) const;

  /// docs/contract.md §4 list_messages semantics (cursor, limit, most recent N).
  std::vector<TaskMessage> messages(std::string_view session_id, std::string_view task_id,
                                    std::optional<std::uint32_t> limit,
                                    std::optional<std::string_view> after_id) const;

  /// How many events of the journal belong to the task (its audit trail's length, creation
  /// included); 0 if it is missing or of another session.
  std::uint64_t event_count(std::string_view session_id, std::string_view task_id) const noexcept;

  std::size_t task_count() const noexcept { return tasks_.size(); }
  /// Events of the tasks pruned so far (their task_pruned events included): with the live
  /// tasks' event counts they add up to last_seq() (checkpoints carry it).
  std::uint64_t pruned_events() const noexcept { return pruned_events_; }
  std::size_t message_count() const noexcept { return message_index_.size(); }

  /// Makes room for this many tasks and messages (before restoring a checkpoint that says so).
  void reserve(std::size_t tasks, std::size_t messages);

  /// Calls `sink` for every task with its messages and event count: session by session, each
  /// session's tasks in creation order, the order restore_task() expects (for checkpoints).
  void for_each_task(const std::function<void(const SessionTask&, const std::vector<TaskMessage>&,
                                              std::uint64_t events)>& sink) const;

  /// Rebuilds views from a checkpoint: call restore_task() for each entry in checkpoint order on
  /// empty views, then finish_restore(seq). Each throws Error(Corrupt) for entries that cannot be
  /// the fold of a journal (a task id or message id twice, a message of another task, an event
  /// count below 1 + messages, counts that do not add up to `seq`); the views are then unusable
  /// and must be discarded.
  void restore_task(events::CheckpointEntry&& entry);
  /// `pruned_events`: the checkpoint's count of pruned tasks' events.
  void finish_restore(std::uint64_t seq, std::uint64_t pruned_events = 0);
  /// Sequence::Subset views restored from some of a checkpoint's entries (one session's): no
  /// count to check; they continue after `seq`.
  void finish_restore_subset(std::uint64_t seq);

  /// Every task and message equal, in the same order (for tests and verification).
  bool operator==(const Views& other) const;

 private:
  struct TaskEntry {
    SessionTask task;
    std::vector<TaskMessage> messages;  // oldest first
    std::uint64_t events = 0;           // events folded into this task, its creation included
  };
  struct MessageRef {
    const TaskEntry* entry = nullptr;  // nodes of tasks_ never move
    std::size_t index = 0;             // position in TaskEntry::messages
  };

  // Message id → where the message is: open addressing over the ids' hashes. It keeps no copy
  // of an id (it reads the id from the message), which halved the time to index the messages of
  // a large journal on open, and their memory, against a node-based map of strings.
  class MessageIndex {
   public:
    /// Indexes entry->messages[index]; false (nothing changed) if its id is indexed already.
    bool insert(const TaskEntry* entry, std::size_t index);
    /// Where the message with this id is; entry == nullptr if there is none.
    MessageRef find(std::string_view id) const;
    std::size_t size() const noexcept { return size_; }
    void reserve(std::size_t count);
    /// Removes the index of entry->messages[index] (which must be indexed).
    void erase(const TaskEntry* entry, std::size_t index);

   private:
    struct Slot {
      std::size_t hash = 0;
      MessageRef ref;  // ref.entry == nullptr: empty
    };
    void rehash(std::size_t slots);
    std::vector<Slot> slots_;  // a power of two in size, at most half full
    std::size_t size_ = 0;
  };

  StringMap<TaskEntry> tasks_;
  StringMap<std::vector<const TaskEntry*>> sessions_;  // tasks in creation order
  MessageIndex message_index_;
  Sequence sequence_ = Sequence::Whole;
  std::uint64_t last_seq_ = 0;
  std::uint64_t restored_events_ = 0;  // sum of restored tasks' event counts
  std::uint64_t pruned_events_ = 0;    // events of pruned tasks, see pruned_events()
};

}  // namespace taskjournal::projections
