// Group commit (issue 14, item 4): calls of one Registry that arrive while a commit is in flight
// are written by the queue's leader in one transaction with one commit (store/group_commit.hpp).
//
// Groups are made for sure, not by luck: the registry's clock is a gate. Armed, its next call —
// made by a call's decision, under the registry's lock, while that call leads its group of one —
// waits until the test has started the calls it wants grouped, one at a time, each queued behind
// the one before (the writer queue's `queued` hook tells). Released, the held call commits, and
// the next leader takes everything queued behind it: exactly those calls, in that order, one
// group (the `grouped` hook says so, and each test checks it). No sleeps, no timings: waits are
// bounded only to turn a hang into a message.
#include "store/group_commit.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "store/postgres/pq.hpp"
#include "store/sqlite/engine.hpp"
#include "support/errors.hpp"
#include "support/fake_clock.hpp"
#include "support/journals.hpp"
#include "support/processes.hpp"
#include "support/watchdog.hpp"
#include "taskjournal/taskjournal.hpp"

using namespace taskjournal;
using namespace taskjournal::testing;
using namespace std::chrono_literals;
using ::testing::Each;
using ::testing::ElementsAre;

namespace {

const std::string kSession = "gc";

/// How long any wait of these tests may last before the test program aborts (a bound).
constexpr auto kBound = 120s;

/// Calls per thread in the load tests (TASKJOURNAL_GC_CALLS for more locally).
int calls_per_thread(int fallback) {
  if (const char* v = std::getenv("TASKJOURNAL_GC_CALLS")) return std::max(1, std::atoi(v));
  return fallback;
}

template <class Lock, class Pred>
void bounded_wait(std::condition_variable& cv, Lock& lock, Pred pred, const char* what) {
  if (!cv.wait_for(lock, kBound, pred)) {
    std::fprintf(stderr, "group_commit_test: %s did not happen within %lld s: deadlock?\n", what,
                 static_cast<long long>(kBound.count()));
    std::abort();
  }
}

// ---- the writer queue as a test sees it
// ----------------------------------------------------------

/// Installs the writer queue's hooks for its lifetime (construct it before the registries it
/// watches, so that it outlives them), records the size of every group led, and gives the clock
/// that holds a decision until calls are queued behind it.
class QueueProbe {
 public:
  QueueProbe() {
    store::testing::set_writer_queue_hooks([this](std::size_t n) { queued(n); },
                                           [this](std::size_t n) { grouped(n); });
  }
  ~QueueProbe() { store::testing::set_writer_queue_hooks({}, {}); }
  QueueProbe(const QueueProbe&) = delete;
  QueueProbe& operator=(const QueueProbe&) = delete;

  /// For Options::clock: a fake clock one microsecond further at each call (the same calls in
  /// the same order get the same times), whose first call after hold() waits for release().
  std::function<Timestamp()> clock() {
    return [this] {
      {
        std::unique_lock lock(mutex_);
        if (armed_) {
          armed_ = false;
          holding_ = true;
          cv_.notify_all();
          bounded_wait(
              cv_, lock, [&] { return !holding_; }, "release() of the held clock");
        }
      }
      return fake_.advance(1us);
    };
  }

  /// Moves the fake clock on (to make tasks old enough to prune).
  void advance(std::chrono::microseconds step) { fake_.advance(step); }

  /// Arms the clock and forgets the groups recorded so far.
  void hold() {
    std::lock_guard lock(mutex_);
    armed_ = true;
    queued_ = 0;
    groups_.clear();
  }
  /// Waits until a decision is held by the armed clock.
  void wait_held() {
    std::unique_lock lock(mutex_);
    bounded_wait(
        cv_, lock, [&] { return holding_; }, "the held decision");
  }
  /// Waits until the writer queue held `n` calls (the held one included).
  void wait_queued(std::size_t n) {
    std::unique_lock lock(mutex_);
    bounded_wait(
        cv_, lock, [&] { return queued_ >= n; }, "a call joining the writer queue");
  }
  void release() {
    std::lock_guard lock(mutex_);
    holding_ = false;
    cv_.notify_all();
  }

  /// The sizes of the groups led since hold() (or construction), in the order they were led.
  std::vector<std::size_t> groups() const {
    std::lock_guard lock(mutex_);
    return groups_;
  }
  void clear_groups() {
    std::lock_guard lock(mutex_);
    groups_.clear();
  }
  /// Called by each leader, under the registry's lock, before its transaction begins.
  void on_group(std::function<void(std::size_t)> f) {
    std::lock_guard lock(mutex_);
    on_group_ = std::move(f);
  }

 private:
  void queued(std::size_t n) {
    std::lock_guard lock(mutex_);
    queued_ = n;
    cv_.notify_all();
  }
  void grouped(std::size_t n) {
    std::function<void(std::size_t)> f;
    {
      std::lock_guard lock(mutex_);
      groups_.push_back(n);
      f = on_group_;
    }
    if (f) f(n);
  }

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  FakeClock fake_;
  bool armed_ = false;
  bool holding_ = false;
  std::size_t queued_ = 0;
  std::vector<std::size_t> groups_;
  std::function<void(std::size_t)> on_group_;
};

/// What one call did: returned (no error), threw an Error (its code and text), or threw
/// something else (`other`).
struct Outcome {
  std::optional<ErrorCode> error;
  std::string what;
  bool other = false;
};

Outcome outcome_of(const std::function<void()>& f) {
  try {
    f();
    return {};
  } catch (const Error& e) {
    return {.error = e.code(), .what = e.what()};
  } catch (const std::exception& e) {
    return {.what = e.what(), .other = true};
  } catch (...) {
    return {.what = "unknown exception", .other = true};
  }
}

/// Runs `lead` in a thread of its own and holds its decision (its clock call) while each of
/// `calls` starts in a thread of its own and queues behind the one before; then lets them all
/// go and returns each call's outcome once all returned. `calls` are then one group, in this
/// order (with group_commit; without, one group each) — checked by the caller with groups().
/// `lead` must call the clock (a call that writes).
std::vector<Outcome> run_grouped(QueueProbe& probe, const std::function<void()>& lead,
                                 const std::vector<std::function<void()>>& calls) {
  std::vector<Outcome> outcomes(calls.size());
  Outcome lead_outcome;
  within_seconds(300, "a held group", [&] {
    probe.hold();
    std::vector<std::thread> threads;
    threads.emplace_back([&] { lead_outcome = outcome_of(lead); });
    probe.wait_held();
    for (std::size_t i = 0; i < calls.size(); ++i) {
      threads.emplace_back([&, i] { outcomes[i] = outcome_of(calls[i]); });
      probe.wait_queued(i + 2);
    }
    probe.release();
    for (auto& t : threads) t.join();
  });
  EXPECT_FALSE(lead_outcome.error || lead_outcome.other)
      << "the leading call: " << lead_outcome.what;
  return outcomes;
}

/// The group sizes run_grouped gives with group commit: the held call alone, then its calls.
std::vector<std::size_t> held_then(std::size_t n) { return {1, n}; }

::testing::AssertionResult returned(const Outcome& o) {
  if (!o.error && !o.other) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "threw " << (o.error ? to_string(*o.error) : "?") << ": " << o.what;
}
::testing::AssertionResult threw(const Outcome& o, ErrorCode code) {
  if (o.error == code) return ::testing::AssertionSuccess();
  if (!o.error && !o.other) return ::testing::AssertionFailure() << "returned";
  return ::testing::AssertionFailure()
         << "threw " << (o.error ? to_string(*o.error) : "?") << ": " << o.what;
}

/// Every event of the journal, read by a fresh reader.
std::vector<JournalEvent> events_of(const JournalLocation& at) {
  JournalReader reader = open_reader(at);
  std::vector<JournalEvent> out;
  reader.read(0, [&](const JournalEvent& e) {
    out.push_back(e);
    return true;
  });
  return out;
}

/// The journal read by a fresh reader verifies, and its sequence numbers are 1..n without a gap.
::testing::AssertionResult verifies_gap_free(const JournalLocation& at) {
  JournalReader reader = open_reader(at);
  const VerifyReport report = reader.verify();
  if (!report.ok()) {
    return ::testing::AssertionFailure() << "verify: " << report.problems.size()
                                         << " problems, first: " << report.problems.front().what;
  }
  std::uint64_t expected = 1;
  bool gap = false;
  reader.read(0, [&](const JournalEvent& e) {
    if (e.seq != expected) gap = true;
    ++expected;
    return !gap;
  });
  if (gap) return ::testing::AssertionFailure() << "a gap before event " << expected;
  if (expected - 1 != report.last_seq) {
    return ::testing::AssertionFailure()
           << "read " << expected - 1 << " events, verify says " << report.last_seq;
  }
  return ::testing::AssertionSuccess();
}

CreateSessionTask task_input(std::string id, std::string session = kSession) {
  return CreateSessionTask{.session_id = std::move(session),
                           .id = std::move(id),
                           .kind = "gc",
                           .display_name = "Group commit",
                           .wake_policy = TaskWakePolicy::OnActivity};
}

const std::string kNotUtf8 = "bad \xff utf-8";

}  // namespace

