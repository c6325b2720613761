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

std::ostream& operator<<(std::ostream& os, const TaskCreated& p);
std::ostream& operator<<(std::ostream& os, const TaskUpdated& p);
std::ostream& operator<<(std::ostream& os, const CancelRequested&);
std::ostream& operator<<(std::ostream& os, const TaskPruned&);
std::ostream& operator<<(std::ostream& os, const MessageRecorded& p);
std::ostream& operator<<(std::ostream& os, const Payload& p);
std::ostream& operator<<(std::ostream& os, const Event& e);

}  // namespace taskjournal::events

namespace taskjournal::testing {

/// An event of any type with generated content (seq 1); envelope and payload agree.
rc::Gen<events::Event> event_of(int type);

/// An event of a type whose payload has at least one byte (not CancelRequested).
rc::Gen<events::Event> event_with_bytes();

}  // namespace taskjournal::testing
