// apply_task_update: the only code that changes a task (docs/contract.md §3). Live writes and
// replay both reach it through Views::apply, so they cannot drift apart.
#include "taskjournal/lifecycle.hpp"

#include <algorithm>
#include <limits>
#include <utility>

#include "events/ids.hpp"

namespace taskjournal {
namespace {

// dst = src, without keeping dst's old buffers: an assignment reuses the capacity of the strings
// it overwrites (a move from a short string too, which libstdc++ copies into the old buffer), so
// a 5-byte state_detail that replaced a 20 MB one would keep 20 MB. Destroy, then construct.
template <class T>
void replace(std::optional<T>& dst, const std::optional<T>& src) {
  dst.reset();
  dst = src;
}
template <class T>
void replace(std::vector<T>& dst, const std::vector<T>& src) {
  std::vector<T>(src).swap(dst);
}

}  // namespace

SessionTask new_session_task(const CreateSessionTask& input, Timestamp now) {
  SessionTask task{
      .id = input.id ? *input.id : events::new_id("task_", now),
      .session_id = input.session_id,
      .kind = input.kind,
      .display_name = input.display_name,
      .spec = input.spec,
      .state = input.state,
      .links = input.links,
      .wake_policy = input.wake_policy,
      .created_at = now,
      .updated_at = now,
  };
  if (input.state != SessionTaskState::Queued) task.started_at = now;
  if (is_terminal(input.state)) task.finished_at = now;
  return task;
}

void apply_task_update(SessionTask& task, const SessionTaskUpdate& update, Timestamp now) {
  // 1. Attempt fence: a write from another attempt is dropped whole.
  if (update.expected_attempt && *update.expected_attempt != task.attempt) return;

  // 2. Terminal finality.
  const bool terminal = is_terminal(task.state);
  if (terminal && update.state && *update.state != task.state) return;

  // 3. Attempt bump (saturating: the registry refuses the overflowing write before it is stored).
  if (update.increment_attempt && task.attempt < std::numeric_limits<std::int32_t>::max()) {
    task.attempt += 1;
  }

  // 4. A new input request forces awaiting_input.
  std::optional<SessionTaskState> target = update.state;
  if (!terminal && update.input_request) {
    target = SessionTaskState::AwaitingInput;
    replace(task.input_request, update.input_request);
  }

  // 5. State transition with its timestamps.
  if (target && !terminal && *target != task.state) {
    if (task.state == SessionTaskState::Queued && !task.started_at) task.started_at = now;
    if (is_terminal(*target) && !task.finished_at) task.finished_at = now;
    if (*target != SessionTaskState::AwaitingInput) task.input_request.reset();
    task.state = *target;
  }

  // 6. Content.
  if (update.state_detail) replace(task.state_detail, update.state_detail);
  if (update.progress) replace(task.progress, update.progress);
  if (update.summary) replace(task.summary, update.summary);
  if (update.result_path) replace(task.result_path, update.result_path);
  if (update.artifacts) replace(task.artifacts, *update.artifacts);
  if (update.append_artifact) task.artifacts.push_back(*update.append_artifact);
  if (update.error) replace(task.error, update.error);
  if (update.worker_id) replace(task.worker_id, update.worker_id);
  if (update.heartbeat_at) task.heartbeat_at = update.heartbeat_at;
  if (update.links) {
    const TaskLinks& links = *update.links;
    if (links.child_session_id) task.links.child_session_id = links.child_session_id;
    if (links.remote_task_id) task.links.remote_task_id = links.remote_task_id;
    auto& ids = task.links.resource_ids;
    for (const auto& id : links.resource_ids) {
      if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
    }
  }

  // 7.
  task.updated_at = now;
}

std::string task_message_text(const std::vector<TaskMessagePart>& parts) {
  std::string text;
  bool first = true;
  for (const auto& part : parts) {
    if (const auto* t = std::get_if<TextPart>(&part)) {
      if (!first) text += '\n';
      text += t->text;
      first = false;
    }
  }
  return text;
}

}  // namespace taskjournal
