// Acceptance tests of the lifecycle rules (CONTRACT §2–§3) and the enum names, through the
// public API only.
#include <array>
#include <chrono>
#include <climits>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "taskjournal/taskjournal.hpp"
#include "tests/support/fake_clock.hpp"

namespace {

using namespace std::chrono_literals;
using taskjournal::CreateSessionTask;
using taskjournal::DataPart;
using taskjournal::SessionTask;
using taskjournal::SessionTaskState;
using taskjournal::SessionTaskUpdate;
using taskjournal::TaskArtifact;
using taskjournal::TaskError;
using taskjournal::TaskInputRequest;
using taskjournal::TaskLinks;
using taskjournal::TaskMessageDirection;
using taskjournal::TaskMessagePart;
using taskjournal::TaskProgress;
using taskjournal::TaskTransition;
using taskjournal::TaskWakePolicy;
using taskjournal::TextPart;
using taskjournal::Timestamp;
using taskjournal::testing::fake_clock_start;

const Timestamp T0 = fake_clock_start();
const Timestamp T1 = T0 + 1s;
const Timestamp T2 = T0 + 2s;
const Timestamp T3 = T0 + 3s;
const Timestamp T4 = T0 + 4s;

constexpr std::array<SessionTaskState, 6> kAllStates{
    SessionTaskState::Queued,    SessionTaskState::Running, SessionTaskState::AwaitingInput,
    SessionTaskState::Succeeded, SessionTaskState::Failed,  SessionTaskState::Canceled};
constexpr std::array<SessionTaskState, 3> kTerminalStates{
    SessionTaskState::Succeeded, SessionTaskState::Failed, SessionTaskState::Canceled};
constexpr std::array<SessionTaskState, 3> kNonTerminalStates{
    SessionTaskState::Queued, SessionTaskState::Running, SessionTaskState::AwaitingInput};

CreateSessionTask input_in(SessionTaskState state = SessionTaskState::Queued) {
  return CreateSessionTask{.session_id = "sess_1",
                           .id = "task_1",
                           .kind = "subagent",
                           .display_name = "Worker",
                           .spec = R"({"q":1})",
                           .state = state};
}

/// A task created at T0 in `state`.
SessionTask task_in(SessionTaskState state = SessionTaskState::Queued) {
  return taskjournal::new_session_task(input_in(state), T0);
}

/// A task created queued at T0 that moved to `state` at T1 (through apply_task_update).
SessionTask task_moved_to(SessionTaskState state) {
  SessionTask task = task_in();
  taskjournal::apply_task_update(task, SessionTaskUpdate{.state = state}, T1);
  return task;
}

/// The record new_session_task must produce for input_in(Queued) at T0.
SessionTask expected_new_queued() {
  return SessionTask{.id = "task_1",
                     .session_id = "sess_1",
                     .kind = "subagent",
                     .display_name = "Worker",
                     .spec = R"({"q":1})",
                     .state = SessionTaskState::Queued,
                     .attempt = 1,
                     .created_at = T0,
                     .updated_at = T0};
}

TaskInputRequest request(std::string id, std::string prompt = "Which branch?") {
  return TaskInputRequest{.id = std::move(id), .prompt = std::move(prompt)};
}

std::string trace(SessionTaskState a, SessionTaskState b) {
  return std::string(taskjournal::to_string(a)) + " -> " + std::string(taskjournal::to_string(b));
}

// ---------------------------------------------------------------------------------------------
// §2 new_session_task
// ---------------------------------------------------------------------------------------------

TEST(NewSessionTask, QueuedTaskHasAttemptOneAndOnlyCreatedAndUpdatedTimestamps) {
  EXPECT_EQ(task_in(SessionTaskState::Queued), expected_new_queued());
}

TEST(NewSessionTask, DefaultInitialStateIsQueued) {
  CreateSessionTask input{.session_id = "sess_1", .id = "task_1", .kind = "k"};
  EXPECT_EQ(input.state, SessionTaskState::Queued);
  const SessionTask task = taskjournal::new_session_task(input, T0);
  EXPECT_EQ(task.state, SessionTaskState::Queued);
  EXPECT_EQ(task.started_at, std::nullopt);
  EXPECT_EQ(task.wake_policy, TaskWakePolicy::Silent);
  EXPECT_EQ(task.spec, "{}");
}

TEST(NewSessionTask, RunningTaskIsStartedAtCreation) {
  SessionTask expected = expected_new_queued();
  expected.state = SessionTaskState::Running;
  expected.started_at = T0;
  EXPECT_EQ(task_in(SessionTaskState::Running), expected);
}

TEST(NewSessionTask, AwaitingInputTaskIsStartedAtCreationWithoutRequest) {
  SessionTask expected = expected_new_queued();
  expected.state = SessionTaskState::AwaitingInput;
  expected.started_at = T0;
  EXPECT_EQ(task_in(SessionTaskState::AwaitingInput), expected);
}

TEST(NewSessionTask, TerminalTaskIsStartedAndFinishedAtCreation) {
  for (SessionTaskState state : kTerminalStates) {
    SCOPED_TRACE(taskjournal::to_string(state));
    SessionTask expected = expected_new_queued();
    expected.state = state;
    expected.started_at = T0;
    expected.finished_at = T0;
    EXPECT_EQ(task_in(state), expected);
  }
}

TEST(NewSessionTask, CopiesIdVerbatim) {
  CreateSessionTask input = input_in();
  input.id = "My Task/ü #1 ";
  EXPECT_EQ(taskjournal::new_session_task(input, T0).id, "My Task/ü #1 ");
}

TEST(NewSessionTask, CopiesLinksWakePolicyAndSpec) {
  CreateSessionTask input = input_in();
  input.links = TaskLinks{.child_session_id = "sess_child",
                          .remote_task_id = "remote_9",
                          .resource_ids = {"res_b", "res_a"}};
  input.wake_policy = TaskWakePolicy::OnActivity;
  input.spec = R"(["any",2,null])";
  SessionTask expected = expected_new_queued();
  expected.links = input.links;
  expected.wake_policy = TaskWakePolicy::OnActivity;
  expected.spec = R"(["any",2,null])";
  EXPECT_EQ(taskjournal::new_session_task(input, T0), expected);
}

// ---------------------------------------------------------------------------------------------
// §3 rule 1: attempt fence
// ---------------------------------------------------------------------------------------------

/// Everything an update can carry, so a dropped update visibly changes nothing.
SessionTaskUpdate everything_update(SessionTaskState state) {
  return SessionTaskUpdate{
      .state = state,
      .state_detail = "detail",
      .progress = TaskProgress{.current = 1, .total = 2, .unit = "files", .label = "copying"},
      .summary = "summary",
      .result_path = "/tmp/result",
      .artifacts = std::vector<TaskArtifact>{{.name = "a", .type = "file"}},
      .append_artifact = TaskArtifact{.name = "b", .type = "url", .url = "https://x"},
      .error = TaskError{.kind = "timeout", .message = "too slow"},
      .links = TaskLinks{.child_session_id = "c", .remote_task_id = "r", .resource_ids = {"x"}},
      .worker_id = "worker_1",
      .heartbeat_at = T2,
      .increment_attempt = true};
}

TEST(ApplyTaskUpdate, FenceLowerThanAttemptDropsEverythingIncludingUpdatedAt) {
  SessionTask task = task_in(SessionTaskState::Running);
  taskjournal::apply_task_update(task, SessionTaskUpdate{.increment_attempt = true}, T1);
  ASSERT_EQ(task.attempt, 2);
  const SessionTask before = task;

  SessionTaskUpdate update = everything_update(SessionTaskState::Succeeded);
  update.expected_attempt = 1;
  taskjournal::apply_task_update(task, update, T2);
  EXPECT_EQ(task, before);

  SessionTaskUpdate with_request{.input_request = request("req_1"), .expected_attempt = 1};
  taskjournal::apply_task_update(task, with_request, T3);
  EXPECT_EQ(task, before);
}

TEST(ApplyTaskUpdate, FenceHigherThanAttemptDropsEverythingIncludingUpdatedAt) {
  SessionTask task = task_in(SessionTaskState::Running);
  const SessionTask before = task;
  SessionTaskUpdate update = everything_update(SessionTaskState::Failed);
  update.expected_attempt = 2;
  taskjournal::apply_task_update(task, update, T1);
  EXPECT_EQ(task, before);

  SessionTaskUpdate empty_fenced{.expected_attempt = 7};
  taskjournal::apply_task_update(task, empty_fenced, T2);
  EXPECT_EQ(task, before);
}

TEST(ApplyTaskUpdate, MatchingFenceApplies) {
  SessionTask task = task_in();
  taskjournal::apply_task_update(
      task, SessionTaskUpdate{.state = SessionTaskState::Running, .expected_attempt = 1}, T1);
  SessionTask expected = expected_new_queued();
  expected.state = SessionTaskState::Running;
  expected.started_at = T1;
  expected.updated_at = T1;
  EXPECT_EQ(task, expected);
}

TEST(ApplyTaskUpdate, FenceIsCheckedAgainstAttemptBeforeIncrement) {
  SessionTask task = task_in(SessionTaskState::Running);
  taskjournal::apply_task_update(
      task, SessionTaskUpdate{.expected_attempt = 1, .increment_attempt = true}, T1);
  EXPECT_EQ(task.attempt, 2);
  EXPECT_EQ(task.updated_at, T1);
  // The old executor's fence is now stale: dropped, no second bump.
  taskjournal::apply_task_update(
      task, SessionTaskUpdate{.expected_attempt = 1, .increment_attempt = true}, T2);
  EXPECT_EQ(task.attempt, 2);
  EXPECT_EQ(task.updated_at, T1);
  taskjournal::apply_task_update(
      task, SessionTaskUpdate{.expected_attempt = 2, .increment_attempt = true}, T3);
  EXPECT_EQ(task.attempt, 3);
  EXPECT_EQ(task.updated_at, T3);
}

TEST(ApplyTaskUpdate, FenceAppliesToTerminalTasksToo) {
  SessionTask task = task_moved_to(SessionTaskState::Succeeded);
  const SessionTask before = task;
  taskjournal::apply_task_update(task, SessionTaskUpdate{.summary = "late", .expected_attempt = 2},
                                 T2);
  EXPECT_EQ(task, before);
}

// ---------------------------------------------------------------------------------------------
// §3 rule 2: terminal finality
// ---------------------------------------------------------------------------------------------

TEST(ApplyTaskUpdate, TerminalStateIgnoresDifferentState) {
  for (SessionTaskState terminal : kTerminalStates) {
    for (SessionTaskState target : kAllStates) {
      if (target == terminal) continue;
      SCOPED_TRACE(trace(terminal, target));
      SessionTask task = task_moved_to(terminal);
      const SessionTask before = task;
      taskjournal::apply_task_update(task, everything_update(target), T2);
      EXPECT_EQ(task, before);
    }
  }
}

TEST(ApplyTaskUpdate, TerminalStateIgnoresDifferentStateEvenWithInputRequest) {
  SessionTask task = task_moved_to(SessionTaskState::Failed);
  const SessionTask before = task;
  taskjournal::apply_task_update(task,
                                 SessionTaskUpdate{.state = SessionTaskState::AwaitingInput,
                                                   .input_request = request("req_1"),
                                                   .summary = "s"},
                                 T2);
  EXPECT_EQ(task, before);
  taskjournal::apply_task_update(
      task,
      SessionTaskUpdate{.state = SessionTaskState::Running, .input_request = request("req_1")}, T2);
  EXPECT_EQ(task, before);
}

TEST(ApplyTaskUpdate, TerminalStateAcceptsSameStateWithContent) {
  for (SessionTaskState terminal : kTerminalStates) {
    SCOPED_TRACE(taskjournal::to_string(terminal));
    SessionTask task = task_moved_to(terminal);  // started_at = finished_at = T1
    taskjournal::apply_task_update(
        task,
        SessionTaskUpdate{.state = terminal,
                          .summary = "all done",
                          .error = TaskError{.kind = "rejected", .message = "no"},
                          .increment_attempt = true},
        T2);
    SessionTask expected = expected_new_queued();
    expected.state = terminal;
    expected.started_at = T1;
    expected.finished_at = T1;  // not re-stamped
    expected.summary = "all done";
    expected.error = TaskError{.kind = "rejected", .message = "no"};
    expected.attempt = 2;
    expected.updated_at = T2;
    EXPECT_EQ(task, expected);
  }
}

TEST(ApplyTaskUpdate, TerminalStateAcceptsUpdateWithoutState) {
  SessionTask task = task_moved_to(SessionTaskState::Canceled);
  taskjournal::apply_task_update(
      task,
      SessionTaskUpdate{.state_detail = "cleaned up", .result_path = "out.txt", .worker_id = "w2"},
      T3);
  SessionTask expected = expected_new_queued();
  expected.state = SessionTaskState::Canceled;
  expected.started_at = T1;
  expected.finished_at = T1;
  expected.state_detail = "cleaned up";
  expected.result_path = "out.txt";
  expected.worker_id = "w2";
  expected.updated_at = T3;
  EXPECT_EQ(task, expected);
}

TEST(ApplyTaskUpdate, TaskCreatedTerminalIsAlsoFinal) {
  SessionTask task = task_in(SessionTaskState::Succeeded);
  const SessionTask before = task;
  taskjournal::apply_task_update(task, SessionTaskUpdate{.state = SessionTaskState::Running}, T1);
  EXPECT_EQ(task, before);
}

// ---------------------------------------------------------------------------------------------
// §3 rule 3: increment_attempt
// ---------------------------------------------------------------------------------------------

TEST(ApplyTaskUpdate, IncrementAttemptAddsOne) {
  SessionTask task = task_in(SessionTaskState::Running);
  taskjournal::apply_task_update(task, SessionTaskUpdate{.increment_attempt = true}, T1);
  SessionTask expected = task_in(SessionTaskState::Running);
  expected.attempt = 2;
  expected.updated_at = T1;
  EXPECT_EQ(task, expected);
  taskjournal::apply_task_update(task, SessionTaskUpdate{.increment_attempt = true}, T2);
  EXPECT_EQ(task.attempt, 3);
  taskjournal::apply_task_update(task, SessionTaskUpdate{.state_detail = "x"}, T3);
  EXPECT_EQ(task.attempt, 3);
}

TEST(ApplyTaskUpdate, IncrementAttemptWithRequeue) {
  SessionTask task = task_moved_to(SessionTaskState::Running);
  taskjournal::apply_task_update(
      task, SessionTaskUpdate{.state = SessionTaskState::Queued, .increment_attempt = true}, T2);
  SessionTask expected = expected_new_queued();
  expected.attempt = 2;
  expected.started_at = T1;
  expected.updated_at = T2;
  EXPECT_EQ(task, expected);
}

TEST(ApplyTaskUpdate, IncrementAttemptSaturatesAtInt32Max) {
  SessionTask task = task_in(SessionTaskState::Running);
  task.attempt = INT32_MAX;
  taskjournal::apply_task_update(task, SessionTaskUpdate{.increment_attempt = true}, T1);
  EXPECT_EQ(task.attempt, INT32_MAX);
}

// ---------------------------------------------------------------------------------------------
// §3 rule 4: input_request
// ---------------------------------------------------------------------------------------------

TEST(ApplyTaskUpdate, InputRequestForcesAwaitingInputWhateverStateWasAsked) {
  std::vector<std::optional<SessionTaskState>> asked{std::nullopt};
  for (SessionTaskState s : kAllStates) asked.emplace_back(s);
  for (const auto& target : asked) {
    SCOPED_TRACE(target ? std::string(taskjournal::to_string(*target)) : "no state");
    SessionTask task = task_moved_to(SessionTaskState::Running);
    taskjournal::apply_task_update(
        task, SessionTaskUpdate{.state = target, .input_request = request("req_1")}, T2);
    SessionTask expected = expected_new_queued();
    expected.state = SessionTaskState::AwaitingInput;
    expected.input_request = request("req_1");
    expected.started_at = T1;
    expected.updated_at = T2;
    EXPECT_EQ(task, expected);
  }
}

TEST(ApplyTaskUpdate, InputRequestFromQueuedStampsStartedAt) {
  SessionTask task = task_in();
  taskjournal::apply_task_update(
      task, SessionTaskUpdate{.state = SessionTaskState::Queued, .input_request = request("r")},
      T1);
  SessionTask expected = expected_new_queued();
  expected.state = SessionTaskState::AwaitingInput;
  expected.input_request = request("r");
  expected.started_at = T1;
  expected.updated_at = T1;
  EXPECT_EQ(task, expected);
}

TEST(ApplyTaskUpdate, InputRequestKeepsExpectedJson) {
  SessionTask task = task_in(SessionTaskState::Running);
  TaskInputRequest req{.id = "req_9", .prompt = "Pick one", .expected = R"({"type":"string"})"};
  taskjournal::apply_task_update(task, SessionTaskUpdate{.input_request = req}, T1);
  EXPECT_EQ(task.input_request, req);
}

TEST(ApplyTaskUpdate, InputRequestReplacesPendingRequest) {
  SessionTask task = task_in(SessionTaskState::Running);
  taskjournal::apply_task_update(task, SessionTaskUpdate{.input_request = request("req_1", "A?")},
                                 T1);
  taskjournal::apply_task_update(task, SessionTaskUpdate{.input_request = request("req_2", "B?")},
                                 T2);
  SessionTask expected = task_in(SessionTaskState::Running);
  expected.state = SessionTaskState::AwaitingInput;
  expected.input_request = request("req_2", "B?");
  expected.updated_at = T2;
  EXPECT_EQ(task, expected);
}

TEST(ApplyTaskUpdate, InputRequestWinsOverAskedRunningWhileAwaiting) {
  SessionTask task = task_in(SessionTaskState::Running);
  taskjournal::apply_task_update(task, SessionTaskUpdate{.input_request = request("req_1")}, T1);
  taskjournal::apply_task_update(
      task,
      SessionTaskUpdate{.state = SessionTaskState::Running, .input_request = request("req_2")}, T2);
  EXPECT_EQ(task.state, SessionTaskState::AwaitingInput);
  EXPECT_EQ(task.input_request, request("req_2"));
  EXPECT_EQ(task.updated_at, T2);
}

TEST(ApplyTaskUpdate, InputRequestIgnoredOnTerminalTask) {
  for (SessionTaskState terminal : kTerminalStates) {
    SCOPED_TRACE(taskjournal::to_string(terminal));
    SessionTask task = task_moved_to(terminal);
    taskjournal::apply_task_update(
        task, SessionTaskUpdate{.input_request = request("req_1"), .summary = "kept"}, T2);
    SessionTask expected = expected_new_queued();
    expected.state = terminal;
    expected.started_at = T1;
    expected.finished_at = T1;
    expected.summary = "kept";
    expected.updated_at = T2;
    EXPECT_EQ(task, expected);

    // Same terminal state asked explicitly: still ignored, the rest applies.
    taskjournal::apply_task_update(
        task,
        SessionTaskUpdate{.state = terminal, .input_request = request("req_2"), .summary = "2"},
        T3);
    expected.summary = "2";
    expected.updated_at = T3;
    EXPECT_EQ(task, expected);
  }
}

// ---------------------------------------------------------------------------------------------
// §3 rule 5: state change
// ---------------------------------------------------------------------------------------------

TEST(ApplyTaskUpdate, LeavingQueuedStampsStartedAt) {
  for (SessionTaskState target : {SessionTaskState::Running, SessionTaskState::AwaitingInput}) {
    SCOPED_TRACE(taskjournal::to_string(target));
    SessionTask task = task_in();
    taskjournal::apply_task_update(task, SessionTaskUpdate{.state = target}, T1);
    SessionTask expected = expected_new_queued();
    expected.state = target;
    expected.started_at = T1;
    expected.updated_at = T1;
    EXPECT_EQ(task, expected);
  }
}

TEST(ApplyTaskUpdate, QueuedDirectlyToTerminalStampsStartedAndFinished) {
  for (SessionTaskState target : kTerminalStates) {
    SCOPED_TRACE(taskjournal::to_string(target));
    SessionTask task = task_in();
    taskjournal::apply_task_update(task, SessionTaskUpdate{.state = target}, T1);
    SessionTask expected = expected_new_queued();
    expected.state = target;
    expected.started_at = T1;
    expected.finished_at = T1;
    expected.updated_at = T1;
    EXPECT_EQ(task, expected);
  }
}

TEST(ApplyTaskUpdate, StartedAtFirstValueWinsAfterRequeue) {
  SessionTask task = task_in();
  taskjournal::apply_task_update(task, SessionTaskUpdate{.state = SessionTaskState::Running}, T1);
  taskjournal::apply_task_update(task, SessionTaskUpdate{.state = SessionTaskState::Queued}, T2);
  EXPECT_EQ(task.state, SessionTaskState::Queued);
  EXPECT_EQ(task.started_at, T1);
  taskjournal::apply_task_update(task, SessionTaskUpdate{.state = SessionTaskState::Running}, T3);
  EXPECT_EQ(task.started_at, T1);
  taskjournal::apply_task_update(task, SessionTaskUpdate{.state = SessionTaskState::Succeeded}, T4);
  SessionTask expected = expected_new_queued();
  expected.state = SessionTaskState::Succeeded;
  expected.started_at = T1;
  expected.finished_at = T4;
  expected.updated_at = T4;
  EXPECT_EQ(task, expected);
}

TEST(ApplyTaskUpdate, StartedAtOfTaskCreatedRunningSurvivesRequeue) {
  SessionTask task = task_in(SessionTaskState::Running);
  taskjournal::apply_task_update(task, SessionTaskUpdate{.state = SessionTaskState::Queued}, T1);
  taskjournal::apply_task_update(task, SessionTaskUpdate{.state = SessionTaskState::Running}, T2);
  EXPECT_EQ(task.started_at, T0);
}

TEST(ApplyTaskUpdate, QueuedToQueuedDoesNotStampStartedAt) {
  SessionTask task = task_in();
  taskjournal::apply_task_update(task, SessionTaskUpdate{.state = SessionTaskState::Queued}, T1);
  SessionTask expected = expected_new_queued();
  expected.updated_at = T1;
  EXPECT_EQ(task, expected);
}

TEST(ApplyTaskUpdate, EnteringTerminalStateStampsFinishedAt) {
  for (SessionTaskState from : {SessionTaskState::Running, SessionTaskState::AwaitingInput}) {
    for (SessionTaskState target : kTerminalStates) {
      SCOPED_TRACE(trace(from, target));
      SessionTask task = task_moved_to(from);
      taskjournal::apply_task_update(task, SessionTaskUpdate{.state = target}, T2);
      SessionTask expected = expected_new_queued();
      expected.state = target;
      expected.started_at = T1;
      expected.finished_at = T2;
      expected.updated_at = T2;
      EXPECT_EQ(task, expected);
    }
  }
}

TEST(ApplyTaskUpdate, AnyNonTerminalStateMayMoveToAnyState) {
  for (SessionTaskState from : kNonTerminalStates) {
    for (SessionTaskState target : kAllStates) {
      SCOPED_TRACE(trace(from, target));
      SessionTask task = task_in(from);
      taskjournal::apply_task_update(task, SessionTaskUpdate{.state = target}, T1);
      EXPECT_EQ(task.state, target);
      EXPECT_EQ(task.updated_at, T1);
    }
  }
}

TEST(ApplyTaskUpdate, LeavingAwaitingInputClearsRequest) {
  for (SessionTaskState target :
       {SessionTaskState::Queued, SessionTaskState::Running, SessionTaskState::Succeeded,
        SessionTaskState::Failed, SessionTaskState::Canceled}) {
    SCOPED_TRACE(taskjournal::to_string(target));
    SessionTask task = task_in(SessionTaskState::Running);  // started_at = T0
    taskjournal::apply_task_update(task, SessionTaskUpdate{.input_request = request("req_1")}, T1);
    ASSERT_EQ(task.input_request, request("req_1"));
    taskjournal::apply_task_update(task, SessionTaskUpdate{.state = target}, T2);
    SessionTask expected = task_in(SessionTaskState::Running);
    expected.state = target;
    if (taskjournal::is_terminal(target)) expected.finished_at = T2;
    expected.updated_at = T2;
    EXPECT_EQ(task, expected);
  }
}

TEST(ApplyTaskUpdate, RequestForCurrentStateKeepsPendingRequest) {
  SessionTask task = task_in(SessionTaskState::Running);
  taskjournal::apply_task_update(task, SessionTaskUpdate{.input_request = request("req_1")}, T1);
  taskjournal::apply_task_update(
      task, SessionTaskUpdate{.state = SessionTaskState::AwaitingInput, .state_detail = "waiting"},
      T2);
  SessionTask expected = task_in(SessionTaskState::Running);
  expected.state = SessionTaskState::AwaitingInput;
  expected.input_request = request("req_1");
  expected.state_detail = "waiting";
  expected.updated_at = T2;
  EXPECT_EQ(task, expected);
}

TEST(ApplyTaskUpdate, RequestForCurrentStateDoesNothingInStateStep) {
  SessionTask task = task_moved_to(SessionTaskState::Running);
  taskjournal::apply_task_update(task, SessionTaskUpdate{.state = SessionTaskState::Running}, T2);
  SessionTask expected = expected_new_queued();
  expected.state = SessionTaskState::Running;
  expected.started_at = T1;
  expected.updated_at = T2;
  EXPECT_EQ(task, expected);
}

TEST(ApplyTaskUpdate, EnteringAwaitingInputByStateAloneLeavesNoRequest) {
  SessionTask task = task_in(SessionTaskState::Running);
  taskjournal::apply_task_update(task, SessionTaskUpdate{.state = SessionTaskState::AwaitingInput},
                                 T1);
  SessionTask expected = task_in(SessionTaskState::Running);
  expected.state = SessionTaskState::AwaitingInput;
  expected.updated_at = T1;
  EXPECT_EQ(task, expected);
}

// ---------------------------------------------------------------------------------------------
// §3 rule 6: content
// ---------------------------------------------------------------------------------------------

TEST(ApplyTaskUpdate, ContentReplacesEachPresentField) {
  SessionTask task = task_in(SessionTaskState::Running);
  taskjournal::apply_task_update(
      task,
      SessionTaskUpdate{
          .state_detail = "step 1",
          .progress = TaskProgress{.current = 1, .total = 10, .unit = "files", .label = "copy"},
          .summary = "first",
          .result_path = "/a",
          .error = TaskError{.kind = "timeout", .message = "slow"},
          .worker_id = "w1",
          .heartbeat_at = T1},
      T1);
  taskjournal::apply_task_update(
      task,
      SessionTaskUpdate{.state_detail = "step 2",
                        .progress = TaskProgress{.current = 2},
                        .summary = "second",
                        .result_path = "/b",
                        .error = TaskError{.kind = "orphaned", .message = "lost"},
                        .worker_id = "w2",
                        .heartbeat_at = T2},
      T2);
  SessionTask expected = task_in(SessionTaskState::Running);
  expected.state_detail = "step 2";
  expected.progress = TaskProgress{.current = 2};  // replaced whole, not merged
  expected.summary = "second";
  expected.result_path = "/b";
  expected.error = TaskError{.kind = "orphaned", .message = "lost"};
  expected.worker_id = "w2";
  expected.heartbeat_at = T2;
  expected.updated_at = T2;
  EXPECT_EQ(task, expected);
}

TEST(ApplyTaskUpdate, AbsentContentFieldsAreUnchanged) {
  SessionTask task = task_in(SessionTaskState::Running);
  taskjournal::apply_task_update(
      task,
      SessionTaskUpdate{.state_detail = "d",
                        .progress = TaskProgress{.current = 3, .total = 4},
                        .summary = "s",
                        .result_path = "/p",
                        .artifacts = std::vector<TaskArtifact>{{.name = "n", .type = "file"}},
                        .error = TaskError{.kind = "k", .message = "m"},
                        .links = TaskLinks{.child_session_id = "c", .resource_ids = {"r"}},
                        .worker_id = "w",
                        .heartbeat_at = T1},
      T1);
  SessionTask expected = task;
  taskjournal::apply_task_update(task, SessionTaskUpdate{.state_detail = "d2"}, T2);
  expected.state_detail = "d2";
  expected.updated_at = T2;
  EXPECT_EQ(task, expected);
}

TEST(ApplyTaskUpdate, ProgressKeepsFullUint64Range) {
  SessionTask task = task_in(SessionTaskState::Running);
  const TaskProgress big{.current = UINT64_MAX - 1, .total = UINT64_MAX};
  taskjournal::apply_task_update(task, SessionTaskUpdate{.progress = big}, T1);
  EXPECT_EQ(task.progress, big);
}

TEST(ApplyTaskUpdate, ArtifactsReplaceWholeList) {
  SessionTask task = task_in(SessionTaskState::Running);
  const TaskArtifact a{.name = "a", .type = "file", .path = "/a"};
  const TaskArtifact b{.name = "b", .type = "url", .url = "https://b"};
  const TaskArtifact c{.name = "c", .type = "file"};
  taskjournal::apply_task_update(task, SessionTaskUpdate{.artifacts = std::vector{a, b}}, T1);
  EXPECT_EQ(task.artifacts, (std::vector{a, b}));
  taskjournal::apply_task_update(task, SessionTaskUpdate{.artifacts = std::vector{c}}, T2);
  EXPECT_EQ(task.artifacts, (std::vector{c}));
}

TEST(ApplyTaskUpdate, EmptyArtifactsListClears) {
  SessionTask task = task_in(SessionTaskState::Running);
  const TaskArtifact a{.name = "a", .type = "file"};
  taskjournal::apply_task_update(task, SessionTaskUpdate{.artifacts = std::vector{a}}, T1);
  taskjournal::apply_task_update(task, SessionTaskUpdate{.artifacts = std::vector<TaskArtifact>{}},
                                 T2);
  EXPECT_EQ(task.artifacts, std::vector<TaskArtifact>{});
  SessionTask expected = task_in(SessionTaskState::Running);
  expected.updated_at = T2;
  EXPECT_EQ(task, expected);
}

TEST(ApplyTaskUpdate, AppendArtifactPushesOntoExistingList) {
  SessionTask task = task_in(SessionTaskState::Running);
  const TaskArtifact a{.name = "a", .type = "file"};
  const TaskArtifact b{.name = "b", .type = "file"};
  taskjournal::apply_task_update(task, SessionTaskUpdate{.append_artifact = a}, T1);
  taskjournal::apply_task_update(task, SessionTaskUpdate{.append_artifact = b}, T2);
  taskjournal::apply_task_update(task, SessionTaskUpdate{.append_artifact = a}, T3);
  EXPECT_EQ(task.artifacts, (std::vector{a, b, a}));
}

TEST(ApplyTaskUpdate, AppendArtifactAppliesAfterReplace) {
  SessionTask task = task_in(SessionTaskState::Running);
  const TaskArtifact a{.name = "a", .type = "file"};
  const TaskArtifact b{.name = "b", .type = "file"};
  const TaskArtifact c{.name = "c", .type = "file"};
  taskjournal::apply_task_update(task, SessionTaskUpdate{.artifacts = std::vector{a}}, T1);
  taskjournal::apply_task_update(
      task, SessionTaskUpdate{.artifacts = std::vector{b}, .append_artifact = c}, T2);
  EXPECT_EQ(task.artifacts, (std::vector{b, c}));
  taskjournal::apply_task_update(
      task, SessionTaskUpdate{.artifacts = std::vector<TaskArtifact>{}, .append_artifact = a}, T3);
  EXPECT_EQ(task.artifacts, (std::vector{a}));
}

TEST(ApplyTaskUpdate, LinksChildAndRemoteReplaceWhenPresentAndStayWhenAbsent) {
  SessionTask task = task_in(SessionTaskState::Running);
  taskjournal::apply_task_update(
      task, SessionTaskUpdate{.links = TaskLinks{.child_session_id = "c1", .remote_task_id = "r1"}},
      T1);
  EXPECT_EQ(task.links, (TaskLinks{.child_session_id = "c1", .remote_task_id = "r1"}));
  taskjournal::apply_task_update(task,
                                 SessionTaskUpdate{.links = TaskLinks{.remote_task_id = "r2"}}, T2);
  EXPECT_EQ(task.links, (TaskLinks{.child_session_id = "c1", .remote_task_id = "r2"}));
  taskjournal::apply_task_update(
      task, SessionTaskUpdate{.links = TaskLinks{.child_session_id = "c3"}}, T3);
  EXPECT_EQ(task.links, (TaskLinks{.child_session_id = "c3", .remote_task_id = "r2"}));
  taskjournal::apply_task_update(task, SessionTaskUpdate{.links = TaskLinks{}}, T4);
  EXPECT_EQ(task.links, (TaskLinks{.child_session_id = "c3", .remote_task_id = "r2"}));
  EXPECT_EQ(task.updated_at, T4);
}

TEST(ApplyTaskUpdate, LinksResourceIdsAppendedInOrderUnlessPresent) {
  CreateSessionTask input = input_in(SessionTaskState::Running);
  input.links.resource_ids = {"res_1", "res_2"};
  SessionTask task = taskjournal::new_session_task(input, T0);
  taskjournal::apply_task_update(
      task, SessionTaskUpdate{.links = TaskLinks{.resource_ids = {"res_3", "res_1", "res_0"}}}, T1);
  EXPECT_EQ(task.links.resource_ids,
            (std::vector<std::string>{"res_1", "res_2", "res_3", "res_0"}));
  EXPECT_EQ(task.links.child_session_id, std::nullopt);
  EXPECT_EQ(task.links.remote_task_id, std::nullopt);
}

TEST(ApplyTaskUpdate, LinksDuplicatesWithinIncomingListAppendedOnce) {
  SessionTask task = task_in(SessionTaskState::Running);
  taskjournal::apply_task_update(
      task, SessionTaskUpdate{.links = TaskLinks{.resource_ids = {"b", "a", "b", "c", "a"}}}, T1);
  EXPECT_EQ(task.links.resource_ids, (std::vector<std::string>{"b", "a", "c"}));
  taskjournal::apply_task_update(
      task, SessionTaskUpdate{.links = TaskLinks{.resource_ids = {"c", "d", "d"}}}, T2);
  EXPECT_EQ(task.links.resource_ids, (std::vector<std::string>{"b", "a", "c", "d"}));
}

// ---------------------------------------------------------------------------------------------
// §3 rule 7 and immutable fields
// ---------------------------------------------------------------------------------------------

TEST(ApplyTaskUpdate, EmptyUpdateStampsUpdatedAtOnly) {
  SessionTask task = task_in();
  taskjournal::apply_task_update(task, SessionTaskUpdate{}, T1);
  SessionTask expected = expected_new_queued();
  expected.updated_at = T1;
  EXPECT_EQ(task, expected);
}

TEST(ApplyTaskUpdate, EmptyUpdateOnTerminalTaskStampsUpdatedAt) {
  SessionTask task = task_moved_to(SessionTaskState::Failed);
  taskjournal::apply_task_update(task, SessionTaskUpdate{}, T3);
  SessionTask expected = expected_new_queued();
  expected.state = SessionTaskState::Failed;
  expected.started_at = T1;
  expected.finished_at = T1;
  expected.updated_at = T3;
  EXPECT_EQ(task, expected);
}

TEST(ApplyTaskUpdate, ImmutableFieldsNeverChange) {
  CreateSessionTask input = input_in(SessionTaskState::Running);
  input.wake_policy = TaskWakePolicy::OnTerminal;
  SessionTask task = taskjournal::new_session_task(input, T0);
  task.cancel_requested_at = T1;
  for (const SessionTaskUpdate& update :
       {everything_update(SessionTaskState::Running),
        SessionTaskUpdate{.input_request = request("r")},
        everything_update(SessionTaskState::Succeeded), SessionTaskUpdate{}}) {
    taskjournal::apply_task_update(task, update, T2);
    EXPECT_EQ(task.id, "task_1");
    EXPECT_EQ(task.session_id, "sess_1");
    EXPECT_EQ(task.kind, "subagent");
    EXPECT_EQ(task.display_name, "Worker");
    EXPECT_EQ(task.spec, R"({"q":1})");
    EXPECT_EQ(task.wake_policy, TaskWakePolicy::OnTerminal);
    EXPECT_EQ(task.created_at, T0);
    EXPECT_EQ(task.cancel_requested_at, T1);
  }
}

TEST(ApplyTaskUpdate, FullLifecycleGivesExactRecord) {
  SessionTask task = task_in();
  taskjournal::apply_task_update(
      task,
      SessionTaskUpdate{.state = SessionTaskState::Running,
                        .state_detail = "booting",
                        .links = TaskLinks{.child_session_id = "child", .resource_ids = {"r1"}},
                        .worker_id = "w1",
                        .heartbeat_at = T1},
      T1);
  taskjournal::apply_task_update(
      task,
      SessionTaskUpdate{.progress = TaskProgress{.current = 5, .total = 10, .unit = "steps"},
                        .input_request = TaskInputRequest{.id = "q1", .prompt = "Go on?"}},
      T2);
  taskjournal::apply_task_update(
      task,
      SessionTaskUpdate{
          .state = SessionTaskState::Running,
          .append_artifact = TaskArtifact{.name = "log", .type = "file", .path = "/l"},
          .links = TaskLinks{.resource_ids = {"r2", "r1"}},
          .expected_attempt = 1},
      T3);
  taskjournal::apply_task_update(
      task,
      SessionTaskUpdate{
          .state = SessionTaskState::Succeeded, .summary = "done", .result_path = "/out"},
      T4);
  SessionTask expected = expected_new_queued();
  expected.state = SessionTaskState::Succeeded;
  expected.state_detail = "booting";
  expected.progress = TaskProgress{.current = 5, .total = 10, .unit = "steps"};
  expected.summary = "done";
  expected.result_path = "/out";
  expected.artifacts = {TaskArtifact{.name = "log", .type = "file", .path = "/l"}};
  expected.worker_id = "w1";
  expected.heartbeat_at = T1;
  expected.links = TaskLinks{.child_session_id = "child", .resource_ids = {"r1", "r2"}};
  expected.started_at = T1;
  expected.finished_at = T4;
  expected.updated_at = T4;
  EXPECT_EQ(task, expected);
}

// ---------------------------------------------------------------------------------------------
// task_message_text
// ---------------------------------------------------------------------------------------------

TEST(TaskMessageText, JoinsTextPartsWithNewline) {
  EXPECT_EQ(taskjournal::task_message_text({TextPart{"first"}, TextPart{"second"}}),
            "first\nsecond");
}

TEST(TaskMessageText, SkipsDataParts) {
  EXPECT_EQ(taskjournal::task_message_text(
                {DataPart{R"({"a":1})"}, TextPart{"one"}, DataPart{"[]"}, TextPart{"two"}}),
            "one\ntwo");
}

TEST(TaskMessageText, SingleTextIsVerbatim) {
  EXPECT_EQ(taskjournal::task_message_text({TextPart{"  line 1\nline 2  "}}), "  line 1\nline 2  ");
}

TEST(TaskMessageText, EmptyTextPartsStillJoined) {
  EXPECT_EQ(taskjournal::task_message_text({TextPart{"a"}, TextPart{""}, TextPart{"b"}}), "a\n\nb");
}

TEST(TaskMessageText, OnlyDataPartsGiveEmptyText) {
  EXPECT_EQ(taskjournal::task_message_text({DataPart{R"({"a":1})"}}), "");
}

TEST(TaskMessageText, NoPartsGiveEmptyText) {
  EXPECT_EQ(taskjournal::task_message_text(std::vector<TaskMessagePart>{}), "");
}

// ---------------------------------------------------------------------------------------------
// Names of the enums
// ---------------------------------------------------------------------------------------------

TEST(SessionTaskStateNames, ToStringGivesSnakeCase) {
  EXPECT_EQ(taskjournal::to_string(SessionTaskState::Queued), "queued");
  EXPECT_EQ(taskjournal::to_string(SessionTaskState::Running), "running");
  EXPECT_EQ(taskjournal::to_string(SessionTaskState::AwaitingInput), "awaiting_input");
  EXPECT_EQ(taskjournal::to_string(SessionTaskState::Succeeded), "succeeded");
  EXPECT_EQ(taskjournal::to_string(SessionTaskState::Failed), "failed");
  EXPECT_EQ(taskjournal::to_string(SessionTaskState::Canceled), "canceled");
}

TEST(SessionTaskStateNames, ParseIsInverseOfToString) {
  for (SessionTaskState state : kAllStates) {
    EXPECT_EQ(taskjournal::parse_session_task_state(taskjournal::to_string(state)), state);
  }
}

TEST(SessionTaskStateNames, ParseIsStrict) {
  for (const char* text :
       {"Running", "RUNNING", " running", "running ", "cancelled", "", "Queued", "awaiting-input",
        "awaitingInput", "AwaitingInput", "succeed", "done", "canceled\n"}) {
    SCOPED_TRACE(text);
    EXPECT_EQ(taskjournal::parse_session_task_state(text), std::nullopt);
  }
  EXPECT_EQ(taskjournal::parse_session_task_state(std::string_view("running\0", 8)), std::nullopt);
}

TEST(SessionTaskStateNames, IsTerminalOnlyForSucceededFailedCanceled) {
  EXPECT_FALSE(taskjournal::is_terminal(SessionTaskState::Queued));
  EXPECT_FALSE(taskjournal::is_terminal(SessionTaskState::Running));
  EXPECT_FALSE(taskjournal::is_terminal(SessionTaskState::AwaitingInput));
  EXPECT_TRUE(taskjournal::is_terminal(SessionTaskState::Succeeded));
  EXPECT_TRUE(taskjournal::is_terminal(SessionTaskState::Failed));
  EXPECT_TRUE(taskjournal::is_terminal(SessionTaskState::Canceled));
}

TEST(TaskWakePolicyNames, ToStringAndStrictParse) {
  EXPECT_EQ(taskjournal::to_string(TaskWakePolicy::Silent), "silent");
  EXPECT_EQ(taskjournal::to_string(TaskWakePolicy::OnTerminal), "on_terminal");
  EXPECT_EQ(taskjournal::to_string(TaskWakePolicy::OnActivity), "on_activity");
  for (TaskWakePolicy p :
       {TaskWakePolicy::Silent, TaskWakePolicy::OnTerminal, TaskWakePolicy::OnActivity}) {
    EXPECT_EQ(taskjournal::parse_task_wake_policy(taskjournal::to_string(p)), p);
  }
  for (const char* text : {"Silent", "onTerminal", "on-activity", "", "on_terminal "}) {
    SCOPED_TRACE(text);
    EXPECT_EQ(taskjournal::parse_task_wake_policy(text), std::nullopt);
  }
}

TEST(TaskMessageDirectionNames, ToStringAndStrictParse) {
  EXPECT_EQ(taskjournal::to_string(TaskMessageDirection::Inbound), "inbound");
  EXPECT_EQ(taskjournal::to_string(TaskMessageDirection::Outbound), "outbound");
  EXPECT_EQ(taskjournal::parse_task_message_direction("inbound"), TaskMessageDirection::Inbound);
  EXPECT_EQ(taskjournal::parse_task_message_direction("outbound"), TaskMessageDirection::Outbound);
  for (const char* text : {"Inbound", "in", "", "OUTBOUND"}) {
    SCOPED_TRACE(text);
    EXPECT_EQ(taskjournal::parse_task_message_direction(text), std::nullopt);
  }
}

TEST(TaskTransitionNames, ToString) {
  EXPECT_EQ(taskjournal::to_string(TaskTransition::Terminal), "terminal");
  EXPECT_EQ(taskjournal::to_string(TaskTransition::AwaitingInput), "awaiting_input");
  EXPECT_EQ(taskjournal::to_string(TaskTransition::Message), "message");
}

TEST(NewTaskMessage, TextFactoriesBuildOneTextPart) {
  const auto in = taskjournal::NewTaskMessage::inbound_text("hi");
  EXPECT_EQ(in, (taskjournal::NewTaskMessage{.direction = TaskMessageDirection::Inbound,
                                             .content = {TextPart{"hi"}}}));
  const auto out = taskjournal::NewTaskMessage::outbound_text("yo");
  EXPECT_EQ(out, (taskjournal::NewTaskMessage{.direction = TaskMessageDirection::Outbound,
                                              .content = {TextPart{"yo"}}}));
}

}  // namespace