// ---- refused calls in a group ------------------------------------------------------------------

TEST(GroupCommit, RefusedCallsOfAGroupWriteNothingAndTheirNeighboursSucceed) {
  QueueProbe probe;
  TempDir dir;
  const JournalLocation at = journal_at(dir, "refused");
  Registry r = open_registry(at, {.clock = probe.clock()});
  r.create(task_input("lead"));
  r.create(task_input("t1"));
  r.update(kSession, "t1", {.state = SessionTaskState::Running});
  r.create(task_input("t2"));
  const SessionTask t2_done = *r.update(kSession, "t2", {.state = SessionTaskState::Succeeded});
  r.create(task_input("t3"));
  const SessionTask t4 = r.create(task_input("t4"));
  r.create(task_input("o1", "other"));
  const std::uint64_t before = r.last_seq();

  std::optional<SessionTask> created, missing, progressed, dropped, cancel_missing, again;
  std::optional<TaskMessage> message;
  const std::vector<std::function<void()>> calls{
      /* 0 writes */ [&] { created = r.create(task_input("n1")); },
      /* 1 */ [&] { missing = r.update(kSession, "missing", {.summary = "x"}); },
      /* 2 */ [&] { r.update(kSession, "t1", {.summary = kNotUtf8}); },
      /* 3 */
      [&] {
        auto m = NewTaskMessage::outbound_text("stale");
        m.expected_attempt = 7;
        r.record_message(kSession, "t3", m);
      },
      /* 4 */ [&] { r.record_message(kSession, "missing", NewTaskMessage::inbound_text("?")); },
      /* 5 */ [&] { r.create(task_input("o1")); },
      /* 6 */ [&] { again = r.create(task_input("t4")); },
      /* 7 writes */
      [&] { progressed = r.update(kSession, "t1", {.progress = TaskProgress{.current = 3}}); },
      /* 8 writes */
      [&] { message = r.record_message(kSession, "t3", NewTaskMessage::outbound_text("hi")); },
      /* 9 writes (dropped by rule 2) */
      [&] { dropped = r.update(kSession, "t2", {.state = SessionTaskState::Running}); },
      /* 10 */ [&] { cancel_missing = r.request_cancel(kSession, "missing"); },
      /* 11 */ [&] { r.create({.session_id = kSession, .id = "n2", .kind = ""}); },
      /* 12 */
      [&] {
        r.update(kSession, "t1",
                 {.heartbeat_at = Timestamp{} - std::chrono::hours(24 * 366 * 2000)});
      },
  };
  const auto outcomes = run_grouped(
      probe, [&] { r.update(kSession, "lead", {.summary = "leading"}); }, calls);
  EXPECT_EQ(probe.groups(), held_then(calls.size()));

  EXPECT_TRUE(returned(outcomes[0]));
  EXPECT_TRUE(returned(outcomes[1]));
  EXPECT_EQ(missing, std::nullopt);
  EXPECT_TRUE(threw(outcomes[2], ErrorCode::InvalidArgument));
  EXPECT_TRUE(threw(outcomes[3], ErrorCode::StaleAttempt));
  EXPECT_TRUE(threw(outcomes[4], ErrorCode::NotFound));
  EXPECT_TRUE(threw(outcomes[5], ErrorCode::Conflict));
  EXPECT_TRUE(returned(outcomes[6]));
  EXPECT_EQ(again, t4) << "an idempotent create returns the stored task";
  EXPECT_TRUE(returned(outcomes[7]));
  EXPECT_TRUE(returned(outcomes[8]));
  EXPECT_TRUE(returned(outcomes[9]));
  EXPECT_EQ(dropped, t2_done) << "rule 2 leaves a terminal task exactly as it was";
  EXPECT_TRUE(returned(outcomes[10]));
  EXPECT_EQ(cancel_missing, std::nullopt);
  EXPECT_TRUE(threw(outcomes[11], ErrorCode::InvalidArgument));
  EXPECT_TRUE(threw(outcomes[12], ErrorCode::InvalidArgument));

  // The lead's update and calls 0, 7, 8, 9: five events, nothing of the refused ones.
  EXPECT_EQ(r.last_seq(), before + 5);
  const auto events = events_of(at);
  ASSERT_EQ(events.size(), before + 5);
  std::vector<std::string> written;
  for (std::size_t i = before; i < events.size(); ++i) written.push_back(events[i].task_id);
  EXPECT_THAT(written, ElementsAre("lead", "n1", "t1", "t3", "t2"));
  EXPECT_EQ(created, r.get(kSession, "n1"));
  EXPECT_EQ(progressed, r.get(kSession, "t1"));
  EXPECT_EQ(dropped, r.get(kSession, "t2"));
  EXPECT_EQ(again, r.get(kSession, "t4"));
  ASSERT_TRUE(message);
  EXPECT_THAT(r.list_messages(kSession, "t3"), ElementsAre(*message));
  EXPECT_FALSE(r.get(kSession, "n2"));
  EXPECT_FALSE(r.get(kSession, "missing"));
  EXPECT_EQ(r.get("other", "o1")->session_id, "other");
  EXPECT_TRUE(verifies_gap_free(at));
  // A fresh registry folds the same views.
  Registry fresh = open_registry(at);
  EXPECT_EQ(dump_sessions(fresh, {kSession, "other"}), dump_sessions(r, {kSession, "other"}));
}

TEST(GroupCommit, UnderLoadRefusedCallsWriteNothingAndEveryAnswerIsWhatGetShows) {
  QueueProbe probe;
  TempDir dir;
  const JournalLocation at = journal_at(dir, "load");
  Registry r = open_registry(at, {.clock = probe.clock()});
  r.create(task_input("shared", "elsewhere"));
  const std::uint64_t before = r.last_seq();

  constexpr int kThreads = 16;
  const int kCalls = calls_per_thread(60);
  std::atomic<std::uint64_t> writes{0};
  std::vector<std::vector<std::string>> failures(kThreads);
  within_seconds(300, "the load", [&] {
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        std::vector<std::string>& failed = failures[static_cast<std::size_t>(i)];
        const std::string session = "s" + std::to_string(i);
        std::mt19937 rng(static_cast<unsigned>(i + 1));
        std::vector<std::string> tasks;
        const auto check = [&](bool ok, const std::string& what) {
          if (!ok) failed.push_back(what);
        };
        for (int n = 0; n < kCalls; ++n) {
          const unsigned op = tasks.empty() ? 0 : rng() % 9;
          const std::string& task = tasks.empty() ? session : tasks[rng() % tasks.size()];
          const Outcome o = outcome_of([&] {
            switch (op) {
              case 0: {
                const std::string id = session + "_t" + std::to_string(n);
                const SessionTask t = r.create(task_input(id, session));
                ++writes;
                tasks.push_back(id);
                check(r.get(session, id) == t, "create " + id + ": returned task differs");
                break;
              }
              case 1: {
                auto t = r.update(
                    session, task,
                    {.state = SessionTaskState::Running,
                     .append_artifact = TaskArtifact{.name = std::to_string(n), .type = "log"}});
                ++writes;
                check(t && r.get(session, task) == t, "update " + task + ": returned task differs");
                break;
              }
              case 2:
                check(!r.update(session, session + "_missing", {.summary = "x"}),
                      "update of a missing task returned a task");
                break;
              case 3:
                check(error_code([&] { r.update(session, task, {.summary = kNotUtf8}); }) ==
                          ErrorCode::InvalidArgument,
                      "an update that is not UTF-8 was not refused");
                break;
              case 4: {
                auto m = NewTaskMessage::outbound_text("stale");
                m.expected_attempt = 2;
                check(error_code([&] { r.record_message(session, task, m); }) ==
                          ErrorCode::StaleAttempt,
                      "a stale message was not refused");
                break;
              }
              case 5: {
                const TaskMessage m =
                    r.record_message(session, task, NewTaskMessage::outbound_text("m"));
                ++writes;
                const auto last = r.list_messages(session, task, 1);
                check(last.size() == 1 && last[0] == m, "message " + m.id + " differs");
                break;
              }
              case 6:
                check(error_code([&] { r.create(task_input("shared", session)); }) ==
                          ErrorCode::Conflict,
                      "a create with another session's id was not refused");
                break;
              case 7:
                check(r.create(task_input(task, session)) == r.get(session, task),
                      "an idempotent create returned another task");
                break;
              case 8: {
                auto t = r.request_cancel(session, task);
                ++writes;  // an event each time (notifying only the first)
                check(t && r.get(session, task) == t, "cancel " + task + ": returned task differs");
                break;
              }
            }
          });
          if (o.error || o.other) failed.push_back("op " + std::to_string(op) + " threw " + o.what);
        }
      });
    }
    for (auto& t : threads) t.join();
  });
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_THAT(failures[static_cast<std::size_t>(i)], ::testing::IsEmpty()) << "thread " << i;
  }
  EXPECT_EQ(r.last_seq(), before + writes.load());
  EXPECT_EQ(events_of(at).size(), before + writes.load());
  EXPECT_TRUE(verifies_gap_free(at));
  const auto groups = probe.groups();
  RecordProperty("largest_group",
                 static_cast<int>(*std::max_element(groups.begin(), groups.end())));
  std::vector<std::string> sessions;
  for (int i = 0; i < kThreads; ++i) sessions.push_back("s" + std::to_string(i));
  Registry fresh = open_registry(at);
  EXPECT_EQ(dump_sessions(fresh, sessions), dump_sessions(r, sessions));
}

