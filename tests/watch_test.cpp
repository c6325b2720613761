// Acceptance tests of Options::watch (issue 12, README "Watching"): a watching registry notices
// what other registries commit — another Registry of this process, another process, another
// connection on PostgreSQL — and delivers on_event, on_transition and on_wake for it exactly
// once, in journal order, from a thread of its own; without watch nobody here hears of them.
// Through the public API only, on every engine. Waits for a notification are bounded generously
// (kBound); no test measures a duration.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "store/postgres/pq.hpp"
#include "support/errors.hpp"
#include "support/journals.hpp"
#include "support/processes.hpp"
#include "support/temp_dir.hpp"
#include "support/watchdog.hpp"
#include "taskjournal/taskjournal.hpp"

namespace {

using namespace std::chrono_literals;
using taskjournal::CreateSessionTask;
using taskjournal::Error;
using taskjournal::ErrorCode;
using taskjournal::JournalEvent;
using taskjournal::NewTaskMessage;
using taskjournal::Options;
using taskjournal::Registry;
using taskjournal::RegistryEvent;
using taskjournal::SessionTask;
using taskjournal::SessionTaskState;
using taskjournal::SessionTaskUpdate;
using taskjournal::Subscription;
using taskjournal::TaskProgress;
using taskjournal::TaskTransition;
using taskjournal::TaskWakePolicy;
using taskjournal::WakeNotice;
using taskjournal::testing::exited_ok;
using taskjournal::testing::GatedChild;
using taskjournal::testing::journal_at;
using taskjournal::testing::JournalLocation;
using taskjournal::testing::open_reader;
using taskjournal::testing::open_registry;
using taskjournal::testing::TempDir;
using taskjournal::testing::test_engine;
using taskjournal::testing::TestEngine;
using taskjournal::testing::within_seconds;
using ::testing::ElementsAre;

/// How long a test waits for a notification it expects (a bound, not a timing).
constexpr std::chrono::seconds kBound = 20s;
/// The watch interval of these tests.
constexpr std::chrono::milliseconds kWatch = 20ms;

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

/// What a registry's three signals delivered, with the thread each ran in.
struct Seen {
  std::vector<RegistryEvent> events;
  std::vector<std::thread::id> event_threads;
  std::vector<std::pair<TaskTransition, SessionTask>> transitions;
  std::vector<std::thread::id> transition_threads;
  std::vector<WakeNotice> wakes;
  std::vector<std::thread::id> wake_threads;

  std::vector<std::string> event_types() const {
    std::vector<std::string> out;
    for (const auto& e : events) out.push_back(e.type);
    return out;
  }
  std::vector<std::uint64_t> seqs() const {
    std::vector<std::uint64_t> out;
    for (const auto& e : events) out.push_back(e.seq);
    return out;
  }
  std::vector<std::string> event_tasks() const {
    std::vector<std::string> out;
    for (const auto& e : events) out.push_back(e.task_id);
    return out;
  }
  std::vector<std::pair<TaskTransition, std::string>> transition_kinds() const {
    std::vector<std::pair<TaskTransition, std::string>> out;
    for (const auto& [t, task] : transitions) out.emplace_back(t, task.id);
    return out;
  }
  std::vector<std::pair<TaskTransition, std::string>> wake_kinds() const {
    std::vector<std::pair<TaskTransition, std::string>> out;
    for (const auto& w : wakes) out.emplace_back(w.transition, w.task_id);
    return out;
  }
  bool created(const std::string& id) const {
    for (const auto& e : events) {
      if (e.type == "task.created" && e.task_id == id) return true;
    }
    return false;
  }
};

/// Collects what a registry's signals deliver, from whatever thread, and lets the test wait for
/// it. Declare it before the Registry it attaches to, so that the registry (and its watching
/// thread) goes first. After close(), every further delivery counts as late.
class Collector {
 public:
  void attach(Registry& reg) {
    subs_.push_back(reg.on_event([this](const RegistryEvent& e) {
      std::lock_guard lock(mutex_);
      if (closed_) ++late_;
      seen_.events.push_back(e);
      seen_.event_threads.push_back(std::this_thread::get_id());
      changed_.notify_all();
    }));
    subs_.push_back(reg.on_transition([this](TaskTransition t, const SessionTask& task) {
      std::lock_guard lock(mutex_);
      if (closed_) ++late_;
      seen_.transitions.emplace_back(t, task);
      seen_.transition_threads.push_back(std::this_thread::get_id());
      changed_.notify_all();
    }));
    subs_.push_back(reg.on_wake([this](const WakeNotice& w) {
      std::lock_guard lock(mutex_);
      if (closed_) ++late_;
      seen_.wakes.push_back(w);
      seen_.wake_threads.push_back(std::this_thread::get_id());
      changed_.notify_all();
    }));
  }

