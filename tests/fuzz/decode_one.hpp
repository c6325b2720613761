// One fuzz input through the event decoder, shared by the libFuzzer target and the gtest that
// replays the corpus (header-only; internal headers).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "events/event.hpp"
#include "events/validate.hpp"
#include "taskjournal/error.hpp"

namespace taskjournal::fuzz {

inline constexpr std::string_view kTypes[] = {"task_created", "task_updated", "cancel_requested",
                                              "message_recorded", "task_exploded"};

/// Decodes `input` (byte 0: type, byte 1: version, rest: payload). Returns false, after printing
/// why, if a property fails: an exception other than Error(Corrupt | Unsupported), or an accepted
/// payload that does not encode back to the same bytes or whose JSON is not JSON.
inline bool decode_one(std::string_view input) {
  if (input.size() < 2) return true;
  const std::string_view type = kTypes[static_cast<unsigned char>(input[0]) % 5];
  const std::uint32_t version = static_cast<unsigned char>(input[1]) % 3;
  const std::string_view bytes = input.substr(2);
  const Timestamp at{std::chrono::microseconds{1767225600000000}};
  events::Payload payload;
  try {
    payload = events::decode(type, version, bytes, "session", "task", at);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::Corrupt || e.code() == ErrorCode::Unsupported) return true;
    std::fprintf(stderr, "decode threw Error(%d): %s\n", static_cast<int>(e.code()), e.what());
    return false;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "decode threw a foreign exception: %s\n", e.what());
    return false;
  }
  if (events::type_name(payload) != type) {
    std::fprintf(stderr, "decoded %s as %s\n", std::string(type).c_str(),
                 std::string(events::type_name(payload)).c_str());
    return false;
  }
  const std::string again = events::encode(payload);
  if (again != bytes) {
    std::fprintf(stderr, "accepted %zu bytes of %s that encode back to %zu other bytes\n",
                 bytes.size(), std::string(type).c_str(), again.size());
    return false;
  }
  const std::string json = events::payload_json(payload);
  if (!events::is_valid_json(json)) {
    std::fprintf(stderr, "payload_json gave invalid JSON: %s\n", json.c_str());
    return false;
  }
  return true;
}

}  // namespace taskjournal::fuzz
