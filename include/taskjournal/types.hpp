// Value types of the session task registry (docs/contract.md §1–§2, §4).
//
// Plain aggregates: designated initializers work, copies are deep, `==` compares every field.
// They hold no resources and are safe to share between threads like any std value type.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "taskjournal/export.hpp"

namespace taskjournal {

/// UTC time with microsecond precision, the resolution the journal stores.
using Timestamp = std::chrono::sys_time<std::chrono::microseconds>;

/// JSON text (one complete JSON value). The registry validates it where it accepts it.
using Json = std::string;

/// Lifecycle state. Active: Queued, Running. Interrupted: AwaitingInput. Terminal: the rest.
enum class SessionTaskState { Queued, Running, AwaitingInput, Succeeded, Failed, Canceled };

/// True for Succeeded, Failed and Canceled: states no update can leave.
TASKJOURNAL_API bool is_terminal(SessionTaskState state) noexcept;

/// "queued", "running", "awaiting_input", "succeeded", "failed", "canceled".
TASKJOURNAL_API std::string_view to_string(SessionTaskState state) noexcept;

/// Strict inverse of to_string: any other text (other case, spaces, "cancelled") gives nullopt.
TASKJOURNAL_API std::optional<SessionTaskState> parse_session_task_state(
    std::string_view text) noexcept;

/// Whom a task wakes when something happens to it (docs/contract.md §5).
enum class TaskWakePolicy { Silent, OnTerminal, OnActivity };

/// "silent", "on_terminal", "on_activity".
TASKJOURNAL_API std::string_view to_string(TaskWakePolicy policy) noexcept;
/// Strict inverse of to_string(TaskWakePolicy).
TASKJOURNAL_API std::optional<TaskWakePolicy> parse_task_wake_policy(
    std::string_view text) noexcept;

/// Inbound = from the session to the task; outbound = from the task to the session.
enum class TaskMessageDirection { Inbound, Outbound };

/// "inbound", "outbound".
TASKJOURNAL_API std::string_view to_string(TaskMessageDirection direction) noexcept;
/// Strict inverse of to_string(TaskMessageDirection).
TASKJOURNAL_API std::optional<TaskMessageDirection> parse_task_message_direction(
    std::string_view text) noexcept;

struct TaskProgress {
  std::optional<std::uint64_t> current;
  std::optional<std::uint64_t> total;
  std::optional<std::string> unit;
  std::optional<std::string> label;
  bool operator==(const TaskProgress&) const = default;
};

/// What a task asks its session for; a pending request puts the task in AwaitingInput.
struct TaskInputRequest {
  std::string id;
  std::string prompt;
  std::optional<Json> expected;  ///< optional JSON (e.g. a schema) describing the answer
  bool operator==(const TaskInputRequest&) const = default;
};

/// Why a task failed. Timeouts, rejections and orphaned work are kinds, never states.
struct TaskError {
  std::string kind;
  std::string message;
  bool operator==(const TaskError&) const = default;
};

struct TaskArtifact {
  std::string name;
  std::string type;
  std::optional<std::string> path;
  std::optional<std::string> url;
  bool operator==(const TaskArtifact&) const = default;
};

struct TaskLinks {
  std::optional<std::string> child_session_id;
  std::optional<std::string> remote_task_id;
  std::vector<std::string> resource_ids;
  bool operator==(const TaskLinks&) const = default;
};

/// The task record (docs/contract.md §2).
struct SessionTask {
  std::string id;
  std::string session_id;
  std::string kind;
  std::string display_name;
  Json spec = "{}";
  SessionTaskState state = SessionTaskState::Queued;
  std::optional<std::string> state_detail;
  std::optional<TaskProgress> progress;
  std::optional<TaskInputRequest> input_request;
  std::optional<Timestamp> cancel_requested_at;
  std::optional<std::string> summary;
  std::optional<std::string> result_path;
  std::vector<TaskArtifact> artifacts;
  std::optional<TaskError> error;
  std::int32_t attempt = 1;
  std::optional<std::string> worker_id;
  std::optional<Timestamp> heartbeat_at;
  TaskLinks links;
  TaskWakePolicy wake_policy = TaskWakePolicy::Silent;
  Timestamp created_at{};
  std::optional<Timestamp> started_at;
  std::optional<Timestamp> finished_at;
  Timestamp updated_at{};
  bool operator==(const SessionTask&) const = default;
};

/// Input of Registry::create. Without `id` the registry generates `task_<uuidv7>`.
struct CreateSessionTask {
  std::string session_id;
  std::optional<std::string> id;
  std::string kind;
  std::string display_name;
  Json spec = "{}";
  SessionTaskState state = SessionTaskState::Queued;
  TaskLinks links;
  TaskWakePolicy wake_policy = TaskWakePolicy::Silent;
  bool operator==(const CreateSessionTask&) const = default;
};

/// A partial change of a task; an absent field means "unchanged" (docs/contract.md §3).
struct SessionTaskUpdate {
  std::optional<SessionTaskState> state;
  std::optional<std::string> state_detail;
  std::optional<TaskProgress> progress;
  std::optional<TaskInputRequest> input_request;
  std::optional<std::string> summary;
  std::optional<std::string> result_path;
  std::optional<std::vector<TaskArtifact>> artifacts;  ///< replaces the list; empty clears it
  std::optional<TaskArtifact> append_artifact;
  std::optional<TaskError> error;
  std::optional<TaskLinks> links;  ///< merged, not replaced
  std::optional<std::string> worker_id;
  std::optional<Timestamp> heartbeat_at;
  std::optional<std::int32_t> expected_attempt;  ///< attempt fence: drop the update on mismatch
  bool increment_attempt = false;
  bool operator==(const SessionTaskUpdate&) const = default;
};

/// Exact-match filter of Registry::list; absent fields match everything.
struct SessionTaskFilter {
  std::optional<std::string> kind;
  std::optional<SessionTaskState> state;
  bool operator==(const SessionTaskFilter&) const = default;
};

struct TextPart {
  std::string text;
  bool operator==(const TextPart&) const = default;
};

struct DataPart {
  Json data;
  bool operator==(const DataPart&) const = default;
};

using TaskMessagePart = std::variant<TextPart, DataPart>;

/// A stored message of a task's channel.
struct TaskMessage {
  std::string id;
  std::string task_id;
  TaskMessageDirection direction = TaskMessageDirection::Inbound;
  std::vector<TaskMessagePart> content;
  std::optional<std::string> in_reply_to;
  Timestamp created_at{};
  bool operator==(const TaskMessage&) const = default;
};

/// Input of Registry::record_message. `expected_attempt` fences the write and is not stored.
struct NewTaskMessage {
  TaskMessageDirection direction = TaskMessageDirection::Inbound;
  std::vector<TaskMessagePart> content;
  std::optional<std::string> in_reply_to;
  std::optional<std::int32_t> expected_attempt;
  bool operator==(const NewTaskMessage&) const = default;

  /// An inbound message with one text part.
  TASKJOURNAL_API static NewTaskMessage inbound_text(std::string text);
  /// An outbound message with one text part.
  TASKJOURNAL_API static NewTaskMessage outbound_text(std::string text);
};

}  // namespace taskjournal
