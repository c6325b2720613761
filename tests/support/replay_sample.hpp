// A small, deterministic journal for the reader and taskjournal-replay tests: fixed clock,
// supplied task ids, two sessions, every event type, a fenced and a terminal-dropped update, an
// answered input request and a repeated cancel. Message ids are random (tmsg_ + UUIDv7).
#pragma once

#include <chrono>
#include <string>

#include "support/fake_clock.hpp"
#include "taskjournal/taskjournal.hpp"

namespace taskjournal::testing {

/// The spec of task_build: its push config's secret must never be printed.
inline constexpr const char* kSampleSpec =
    R"({"target":"app","push_configs":[{"url":"https://hooks.example/1","secret":"s3cr3t"}]})";

/// Writes the sample's 15 events to a new journal at `path` (one second apart, from
/// fake_clock_start() + 1 s):
///   1 create task_build (sess_a)        6 inbound answer, resumes     11 cancel task_review
///   2 task_build running                7 task_review running, att 2  12 task_review failed
///   3 outbound message                  8 task_review fenced          13 create task_lint (sess_b)
///   4 create task_review (sess_a)       9 task_build succeeded        14 cancel task_lint
///   5 task_build asks for input        10 task_build dropped (term.)  15 cancel again (no change)
void write_sample_journal(const std::string& path);

}  // namespace taskjournal::testing