  Seen seen() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }

  /// Waits until `done(seen)` holds, at most kBound; returns whether it does.
  bool wait_for(const std::function<bool(const Seen&)>& done) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kBound, [&] { return done(seen_); });
  }
  bool wait_for_created(const std::string& id) {
    return wait_for([&](const Seen& s) { return s.created(id); });
  }

  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  int late() const {
    std::lock_guard lock(mutex_);
    return late_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  Seen seen_;
  bool closed_ = false;
  int late_ = 0;
  std::vector<Subscription> subs_;
};

/// The journal's events in order, as a fresh reader sees them.
std::vector<JournalEvent> journal_events(const JournalLocation& at) {
  std::vector<JournalEvent> out;
  open_reader(at).read(0, [&](const JournalEvent& e) {
    out.push_back(e);
    return true;
  });
  return out;
}

std::vector<std::uint64_t> seqs_of(const std::vector<JournalEvent>& events) {
  std::vector<std::uint64_t> out;
  for (const auto& e : events) out.push_back(e.seq);
  return out;
}

bool none_in(const std::vector<std::thread::id>& threads, std::thread::id id) {
  for (const auto& t : threads) {
    if (t == id) return false;
  }
  return true;
}

/// What the writers of these tests write: task_1 (on_activity) created, started, an outbound
/// message, succeeded; then task_end, the sentinel: once it is seen, so is everything before it.
void write_the_script(Registry& w) {
  w.create(input("task_1", TaskWakePolicy::OnActivity));
  w.update("sess_1", "task_1", SessionTaskUpdate{.state = SessionTaskState::Running});
  w.record_message("sess_1", "task_1", NewTaskMessage::outbound_text("half way"));
  w.update("sess_1", "task_1",
           SessionTaskUpdate{.state = SessionTaskState::Succeeded, .summary = "done"});
  w.create(input("task_end"));
}

/// `seen` holds exactly the script's notifications, once each, in journal order, delivered
/// outside the test's thread, and agrees with `reg`.
void expect_the_script_once(const Seen& seen, const JournalLocation& at, Registry& reg) {
  EXPECT_THAT(seen.event_types(),
              ElementsAre("task.created", "task.updated", "task.message.received", "task.updated",
                          "task.created"));
  EXPECT_THAT(seen.event_tasks(), ElementsAre("task_1", "task_1", "task_1", "task_1", "task_end"));
  EXPECT_EQ(seen.seqs(), seqs_of(journal_events(at)));
  EXPECT_THAT(seen.transition_kinds(),
              ElementsAre(std::pair{TaskTransition::Message, std::string("task_1")},
                          std::pair{TaskTransition::Terminal, std::string("task_1")}));
  EXPECT_THAT(seen.wake_kinds(),
              ElementsAre(std::pair{TaskTransition::Message, std::string("task_1")},
                          std::pair{TaskTransition::Terminal, std::string("task_1")}));
  ASSERT_EQ(seen.events.size(), 5u);
  EXPECT_EQ(seen.events[3].task, reg.get("sess_1", "task_1"));
  EXPECT_EQ(seen.events[3].task->state, SessionTaskState::Succeeded);
  ASSERT_TRUE(seen.events[2].message);
  EXPECT_EQ(seen.events[2].message, reg.list_messages("sess_1", "task_1").at(0));
  const auto me = std::this_thread::get_id();
  EXPECT_TRUE(none_in(seen.event_threads, me));
  EXPECT_TRUE(none_in(seen.transition_threads, me));
  EXPECT_TRUE(none_in(seen.wake_threads, me));
}

