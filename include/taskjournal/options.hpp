// How a Registry opens its journal.
#pragma once

#include <chrono>
#include <functional>

#include "taskjournal/types.hpp"

namespace taskjournal {

/// What an acknowledged write survives.
///  - Full:   SQLite synchronous=FULL in WAL mode. Every call that returned survives a process
///            crash and a power loss (as far as the disk honours fsync).
///  - Normal: synchronous=NORMAL in WAL mode. Every call that returned survives a process crash;
///            after a power loss the last commits before the loss may be missing (the journal is
///            still consistent and verifies).
enum class Durability { Full, Normal };

struct Options {
  /// Source of event timestamps and generated ids' time part; empty = the system clock.
  std::function<Timestamp()> clock;
  Durability durability = Durability::Full;
  /// Open without write access: every write throws Error(ReadOnly). The file must exist.
  bool read_only = false;
  /// How long a write waits for another writer's lock before it throws Error(Busy).
  std::chrono::milliseconds busy_timeout{5000};
  /// Use the file exclusively (SQLite's locking_mode=EXCLUSIVE): while this registry is open no
  /// other connection, in this process or another, can read or write the file (they get Busy).
  /// Reads then skip the check for other writers' commits, which makes them several times faster.
  bool exclusive = false;
};

}  // namespace taskjournal
