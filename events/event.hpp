// The event vocabulary of the journal and its encodings (internal to taskjournal).
//
// An event is an envelope (seq, time, session, task) around one of five payloads. Every id and
// timestamp the fold needs is inside the event, so folding is deterministic. Payloads are
// encoded with cereal's portable binary archive; the grammar is at the top of codec.cpp, the
// JSON form (JournalEntry::payload) in json.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "taskjournal/types.hpp"

namespace taskjournal::events {

/// Payload schema version written by this build. decode() reads every version up to it.
inline constexpr std::uint32_t kPayloadVersion = 1;

/// A new task. `input.id` is always set (generated or supplied); `input.session_id` equals the
/// envelope's. The fold calls new_session_task(input, recorded_at).
struct TaskCreated {
  CreateSessionTask input;
  bool operator==(const TaskCreated&) const = default;
};

/// An update that reached an existing task of its session, as the caller sent it (also when the
/// lifecycle rules will drop it). The fold calls apply_task_update(task, update, recorded_at).
struct TaskUpdated {
  SessionTaskUpdate update;
  bool operator==(const TaskUpdated&) const = default;
};

/// A cancel request. The fold sets cancel_requested_at and updated_at to recorded_at only if
/// cancel_requested_at is empty.
struct CancelRequested {
  bool operator==(const CancelRequested&) const = default;
};

/// A stored message (id and created_at generated at append time; created_at == recorded_at).
/// The fold appends it and, for an inbound answer to the pending input request, applies
/// {state: running} at recorded_at.
struct MessageRecorded {
  TaskMessage message;
  bool operator==(const MessageRecorded&) const = default;
};

/// A terminal task removed from the views by Registry::prune_terminal (issue 13): its task and
/// messages leave every view; its events stay in the journal (history) until archived. The
/// registry appends it only for a terminal task; the fold checks that. No payload bytes.
struct TaskPruned {
  bool operator==(const TaskPruned&) const = default;
};

using Payload =
    std::variant<TaskCreated, TaskUpdated, CancelRequested, MessageRecorded, TaskPruned>;

struct Event {
  std::uint64_t seq = 0;
  Timestamp recorded_at{};
  std::string session_id;
  std::string task_id;
  Payload payload;
  bool operator==(const Event&) const = default;
};

/// "task_created", "task_updated", "cancel_requested", "message_recorded", "task_pruned".
std::string_view type_name(const Payload& payload) noexcept;

/// True if `type` is one of the five names above.
bool is_known_type(std::string_view type) noexcept;

/// The payload's bytes at kPayloadVersion. The envelope fields (session id, task id) are not
/// repeated inside: TaskCreated's input.session_id / input.id and MessageRecorded's
/// message.task_id / created_at are restored from the envelope by decode().
std::string encode(const Payload& payload);

/// Decodes a payload of `type` written at `version`, filling the envelope fields back in.
/// Throws Error(Corrupt) for an unknown type, malformed or truncated bytes, trailing bytes, or
/// strings that are not UTF-8; Error(Unsupported) for version 0 or a version above kPayloadVersion.
/// Never allocates more than a small multiple of bytes.size(). Messages do not name a sequence
/// number; the caller adds it.
Payload decode(std::string_view type, std::uint32_t version, std::string_view bytes,
               std::string_view session_id, std::string_view task_id, Timestamp recorded_at);

/// The payload as one JSON object (JournalEntry::payload), field names as in the public types.
std::string payload_json(const Payload& payload);

}  // namespace taskjournal::events

namespace taskjournal::events::testing {

/// Test hook, not part of the API: the capacity of this thread's encode buffer, which encode()
/// keeps between calls only while it is small (64 KiB).
std::size_t encode_buffer_capacity();

}  // namespace taskjournal::events::testing