// ---- decisions see the calls before them -------------------------------------------------------

TEST(GroupCommit, EachCallOfAGroupDecidesOnTheEventsOfTheCallsBeforeIt) {
  QueueProbe probe;
  TempDir dir;
  const JournalLocation at = journal_at(dir, "sees");
  Registry r = open_registry(at, {.clock = probe.clock()});
  std::mutex m;
  std::vector<std::pair<TaskTransition, std::string>> transitions;
  Subscription sub = r.on_transition([&](TaskTransition tr, const SessionTask& t) {
    std::lock_guard lock(m);
    transitions.emplace_back(tr, t.id);
  });
  r.create(task_input("lead"));
  r.create(task_input("fin"));
  r.update(kSession, "fin", {.state = SessionTaskState::Running});
  r.create(task_input("att"));
  const std::uint64_t before = r.last_seq();

  std::optional<SessionTask> first_finish, second_finish, incremented, dup1, dup2, fresh,
      fresh_updated, fresh_cancelled;
  std::optional<TaskMessage> fenced_ok;
  const std::vector<std::function<void()>> calls{
      /* 0 */
      [&] { first_finish = r.update(kSession, "fin", {.state = SessionTaskState::Succeeded}); },
      /* 1: dropped by rule 2 (the task is terminal by call 0) */
      [&] {
        second_finish = r.update(kSession, "fin",
                                 {.state = SessionTaskState::Failed,
                                  .error = TaskError{.kind = "late", .message = "too late"}});
      },
      /* 2 */ [&] { incremented = r.update(kSession, "att", {.increment_attempt = true}); },
      /* 3: stale after call 2 */
      [&] {
        auto msg = NewTaskMessage::outbound_text("from attempt 1");
        msg.expected_attempt = 1;
        r.record_message(kSession, "att", msg);
      },
      /* 4: current after call 2 */
      [&] {
        auto msg = NewTaskMessage::outbound_text("from attempt 2");
        msg.expected_attempt = 2;
        fenced_ok = r.record_message(kSession, "att", msg);
      },
      /* 5 */ [&] { dup1 = r.create(task_input("dup")); },
      /* 6: idempotent after call 5 */ [&] { dup2 = r.create(task_input("dup")); },
      /* 7: conflict after call 5 */ [&] { r.create(task_input("dup", "other")); },
      /* 8 */ [&] { fresh = r.create(task_input("fresh")); },
      /* 9: finds the task of call 8 */
      [&] { fresh_updated = r.update(kSession, "fresh", {.summary = "seen"}); },
      /* 10 */ [&] { fresh_cancelled = r.request_cancel(kSession, "fresh"); },
      /* 11: a message to the task of call 8 */
      [&] { r.record_message(kSession, "fresh", NewTaskMessage::inbound_text("hello")); },
  };
  const auto outcomes = run_grouped(
      probe, [&] { r.update(kSession, "lead", {.summary = "leading"}); }, calls);
  EXPECT_EQ(probe.groups(), held_then(calls.size()));
  for (std::size_t i : {0u, 1u, 2u, 4u, 5u, 6u, 8u, 9u, 10u, 11u}) {
    EXPECT_TRUE(returned(outcomes[i])) << "call " << i;
  }
  EXPECT_TRUE(threw(outcomes[3], ErrorCode::StaleAttempt));
  EXPECT_TRUE(threw(outcomes[7], ErrorCode::Conflict));

  ASSERT_TRUE(first_finish && second_finish);
  EXPECT_EQ(first_finish->state, SessionTaskState::Succeeded);
  EXPECT_EQ(*second_finish, *first_finish) << "the second finish saw the first";
  EXPECT_EQ(incremented->attempt, 2);
  ASSERT_TRUE(fenced_ok);
  EXPECT_THAT(r.list_messages(kSession, "att"), ElementsAre(*fenced_ok));
  ASSERT_TRUE(dup1 && dup2);
  EXPECT_EQ(*dup2, *dup1) << "the second create of one id returns the first's task";
  ASSERT_TRUE(fresh && fresh_updated && fresh_cancelled);
  EXPECT_EQ(fresh_updated->summary, "seen");
  EXPECT_TRUE(fresh_cancelled->cancel_requested_at);
  EXPECT_EQ(fresh_cancelled->summary, "seen");
  EXPECT_EQ(r.get(kSession, "fresh"), fresh_cancelled);
  EXPECT_EQ(r.list_messages(kSession, "fresh").size(), 1u);

  // Events: lead, fin ×2, att, the message, dup (once), fresh, its update, cancel, message.
  const auto events = events_of(at);
  std::vector<std::string> written;
  for (std::size_t i = before; i < events.size(); ++i) written.push_back(events[i].task_id);
  EXPECT_THAT(written, ElementsAre("lead", "fin", "fin", "att", "att", "dup", "fresh", "fresh",
                                   "fresh", "fresh"));
  {
    std::lock_guard lock(m);
    // One terminal transition for fin (the dropped second finish is none), one message
    // transition for the outbound message of att.
    EXPECT_THAT(transitions, ElementsAre(std::pair{TaskTransition::Terminal, std::string("fin")},
                                         std::pair{TaskTransition::Message, std::string("att")}));
  }
  EXPECT_TRUE(verifies_gap_free(at));
  Registry reopened = open_registry(at);
  EXPECT_EQ(dump_sessions(reopened, {kSession, "other"}), dump_sessions(r, {kSession, "other"}));
}

