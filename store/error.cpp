#include "taskjournal/error.hpp"

namespace taskjournal {

Error::Error(ErrorCode code, const std::string& message)
    : std::runtime_error(message), code_(code) {}

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::InvalidArgument:
      return "invalid_argument";
    case ErrorCode::NotFound:
      return "not_found";
    case ErrorCode::Conflict:
      return "conflict";
    case ErrorCode::StaleAttempt:
      return "stale_attempt";
    case ErrorCode::Busy:
      return "busy";
    case ErrorCode::ReadOnly:
      return "read_only";
    case ErrorCode::Corrupt:
      return "corrupt";
    case ErrorCode::Unsupported:
      return "unsupported";
    case ErrorCode::Storage:
      return "storage";
  }
  return "unknown";
}

}  // namespace taskjournal
