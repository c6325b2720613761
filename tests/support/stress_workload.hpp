// The multi-process stress workload (issue 5, item 1; issue 11 for PostgreSQL), one source for
// every engine: tests/stress_test.cpp runs it on a SQLite file, tests/postgres/pg_stress_test.cpp
// on a PostgreSQL schema.
//
// `processes` forked processes × `threads` threads each run a fixed script of commands drawn from
// a seeded generator: creates in shared and private sessions, racing updates that each append a
// uniquely named artifact, racing terminal transitions on the same tasks, input requests answered
// by messages, outbound messages, cancel requests, and fenced updates after increment_attempt.
// Even processes share one Registry between their threads, odd ones open one per thread. Every
// call that returned is reported to the parent in a file ("acks"). The parent then checks what
// the public API shows against the acks: no call failed, no update was lost (each artifact is
// there exactly once, nothing else is), every task obeys the lifecycle invariants, each fenced
// attempt was taken once, every process and a fresh registry see the same views, and each task
// that became terminal produced exactly one Terminal transition notification across all
// processes. The journal's own checks (gap-free sequence, exactly one stored event per
// acknowledged writing call) are the caller's, with StressOutcome::expected_events.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "taskjournal/taskjournal.hpp"

namespace taskjournal::testing {

struct StressPlan {
  int processes = 4;
  int threads = 2;
  int commands = 1000;  ///< per thread, after the shared creates and the racing start
  /// Opens a registry on the journal under test: in the children (with a long busy_timeout) and
  /// in the parent for the fresh registry of the final comparison (read_only).
  std::function<Registry(const Options&)> open;
  /// Names the engine in the summary line printed at the end.
  std::string engine = "sqlite";
};

struct StressOutcome {
  /// False when the run did not get to the checks (a child hung or failed to start): a failure
  /// was reported already.
  bool completed = false;
  /// One event per acknowledged writing call: what the journal must hold, no more, no less.
  std::uint64_t expected_events = 0;
};

/// Runs the workload with `plan`, the children's ack and dump files in `dir`, and checks it with
/// non-fatal gtest failures (see above). Call from a single-threaded test process (it forks).
StressOutcome run_stress(const StressPlan& plan, const std::filesystem::path& dir);

struct Pipe;

/// The parent's half of the read-after-write test: `writes` times, reads task s/t through both
/// registries, asks the writing child (one byte on `request`) for its next progress update and
/// waits for its ack, then expects both registries' next read to show that update; every 7th
/// write the parent also updates the task's summary through `reader`. Fatal gtest failures.
void expect_each_write_seen(Registry& reader, Registry& read_only, Pipe& request, Pipe& ack,
                            int writes);

}  // namespace taskjournal::testing
