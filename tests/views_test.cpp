// projections::Views directly: the fold of each event type, the lookups (find, find_any, list,
// messages with its cursor and most-recent-N rules, event_count), the message index (insert,
// find, duplicates, growth across many rehashes), rebuilding from checkpoint entries, and
// SessionViews (the sessions a PostgreSQL registry serves) and LiveTasks (the unfinished tasks
// the orphan reaper of a PostgreSQL registry looks at).
#include "projections/views.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "events/checkpoint.hpp"
#include "events/event.hpp"
#include "projections/live_tasks.hpp"
#include "projections/session_views.hpp"
#include "support/errors.hpp"
#include "support/fake_clock.hpp"
#include "taskjournal/lifecycle.hpp"
#include "taskjournal/taskjournal.hpp"

namespace taskjournal::projections {
namespace {

using events::Event;
using testing::error_text;

Timestamp at(int second) { return testing::fake_clock_start() + std::chrono::seconds(second); }

// Builds events with consecutive sequence numbers, one second apart.
class Journal {
 public:
  Event created(const std::string& session, const std::string& id, std::string kind = "tool",
                SessionTaskState state = SessionTaskState::Queued) {
    return next(session, id,
                events::TaskCreated{CreateSessionTask{.session_id = session,
                                                      .id = id,
                                                      .kind = std::move(kind),
                                                      .display_name = "Task " + id,
                                                      .spec = "{}",
                                                      .state = state}});
  }
  Event updated(const std::string& session, const std::string& id, SessionTaskUpdate update) {
    return next(session, id, events::TaskUpdated{std::move(update)});
  }
  Event cancel(const std::string& session, const std::string& id) {
    return next(session, id, events::CancelRequested{});
  }
  Event message(const std::string& session, const std::string& id, const std::string& message_id,
                TaskMessageDirection direction = TaskMessageDirection::Outbound,
                std::optional<std::string> in_reply_to = std::nullopt) {
    Event e = next(session, id, events::MessageRecorded{});
    std::get<events::MessageRecorded>(e.payload).message =
        TaskMessage{.id = message_id,
                    .task_id = id,
                    .direction = direction,
                    .content = {TextPart{"text of " + message_id}},
                    .in_reply_to = std::move(in_reply_to),
                    .created_at = e.recorded_at};
    return e;
  }
  std::uint64_t seq() const { return seq_; }