// ---------------------------------------------------------------------------------------------
// Delivery
// ---------------------------------------------------------------------------------------------

TEST(Watch, AnotherProcesssWritesAreNotifiedOnceInJournalOrderFromTheWatchingThread) {
  TempDir dir;
  const JournalLocation at = journal_at(dir, "journal.db");
  GatedChild child([&at] {
    Registry w = open_registry(at);
    write_the_script(w);
  });
  Collector c;
  Registry reg = open_registry(at, Options{.watch = kWatch});
  c.attach(reg);
  child.go();
  const bool arrived = c.wait_for_created("task_end");
  EXPECT_TRUE(exited_ok(child.wait()));
  ASSERT_TRUE(arrived) << "the other process's writes were not notified within " << kBound.count()
                       << " s";
  expect_the_script_once(c.seen(), at, reg);
}

TEST(Watch, AnotherRegistryOfThisProcessIsNotified) {
  TempDir dir;
  const JournalLocation at = journal_at(dir, "journal.db");
  Collector c, writer_c;
  Registry reg = open_registry(at, Options{.watch = kWatch});
  Registry writer = open_registry(at);
  c.attach(reg);
  writer_c.attach(writer);
  write_the_script(writer);
  ASSERT_TRUE(c.wait_for_created("task_end"));
  expect_the_script_once(c.seen(), at, reg);
  // The writer heard of its own writes in the writing thread, as ever.
  const Seen own = writer_c.seen();
  EXPECT_EQ(own.seqs(), c.seen().seqs());
  for (const auto& t : own.event_threads) EXPECT_EQ(t, std::this_thread::get_id());
}

TEST(Watch, EveryWatchingRegistryGetsEachEventOnce) {
  TempDir dir;
  const JournalLocation at = journal_at(dir, "journal.db");
  GatedChild child([&at] {
    Registry w = open_registry(at);
    write_the_script(w);
  });
  Collector c1, c2;
  Registry first = open_registry(at, Options{.watch = kWatch});
  Registry second = open_registry(at, Options{.watch = 5ms});
  c1.attach(first);
  c2.attach(second);
  child.go();
  const bool arrived = c1.wait_for_created("task_end") && c2.wait_for_created("task_end");
  EXPECT_TRUE(exited_ok(child.wait()));
  ASSERT_TRUE(arrived);
  expect_the_script_once(c1.seen(), at, first);
  expect_the_script_once(c2.seen(), at, second);
}

TEST(Watch, OwnWritesNotifyInTheWritingThreadAndAreNotDeliveredAgain) {
  TempDir dir;
  const JournalLocation at = journal_at(dir, "journal.db");
  Collector c;
  Registry reg = open_registry(at, Options{.watch = kWatch});
  Registry other = open_registry(at);
  c.attach(reg);
  reg.create(input("task_own", TaskWakePolicy::OnTerminal));
  reg.update("sess_1", "task_own", SessionTaskUpdate{.state = SessionTaskState::Succeeded});
  {
    const Seen now = c.seen();  // delivered before the calls returned
    ASSERT_EQ(now.events.size(), 2u);
    EXPECT_THAT(now.event_threads,
                ElementsAre(std::this_thread::get_id(), std::this_thread::get_id()));
    EXPECT_EQ(now.transitions.size(), 1u);
    EXPECT_EQ(now.wakes.size(), 1u);
  }
  other.create(input("task_end"));
  ASSERT_TRUE(c.wait_for_created("task_end"));
  const Seen seen = c.seen();
  EXPECT_THAT(seen.event_tasks(), ElementsAre("task_own", "task_own", "task_end"));
  EXPECT_EQ(seen.seqs(), seqs_of(journal_events(at)));
  EXPECT_EQ(seen.transitions.size(), 1u);
  EXPECT_EQ(seen.wakes.size(), 1u);
  EXPECT_NE(seen.event_threads[2], std::this_thread::get_id());
}

