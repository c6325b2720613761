// Acceptance tests of the notifications, transitions and wake-ups (CONTRACT §5), through the
// public API only.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/errors.hpp"
#include "support/journals.hpp"
#include "support/watchdog.hpp"
#include "taskjournal/taskjournal.hpp"
#include "tests/support/fake_clock.hpp"

namespace {

using namespace std::chrono_literals;
using taskjournal::CreateSessionTask;
using taskjournal::DataPart;
using taskjournal::Error;
using taskjournal::ErrorCode;
using taskjournal::NewTaskMessage;
using taskjournal::Options;
using taskjournal::Registry;
using taskjournal::RegistryEvent;
using taskjournal::SessionTask;
using taskjournal::SessionTaskState;
using taskjournal::SessionTaskUpdate;
using taskjournal::Subscription;
using taskjournal::TaskInputRequest;
using taskjournal::TaskMessage;
using taskjournal::TaskMessageDirection;
using taskjournal::TaskMessagePart;
using taskjournal::TaskTransition;
using taskjournal::TaskWakePolicy;
using taskjournal::TextPart;
using taskjournal::WakeNotice;
using taskjournal::testing::error_code;
using taskjournal::testing::FakeClock;
using taskjournal::testing::fresh_journal;
using taskjournal::testing::journal_at;
using taskjournal::testing::open_reader;
using taskjournal::testing::open_registry;
using taskjournal::testing::within_seconds;
using ::testing::ElementsAre;

CreateSessionTask input(std::string id, TaskWakePolicy policy = TaskWakePolicy::Silent,
                        SessionTaskState state = SessionTaskState::Queued) {
  return CreateSessionTask{.session_id = "sess_1",
                           .id = std::move(id),
                           .kind = "subagent",
                           .display_name = "Build docs",
                           .spec = "{}",
                           .state = state,
                           .wake_policy = policy};
}

TaskInputRequest request(std::string id, std::string prompt = "Which branch?") {
  return TaskInputRequest{.id = std::move(id), .prompt = std::move(prompt)};
}

/// Records everything the three signals deliver.
struct Recorder {
  std::vector<RegistryEvent> events;
  std::vector<std::pair<TaskTransition, SessionTask>> transitions;
  std::vector<WakeNotice> wakes;
  Subscription event_sub, transition_sub, wake_sub;

  explicit Recorder(Registry& reg)
      : event_sub(reg.on_event([this](const RegistryEvent& e) { events.push_back(e); })),
        transition_sub(reg.on_transition([this](TaskTransition t, const SessionTask& task) {
          transitions.emplace_back(t, task);
        })),
        wake_sub(reg.on_wake([this](const WakeNotice& w) { wakes.push_back(w); })) {}

