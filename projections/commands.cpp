#include "projections/commands.hpp"

#include <chrono>
#include <limits>
#include <string>
#include <utility>

#include "events/ids.hpp"
#include "events/validate.hpp"
#include "taskjournal/error.hpp"

namespace taskjournal::projections {
namespace {

constexpr std::size_t kMaxTaskIdBytes = 256;

[[noreturn]] void invalid(const std::string& what) {
  throw Error(ErrorCode::InvalidArgument, "invalid argument: " + what);
}

void check_text(std::string_view field, std::string_view value) {
  if (!events::is_valid_utf8(value)) invalid(std::string(field) + " is not valid UTF-8");
}
void check_optional_text(std::string_view field, const std::optional<std::string>& value) {
  if (value) check_text(field, *value);
}
void check_json(std::string_view field, std::string_view value) {
  switch (events::check_json(value)) {
    case events::JsonCheck::Valid:
      return;
    case events::JsonCheck::NumberOutOfRange:
      invalid(std::string(field) +
              " holds a number out of range (beyond the range of a double, about 1.8e308): "
              "taskjournal does not store such numbers; send it as a string");
    case events::JsonCheck::Invalid:
      break;
  }
  invalid(std::string(field) + " is not valid JSON text");
}

void check_links(const TaskLinks& links) {
  check_optional_text("links.child_session_id", links.child_session_id);
  check_optional_text("links.remote_task_id", links.remote_task_id);
  for (const auto& id : links.resource_ids) check_text("links.resource_ids", id);
}

void check_artifact(std::string_view field, const TaskArtifact& a) {
  const std::string f(field);
  check_text(f + ".name", a.name);
  check_text(f + ".type", a.type);
  check_optional_text(f + ".path", a.path);
  check_optional_text(f + ".url", a.url);
}

void check_create(const CreateSessionTask& input) {
  if (input.session_id.empty()) invalid("session_id is empty");
  check_text("session_id", input.session_id);
  if (input.id) {
    if (input.id->empty()) invalid("id is empty");
    if (input.id->size() > kMaxTaskIdBytes) {
      invalid("id is longer than " + std::to_string(kMaxTaskIdBytes) + " bytes");
    }
    check_text("id", *input.id);
  }
  if (input.kind.empty()) invalid("kind is empty");
  check_text("kind", input.kind);
  check_text("display_name", input.display_name);
  check_json("spec", input.spec);
  check_links(input.links);
}

void check_update(const SessionTaskUpdate& u) {
  check_optional_text("state_detail", u.state_detail);
  if (u.progress) {
    check_optional_text("progress.unit", u.progress->unit);
    check_optional_text("progress.label", u.progress->label);
  }
  if (u.input_request) {
    check_text("input_request.id", u.input_request->id);
    check_text("input_request.prompt", u.input_request->prompt);
    if (u.input_request->expected) check_json("input_request.expected", *u.input_request->expected);
  }
  check_optional_text("summary", u.summary);
  check_optional_text("result_path", u.result_path);
  if (u.artifacts) {
    for (const auto& a : *u.artifacts) check_artifact("artifacts", a);
  }
  if (u.append_artifact) check_artifact("append_artifact", *u.append_artifact);
  if (u.error) {
    check_text("error.kind", u.error->kind);
    check_text("error.message", u.error->message);
  }
  if (u.links) check_links(*u.links);
  check_optional_text("worker_id", u.worker_id);
  if (u.heartbeat_at && !in_time_range(*u.heartbeat_at, /*event_time=*/false)) {
    invalid("heartbeat_at is outside the years 0000-9999");
  }
}

void check_message(const NewTaskMessage& m) {
  for (const auto& part : m.content) {
    if (const auto* t = std::get_if<TextPart>(&part)) {
      check_text("content text part", t->text);
    } else {
      check_json("content data part", std::get<DataPart>(part).data);
    }
  }
  check_optional_text("in_reply_to", m.in_reply_to);
}

}  // namespace

bool in_time_range(Timestamp t, bool event_time) {
  // Compared as time points: a year_month_day of an extreme time wraps around.
  using namespace std::chrono;
  static const Timestamp first = sys_days{year{0} / January / 1};
  static const Timestamp end = sys_days{year{10000} / January / 1};
  return t >= (event_time ? Timestamp{} : first) && t < end;
}

CreateDecision decide_create(const CreateSessionTask& input, const SessionTask* found,
                             const Clock& now) {
  check_create(input);
  if (input.id && found) {
    if (found->session_id != input.session_id) {
      throw Error(ErrorCode::Conflict,
                  "task id " + *input.id + " already exists under a different session");
    }
    return {.existing = found};
  }
  const Timestamp at = now();
  CreateSessionTask stored = input;
  if (!stored.id) stored.id = events::new_id("task_", at);
  std::string task_id = *stored.id;
  return {.event = events::Event{.recorded_at = at,
                                 .session_id = input.session_id,
                                 .task_id = std::move(task_id),
                                 .payload = events::TaskCreated{std::move(stored)}}};
}

std::optional<events::Event> decide_update(std::string_view session_id, std::string_view task_id,
                                           const SessionTaskUpdate& update, const SessionTask* task,
                                           const Clock& now) {
  check_update(update);
  if (!task) return std::nullopt;
  if (update.increment_attempt && task->attempt == std::numeric_limits<std::int32_t>::max()) {
    invalid("increment_attempt would overflow attempt of task " + task->id);
  }
  return events::Event{.recorded_at = now(),
                       .session_id = std::string(session_id),
                       .task_id = std::string(task_id),
                       .payload = events::TaskUpdated{update}};
}

std::optional<events::Event> decide_cancel(std::string_view session_id, std::string_view task_id,
                                           const SessionTask* task, const Clock& now) {
  if (!task) return std::nullopt;
  return events::Event{.recorded_at = now(),
                       .session_id = std::string(session_id),
                       .task_id = std::string(task_id),
                       .payload = events::CancelRequested{}};
}

events::Event decide_message(std::string_view session_id, std::string_view task_id,
                             const NewTaskMessage& message, const SessionTask* task,
                             const Clock& now) {
  check_message(message);
  if (!task) {
    throw Error(ErrorCode::NotFound,
                "no task " + std::string(task_id) + " in session " + std::string(session_id));
  }
  if (message.expected_attempt && *message.expected_attempt != task->attempt) {
    throw Error(ErrorCode::StaleAttempt, "stale attempt for task " + task->id + ": expected " +
                                             std::to_string(*message.expected_attempt) +
                                             ", current " + std::to_string(task->attempt));
  }
  const Timestamp at = now();
  TaskMessage stored{.id = events::new_id("tmsg_", at),
                     .task_id = std::string(task_id),
                     .direction = message.direction,
                     .content = message.content,
                     .in_reply_to = message.in_reply_to,
                     .created_at = at};
  return events::Event{.recorded_at = at,
                       .session_id = std::string(session_id),
                       .task_id = std::string(task_id),
                       .payload = events::MessageRecorded{std::move(stored)}};
}

}  // namespace taskjournal::projections
