// JSON → value types for the snapshot design (RapidJSON): what it pays on every read.
#pragma once

#include <string_view>

#include "taskjournal/taskjournal.hpp"

namespace bench {

/// Parses a task snapshot written by taskjournal::to_json. Throws std::runtime_error if malformed.
taskjournal::SessionTask task_from_json(std::string_view json);
/// Parses a message written by taskjournal::to_json. Throws std::runtime_error if malformed.
taskjournal::TaskMessage message_from_json(std::string_view json);

}  // namespace bench