TEST(GroupCommit, AGroupDecidesOnWhatAnotherRegistryCommittedJustBeforeIt) {
  QueueProbe probe;
  TempDir dir;
  const JournalLocation at = journal_at(dir, "other-writer");
  Registry r = open_registry(at, {.clock = probe.clock()});
  Registry other = open_registry(at);
  r.create(task_input("lead", "leads"));
  r.create(task_input("t1"));
  const std::uint64_t before = r.last_seq();
  constexpr std::size_t kGroup = 4;
  bool wrote = false;
  // The other registry writes while this one's group is about to begin (its leader holds this
  // registry's lock, not the journal's): the group's decisions must rest on those events.
  // (PostgreSQL: the group's optimistic commit conflicts and the group is decided again.)
  probe.on_group([&](std::size_t n) {
    if (n != kGroup || wrote) return;
    wrote = true;
    other.create(task_input("x"));
    other.update(kSession, "t1", {.state = SessionTaskState::Running});
  });
  std::optional<SessionTask> created, updated, t1;
  std::optional<TaskMessage> message;
  const std::vector<std::function<void()>> calls{
      [&] { created = r.create(task_input("x")); },
      [&] { updated = r.update(kSession, "x", {.summary = "seen"}); },
      [&] { t1 = r.update(kSession, "t1", {.summary = "after the other"}); },
      [&] { message = r.record_message(kSession, "x", NewTaskMessage::inbound_text("hi")); },
  };
  const auto outcomes = run_grouped(
      probe, [&] { r.update("leads", "lead", {.summary = "leading"}); }, calls);
  EXPECT_TRUE(wrote);
  // The held lead, this registry's group, then the other registry's two calls (from inside it).
  EXPECT_EQ(probe.groups(), (std::vector<std::size_t>{1, kGroup, 1, 1}));
  for (const auto& o : outcomes) EXPECT_TRUE(returned(o));
  const auto x = other.get(kSession, "x");
  ASSERT_TRUE(x && created);
  EXPECT_EQ(created->created_at, x->created_at) << "the create was not idempotent";
  ASSERT_TRUE(updated);
  EXPECT_EQ(updated->summary, "seen");
  ASSERT_TRUE(t1);
  EXPECT_EQ(t1->state, SessionTaskState::Running) << "the update did not see the other's";
  EXPECT_EQ(t1->summary, "after the other");
  const auto events = events_of(at);
  std::vector<std::string> written;
  for (std::size_t i = before; i < events.size(); ++i) written.push_back(events[i].task_id);
  EXPECT_THAT(written, ElementsAre("lead", "x", "t1", "x", "t1", "x"));
  EXPECT_TRUE(verifies_gap_free(at));
  EXPECT_EQ(dump_sessions(other, {kSession}), dump_sessions(r, {kSession}));
}

TEST(GroupCommitPrune, SqliteCallsAfterAPruneInTheirGroupFindThePrunedTaskGone) {
  ASSERT_EQ(test_engine(), TestEngine::Sqlite)
      << "on PostgreSQL prune_terminal takes the registry's lock before it queues (to build its "
         "index of finished tasks), so a held decision keeps it out of the queue";
  QueueProbe probe;
  TempDir dir;
  const JournalLocation at = journal_at(dir, "prune-then");
  Registry r = open_registry(at, {.clock = probe.clock()});
  r.create(task_input("lead", "leads"));
  r.create(task_input("old"));
  r.update(kSession, "old", {.state = SessionTaskState::Succeeded});
  r.create(task_input("kept"));
  probe.advance(std::chrono::hours(2));
  const std::uint64_t before = r.last_seq();
  std::vector<PrunedTask> pruned;
  std::optional<SessionTask> updated{SessionTask{}}, cancelled{SessionTask{}};
  const std::vector<std::function<void()>> calls{
      [&] { pruned = r.prune_terminal(std::chrono::hours(1)); },
      [&] { updated = r.update(kSession, "old", {.summary = "after the prune"}); },
      [&] { r.record_message(kSession, "old", NewTaskMessage::inbound_text("after the prune")); },
      [&] { r.create(task_input("old")); },
      [&] { cancelled = r.request_cancel(kSession, "old"); },
      [&] { r.update(kSession, "kept", {.summary = "a neighbour"}); },
  };
  const auto outcomes = run_grouped(
      probe, [&] { r.update("leads", "lead", {.summary = "leading"}); }, calls);
  EXPECT_EQ(probe.groups(), held_then(calls.size()));
  EXPECT_TRUE(returned(outcomes[0]));
  ASSERT_EQ(pruned.size(), 1u);
  EXPECT_EQ(pruned[0].task_id, "old");
  EXPECT_TRUE(returned(outcomes[1]));
  EXPECT_EQ(updated, std::nullopt) << "an update of a task pruned before it in its group";
  EXPECT_TRUE(threw(outcomes[2], ErrorCode::NotFound));
  EXPECT_TRUE(threw(outcomes[3], ErrorCode::Conflict)) << "ids are not reused";
  EXPECT_TRUE(returned(outcomes[4]));
  EXPECT_EQ(cancelled, std::nullopt);
  EXPECT_TRUE(returned(outcomes[5]));
  // The lead, the prune and the neighbour's update: nothing else was written.
  const auto events = events_of(at);
  std::vector<std::string> written;
  for (std::size_t i = before; i < events.size(); ++i) {
    written.push_back(events[i].type + " " + events[i].task_id);
  }
  EXPECT_THAT(written, ElementsAre("task_updated lead", "task_pruned old", "task_updated kept"));
  EXPECT_TRUE(verifies_gap_free(at));
  EXPECT_NO_THROW({
    Registry fresh = open_registry(at);
    EXPECT_FALSE(fresh.get(kSession, "old"));
  }) << "the journal no longer folds";
  EXPECT_NO_THROW(EXPECT_FALSE(r.get(kSession, "old")));
  EXPECT_NO_THROW(r.create(task_input("next")));
}

TEST(GroupCommitPrune, SqliteTwoPrunesInOneGroupPruneEachTaskOnce) {
  ASSERT_EQ(test_engine(), TestEngine::Sqlite)
      << "on PostgreSQL prune_terminal takes the registry's lock before it queues (to build its "
         "index of finished tasks), so a held decision keeps it out of the queue";
  QueueProbe probe;
  TempDir dir;
  const JournalLocation at = journal_at(dir, "prune-twice");
  Registry r = open_registry(at, {.clock = probe.clock()});
  r.create(task_input("lead", "leads"));
  for (const char* id : {"old1", "old2"}) {
    r.create(task_input(id));
    r.update(kSession, id, {.state = SessionTaskState::Failed});
  }
  probe.advance(std::chrono::hours(2));
  const std::uint64_t before = r.last_seq();
  std::vector<PrunedTask> first, second;
  const std::vector<std::function<void()>> calls{
      [&] { first = r.prune_terminal(std::chrono::hours(1)); },
      [&] { second = r.prune_terminal(std::chrono::hours(1)); },
  };
  const auto outcomes = run_grouped(
      probe, [&] { r.update("leads", "lead", {.summary = "leading"}); }, calls);
  EXPECT_EQ(probe.groups(), held_then(calls.size()));
  for (const auto& o : outcomes) EXPECT_TRUE(returned(o));
  EXPECT_EQ(first.size(), 2u);
  EXPECT_EQ(second.size(), 0u) << "the second prune pruned what the first had pruned";
  EXPECT_EQ(events_of(at).size(), before + 1 + 2);
  EXPECT_TRUE(verifies_gap_free(at));
  EXPECT_NO_THROW(Registry fresh = open_registry(at)) << "the journal no longer folds";
  EXPECT_NO_THROW(r.create(task_input("next")));
}

// ---- a failing commit fails the whole group ----------------------------------------------------

namespace {

/// The group the fault tests fail: calls that would all write, and a refused one.
struct DoomedGroup {
  std::vector<std::function<void()>> calls;
  std::size_t writes = 0;  // events the calls write when nothing fails
};

DoomedGroup doomed_group(Registry& r) {
  return {.calls = {
              [&r] { r.create(task_input("doomed_1")); },
              [&r] { r.update(kSession, "t1", {.summary = "in the group"}); },
              [&r] { r.record_message(kSession, "t1", NewTaskMessage::outbound_text("m")); },
              [&r] { r.update(kSession, "missing", {.summary = "refused"}); },
              [&r] { r.create(task_input("doomed_2")); },
              [&r] { r.request_cancel(kSession, "t2"); },
          },
          .writes = 5};
}

// The held lead of these tests writes to a session of its own, outside the views compared.
const std::string kLeads = "leads";

void seed(Registry& r) {
  r.create(task_input("lead", kLeads));
  r.create(task_input("t1"));
  r.update(kSession, "t1", {.state = SessionTaskState::Running});
  r.create(task_input("t2"));
}

/// Every call of the held group failed with Storage; nothing of it is in the journal or the
/// views; the same calls then succeed, and the journal verifies without a gap.
void expect_whole_group_failed(QueueProbe& probe, Registry& r, const JournalLocation& at,
                               const std::vector<Outcome>& outcomes, const DoomedGroup& group,
                               std::uint64_t seq_before, const std::string& views_before,
                               const std::function<void()>& make_room) {
  EXPECT_EQ(probe.groups(), held_then(group.calls.size()));
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    EXPECT_TRUE(threw(outcomes[i], ErrorCode::Storage)) << "call " << i;
  }
  // The held lead committed alone, before the group.
  EXPECT_EQ(r.last_seq(), seq_before);
  EXPECT_EQ(dump_sessions(r, {kSession}), views_before);
  const auto events = events_of(at);
  EXPECT_EQ(events.size(), seq_before);
  for (const auto& e : events)
    EXPECT_THAT(e.task_id, ::testing::Not(::testing::StartsWith("doomed")));
  {
    Registry fresh = open_registry(at);
    EXPECT_EQ(dump_sessions(fresh, {kSession}), views_before);
  }
  EXPECT_TRUE(verifies_gap_free(at));

