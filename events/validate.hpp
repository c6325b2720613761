// Input checks shared by the registry and the decoder (internal).
#pragma once

#include <string_view>

namespace taskjournal::events {

/// True if `text` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view text) noexcept;

/// What check_json found.
enum class JsonCheck {
  Valid,
  Invalid,           ///< not one JSON value in valid UTF-8
  NumberOutOfRange,  ///< JSON, but a number lies beyond the range of a double (1e400)
};

/// Valid if `text` is exactly one JSON value (RFC 8259), optionally surrounded by whitespace,
/// in valid UTF-8. Nesting depth does not use the call stack. Limit (RapidJSON 1.1): a number
/// beyond the range of a double (1e400, or an integer of 400 digits), which RFC 8259 allows, is
/// refused as NumberOutOfRange.
JsonCheck check_json(std::string_view text) noexcept;

/// check_json(text) == JsonCheck::Valid.
bool is_valid_json(std::string_view text) noexcept;

}  // namespace taskjournal::events
