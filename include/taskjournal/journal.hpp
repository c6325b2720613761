// The audit trail as callers see it.
#pragma once

#include <cstdint>
#include <string>

#include "taskjournal/types.hpp"

namespace taskjournal {

/// One journal event. `type` is "task_created", "task_updated", "cancel_requested" or
/// "message_recorded"; `payload` is the event's content as a JSON object (see README, "Storage").
struct JournalEntry {
  std::uint64_t seq = 0;
  std::string type;
  Timestamp recorded_at{};
  std::string session_id;
  std::string task_id;
  Json payload;
  bool operator==(const JournalEntry&) const = default;
};

}  // namespace taskjournal