  make_room();
  probe.on_group({});
  // The same calls succeed now, grouped again.
  const auto again = run_grouped(
      probe, [&] { r.update(kLeads, "lead", {.summary = "again"}); }, group.calls);
  EXPECT_EQ(probe.groups(), held_then(group.calls.size()));
  for (std::size_t i = 0; i < again.size(); ++i) EXPECT_TRUE(returned(again[i])) << "call " << i;
  EXPECT_EQ(r.last_seq(), seq_before + 1 + group.writes);
  EXPECT_TRUE(r.get(kSession, "doomed_1"));
  EXPECT_TRUE(r.get(kSession, "doomed_2"));
  EXPECT_EQ(events_of(at).size(), seq_before + 1 + group.writes);
  EXPECT_TRUE(verifies_gap_free(at));
  Registry fresh = open_registry(at);
  EXPECT_EQ(dump_sessions(fresh, {kSession}), dump_sessions(r, {kSession}));
}

int fail_armed_commit(void* armed) {
  return static_cast<std::atomic<bool>*>(armed)->exchange(false) ? 1 : 0;
}

/// Opens a registry on the SQLite file of `at` and hands out its own connection.
Registry open_sqlite_with_connection(const JournalLocation& at, Options options, sqlite3*& handle) {
  store::testing::set_connection_hook([&](sqlite3* db) { handle = db; });
  try {
    Registry r = open_registry(at, std::move(options));
    store::testing::set_connection_hook({});
    return r;
  } catch (...) {
    store::testing::set_connection_hook({});
    throw;
  }
}

std::int64_t pragma_int(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  std::int64_t value = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    value = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  return value;
}

}  // namespace

TEST(GroupCommitFaults, SqliteCommitThatFailsFailsEveryCallOfItsGroupAndWritesNothing) {
  ASSERT_EQ(test_engine(), TestEngine::Sqlite) << "sqlite3_commit_hook is SQLite's";
  QueueProbe probe;
  TempDir dir;
  const JournalLocation at = journal_at(dir, "commit-hook.db");
  sqlite3* handle = nullptr;
  Registry r = open_sqlite_with_connection(at, {.clock = probe.clock()}, handle);
  ASSERT_NE(handle, nullptr);
  seed(r);
  std::atomic<bool> armed{false};
  // A commit hook that returns non-zero turns that COMMIT into a rollback.
  sqlite3_commit_hook(handle, fail_armed_commit, &armed);
  const DoomedGroup group = doomed_group(r);
  // Armed by the leader of the group, under the registry's lock: exactly its COMMIT fails.
  probe.on_group([&](std::size_t n) {
    if (n == group.calls.size()) armed = true;
  });
  const std::uint64_t seq = r.last_seq() + 1;  // the lead's update
  const std::string views = dump_sessions(r, {kSession});
  const auto outcomes = run_grouped(
      probe, [&] { r.update(kLeads, "lead", {.summary = "leading"}); }, group.calls);
  EXPECT_FALSE(armed) << "the group's COMMIT did not run";
  expect_whole_group_failed(probe, r, at, outcomes, group, seq, views, [] {});
  sqlite3_commit_hook(handle, nullptr, nullptr);
}

TEST(GroupCommitFaults, PostgresqlCommitThatFailsFailsEveryCallOfItsGroupAndWritesNothing) {
  ASSERT_EQ(test_engine(), TestEngine::Postgresql) << "a deferred constraint trigger";
  QueueProbe probe;
  TempDir dir;
  const JournalLocation at = journal_at(dir, "commit-trigger");
  Registry r = open_registry(at, {.clock = probe.clock()});
  seed(r);
  // Raises at COMMIT (deferred to the end of the transaction) for an event of a doomed_ task.
  store::postgres::Connection(at.where).exec(
      "CREATE FUNCTION doom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "IF position('doomed_'::bytea in NEW.task_id) = 1 THEN "
      "RAISE EXCEPTION 'doomed at commit'; END IF; RETURN NULL; END $$; "
      "CREATE CONSTRAINT TRIGGER doom_at_commit AFTER INSERT ON events "
      "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION doom();");
  const DoomedGroup group = doomed_group(r);
  const std::uint64_t seq = r.last_seq() + 1;  // the lead's update
  const std::string views = dump_sessions(r, {kSession});
  const auto outcomes = run_grouped(
      probe, [&] { r.update(kLeads, "lead", {.summary = "leading"}); }, group.calls);
  for (const auto& o : outcomes) {
    EXPECT_NE(o.what.find("doomed at commit"), std::string::npos) << o.what;
  }
  expect_whole_group_failed(probe, r, at, outcomes, group, seq, views, [&] {
    store::postgres::Connection(at.where).exec("DROP TRIGGER doom_at_commit ON events");
  });
}

