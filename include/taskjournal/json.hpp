// The public JSON form of tasks and messages (docs/contract.md §6).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "taskjournal/error.hpp"
#include "taskjournal/export.hpp"
#include "taskjournal/types.hpp"

namespace taskjournal {

/// One JSON object in everruns' conventions: snake_case states and policies, optional fields and
/// empty `artifacts`/`links` omitted, timestamps as RFC 3339 UTC with microseconds
/// ("2026-11-26T16:50:53.000123Z"). Every object of `spec.push_configs[]` with a `secret` key
/// shows `"has_secret": true` in its place. Throws Error(Corrupt) only if a stored JSON field is
/// not JSON.
TASKJOURNAL_API std::string to_json(const SessionTask& task);

/// `{"id":…,"task_id":…,"direction":…,"content":[…],"in_reply_to":…,"created_at":…}`; parts are
/// `{"type":"text","text":…}` or `{"type":"data","data":…}`.
TASKJOURNAL_API std::string to_json(const TaskMessage& message);

/// `text` as a JSON string literal (quotes included). Each byte that is not part of valid UTF-8
/// (a file name of another encoding) becomes U+FFFD, the replacement character, so the result is
/// always valid JSON.
TASKJOURNAL_API std::string json_string(std::string_view text);

/// {"error":{"code":"<to_string(code)>","message":…}}, the message as json_string() writes it.
TASKJOURNAL_API std::string to_json(const Error& error);

/// RFC 3339 UTC text of a timestamp, always with six fractional digits and a "Z". Years outside
/// 0000–9999, which RFC 3339 cannot express, come out expanded ("-0001-…", "+294247-…").
TASKJOURNAL_API std::string format_timestamp(Timestamp t);

/// Parses RFC 3339 text (4-digit year, any offset, 0–9 fractional digits, truncated to
/// microseconds); nullopt when malformed. A leap second (":60") is rejected.
TASKJOURNAL_API std::optional<Timestamp> parse_timestamp(std::string_view text);

}  // namespace taskjournal
