// Generated ids: "<prefix>" + UUIDv7 in simple form (internal).
#pragma once

#include <random>
#include <string>
#include <string_view>

#include "taskjournal/types.hpp"

namespace taskjournal::store {

/// UUIDv7 (RFC 9562) as 32 lowercase hex digits: 48-bit Unix milliseconds of `now`, version 7,
/// 74 random bits. Not thread-safe (the registry calls it under its lock).
class IdGenerator {
 public:
  IdGenerator();
  std::string next(std::string_view prefix, Timestamp now);

 private:
  std::mt19937_64 rng_;
};

}  // namespace taskjournal::store
