// Acceptance tests of the host's side of the lifecycle (issue 12, README "Running a host"):
// listing orphans, the orphan reaper, the attempt-fenced TaskSink and Registry::wait, through the
// public API only, on every engine (TASKJOURNAL_TEST_ENGINE). Heartbeats go stale by moving a
// FakeClock, never by sleeping; "another process" is a forked child on the same journal.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/errors.hpp"
#include "support/fake_clock.hpp"
#include "support/journals.hpp"
#include "support/processes.hpp"
#include "support/temp_dir.hpp"
#include "support/watchdog.hpp"
#include "taskjournal/taskjournal.hpp"

namespace taskjournal {
// Readable gtest messages for the reaper's results.
void PrintTo(const ReapOutcome& o, std::ostream* os) {
  *os << "{" << o.session_id << ", " << o.task_id << ", " << o.status << ", \"" << o.detail
      << "\"}";
}
}  // namespace taskjournal

namespace {

using namespace std::chrono_literals;
using taskjournal::Batch;
using taskjournal::CreateSessionTask;
using taskjournal::ErrorCode;
using taskjournal::is_terminal;
using taskjournal::JournalReader;
using taskjournal::NewTaskMessage;
using taskjournal::Options;
using taskjournal::ReaperOptions;
using taskjournal::ReapOutcome;
using taskjournal::ReapReport;
using taskjournal::Registry;
using taskjournal::RegistryEvent;
using taskjournal::ReplayStep;
using taskjournal::SessionTask;
using taskjournal::SessionTaskState;
using taskjournal::SessionTaskUpdate;
using taskjournal::Subscription;
using taskjournal::TaskArtifact;
using taskjournal::TaskError;
using taskjournal::TaskHistoryStep;
using taskjournal::TaskInputRequest;
using taskjournal::TaskMessageDirection;
using taskjournal::TaskProgress;
using taskjournal::TaskSink;
using taskjournal::TaskTransition;
using taskjournal::TaskWakePolicy;
using taskjournal::TextPart;
using taskjournal::Timestamp;
using taskjournal::WaitResult;
using taskjournal::WakeNotice;
using taskjournal::testing::exited_ok;
using taskjournal::testing::fake_clock_start;
using taskjournal::testing::FakeClock;
using taskjournal::testing::fresh_journal;
using taskjournal::testing::GatedChild;
using taskjournal::testing::ids_of;
using taskjournal::testing::journal_at;
using taskjournal::testing::JournalLocation;
using taskjournal::testing::open_reader;
using taskjournal::testing::open_registry;
using taskjournal::testing::TempDir;
using taskjournal::testing::within_seconds;
using ::testing::AnyOf;
using ::testing::ElementsAre;
using ::testing::Eq;

/// The reapers' stale_after in these tests; heartbeats go stale by moving the clock past it.
constexpr std::chrono::seconds kStale = 300s;
/// A generous bound for a wait that is expected to end long before it.
constexpr std::chrono::milliseconds kLong = 20s;

const TaskError kOrphaned{.kind = "orphaned", .message = "worker heartbeat stopped"};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A private journal (":memory:" on SQLite) driven by a FakeClock.
struct Env {
  FakeClock clock;
  Registry reg;
  Env() : reg(open_registry(fresh_journal(), Options{.clock = clock.fn()})) {}
};

CreateSessionTask input(std::string session, std::string id,
                        SessionTaskState state = SessionTaskState::Running,
                        std::string kind = "subagent",
                        TaskWakePolicy policy = TaskWakePolicy::Silent) {
  return CreateSessionTask{.session_id = std::move(session),
                           .id = std::move(id),
                           .kind = std::move(kind),
                           .display_name = "Worker",
                           .spec = "{}",
                           .state = state,
                           .wake_policy = policy};
}

/// Creates task `id` of `session` in `state` and gives it a heartbeat at the clock's time.
SessionTask with_heartbeat(Registry& reg, const FakeClock& clock, const std::string& session,
                           const std::string& id,
                           SessionTaskState state = SessionTaskState::Running,
                           const std::string& kind = "subagent") {
  reg.create(input(session, id, state, kind));
  const auto task = reg.update(session, id, SessionTaskUpdate{.heartbeat_at = clock.now()});
  EXPECT_TRUE(task && task->heartbeat_at == clock.now()) << id;
  return task.value_or(SessionTask{});
}

/// `count` running tasks "task_0000", "task_0001", … of "sess_1" with a heartbeat now, in one
/// batch.
void make_orphans(Registry& reg, const FakeClock& clock, int count) {
  reg.batch([&](Batch& b) {
    for (int i = 0; i < count; ++i) {
      char id[16];
      std::snprintf(id, sizeof id, "task_%04d", i);
      b.create(input("sess_1", id));
      b.update("sess_1", id, SessionTaskUpdate{.heartbeat_at = clock.now()});
    }
  });
}

std::vector<std::string> ids_of(const ReapReport& report) {
  std::vector<std::string> ids;
  for (const auto& o : report.outcomes) ids.push_back(o.task_id);
  return ids;
}

std::vector<std::string> statuses_of(const ReapReport& report) {
  std::vector<std::string> out;
  for (const auto& o : report.outcomes) out.push_back(o.status);
  return out;
}

std::size_t events_of(Registry& reg, const std::string& session, const std::string& task) {
  return reg.history(session, task).size();
}

/// The Terminal transitions a registry's own writes announce, by task id.
struct TerminalCounter {
  std::mutex mutex;
  std::map<std::string, int> terminal;
  Subscription sub;
  explicit TerminalCounter(Registry& reg)
      : sub(reg.on_transition([this](TaskTransition t, const SessionTask& task) {
          if (t != TaskTransition::Terminal) return;
          std::lock_guard lock(mutex);
          ++terminal[task.id];
        })) {}
  int of(const std::string& id) {
    std::lock_guard lock(mutex);
    return terminal.count(id) ? terminal[id] : 0;
  }
};

// ---------------------------------------------------------------------------------------------
// list_orphaned
// ---------------------------------------------------------------------------------------------

TEST(OrphanListing, RunningTaskWithAStaleHeartbeatIsAnOrphan) {
  Env env;
  with_heartbeat(env.reg, env.clock, "sess_1", "task_1");
  env.clock.advance(kStale + 1s);
  const auto orphans = env.reg.list_orphaned(kStale);
  ASSERT_EQ(orphans.size(), 1u);
  EXPECT_EQ(orphans[0], env.reg.get("sess_1", "task_1"));
}

TEST(OrphanListing, QueuedTaskWithAStaleHeartbeatIsAnOrphan) {
  Env env;
  const SessionTask task =
      with_heartbeat(env.reg, env.clock, "sess_1", "task_1", SessionTaskState::Queued);
  ASSERT_EQ(task.state, SessionTaskState::Queued);
  env.clock.advance(kStale + 1s);
  EXPECT_THAT(ids_of(env.reg.list_orphaned(kStale)), ElementsAre("task_1"));
}

TEST(OrphanListing, HeartbeatYoungerThanStaleAfterIsNotAnOrphanUntilItAges) {
  Env env;
  with_heartbeat(env.reg, env.clock, "sess_1", "task_1");
  env.clock.advance(kStale - 1s);
  EXPECT_TRUE(env.reg.list_orphaned(kStale).empty());
  env.clock.advance(2s);
  EXPECT_THAT(ids_of(env.reg.list_orphaned(kStale)), ElementsAre("task_1"));
}

TEST(OrphanListing, StaleAfterIsTheCallersNotAFixedAge) {
  Env env;
  with_heartbeat(env.reg, env.clock, "sess_1", "task_1");
  env.clock.advance(61s);
  EXPECT_THAT(ids_of(env.reg.list_orphaned(60s)), ElementsAre("task_1"));
  EXPECT_TRUE(env.reg.list_orphaned(kStale).empty());
}

TEST(OrphanListing, TaskThatNeverSentAHeartbeatIsNeverAnOrphan) {
  Env env;
  env.reg.create(input("sess_1", "task_queued", SessionTaskState::Queued));
  env.reg.create(input("sess_1", "task_running", SessionTaskState::Running));
  with_heartbeat(env.reg, env.clock, "sess_1", "task_with_heartbeat");
  env.clock.advance(24h * 365);
  EXPECT_THAT(ids_of(env.reg.list_orphaned(kStale)), ElementsAre("task_with_heartbeat"));
}

TEST(OrphanListing, AwaitingInputAndTerminalTasksAreNotOrphans) {
  Env env;
  with_heartbeat(env.reg, env.clock, "sess_1", "task_awaiting");
  const auto awaiting = env.reg.update(
      "sess_1", "task_awaiting",
      SessionTaskUpdate{.input_request = TaskInputRequest{.id = "q1", .prompt = "?"}});
  ASSERT_EQ(awaiting->state, SessionTaskState::AwaitingInput);
  ASSERT_TRUE(awaiting->heartbeat_at);
  for (const auto state :
       {SessionTaskState::Succeeded, SessionTaskState::Failed, SessionTaskState::Canceled}) {
    const std::string id = "task_" + std::string(taskjournal::to_string(state));
    with_heartbeat(env.reg, env.clock, "sess_1", id);
    ASSERT_EQ(env.reg.update("sess_1", id, SessionTaskUpdate{.state = state})->state, state);
  }
  with_heartbeat(env.reg, env.clock, "sess_1", "task_running");
  env.clock.advance(kStale + 1h);
  EXPECT_THAT(ids_of(env.reg.list_orphaned(kStale)), ElementsAre("task_running"));
}

TEST(OrphanListing, OrphansOfEverySessionComeInTaskIdOrder) {
  Env env;
  with_heartbeat(env.reg, env.clock, "sess_b", "task_c");
  with_heartbeat(env.reg, env.clock, "sess_a", "task_a");
  with_heartbeat(env.reg, env.clock, "sess_c", "task_d");
  with_heartbeat(env.reg, env.clock, "sess_a", "task_b");
  env.clock.advance(kStale + 1s);
  const auto orphans = env.reg.list_orphaned(kStale);
  EXPECT_THAT(ids_of(orphans), ElementsAre("task_a", "task_b", "task_c", "task_d"));
  std::vector<std::string> sessions;
  for (const auto& t : orphans) sessions.push_back(t.session_id);
  EXPECT_THAT(sessions, ElementsAre("sess_a", "sess_a", "sess_b", "sess_c"));
}

TEST(OrphanListing, LimitKeepsTheSmallestTaskIds) {
  Env env;
  for (const char* id : {"task_5", "task_3", "task_1", "task_4", "task_2"}) {
    with_heartbeat(env.reg, env.clock, "sess_1", id);
  }
  env.clock.advance(kStale + 1s);
  EXPECT_THAT(ids_of(env.reg.list_orphaned(kStale, 1)), ElementsAre("task_1"));
  EXPECT_THAT(ids_of(env.reg.list_orphaned(kStale, 2)), ElementsAre("task_1", "task_2"));
  EXPECT_EQ(env.reg.list_orphaned(kStale, 5).size(), 5u);
  EXPECT_EQ(env.reg.list_orphaned(kStale).size(), 5u);  // the default limit is 50
}

TEST(OrphanListing, DefaultLimitIsFifty) {
  Env env;
  make_orphans(env.reg, env.clock, 51);
  env.clock.advance(kStale + 1s);
  const auto orphans = env.reg.list_orphaned(kStale);
  ASSERT_EQ(orphans.size(), 50u);
  EXPECT_EQ(orphans.back().id, "task_0049");
}

TEST(OrphanListing, LimitIsCappedAtAThousand) {
  Env env;
  make_orphans(env.reg, env.clock, 1001);
  env.clock.advance(kStale + 1s);
  const auto orphans = env.reg.list_orphaned(kStale, 5000);
  ASSERT_EQ(orphans.size(), 1000u);
  EXPECT_EQ(orphans.front().id, "task_0000");
  EXPECT_EQ(orphans.back().id, "task_0999");
}

TEST(OrphanListing, NonPositiveStaleAfterOrZeroLimitIsInvalidArgument) {
  Env env;
  with_heartbeat(env.reg, env.clock, "sess_1", "task_1");
  env.clock.advance(kStale + 1s);
  const auto seq = env.reg.last_seq();
  EXPECT_THROW_CODE(env.reg.list_orphaned(0s), ErrorCode::InvalidArgument);
  EXPECT_THROW_CODE(env.reg.list_orphaned(-1s), ErrorCode::InvalidArgument);
  EXPECT_THROW_CODE(env.reg.list_orphaned(kStale, 0), ErrorCode::InvalidArgument);
  EXPECT_THROW_CODE(env.reg.reap_orphans(ReaperOptions{.stale_after = 0s}),
                    ErrorCode::InvalidArgument);
  EXPECT_THROW_CODE(env.reg.reap_orphans(ReaperOptions{.stale_after = -5s}),
                    ErrorCode::InvalidArgument);
  EXPECT_THROW_CODE(env.reg.reap_orphans(ReaperOptions{.stale_after = kStale, .limit = 0}),
                    ErrorCode::InvalidArgument);
  EXPECT_EQ(env.reg.last_seq(), seq);
  EXPECT_EQ(env.reg.get("sess_1", "task_1")->state, SessionTaskState::Running);
}

TEST(OrphanListing, OrphansWrittenByAnotherRegistryAreListed) {
  TempDir dir;
  const JournalLocation at = journal_at(dir, "journal.db");
  FakeClock clock;
  Registry lister = open_registry(at, Options{.clock = clock.fn()});
  Registry writer = open_registry(at, Options{.clock = clock.fn()});
  EXPECT_TRUE(lister.list_orphaned(kStale).empty());  // the first call, before any write

  with_heartbeat(writer, clock, "sess_x", "task_1");
  clock.advance(kStale + 1s);
  EXPECT_THAT(ids_of(lister.list_orphaned(kStale)), ElementsAre("task_1"));

  with_heartbeat(writer, clock, "sess_y", "task_2");
  writer.update("sess_x", "task_1", SessionTaskUpdate{.state = SessionTaskState::Succeeded});
  clock.advance(kStale + 1s);
  const auto orphans = lister.list_orphaned(kStale);
  ASSERT_THAT(ids_of(orphans), ElementsAre("task_2"));
  EXPECT_EQ(orphans[0], writer.get("sess_y", "task_2"));
}

// ---------------------------------------------------------------------------------------------
// reap_orphans
// ---------------------------------------------------------------------------------------------

TEST(Reaper, StaleRunningTaskFailsAsOrphanedWithAttemptTwo) {
  Env env;
  with_heartbeat(env.reg, env.clock, "sess_1", "task_1");
  env.clock.advance(kStale + 1s);
  const auto events = events_of(env.reg, "sess_1", "task_1");

  const ReapReport report = env.reg.reap_orphans(ReaperOptions{.stale_after = kStale});

  EXPECT_EQ(report.candidates, 1u);
  EXPECT_EQ(report.reaped, 1u);
  EXPECT_EQ(report.reattached, 0u);
  EXPECT_EQ(report.skipped, 0u);
  ASSERT_EQ(report.outcomes.size(), 1u);
  EXPECT_EQ(report.outcomes[0].session_id, "sess_1");
  EXPECT_EQ(report.outcomes[0].task_id, "task_1");
  EXPECT_EQ(report.outcomes[0].status, "reaped");
  const auto task = env.reg.get("sess_1", "task_1");
  ASSERT_TRUE(task);
  EXPECT_EQ(task->state, SessionTaskState::Failed);
  EXPECT_EQ(task->error, kOrphaned);
  EXPECT_EQ(task->attempt, 2);
  EXPECT_EQ(task->finished_at, env.clock.now());
  EXPECT_EQ(events_of(env.reg, "sess_1", "task_1"), events + 1);  // one update
  EXPECT_TRUE(env.reg.list_orphaned(kStale).empty());
}

TEST(Reaper, StaleQueuedTaskFailsAsOrphanedToo) {
  Env env;
  with_heartbeat(env.reg, env.clock, "sess_1", "task_1", SessionTaskState::Queued);
  env.clock.advance(kStale + 1s);
  const ReapReport report = env.reg.reap_orphans(ReaperOptions{.stale_after = kStale});
  EXPECT_THAT(statuses_of(report), ElementsAre("reaped"));
  const auto task = env.reg.get("sess_1", "task_1");
  EXPECT_EQ(task->state, SessionTaskState::Failed);
  EXPECT_EQ(task->error, kOrphaned);
  EXPECT_EQ(task->attempt, 2);
}

TEST(Reaper, WithoutCanReattachEveryOrphanFailsAndStartIsNeverCalled) {
  Env env;
  with_heartbeat(env.reg, env.clock, "sess_1", "task_1");
  with_heartbeat(env.reg, env.clock, "sess_2", "task_2");
  env.clock.advance(kStale + 1s);
  int starts = 0;
  const ReapReport report = env.reg.reap_orphans(
      ReaperOptions{.stale_after = kStale, .start = [&](const SessionTask&) { ++starts; }});
  EXPECT_EQ(report.reaped, 2u);
  EXPECT_EQ(report.reattached, 0u);
  EXPECT_EQ(starts, 0);
  for (const auto& [session, id] : {std::pair{"sess_1", "task_1"}, std::pair{"sess_2", "task_2"}}) {
    const auto task = env.reg.get(session, id);
    EXPECT_EQ(task->state, SessionTaskState::Failed) << id;
    EXPECT_EQ(task->error, kOrphaned) << id;
  }
}

TEST(Reaper, NoOrphansGivesAnEmptyReportAndWritesNothing) {
  Env env;
  EXPECT_EQ(env.reg.reap_orphans(ReaperOptions{.stale_after = kStale}), ReapReport{});
  EXPECT_EQ(env.reg.last_seq(), 0u);

  with_heartbeat(env.reg, env.clock, "sess_1", "task_fresh");
  env.reg.create(input("sess_1", "task_without_heartbeat"));
  env.clock.advance(kStale - 1s);
  const auto seq = env.reg.last_seq();
  int asked = 0;
  EXPECT_EQ(env.reg.reap_orphans(ReaperOptions{.stale_after = kStale,
                                               .can_reattach =
                                                   [&](const SessionTask&) {
                                                     ++asked;
                                                     return true;
                                                   }}),
            ReapReport{});
  EXPECT_EQ(asked, 0);
  EXPECT_EQ(env.reg.last_seq(), seq);
}

TEST(Reaper, TaskMadeTerminalBeforeItsTurnIsSkippedAsAlreadyTerminal) {
  Env env;
  with_heartbeat(env.reg, env.clock, "sess_1", "task_a");
  with_heartbeat(env.reg, env.clock, "sess_1", "task_b");
  env.clock.advance(kStale + 1s);
  // Both are candidates; while task_a's new worker starts, task_b's old worker finishes.
  ReaperOptions options{.stale_after = kStale,
                        .can_reattach = [](const SessionTask& t) { return t.id == "task_a"; },
                        .start =
                            [&](const SessionTask&) {
                              env.reg.update(
                                  "sess_1", "task_b",
                                  SessionTaskUpdate{.state = SessionTaskState::Succeeded});
                            }};
  ReapReport report;
  within_seconds(60, "reap_orphans with a start that writes",
                 [&] { report = env.reg.reap_orphans(options); });

  EXPECT_EQ(report.candidates, 2u);
  EXPECT_EQ(report.reattached, 1u);
  EXPECT_EQ(report.reaped, 0u);
  EXPECT_EQ(report.skipped, 1u);
  ASSERT_EQ(report.outcomes.size(), 2u);
  EXPECT_EQ(report.outcomes[0].status, "reattached");
  EXPECT_EQ(report.outcomes[1], (ReapOutcome{.session_id = "sess_1",
                                             .task_id = "task_b",
                                             .status = "skipped",
                                             .detail = "already terminal"}));
  const auto b = env.reg.get("sess_1", "task_b");
  EXPECT_EQ(b->state, SessionTaskState::Succeeded);
  EXPECT_EQ(b->attempt, 1);
  EXPECT_FALSE(b->error);
}

TEST(Reaper, ReattachBumpsTheAttemptAndKeepsTheTaskRunning) {
  Env env;
  with_heartbeat(env.reg, env.clock, "sess_1", "task_1");
  env.clock.advance(kStale + 1s);
  const auto events = events_of(env.reg, "sess_1", "task_1");
  std::vector<SessionTask> started;

  const ReapReport report = env.reg.reap_orphans(
      ReaperOptions{.stale_after = kStale,
                    .can_reattach = [](const SessionTask&) { return true; },
                    .start = [&](const SessionTask& t) { started.push_back(t); }});

  EXPECT_EQ(report.candidates, 1u);
  EXPECT_EQ(report.reattached, 1u);
  EXPECT_EQ(report.reaped, 0u);
  EXPECT_EQ(report.skipped, 0u);
  ASSERT_EQ(report.outcomes.size(), 1u);
  EXPECT_EQ(report.outcomes[0].task_id, "task_1");
  EXPECT_EQ(report.outcomes[0].status, "reattached");
  const auto task = env.reg.get("sess_1", "task_1");
  ASSERT_TRUE(task);
  EXPECT_EQ(task->state, SessionTaskState::Running);
  EXPECT_EQ(task->attempt, 2);
  EXPECT_EQ(task->state_detail, "re-attached (attempt 2)");
  EXPECT_EQ(task->worker_id, "reaper");
  EXPECT_EQ(task->heartbeat_at, env.clock.now());
  EXPECT_FALSE(task->error);
  EXPECT_FALSE(task->finished_at);
  EXPECT_EQ(events_of(env.reg, "sess_1", "task_1"), events + 1);  // one update
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(started[0], *task);  // start gets the task of the new attempt
  // The reaper's heartbeat is the new attempt's: it is an orphan again only once that goes stale.
  EXPECT_TRUE(env.reg.list_orphaned(kStale).empty());
  env.clock.advance(kStale + 1s);
  EXPECT_THAT(ids_of(env.reg.list_orphaned(kStale)), ElementsAre("task_1"));
}

TEST(Reaper, CanReattachDecidesForEachOrphan) {
  Env env;
  with_heartbeat(env.reg, env.clock, "sess_1", "task_1", SessionTaskState::Running, "resumable");
  with_heartbeat(env.reg, env.clock, "sess_1", "task_2", SessionTaskState::Running, "oneshot");
  env.clock.advance(kStale + 1s);
  std::vector<std::string> asked;
  std::vector<std::string> started;
  const ReapReport report = env.reg.reap_orphans(
      ReaperOptions{.stale_after = kStale,
                    .can_reattach =
                        [&](const SessionTask& t) {
                          asked.push_back(t.id);
                          return t.kind == "resumable";
                        },
                    .start = [&](const SessionTask& t) { started.push_back(t.id); }});
  EXPECT_THAT(asked, ElementsAre("task_1", "task_2"));
  EXPECT_THAT(started, ElementsAre("task_1"));
  EXPECT_THAT(statuses_of(report), ElementsAre("reattached", "reaped"));
  EXPECT_EQ(env.reg.get("sess_1", "task_1")->state, SessionTaskState::Running);
  EXPECT_EQ(env.reg.get("sess_1", "task_2")->state, SessionTaskState::Failed);
  EXPECT_EQ(env.reg.get("sess_1", "task_2")->error, kOrphaned);
}

TEST(Reaper, OrphanWhoseAttemptsAreExhaustedFails) {
  Env env;
  with_heartbeat(env.reg, env.clock, "sess_1", "task_1");
  env.reg.update("sess_1", "task_1", SessionTaskUpdate{.increment_attempt = true});
  ASSERT_EQ(
      env.reg.update("sess_1", "task_1", SessionTaskUpdate{.increment_attempt = true})->attempt, 3);
  env.clock.advance(kStale + 1s);
  int starts = 0;
  const ReapReport report =
      env.reg.reap_orphans(ReaperOptions{.stale_after = kStale,
                                         .max_attempts = 3,
                                         .can_reattach = [](const SessionTask&) { return true; },
                                         .start = [&](const SessionTask&) { ++starts; }});
  EXPECT_EQ(report.reaped, 1u);
  EXPECT_EQ(report.reattached, 0u);
  EXPECT_THAT(statuses_of(report), ElementsAre("reaped"));
  EXPECT_EQ(starts, 0);
  const auto task = env.reg.get("sess_1", "task_1");
  EXPECT_EQ(task->state, SessionTaskState::Failed);
  EXPECT_EQ(task->error, kOrphaned);
  EXPECT_EQ(task->attempt, 4);
}

TEST(Reaper, TaskThatKeepsGoingStaleIsReattachedUntilItsAttemptsRunOut) {
  Env env;
  with_heartbeat(env.reg, env.clock, "sess_1", "task_1");
  std::vector<std::int32_t> started_attempts;
  const ReaperOptions options{
      .stale_after = kStale,
      .max_attempts = 3,
      .can_reattach = [](const SessionTask&) { return true; },
      .start = [&](const SessionTask& t) { started_attempts.push_back(t.attempt); }};

  env.clock.advance(kStale + 1s);
  EXPECT_THAT(statuses_of(env.reg.reap_orphans(options)), ElementsAre("reattached"));
  EXPECT_EQ(env.reg.get("sess_1", "task_1")->state_detail, "re-attached (attempt 2)");
  env.clock.advance(kStale + 1s);
  EXPECT_THAT(statuses_of(env.reg.reap_orphans(options)), ElementsAre("reattached"));
  EXPECT_EQ(env.reg.get("sess_1", "task_1")->state_detail, "re-attached (attempt 3)");
  env.clock.advance(kStale + 1s);
  EXPECT_THAT(statuses_of(env.reg.reap_orphans(options)), ElementsAre("reaped"));

  EXPECT_THAT(started_attempts, ElementsAre(2, 3));
  const auto task = env.reg.get("sess_1", "task_1");
  EXPECT_EQ(task->state, SessionTaskState::Failed);
  EXPECT_EQ(task->error, kOrphaned);
  EXPECT_EQ(task->attempt, 4);
}

TEST(Reaper, StartThatThrowsFailsTheNewAttemptOnce) {
  Env env;
  with_heartbeat(env.reg, env.clock, "sess_1", "task_1");
  env.clock.advance(kStale + 1s);
  TerminalCounter terminal(env.reg);
  const auto events = events_of(env.reg, "sess_1", "task_1");
  int starts = 0;

  const ReapReport report =
      env.reg.reap_orphans(ReaperOptions{.stale_after = kStale,
                                         .can_reattach = [](const SessionTask&) { return true; },
                                         .start =
                                             [&](const SessionTask&) {
                                               ++starts;
                                               throw std::runtime_error("no worker slot free");
                                             }});

  EXPECT_EQ(starts, 1);
  EXPECT_EQ(report.candidates, 1u);
  EXPECT_EQ(report.reaped, 1u);
  EXPECT_EQ(report.reattached, 0u);
  EXPECT_EQ(report.skipped, 0u);
  EXPECT_THAT(statuses_of(report), ElementsAre("reaped"));
  const auto task = env.reg.get("sess_1", "task_1");
  EXPECT_EQ(task->state, SessionTaskState::Failed);
  EXPECT_EQ(task->attempt, 2);
  EXPECT_EQ(
      task->error,
      (TaskError{.kind = "orphaned",
                 .message = "worker heartbeat stopped; re-attach failed: no worker slot free"}));
  EXPECT_EQ(events_of(env.reg, "sess_1", "task_1"), events + 2);  // re-attach, then fail
  EXPECT_EQ(terminal.of("task_1"), 1);
}

TEST(Reaper, ReportListsEveryCandidateInTaskIdOrderWithItsSession) {
  Env env;
  with_heartbeat(env.reg, env.clock, "sess_2", "task_d");  // fresh below: not a candidate
  with_heartbeat(env.reg, env.clock, "sess_1", "task_c", SessionTaskState::Running, "throws");
  with_heartbeat(env.reg, env.clock, "sess_2", "task_b", SessionTaskState::Running, "oneshot");
  with_heartbeat(env.reg, env.clock, "sess_1", "task_a", SessionTaskState::Running, "resumable");
  env.clock.advance(kStale + 1s);
  env.reg.update("sess_2", "task_d", SessionTaskUpdate{.heartbeat_at = env.clock.now()});

  const ReapReport report = env.reg.reap_orphans(
      ReaperOptions{.stale_after = kStale,
                    .can_reattach = [](const SessionTask& t) { return t.kind != "oneshot"; },
                    .start =
                        [](const SessionTask& t) {
                          if (t.kind == "throws") throw std::runtime_error("cannot start");
                        }});

  EXPECT_EQ(report.candidates, 3u);
  EXPECT_EQ(report.reaped, 2u);
  EXPECT_EQ(report.reattached, 1u);
  EXPECT_EQ(report.skipped, 0u);
  EXPECT_THAT(ids_of(report), ElementsAre("task_a", "task_b", "task_c"));
  EXPECT_THAT(statuses_of(report), ElementsAre("reattached", "reaped", "reaped"));
  std::vector<std::string> sessions;
  for (const auto& o : report.outcomes) sessions.push_back(o.session_id);
  EXPECT_THAT(sessions, ElementsAre("sess_1", "sess_2", "sess_1"));
  EXPECT_EQ(env.reg.get("sess_2", "task_d")->state, SessionTaskState::Running);
  EXPECT_EQ(env.reg.get("sess_2", "task_d")->attempt, 1);
}

TEST(Reaper, LimitBoundsTheCandidatesOfOneRun) {
  Env env;
  for (const char* id : {"task_3", "task_1", "task_2"}) {
    with_heartbeat(env.reg, env.clock, "sess_1", id);
  }
  env.clock.advance(kStale + 1s);
  const ReapReport first = env.reg.reap_orphans(ReaperOptions{.stale_after = kStale, .limit = 2});
  EXPECT_EQ(first.candidates, 2u);
  EXPECT_THAT(ids_of(first), ElementsAre("task_1", "task_2"));
  EXPECT_EQ(env.reg.get("sess_1", "task_3")->state, SessionTaskState::Running);
  const ReapReport second = env.reg.reap_orphans(ReaperOptions{.stale_after = kStale, .limit = 2});
  EXPECT_THAT(ids_of(second), ElementsAre("task_3"));
  EXPECT_EQ(env.reg.get("sess_1", "task_3")->state, SessionTaskState::Failed);
}

TEST(Reaper, OneRunTakesAtMostAThousandOrphans) {
  FakeClock clock;
  Registry reg = open_registry(
      fresh_journal(), Options{.clock = clock.fn(), .durability = taskjournal::Durability::Normal});
  make_orphans(reg, clock, 1001);
  clock.advance(kStale + 1s);
  const ReapReport report = reg.reap_orphans(ReaperOptions{.stale_after = kStale, .limit = 5000});
  EXPECT_EQ(report.candidates, 1000u);
  EXPECT_EQ(report.reaped, 1000u);
  EXPECT_EQ(reg.get("sess_1", "task_0999")->state, SessionTaskState::Failed);
  EXPECT_EQ(reg.get("sess_1", "task_1000")->state, SessionTaskState::Running);
}

TEST(Reaper, EachStepNotifiesLikeAnyOtherUpdate) {
  Env env;
  env.reg.create(input("sess_1", "task_reaped", SessionTaskState::Running, "oneshot",
                       TaskWakePolicy::OnTerminal));
  env.reg.update("sess_1", "task_reaped", SessionTaskUpdate{.heartbeat_at = env.clock.now()});
  with_heartbeat(env.reg, env.clock, "sess_1", "task_resumed", SessionTaskState::Running,
                 "resumable");
  env.clock.advance(kStale + 1s);
  std::vector<RegistryEvent> events;
  std::vector<std::pair<TaskTransition, std::string>> transitions;
  std::vector<WakeNotice> wakes;
  const Subscription a = env.reg.on_event([&](const RegistryEvent& e) { events.push_back(e); });
  const Subscription b = env.reg.on_transition(
      [&](TaskTransition t, const SessionTask& task) { transitions.emplace_back(t, task.id); });
  const Subscription c = env.reg.on_wake([&](const WakeNotice& w) { wakes.push_back(w); });

  env.reg.reap_orphans(
      ReaperOptions{.stale_after = kStale,
                    .can_reattach = [](const SessionTask& t) { return t.kind == "resumable"; }});

  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, "task.updated");
  EXPECT_EQ(events[0].task_id, "task_reaped");
  EXPECT_EQ(events[0].task, env.reg.get("sess_1", "task_reaped"));
  EXPECT_EQ(events[1].type, "task.updated");
  EXPECT_EQ(events[1].task_id, "task_resumed");
  EXPECT_EQ(events[1].task, env.reg.get("sess_1", "task_resumed"));
  EXPECT_THAT(transitions,
              ElementsAre(std::pair{TaskTransition::Terminal, std::string("task_reaped")}));
  ASSERT_EQ(wakes.size(), 1u);
  EXPECT_EQ(wakes[0].task_id, "task_reaped");
  EXPECT_EQ(wakes[0].transition, TaskTransition::Terminal);
}