TEST(GroupCommitFaults, SqliteDiskFullInTheMiddleOfAGroupFailsTheWholeGroupUntilThereIsRoom) {
  ASSERT_EQ(test_engine(), TestEngine::Sqlite) << "max_page_count is SQLite's";
  QueueProbe probe;
  TempDir dir;
  const JournalLocation at = journal_at(dir, "full.db");
  sqlite3* handle = nullptr;
  Registry r = open_sqlite_with_connection(at, {.clock = probe.clock()}, handle);
  ASSERT_NE(handle, nullptr);
  seed(r);
  DoomedGroup group = doomed_group(r);
  // A large update in the middle: the small calls before it fit in the file's pages, it does not.
  const std::string big(256 * 1024, 'x');
  group.calls.insert(group.calls.begin() + 3,
                     [&r, big] { r.update(kSession, "t2", {.state_detail = big}); });
  ++group.writes;
  bool filled = false;
  // The leader of the group fills the disk (on the registry's connection, under its lock).
  probe.on_group([&](std::size_t n) {
    if (n != group.calls.size() || filled) return;
    filled = true;
    const std::string sql =
        "PRAGMA max_page_count = " + std::to_string(pragma_int(handle, "PRAGMA page_count"));
    ASSERT_EQ(sqlite3_exec(handle, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  });
  const std::uint64_t seq = r.last_seq() + 1;  // the lead's update
  const std::string views = dump_sessions(r, {kSession});
  const auto outcomes = run_grouped(
      probe, [&] { r.update(kLeads, "lead", {.summary = "leading"}); }, group.calls);
  EXPECT_TRUE(filled);
  for (const auto& o : outcomes) EXPECT_NE(o.what.find("disk full"), std::string::npos) << o.what;
  expect_whole_group_failed(probe, r, at, outcomes, group, seq, views, [&] {
    ASSERT_EQ(sqlite3_exec(handle, "PRAGMA max_page_count = 1073741823", nullptr, nullptr, nullptr),
              SQLITE_OK);
  });
}

// ---- notifications -----------------------------------------------------------------------------

namespace {

/// Counts, per thread, the notifications delivered in it (a call's own are delivered in its
/// thread, before it returns), and logs every notification in delivery order.
struct Deliveries {
  struct Entry {
    bool transition = false;
    std::uint64_t seq = 0;  // of the event; for a transition, of the event delivered before it
    std::string task_id;
    std::thread::id thread;
    int depth = 0;  // nested deliveries (a slot's call) of this thread
  };
  std::mutex mutex;
  std::vector<Entry> log;
  static thread_local std::uint64_t delivered_here;
  static thread_local std::uint64_t last_seq_here;
  static thread_local int depth_here;

  void attach(Registry& r, std::vector<Subscription>& subs) {
    subs.push_back(r.on_event([this](const RegistryEvent& e) {
      ++delivered_here;
      last_seq_here = e.seq;
      std::lock_guard lock(mutex);
      log.push_back({false, e.seq, e.task_id, std::this_thread::get_id(), depth_here});
    }));
    subs.push_back(r.on_transition([this](TaskTransition, const SessionTask& t) {
      ++delivered_here;
      std::lock_guard lock(mutex);
      log.push_back({true, last_seq_here, t.id, std::this_thread::get_id(), depth_here});
    }));
  }
};
thread_local std::uint64_t Deliveries::delivered_here = 0;
thread_local std::uint64_t Deliveries::last_seq_here = 0;
thread_local int Deliveries::depth_here = 0;

/// Every event 1..last was notified exactly once (on_event), in strictly increasing order, and
/// each transition right after the event that caused it.
void expect_in_journal_order_once(const std::vector<Deliveries::Entry>& log, std::uint64_t last) {
  std::uint64_t previous = 0;
  std::uint64_t events = 0;
  for (std::size_t i = 0; i < log.size(); ++i) {
    const auto& e = log[i];
    if (e.transition) {
      EXPECT_EQ(e.seq, previous) << "transition at " << i << " not right after its event";
      continue;
    }
    ++events;
    ASSERT_EQ(e.seq, previous + 1)
        << "delivery " << i << ": event " << e.seq << " after " << previous;
    previous = e.seq;
  }
  EXPECT_EQ(events, last);
  EXPECT_EQ(previous, last);
}

}  // namespace

TEST(GroupCommitNotifications, EveryEventIsNotifiedOnceInJournalOrderBeforeItsCallReturns) {
  QueueProbe probe;
  TempDir dir;
  const JournalLocation at = journal_at(dir, "notify");
  Registry r = open_registry(at, {.clock = probe.clock()});
  Deliveries d;
  std::vector<Subscription> subs;
  d.attach(r, subs);

  constexpr int kThreads = 16;
  const int kCalls = calls_per_thread(200);
  std::vector<std::vector<std::string>> failures(kThreads);
  std::atomic<std::uint64_t> transitions{0};
  within_seconds(300, "the notifying load", [&] {
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        std::vector<std::string>& failed = failures[static_cast<std::size_t>(i)];
        std::string task;
        int made = 0;
        for (int n = 0; n < kCalls; ++n) {
          const std::uint64_t before = Deliveries::delivered_here;
          std::uint64_t expected = 1;
          const Outcome o = outcome_of([&] {
            if (task.empty()) {
              task = "s" + std::to_string(i) + "_" + std::to_string(made++);
              r.create(task_input(task));
            } else if (n % 5 == 1) {
              r.update(kSession, task, {.state = SessionTaskState::Running});
            } else if (n % 5 == 2) {
              r.record_message(kSession, task, NewTaskMessage::outbound_text("out"));
              expected = 2;  // task.message.received, then the message transition
            } else if (n % 5 == 3) {
              r.update(kSession, task, {.progress = TaskProgress{.current = 1}});
            } else {
              r.update(kSession, task, {.state = SessionTaskState::Succeeded});
              expected = 2;  // task.updated, then the terminal transition
              task.clear();
            }
          });
          if (expected == 2) ++transitions;
          if (o.error || o.other) failed.push_back("call " + std::to_string(n) + ": " + o.what);
          if (Deliveries::delivered_here - before != expected) {
            failed.push_back("call " + std::to_string(n) + ": " +
                             std::to_string(Deliveries::delivered_here - before) +
                             " notifications in its thread before it returned, expected " +
                             std::to_string(expected));
          }
        }
      });
    }
    for (auto& t : threads) t.join();
  });
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_THAT(failures[static_cast<std::size_t>(i)], ::testing::IsEmpty()) << "thread " << i;
  }
  subs.clear();
  std::lock_guard lock(d.mutex);
  expect_in_journal_order_once(d.log, r.last_seq());
  EXPECT_EQ(std::count_if(d.log.begin(), d.log.end(), [](const auto& e) { return e.transition; }),
            static_cast<std::ptrdiff_t>(transitions.load()));
  EXPECT_TRUE(verifies_gap_free(at));
}

TEST(GroupCommitNotifications, AGroupsCallsNotifyInJournalOrderEachInItsOwnThread) {
  QueueProbe probe;
  TempDir dir;
  const JournalLocation at = journal_at(dir, "notify-group");
  Registry r = open_registry(at, {.clock = probe.clock()});
  r.create(task_input("lead"));
  for (int i = 0; i < 8; ++i) r.create(task_input("t" + std::to_string(i)));
  const std::uint64_t before = r.last_seq();
  Deliveries d;
  std::vector<Subscription> subs;
  d.attach(r, subs);
  std::vector<std::thread::id> callers(8);
  std::vector<std::uint64_t> own(8);
  std::vector<std::function<void()>> calls;
  for (int i = 0; i < 8; ++i) {
    calls.emplace_back([&, i] {
      callers[static_cast<std::size_t>(i)] = std::this_thread::get_id();
      const std::uint64_t b = Deliveries::delivered_here;
      r.update(kSession, "t" + std::to_string(i), {.state = SessionTaskState::Succeeded});
      own[static_cast<std::size_t>(i)] = Deliveries::delivered_here - b;
    });
  }
  const auto outcomes = run_grouped(
      probe, [&] { r.update(kSession, "lead", {.summary = "leading"}); }, calls);
  EXPECT_EQ(probe.groups(), held_then(calls.size()));
  for (const auto& o : outcomes) EXPECT_TRUE(returned(o));
  EXPECT_THAT(own, Each(2u)) << "task.updated and the terminal transition, before it returned";
  subs.clear();
  std::lock_guard lock(d.mutex);
  // The lead's event, then each call's event and transition, in queue (= journal) order.
  ASSERT_EQ(d.log.size(), 1u + 2 * calls.size());
  EXPECT_EQ(d.log[0].seq, before + 1);
  for (std::size_t i = 0; i < calls.size(); ++i) {
    for (std::size_t k = 1 + 2 * i; k < 3 + 2 * i; ++k) {
      EXPECT_EQ(d.log[k].seq, before + 2 + i) << k;
      EXPECT_EQ(d.log[k].task_id, "t" + std::to_string(i)) << k;
      EXPECT_EQ(d.log[k].thread, callers[i]) << "delivered in another thread than its call's";
    }
  }
}

TEST(GroupCommitNotifications,
     ASubscriberThatCallsTheRegistryWhileOthersWriteGetsItsOwnNoticeOnce) {
  QueueProbe probe;
  TempDir dir;
  const JournalLocation at = journal_at(dir, "nested");
  Registry r = open_registry(at, {.clock = probe.clock()});
  Deliveries d;
  std::vector<Subscription> subs;
  d.attach(r, subs);
  std::atomic<int> nested_failures{0};
  // Updating trigger_N updates target_N from inside the slot (after reading the trigger).
  subs.push_back(r.on_event([&](const RegistryEvent& e) {
    if (e.type != "task.updated" || !e.task_id.starts_with("trigger_")) return;
    ++Deliveries::depth_here;
    const auto seen = r.get(kSession, e.task_id);
    if (!seen || seen->summary != "pull") ++nested_failures;
    const std::string target = "target_" + e.task_id.substr(8);
    const std::uint64_t b = Deliveries::delivered_here;
    if (!r.update(kSession, target, {.summary = "pushed"})) ++nested_failures;
    if (Deliveries::delivered_here - b != 1) ++nested_failures;  // delivered inside, at once
    --Deliveries::depth_here;
  }));

  constexpr int kThreads = 8;
  const int kCalls = calls_per_thread(60);
  std::atomic<int> triggers{0};
  within_seconds(300, "the nested calls", [&] {
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        for (int n = 0; n < kCalls; ++n) {
          const std::string id = std::to_string(i) + "_" + std::to_string(n);
          if (i % 2 == 0) {  // half the threads pull triggers, the others write plain tasks
            r.create(task_input("target_" + id));
            r.create(task_input("trigger_" + id));
            r.update(kSession, "trigger_" + id, {.summary = "pull"});
            ++triggers;
          } else {
            r.create(task_input("plain_" + id));
            r.update(kSession, "plain_" + id, {.summary = "plain"});
          }
        }
      });
    }
    for (auto& t : threads) t.join();
  });
  subs.clear();
  EXPECT_EQ(nested_failures.load(), 0);
  std::lock_guard lock(d.mutex);
  std::map<std::uint64_t, int> seen;
  std::map<std::string, int> pushed;
  for (const auto& e : d.log) {
    if (e.transition) continue;
    ++seen[e.seq];
    // A target's create is delivered as any (depth 0), its update inside the trigger's slot.
    if (e.task_id.starts_with("target_") && e.depth == 1) ++pushed[e.task_id];
  }
  EXPECT_EQ(seen.size(), r.last_seq());
  for (const auto& [seq, n] : seen) EXPECT_EQ(n, 1) << "event " << seq;
  EXPECT_EQ(static_cast<int>(pushed.size()), triggers.load());
  for (const auto& [id, n] : pushed) EXPECT_EQ(n, 1) << id;
  for (const auto& [id, n] : pushed) EXPECT_EQ(r.get(kSession, id)->summary, "pushed") << id;
  EXPECT_TRUE(verifies_gap_free(at));
}

