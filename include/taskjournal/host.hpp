// The host's side of the lifecycle: the orphan reaper's options and report, what waiting for a
// task returns, and what pruning removed (Registry::reap_orphans, wait, prune_terminal; README
// "Running a host" and "Retention").
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "taskjournal/types.hpp"

namespace taskjournal {

/// How Registry::reap_orphans treats the tasks whose worker stopped sending heartbeats.
struct ReaperOptions {
  /// A queued or running task whose heartbeat_at is older than this is an orphan.
  std::chrono::seconds stale_after{300};
  /// At most this many orphans per run (capped at 1000), the smallest task ids first.
  std::uint32_t limit = 50;
  /// A task is re-attached only while its attempt is below this; otherwise it fails.
  std::int32_t max_attempts = 3;
  /// Whether an orphan may be handed to a new worker (unset: never, every orphan fails).
  std::function<bool(const SessionTask&)> can_reattach;
  /// Starts the new worker of a re-attached task (called outside the registry's lock, with the
  /// task of the new attempt). If it throws, the new attempt fails with kind "orphaned".
  std::function<void(const SessionTask&)> start;
};

/// What the reaper did with one candidate.
struct ReapOutcome {
  std::string session_id;
  std::string task_id;
  std::string status;  ///< "reaped", "reattached" or "skipped"
  std::string detail;  ///< why it was skipped, or how it was reaped or re-attached
  bool operator==(const ReapOutcome&) const = default;
};

/// One run of the reaper: the counts, and one outcome per candidate in task-id order.
struct ReapReport {
  std::uint32_t candidates = 0;
  std::uint32_t reaped = 0;
  std::uint32_t reattached = 0;
  std::uint32_t skipped = 0;
  std::vector<ReapOutcome> outcomes;
  bool operator==(const ReapReport&) const = default;
};

/// A task Registry::prune_terminal removed from the views, with its result_path so that the host
/// can delete its files (the library deletes no file of the host).
struct PrunedTask {
  std::string session_id;
  std::string task_id;
  std::optional<std::string> result_path;
  bool operator==(const PrunedTask&) const = default;
};

/// What Registry::wait saw: the task when it became terminal or awaiting input, or its newest
/// snapshot when the timeout passed first (`timed_out`).
struct WaitResult {
  SessionTask task;
  bool timed_out = false;
};

}  // namespace taskjournal
