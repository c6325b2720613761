#include "projections/live_tasks.hpp"

#include "projections/views.hpp"
#include "taskjournal/lifecycle.hpp"

namespace taskjournal::projections {

void LiveTasks::apply(const events::Event& event) {
  if (event.seq <= last_seq_) return;
  last_seq_ = event.seq;
  if (const auto* created = std::get_if<events::TaskCreated>(&event.payload)) {
    SessionTask task = new_session_task(created->input, event.recorded_at);
    if (!is_terminal(task.state)) tasks_.insert_or_assign(event.task_id, std::move(task));
    return;
  }
  auto it = tasks_.find(event.task_id);
  if (it == tasks_.end()) return;  // finished already
  fold_into_task(it->second, event);
  if (is_terminal(it->second.state)) tasks_.erase(it);
}

void LiveTasks::for_each(const std::function<void(const SessionTask&)>& f) const {
  for (const auto& [id, task] : tasks_) f(task);
}

}  // namespace taskjournal::projections