// ---- SIGKILL -----------------------------------------------------------------------------------

namespace {

constexpr int kKillThreads = 16;

/// The child: 16 threads on one Registry, each writing until killed, each call acknowledged on
/// `ack_fd` after it returned ("C task", "A task artifact", "M task message"); "R" once open;
/// "G n" each time a group larger than any before was led (n calls in one commit).
[[noreturn]] void grouped_writer(const JournalLocation& at, Durability durability, int round,
                                 int ack_fd) {
  try {
    Registry r = open_registry(at, {.durability = durability});
    const auto ack = [&](const std::string& line) {
      const std::string l = line + "\n";  // one write below PIPE_BUF: lines never interleave
      if (!write_all(ack_fd, l.data(), l.size())) ::_exit(3);
    };
    std::size_t largest = 1;  // written by leaders under the registry's lock
    store::testing::set_writer_queue_hooks({}, [&](std::size_t n) {
      if (n > largest) ack("G " + std::to_string(largest = n));
    });
    ack("R");
    std::vector<std::thread> threads;
    for (int i = 0; i < kKillThreads; ++i) {
      threads.emplace_back([&, i] {
        try {
          for (int n = 0;; ++n) {
            const std::string id =
                "r" + std::to_string(round) + "w" + std::to_string(i) + "n" + std::to_string(n);
            r.create(task_input(id));
            ack("C " + id);
            r.update(kSession, id,
                     {.state = SessionTaskState::Running,
                      .append_artifact = TaskArtifact{.name = "a" + id, .type = "log"}});
            ack("A " + id + " a" + id);
            const TaskMessage m =
                r.record_message(kSession, id, NewTaskMessage::outbound_text("m" + id));
            ack("M " + id + " " + m.id);
          }
        } catch (const std::exception& e) {
          std::fprintf(stderr, "grouped writer: %s\n", e.what());
          ::_exit(2);
        }
      });
    }
    for (auto& t : threads) t.join();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "grouped writer: %s\n", e.what());
  }
  ::_exit(2);
}

struct KillAcks {
  bool ready = false;
  std::uint64_t count = 0;
  std::size_t largest_group = 1;
  std::vector<std::string> created;
  std::vector<std::pair<std::string, std::string>> artifacts, messages;
  void add(const std::string& line) {
    std::istringstream in(line);
    std::string kind, a, b;
    in >> kind >> a >> b;
    if (kind == "R") {
      ready = true;
      return;
    }
    if (kind == "G") {
      largest_group = std::max<std::size_t>(largest_group, std::stoul(a));
      return;
    }
    ++count;
    if (kind == "C") created.push_back(a);
    if (kind == "A") artifacts.emplace_back(a, b);
    if (kind == "M") messages.emplace_back(a, b);
  }
};

/// Reads acknowledgements until `enough` says so, EOF (false) or the bound.
bool read_acks(int fd, std::string& buffer, KillAcks& acks,
               const std::function<bool(const KillAcks&)>& enough) {
  const auto deadline = std::chrono::steady_clock::now() + kBound;
  while (!enough(acks)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    pollfd pfd{.fd = fd, .events = POLLIN, .revents = 0};
    if (::poll(&pfd, 1, 1000) <= 0) continue;
    char chunk[4096];
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<std::size_t>(n));
    for (std::size_t pos; (pos = buffer.find('\n')) != std::string::npos;) {
      acks.add(buffer.substr(0, pos));
      buffer.erase(0, pos + 1);
    }
  }
  return true;
}

void kill_during_grouped_commits(Durability durability, int rounds) {
  TempDir dir;
  const JournalLocation at =
      journal_at(dir, durability == Durability::Full ? "kill-full" : "kill-normal");
  std::mt19937 rng(durability == Durability::Full ? 5u : 7u);
  std::set<std::string> tasks;
  std::set<std::pair<std::string, std::string>> artifacts, messages;
  std::uint64_t acknowledged = 0;  // events of acknowledged calls, the parent's own included
  std::size_t largest_group = 1;
  for (int round = 0; round < rounds; ++round) {
    Pipe pipe;
    const pid_t pid = fork_child([&] {
      pipe.close_read();
      grouped_writer(at, durability, round, pipe.write_end());
    });
    ASSERT_GT(pid, 0);
    pipe.close_write();
    KillAcks acks;
    std::string buffer;
    // Killed after a random number of acknowledged calls: the threads are mid-commit then.
    const std::uint64_t kill_after = 50 + rng() % 400;
    const bool alive = read_acks(pipe.read_end(), buffer, acks, [&](const KillAcks& a) {
      return a.ready && a.count >= kill_after;
    });
    ::kill(pid, SIGKILL);
    const int status = wait_child(pid);
    ASSERT_TRUE(alive) << "round " << round << ": the writer ended by itself, status " << status;
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
    // What was in the pipe when the child died was acknowledged too.
    read_acks(pipe.read_end(), buffer, acks, [](const KillAcks&) { return false; });
    acknowledged += acks.count;
    largest_group = std::max(largest_group, acks.largest_group);
    tasks.insert(acks.created.begin(), acks.created.end());
    artifacts.insert(acks.artifacts.begin(), acks.artifacts.end());
    messages.insert(acks.messages.begin(), acks.messages.end());

    {
      Registry r = open_registry(at);
      for (const auto& id : tasks) EXPECT_TRUE(r.get(kSession, id)) << "lost task " << id;
      for (const auto& [id, name] : artifacts) {
        const auto t = r.get(kSession, id);
        ASSERT_TRUE(t) << id;
        EXPECT_TRUE(std::any_of(t->artifacts.begin(), t->artifacts.end(),
                                [&](const TaskArtifact& a) { return a.name == name; }))
            << "lost artifact " << name;
      }
      for (const auto& [id, mid] : messages) {
        const auto ms = r.list_messages(kSession, id);
        EXPECT_TRUE(
            std::any_of(ms.begin(), ms.end(), [&](const TaskMessage& m) { return m.id == mid; }))
            << "lost message " << mid;
      }
      // At most one call per thread was in flight, committed or not.
      EXPECT_GE(r.last_seq(), acknowledged) << "round " << round;
      EXPECT_LE(r.last_seq(), acknowledged + kKillThreads) << "round " << round;
      // The next write works; it counts as acknowledged.
      r.create(task_input("after_round_" + std::to_string(round)));
      tasks.insert("after_round_" + std::to_string(round));
      acknowledged = r.last_seq();
    }
    EXPECT_TRUE(verifies_gap_free(at)) << "round " << round;
  }
  // How large the groups the kills landed among were (not asserted: that is the scheduler's).
  ::testing::Test::RecordProperty("largest_group", static_cast<int>(largest_group));
  std::printf("largest group of the writers: %zu\n", largest_group);
}

}  // namespace

TEST(GroupCommitCrash, SigkillDuringGroupedCommitsLosesNothingAcknowledgedDurabilityFull) {
  kill_during_grouped_commits(Durability::Full, 8);
}

TEST(GroupCommitCrash, SigkillDuringGroupedCommitsLosesNothingAcknowledgedDurabilityNormal) {
  kill_during_grouped_commits(Durability::Normal, 8);
}

// ---- who groups ---------------------------------------------------------------------------------

