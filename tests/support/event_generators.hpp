// RapidCheck generators and printing for the journal's event payloads (events/event.hpp).
//
// Envelope fields the encoding does not repeat are generated consistently with the envelope:
// TaskCreated's input.id / input.session_id and MessageRecorded's message.task_id / created_at
// equal the event's task id, session id and recorded_at, as the registry writes them.
#pragma once

#include <cstdint>
#include <limits>
#include <ostream>
#include <string>

#include <rapidcheck.h>

#include "events/event.hpp"
#include "support/generators.hpp"

namespace taskjournal::events {

inline std::ostream& operator<<(std::ostream& os, const TaskCreated& p) {
  return os << "TaskCreated{" << p.input << "}";
}
inline std::ostream& operator<<(std::ostream& os, const TaskUpdated& p) {
  return os << "TaskUpdated{" << p.update << "}";
}
inline std::ostream& operator<<(std::ostream& os, const CancelRequested&) {
  return os << "CancelRequested{}";
}
inline std::ostream& operator<<(std::ostream& os, const MessageRecorded& p) {
  return os << "MessageRecorded{" << p.message << "}";
}
inline std::ostream& operator<<(std::ostream& os, const Payload& p) {
  std::visit([&](const auto& v) { os << v; }, p);
  return os;
}
inline std::ostream& operator<<(std::ostream& os, const Event& e) {
  print_detail::Fields f(os, "Event");
  f("seq", e.seq)("recorded_at", e.recorded_at)("session_id", e.session_id)("task_id", e.task_id);
  f("payload", e.payload);
  return os;
}

}  // namespace taskjournal::events

namespace taskjournal::testing {

/// An event of any type with generated content (seq 1); envelope and payload agree.
inline rc::Gen<events::Event> event_of(int type) {
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

/// An event of a type whose payload has at least one byte (not CancelRequested).
inline rc::Gen<events::Event> event_with_bytes() {
  return rc::gen::oneOf(event_of(0), event_of(1), event_of(3));
}

}  // namespace taskjournal::testing
