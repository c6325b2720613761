// Input checks shared by the registry, the decoder and the JSON writer.
#include "events/validate.hpp"

#include <cstddef>
#include <cstdint>

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

namespace taskjournal::events {
namespace {

// Accepts every SAX event; strings and keys must decode to strict UTF-8. RapidJSON 1.1.0 turns a
// lone low-surrogate escape ("\udc00") into the bytes ED B0 80 without complaint; this catches it.
struct ValidatingHandler : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, ValidatingHandler> {
  bool String(const char* s, rapidjson::SizeType n, bool) {
    return is_valid_utf8(std::string_view(s, n));
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    return is_valid_utf8(std::string_view(s, n));
  }
};

}  // namespace

bool is_valid_utf8(std::string_view text) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* const end = p + text.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::size_t len;
    std::uint32_t cp;
    std::uint32_t min;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2, cp = c & 0x1Fu, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3, cp = c & 0x0Fu, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4, cp = c & 0x07u, min = 0x10000;
    } else {
      return false;  // continuation byte, C0/C1 (always overlong) or F5..FF
    }
    if (static_cast<std::size_t>(end - p) < len) return false;
    for (std::size_t i = 1; i < len; ++i) {
      if ((p[i] & 0xC0u) != 0x80u) return false;
      cp = (cp << 6) | (p[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += len;
  }
  return true;
}

bool is_valid_json(std::string_view text) noexcept { return check_json(text) == JsonCheck::Valid; }

JsonCheck check_json(std::string_view text) noexcept {
  try {
    rapidjson::MemoryStream stream(text.data(), text.size());
    rapidjson::Reader reader;
    ValidatingHandler handler;
    // Numbers are handed on as text (embedding copies them verbatim). RapidJSON 1.1.0 still
    // rejects a number beyond the range of a double (1e400, a 400-digit integer), which RFC 8259
    // allows: that is reported as such (a documented limit), not as text that is not JSON.
    constexpr unsigned kFlags = rapidjson::kParseIterativeFlag |
                                rapidjson::kParseValidateEncodingFlag |
                                rapidjson::kParseNumbersAsStringsFlag;
    const rapidjson::ParseResult result = reader.Parse<kFlags>(stream, handler);
    if (result.IsError()) {
      return result.Code() == rapidjson::kParseErrorNumberTooBig ? JsonCheck::NumberOutOfRange
                                                                 : JsonCheck::Invalid;
    }
    // RapidJSON sees a NUL byte as the end of input; anything after the value must not be hidden.
    return stream.Tell() == text.size() ? JsonCheck::Valid : JsonCheck::Invalid;
  } catch (...) {
    return JsonCheck::Invalid;  // std::bad_alloc from the parser's stack
  }
}

}  // namespace taskjournal::events
