// Input checks shared by the registry and the decoder (internal).
#pragma once

#include <string_view>

namespace taskjournal::events {

/// True if `text` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view text) noexcept;

/// True if `text` is exactly one JSON value (RFC 8259), optionally surrounded by whitespace,
/// in valid UTF-8. Nesting depth does not use the call stack. Limit (RapidJSON 1.1): a number
/// beyond the range of a double (1e400) is rejected.
bool is_valid_json(std::string_view text) noexcept;

}  // namespace taskjournal::events