TEST(Watch, InterleavedOwnAndForeignWritesAreEachNotifiedOnce) {
  TempDir dir;
  const JournalLocation at = journal_at(dir, "journal.db");
  Collector c;
  Registry reg = open_registry(at, Options{.busy_timeout = 60s, .watch = 1ms});
  Registry other = open_registry(at, Options{.busy_timeout = 60s});
  c.attach(reg);
  reg.create(input("task_own", TaskWakePolicy::Silent, SessionTaskState::Running));
  other.create(input("task_foreign", TaskWakePolicy::Silent, SessionTaskState::Running));
  constexpr int kWrites = 60;
  std::thread foreign([&] {
    for (int k = 1; k <= kWrites; ++k) {
      other.update("sess_1", "task_foreign",
                   SessionTaskUpdate{.progress = TaskProgress{.current = std::uint64_t(k)}});
    }
    other.create(input("task_end"));
  });
  for (int k = 1; k <= kWrites; ++k) {
    reg.update("sess_1", "task_own",
               SessionTaskUpdate{.progress = TaskProgress{.current = std::uint64_t(k)}});
  }
  foreign.join();
  ASSERT_TRUE(c.wait_for_created("task_end"));

  const Seen seen = c.seen();
  const auto seqs = seen.seqs();
  const std::multiset<std::uint64_t> delivered(seqs.begin(), seqs.end());
  const auto expected = seqs_of(journal_events(at));
  EXPECT_EQ(delivered, std::multiset<std::uint64_t>(expected.begin(), expected.end()))
      << "every event of the journal notified exactly once";
  // Each writer's events arrive in their journal order, the progress counting up.
  std::uint64_t own = 0, theirs = 0;
  for (const auto& e : seen.events) {
    if (e.type != "task.updated") continue;
    ASSERT_TRUE(e.task && e.task->progress && e.task->progress->current);
    std::uint64_t& last = e.task_id == "task_own" ? own : theirs;
    EXPECT_EQ(*e.task->progress->current, last + 1) << e.task_id << " at seq " << e.seq;
    last = *e.task->progress->current;
  }
  EXPECT_EQ(own, std::uint64_t(kWrites));
  EXPECT_EQ(theirs, std::uint64_t(kWrites));
}

TEST(Watch, SlotOfAForeignEventSeesTheEventFolded) {
  TempDir dir;
  const JournalLocation at = journal_at(dir, "journal.db");
  Collector c;
  Registry reg = open_registry(at, Options{.watch = kWatch});
  Registry other = open_registry(at);
  std::mutex mutex;
  std::vector<std::string> problems;
  Subscription check = reg.on_event([&](const RegistryEvent& e) {
    const auto task = reg.get(e.session_id, e.task_id);
    const auto last = reg.last_seq();
    std::lock_guard lock(mutex);
    if (!task) problems.push_back(e.task_id + " missing in its own notification");
    if (last < e.seq) problems.push_back("last_seq " + std::to_string(last) + " below the event");
  });
  c.attach(reg);
  other.create(input("task_1"));
  other.update("sess_1", "task_1", SessionTaskUpdate{.state = SessionTaskState::Running});
  other.create(input("task_end"));
  ASSERT_TRUE(c.wait_for_created("task_end"));
  check.disconnect();
  std::lock_guard lock(mutex);
  EXPECT_TRUE(problems.empty()) << ::testing::PrintToString(problems);
}

