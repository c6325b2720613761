// The lifecycle rules (docs/contract.md §2–§3): pure functions, no clock, no I/O.
// Replay folds the journal through exactly these functions, so live and replayed state agree.
#pragma once

#include <vector>

#include "taskjournal/export.hpp"
#include "taskjournal/types.hpp"

namespace taskjournal {

/// The task `input` describes, as created at `now` (docs/contract.md §2). A set `input.id` is
/// copied verbatim; without one, the task gets a new `task_<uuidv7>` id (32 lowercase hex digits;
/// the time field from `now`, the random bits from the operating system's CSPRNG; ids made in one
/// process sort in creation order, also within one millisecond). The registry always passes the
/// id it chose, so replaying a journal never generates one. Throws Error(Storage) only if an id
/// is needed and the CSPRNG fails.
TASKJOURNAL_API SessionTask new_session_task(const CreateSessionTask& input, Timestamp now);

/// Applies `update` to `task` at `now` by the seven rules of docs/contract.md §3. A fenced update,
/// or one asking a terminal task for another state, leaves `task` untouched. `attempt` saturates at
/// INT32_MAX instead of overflowing (the registry rejects such an increment before it is written).
TASKJOURNAL_API void apply_task_update(SessionTask& task, const SessionTaskUpdate& update,
                                       Timestamp now);

/// The text parts of `parts` joined with "\n"; data parts are skipped.
TASKJOURNAL_API std::string task_message_text(const std::vector<TaskMessagePart>& parts);

}  // namespace taskjournal