TEST(GroupCommit, ASingleCallerNeverGroups) {
  QueueProbe probe;
  TempDir dir;
  const JournalLocation at = journal_at(dir, "single");
  Registry r = open_registry(at, {.clock = probe.clock()});
  int calls = 0;
  for (int n = 0; n < 40; ++n, calls += 4) {
    const std::string id = "t" + std::to_string(n);
    r.create(task_input(id));
    r.update(kSession, id, {.state = SessionTaskState::Running});
    EXPECT_FALSE(r.update(kSession, "missing", {.summary = "x"}));
    r.record_message(kSession, id, NewTaskMessage::outbound_text("m"));
  }
  EXPECT_THROW_CODE(r.create(task_input("t0", "other")), ErrorCode::Conflict);
  ++calls;
  r.batch([&](Batch& b) { b.create(task_input("in_batch")); });  // not through the queue
  EXPECT_EQ(probe.groups(), std::vector<std::size_t>(static_cast<std::size_t>(calls), 1u));
}

namespace {

/// One script of grouped calls with fixed ids and a fake clock: what it returns and what the
/// journal then holds, comparable between registries.
struct ScriptResult {
  std::vector<std::string> answers;
  std::vector<std::size_t> groups;
  std::vector<JournalEvent> events;
  std::string views;
};

std::string text_of(const std::optional<SessionTask>& t) {
  return t ? to_json(*t) : std::string("(none)");
}

ScriptResult run_script(bool group_commit, const std::string& name) {
  QueueProbe probe;
  TempDir dir;
  const JournalLocation at = journal_at(dir, name);
  Registry r = open_registry(at, {.clock = probe.clock(), .group_commit = group_commit});
  r.create(task_input("lead"));
  r.create(task_input("a"));
  r.create(task_input("b"));
  r.create(task_input("x", "other"));
  std::vector<std::string> answers(9);
  const std::vector<std::function<void()>> calls{
      [&] { answers[0] = text_of(r.update(kSession, "a", {.state = SessionTaskState::Running})); },
      [&] { answers[1] = text_of(r.update(kSession, "a", {.increment_attempt = true})); },
      [&] {
        answers[2] = text_of(r.update(kSession, "a", {.summary = "fenced", .expected_attempt = 1}));
      },
      [&] { answers[3] = text_of(r.create(task_input("c"))); },
      [&] { answers[4] = text_of(r.create(task_input("c"))); },
      [&] { answers[5] = text_of(r.update(kSession, "missing", {.summary = "x"})); },
      [&] { answers[6] = error_text([&] { r.create(task_input("x")); }); },
      [&] { answers[7] = text_of(r.request_cancel(kSession, "b")); },
      [&] { answers[8] = text_of(r.update(kSession, "b", {.state = SessionTaskState::Canceled})); },
  };
  const auto outcomes = run_grouped(
      probe, [&] { r.update(kSession, "lead", {.summary = "leading"}); }, calls);
  for (const auto& o : outcomes) EXPECT_TRUE(returned(o));
  ScriptResult result{.answers = answers, .groups = probe.groups(), .events = events_of(at)};
  result.views = dump_sessions(r, {kSession, "other"});
  EXPECT_TRUE(verifies_gap_free(at));
  return result;
}

}  // namespace

TEST(GroupCommit, WithoutGroupCommitEveryCallCommitsAloneWithTheSameResults) {
  const ScriptResult grouped = run_script(true, "grouped");
  const ScriptResult alone = run_script(false, "alone");
  EXPECT_EQ(grouped.groups, held_then(9));
  // Nine calls were queued behind the held one, yet each led a group of its own.
  EXPECT_EQ(alone.groups, std::vector<std::size_t>(10, 1u));
  EXPECT_EQ(alone.answers, grouped.answers);
  EXPECT_EQ(alone.events, grouped.events);
  EXPECT_EQ(alone.views, grouped.views);
  // The seed, the lead, and six of the nine: not the idempotent create, the update of a missing
  // task nor the create of another session's id.
  EXPECT_EQ(grouped.events.size(), 4u + 1 + 6);
}

// ---- batches among grouped calls
// -----------------------------------------------------------------

TEST(GroupCommit, BatchesInterleavedWithGroupedCallsAllCommitAndNotifyInJournalOrder) {
  QueueProbe probe;
  TempDir dir;
  const JournalLocation at = journal_at(dir, "batches");
  Registry r = open_registry(at, {.clock = probe.clock()});
  r.create(task_input("lead"));
  Deliveries d;
  std::vector<Subscription> subs;
  d.attach(r, subs);

  // A batch waiting for the registry while a group is held, then free-running batches and
  // single calls.
  std::vector<std::uint64_t> held_batch_seqs;
  std::vector<std::function<void()>> calls;
  for (int i = 0; i < 6; ++i) {
    calls.emplace_back([&, i] { r.create(task_input("g" + std::to_string(i))); });
  }
  std::thread batcher;
  std::vector<Outcome> outcomes;
  {
    std::vector<std::function<void()>> with_batch = calls;
    with_batch.insert(with_batch.begin() + 3, [&] {
      // Starts a batch in another thread, which takes the registry's lock itself (it may wait
      // for the held decision, or come after the group), then joins the queue as a single call.
      batcher = std::thread([&] {
        const std::uint64_t b = Deliveries::delivered_here;
        r.batch([&](Batch& bt) {
          bt.create(task_input("hb_1"));
          bt.update(kSession, "hb_1", {.state = SessionTaskState::Running});
          bt.create(task_input("hb_2"));
        });
        held_batch_seqs.push_back(Deliveries::delivered_here - b);
      });
      r.create(task_input("g_mid"));
    });
    outcomes = run_grouped(
        probe, [&] { r.update(kSession, "lead", {.summary = "held"}); }, with_batch);
    batcher.join();
  }
  EXPECT_EQ(probe.groups(), held_then(calls.size() + 1));
  for (const auto& o : outcomes) EXPECT_TRUE(returned(o));
  EXPECT_THAT(held_batch_seqs, ElementsAre(3u)) << "the batch's notifications, in its thread";

  constexpr int kThreads = 8;
  const int kCalls = calls_per_thread(40);
  std::vector<std::vector<std::string>> failures(kThreads);
  within_seconds(300, "batches and single calls", [&] {
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        auto& failed = failures[static_cast<std::size_t>(i)];
        for (int n = 0; n < kCalls; ++n) {
          const std::string id = "w" + std::to_string(i) + "_" + std::to_string(n);
          const std::uint64_t b = Deliveries::delivered_here;
          std::size_t log_from = 0;
          {
            std::lock_guard lock(d.mutex);
            log_from = d.log.size();
          }
          const Outcome o = outcome_of([&] {
            if (i < 2) {
              r.batch([&](Batch& bt) {
                bt.create(task_input(id));
                bt.update(kSession, id, {.summary = "batched"});
                bt.record_message(kSession, id, NewTaskMessage::inbound_text("in"));
              });
            } else {
              r.create(task_input(id));
            }
          });
          if (o.error || o.other) failed.push_back(id + ": " + o.what);
          const std::uint64_t expected = i < 2 ? 3 : 1;
          if (Deliveries::delivered_here - b != expected) {
            failed.push_back(id + ": " + std::to_string(Deliveries::delivered_here - b) +
                             " notifications in its thread");
          }
          if (i < 2) {
            // A batch is one transaction: its three events have consecutive numbers.
            std::vector<std::uint64_t> mine;
            std::lock_guard lock(d.mutex);
            for (std::size_t k = log_from; k < d.log.size(); ++k) {
              if (d.log[k].thread == std::this_thread::get_id()) mine.push_back(d.log[k].seq);
            }
            if (mine.size() != 3 || mine[1] != mine[0] + 1 || mine[2] != mine[1] + 1) {
              failed.push_back(id + ": the batch's events are not consecutive");
            }
          }
        }
      });
    }
    for (auto& t : threads) t.join();
  });
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_THAT(failures[static_cast<std::size_t>(i)], ::testing::IsEmpty()) << "thread " << i;
  }
  subs.clear();
  {
    std::lock_guard lock(d.mutex);
    // The lead's create was before the subscription.
    std::vector<Deliveries::Entry> log = d.log;
    for (auto& e : log) --e.seq;
    expect_in_journal_order_once(log, r.last_seq() - 1);
  }
  EXPECT_EQ(r.last_seq(), 1u + 1 + calls.size() + 1 + 3 +
                              static_cast<std::uint64_t>(kCalls) * (2 * 3 + (kThreads - 2)));
  EXPECT_TRUE(verifies_gap_free(at));
}
