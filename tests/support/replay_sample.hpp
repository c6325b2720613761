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
inline void write_sample_journal(const std::string& path) {
  FakeClock clock;
  auto tick = [&] { clock.advance(std::chrono::seconds(1)); };
  auto r = Registry::open(path, Options{.clock = clock.fn(), .durability = Durability::Normal});
  tick();
  r.create({.session_id = "sess_a",
            .id = "task_build",
            .kind = "build",
            .display_name = "Build the app",
            .spec = kSampleSpec,
            .wake_policy = TaskWakePolicy::OnTerminal});
  tick();
  r.update("sess_a", "task_build",
           {.state = SessionTaskState::Running,
            .progress = TaskProgress{.current = 1, .total = 3, .unit = "steps"},
            .worker_id = "w-1"});
  tick();
  r.record_message("sess_a", "task_build", NewTaskMessage::outbound_text("compiling"));
  tick();
  r.create({.session_id = "sess_a",
            .id = "task_review",
            .kind = "review",
            .display_name = "Review the change"});
  tick();
  r.update("sess_a", "task_build",
           {.input_request = TaskInputRequest{.id = "q1", .prompt = "Which branch?"}});
  tick();
  NewTaskMessage answer = NewTaskMessage::inbound_text("main");
  answer.in_reply_to = "q1";
  r.record_message("sess_a", "task_build", answer);
  tick();
  r.update("sess_a", "task_review",
           {.state = SessionTaskState::Running, .increment_attempt = true});
  tick();
  r.update("sess_a", "task_review", {.state = SessionTaskState::Failed, .expected_attempt = 1});
  tick();
  r.update("sess_a", "task_build",
           {.state = SessionTaskState::Succeeded, .summary = "built", .result_path = "out/app"});
  tick();
  r.update("sess_a", "task_build", {.state = SessionTaskState::Running});
  tick();
  r.request_cancel("sess_a", "task_review");
  tick();
  r.update("sess_a", "task_review",
           {.state = SessionTaskState::Failed,
            .error = TaskError{.kind = "timeout", .message = "no answer"},
            .expected_attempt = 2});
  tick();
  r.create({.session_id = "sess_b",
            .id = "task_lint",
            .kind = "build",
            .display_name = "Lint",
            .state = SessionTaskState::Running});
  tick();
  r.request_cancel("sess_b", "task_lint");
  tick();
  r.request_cancel("sess_b", "task_lint");
}

}  // namespace taskjournal::testing
