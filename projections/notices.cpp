#include "projections/notices.hpp"

#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include "taskjournal/lifecycle.hpp"

namespace taskjournal::projections {
namespace {

bool is_blank(std::string_view s) {
  return s.find_first_not_of(" \t\r\n\f\v") == std::string_view::npos;
}

std::string task_label(const SessionTask& task) {
  return "Task \"" + task.display_name + "\" (" + task.id + ")";
}

}  // namespace

void notices_for(const events::Event& event, const Applied& a, std::vector<Notice>& out) {
  if (a.pruned || !a.task) return;  // pruning notifies nobody (docs/contract.md §4.11)
  const SessionTask& task = *a.task;
  auto task_event = [&](std::string type) {
    out.push_back({.event = RegistryEvent{.type = std::move(type),
                                          .seq = event.seq,
                                          .session_id = task.session_id,
                                          .task_id = task.id,
                                          .task = task}});
  };
  auto transition = [&](TaskTransition t, std::string text) {
    const bool wake =
        task.wake_policy == TaskWakePolicy::OnActivity ||
        (task.wake_policy == TaskWakePolicy::OnTerminal && t == TaskTransition::Terminal);
    Notice n{.transition = std::pair{t, task}};
    if (wake) {
      n.wake = WakeNotice{.session_id = task.session_id,
                          .task_id = task.id,
                          .transition = t,
                          .text = std::move(text)};
    }
    out.push_back(std::move(n));
  };

  std::visit(
      [&](const auto& payload) {
        using P = std::decay_t<decltype(payload)>;
        if constexpr (std::is_same_v<P, events::TaskCreated>) {
          task_event("task.created");
        } else if constexpr (std::is_same_v<P, events::TaskUpdated>) {
          task_event("task.updated");
          const auto& asked = payload.update.state;
          if (asked && is_terminal(*asked) && !is_terminal(a.state_before) &&
              is_terminal(task.state)) {
            std::string text =
                task_label(task) + " finished: " + std::string(to_string(task.state)) + ".";
            if (task.summary) text += "\n- summary: " + *task.summary;
            if (task.result_path) text += "\n- result_path: " + *task.result_path;
            transition(TaskTransition::Terminal, std::move(text));
          }
          if (a.state_before != SessionTaskState::AwaitingInput &&
              task.state == SessionTaskState::AwaitingInput) {
            const std::string prompt = task.input_request ? task.input_request->prompt : "";
            transition(TaskTransition::AwaitingInput,
                       task_label(task) + " is awaiting input: " + prompt);
          }
        } else if constexpr (std::is_same_v<P, events::CancelRequested>) {
          if (a.cancel_set) task_event("task.updated");
        } else if constexpr (std::is_same_v<P, events::TaskPruned>) {
          // not reached (above)
        } else {
          const TaskMessage& message = *a.message;
          const bool inbound = message.direction == TaskMessageDirection::Inbound;
          out.push_back({.event = RegistryEvent{
                             .type = inbound ? "task.message.sent" : "task.message.received",
                             .seq = event.seq,
                             .session_id = task.session_id,
                             .task_id = task.id,
                             .message = message}});
          if (a.resumed) task_event("task.updated");
          if (!inbound) {
            std::string text = task_message_text(message.content);
            if (is_blank(text)) text = "structured progress update";
            transition(TaskTransition::Message, task_label(task) + " sent a message: " + text);
          }
        }
      },
      event.payload);
}

}  // namespace taskjournal::projections
