// Registry: the command loop of DESIGN.md.
//
//   lock → BEGIN IMMEDIATE → catch up on others' events → decide (validate, build one event)
//        → append → COMMIT → fold the event into the views → unlock → notify
#include "taskjournal/registry.hpp"

#include <boost/signals2/signal.hpp>
#include <limits>
#include <mutex>
#include <utility>

#include "events/event.hpp"
#include "events/validate.hpp"
#include "projections/views.hpp"
#include "store/file_checks.hpp"
#include "store/ids.hpp"
#include "store/journal.hpp"
#include "taskjournal/lifecycle.hpp"

namespace taskjournal {
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
  if (!events::is_valid_json(value)) invalid(std::string(field) + " is not valid JSON text");
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
  if (u.heartbeat_at) {
    // Keep every stored time expressible in RFC 3339 (years 0000–9999).
    using namespace std::chrono;
    const auto year = int(year_month_day(floor<days>(*u.heartbeat_at)).year());
    if (year < 0 || year > 9999) invalid("heartbeat_at is outside the years 0000-9999");
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

bool is_blank(std::string_view s) {
  return s.find_first_not_of(" \t\r\n\f\v") == std::string_view::npos;
}

std::string task_label(const SessionTask& task) {
  return "Task \"" + task.display_name + "\" (" + task.id + ")";
}

// One notification to deliver after the commit, in order.
struct Notice {
  std::optional<RegistryEvent> event;
  std::optional<std::pair<TaskTransition, SessionTask>> transition;
  std::optional<WakeNotice> wake;
};

Timestamp system_now() {
  return std::chrono::floor<std::chrono::microseconds>(std::chrono::system_clock::now());
}

}  // namespace

struct Registry::Impl {
  Options options;
  std::mutex mutex;
  store::Journal journal;
  projections::Views views;
  store::IdGenerator ids;
  boost::signals2::signal<void(const RegistryEvent&)> event_signal;
  boost::signals2::signal<void(TaskTransition, const SessionTask&)> transition_signal;
  boost::signals2::signal<void(const WakeNotice&)> wake_signal;

  Impl(const std::filesystem::path& path, Options opts)
      : options(std::move(opts)),
        journal(store::JournalConfig{.path = path.string(),
                                     .read_only = options.read_only,
                                     .durability = options.durability,
                                     .busy_timeout = options.busy_timeout}) {
    catch_up();
  }

  Timestamp now() const { return options.clock ? options.clock() : system_now(); }

  // Folds every event other connections appended since we last looked.
  void catch_up() {
    journal.read_new([this](events::Event&& event) { views.apply(event); });
  }
  void refresh() {
    if (journal.changed_by_others()) catch_up();
  }

  // Runs one write command. `decide` sees the fresh views and returns the event to append, or
  // nullopt to write nothing; it may throw to reject the call. Returns what the fold did.
  template <class Decide>
  std::optional<projections::Applied> write(Decide&& decide) {
    if (options.read_only) {
      throw Error(ErrorCode::ReadOnly, journal.path() + ": journal opened read-only");
    }
    journal.begin_write();
    struct RollbackUnlessCommitted {
      store::Journal& j;
      bool committed = false;
      ~RollbackUnlessCommitted() {
        if (!committed) j.rollback();
      }
    } guard{journal};
    refresh();
    std::optional<events::Event> event = decide();
    if (!event) return std::nullopt;
    event->seq = views.last_seq() + 1;
    journal.append(*event);
    journal.commit();
    guard.committed = true;
    return views.apply(*event);
  }

  bool has_slots() const {
    return !event_signal.empty() || !transition_signal.empty() || !wake_signal.empty();
  }

