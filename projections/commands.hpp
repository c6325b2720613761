// The decisions of the registry's commands, as pure functions (internal): validation, session
// scope, conflicts, the attempt fence of messages, and the event a command produces. No SQL, no
// lock: the registry runs them inside its write transaction, against the transaction's view of
// the tasks, and appends the event they return. Testable without any database.
#pragma once

#include <functional>
#include <optional>
#include <string_view>

#include "events/event.hpp"
#include "taskjournal/types.hpp"

namespace taskjournal::projections {

/// The time of an event, asked only once a command has passed its checks (a clock that throws,
/// or returns a time outside the years 1970–9999, fails the call before anything is written).
using Clock = std::function<Timestamp()>;

/// True if `t` can be an event's time: RFC 3339 can write it (years 0000–9999) and, for event
/// times (`event_time`), it is not before 1970 (generated ids count milliseconds from 1970).
bool in_time_range(Timestamp t, bool event_time);

/// What create decided: the existing task of the same id in the same session (idempotent create,
/// nothing to write), or the event to append.
struct CreateDecision {
  const SessionTask* existing = nullptr;
  std::optional<events::Event> event;
};

/// create (docs/contract.md §4). `found` is the task with input.id in any session (nullptr when
/// there is none or input has no id). Throws Error(InvalidArgument) for bad input (before
/// anything else), Error(Conflict) when `found` is another session's. A new task without id gets
/// `task_<uuidv7>` here, so the event carries it.
CreateDecision decide_create(const CreateSessionTask& input, const SessionTask* found,
                             const Clock& now);

/// update: nullopt when `task` (the task in the caller's session) is null. Throws
/// Error(InvalidArgument) for bad input or an increment_attempt that would overflow.
std::optional<events::Event> decide_update(std::string_view session_id, std::string_view task_id,
                                           const SessionTaskUpdate& update, const SessionTask* task,
                                           const Clock& now);

/// request_cancel: nullopt when `task` is null.
std::optional<events::Event> decide_cancel(std::string_view session_id, std::string_view task_id,
                                           const SessionTask* task, const Clock& now);

/// record_message: the event, whose MessageRecorded holds the stored message with its new
/// `tmsg_` id. Throws Error(InvalidArgument) for bad input, Error(NotFound) when `task` is null,
/// Error(StaleAttempt) when message.expected_attempt differs from the task's attempt.
events::Event decide_message(std::string_view session_id, std::string_view task_id,
                             const NewTaskMessage& message, const SessionTask* task,
                             const Clock& now);

}  // namespace taskjournal::projections
