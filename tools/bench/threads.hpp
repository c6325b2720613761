// Throughput under concurrency (issue #14), shared by taskjournal-bench (SQLite) and
// taskjournal-bench-pg: 1, 4, 16 and 64 threads on one Registry, each updating its own running
// task (progress and heartbeat, one call, one event), with group commit (the default) and
// without (Options::group_commit = false: every call its own commit), against raw per-call
// commits of the same rows by the same number of threads; calls per second and each call's
// latency (p50, p99).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "taskjournal/taskjournal.hpp"

namespace bench::threads {

inline const std::vector<int> kThreadCounts = {1, 4, 16, 64};

/// One cell's figures.
struct Figures {
  double calls_per_s = 0;
  double p50_ms = 0, p99_ms = 0;
};

/// Runs `threads` threads for `seconds`, each calling the call `client(t)` builds (outside the
/// clock; thread t's own connection or task) until the deadline; all start together.
Figures measure(int threads, double seconds,
                const std::function<std::function<void()>(int thread)>& client);

/// A client of `registry` for thread t: creates its running task (outside the clock), then
/// each call updates that task's progress and heartbeat.
std::function<void()> updater(taskjournal::Registry& registry, int thread);

/// One row of the table: a variant, durability and thread count, and its median figures.
struct Row {
  std::string variant;  // "taskjournal", "taskjournal, no group commit", "raw"
  taskjournal::Durability durability = taskjournal::Durability::Full;
  int threads = 1;
  Figures figures;
};

/// The Markdown table of `rows` (grouped by durability, thread counts as rows, variants as
/// column groups), with the ratios of issue #14: threads / one thread (group commit) and
/// group commit / none, and the goal lines.
std::vector<std::string> table(const std::vector<Row>& rows, const std::string& raw_label);

/// The goal lines: 16 threads Full ≥ 6 × one thread, one thread ≥ 0.95 × no group commit.
std::vector<std::string> goals(const std::vector<Row>& rows, const std::string& engine);

/// Median figures of several rounds of one cell.
Figures median_of(const std::vector<Figures>& rounds);

}  // namespace bench::threads
