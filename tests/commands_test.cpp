// The pure decisions of the registry's commands and the notification texts (projections/),
// without any database: validation, session scope, conflicts, fences, the event produced.
#include "projections/commands.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "projections/notices.hpp"
#include "projections/views.hpp"
#include "taskjournal/error.hpp"
#include "taskjournal/lifecycle.hpp"

namespace taskjournal::projections {
namespace {

using namespace std::chrono_literals;

const Timestamp kNow = Timestamp{std::chrono::sys_days{std::chrono::year{2026} / 1 / 2}};

// A clock that counts how often the decision asked it.
struct CountingClock {
  int calls = 0;
  Clock fn() {
    return [this] {
      ++calls;
      return kNow;
    };
  }
};

template <class F>
std::optional<ErrorCode> code_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return std::nullopt;
}

SessionTask task_in(std::string session, std::string id) {
  return new_session_task({.session_id = std::move(session), .id = std::move(id), .kind = "k"},
                          kNow);
}

TEST(DecideCreate, NewTaskWithoutIdGetsAGeneratedIdAndTheClocksTime) {
  CountingClock clock;
  const auto d = decide_create({.session_id = "s", .kind = "k"}, nullptr, clock.fn());
  ASSERT_TRUE(d.event);
  EXPECT_EQ(d.existing, nullptr);
  EXPECT_EQ(d.event->recorded_at, kNow);
  EXPECT_EQ(d.event->task_id.substr(0, 5), "task_");
  const auto& created = std::get<events::TaskCreated>(d.event->payload);
  EXPECT_EQ(created.input.id, d.event->task_id);  // the event carries the id it chose
  EXPECT_EQ(clock.calls, 1);
}

TEST(DecideCreate, ExistingIdInTheSameSessionIsIdempotentAndAsksNoClock) {
  CountingClock clock;
  const SessionTask existing = task_in("s", "t");
  const auto d =
      decide_create({.session_id = "s", .id = "t", .kind = "other"}, &existing, clock.fn());
  EXPECT_EQ(d.existing, &existing);
  EXPECT_FALSE(d.event);
  EXPECT_EQ(clock.calls, 0);
}

TEST(DecideCreate, ExistingIdInAnotherSessionIsAConflict) {
  CountingClock clock;
  const SessionTask foreign = task_in("other", "t");
  EXPECT_EQ(code_of([&] {
              decide_create({.session_id = "s", .id = "t", .kind = "k"}, &foreign, clock.fn());
            }),
            ErrorCode::Conflict);
  EXPECT_EQ(clock.calls, 0);
}

TEST(DecideCreate, BadInputIsInvalidBeforeTheConflictCheck) {
  CountingClock clock;
  const SessionTask foreign = task_in("other", "t");
  EXPECT_EQ(code_of([&] {
              decide_create({.session_id = "s", .id = "t", .kind = ""}, &foreign, clock.fn());
            }),
            ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([&] {
              decide_create({.session_id = "s", .kind = "k", .spec = "{"}, nullptr, clock.fn());
            }),
            ErrorCode::InvalidArgument);
  EXPECT_EQ(clock.calls, 0);
}

TEST(DecideUpdate, MissingTaskIsNoEventAndAttemptOverflowIsInvalid) {
  CountingClock clock;
  EXPECT_FALSE(decide_update("s", "t", {.summary = "x"}, nullptr, clock.fn()));
  SessionTask task = task_in("s", "t");
  task.attempt = std::numeric_limits<std::int32_t>::max();
  EXPECT_EQ(
      code_of([&] { decide_update("s", "t", {.increment_attempt = true}, &task, clock.fn()); }),
      ErrorCode::InvalidArgument);
  EXPECT_EQ(clock.calls, 0);
  const auto event = decide_update("s", "t", {.summary = "x"}, &task, clock.fn());
  ASSERT_TRUE(event);
  EXPECT_EQ(std::get<events::TaskUpdated>(event->payload).update.summary, "x");
  EXPECT_EQ(clock.calls, 1);
}

TEST(DecideCancel, MissingTaskIsNoEvent) {
  CountingClock clock;
  EXPECT_FALSE(decide_cancel("s", "t", nullptr, clock.fn()));
  const SessionTask task = task_in("s", "t");
  const auto event = decide_cancel("s", "t", &task, clock.fn());
  ASSERT_TRUE(event);
  EXPECT_TRUE(std::holds_alternative<events::CancelRequested>(event->payload));
}

TEST(DecideMessage, MissingTaskIsNotFoundAndAStaleFenceIsStaleAttempt) {
  CountingClock clock;
  EXPECT_EQ(code_of([&] {
              decide_message("s", "t", NewTaskMessage::inbound_text("m"), nullptr, clock.fn());
            }),
            ErrorCode::NotFound);
  const SessionTask task = task_in("s", "t");
  NewTaskMessage fenced = NewTaskMessage::inbound_text("m");
  fenced.expected_attempt = 2;
  EXPECT_EQ(code_of([&] { decide_message("s", "t", fenced, &task, clock.fn()); }),
            ErrorCode::StaleAttempt);
  EXPECT_EQ(clock.calls, 0);
  fenced.expected_attempt = 1;
  const auto event = decide_message("s", "t", fenced, &task, clock.fn());
  const auto& stored = std::get<events::MessageRecorded>(event.payload).message;
  EXPECT_EQ(stored.id.substr(0, 5), "tmsg_");
  EXPECT_EQ(stored.created_at, kNow);
  EXPECT_EQ(stored.task_id, "t");
}

TEST(NoticesFor, TerminalUpdateOfAnOnTerminalTaskWakesWithTheContractText) {
  Views views;
  const auto create = decide_create({.session_id = "s",
                                     .id = "t",
                                     .kind = "k",
                                     .display_name = "Build",
                                     .wake_policy = TaskWakePolicy::OnTerminal},
                                    nullptr, [] { return kNow; });
  events::Event created = *create.event;
  created.seq = 1;
  views.apply(created);
  events::Event done =
      *decide_update("s", "t", {.state = SessionTaskState::Succeeded, .summary = "ok"},
                     views.find("s", "t"), [] { return kNow + 1s; });
  done.seq = 2;
  const Applied applied = views.apply(done);
  std::vector<Notice> notices;
  notices_for(done, applied, notices);
  ASSERT_EQ(notices.size(), 2u);
  ASSERT_TRUE(notices[0].event);
  EXPECT_EQ(notices[0].event->type, "task.updated");
  EXPECT_EQ(notices[0].event->seq, 2u);
  ASSERT_TRUE(notices[1].transition);
  EXPECT_EQ(notices[1].transition->first, TaskTransition::Terminal);
  ASSERT_TRUE(notices[1].wake);
  EXPECT_EQ(notices[1].wake->text, "Task \"Build\" (t) finished: succeeded.\n- summary: ok");
}

TEST(NoticesFor, OutboundMessageOfASilentTaskIsATransitionWithoutWake) {
  Views views;
  events::Event created = *decide_create({.session_id = "s", .id = "t", .kind = "k"}, nullptr, [] {
                             return kNow;
                           }).event;
  created.seq = 1;
  views.apply(created);
  NewTaskMessage data{.direction = TaskMessageDirection::Outbound, .content = {DataPart{"{}"}}};
  events::Event message = decide_message("s", "t", data, views.find("s", "t"), [] { return kNow; });
  message.seq = 2;
  const Applied applied = views.apply(message);
  std::vector<Notice> notices;
  notices_for(message, applied, notices);
  ASSERT_EQ(notices.size(), 2u);
  EXPECT_EQ(notices[0].event->type, "task.message.received");
  EXPECT_EQ(notices[1].transition->first, TaskTransition::Message);
  EXPECT_FALSE(notices[1].wake);
}

}  // namespace
}  // namespace taskjournal::projections
