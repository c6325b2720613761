#include "support/event_generators.hpp"

namespace taskjournal::events {

std::ostream& operator<<(std::ostream& os, const TaskCreated& p) {
  return os << "TaskCreated{" << p.input << "}";
}

std::ostream& operator<<(std::ostream& os, const TaskUpdated& p) {
  return os << "TaskUpdated{" << p.update << "}";
}

std::ostream& operator<<(std::ostream& os, const CancelRequested&) {
  return os << "CancelRequested{}";
}
std::ostream& operator<<(std::ostream& os, const TaskPruned&) { return os << "TaskPruned{}"; }

std::ostream& operator<<(std::ostream& os, const MessageRecorded& p) {
  return os << "MessageRecorded{" << p.message << "}";
}

std::ostream& operator<<(std::ostream& os, const Payload& p) {
  std::visit([&](const auto& v) { os << v; }, p);
  return os;
}

std::ostream& operator<<(std::ostream& os, const Event& e) {
  print_detail::Fields f(os, "Event");
  f("seq", e.seq)("recorded_at", e.recorded_at)("session_id", e.session_id)("task_id", e.task_id);
  f("payload", e.payload);
  return os;
}
}  // namespace taskjournal::events

namespace taskjournal::testing {

rc::Gen<events::Event> event_of(int type) {
  return rc::gen::exec([type]() {
    events::Event e;
    e.seq = 1;
    e.recorded_at = *timestamp();
    switch (type) {
      case 0: {
        CreateSessionTask in = *create_input();
        if (!in.id)
          in.id = *rc::gen::element<std::string>("task_0190a1b2c3d4e5f60718293a4b5c6d7e", "t1");
        e.session_id = in.session_id;
        e.task_id = *in.id;
        e.payload = events::TaskCreated{in};
        break;
      }
      case 1:
        e.session_id = *session_id();
        e.task_id = *task_id();
        e.payload = events::TaskUpdated{*update(
            *rc::gen::element<std::int32_t>(1, 2, 7, std::numeric_limits<std::int32_t>::max()))};
        break;
      case 2:
        e.session_id = *session_id();
        e.task_id = *task_id();
        e.payload = events::CancelRequested{};
        break;
      case 4:
        e.session_id = *session_id();
        e.task_id = *task_id();
        e.payload = events::TaskPruned{};
        break;
      default: {
        e.session_id = *session_id();
        e.task_id = *task_id();
        NewTaskMessage m = *new_message();
        e.payload = events::MessageRecorded{TaskMessage{
            .id = *rc::gen::element<std::string>("tmsg_0190a1b2c3d4e5f60718293a4b5c6d7e", "m"),
            .task_id = e.task_id,
            .direction = m.direction,
            .content = m.content,
            .in_reply_to = m.in_reply_to,
            .created_at = e.recorded_at}};
      }
    }
    return e;
  });
}

rc::Gen<events::Event> event_with_bytes() {
  return rc::gen::oneOf(event_of(0), event_of(1), event_of(3));
}
}  // namespace taskjournal::testing
