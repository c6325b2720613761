// Text names of the public enums (everruns' snake_case) and their strict parsers.
#include <array>
#include <utility>

#include "taskjournal/notifications.hpp"
#include "taskjournal/types.hpp"

namespace taskjournal {
namespace {

template <class Enum, std::size_t N>
std::optional<Enum> parse(const std::array<std::pair<Enum, std::string_view>, N>& names,
                          std::string_view text) noexcept {
  for (const auto& [value, name] : names) {
    if (name == text) return value;
  }
  return std::nullopt;
}

template <class Enum, std::size_t N>
std::string_view name_of(const std::array<std::pair<Enum, std::string_view>, N>& names,
                         Enum value) noexcept {
  for (const auto& [v, name] : names) {
    if (v == value) return name;
  }
  return "unknown";
}

constexpr std::array<std::pair<SessionTaskState, std::string_view>, 6> kStates{{
    {SessionTaskState::Queued, "queued"},
    {SessionTaskState::Running, "running"},
    {SessionTaskState::AwaitingInput, "awaiting_input"},
    {SessionTaskState::Succeeded, "succeeded"},
    {SessionTaskState::Failed, "failed"},
    {SessionTaskState::Canceled, "canceled"},
}};

constexpr std::array<std::pair<TaskWakePolicy, std::string_view>, 3> kPolicies{{
    {TaskWakePolicy::Silent, "silent"},
    {TaskWakePolicy::OnTerminal, "on_terminal"},
    {TaskWakePolicy::OnActivity, "on_activity"},
}};

constexpr std::array<std::pair<TaskMessageDirection, std::string_view>, 2> kDirections{{
    {TaskMessageDirection::Inbound, "inbound"},
    {TaskMessageDirection::Outbound, "outbound"},
}};

constexpr std::array<std::pair<TaskTransition, std::string_view>, 3> kTransitions{{
    {TaskTransition::Terminal, "terminal"},
    {TaskTransition::AwaitingInput, "awaiting_input"},
    {TaskTransition::Message, "message"},
}};

}  // namespace

bool is_terminal(SessionTaskState state) noexcept {
  return state == SessionTaskState::Succeeded || state == SessionTaskState::Failed ||
         state == SessionTaskState::Canceled;
}

std::string_view to_string(SessionTaskState state) noexcept { return name_of(kStates, state); }
std::optional<SessionTaskState> parse_session_task_state(std::string_view text) noexcept {
  return parse(kStates, text);
}

std::string_view to_string(TaskWakePolicy policy) noexcept { return name_of(kPolicies, policy); }
std::optional<TaskWakePolicy> parse_task_wake_policy(std::string_view text) noexcept {
  return parse(kPolicies, text);
}

std::string_view to_string(TaskMessageDirection direction) noexcept {
  return name_of(kDirections, direction);
}
std::optional<TaskMessageDirection> parse_task_message_direction(std::string_view text) noexcept {
  return parse(kDirections, text);
}

std::string_view to_string(TaskTransition transition) noexcept {
  return name_of(kTransitions, transition);
}

NewTaskMessage NewTaskMessage::inbound_text(std::string text) {
  return NewTaskMessage{.direction = TaskMessageDirection::Inbound,
                        .content = {TextPart{std::move(text)}}};
}

NewTaskMessage NewTaskMessage::outbound_text(std::string text) {
  return NewTaskMessage{.direction = TaskMessageDirection::Outbound,
                        .content = {TextPart{std::move(text)}}};
}

}  // namespace taskjournal
