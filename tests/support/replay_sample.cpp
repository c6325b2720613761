#include "support/replay_sample.hpp"

namespace taskjournal::testing {

void write_sample_journal(const std::string& path) {
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