  void clear() {
    events.clear();
    transitions.clear();
    wakes.clear();
  }
  bool silent() const { return events.empty() && transitions.empty() && wakes.empty(); }
  std::vector<TaskTransition> transition_kinds() const {
    std::vector<TaskTransition> out;
    for (const auto& [t, task] : transitions) out.push_back(t);
    return out;
  }
  std::vector<std::string> event_types() const {
    std::vector<std::string> out;
    for (const auto& e : events) out.push_back(e.type);
    return out;
  }
  std::vector<std::string> wake_texts() const {
    std::vector<std::string> out;
    for (const auto& w : wakes) out.push_back(w.text);
    return out;
  }
};

struct Env {
  FakeClock clock;
  Registry reg;
  Recorder rec;
  Env() : reg(open_registry(fresh_journal(), Options{.clock = clock.fn()})), rec(reg) {}
};

// ---------------------------------------------------------------------------------------------
// on_event
// ---------------------------------------------------------------------------------------------

TEST(OnEvent, CreateSendsTaskCreatedWithSnapshotAndSeq) {
  Env env;
  const SessionTask task = env.reg.create(input("task_1"));
  ASSERT_EQ(env.rec.events.size(), 1u);
  EXPECT_EQ(env.rec.events[0], (RegistryEvent{.type = "task.created",
                                              .seq = env.reg.last_seq(),
                                              .session_id = "sess_1",
                                              .task_id = "task_1",
                                              .task = task}));
  EXPECT_EQ(env.rec.events[0].seq, env.reg.history("sess_1", "task_1").at(0).seq);
}

TEST(OnEvent, GeneratedIdCreateSendsTaskCreated) {
  Env env;
  CreateSessionTask in = input("x");
  in.id.reset();
  const SessionTask task = env.reg.create(in);
  ASSERT_EQ(env.rec.events.size(), 1u);
  EXPECT_EQ(env.rec.events[0].type, "task.created");
  EXPECT_EQ(env.rec.events[0].task_id, task.id);
  EXPECT_EQ(env.rec.events[0].task, task);
}

TEST(OnEvent, IdempotentCreateSendsNothing) {
  Env env;
  env.reg.create(input("task_1"));
  env.rec.clear();
  env.reg.create(input("task_1"));
  EXPECT_TRUE(env.rec.silent());
}

TEST(OnEvent, UpdateSendsTaskUpdatedWithSnapshotAndSeq) {
  Env env;
  env.reg.create(input("task_1"));
  env.clock.advance(1s);
  env.rec.clear();
  const auto task =
      env.reg.update("sess_1", "task_1", SessionTaskUpdate{.state = SessionTaskState::Running});
  ASSERT_TRUE(task);
  ASSERT_EQ(env.rec.events.size(), 1u);
  EXPECT_EQ(env.rec.events[0], (RegistryEvent{.type = "task.updated",
                                              .seq = env.reg.last_seq(),
                                              .session_id = "sess_1",
                                              .task_id = "task_1",
                                              .task = *task}));
}

TEST(OnEvent, FencedOrDroppedUpdateStillSendsTaskUpdated) {
  Env env;
  const SessionTask created = env.reg.create(input("task_1"));
  env.clock.advance(1s);
  env.rec.clear();
  env.reg.update("sess_1", "task_1",
                 SessionTaskUpdate{.state = SessionTaskState::Running, .expected_attempt = 4});
  ASSERT_EQ(env.rec.events.size(), 1u);
  EXPECT_EQ(env.rec.events[0], (RegistryEvent{.type = "task.updated",
                                              .seq = env.reg.last_seq(),
                                              .session_id = "sess_1",
                                              .task_id = "task_1",
                                              .task = created}));

  const auto done =
      env.reg.update("sess_1", "task_1", SessionTaskUpdate{.state = SessionTaskState::Failed});
  env.rec.clear();
  env.clock.advance(1s);
  env.reg.update("sess_1", "task_1", SessionTaskUpdate{.state = SessionTaskState::Running});
  ASSERT_EQ(env.rec.events.size(), 1u);
  EXPECT_EQ(env.rec.events[0], (RegistryEvent{.type = "task.updated",
                                              .seq = env.reg.last_seq(),
                                              .session_id = "sess_1",
                                              .task_id = "task_1",
                                              .task = done}));
  EXPECT_TRUE(env.rec.transitions.empty());
}

TEST(OnEvent, MissingOrForeignUpdateSendsNothing) {
  Env env;
  env.reg.create(input("task_1"));
  env.rec.clear();
  env.reg.update("sess_1", "missing", SessionTaskUpdate{.state = SessionTaskState::Failed});
  env.reg.update("sess_2", "task_1", SessionTaskUpdate{.state = SessionTaskState::Failed});
  EXPECT_TRUE(env.rec.silent());
}

TEST(OnEvent, FirstCancelRequestSendsTaskUpdatedRepeatedSendsNothing) {
  Env env;
  env.reg.create(input("task_1"));
  env.clock.advance(1s);
  env.rec.clear();
  const auto task = env.reg.request_cancel("sess_1", "task_1");
  ASSERT_TRUE(task);
  ASSERT_EQ(env.rec.events.size(), 1u);
  EXPECT_EQ(env.rec.events[0], (RegistryEvent{.type = "task.updated",
                                              .seq = env.reg.last_seq(),
                                              .session_id = "sess_1",
                                              .task_id = "task_1",
                                              .task = *task}));
  EXPECT_EQ(env.rec.events[0].task->cancel_requested_at, env.clock.now());
  env.rec.clear();
  env.clock.advance(1s);
  env.reg.request_cancel("sess_1", "task_1");
  EXPECT_TRUE(env.rec.silent());
  env.reg.request_cancel("sess_1", "missing");
  env.reg.request_cancel("sess_2", "task_1");
  EXPECT_TRUE(env.rec.silent());
}

TEST(OnEvent, InboundMessageSendsTaskMessageSent) {
  Env env;
  env.reg.create(input("task_1"));
  env.rec.clear();
  const TaskMessage m =
      env.reg.record_message("sess_1", "task_1", NewTaskMessage::inbound_text("hello task"));
  ASSERT_EQ(env.rec.events.size(), 1u);
  const RegistryEvent& e = env.rec.events[0];
  EXPECT_EQ(e.type, "task.message.sent");
  EXPECT_EQ(e.seq, env.reg.last_seq());
  EXPECT_EQ(e.session_id, "sess_1");
  EXPECT_EQ(e.task_id, "task_1");
  EXPECT_EQ(e.message, m);
  EXPECT_TRUE(env.rec.transitions.empty());
  EXPECT_TRUE(env.rec.wakes.empty());
}

TEST(OnEvent, OutboundMessageSendsTaskMessageReceived) {
  Env env;
  env.reg.create(input("task_1"));
  env.rec.clear();
  const TaskMessage m =
      env.reg.record_message("sess_1", "task_1", NewTaskMessage::outbound_text("hello session"));
  ASSERT_EQ(env.rec.events.size(), 1u);
  const RegistryEvent& e = env.rec.events[0];
  EXPECT_EQ(e.type, "task.message.received");
  EXPECT_EQ(e.seq, env.reg.last_seq());
  EXPECT_EQ(e.session_id, "sess_1");
  EXPECT_EQ(e.task_id, "task_1");
  EXPECT_EQ(e.message, m);
}

TEST(OnEvent, InboundAnswerSendsMessageSentThenTaskUpdatedWithSameSeq) {
  Env env;
  env.reg.create(input("task_1", TaskWakePolicy::OnActivity));
  env.clock.advance(1s);
  env.reg.update("sess_1", "task_1", SessionTaskUpdate{.input_request = request("req_1")});
  env.clock.advance(1s);
  env.rec.clear();
  NewTaskMessage answer = NewTaskMessage::inbound_text("main");
  answer.in_reply_to = "req_1";
  const TaskMessage m = env.reg.record_message("sess_1", "task_1", answer);
  const auto task = env.reg.get("sess_1", "task_1");
  ASSERT_TRUE(task);
  ASSERT_EQ(task->state, SessionTaskState::Running);
  ASSERT_THAT(env.rec.event_types(), ElementsAre("task.message.sent", "task.updated"));
  EXPECT_EQ(env.rec.events[0].message, m);
  EXPECT_EQ(env.rec.events[0].seq, env.reg.last_seq());
  EXPECT_EQ(env.rec.events[1], (RegistryEvent{.type = "task.updated",
                                              .seq = env.reg.last_seq(),
                                              .session_id = "sess_1",
                                              .task_id = "task_1",
                                              .task = *task}));
  // Resuming is no transition and wakes nobody.
  EXPECT_TRUE(env.rec.transitions.empty());
  EXPECT_TRUE(env.rec.wakes.empty());
}

TEST(OnEvent, OutboundOrMismatchedReplySendsOnlyTheMessageEvent) {
  Env env;
  env.reg.create(input("task_1"));
  env.reg.update("sess_1", "task_1", SessionTaskUpdate{.input_request = request("req_1")});
  env.rec.clear();
  NewTaskMessage out = NewTaskMessage::outbound_text("x");
  out.in_reply_to = "req_1";
  env.reg.record_message("sess_1", "task_1", out);
  NewTaskMessage wrong = NewTaskMessage::inbound_text("y");
  wrong.in_reply_to = "req_2";
  env.reg.record_message("sess_1", "task_1", wrong);
  EXPECT_THAT(env.rec.event_types(), ElementsAre("task.message.received", "task.message.sent"));
}

TEST(OnEvent, RejectedCallsSendNoNotificationAtAll) {
  Env env;
  env.reg.create(input("task_1", TaskWakePolicy::OnActivity));
  CreateSessionTask foreign = input("task_1", TaskWakePolicy::OnActivity);
  foreign.session_id = "sess_2";
  env.rec.clear();

  EXPECT_EQ(error_code([&] { env.reg.create(foreign); }), ErrorCode::Conflict);
  NewTaskMessage stale = NewTaskMessage::outbound_text("zombie");
  stale.expected_attempt = 2;
  EXPECT_EQ(error_code([&] { env.reg.record_message("sess_1", "task_1", stale); }),
            ErrorCode::StaleAttempt);
  EXPECT_EQ(error_code([&] {
              env.reg.record_message("sess_1", "missing", NewTaskMessage::outbound_text("x"));
            }),
            ErrorCode::NotFound);
  EXPECT_EQ(error_code([&] {
              env.reg.record_message("sess_2", "task_1", NewTaskMessage::outbound_text("x"));
            }),
            ErrorCode::NotFound);
  CreateSessionTask bad = input("task_2", TaskWakePolicy::OnActivity);
  bad.kind = "";
  EXPECT_EQ(error_code([&] { env.reg.create(bad); }), ErrorCode::InvalidArgument);
  bad = input("task_2", TaskWakePolicy::OnActivity, SessionTaskState::Succeeded);
  bad.spec = "{";
  EXPECT_EQ(error_code([&] { env.reg.create(bad); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(error_code([&] {
              env.reg.update(
                  "sess_1", "task_1",
                  SessionTaskUpdate{.state = SessionTaskState::Succeeded, .summary = "\xff"});
            }),
            ErrorCode::InvalidArgument);
  EXPECT_EQ(error_code([&] {
              env.reg.update("sess_1", "task_1",
                             SessionTaskUpdate{.input_request = TaskInputRequest{
                                                   .id = "r", .prompt = "p", .expected = "nope"}});
            }),
            ErrorCode::InvalidArgument);
  EXPECT_EQ(error_code([&] {
              env.reg.record_message("sess_1", "task_1",
                                     NewTaskMessage{.direction = TaskMessageDirection::Outbound,
                                                    .content = {DataPart{"[1,"}}});
            }),
            ErrorCode::InvalidArgument);
  EXPECT_TRUE(env.rec.silent());
}

// ---------------------------------------------------------------------------------------------
// on_transition
// ---------------------------------------------------------------------------------------------

TEST(OnTransition, TerminalWhenUpdateMovesNonTerminalTaskToTerminalState) {
  for (SessionTaskState terminal :
       {SessionTaskState::Succeeded, SessionTaskState::Failed, SessionTaskState::Canceled}) {
    for (SessionTaskState from :
         {SessionTaskState::Queued, SessionTaskState::Running, SessionTaskState::AwaitingInput}) {
      SCOPED_TRACE(std::string(taskjournal::to_string(from)) + " -> " +
                   std::string(taskjournal::to_string(terminal)));
      Env env;
      env.reg.create(input("task_1", TaskWakePolicy::Silent, from));
      env.clock.advance(1s);
      env.rec.clear();
      const auto task = env.reg.update("sess_1", "task_1", SessionTaskUpdate{.state = terminal});
      ASSERT_EQ(env.rec.transitions.size(), 1u);
      EXPECT_EQ(env.rec.transitions[0].first, TaskTransition::Terminal);
      EXPECT_EQ(env.rec.transitions[0].second, *task);
    }
  }
}

TEST(OnTransition, NoTerminalForSameTerminalStateOnTerminalTask) {
  Env env;
  env.reg.create(input("task_1"));
  env.reg.update("sess_1", "task_1", SessionTaskUpdate{.state = SessionTaskState::Succeeded});
  env.rec.clear();
  env.reg.update("sess_1", "task_1",
                 SessionTaskUpdate{.state = SessionTaskState::Succeeded, .summary = "again"});
  EXPECT_TRUE(env.rec.transitions.empty());
}

TEST(OnTransition, NoTerminalForTaskCreatedTerminal) {
  Env env;
  env.reg.create(input("task_1", TaskWakePolicy::OnActivity, SessionTaskState::Failed));
  EXPECT_TRUE(env.rec.transitions.empty());
  EXPECT_TRUE(env.rec.wakes.empty());
  env.reg.update("sess_1", "task_1", SessionTaskUpdate{.state = SessionTaskState::Failed});
  EXPECT_TRUE(env.rec.transitions.empty());
  EXPECT_TRUE(env.rec.wakes.empty());
}

TEST(OnTransition, NoTerminalForDroppedOrFencedUpdate) {
  Env env;
  env.reg.create(input("task_1", TaskWakePolicy::OnActivity, SessionTaskState::Running));
  env.reg.update("sess_1", "task_1",
                 SessionTaskUpdate{.state = SessionTaskState::Succeeded, .expected_attempt = 2});
  EXPECT_TRUE(env.rec.transitions.empty());
  env.reg.update("sess_1", "task_1", SessionTaskUpdate{.state = SessionTaskState::Canceled});
  env.rec.clear();
  env.reg.update("sess_1", "task_1", SessionTaskUpdate{.state = SessionTaskState::Failed});
  EXPECT_TRUE(env.rec.transitions.empty());
  EXPECT_TRUE(env.rec.wakes.empty());
}

TEST(OnTransition, NoTransitionForNonTerminalStateChanges) {
  Env env;
  env.reg.create(input("task_1", TaskWakePolicy::OnActivity));
  env.reg.update("sess_1", "task_1", SessionTaskUpdate{.state = SessionTaskState::Running});
  env.reg.update("sess_1", "task_1", SessionTaskUpdate{.state = SessionTaskState::Queued});
  env.reg.update("sess_1", "task_1", SessionTaskUpdate{.state_detail = "x"});
  env.reg.request_cancel("sess_1", "task_1");
  EXPECT_TRUE(env.rec.transitions.empty());
  EXPECT_TRUE(env.rec.wakes.empty());
}

TEST(OnTransition, AwaitingInputWhenEnteringByState) {
  Env env;
  env.reg.create(input("task_1", TaskWakePolicy::Silent, SessionTaskState::Running));
  env.rec.clear();
  const auto task = env.reg.update("sess_1", "task_1",
                                   SessionTaskUpdate{.state = SessionTaskState::AwaitingInput});
  ASSERT_EQ(env.rec.transitions.size(), 1u);
  EXPECT_EQ(env.rec.transitions[0].first, TaskTransition::AwaitingInput);
  EXPECT_EQ(env.rec.transitions[0].second, *task);
}

TEST(OnTransition, AwaitingInputViaInputRequestWhateverStateWasAsked) {
  for (SessionTaskState asked :
       {SessionTaskState::Running, SessionTaskState::Succeeded, SessionTaskState::Queued}) {
    SCOPED_TRACE(taskjournal::to_string(asked));
    Env env;
    env.reg.create(input("task_1", TaskWakePolicy::Silent, SessionTaskState::Running));
    env.rec.clear();
    const auto task = env.reg.update(
        "sess_1", "task_1", SessionTaskUpdate{.state = asked, .input_request = request("req_1")});
    ASSERT_EQ(task->state, SessionTaskState::AwaitingInput);
    ASSERT_EQ(env.rec.transitions.size(), 1u);
    EXPECT_EQ(env.rec.transitions[0].first, TaskTransition::AwaitingInput);
    EXPECT_EQ(env.rec.transitions[0].second, *task);
  }
}

TEST(OnTransition, NoAwaitingInputForRepeatedRequestWhileWaiting) {
  Env env;
  env.reg.create(input("task_1", TaskWakePolicy::OnActivity, SessionTaskState::Running));
  env.reg.update("sess_1", "task_1", SessionTaskUpdate{.input_request = request("req_1")});
  env.rec.clear();
  env.reg.update("sess_1", "task_1", SessionTaskUpdate{.input_request = request("req_2")});
  env.reg.update("sess_1", "task_1", SessionTaskUpdate{.state = SessionTaskState::AwaitingInput});
  EXPECT_TRUE(env.rec.transitions.empty());
  EXPECT_TRUE(env.rec.wakes.empty());
  EXPECT_EQ(env.reg.get("sess_1", "task_1")->input_request, request("req_2"));
}

TEST(OnTransition, AwaitingInputAgainAfterResume) {
  Env env;
  env.reg.create(input("task_1", TaskWakePolicy::Silent, SessionTaskState::Running));
  env.reg.update("sess_1", "task_1", SessionTaskUpdate{.input_request = request("req_1")});
  NewTaskMessage answer = NewTaskMessage::inbound_text("a");
  answer.in_reply_to = "req_1";
  env.reg.record_message("sess_1", "task_1", answer);
  env.reg.update("sess_1", "task_1", SessionTaskUpdate{.input_request = request("req_2")});
  EXPECT_THAT(env.rec.transition_kinds(),
              ElementsAre(TaskTransition::AwaitingInput, TaskTransition::AwaitingInput));
}

TEST(OnTransition, NoAwaitingInputForRequestOnTerminalTask) {
  Env env;
  env.reg.create(input("task_1", TaskWakePolicy::OnActivity, SessionTaskState::Succeeded));
  env.reg.update("sess_1", "task_1", SessionTaskUpdate{.input_request = request("req_1")});
  EXPECT_TRUE(env.rec.transitions.empty());
  EXPECT_TRUE(env.rec.wakes.empty());
}

TEST(OnTransition, MessageForEveryOutboundMessageAlsoOnTerminalTask) {
  Env env;
  env.reg.create(input("task_1", TaskWakePolicy::Silent, SessionTaskState::Running));
  const TaskMessage a =
      env.reg.record_message("sess_1", "task_1", NewTaskMessage::outbound_text("one"));
  const TaskMessage b =
      env.reg.record_message("sess_1", "task_1", NewTaskMessage::outbound_text("one"));
  env.reg.update("sess_1", "task_1", SessionTaskUpdate{.state = SessionTaskState::Succeeded});
  env.rec.clear();
  env.reg.record_message("sess_1", "task_1", NewTaskMessage::outbound_text("after the end"));
  ASSERT_EQ(env.rec.transitions.size(), 1u);
  EXPECT_EQ(env.rec.transitions[0].first, TaskTransition::Message);
  EXPECT_EQ(env.rec.transitions[0].second, env.reg.get("sess_1", "task_1"));
  (void)a;
  (void)b;
}

TEST(OnTransition, MessageTransitionCountsEachOutboundMessage) {
  Env env;
  env.reg.create(input("task_1"));
  for (int i = 0; i < 3; ++i) {
    env.reg.record_message("sess_1", "task_1", NewTaskMessage::outbound_text("same text"));
  }
  EXPECT_THAT(
      env.rec.transition_kinds(),
      ElementsAre(TaskTransition::Message, TaskTransition::Message, TaskTransition::Message));
}

TEST(OnTransition, NoMessageTransitionForInbound) {
  Env env;
  env.reg.create(input("task_1", TaskWakePolicy::OnActivity));
  env.reg.record_message("sess_1", "task_1", NewTaskMessage::inbound_text("to the task"));
  EXPECT_TRUE(env.rec.transitions.empty());
  EXPECT_TRUE(env.rec.wakes.empty());
}

TEST(OnTransition, FiresRegardlessOfWakePolicy) {
  for (TaskWakePolicy policy :
       {TaskWakePolicy::Silent, TaskWakePolicy::OnTerminal, TaskWakePolicy::OnActivity}) {
    SCOPED_TRACE(taskjournal::to_string(policy));
    Env env;
    env.reg.create(input("task_1", policy, SessionTaskState::Running));
    env.reg.update("sess_1", "task_1", SessionTaskUpdate{.input_request = request("req_1")});
    env.reg.record_message("sess_1", "task_1", NewTaskMessage::outbound_text("hi"));
    env.reg.update("sess_1", "task_1", SessionTaskUpdate{.state = SessionTaskState::Failed});
    EXPECT_THAT(env.rec.transition_kinds(),
                ElementsAre(TaskTransition::AwaitingInput, TaskTransition::Message,
                            TaskTransition::Terminal));
  }
}

// ---------------------------------------------------------------------------------------------
// on_wake
// ---------------------------------------------------------------------------------------------

/// Drives a task through all three transitions: awaiting input, an outbound message, terminal.
void all_three(Registry& reg, const std::string& id) {
  reg.update("sess_1", id, SessionTaskUpdate{.input_request = request("req_1", "Proceed?")});
  reg.record_message("sess_1", id, NewTaskMessage::outbound_text("working on it"));
  reg.update("sess_1", id, SessionTaskUpdate{.state = SessionTaskState::Succeeded});
}

TEST(OnWake, SilentNeverWakes) {
  Env env;
  env.reg.create(input("task_1", TaskWakePolicy::Silent, SessionTaskState::Running));
  all_three(env.reg, "task_1");
  EXPECT_EQ(env.rec.transitions.size(), 3u);
  EXPECT_TRUE(env.rec.wakes.empty());
}

TEST(OnWake, OnTerminalWakesOnlyOnTerminal) {
  Env env;
  env.reg.create(input("task_1", TaskWakePolicy::OnTerminal, SessionTaskState::Running));
  all_three(env.reg, "task_1");
  EXPECT_THAT(env.rec.wakes,
              ElementsAre(WakeNotice{.session_id = "sess_1",
                                     .task_id = "task_1",
                                     .transition = TaskTransition::Terminal,
                                     .text = "Task \"Build docs\" (task_1) finished: succeeded."}));
}

TEST(OnWake, OnActivityWakesOnAllThree) {
  Env env;
  env.reg.create(input("task_1", TaskWakePolicy::OnActivity, SessionTaskState::Running));
  all_three(env.reg, "task_1");
  EXPECT_THAT(
      env.rec.wakes,
      ElementsAre(WakeNotice{.session_id = "sess_1",
                             .task_id = "task_1",
                             .transition = TaskTransition::AwaitingInput,
                             .text = "Task \"Build docs\" (task_1) is awaiting input: Proceed?"},
                  WakeNotice{.session_id = "sess_1",
                             .task_id = "task_1",
                             .transition = TaskTransition::Message,
                             .text = "Task \"Build docs\" (task_1) sent a message: working on it"},
                  WakeNotice{.session_id = "sess_1",
                             .task_id = "task_1",
                             .transition = TaskTransition::Terminal,
                             .text = "Task \"Build docs\" (task_1) finished: succeeded."}));
}

/// The terminal wake text for an on_terminal task finished with `update`.
std::string terminal_text(const SessionTaskUpdate& update,
                          const std::optional<SessionTaskUpdate>& before = std::nullopt) {
  Env env;
  env.reg.create(input("task_1", TaskWakePolicy::OnTerminal, SessionTaskState::Running));
  if (before) env.reg.update("sess_1", "task_1", *before);
  env.reg.update("sess_1", "task_1", update);
  if (env.rec.wakes.size() != 1) return "<" + std::to_string(env.rec.wakes.size()) + " wakes>";
  return env.rec.wakes[0].text;
}

TEST(OnWake, TerminalTextNamesTheState) {
  EXPECT_EQ(terminal_text(SessionTaskUpdate{.state = SessionTaskState::Succeeded}),
            "Task \"Build docs\" (task_1) finished: succeeded.");
  EXPECT_EQ(terminal_text(SessionTaskUpdate{.state = SessionTaskState::Failed}),
            "Task \"Build docs\" (task_1) finished: failed.");
  EXPECT_EQ(terminal_text(SessionTaskUpdate{.state = SessionTaskState::Canceled}),
            "Task \"Build docs\" (task_1) finished: canceled.");
}

TEST(OnWake, TerminalTextAddsSummaryAndResultPathLinesWhenPresent) {
  EXPECT_EQ(terminal_text(SessionTaskUpdate{.state = SessionTaskState::Succeeded,
                                            .summary = "Docs built",
                                            .result_path = "/out/docs"}),
            "Task \"Build docs\" (task_1) finished: succeeded.\n- summary: Docs built\n- "
            "result_path: /out/docs");
  EXPECT_EQ(
      terminal_text(SessionTaskUpdate{.state = SessionTaskState::Failed, .summary = "Broken link"}),
      "Task \"Build docs\" (task_1) finished: failed.\n- summary: Broken link");
  EXPECT_EQ(terminal_text(
                SessionTaskUpdate{.state = SessionTaskState::Succeeded, .result_path = "/out/x"}),
            "Task \"Build docs\" (task_1) finished: succeeded.\n- result_path: /out/x");
}

TEST(OnWake, TerminalTextUsesSummarySetBeforeTheTerminalUpdate) {
  EXPECT_EQ(terminal_text(SessionTaskUpdate{.state = SessionTaskState::Succeeded},
                          SessionTaskUpdate{.summary = "Early", .result_path = "/early"}),
            "Task \"Build docs\" (task_1) finished: succeeded.\n- summary: Early\n- "
            "result_path: /early");
}

TEST(OnWake, AwaitingInputTextCarriesThePrompt) {
  Env env;
  env.reg.create(input("task_1", TaskWakePolicy::OnActivity, SessionTaskState::Running));
  env.reg.update("sess_1", "task_1",
                 SessionTaskUpdate{.state = SessionTaskState::Succeeded,
                                   .input_request = request("r", "Deploy to prod? (y/n)")});
  EXPECT_THAT(env.rec.wake_texts(),
              ElementsAre("Task \"Build docs\" (task_1) is awaiting input: Deploy to prod? (y/n)"));
}

/// The message wake text for an outbound message of `content` on an on_activity task.
std::string message_text(std::vector<TaskMessagePart> content) {
  Env env;
  env.reg.create(input("task_1", TaskWakePolicy::OnActivity, SessionTaskState::Running));
  env.reg.record_message(
      "sess_1", "task_1",
      NewTaskMessage{.direction = TaskMessageDirection::Outbound, .content = std::move(content)});
  if (env.rec.wakes.size() != 1) return "<" + std::to_string(env.rec.wakes.size()) + " wakes>";
  EXPECT_EQ(env.rec.wakes[0].transition, TaskTransition::Message);
  return env.rec.wakes[0].text;
}

TEST(OnWake, MessageTextIsTheJoinedTextParts) {
  EXPECT_EQ(message_text({TextPart{"50% done"}}),
            "Task \"Build docs\" (task_1) sent a message: 50% done");
  EXPECT_EQ(message_text({TextPart{"line 1"}, DataPart{R"({"pct":50})"}, TextPart{"line 2"}}),
            "Task \"Build docs\" (task_1) sent a message: line 1\nline 2");
}

TEST(OnWake, MessageTextFallsBackForBlankText) {
  const std::string fallback =
      "Task \"Build docs\" (task_1) sent a message: structured progress update";
  EXPECT_EQ(message_text({DataPart{R"({"pct":50})"}}), fallback);
  EXPECT_EQ(message_text({}), fallback);
  EXPECT_EQ(message_text({TextPart{""}}), fallback);
  EXPECT_EQ(message_text({TextPart{"   "}}), fallback);
  EXPECT_EQ(message_text({TextPart{" \n\t "}, DataPart{"1"}}), fallback);
  EXPECT_EQ(message_text({TextPart{""}, TextPart{""}}), fallback);  // "\n" is blank too
}

TEST(OnWake, WakeUsesTheTasksOwnDisplayNameAndId) {
  Env env;
  CreateSessionTask in = input("job-42", TaskWakePolicy::OnTerminal, SessionTaskState::Running);
  in.display_name = "Nightly \"quoted\" run";
  env.reg.create(in);
  env.reg.update("sess_1", "job-42", SessionTaskUpdate{.state = SessionTaskState::Canceled});
  EXPECT_THAT(env.rec.wakes,
              ElementsAre(WakeNotice{
                  .session_id = "sess_1",
                  .task_id = "job-42",
                  .transition = TaskTransition::Terminal,
                  .text = "Task \"Nightly \"quoted\" run\" (job-42) finished: canceled."}));
}

TEST(OnWake, NoWakeForCreateCancelOrDroppedUpdates) {
  Env env;
  env.reg.create(input("task_1", TaskWakePolicy::OnActivity, SessionTaskState::AwaitingInput));
  env.reg.request_cancel("sess_1", "task_1");
  env.reg.update("sess_1", "task_1",
                 SessionTaskUpdate{.state = SessionTaskState::Failed, .expected_attempt = 3});
  EXPECT_TRUE(env.rec.wakes.empty());
}

// ---------------------------------------------------------------------------------------------
// Failing and re-entrant slots
// ---------------------------------------------------------------------------------------------

TEST(Subscribers, ThrowingEventSlotDoesNotFailTheCallAndOthersStillRun) {
  FakeClock clock;
  Registry reg = open_registry(fresh_journal(), Options{.clock = clock.fn()});
  Subscription bad1 =
      reg.on_event([](const RegistryEvent&) { throw std::runtime_error("subscriber bug"); });
  Subscription bad2 = reg.on_event([](const RegistryEvent&) { throw 42; });
  std::vector<std::string> seen;
  Subscription good = reg.on_event([&](const RegistryEvent& e) { seen.push_back(e.type); });

  SessionTask created;
  EXPECT_NO_THROW(created = reg.create(input("task_1")));
  EXPECT_EQ(reg.get("sess_1", "task_1"), created);
  std::optional<SessionTask> updated;
  EXPECT_NO_THROW(updated = reg.update("sess_1", "task_1",
                                       SessionTaskUpdate{.state = SessionTaskState::Running}));
  EXPECT_EQ(reg.get("sess_1", "task_1"), updated);
  EXPECT_EQ(updated->state, SessionTaskState::Running);
  TaskMessage m;
  EXPECT_NO_THROW(m = reg.record_message("sess_1", "task_1", NewTaskMessage::outbound_text("x")));
  EXPECT_EQ(reg.list_messages("sess_1", "task_1"), std::vector<TaskMessage>{m});
  EXPECT_NO_THROW(reg.request_cancel("sess_1", "task_1"));
  EXPECT_TRUE(reg.get("sess_1", "task_1")->cancel_requested_at.has_value());
  EXPECT_THAT(seen,
              ElementsAre("task.created", "task.updated", "task.message.received", "task.updated"));
  EXPECT_EQ(reg.history("sess_1", "task_1").size(), 4u);
}

TEST(Subscribers, ThrowingTransitionAndWakeSlotsDoNotFailTheCall) {
  FakeClock clock;
  Registry reg = open_registry(fresh_journal(), Options{.clock = clock.fn()});
  Subscription bad_t = reg.on_transition(
      [](TaskTransition, const SessionTask&) { throw std::runtime_error("transition bug"); });
  Subscription bad_w = reg.on_wake([](const WakeNotice&) { throw std::logic_error("wake bug"); });
  Recorder rec(reg);
  reg.create(input("task_1", TaskWakePolicy::OnActivity, SessionTaskState::Running));
  EXPECT_NO_THROW(all_three(reg, "task_1"));
  EXPECT_EQ(reg.get("sess_1", "task_1")->state, SessionTaskState::Succeeded);
  EXPECT_EQ(reg.list_messages("sess_1", "task_1").size(), 1u);
  EXPECT_EQ(rec.transitions.size(), 3u);
  EXPECT_EQ(rec.wakes.size(), 3u);
  EXPECT_EQ(rec.events.size(), 4u);
}

TEST(Subscribers, SlotMayReadTheRegistry) {
  FakeClock clock;
  Registry reg = open_registry(fresh_journal(), Options{.clock = clock.fn()});
  std::vector<std::optional<SessionTask>> seen_in_slot;
  std::vector<std::optional<SessionTask>> snapshots;
  std::size_t listed = 0;
  std::size_t history = 0;
  Subscription sub = reg.on_event([&](const RegistryEvent& e) {
    seen_in_slot.push_back(reg.get(e.session_id, e.task_id));
    snapshots.push_back(e.task);
    listed = reg.list(e.session_id).size();
    history = reg.history(e.session_id, e.task_id).size();
  });
  Subscription sub2 = reg.on_transition(
      [&](TaskTransition, const SessionTask& t) { (void)reg.list_messages(t.session_id, t.id); });
  within_seconds(20, "create with slots that call the registry", [&] {
    reg.create(input("task_1"));
    reg.update("sess_1", "task_1", SessionTaskUpdate{.state = SessionTaskState::Succeeded});
  });
  ASSERT_EQ(seen_in_slot.size(), 2u);
  EXPECT_EQ(seen_in_slot, snapshots);  // the slot runs after the change is visible
  EXPECT_EQ(listed, 1u);
  EXPECT_EQ(history, 2u);
}

TEST(Subscribers, SlotMayWriteToTheRegistry) {
  FakeClock clock;
  Registry reg = open_registry(fresh_journal(), Options{.clock = clock.fn()});
  // Every outbound message of a task is acknowledged by an inbound one (which wakes nobody).
  Subscription sub = reg.on_wake([&](const WakeNotice& w) {
    if (w.transition == TaskTransition::Message) {
      reg.record_message(w.session_id, w.task_id, NewTaskMessage::inbound_text("ack"));
    }
  });
  std::vector<std::string> events;
  Subscription rec = reg.on_event([&](const RegistryEvent& e) { events.push_back(e.type); });
  within_seconds(20, "calls with slots that call the registry", [&] {
    reg.create(input("task_1", TaskWakePolicy::OnActivity, SessionTaskState::Running));
    reg.record_message("sess_1", "task_1", NewTaskMessage::outbound_text("report"));
  });
  const auto msgs = reg.list_messages("sess_1", "task_1");
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].direction, TaskMessageDirection::Outbound);
  EXPECT_EQ(msgs[1].direction, TaskMessageDirection::Inbound);
  EXPECT_EQ(taskjournal::task_message_text(msgs[1].content), "ack");
  EXPECT_EQ(std::count(events.begin(), events.end(), "task.message.sent"), 1);
  EXPECT_EQ(std::count(events.begin(), events.end(), "task.message.received"), 1);
}

TEST(Subscribers, SlotsRunInTheCallingThread) {
  Registry reg = open_registry(fresh_journal());
  std::thread::id slot_thread;
  Subscription sub =
      reg.on_event([&](const RegistryEvent&) { slot_thread = std::this_thread::get_id(); });
  reg.create(input("task_1"));
  EXPECT_EQ(slot_thread, std::this_thread::get_id());
}

// ---------------------------------------------------------------------------------------------
// Subscription lifetime
// ---------------------------------------------------------------------------------------------

TEST(Subscription, DisconnectStopsDelivery) {
  Env env;
  EXPECT_TRUE(env.rec.event_sub.connected());
  env.rec.event_sub.disconnect();
  env.rec.transition_sub.disconnect();
  env.rec.wake_sub.disconnect();
  EXPECT_FALSE(env.rec.event_sub.connected());
  env.rec.event_sub.disconnect();  // again: nothing
  env.reg.create(input("task_1", TaskWakePolicy::OnActivity, SessionTaskState::Running));
  all_three(env.reg, "task_1");
  EXPECT_TRUE(env.rec.silent());
}

TEST(Subscription, DestructionStopsDelivery) {
  Registry reg = open_registry(fresh_journal());
  int events = 0, transitions = 0, wakes = 0;
  {
    Subscription a = reg.on_event([&](const RegistryEvent&) { ++events; });
    Subscription b = reg.on_transition([&](TaskTransition, const SessionTask&) { ++transitions; });
    Subscription c = reg.on_wake([&](const WakeNotice&) { ++wakes; });
    reg.create(input("task_1", TaskWakePolicy::OnActivity, SessionTaskState::Running));
    EXPECT_EQ(events, 1);
  }
  all_three(reg, "task_1");
  EXPECT_EQ(events, 1);
  EXPECT_EQ(transitions, 0);
  EXPECT_EQ(wakes, 0);
}

TEST(Subscription, MoveAssignmentDisconnectsThePreviousSlot) {
  Registry reg = open_registry(fresh_journal());
  int first = 0, second = 0;
  Subscription sub = reg.on_event([&](const RegistryEvent&) { ++first; });
  sub = reg.on_event([&](const RegistryEvent&) { ++second; });
  reg.create(input("task_1"));
  EXPECT_EQ(first, 0);
  EXPECT_EQ(second, 1);
  Subscription moved = std::move(sub);
  EXPECT_FALSE(sub.connected());  // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(moved.connected());
  reg.create(input("task_2"));
  EXPECT_EQ(second, 2);
}

TEST(Subscription, OnlyTheDisconnectedSlotStops) {
  Registry reg = open_registry(fresh_journal());
  int a_count = 0, b_count = 0;
  Subscription a = reg.on_event([&](const RegistryEvent&) { ++a_count; });
  Subscription b = reg.on_event([&](const RegistryEvent&) { ++b_count; });
  reg.create(input("task_1"));
  a.disconnect();
  reg.create(input("task_2"));
  EXPECT_EQ(a_count, 1);
  EXPECT_EQ(b_count, 2);
}

TEST(Subscription, OutlivingItsRegistryIsSafe) {
  auto reg = std::make_unique<Registry>(open_registry(fresh_journal()));
  int events = 0;
  Subscription a = reg->on_event([&](const RegistryEvent&) { ++events; });
  auto b =
      std::make_unique<Subscription>(reg->on_transition([](TaskTransition, const SessionTask&) {}));
  Subscription c = reg->on_wake([](const WakeNotice&) {});
  reg->create(input("task_1"));
  EXPECT_EQ(events, 1);
  reg.reset();
  EXPECT_NO_THROW(a.disconnect());
  EXPECT_FALSE(a.connected());
  b.reset();  // destroyed while still connected to a gone registry
  // c is destroyed at scope exit, after the registry.
}

TEST(Subscription, SurvivesAMoveOfTheRegistry) {
  Registry a = open_registry(fresh_journal());
  int events = 0;
  Subscription sub = a.on_event([&](const RegistryEvent&) { ++events; });
  Registry b = std::move(a);
  b.create(input("task_1"));
  EXPECT_EQ(events, 1);
  sub.disconnect();
  b.create(input("task_2"));
  EXPECT_EQ(events, 1);
}

TEST(Subscription, DefaultConstructedIsNotConnected) {
  Subscription s;
  EXPECT_FALSE(s.connected());
  EXPECT_NO_THROW(s.disconnect());
}

}  // namespace