// --- concurrent reapers ----------------------------------------------------------------------

constexpr int kRacedOrphans = 40;

std::string raced_id(int i) {
  char id[16];
  std::snprintf(id, sizeof id, "task_%02d", i);
  return id;
}

/// Even tasks may be re-attached, odd ones fail.
bool raced_reattachable(const std::string& id) { return std::stoi(id.substr(5)) % 2 == 0; }

/// What one reaper of a race did: its report, the tasks it started, the Terminal transitions its
/// own writes announced.
struct ReaperRun {
  ReapReport report;
  std::vector<std::string> started;
  std::vector<std::string> terminal;
};

ReaperRun run_raced_reaper(Registry& reg) {
  ReaperRun run;
  std::mutex mutex;
  const Subscription sub = reg.on_transition([&](TaskTransition t, const SessionTask& task) {
    std::lock_guard lock(mutex);
    if (t == TaskTransition::Terminal) run.terminal.push_back(task.id);
  });
  run.report = reg.reap_orphans(
      ReaperOptions{.stale_after = kStale,
                    .limit = 1000,
                    .can_reattach = [](const SessionTask& t) { return raced_reattachable(t.id); },
                    .start =
                        [&](const SessionTask& t) {
                          std::lock_guard lock(mutex);
                          run.started.push_back(t.id);
                        }});
  return run;
}

