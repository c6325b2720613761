// The lifecycle rules (CONTRACT §2–§3): pure functions, no clock, no I/O.
// Replay folds the journal through exactly these functions, so live and replayed state agree.
#pragma once

#include <vector>

#include "taskjournal/export.hpp"
#include "taskjournal/types.hpp"

namespace taskjournal {

/// The task `input` describes, as created at `now` (CONTRACT §2). `input.id` must be set by the
/// caller (the registry generates one when the user gave none); it is copied verbatim.
TASKJOURNAL_API SessionTask new_session_task(const CreateSessionTask& input, Timestamp now);

/// Applies `update` to `task` at `now` by the seven rules of CONTRACT §3. A fenced update, or one
/// asking a terminal task for another state, leaves `task` untouched. `attempt` saturates at
/// INT32_MAX instead of overflowing (the registry rejects such an increment before it is written).
TASKJOURNAL_API void apply_task_update(SessionTask& task, const SessionTaskUpdate& update,
                                       Timestamp now);

/// The text parts of `parts` joined with "\n"; data parts are skipped.
TASKJOURNAL_API std::string task_message_text(const std::vector<TaskMessagePart>& parts);

}  // namespace taskjournal