// Regression (issue 10, defect 3): new_session_task without an id returned a task whose id was
// empty; everruns' new_session_task generates task_<uuidv7>.
TEST(NewSessionTask, WithoutIdGetsAGeneratedTaskUuidv7) {
  const SessionTask a = taskjournal::new_session_task({.session_id = "s", .kind = "k"}, T0);
  const SessionTask b = taskjournal::new_session_task({.session_id = "s", .kind = "k"}, T0);
  for (const auto& t : {a, b}) {
    ASSERT_EQ(t.id.size(), 5u + 32u) << t.id;
    EXPECT_EQ(t.id.substr(0, 5), "task_");
    EXPECT_EQ(t.id.find_first_not_of("0123456789abcdef", 5), std::string::npos) << t.id;
    EXPECT_EQ(t.id[5 + 12], '7') << t.id;  // version 7
  }
  EXPECT_LT(a.id, b.id);
  EXPECT_EQ(taskjournal::new_session_task({.session_id = "s", .id = "mine", .kind = "k"}, T0).id,
            "mine");
}

// Regression (issue 10, defect 7): a copy-assignment kept the buffer of the value it replaced,
// so a 5-byte state_detail that overwrote a 20 MB one held 20 MB in the views.
TEST(ApplyTaskUpdate, ReplacedContentDoesNotKeepTheOldValuesCapacity) {
  SessionTask task = taskjournal::new_session_task({.session_id = "s", .id = "t", .kind = "k"}, T0);
  const std::string big(20 * 1024 * 1024, 'x');
  taskjournal::apply_task_update(
      task,
      {.state_detail = big,
       .summary = big,
       .result_path = big,
       .artifacts = std::vector<TaskArtifact>(1000, TaskArtifact{.name = "a", .type = "t"}),
       .error = TaskError{.kind = "k", .message = big},
       .worker_id = big},
      T1);
  taskjournal::apply_task_update(task,
                                 {.state_detail = "short",
                                  .summary = "s",
                                  .result_path = "r",
                                  .artifacts = std::vector<TaskArtifact>{},
                                  .error = TaskError{.kind = "k", .message = "m"},
                                  .worker_id = "w"},
                                 T2);
  EXPECT_EQ(task.state_detail, "short");
  EXPECT_LT(task.state_detail->capacity(), 1024u);
  EXPECT_LT(task.summary->capacity(), 1024u);
  EXPECT_LT(task.result_path->capacity(), 1024u);
  EXPECT_LT(task.error->message.capacity(), 1024u);
  EXPECT_LT(task.worker_id->capacity(), 1024u);
  EXPECT_EQ(task.artifacts.capacity(), 0u);
}