void save(const ReaperRun& run, const std::filesystem::path& file) {
  std::ofstream out(file);
  const ReapReport& r = run.report;
  out << "counts\t" << r.candidates << '\t' << r.reaped << '\t' << r.reattached << '\t' << r.skipped
      << '\n';
  for (const auto& o : r.outcomes) {
    out << "outcome\t" << o.session_id << '\t' << o.task_id << '\t' << o.status << '\t' << o.detail
        << '\n';
  }
  for (const auto& id : run.started) out << "started\t" << id << '\n';
  for (const auto& id : run.terminal) out << "terminal\t" << id << '\n';
  if (!out.flush()) throw std::runtime_error("cannot write " + file.string());
}

ReaperRun load(const std::filesystem::path& file) {
  ReaperRun run;
  std::ifstream in(file);
  EXPECT_TRUE(in) << "no report " << file;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream fields(line);
    for (std::string x; std::getline(fields, x, '\t');) f.push_back(x);
    if (f.size() == 5 && f[0] == "counts") {
      run.report.candidates = static_cast<std::uint32_t>(std::stoul(f[1]));
      run.report.reaped = static_cast<std::uint32_t>(std::stoul(f[2]));
      run.report.reattached = static_cast<std::uint32_t>(std::stoul(f[3]));
      run.report.skipped = static_cast<std::uint32_t>(std::stoul(f[4]));
    } else if (f.size() >= 4 && f[0] == "outcome") {
      run.report.outcomes.push_back(ReapOutcome{
          .session_id = f[1], .task_id = f[2], .status = f[3], .detail = f.size() > 4 ? f[4] : ""});
    } else if (f.size() == 2 && f[0] == "started") {
      run.started.push_back(f[1]);
    } else if (f.size() == 2 && f[0] == "terminal") {
      run.terminal.push_back(f[1]);
    } else {
      ADD_FAILURE() << "unreadable report line in " << file << ": " << line;
    }
  }
  return run;
}

