#include "projections/live_tasks.hpp"

#include "projections/views.hpp"
#include "taskjournal/lifecycle.hpp"

namespace taskjournal::projections {

void LiveTasks::apply(const events::Event& event) {
  if (event.seq <= last_seq_) return;
  last_seq_ = event.seq;
  if (const auto* created = std::get_if<events::TaskCreated>(&event.payload)) {
    SessionTask task = new_session_task(created->input, event.recorded_at);
    if (is_terminal(task.state)) {
      finish(event.task_id, std::move(task));
    } else {
      tasks_.insert_or_assign(event.task_id, std::move(task));
    }
    return;
  }
  if (std::holds_alternative<events::TaskPruned>(event.payload)) {
    finished_.erase(event.task_id);
    return;
  }
  auto it = tasks_.find(event.task_id);
  if (it == tasks_.end()) return;  // finished: its finished_at never changes again
  fold_into_task(it->second, event);
  if (is_terminal(it->second.state)) {
    SessionTask task = std::move(it->second);
    tasks_.erase(it);
    finish(event.task_id, std::move(task));
  }
}

void LiveTasks::seed(const SessionTask& task) {
  if (is_terminal(task.state)) {
    finish(task.id, SessionTask(task));
  } else {
    tasks_.insert_or_assign(task.id, task);
  }
}

void LiveTasks::finish(const std::string& id, SessionTask&& task) {
  finished_.insert_or_assign(id,
                             Finished{.session_id = std::move(task.session_id),
                                      .finished_at = task.finished_at.value_or(task.updated_at)});
}

void LiveTasks::for_each_finished(
    const std::function<void(const std::string&, const Finished&)>& f) const {
  for (const auto& [id, done] : finished_) f(id, done);
}

void LiveTasks::for_each(const std::function<void(const SessionTask&)>& f) const {
  for (const auto& [id, task] : tasks_) f(task);
}

}  // namespace taskjournal::projections