 private:
  Event next(const std::string& session, const std::string& id, events::Payload payload) {
    ++seq_;
    return Event{.seq = seq_,
                 .recorded_at = at(static_cast<int>(seq_)),
                 .session_id = session,
                 .task_id = id,
                 .payload = std::move(payload)};
  }
  std::uint64_t seq_ = 0;
};

std::vector<std::string> ids_of(const std::vector<TaskMessage>& messages) {
  std::vector<std::string> ids;
  for (const auto& m : messages) ids.push_back(m.id);
  return ids;
}

std::vector<std::string> ids_of(const std::vector<SessionTask>& tasks) {
  std::vector<std::string> ids;
  for (const auto& t : tasks) ids.push_back(t.id);
  return ids;
}

// ---- apply ------------------------------------------------------------------------------------

TEST(ViewsApply, TaskCreatedStoresTheNewTaskAtItsTime) {
  Views v;
  Journal j;
  const Event e = j.created("s1", "t1", "tool", SessionTaskState::Running);
  const Applied a = v.apply(e);
  ASSERT_NE(a.task, nullptr);
  EXPECT_TRUE(a.created);
  EXPECT_EQ(a.state_before, SessionTaskState::Running);
  EXPECT_EQ(*a.task, new_session_task(std::get<events::TaskCreated>(e.payload).input, at(1)));
  EXPECT_EQ(v.find("s1", "t1"), a.task);
  EXPECT_EQ(v.last_seq(), 1u);
  EXPECT_EQ(v.task_count(), 1u);
  EXPECT_EQ(v.event_count("s1", "t1"), 1u);
}

TEST(ViewsApply, TaskUpdatedFoldsThroughTheLifecycleRules) {
  Views v;
  Journal j;
  v.apply(j.created("s1", "t1"));
  const Applied a = v.apply(j.updated(
      "s1", "t1", {.state = SessionTaskState::Running, .summary = "half", .worker_id = "w1"}));
  EXPECT_FALSE(a.created);
  EXPECT_EQ(a.state_before, SessionTaskState::Queued);
  ASSERT_NE(a.task, nullptr);
  EXPECT_EQ(a.task->state, SessionTaskState::Running);
  EXPECT_EQ(a.task->summary, "half");
  EXPECT_EQ(a.task->started_at, at(2));
  EXPECT_EQ(a.task->updated_at, at(2));
  EXPECT_EQ(v.event_count("s1", "t1"), 2u);
}

TEST(ViewsApply, AnUpdateTheRulesDropChangesNothingButCountsAsAnEvent) {
  Views v;
  Journal j;
  v.apply(j.created("s1", "t1"));
  v.apply(j.updated("s1", "t1", {.state = SessionTaskState::Succeeded}));
  const SessionTask before = *v.find("s1", "t1");
  const Applied a = v.apply(j.updated("s1", "t1", {.state = SessionTaskState::Running}));
  EXPECT_EQ(*a.task, before);
  EXPECT_EQ(v.event_count("s1", "t1"), 3u);
  EXPECT_EQ(v.last_seq(), 3u);
}

TEST(ViewsApply, CancelRequestedStampsOnlyTheFirstRequest) {
  Views v;
  Journal j;
  v.apply(j.created("s1", "t1"));
  const Applied first = v.apply(j.cancel("s1", "t1"));
  EXPECT_TRUE(first.cancel_set);
  EXPECT_EQ(first.task->cancel_requested_at, at(2));
  EXPECT_EQ(first.task->updated_at, at(2));
  const Applied again = v.apply(j.cancel("s1", "t1"));
  EXPECT_FALSE(again.cancel_set);
  EXPECT_EQ(again.task->cancel_requested_at, at(2));
  EXPECT_EQ(again.task->updated_at, at(2));
  EXPECT_EQ(v.event_count("s1", "t1"), 3u);
}

TEST(ViewsApply, MessageRecordedStoresTheMessage) {
  Views v;
  Journal j;
  v.apply(j.created("s1", "t1"));
  const Event e = j.message("s1", "t1", "m1");
  const Applied a = v.apply(e);
  ASSERT_NE(a.message, nullptr);
  EXPECT_EQ(*a.message, std::get<events::MessageRecorded>(e.payload).message);
  EXPECT_FALSE(a.resumed);
  EXPECT_EQ(a.task->state, SessionTaskState::Queued);
  EXPECT_EQ(v.message_count(), 1u);
  EXPECT_EQ(ids_of(v.messages("s1", "t1", std::nullopt, std::nullopt)),
            std::vector<std::string>{"m1"});
}

TEST(ViewsApply, InboundAnswerToThePendingRequestResumesTheTask) {
  Views v;
  Journal j;
  v.apply(j.created("s1", "t1", "tool", SessionTaskState::Running));
  v.apply(j.updated("s1", "t1", {.input_request = TaskInputRequest{.id = "q1", .prompt = "?"}}));
  ASSERT_EQ(v.find("s1", "t1")->state, SessionTaskState::AwaitingInput);
  // An answer to another request, or an outbound message naming it, does not resume.
  EXPECT_FALSE(v.apply(j.message("s1", "t1", "m1", TaskMessageDirection::Inbound, "q2")).resumed);
  EXPECT_FALSE(v.apply(j.message("s1", "t1", "m2", TaskMessageDirection::Outbound, "q1")).resumed);
  EXPECT_EQ(v.find("s1", "t1")->state, SessionTaskState::AwaitingInput);
  const Applied a = v.apply(j.message("s1", "t1", "m3", TaskMessageDirection::Inbound, "q1"));
  EXPECT_TRUE(a.resumed);
  EXPECT_EQ(a.state_before, SessionTaskState::AwaitingInput);
  EXPECT_EQ(a.task->state, SessionTaskState::Running);
  EXPECT_EQ(a.task->input_request, std::nullopt);
}

TEST(ViewsApply, ASequenceGapIsCorruptAndChangesNothing) {
  Views v;
  Journal j;
  v.apply(j.created("s1", "t1"));
  j.cancel("s1", "t1");  // seq 2 never reaches the views
  const Event third = j.cancel("s1", "t1");
  try {
    v.apply(third);
    FAIL() << "a gap was folded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Corrupt);
    EXPECT_STREQ(e.what(), "event 3: expected sequence number 2");
  }
  EXPECT_EQ(v.last_seq(), 1u);
  EXPECT_EQ(v.find("s1", "t1")->cancel_requested_at, std::nullopt);
}

TEST(ViewsApply, EventsThatDoNotFitAreCorruptNamingTheSequenceNumber) {
  Views v;
  Journal j;
  v.apply(j.created("s1", "t1"));
  v.apply(j.message("s1", "t1", "m1"));
  const SessionTask before = *v.find("s1", "t1");

  Journal again = j;
  EXPECT_EQ(error_text([&] { v.apply(again.created("s2", "t1")); }),
            "event 3: task t1 created twice");
  again = j;
  EXPECT_EQ(error_text([&] { v.apply(again.cancel("s1", "nope")); }),
            "event 3: names task nope, unknown in session s1");
  again = j;
  EXPECT_EQ(error_text([&] { v.apply(again.cancel("s2", "t1")); }),
            "event 3: names task t1, unknown in session s2");
  again = j;
  EXPECT_EQ(error_text([&] { v.apply(again.message("s1", "t1", "m1")); }),
            "event 3: message id m1 used twice");
  again = j;
  EXPECT_THROW_CODE(v.apply(again.updated("s1", "nope", {})), ErrorCode::Corrupt);

  EXPECT_EQ(v.last_seq(), 2u);
  EXPECT_EQ(*v.find("s1", "t1"), before);
  EXPECT_EQ(v.message_count(), 1u);
  EXPECT_EQ(v.event_count("s1", "t1"), 2u);
}

// ---- lookups ----------------------------------------------------------------------------------

TEST(ViewsFind, FindIsPerSessionAndFindAnyIsNot) {
  Views v;
  Journal j;
  v.apply(j.created("s1", "t1"));
  EXPECT_NE(v.find("s1", "t1"), nullptr);
  EXPECT_EQ(v.find("s2", "t1"), nullptr);
  EXPECT_EQ(v.find("s1", "t2"), nullptr);
  ASSERT_NE(v.find_any("t1"), nullptr);
  EXPECT_EQ(v.find_any("t1")->session_id, "s1");
  EXPECT_EQ(v.find_any("t2"), nullptr);
}

TEST(ViewsFind, EventCountIsZeroForMissingAndForeignTasks) {
  Views v;
  Journal j;
  v.apply(j.created("s1", "t1"));
  v.apply(j.message("s1", "t1", "m1"));
  v.apply(j.cancel("s1", "t1"));
  EXPECT_EQ(v.event_count("s1", "t1"), 3u);
  EXPECT_EQ(v.event_count("s2", "t1"), 0u);
  EXPECT_EQ(v.event_count("s1", "t2"), 0u);
}

TEST(ViewsList, ListsTheSessionsTasksInCreationOrderWithExactFilters) {
  Views v;
  Journal j;
  v.apply(j.created("s1", "b", "tool"));
  v.apply(j.created("s2", "x", "tool"));
  v.apply(j.created("s1", "a", "subagent"));
  v.apply(j.created("s1", "c", "tool", SessionTaskState::Running));
  EXPECT_EQ(ids_of(v.list("s1", {})), (std::vector<std::string>{"b", "a", "c"}));
  EXPECT_EQ(ids_of(v.list("s2", {})), std::vector<std::string>{"x"});
  EXPECT_EQ(ids_of(v.list("s3", {})), std::vector<std::string>{});
  EXPECT_EQ(ids_of(v.list("s1", {.kind = "tool"})), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(ids_of(v.list("s1", {.kind = "too"})), std::vector<std::string>{});
  EXPECT_EQ(ids_of(v.list("s1", {.state = SessionTaskState::Running})),
            std::vector<std::string>{"c"});
  EXPECT_EQ(ids_of(v.list("s1", {.kind = "subagent", .state = SessionTaskState::Running})),
            std::vector<std::string>{});
}

TEST(ViewsList, ListShowsEachTaskAsFolded) {
  Views v;
  Journal j;
  v.apply(j.created("s1", "t1"));
  v.apply(j.updated("s1", "t1", {.summary = "now"}));
  const auto list = v.list("s1", {});
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0], *v.find("s1", "t1"));
  EXPECT_EQ(list[0].summary, "now");
}

class ViewsMessages : public ::testing::Test {
 protected:
  void SetUp() override {
    v.apply(j.created("s1", "t1"));
    v.apply(j.created("s1", "t2"));
    for (const char* id : {"m1", "m2", "m3", "m4", "m5"}) v.apply(j.message("s1", "t1", id));
    v.apply(j.message("s1", "t2", "other"));
  }
  std::vector<std::string> ids(std::optional<std::uint32_t> limit,
                               std::optional<std::string_view> after,
                               const std::string& task = "t1",
                               const std::string& session = "s1") const {
    return ids_of(v.messages(session, task, limit, after));
  }
  using Ids = std::vector<std::string>;
  Views v;
  Journal j;
};

TEST_F(ViewsMessages, AllMessagesOldestFirst) {
  EXPECT_EQ(ids(std::nullopt, std::nullopt), (Ids{"m1", "m2", "m3", "m4", "m5"}));
  EXPECT_EQ(ids(std::nullopt, std::nullopt, "t2"), Ids{"other"});
}

TEST_F(ViewsMessages, LimitWithoutCursorGivesTheMostRecentN) {
  EXPECT_EQ(ids(2, std::nullopt), (Ids{"m4", "m5"}));
  EXPECT_EQ(ids(5, std::nullopt), (Ids{"m1", "m2", "m3", "m4", "m5"}));
  EXPECT_EQ(ids(99, std::nullopt), (Ids{"m1", "m2", "m3", "m4", "m5"}));
  EXPECT_EQ(ids(0, std::nullopt), Ids{});
}

TEST_F(ViewsMessages, CursorGivesTheMessagesAfterItOldestFirst) {
  EXPECT_EQ(ids(std::nullopt, "m2"), (Ids{"m3", "m4", "m5"}));
  EXPECT_EQ(ids(2, "m1"), (Ids{"m2", "m3"}));
  EXPECT_EQ(ids(99, "m3"), (Ids{"m4", "m5"}));
  EXPECT_EQ(ids(std::nullopt, "m5"), Ids{});
  EXPECT_EQ(ids(0, "m1"), Ids{});
}

TEST_F(ViewsMessages, CursorOfAnotherTaskOrUnknownGivesNothing) {
  EXPECT_EQ(ids(std::nullopt, "other"), Ids{});
  EXPECT_EQ(ids(std::nullopt, "m1", "t2"), Ids{});
  EXPECT_EQ(ids(std::nullopt, "nope"), Ids{});
  EXPECT_EQ(ids(std::nullopt, ""), Ids{});
}

TEST_F(ViewsMessages, MissingOrForeignTaskHasNoMessages) {
  EXPECT_EQ(ids(std::nullopt, std::nullopt, "t1", "s2"), Ids{});
  EXPECT_EQ(ids(std::nullopt, std::nullopt, "t3"), Ids{});
}

// ---- the message index ------------------------------------------------------------------------

TEST(ViewsMessageIndex, ManyMessagesStayFindableAcrossRehashes) {
  // 16 slots at first, at most half full: 3,000 messages over 40 tasks rehash it eight times.
  Views v;
  Journal j;
  constexpr int kTasks = 40;
  constexpr int kMessages = 3000;
  for (int t = 0; t < kTasks; ++t) v.apply(j.created("s", "t" + std::to_string(t)));
  for (int m = 0; m < kMessages; ++m) {
    v.apply(j.message("s", "t" + std::to_string(m % kTasks), "m" + std::to_string(m)));
  }
  EXPECT_EQ(v.message_count(), static_cast<std::size_t>(kMessages));
  // Every message is found as a cursor of its own task (and only of it), at its position.
  for (int m = 0; m < kMessages; ++m) {
    const std::string task = "t" + std::to_string(m % kTasks);
    const std::string id = "m" + std::to_string(m);
    const auto next = v.messages("s", task, 1, id);
    const int after = m + kTasks;
    if (after < kMessages) {
      ASSERT_EQ(ids_of(next), std::vector<std::string>{"m" + std::to_string(after)}) << id;
    } else {
      ASSERT_TRUE(next.empty()) << id;
    }
    const std::string other = "t" + std::to_string((m + 1) % kTasks);
    ASSERT_TRUE(v.messages("s", other, std::nullopt, id).empty()) << id;
  }
  // A duplicate of any of them is still refused.
  for (const int m : {0, 1, 777, kMessages - 1}) {
    Journal again = j;
    EXPECT_THROW_CODE(v.apply(again.message("s", "t0", "m" + std::to_string(m))),
                      ErrorCode::Corrupt);
  }
  EXPECT_EQ(v.message_count(), static_cast<std::size_t>(kMessages));
}

TEST(ViewsMessageIndex, ReserveKeepsWhatIsIndexed) {
  Views v;
  Journal j;
  v.apply(j.created("s", "t"));
  v.apply(j.message("s", "t", "m1"));
  v.reserve(100, 10'000);
  v.apply(j.message("s", "t", "m2"));
  EXPECT_EQ(ids_of(v.messages("s", "t", std::nullopt, "m1")), std::vector<std::string>{"m2"});
  Journal again = j;
  EXPECT_THROW_CODE(v.apply(again.message("s", "t", "m1")), ErrorCode::Corrupt);
}

// ---- restore from checkpoint entries ----------------------------------------------------------

// Views folded from a small journal, and the checkpoint entries for_each_task gives for them.
struct Folded {
  Views views;
  std::vector<events::CheckpointEntry> entries;
};
Folded folded() {
  Folded f;
  Journal j;
  f.views.apply(j.created("s1", "a"));
  f.views.apply(j.created("s2", "b"));
  f.views.apply(j.message("s1", "a", "m1"));
  f.views.apply(j.updated("s2", "b", {.state = SessionTaskState::Running}));
  f.views.apply(j.message("s2", "b", "m2"));
  f.views.apply(j.cancel("s1", "a"));
  f.views.for_each_task(
      [&](const SessionTask& task, const std::vector<TaskMessage>& messages, std::uint64_t events) {
        f.entries.push_back(events::CheckpointEntry{task, messages, events});
      });
  return f;
}

TEST(ViewsRestore, RestoredViewsEqualTheFold) {
  Folded f = folded();
  ASSERT_EQ(f.entries.size(), 2u);
  Views restored;
  for (auto e : f.entries) restored.restore_task(std::move(e));
  restored.finish_restore(6);
  EXPECT_TRUE(restored == f.views);
  EXPECT_EQ(restored.last_seq(), 6u);
  EXPECT_EQ(restored.event_count("s1", "a"), 3u);
  EXPECT_EQ(ids_of(restored.messages("s2", "b", std::nullopt, std::nullopt)),
            std::vector<std::string>{"m2"});
  // ... and they fold on from there.
  Journal j;
  for (int i = 0; i < 6; ++i) j.cancel("s", "x");
  restored.apply(j.message("s1", "a", "m3"));
  EXPECT_EQ(restored.last_seq(), 7u);
}

std::string restore_error(std::vector<events::CheckpointEntry> entries, std::uint64_t seq) {
  Views v;
  return error_text([&] {
    for (auto& e : entries) v.restore_task(std::move(e));
    v.finish_restore(seq);
  });
}

TEST(ViewsRestore, CountsThatDoNotAddUpToTheSequenceNumberAreCorrupt) {
  ErrorCode code{};
  Views v;
  for (auto e : folded().entries) v.restore_task(std::move(e));
  EXPECT_EQ(error_text([&] { v.finish_restore(7); }, &code),
            "checkpoint: its tasks hold 6 events and 0 of pruned tasks, not 7");
  EXPECT_EQ(code, ErrorCode::Corrupt);
}

TEST(ViewsRestore, EntriesThatCannotBeAFoldAreCorrupt) {
  auto entries = folded().entries;
  {
    auto bad = entries;
    bad.push_back(bad[0]);
    EXPECT_EQ(restore_error(bad, 9), "checkpoint: task " + bad[0].task.id + ": stored twice");
  }
  {
    auto bad = entries;
    bad[0].events = bad[0].messages.size();  // below 1 + messages
    EXPECT_EQ(restore_error(bad, 6), "checkpoint: task " + bad[0].task.id +
                                         ": fewer events than its creation and messages");
  }
  {
    auto bad = entries;
    bad[1].messages.push_back(bad[0].messages.at(0));  // a message of another task
    bad[1].events += 1;
    EXPECT_EQ(restore_error(bad, 7), "checkpoint: task " + bad[1].task.id + ": message " +
                                         bad[0].messages[0].id + " of another task");
  }
  {
    auto bad = entries;
    TaskMessage copy = bad[0].messages.at(0);
    bad[0].messages.push_back(copy);  // the same id twice
    bad[0].events += 1;
    EXPECT_EQ(restore_error(bad, 7), "checkpoint: message id " + copy.id + " used twice");
  }
  {
    auto bad = entries;
    bad[0].task.id.clear();
    for (auto& m : bad[0].messages) m.task_id.clear();
    EXPECT_EQ(restore_error(bad, 6), "checkpoint: task : empty task or session id");
  }
}

TEST(ViewsRestore, RestoringIntoViewsThatHoldEventsIsCorrupt) {
  Folded f = folded();
  EXPECT_THROW_CODE(f.views.restore_task(std::move(f.entries[0])), ErrorCode::Corrupt);
}

// ---- Sequence::Subset and SessionViews ----------------------------------------------------------

TEST(SubsetViews, AcceptAnyLaterEventButNeverAnEarlierOne) {
  Journal j;
  const Event a = j.created("s", "a");
  const Event other = j.created("s2", "b");  // another session's: not folded here
  const Event update = j.updated("s", "a", {.state = SessionTaskState::Running});
  Views whole;
  whole.apply(a);
  EXPECT_THROW_CODE(whole.apply(update), ErrorCode::Corrupt);  // a gap for whole views
  Views subset(Sequence::Subset);
  subset.apply(a);
  subset.apply(update);
  EXPECT_EQ(subset.find("s", "a")->state, SessionTaskState::Running);
  EXPECT_EQ(subset.last_seq(), update.seq);
  EXPECT_THROW_CODE(subset.apply(other), ErrorCode::Corrupt);  // not after last_seq
}

TEST(SessionViews, EventsOfSessionsNotLoadedOnlyMoveTheirPosition) {
  Journal j;
  SessionViews sessions;
  sessions.reset(0);
  EXPECT_FALSE(sessions.apply(j.created("s", "a")));
  EXPECT_EQ(sessions.last_seq(), 1u);
  EXPECT_EQ(sessions.find("s"), nullptr);
  EXPECT_EQ(sessions.session_count(), 0u);
}

TEST(SessionViews, LoadedSessionFollowsLaterEvents) {
  Journal j;
  SessionViews sessions;
  const Event a = j.created("s", "a");
  sessions.reset(a.seq);
  Views loaded(Sequence::Subset);
  loaded.apply(a);
  sessions.install("s", std::move(loaded));
  sessions.apply(j.created("other", "x"));
  const auto applied = sessions.apply(j.updated("s", "a", {.state = SessionTaskState::Running}));
  ASSERT_TRUE(applied);
  EXPECT_EQ(applied->task->state, SessionTaskState::Running);
  EXPECT_EQ(applied->state_before, SessionTaskState::Queued);
  ASSERT_NE(sessions.find("s"), nullptr);
  EXPECT_EQ(sessions.find("s")->find("s", "a")->state, SessionTaskState::Running);
  EXPECT_EQ(sessions.last_seq(), 3u);
}

TEST(SessionViews, EventNotAfterThePositionIsCorruptAndChangesNothing) {
  Journal j;
  SessionViews sessions;
  sessions.reset(5);
  Views empty(Sequence::Subset);
  sessions.install("s", std::move(empty));
  EXPECT_THROW_CODE(sessions.apply(j.created("s", "a")), ErrorCode::Corrupt);  // seq 1
  EXPECT_EQ(sessions.last_seq(), 5u);
  EXPECT_EQ(sessions.find("s")->task_count(), 0u);
}

TEST(SessionViews, TrimForgetsTheLeastRecentlyUsedSessionsBeyondTheBound) {
  SessionViews sessions(2);
  sessions.install("a", Views(Sequence::Subset));
  sessions.install("b", Views(Sequence::Subset));
  sessions.install("c", Views(Sequence::Subset));
  EXPECT_EQ(sessions.session_count(), 3u);  // a call's sessions stay until it ends
  ASSERT_NE(sessions.find("a"), nullptr);   // a is now the most recently used
  sessions.trim();
  EXPECT_EQ(sessions.session_count(), 2u);
  EXPECT_NE(sessions.find("a"), nullptr);
  EXPECT_EQ(sessions.find("b"), nullptr);
  EXPECT_NE(sessions.find("c"), nullptr);
}

TEST(SessionViews, ResetForgetsEverySession) {
  SessionViews sessions;
  sessions.install("a", Views(Sequence::Subset));
  sessions.reset(42);
  EXPECT_EQ(sessions.session_count(), 0u);
  EXPECT_EQ(sessions.find("a"), nullptr);
  EXPECT_EQ(sessions.last_seq(), 42u);
}

// ---- LiveTasks
// ------------------------------------------------------------------------------------

std::vector<std::string> live_ids(const LiveTasks& live) {
  std::vector<std::string> ids;
  live.for_each([&](const SessionTask& task) { ids.push_back(task.id); });
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST(LiveTasks, HoldsEveryUnfinishedTaskOfEverySessionAsTheViewsFoldIt) {
  Journal j;
  LiveTasks live;
  Views views;
  for (const Event& e :
       {j.created("s1", "a"), j.created("s2", "b", "tool", SessionTaskState::Running),
        j.updated("s1", "a", {.state = SessionTaskState::Running, .heartbeat_at = at(3)}),
        j.updated("s2", "b", {.input_request = TaskInputRequest{.id = "q", .prompt = "?"}}),
        j.message("s2", "b", "m1", TaskMessageDirection::Inbound, "q"), j.cancel("s1", "a")}) {
    live.apply(e);
    views.apply(e);
  }
  EXPECT_EQ(live_ids(live), (std::vector<std::string>{"a", "b"}));
  live.for_each([&](const SessionTask& task) {
    EXPECT_EQ(task, *views.find(task.session_id, task.id)) << task.id;
  });
  EXPECT_EQ(live.last_seq(), j.seq());
}

TEST(LiveTasks, ATaskLeavesWhenItBecomesTerminalAndLaterEventsOfItAreIgnored) {
  Journal j;
  LiveTasks live;
  live.apply(j.created("s", "a"));
  live.apply(j.created("s", "b"));
  live.apply(j.updated("s", "a", {.state = SessionTaskState::Failed}));
  EXPECT_EQ(live_ids(live), std::vector<std::string>{"b"});
  live.apply(j.updated("s", "a", {.state = SessionTaskState::Running}));  // dropped by the rules
  live.apply(j.created("s", "c", "tool", SessionTaskState::Succeeded));   // created finished
  EXPECT_EQ(live_ids(live), std::vector<std::string>{"b"});
}

TEST(LiveTasks, EventsNotAfterTheNewestFoldedAreIgnored) {
  Journal j;
  LiveTasks live;
  const Event a = j.created("s", "a");
  const Event failed = j.updated("s", "a", {.state = SessionTaskState::Failed});
  live.apply(a);
  live.apply(failed);
  live.apply(a);  // a catch-up overlapping the read that built the index
  EXPECT_TRUE(live_ids(live).empty());
  EXPECT_EQ(live.last_seq(), failed.seq);
}

}  // namespace
}  // namespace taskjournal::projections