/// The orphans of a race: kRacedOrphans running tasks with a heartbeat at fake_clock_start().
void make_raced_orphans(const JournalLocation& at) {
  FakeClock clock;
  Registry reg = open_registry(at, Options{.clock = clock.fn()});
  reg.batch([&](Batch& b) {
    for (int i = 0; i < kRacedOrphans; ++i) {
      b.create(input("sess_1", raced_id(i)));
      b.update("sess_1", raced_id(i), SessionTaskUpdate{.heartbeat_at = clock.now()});
    }
  });
}

/// The reapers' clock: an hour after the orphans' heartbeats.
Timestamp raced_reapers_now() { return fake_clock_start() + 1h; }

/// Every orphan was reaped or re-attached exactly once over all `runs`, by the reports, by the
/// tasks and by their audit trail (the fold of the journal).
void expect_each_orphan_taken_once(const JournalLocation& at, const std::vector<ReaperRun>& runs) {
  std::map<std::string, int> taken, started, terminal;
  std::uint32_t total = 0;
  for (const auto& run : runs) {
    const ReapReport& r = run.report;
    EXPECT_EQ(r.candidates, r.outcomes.size());
    EXPECT_EQ(r.candidates, r.reaped + r.reattached + r.skipped);
    std::uint32_t reaped = 0, reattached = 0, skipped = 0;
    for (const auto& o : r.outcomes) {
      EXPECT_EQ(o.session_id, "sess_1");
      if (o.status == "reaped") {
        ++reaped;
        ++taken[o.task_id];
        EXPECT_FALSE(raced_reattachable(o.task_id)) << o.task_id;
      } else if (o.status == "reattached") {
        ++reattached;
        ++taken[o.task_id];
        EXPECT_TRUE(raced_reattachable(o.task_id)) << o.task_id;
      } else {
        ++skipped;
        EXPECT_EQ(o.status, "skipped") << o.task_id;
        EXPECT_THAT(o.detail, AnyOf(Eq("already terminal"), Eq("superseded by concurrent reaper"),
                                    Eq("already terminal or missing")))
            << o.task_id;
      }
    }
    EXPECT_EQ(r.reaped, reaped);
    EXPECT_EQ(r.reattached, reattached);
    EXPECT_EQ(r.skipped, skipped);
    total += r.reaped + r.reattached;
    for (const auto& id : run.started) ++started[id];
    for (const auto& id : run.terminal) ++terminal[id];
  }
  EXPECT_EQ(total, static_cast<std::uint32_t>(kRacedOrphans));

  Registry reg = open_registry(at);
  std::map<std::string, int> attempt_bumps, failures;
  JournalReader reader = open_reader(at);
  reader.replay({}, [&](const ReplayStep& step) {
    if (!step.before) return;
    if (step.after.attempt > step.before->attempt) ++attempt_bumps[step.after.id];
    if (!is_terminal(step.before->state) && step.after.state == SessionTaskState::Failed) {
      ++failures[step.after.id];
    }
  });
  for (int i = 0; i < kRacedOrphans; ++i) {
    const std::string id = raced_id(i);
    SCOPED_TRACE(id);
    EXPECT_EQ(taken[id], 1);
    EXPECT_EQ(attempt_bumps[id], 1);
    const auto task = reg.get("sess_1", id);
    ASSERT_TRUE(task);
    EXPECT_EQ(task->attempt, 2);
    if (raced_reattachable(id)) {
      EXPECT_EQ(task->state, SessionTaskState::Running);
      EXPECT_EQ(task->worker_id, "reaper");
      EXPECT_EQ(task->state_detail, "re-attached (attempt 2)");
      EXPECT_EQ(started[id], 1);
      EXPECT_EQ(terminal[id], 0);
      EXPECT_EQ(failures[id], 0);
    } else {
      EXPECT_EQ(task->state, SessionTaskState::Failed);
      EXPECT_EQ(task->error, kOrphaned);
      EXPECT_EQ(started[id], 0);
      EXPECT_EQ(terminal[id], 1);
      EXPECT_EQ(failures[id], 1);
    }
  }
  EXPECT_TRUE(reader.verify().problems.empty());
}