TEST(Watch, WithoutWatchAnotherRegistrysEventsNotifyNobodyHere) {
  TempDir dir;
  const JournalLocation at = journal_at(dir, "journal.db");
  Collector c;
  Registry reg = open_registry(at);
  Registry other = open_registry(at);
  c.attach(reg);
  other.create(input("task_1", TaskWakePolicy::OnActivity));
  other.record_message("sess_1", "task_1", NewTaskMessage::outbound_text("hello"));
  other.update("sess_1", "task_1", SessionTaskUpdate{.state = SessionTaskState::Succeeded});
  // This registry folds them when asked...
  EXPECT_EQ(reg.get("sess_1", "task_1")->state, SessionTaskState::Succeeded);
  EXPECT_EQ(reg.list("sess_1").size(), 1u);
  // ... and even a wait, which starts the change detection, tells no slot of them.
  other.create(input("task_2", TaskWakePolicy::OnActivity, SessionTaskState::Running));
  std::thread finisher([&] {
    std::this_thread::sleep_for(100ms);
    other.update("sess_1", "task_2", SessionTaskUpdate{.state = SessionTaskState::Succeeded});
  });
  const auto waited = reg.wait("sess_1", "task_2", std::chrono::milliseconds(kBound));
  finisher.join();
  ASSERT_TRUE(waited);
  EXPECT_FALSE(waited->timed_out);
  // Its own write notifies, alone.
  reg.create(input("task_own"));
  const Seen seen = c.seen();
  EXPECT_THAT(seen.event_tasks(), ElementsAre("task_own"));
  EXPECT_TRUE(seen.transitions.empty());
  EXPECT_TRUE(seen.wakes.empty());
}

TEST(Watch, ThrowingSlotsDoNotStopLaterNotifications) {
  TempDir dir;
  const JournalLocation at = journal_at(dir, "journal.db");
  std::atomic<int> event_throws{0}, transition_throws{0}, wake_throws{0};
  Collector c;
  Registry reg = open_registry(at, Options{.watch = kWatch});
  Registry other = open_registry(at);
  // Connected first, so they run before the collector's slots.
  const Subscription a = reg.on_event([&](const RegistryEvent&) {
    ++event_throws;
    throw std::runtime_error("event slot fails");
  });
  const Subscription b = reg.on_transition([&](TaskTransition, const SessionTask&) {
    ++transition_throws;
    throw 42;  // not even a std::exception
  });
  const Subscription d = reg.on_wake([&](const WakeNotice&) {
    ++wake_throws;
    throw std::logic_error("wake slot fails");
  });
  c.attach(reg);
  for (const char* id : {"task_1", "task_2"}) {
    other.create(input(id, TaskWakePolicy::OnTerminal, SessionTaskState::Running));
    other.update("sess_1", id, SessionTaskUpdate{.state = SessionTaskState::Succeeded});
  }
  other.create(input("task_end"));
  ASSERT_TRUE(c.wait_for_created("task_end"));
  const Seen seen = c.seen();
  EXPECT_THAT(seen.event_tasks(), ElementsAre("task_1", "task_1", "task_2", "task_2", "task_end"));
  EXPECT_EQ(seen.transitions.size(), 2u);
  EXPECT_EQ(seen.wakes.size(), 2u);
  EXPECT_EQ(event_throws.load(), 5);
  EXPECT_EQ(transition_throws.load(), 2);
  EXPECT_EQ(wake_throws.load(), 2);
}

// ---------------------------------------------------------------------------------------------
// Life cycle of the watching thread
// ---------------------------------------------------------------------------------------------

TEST(Watch, DestroyingTheRegistryWhileEventsKeepArrivingStopsCleanly) {
  TempDir dir;
  const JournalLocation at = journal_at(dir, "journal.db");
  const std::filesystem::path stop = dir / "stop";
  // Writes about one event a millisecond until told to stop (a file); gives up after two minutes
  // (a bound: the parent has failed by then).
  GatedChild writer([&at, stop] {
    Registry w = open_registry(
        at, Options{.durability = taskjournal::Durability::Normal, .busy_timeout = 60s});
    w.create(input("task_w", TaskWakePolicy::OnActivity, SessionTaskState::Running));
    const auto give_up = std::chrono::steady_clock::now() + 120s;
    for (std::uint64_t k = 1;
         !std::filesystem::exists(stop) && std::chrono::steady_clock::now() < give_up; ++k) {
      w.update("sess_1", "task_w", SessionTaskUpdate{.progress = TaskProgress{.current = k}});
      if (k % 10 == 0) w.record_message("sess_1", "task_w", NewTaskMessage::outbound_text("tick"));
      std::this_thread::sleep_for(1ms);
    }
  });
  writer.go();
  std::vector<std::unique_ptr<Collector>> collectors;
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    collectors.push_back(std::make_unique<Collector>());
    Collector& c = *collectors.back();
    std::optional<Registry> reg(open_registry(at, Options{.busy_timeout = 60s, .watch = 1ms}));
    c.attach(*reg);
    if (round % 2 == 0) {  // odd rounds close at once, even ones while notifications flow
      EXPECT_TRUE(c.wait_for([](const Seen& s) { return s.events.size() >= 3; }))
          << "no notifications of the writer's events";
    }
    within_seconds(60, "destroying a watching registry", [&] { reg.reset(); });
    c.close();
  }
  // A witness hears of more writes: meanwhile no slot of a destroyed registry ran.
  {
    Collector witness;
    Registry reg = open_registry(at, Options{.busy_timeout = 60s, .watch = 1ms});
    witness.attach(reg);
    EXPECT_TRUE(witness.wait_for([](const Seen& s) { return s.events.size() >= 30; }));
  }
  std::ofstream(stop).put('x');
  EXPECT_TRUE(exited_ok(writer.wait()));
  for (const auto& c : collectors) EXPECT_EQ(c->late(), 0);
}