  // The notices of CONTRACT §5 for one folded event.
  std::vector<Notice> notices_for(const events::Event& event, const projections::Applied& a) {
    std::vector<Notice> out;
    if (!has_slots()) return out;
    const SessionTask& task = *a.task;
    auto task_event = [&](std::string type) {
      out.push_back({.event = RegistryEvent{.type = std::move(type),
                                            .seq = event.seq,
                                            .session_id = task.session_id,
                                            .task_id = task.id,
                                            .task = task}});
    };
    auto transition = [&](TaskTransition t, std::string text) {
      const bool wake = task.wake_policy == TaskWakePolicy::OnActivity ||
                        (task.wake_policy == TaskWakePolicy::OnTerminal &&
                         t == TaskTransition::Terminal);
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
              std::string text = task_label(task) + " finished: " +
                                 std::string(to_string(task.state)) + ".";
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
    return out;
  }

  void notify(const std::vector<Notice>& notices) {
    for (const auto& n : notices) {
      if (n.event) event_signal(*n.event);
      if (n.transition) transition_signal(n.transition->first, n.transition->second);
      if (n.wake) wake_signal(*n.wake);
    }
  }
};

Registry::Registry(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Registry::Registry(Registry&&) noexcept = default;
Registry& Registry::operator=(Registry&&) noexcept = default;
Registry::~Registry() = default;

Registry Registry::open(const std::filesystem::path& path, Options options) {
  store::prepare_journal_file(path, options.read_only);
  return Registry(std::make_unique<Impl>(path, std::move(options)));
}

SessionTask Registry::create(const CreateSessionTask& input) {
  check_create(input);
  Impl& r = *impl_;
  std::unique_lock lock(r.mutex);
  std::optional<SessionTask> existing;
  events::Event event;
  auto applied = r.write([&]() -> std::optional<events::Event> {
    if (input.id) {
      if (const SessionTask* found = r.views.find_any(*input.id)) {
        if (found->session_id != input.session_id) {
          throw Error(ErrorCode::Conflict,
                      "task id " + *input.id + " already exists under a different session");
        }
        existing = *found;
        return std::nullopt;
      }
    }
    const Timestamp now = r.now();
    CreateSessionTask stored = input;
    if (!stored.id) stored.id = r.ids.next("task_", now);
    event = events::Event{.recorded_at = now,
                          .session_id = input.session_id,
                          .task_id = *stored.id,
                          .payload = events::TaskCreated{std::move(stored)}};
    return event;
  });
  if (!applied) return *existing;
  event.seq = r.views.last_seq();
  SessionTask task = *applied->task;
  auto notices = r.notices_for(event, *applied);
  lock.unlock();
  r.notify(notices);
  return task;
}

std::optional<SessionTask> Registry::update(std::string_view session_id, std::string_view task_id,
                                            const SessionTaskUpdate& update) {
  check_update(update);
  Impl& r = *impl_;
  std::unique_lock lock(r.mutex);
  events::Event event;
  auto applied = r.write([&]() -> std::optional<events::Event> {
    const SessionTask* task = r.views.find(session_id, task_id);
    if (!task) return std::nullopt;
    if (update.increment_attempt && task->attempt == std::numeric_limits<std::int32_t>::max()) {
      invalid("increment_attempt would overflow attempt of task " + task->id);
    }
    event = events::Event{.recorded_at = r.now(),
                          .session_id = std::string(session_id),
                          .task_id = std::string(task_id),
                          .payload = events::TaskUpdated{update}};
    return event;
  });
  if (!applied) return std::nullopt;
  event.seq = r.views.last_seq();
  SessionTask task = *applied->task;
  auto notices = r.notices_for(event, *applied);
  lock.unlock();
  r.notify(notices);
  return task;
}

std::optional<SessionTask> Registry::get(std::string_view session_id, std::string_view task_id) {
  Impl& r = *impl_;
  std::lock_guard lock(r.mutex);
  r.refresh();
  const SessionTask* task = r.views.find(session_id, task_id);
  return task ? std::optional<SessionTask>(*task) : std::nullopt;
}

std::vector<SessionTask> Registry::list(std::string_view session_id,
                                        const SessionTaskFilter& filter) {
  Impl& r = *impl_;
  std::lock_guard lock(r.mutex);
  r.refresh();
  return r.views.list(session_id, filter);
}

std::optional<SessionTask> Registry::request_cancel(std::string_view session_id,
                                                    std::string_view task_id) {
  Impl& r = *impl_;
  std::unique_lock lock(r.mutex);
  events::Event event;
  auto applied = r.write([&]() -> std::optional<events::Event> {
    if (!r.views.find(session_id, task_id)) return std::nullopt;
    event = events::Event{.recorded_at = r.now(),
                          .session_id = std::string(session_id),
                          .task_id = std::string(task_id),
                          .payload = events::CancelRequested{}};
    return event;
  });
  if (!applied) return std::nullopt;
  event.seq = r.views.last_seq();
  SessionTask task = *applied->task;
  auto notices = r.notices_for(event, *applied);
  lock.unlock();
  r.notify(notices);
  return task;
}

TaskMessage Registry::record_message(std::string_view session_id, std::string_view task_id,
                                     const NewTaskMessage& message) {
  check_message(message);
  Impl& r = *impl_;
  std::unique_lock lock(r.mutex);
  events::Event event;
  auto applied = r.write([&]() -> std::optional<events::Event> {
    const SessionTask* task = r.views.find(session_id, task_id);
    if (!task) {
      throw Error(ErrorCode::NotFound, "no task " + std::string(task_id) + " in session " +
                                           std::string(session_id));
    }
    if (message.expected_attempt && *message.expected_attempt != task->attempt) {
      throw Error(ErrorCode::StaleAttempt,
                  "stale attempt for task " + task->id + ": expected " +
                      std::to_string(*message.expected_attempt) + ", current " +
                      std::to_string(task->attempt));
    }
    const Timestamp now = r.now();
    event = events::Event{.recorded_at = now,
                          .session_id = std::string(session_id),
                          .task_id = std::string(task_id),
                          .payload = events::MessageRecorded{TaskMessage{
                              .id = r.ids.next("tmsg_", now),
                              .task_id = std::string(task_id),
                              .direction = message.direction,
                              .content = message.content,
                              .in_reply_to = message.in_reply_to,
                              .created_at = now}}};
    return event;
  });
  event.seq = r.views.last_seq();
  TaskMessage stored = *applied->message;
  auto notices = r.notices_for(event, *applied);
  lock.unlock();
  r.notify(notices);
  return stored;
}

std::vector<TaskMessage> Registry::list_messages(std::string_view session_id,
                                                 std::string_view task_id,
                                                 std::optional<std::uint32_t> limit,
                                                 std::optional<std::string_view> after_id) {
  Impl& r = *impl_;
  std::lock_guard lock(r.mutex);
  r.refresh();
  return r.views.messages(session_id, task_id, limit, after_id);
}

std::vector<JournalEntry> Registry::history(std::string_view session_id,
                                            std::string_view task_id) {
  Impl& r = *impl_;
  std::lock_guard lock(r.mutex);
  r.refresh();
  if (!r.views.find(session_id, task_id)) return {};
  return r.journal.task_entries(session_id, task_id);
}

std::uint64_t Registry::last_seq() {
  Impl& r = *impl_;
  std::lock_guard lock(r.mutex);
  r.refresh();
  return r.views.last_seq();
}

namespace {
template <class Signal, class Slot>
Subscription connect_guarded(Signal& signal, Slot slot) {
  auto connection = signal.connect([slot = std::move(slot)](const auto&... args) {
    try {
      slot(args...);
    } catch (...) {
      // A subscriber's failure never undoes or fails a committed write (CONTRACT §5).
    }
  });
  return Subscription([connection]() mutable { connection.disconnect(); });
}
}  // namespace

Subscription Registry::on_event(std::function<void(const RegistryEvent&)> slot) {
  return connect_guarded(impl_->event_signal, std::move(slot));
}

Subscription Registry::on_transition(
    std::function<void(TaskTransition, const SessionTask&)> slot) {
  return connect_guarded(impl_->transition_signal, std::move(slot));
}

Subscription Registry::on_wake(std::function<void(const WakeNotice&)> slot) {
  return connect_guarded(impl_->wake_signal, std::move(slot));
}

}  // namespace taskjournal