TEST(Reaper, ConcurrentReapersInTwoProcessesNeverReapOrReattachATaskTwice) {
  TempDir dir;
  const JournalLocation at = journal_at(dir, "journal.db");
  std::vector<std::unique_ptr<GatedChild>> reapers;
  for (int k = 0; k < 2; ++k) {
    const std::filesystem::path report = dir / ("reaper_" + std::to_string(k) + ".txt");
    reapers.push_back(std::make_unique<GatedChild>([&at, report] {
      FakeClock clock(raced_reapers_now());
      Registry reg = open_registry(at, Options{.clock = clock.fn(), .busy_timeout = 60s});
      save(run_raced_reaper(reg), report);
    }));
  }
  make_raced_orphans(at);
  for (auto& r : reapers) r->go();
  for (auto& r : reapers) ASSERT_TRUE(exited_ok(r->wait())) << "a reaper process failed";

  expect_each_orphan_taken_once(at, {load(dir / "reaper_0.txt"), load(dir / "reaper_1.txt")});
}

TEST(Reaper, ConcurrentReapersOnTwoRegistriesOfOneProcessNeverReapOrReattachATaskTwice) {
  TempDir dir;
  const JournalLocation at = journal_at(dir, "journal.db");
  make_raced_orphans(at);
  FakeClock clock(raced_reapers_now());
  Registry first = open_registry(at, Options{.clock = clock.fn(), .busy_timeout = 60s});
  Registry second = open_registry(at, Options{.clock = clock.fn(), .busy_timeout = 60s});
  std::vector<ReaperRun> runs(2);
  std::latch ready(2);
  std::thread a([&] {
    ready.arrive_and_wait();
    runs[0] = run_raced_reaper(first);
  });
  std::thread b([&] {
    ready.arrive_and_wait();
    runs[1] = run_raced_reaper(second);
  });
  a.join();
  b.join();
  expect_each_orphan_taken_once(at, runs);
}

