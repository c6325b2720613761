// The one exception type that leaves taskjournal.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "taskjournal/export.hpp"

namespace taskjournal {

enum class ErrorCode {
  InvalidArgument,  ///< bad input; the message names the field. Nothing was written.
  NotFound,         ///< no such task in the caller's session (record_message)
  Conflict,         ///< a supplied task id exists under another session (create)
  StaleAttempt,     ///< a message's expected_attempt differs from the task's attempt
  Busy,             ///< the journal stayed locked by another writer beyond busy_timeout
  ReadOnly,         ///< a write on a registry opened read-only, or on a file that cannot be written
  Corrupt,          ///< the file is not a taskjournal journal, or an event fails its checks
  Unsupported,      ///< the journal was written by a newer schema version
  Storage,          ///< any other failure of the storage layer (I/O, disk full, …)
};

/// "invalid_argument", "not_found", … (snake_case of the enumerator).
TASKJOURNAL_API std::string_view to_string(ErrorCode code) noexcept;

/// Thrown by every fallible taskjournal call. `what()` names the file, task or sequence number
/// involved. Third-party exceptions (SQLite, cereal) are translated into it at the library's edge.
class TASKJOURNAL_API Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message);
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace taskjournal