TEST(Watch, MovingTheRegistryKeepsTheWatchWorking) {
  TempDir dir;
  const JournalLocation at = journal_at(dir, "journal.db");
  const JournalLocation elsewhere = journal_at(dir, "elsewhere.db");
  Collector before_move, after_move;
  std::optional<Registry> original(open_registry(at, Options{.watch = kWatch}));
  Registry target = open_registry(elsewhere, Options{.watch = kWatch});
  Registry other = open_registry(at);
  before_move.attach(*original);

  Registry moved = std::move(*original);  // move construction
  original.reset();
  other.create(input("task_1"));
  ASSERT_TRUE(before_move.wait_for_created("task_1"));

  target = std::move(moved);  // move assignment over a watching registry of another journal
  after_move.attach(target);
  other.create(input("task_end"));
  ASSERT_TRUE(before_move.wait_for_created("task_end"));
  ASSERT_TRUE(after_move.wait_for_created("task_end"));
  EXPECT_THAT(before_move.seen().event_tasks(), ElementsAre("task_1", "task_end"));
  EXPECT_THAT(after_move.seen().event_tasks(), ElementsAre("task_end"));
  EXPECT_EQ(target.get("sess_1", "task_end")->id, "task_end");
}

TEST(Watch, ZeroOrNegativeIntervalIsInvalidArgument) {
  TempDir dir;
  const JournalLocation at = journal_at(dir, "journal.db");
  EXPECT_THROW_CODE(open_registry(at, Options{.watch = 0ms}), ErrorCode::InvalidArgument);
  EXPECT_THROW_CODE(open_registry(at, Options{.watch = -5ms}), ErrorCode::InvalidArgument);
  EXPECT_NO_THROW(open_registry(at, Options{.watch = 1ms}));
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: another host
// ---------------------------------------------------------------------------------------------

TEST(Watch, WritersOnTwoHostsHearOfEachOthersWritesOnce) {
  // ctest registers it for Postgresql only (tests/CMakeLists.txt): by hand, the other engine fails.
  ASSERT_EQ(test_engine(), TestEngine::Postgresql)
      << "another host shares a journal only on PostgreSQL";
  TempDir dir;
  const JournalLocation at = journal_at(dir, "journal.db");
  // Host B connects with its own connection string: the URI form, its own application name.
  Collector on_a, on_b;
  Registry host_a = open_registry(at, Options{.watch = kWatch});
  Registry host_b =
      Registry::open_postgresql(at.uri() + "&application_name=host_b", Options{.watch = kWatch});
  on_a.attach(host_a);
  on_b.attach(host_b);

  write_the_script(host_b);
  ASSERT_TRUE(on_a.wait_for_created("task_end"));
  expect_the_script_once(on_a.seen(), at, host_a);

  host_a.create(input("task_from_a", TaskWakePolicy::OnActivity, SessionTaskState::Running));
  host_a.update("sess_1", "task_from_a", SessionTaskUpdate{.state = SessionTaskState::Failed});
  host_a.create(input("task_end_a"));
  ASSERT_TRUE(on_b.wait_for_created("task_end_a"));
  const Seen b = on_b.seen();
  EXPECT_THAT(b.event_tasks(), ElementsAre("task_1", "task_1", "task_1", "task_1", "task_end",
                                           "task_from_a", "task_from_a", "task_end_a"));
  EXPECT_EQ(b.seqs(), seqs_of(journal_events(at)));
  EXPECT_EQ(b.event_threads[5], b.event_threads[7]);  // one watching thread
  EXPECT_NE(b.event_threads[5], std::this_thread::get_id());
  EXPECT_EQ(host_b.get("sess_1", "task_from_a")->state, SessionTaskState::Failed);
  // Host A's own writes after the script: in its own thread, once.
  EXPECT_EQ(on_a.seen().events.size(), 8u);
}

/// The number of connections of application `name` whose last statement was a LISTEN, as the
/// server's pg_stat_activity shows them.
std::int64_t listening_connections(const std::string& name) {
  taskjournal::store::postgres::Connection admin(taskjournal::testing::test_server_conninfo());
  const auto r = admin.exec(
      "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND application_name = '" +
      name + "'");
  return std::stoll(std::string(r.bytes(0, 0)));
}

/// Waits (bounded) until `done` holds; returns whether it does.
bool eventually(const std::function<bool()>& done) {
  const auto until = std::chrono::steady_clock::now() + kBound;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

TEST(Watch, ALostListeningConnectionIsReportedThroughOnProblemAndWatchingResumes) {
  // ctest registers it for Postgresql only (tests/CMakeLists.txt): by hand, the other engine fails.
  ASSERT_EQ(test_engine(), TestEngine::Postgresql) << "the LISTEN connection is PostgreSQL's";
  TempDir dir;
  const JournalLocation at = journal_at(dir, "journal.db");
  const std::string app = "tj_watch_lost_listener";
  std::mutex mutex;
  std::vector<std::string> problems;
  const auto watch_problems = [&] {
    std::lock_guard lock(mutex);
    std::vector<std::string> out;
    for (const auto& p : problems) {
      if (p.rfind("watch: ", 0) == 0) out.push_back(p);
    }
    return out;
  };
  Collector c;
  Options options{.watch = kWatch};
  options.on_problem = [&](const Error& e) {
    std::lock_guard lock(mutex);
    problems.push_back(e.what());
  };
  Registry reg = Registry::open_postgresql(at.uri() + "&application_name=" + app, options);
  c.attach(reg);
  Registry writer = open_registry(at);
  writer.create(input("task_before"));
  ASSERT_TRUE(c.wait_for_created("task_before"));
  ASSERT_TRUE(eventually([&] { return listening_connections(app) == 1; }))
      << "the watching registry has no LISTEN connection named " << app;
  EXPECT_THAT(watch_problems(), ::testing::IsEmpty());

  // The server ends the listening backend, as a failover or an administrator would.
  taskjournal::store::postgres::Connection admin(taskjournal::testing::test_server_conninfo());
  const auto killed = admin.exec(
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' "
      "AND application_name = '" +
      app + "'");
  ASSERT_EQ(std::string(killed.bytes(0, 0)), "1");

  ASSERT_TRUE(eventually([&] { return !watch_problems().empty(); }))
      << "the lost connection was not reported through on_problem";
  const std::vector<std::string> reported = watch_problems();
  EXPECT_EQ(reported.size(), 1u) << "reported once until it works again";
  EXPECT_THAT(reported.front(), ::testing::HasSubstr("connection"));

  // Another registry writes: the watching one still hears of it, and listens again.
  writer.create(input("task_after"));
  EXPECT_TRUE(c.wait_for_created("task_after"))
      << "the watching registry was not notified after losing its LISTEN connection";
  EXPECT_TRUE(eventually([&] { return listening_connections(app) == 1; }))
      << "the watching registry did not LISTEN again";
  writer.create(input("task_end"));
  EXPECT_TRUE(c.wait_for_created("task_end"));
  EXPECT_THAT(c.seen().event_tasks(), ElementsAre("task_before", "task_after", "task_end"));
  EXPECT_EQ(watch_problems().size(), 1u);
}

}  // namespace