// ---------------------------------------------------------------------------------------------
// TaskSink
// ---------------------------------------------------------------------------------------------

TEST(TaskSink, NamesItsTaskAndAttempt) {
  Env env;
  const TaskSink first = env.reg.sink("sess_1", "task_1");
  EXPECT_EQ(first.session_id(), "sess_1");
  EXPECT_EQ(first.task_id(), "task_1");
  EXPECT_EQ(first.attempt(), 1);
  EXPECT_EQ(env.reg.sink("sess_1", "task_1", 3).attempt(), 3);
  EXPECT_EQ(env.reg.last_seq(), 0u);  // making a sink writes nothing
}

TEST(TaskSink, EachCallIsOneUpdateFencedWithItsAttempt) {
  TempDir dir;
  const JournalLocation at = journal_at(dir, "journal.db");
  FakeClock clock;
  Registry reg = open_registry(at, Options{.clock = clock.fn()});
  reg.create(input("sess_1", "task_1", SessionTaskState::Queued));
  reg.update("sess_1", "task_1", SessionTaskUpdate{.increment_attempt = true});
  TaskSink sink = reg.sink("sess_1", "task_1", 2);
  const auto events = events_of(reg, "sess_1", "task_1");

  const auto running = sink.state(SessionTaskState::Running, "warming up");
  ASSERT_TRUE(running);
  EXPECT_EQ(running->state, SessionTaskState::Running);
  EXPECT_EQ(running->state_detail, "warming up");
  EXPECT_EQ(running, reg.get("sess_1", "task_1"));

  clock.advance(1s);
  const TaskProgress progress{.current = 1, .total = 3, .unit = "steps"};
  const auto progressed = sink.progress(progress);
  ASSERT_TRUE(progressed);
  EXPECT_EQ(progressed->progress, progress);
  EXPECT_EQ(progressed->updated_at, clock.now());

  clock.advance(1s);
  const auto beating = sink.heartbeat();
  ASSERT_TRUE(beating);
  EXPECT_EQ(beating->heartbeat_at, clock.now());

  const TaskArtifact report{.name = "report", .type = "text/markdown", .path = "/tmp/r.md"};
  const TaskArtifact log{.name = "log", .type = "text/plain", .url = "https://example.com/l"};
  EXPECT_THAT(sink.artifact(report)->artifacts, ElementsAre(report));
  EXPECT_THAT(sink.artifact(log)->artifacts, ElementsAre(report, log));

  const TaskInputRequest question{.id = "q1", .prompt = "Which branch?"};
  const auto asking = sink.request_input(question);
  ASSERT_TRUE(asking);
  EXPECT_EQ(asking->state, SessionTaskState::AwaitingInput);
  EXPECT_EQ(asking->input_request, question);
  EXPECT_EQ(asking, reg.get("sess_1", "task_1"));

  EXPECT_EQ(events_of(reg, "sess_1", "task_1"), events + 6);
  // Each of the six events carries the sink's attempt as its fence.
  std::vector<std::optional<std::int32_t>> fences;
  open_reader(at).history(
      "task_1", {}, [&](const TaskHistoryStep& step) { fences.push_back(step.expected_attempt); });
  ASSERT_GE(fences.size(), 6u);
  EXPECT_EQ(std::vector(fences.end() - 6, fences.end()),
            std::vector<std::optional<std::int32_t>>(6, 2));
}

TEST(TaskSink, FinalStateWithoutDetailFinishesTheTask) {
  Env env;
  env.reg.create(input("sess_1", "task_1"));
  const auto done = env.reg.sink("sess_1", "task_1").state(SessionTaskState::Succeeded);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state, SessionTaskState::Succeeded);
  EXPECT_EQ(done->finished_at, env.clock.now());
  EXPECT_FALSE(done->state_detail);
}

TEST(TaskSink, HeartbeatKeepsTheTaskFromBecomingAnOrphan) {
  Env env;
  env.reg.create(input("sess_1", "task_1"));
  TaskSink sink = env.reg.sink("sess_1", "task_1");
  sink.heartbeat();
  env.clock.advance(kStale - 1s);
  sink.heartbeat();
  env.clock.advance(kStale - 1s);
  EXPECT_TRUE(env.reg.list_orphaned(kStale).empty());
  EXPECT_EQ(env.reg.reap_orphans(ReaperOptions{.stale_after = kStale}), ReapReport{});
  env.clock.advance(2s);  // the worker stopped beating
  EXPECT_THAT(ids_of(env.reg.list_orphaned(kStale)), ElementsAre("task_1"));
}

