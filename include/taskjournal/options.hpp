// How a Registry opens its journal.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

#include "taskjournal/error.hpp"
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
  /// Source of event timestamps and generated ids' time part; empty = the system clock. Called
  /// while the registry holds its lock: it must not call the registry (that deadlocks). A time
  /// outside the years 1970–9999 fails the call with Error(InvalidArgument), nothing written.
  std::function<Timestamp()> clock;
  Durability durability = Durability::Full;
  /// Open without write access: every write throws Error(ReadOnly). The file must exist.
  bool read_only = false;
  /// How long a write waits for another writer's lock before it throws Error(Busy). Values above
  /// INT_MAX ms (24.8 days, SQLite's limit) wait that long; a negative value makes open throw
  /// Error(InvalidArgument). Within one Registry, calls from other threads wait for the one in
  /// progress (a whole batch included) on the registry's mutex, whatever this timeout says.
  std::chrono::milliseconds busy_timeout{5000};
  /// Use the file exclusively (SQLite's locking_mode=EXCLUSIVE): while this registry is open no
  /// other connection, in this process or another, can read or write the file (they get Busy).
  /// Reads then skip the check for other writers' commits, which makes them several times faster.
  /// Opening with it throws Error(Busy) (after busy_timeout) while any other connection has the
  /// file open, even an idle one (another Registry, a JournalReader, taskjournal-replay).
  bool exclusive = false;
  /// Store a checkpoint of the views each time this many events were appended since the last
  /// one (0: never), or a tenth of the journal once that is more, so that opening restores the
  /// newest checkpoint and folds only the events after it, and checkpoints cost a bounded share
  /// of the writes however large the journal grows. The checkpoint is written by the call whose
  /// event crosses the threshold, after its commit and in a transaction of its own; that call
  /// takes longer (about the time to encode the views) but never fails for it. The newest two
  /// checkpoints are kept. See README, "Checkpoints".
  std::uint64_t checkpoint_every = 100'000;
  /// Open from the newest usable checkpoint (true), or ignore checkpoints and fold, verifying
  /// its hash chain, every event from the first (false). Opening from a checkpoint checks the
  /// events after it, not those it covers; `taskjournal-replay verify` checks them all.
  bool open_from_checkpoint = true;
  /// Called with every problem the registry worked around instead of failing a call: a
  /// checkpoint ignored on open (damaged, of another format, or disagreeing with the events) or
  /// one that could not be written, or a problem of the watch thread (Options::watch, wait()).
  /// Runs in the thread of the call (or of open, or the watch thread) while the registry is
  /// locked: it must not call the registry. What it throws is swallowed.
  std::function<void(const Error&)> on_problem;
  /// Notice the events other registries commit — in this process, in another process, or
  /// (PostgreSQL) on another host — within about this interval, fold them, and deliver their
  /// on_event, on_transition and on_wake notifications exactly once, in journal order, from a
  /// thread the registry runs for it (README "Watching"). Unset (the default): another
  /// registry's events are folded when a call next asks, and notify nobody here. This
  /// registry's own writes notify in the writing thread either way. SQLite checks the WAL index
  /// (a memory read) every `watch` / 4 (1–10 ms); PostgreSQL waits for the NOTIFY each commit
  /// sends, reads the journal every max(`watch`, 1 s) in case one was missed, and catches up
  /// after reconnecting. Zero or negative: open throws Error(InvalidArgument). Problems of the
  /// watching thread (a lost connection) go to on_problem; it keeps trying.
  std::optional<std::chrono::milliseconds> watch;
  /// Group commit: calls of this Registry from other threads that arrive while a commit is in
  /// flight are written together in the next transaction, with one commit (one fsync, one WAL
  /// flush) for all of them; each call still decides against every event before it, writes its
  /// one event (or none, if refused, without failing the others) and returns after that commit.
  /// A storage failure fails the calls of that group, and nothing of the group is written. A
  /// call alone waits for nobody. False: every call commits its own transaction (README
  /// "Throughput").
  bool group_commit = true;
};

}  // namespace taskjournal
