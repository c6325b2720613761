// Generated ids: "<prefix>" + a UUIDv7 in simple form (internal to taskjournal).
//
// Ids are event content: the registry generates one when it builds an event (a task without a
// supplied id, every message), and the event carries it, so the fold never generates one.
#pragma once

#include <string>
#include <string_view>

#include "taskjournal/types.hpp"

namespace taskjournal::events {

/// `prefix` + a UUIDv7 (RFC 9562) as 32 lowercase hex digits: the 48-bit Unix milliseconds of
/// `now`, version 7, variant 10, and 74 bits from the operating system's CSPRNG (getrandom).
/// Ids made in one process sort in the order they were made, also within one millisecond
/// (RFC 9562 §6.2, method 2: the 74 bits of the previous id of the same millisecond, incremented
/// by a random amount of 1 to 2^32), and after a fork the child starts afresh. A `now` earlier
/// than the previous id's millisecond starts afresh too (its ids sort before the earlier ones).
/// `now` must lie in the years 0000–9999 or later than 1970 by less than 2^48 ms; times before
/// 1970 give a time field of 0. Thread-safe. Throws Error(Storage) if the CSPRNG fails.
std::string new_id(std::string_view prefix, Timestamp now);

}  // namespace taskjournal::events