TEST(TaskSink, SinkOfASupersededAttemptChangesNothing) {
  Env env;
  env.reg.create(input("sess_1", "task_1"));
  TaskSink old_worker = env.reg.sink("sess_1", "task_1", 1);
  env.reg.update("sess_1", "task_1", SessionTaskUpdate{.increment_attempt = true});
  const SessionTask before = *env.reg.get("sess_1", "task_1");
  ASSERT_EQ(before.attempt, 2);
  env.clock.advance(1s);

  EXPECT_EQ(old_worker.state(SessionTaskState::Succeeded, "done"), before);
  EXPECT_EQ(old_worker.progress(TaskProgress{.current = 9}), before);
  EXPECT_EQ(old_worker.heartbeat(), before);
  EXPECT_EQ(old_worker.request_input(TaskInputRequest{.id = "q", .prompt = "?"}), before);
  EXPECT_EQ(old_worker.artifact(TaskArtifact{.name = "late", .type = "text/plain"}), before);
  EXPECT_THROW_CODE(old_worker.post(NewTaskMessage::outbound_text("too late")),
                    ErrorCode::StaleAttempt);
  EXPECT_EQ(env.reg.get("sess_1", "task_1"), before);
  EXPECT_TRUE(env.reg.list_messages("sess_1", "task_1").empty());

  // The current attempt's sink works.
  TaskSink new_worker = env.reg.sink("sess_1", "task_1", 2);
  EXPECT_EQ(new_worker.state(SessionTaskState::Succeeded)->state, SessionTaskState::Succeeded);
}

TEST(TaskSink, OldWorkerOfAReattachedTaskIsFencedOffAndTheNewOneIsNot) {
  Env env;
  env.reg.create(input("sess_1", "task_1"));
  TaskSink old_worker = env.reg.sink("sess_1", "task_1");
  old_worker.heartbeat();
  env.clock.advance(kStale + 1s);
  std::optional<TaskSink> new_worker;
  env.reg.reap_orphans(ReaperOptions{
      .stale_after = kStale,
      .can_reattach = [](const SessionTask&) { return true; },
      .start =
          [&](const SessionTask& t) { new_worker = env.reg.sink(t.session_id, t.id, t.attempt); }});
  ASSERT_TRUE(new_worker);
  EXPECT_EQ(new_worker->attempt(), 2);

  // The old worker wakes up and reports: nothing of it lands.
  EXPECT_EQ(old_worker.state(SessionTaskState::Failed)->state, SessionTaskState::Running);
  EXPECT_THROW_CODE(old_worker.post(NewTaskMessage::outbound_text("stale")),
                    ErrorCode::StaleAttempt);
  const auto message = new_worker->post(NewTaskMessage::outbound_text("resumed"));
  EXPECT_EQ(message.direction, TaskMessageDirection::Outbound);
  EXPECT_EQ(new_worker->state(SessionTaskState::Succeeded)->state, SessionTaskState::Succeeded);
  const auto messages = env.reg.list_messages("sess_1", "task_1");
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0], message);
}

TEST(TaskSink, OldWorkerOfAReapedTaskCannotReviveIt) {
  Env env;
  env.reg.create(input("sess_1", "task_1"));
  TaskSink old_worker = env.reg.sink("sess_1", "task_1");
  old_worker.heartbeat();
  env.clock.advance(kStale + 1s);
  env.reg.reap_orphans(ReaperOptions{.stale_after = kStale});
  const SessionTask reaped = *env.reg.get("sess_1", "task_1");
  ASSERT_EQ(reaped.state, SessionTaskState::Failed);
  env.clock.advance(1s);
  EXPECT_EQ(old_worker.heartbeat(), reaped);
  EXPECT_EQ(old_worker.state(SessionTaskState::Succeeded, "finished after all"), reaped);
  EXPECT_THROW_CODE(old_worker.post(NewTaskMessage::outbound_text("done")),
                    ErrorCode::StaleAttempt);
  EXPECT_EQ(env.reg.get("sess_1", "task_1"), reaped);
}

TEST(TaskSink, PostRecordsAMessageOnTheTasksChannel) {
  Env env;
  env.reg.create(input("sess_1", "task_1"));
  TaskSink sink = env.reg.sink("sess_1", "task_1");
  const auto message = sink.post(NewTaskMessage::outbound_text("half way"));
  EXPECT_EQ(message.task_id, "task_1");
  EXPECT_EQ(message.direction, TaskMessageDirection::Outbound);
  ASSERT_EQ(message.content.size(), 1u);
  EXPECT_EQ(std::get<TextPart>(message.content[0]).text, "half way");
  EXPECT_THAT(env.reg.list_messages("sess_1", "task_1"), ElementsAre(message));
}

TEST(TaskSink, MissingOrForeignTaskGivesNulloptAndPostThrowsNotFound) {
  Env env;
  env.reg.create(input("sess_1", "task_1"));
  const auto seq = env.reg.last_seq();
  for (TaskSink sink : {env.reg.sink("sess_2", "task_1"), env.reg.sink("sess_1", "task_none")}) {
    SCOPED_TRACE(sink.session_id() + "/" + sink.task_id());
    EXPECT_FALSE(sink.state(SessionTaskState::Succeeded));
    EXPECT_FALSE(sink.progress(TaskProgress{.current = 1}));
    EXPECT_FALSE(sink.heartbeat());
    EXPECT_FALSE(sink.request_input(TaskInputRequest{.id = "q", .prompt = "?"}));
    EXPECT_FALSE(sink.artifact(TaskArtifact{.name = "a", .type = "t"}));
    EXPECT_THROW_CODE(sink.post(NewTaskMessage::outbound_text("x")), ErrorCode::NotFound);
  }
  EXPECT_EQ(env.reg.last_seq(), seq);
  EXPECT_EQ(env.reg.get("sess_1", "task_1")->state, SessionTaskState::Running);
}

TEST(TaskSink, ConcurrentSinksNeverLoseEachOthersArtifacts) {
  TempDir dir;
  const JournalLocation at = journal_at(dir, "journal.db");
  Registry first = open_registry(at, Options{.busy_timeout = 60s});
  Registry second = open_registry(at, Options{.busy_timeout = 60s});
  first.create(input("sess_1", "task_1"));
  const TaskSink a = first.sink("sess_1", "task_1");
  const TaskSink b = second.sink("sess_1", "task_1");
  constexpr int kEach = 20;
  // Two threads per registry, each with a copy of that registry's sink.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([sink = (t % 2 == 0 ? a : b), t]() mutable {
      for (int i = 0; i < kEach; ++i) {
        sink.artifact(TaskArtifact{.name = "a" + std::to_string(t) + "-" + std::to_string(i),
                                   .type = "text/plain"});
      }
    });
  }
  for (auto& t : threads) t.join();
  std::multiset<std::string> names;
  const SessionTask task = *first.get("sess_1", "task_1");
  for (const auto& artifact : task.artifacts) names.insert(artifact.name);
  EXPECT_EQ(names.size(), 4u * kEach);
  for (int t = 0; t < 4; ++t) {
    for (int i = 0; i < kEach; ++i) {
      EXPECT_EQ(names.count("a" + std::to_string(t) + "-" + std::to_string(i)), 1u);
    }
  }
}

TEST(TaskSink, KeepsWorkingAfterTheRegistryMoves) {
  FakeClock clock;
  std::optional<Registry> original(open_registry(fresh_journal(), Options{.clock = clock.fn()}));
  original->create(input("sess_1", "task_1"));
  TaskSink sink = original->sink("sess_1", "task_1");
  Registry moved = std::move(*original);
  original.reset();
  const auto task = sink.progress(TaskProgress{.current = 5});
  ASSERT_TRUE(task);
  EXPECT_EQ(task->progress, TaskProgress{.current = 5});
  EXPECT_EQ(moved.get("sess_1", "task_1"), task);
}

// ---------------------------------------------------------------------------------------------
// wait
// ---------------------------------------------------------------------------------------------

TEST(Wait, ReturnsATerminalTaskAtOnce) {
  Env env;
  env.reg.create(input("sess_1", "task_1"));
  env.reg.update("sess_1", "task_1",
                 SessionTaskUpdate{.state = SessionTaskState::Succeeded, .summary = "done"});
  const auto result = env.reg.wait("sess_1", "task_1", kLong);
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->timed_out);
  EXPECT_EQ(result->task, env.reg.get("sess_1", "task_1"));
}

TEST(Wait, ReturnsATaskAwaitingInputAtOnce) {
  Env env;
  env.reg.create(input("sess_1", "task_1"));
  env.reg.sink("sess_1", "task_1").request_input(TaskInputRequest{.id = "q1", .prompt = "?"});
  const auto result = env.reg.wait("sess_1", "task_1", kLong);
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->timed_out);
  EXPECT_EQ(result->task.state, SessionTaskState::AwaitingInput);
  EXPECT_EQ(result->task, env.reg.get("sess_1", "task_1"));
}

TEST(Wait, TimesOutWithTheNewestSnapshot) {
  TempDir dir;
  const JournalLocation at = journal_at(dir, "journal.db");
  Registry reg = open_registry(at);
  Registry other = open_registry(at);
  reg.create(input("sess_1", "task_1"));
  other.update("sess_1", "task_1", SessionTaskUpdate{.progress = TaskProgress{.current = 7}});
  const auto result = reg.wait("sess_1", "task_1", 200ms);
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->timed_out);
  EXPECT_EQ(result->task.state, SessionTaskState::Running);
  EXPECT_EQ(result->task.progress, TaskProgress{.current = 7});
  EXPECT_EQ(result->task, other.get("sess_1", "task_1"));
}

TEST(Wait, MissingOrForeignTaskGivesNullopt) {
  Env env;
  env.reg.create(input("sess_1", "task_1"));
  EXPECT_FALSE(env.reg.wait("sess_2", "task_1", 2s));
  EXPECT_FALSE(env.reg.wait("sess_1", "task_none", 2s));
}

TEST(Wait, ReturnsWhenAnotherThreadFinishesTheTask) {
  Env env;
  env.reg.create(input("sess_1", "task_1"));
  std::optional<WaitResult> result;
  std::thread waiter([&] { result = env.reg.wait("sess_1", "task_1", kLong); });
  std::this_thread::sleep_for(50ms);  // lets the waiter start waiting first, most of the time
  env.reg.update("sess_1", "task_1",
                 SessionTaskUpdate{.state = SessionTaskState::Failed,
                                   .error = TaskError{.kind = "boom", .message = "it broke"}});
  waiter.join();
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->timed_out);
  EXPECT_EQ(result->task.state, SessionTaskState::Failed);
  EXPECT_EQ(result->task, env.reg.get("sess_1", "task_1"));
}

/// A child process finishes (or asks for input on) the task the parent waits for.
void expect_wait_sees_another_process(std::optional<std::chrono::milliseconds> watch,
                                      bool ask_for_input) {
  TempDir dir;
  const JournalLocation at = journal_at(dir, "journal.db");
  GatedChild child([&at, ask_for_input] {
    std::this_thread::sleep_for(200ms);  // most of the time the parent waits already
    Registry reg = open_registry(at);
    TaskSink sink = reg.sink("sess_1", "task_1");
    if (ask_for_input) {
      sink.request_input(TaskInputRequest{.id = "q1", .prompt = "Which branch?"});
    } else {
      sink.state(SessionTaskState::Succeeded, "done in another process");
    }
  });
  Registry reg = open_registry(at, Options{.watch = watch});
  reg.create(input("sess_1", "task_1"));
  child.go();
  const auto result = reg.wait("sess_1", "task_1", kLong);
  EXPECT_TRUE(exited_ok(child.wait()));
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->timed_out);
  if (ask_for_input) {
    EXPECT_EQ(result->task.state, SessionTaskState::AwaitingInput);
    EXPECT_EQ(result->task.input_request,
              (TaskInputRequest{.id = "q1", .prompt = "Which branch?"}));
  } else {
    EXPECT_EQ(result->task.state, SessionTaskState::Succeeded);
    EXPECT_EQ(result->task.state_detail, "done in another process");
  }
  EXPECT_EQ(result->task, reg.get("sess_1", "task_1"));
}

TEST(Wait, ReturnsWhenAnotherProcessFinishesTheTask) {
  expect_wait_sees_another_process(std::nullopt, false);
}

TEST(Wait, ReturnsWhenAnotherProcessAsksForInput) {
  expect_wait_sees_another_process(std::nullopt, true);
}

TEST(Wait, ReturnsWhenAnotherProcessFinishesTheTaskWhileWatching) {
  expect_wait_sees_another_process(20ms, false);
}

TEST(Wait, ReturnsWhenAnotherProcessAsksForInputWhileWatching) {
  expect_wait_sees_another_process(20ms, true);
}

/// Many threads wait at once on the tasks another registry of this process ends.
void expect_many_waiters(std::optional<std::chrono::milliseconds> watch) {
  TempDir dir;
  const JournalLocation at = journal_at(dir, "journal.db");
  Registry reg = open_registry(at, Options{.watch = watch});
  Registry writer = open_registry(at);
  constexpr int kTasks = 6;
  constexpr int kWaitersPerTask = 3;
  for (int i = 0; i < kTasks; ++i) reg.create(input("sess_1", "task_" + std::to_string(i)));
  std::vector<std::optional<WaitResult>> results(kTasks * kWaitersPerTask);
  std::vector<std::thread> waiters;
  for (int w = 0; w < kTasks * kWaitersPerTask; ++w) {
    waiters.emplace_back(
        [&, w] { results[w] = reg.wait("sess_1", "task_" + std::to_string(w % kTasks), kLong); });
  }
  std::this_thread::sleep_for(50ms);  // lets the waiters start waiting first, most of the time
  for (int i = 0; i < kTasks; ++i) {
    const std::string id = "task_" + std::to_string(i);
    if (i % 3 == 0) writer.update("sess_1", id, {.state = SessionTaskState::Succeeded});
    if (i % 3 == 1) writer.update("sess_1", id, {.state = SessionTaskState::Canceled});
    if (i % 3 == 2) writer.sink("sess_1", id).request_input({.id = "q", .prompt = "?"});
  }
  within_seconds(120, "the waiting threads", [&] {
    for (auto& t : waiters) t.join();
  });
  for (int w = 0; w < kTasks * kWaitersPerTask; ++w) {
    SCOPED_TRACE("waiter " + std::to_string(w));
    ASSERT_TRUE(results[w]);
    EXPECT_FALSE(results[w]->timed_out);
    const int i = w % kTasks;
    EXPECT_EQ(results[w]->task.id, "task_" + std::to_string(i));
    EXPECT_EQ(results[w]->task.state, i % 3 == 0   ? SessionTaskState::Succeeded
                                      : i % 3 == 1 ? SessionTaskState::Canceled
                                                   : SessionTaskState::AwaitingInput);
  }
}

TEST(Wait, ManyThreadsWaitAtOnceForAnotherRegistrysWrites) { expect_many_waiters(std::nullopt); }

TEST(Wait, ManyThreadsWaitAtOnceForAnotherRegistrysWritesWhileWatching) {
  expect_many_waiters(20ms);
}

}  // namespace
