// JournalReader: read-only access, events in order with decoded payloads, replay through the
// registry's fold (with limits and per-step drops), verification that reports and goes on.
#include "taskjournal/reader.hpp"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sqlite3.h>

#include "support/fake_clock.hpp"
#include "support/raw_journal.hpp"
#include "support/replay_sample.hpp"
#include "support/temp_dir.hpp"
#include "taskjournal/taskjournal.hpp"

// The bytes the C++ heap holds and the most it held since reset_heap_peak(): the reader's memory
// bound (one task, not one copy per event) is checked with it. SQLite's own allocations (malloc)
// are not counted.
namespace heap {
std::atomic<long long> now{0};
std::atomic<long long> peak{0};
void add(long long n) {
  const long long v = now.fetch_add(n, std::memory_order_relaxed) + n;
  long long p = peak.load(std::memory_order_relaxed);
  while (v > p && !peak.compare_exchange_weak(p, v, std::memory_order_relaxed)) {
  }
}
// The peak above the current level while `body` runs.
template <class F>
long long peak_during(F&& body) {
  const long long base = now.load();
  peak.store(base);
  body();
  return peak.load() - base;
}
}  // namespace heap

void* operator new(std::size_t n) {
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  heap::add(static_cast<long long>(malloc_usable_size(p)));
  return p;
}
void operator delete(void* p) noexcept {
  if (!p) return;
  heap::add(-static_cast<long long>(malloc_usable_size(p)));
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }
// The nothrow and array forms must come through the same malloc, or a buffer taken with one
// (std::get_temporary_buffer uses nothrow new) is freed by the other (AddressSanitizer says so).
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return operator new(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return operator new(n, std::nothrow);
}
void operator delete(void* p, const std::nothrow_t&) noexcept { operator delete(p); }
void operator delete[](void* p) noexcept { operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { operator delete(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { operator delete(p); }

namespace {

namespace fs = std::filesystem;
using namespace taskjournal;
using taskjournal::testing::RawJournal;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class JournalReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_.path();
    sample_ = (dir_ / "s.db").string();
    taskjournal::testing::write_sample_journal(sample_);
  }

  static std::string bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }

  taskjournal::testing::TempDir temp_{"reader_test"};
  fs::path dir_;
  std::string sample_;
};

Timestamp second(int n) {
  return taskjournal::testing::fake_clock_start() + std::chrono::seconds(n);
}

TEST_F(JournalReaderTest, OpeningAMissingFileThrowsReadOnlyAndCreatesNothing) {
  const std::string missing = (dir_ / "missing.db").string();
  try {
    JournalReader::open(missing);
    FAIL() << "opened a missing file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::ReadOnly);
    EXPECT_EQ(std::string(e.what()), missing + ": no such journal");
  }
  EXPECT_FALSE(fs::exists(missing));
}

TEST_F(JournalReaderTest, OpeningSomethingElseThrows) {
  auto code_of = [](const std::string& path) {
    try {
      JournalReader::open(path);
    } catch (const Error& e) {
      return std::make_pair(e.code(), std::string(e.what()));
    }
    return std::make_pair(ErrorCode::InvalidArgument, std::string("opened"));
  };
  const std::string empty = (dir_ / "empty").string();
  std::ofstream(empty).close();
  EXPECT_EQ(code_of(empty),
            std::make_pair(ErrorCode::Corrupt, empty + ": not a taskjournal journal (empty file)"));

  const std::string other = (dir_ / "other.db").string();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(other.c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "CREATE TABLE t (x)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  const std::string before = bytes(other);
  EXPECT_EQ(
      code_of(other),
      std::make_pair(ErrorCode::Corrupt, other + ": not a taskjournal journal (application_id 0)"));
  EXPECT_EQ(bytes(other), before);

  EXPECT_EQ(code_of(dir_.string()),
            std::make_pair(ErrorCode::Storage, dir_.string() + ": not a regular file"));
}

TEST_F(JournalReaderTest, ReadHandsOverEveryEventInOrderWithItsPayloadJson) {
  auto reader = JournalReader::open(sample_);
  EXPECT_EQ(reader.schema_version(), 1);
  EXPECT_EQ(reader.newest_seq(), 15u);
  std::vector<JournalEvent> events;
  reader.read(0, [&](const JournalEvent& e) {
    events.push_back(e);
    return true;
  });
  ASSERT_EQ(events.size(), 15u);
  for (std::size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].seq, i + 1);
  EXPECT_EQ(events[1],
            (JournalEvent{.seq = 2,
                          .type = "task_updated",
                          .version = 1,
                          .recorded_at = second(2),
                          .session_id = "sess_a",
                          .task_id = "task_build",
                          .payload = R"({"state":"running","progress":{"current":1,)"
                                     R"("total":3,"unit":"steps"},"worker_id":"w-1"})"}));
  // The same entries the registry's history() gives.
  auto registry = Registry::open(sample_, Options{.read_only = true});
  for (const auto& entry : registry.history("sess_a", "task_review")) {
    const JournalEvent& e = events[entry.seq - 1];
    EXPECT_EQ(JournalEntry({e.seq, e.type, e.recorded_at, e.session_id, e.task_id, e.payload}),
              entry);
  }
}

TEST_F(JournalReaderTest, ReadStartsAfterAGivenEventAndStopsWhenTheSinkSaysSo) {
  auto reader = JournalReader::open(sample_);
  std::vector<std::uint64_t> seqs;
  reader.read(12, [&](const JournalEvent& e) {
    seqs.push_back(e.seq);
    return e.seq < 14;
  });
  EXPECT_THAT(seqs, ElementsAre(13u, 14u));
  seqs.clear();
  reader.read(15, [&](const JournalEvent& e) {
    seqs.push_back(e.seq);
    return true;
  });
  EXPECT_TRUE(seqs.empty());
}

TEST_F(JournalReaderTest, ReadSeesEventsAppendedAfterOpening) {
  auto reader = JournalReader::open(sample_);
  {
    auto registry = Registry::open(sample_);
    registry.request_cancel("sess_a", "task_build");
  }
  EXPECT_EQ(reader.newest_seq(), 16u);
  std::vector<std::string> types;
  reader.read(15, [&](const JournalEvent& e) {
    types.push_back(e.type);
    return true;
  });
  EXPECT_THAT(types, ElementsAre("cancel_requested"));
}

TEST_F(JournalReaderTest, ReadThrowsCorruptAtTheFirstAlteredEventAfterDeliveringTheOnesBefore) {
  {
    RawJournal raw(sample_);
    raw.drop_triggers();
    raw.exec("UPDATE events SET recorded_at = recorded_at + 1 WHERE seq = 4");
  }
  auto reader = JournalReader::open(sample_);
  std::uint64_t last = 0;
  try {
    reader.read(0, [&](const JournalEvent& e) {
      last = e.seq;
      return true;
    });
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Corrupt);
    EXPECT_EQ(std::string(e.what()),
              sample_ + ": event 4: hash mismatch (row altered, removed or reordered)");
  }
  EXPECT_EQ(last, 3u);
  EXPECT_THROW(reader.replay(), Error);
  EXPECT_NO_THROW(reader.replay(ReplayLimit{.seq = 3}));
}

TEST_F(JournalReaderTest, ReplayGivesTheRegistrysViews) {
  auto reader = JournalReader::open(sample_);
  const JournalSnapshot snap = reader.replay();
  auto registry = Registry::open(sample_, Options{.read_only = true});
  EXPECT_EQ(snap.last_seq, 15u);
  EXPECT_EQ(snap.first_event_at, second(1));
  EXPECT_EQ(snap.last_event_at, second(15));
  EXPECT_THAT(snap.payload_versions, ElementsAre(1u));
  std::vector<TaskView> expected;
  for (const char* session : {"sess_a", "sess_b"}) {
    for (const auto& task : registry.list(session)) {
      expected.push_back(TaskView{task, registry.list_messages(session, task.id)});
    }
  }
  EXPECT_EQ(snap.tasks, expected);
  ASSERT_NE(snap.find("task_lint"), nullptr);
  EXPECT_EQ(snap.find("task_lint")->task.session_id, "sess_b");
  EXPECT_EQ(snap.find("task_nope"), nullptr);
}

TEST_F(JournalReaderTest, ReplayStopsAfterASequenceNumberOrBeforeTheFirstEventAfterATime) {
  auto reader = JournalReader::open(sample_);
  const auto by_seq = reader.replay(ReplayLimit{.seq = 5});
  EXPECT_EQ(by_seq.last_seq, 5u);
  ASSERT_EQ(by_seq.tasks.size(), 2u);
  EXPECT_EQ(by_seq.tasks[0].task.state, SessionTaskState::AwaitingInput);
  EXPECT_EQ(by_seq.tasks[0].messages.size(), 1u);

  const auto by_time = reader.replay(ReplayLimit{.time = second(5) + std::chrono::milliseconds(1)});
  EXPECT_EQ(by_time.last_seq, 5u);
  EXPECT_EQ(by_time.tasks, by_seq.tasks);
  EXPECT_EQ(reader.replay(ReplayLimit{.time = second(5)}).last_seq, 5u);  // at T: included
  EXPECT_EQ(reader.replay(ReplayLimit{.seq = 9, .time = second(5)}).last_seq, 5u);
  EXPECT_EQ(reader.replay(ReplayLimit{.seq = 0}).tasks.size(), 0u);
  EXPECT_EQ(reader.replay(ReplayLimit{.seq = 99}).last_seq, 15u);
}

TEST_F(JournalReaderTest, ReplayStepsShowTheTaskBeforeAndAfterAndWhatTheRulesDropped) {
  auto reader = JournalReader::open(sample_);
  std::vector<ReplayStep> steps;
  reader.replay({}, [&](const ReplayStep& s) { steps.push_back(s); });
  ASSERT_EQ(steps.size(), 15u);

  EXPECT_FALSE(steps[0].before.has_value());  // task_created
  EXPECT_EQ(steps[0].after.id, "task_build");
  EXPECT_EQ(steps[2].message->direction, TaskMessageDirection::Outbound);  // event 3
  EXPECT_EQ(steps[5].before->state, SessionTaskState::AwaitingInput);      // event 6: the answer
  EXPECT_EQ(steps[5].after.state, SessionTaskState::Running);

  EXPECT_EQ(steps[7].dropped, DropReason::Fenced);  // event 8
  EXPECT_EQ(steps[7].after, *steps[7].before);
  EXPECT_EQ(steps[9].dropped, DropReason::Terminal);  // event 10
  EXPECT_EQ(steps[9].after, *steps[9].before);
  for (std::size_t i : {0, 1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14}) {
    EXPECT_EQ(steps[i].dropped, DropReason::None) << i;
  }
  EXPECT_EQ(steps[14].after, *steps[14].before);  // a repeated cancel changes nothing

  std::vector<std::uint64_t> seqs;
  reader.replay(
      ReplayLimit{.seq = 11}, [&](const ReplayStep& s) { seqs.push_back(s.event.seq); },
      "task_review");
  EXPECT_THAT(seqs, ElementsAre(4u, 7u, 8u, 11u));
}

TEST_F(JournalReaderTest, TaskChangesListsTheDifferingFieldsInPublicJsonOrder) {
  SessionTask before{.id = "t", .session_id = "s", .kind = "k", .summary = "old"};
  SessionTask after = before;
  after.state = SessionTaskState::Running;
  after.summary.reset();
  after.attempt = 2;
  after.started_at = second(1);
  EXPECT_THAT(
      task_changes(before, after),
      ElementsAre(FieldChange{"state", R"("queued")", R"("running")"},
                  FieldChange{"summary", R"("old")", std::nullopt},
                  FieldChange{"attempt", "1", "2"},
                  FieldChange{"started_at", std::nullopt, R"("2026-01-02T03:04:06.000006Z")"}));
  EXPECT_TRUE(task_changes(after, after).empty());
  after.spec = taskjournal::testing::kSampleSpec;  // secrets stay redacted
  const auto spec = task_changes(before, after);
  ASSERT_EQ(spec.size(), 5u);
  EXPECT_EQ(spec[0].field, "spec");
  EXPECT_THAT(*spec[0].after, HasSubstr(R"("has_secret":true)"));
  EXPECT_THAT(*spec[0].after, ::testing::Not(HasSubstr("s3cr3t")));
}

TEST_F(JournalReaderTest, VerifyPassesOnAHealthyJournalAndReportsProgress) {
  auto reader = JournalReader::open(sample_);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> progress;
  const auto report = reader.verify({.progress = [&](std::uint64_t done, std::uint64_t total) {
    progress.emplace_back(done, total);
  }});
  EXPECT_TRUE(report.ok());
  EXPECT_TRUE(report.problems.empty());
  EXPECT_EQ(report.events, 15u);
  EXPECT_EQ(report.last_seq, 15u);
  EXPECT_EQ(report.tasks, 3u);
  EXPECT_EQ(report.messages, 2u);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), std::make_pair(std::uint64_t{15}, std::uint64_t{15}));
}

TEST_F(JournalReaderTest, VerifyReportsEveryProblemAndGoesOn) {
  {
    RawJournal raw(sample_);
    raw.drop_triggers();
    raw.exec("UPDATE events SET task_id = 'task_x' WHERE seq = 3");  // hash, and unknown task
    raw.exec("DELETE FROM events WHERE seq IN (9, 10)");             // a gap of two
    raw.exec("UPDATE events SET payload = x'ff' WHERE seq = 12");    // hash, does not decode
  }
  auto reader = JournalReader::open(sample_);
  const auto report = reader.verify();
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.events, 13u);
  EXPECT_EQ(report.last_seq, 15u);
  std::vector<std::string> what;
  for (const auto& p : report.problems) what.push_back(std::to_string(p.seq) + " " + p.what);
  EXPECT_THAT(what,
              ElementsAre("3 event 3: hash mismatch (row altered, removed or reordered)",
                          "3 event 3: names task task_x, unknown in session sess_a",
                          "9 event 9: missing, up to event 10 (sequence gap: event 11 follows "
                          "event 8)",
                          "12 event 12: hash mismatch (row altered, removed or reordered)",
                          HasSubstr("12 event 12: payload of task_updated: ")));
  EXPECT_FALSE(report.truncated);

  const auto capped = reader.verify({.max_problems = 2});
  EXPECT_EQ(capped.problems.size(), 2u);
  EXPECT_TRUE(capped.truncated);
}

TEST_F(JournalReaderTest, VerifySeesWhatAnotherWriterAppendedMeanwhile) {
  auto reader = JournalReader::open(sample_);
  EXPECT_TRUE(reader.verify().ok());
  {
    auto registry = Registry::open(sample_);
    registry.update("sess_b", "task_lint", {.state = SessionTaskState::Succeeded});
  }
  const auto report = reader.verify();
  EXPECT_TRUE(report.ok()) << report.problems.front().what;
  EXPECT_EQ(report.last_seq, 16u);
}

// Random registry calls (seeded, repeatable): whatever the registry writes verifies, and replay
// gives exactly the registry's views, before and after every cut.
TEST_F(JournalReaderTest, RandomJournalsVerifyAndReplayToTheRegistrysViews) {
  constexpr SessionTaskState kStates[] = {
      SessionTaskState::Queued,    SessionTaskState::Running, SessionTaskState::AwaitingInput,
      SessionTaskState::Succeeded, SessionTaskState::Failed,  SessionTaskState::Canceled};
  for (unsigned seed = 1; seed <= 10; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const std::string path = (dir_ / ("random" + std::to_string(seed) + ".db")).string();
    std::mt19937 rng(seed);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
    taskjournal::testing::FakeClock clock;
    auto registry =
        Registry::open(path, Options{.clock = clock.fn(), .durability = Durability::Normal});
    std::vector<std::pair<std::string, std::string>> tasks;  // session, id
    for (int i = 0; i < 300; ++i) {
      clock.advance(std::chrono::milliseconds(1 + pick(3)));
      const int op = tasks.empty() ? 0 : pick(10);
      if (op == 0) {
        const std::string session = "sess_" + std::to_string(pick(3));
        const std::string id = "task_" + std::to_string(tasks.size());
        registry.create({.session_id = session,
                         .id = id,
                         .kind = pick(2) ? "a" : "b",
                         .state = kStates[pick(3) == 0 ? pick(6) : 0]});
        tasks.emplace_back(session, id);
        continue;
      }
      const auto& [session, id] =
          tasks[static_cast<std::size_t>(pick(static_cast<int>(tasks.size())))];
      if (op <= 5) {
        SessionTaskUpdate u;
        if (pick(2)) u.state = kStates[pick(6)];
        if (pick(4) == 0) u.expected_attempt = 1 + pick(3);
        u.increment_attempt = pick(5) == 0;
        if (pick(6) == 0) u.input_request = TaskInputRequest{.id = "q" + std::to_string(i)};
        if (pick(3) == 0) u.summary = "s" + std::to_string(i);
        registry.update(session, id, u);
      } else if (op <= 6) {
        registry.request_cancel(session, id);
      } else {
        NewTaskMessage m =
            pick(2) ? NewTaskMessage::inbound_text("in") : NewTaskMessage::outbound_text("out");
        const auto task = registry.get(session, id);
        if (task->input_request && pick(2)) m.in_reply_to = task->input_request->id;
        registry.record_message(session, id, m);
      }
    }
    auto reader = JournalReader::open(path);
    const auto report = reader.verify();
    EXPECT_TRUE(report.ok()) << report.problems.front().what;
    std::vector<TaskView> expected;
    for (const char* session : {"sess_0", "sess_1", "sess_2"}) {
      for (const auto& task : registry.list(session)) {
        expected.push_back(TaskView{task, registry.list_messages(session, task.id)});
      }
    }
    auto snap = reader.replay();
    std::stable_sort(
        snap.tasks.begin(), snap.tasks.end(),
        [](const TaskView& a, const TaskView& b) { return a.task.session_id < b.task.session_id; });
    std::stable_sort(expected.begin(), expected.end(), [](const TaskView& a, const TaskView& b) {
      return a.task.session_id < b.task.session_id;
    });
    EXPECT_EQ(snap.tasks.size(), expected.size());
    EXPECT_TRUE(snap.tasks == expected);
    // Each step's drop reason agrees with the fold: a dropped event leaves the task as it was.
    std::vector<ReplayStep> steps;
    reader.replay({}, [&](const ReplayStep& step) {
      if (step.dropped != DropReason::None) {
        EXPECT_EQ(step.after, *step.before) << step.event.seq;
      }
      steps.push_back(step);
    });
    // history() of each task: the same events, tasks, drops, messages and changes as the steps of
    // the whole fold.
    for (const auto& [session, id] : tasks) {
      std::vector<const ReplayStep*> expected_steps;
      for (const auto& step : steps) {
        if (step.event.task_id == id) expected_steps.push_back(&step);
      }
      std::size_t n = 0;
      const auto history = reader.history(id, {}, [&](const TaskHistoryStep& step) {
        ASSERT_LT(n, expected_steps.size());
        const ReplayStep& want = *expected_steps[n++];
        EXPECT_EQ(step.event, want.event);
        EXPECT_EQ(*step.task, want.after);
        EXPECT_EQ(step.dropped, want.dropped);
        EXPECT_EQ(step.message, want.message);
        if (want.before) {
          EXPECT_EQ(step.changes, task_changes(*want.before, want.after)) << step.event.seq;
        } else {
          EXPECT_EQ(step.changes.size(), task_fields(want.after).size());
        }
      });
      EXPECT_TRUE(history.found);
      EXPECT_EQ(n, expected_steps.size()) << id;
      EXPECT_EQ(history.events, expected_steps.size());
    }
  }
}

TEST_F(JournalReaderTest, NeverWritesTheJournal) {
  const std::string before = bytes(sample_);
  auto reader = JournalReader::open(sample_);
  reader.replay();
  reader.verify();
  reader.read(0, [](const JournalEvent&) { return true; });
  EXPECT_EQ(bytes(sample_), before);
}

// --- Regression tests of issue #10 -------------------------------------------------------------

// A journal of one task with a 512 KB spec and `updates` updates.
std::string write_large_task(const fs::path& dir, int updates) {
  const std::string path = (dir / "large.db").string();
  taskjournal::testing::FakeClock clock;
  auto registry = Registry::open(
      path, Options{.clock = clock.fn(), .durability = Durability::Normal, .checkpoint_every = 0});
  registry.create({.session_id = "s",
                   .id = "task_big",
                   .kind = "k",
                   .spec = "{\"blob\":\"" + std::string(512 * 1024, 'x') + "\"}"});
  registry.batch([&](Batch& b) {
    for (int i = 0; i < updates; ++i) {
      b.update("s", "task_big",
               {.progress = TaskProgress{.current = static_cast<std::uint64_t>(i)}});
    }
  });
  return path;
}

// history went through replay: a copy of the task before and after each event, and the whole
// task serialised twice per event (22 s and 1 GB for a 512 KB spec and 1,000 updates). history()
// holds one task: its peak memory does not grow with the events.
TEST_F(JournalReaderTest, HistoryOfALargeTaskHoldsOneTaskNotACopyPerEvent) {
  const std::string path = write_large_task(dir_, 200);
  auto reader = JournalReader::open(path);
  std::uint64_t steps = 0, spec_changes = 0;
  const long long peak = heap::peak_during([&] {
    reader.history("task_big", {}, [&](const TaskHistoryStep& step) {
      ++steps;
      if (step.event.type != "task_created") {
        for (const auto& c : step.changes) spec_changes += c.field == "spec";
      }
    });
  });
  EXPECT_EQ(steps, 201u);
  EXPECT_EQ(spec_changes, 0u);
  // The task (its spec once, its created event's payload JSON and field list) is about 2 MB; a
  // copy per event would be 100 MB.
  EXPECT_LT(peak, 8LL << 20) << peak;
}

// task_changes serialised both whole tasks to find the differing fields: an unchanged 512 KB spec
// was written out twice per call. It compares field by field now.
TEST_F(JournalReaderTest, TaskChangesNeverSerialisesAnUnchangedField) {
  SessionTask before{.id = "t",
                     .session_id = "s",
                     .kind = "k",
                     .spec = "{\"blob\":\"" + std::string(512 * 1024, 'x') + "\"}"};
  SessionTask after = before;
  after.summary = "done";
  std::vector<FieldChange> changes;
  const long long peak = heap::peak_during([&] { changes = task_changes(before, after); });
  EXPECT_THAT(changes, ElementsAre(FieldChange{"summary", std::nullopt, R"("done")"}));
  EXPECT_LT(peak, 64 * 1024) << peak;
}

TEST_F(JournalReaderTest, TaskFieldsAreTheMembersOfToJsonInOrder) {
  auto reader = JournalReader::open(sample_);
  for (const auto& view : reader.replay().tasks) {
    std::string joined = "{";
    for (const auto& [name, json] : task_fields(view.task)) {
      joined += (joined.size() > 1 ? ",\"" : "\"") + name + "\":" + json;
    }
    EXPECT_EQ(joined + "}", to_json(view.task));
  }
}

TEST_F(JournalReaderTest, HistoryStopsAtTheLimitAndSaysWhetherTheTaskExists) {
  auto reader = JournalReader::open(sample_);
  std::vector<std::uint64_t> seqs;
  auto collect = [&](const TaskHistoryStep& s) { seqs.push_back(s.event.seq); };
  auto h = reader.history("task_review", {.seq = 11}, collect);
  EXPECT_THAT(seqs, ElementsAre(4u, 7u, 8u, 11u));
  EXPECT_TRUE(h.found);
  EXPECT_EQ(h.last_seq, 11u);
  EXPECT_EQ(h.events, 4u);
  seqs.clear();
  h = reader.history("task_review", {.time = second(8) + std::chrono::milliseconds(1)}, collect);
  EXPECT_THAT(seqs, ElementsAre(4u, 7u, 8u));
  EXPECT_EQ(h.last_seq, 8u);
  seqs.clear();
  h = reader.history("task_lint", {.seq = 12}, collect);
  EXPECT_FALSE(h.found);
  EXPECT_TRUE(seqs.empty());
  EXPECT_EQ(h.last_seq, 12u);
  EXPECT_FALSE(reader.history("task_nope", {}, collect).found);

  // What a dropped update asked for, and the progress at the end.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> progress;
  std::optional<std::int32_t> fence;
  reader.history(
      "task_review",
      {.progress = [&](std::uint64_t d, std::uint64_t t) { progress.emplace_back(d, t); }},
      [&](const TaskHistoryStep& s) {
        if (s.dropped == DropReason::Fenced) fence = s.expected_attempt;
      });
  EXPECT_EQ(fence, 1);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), std::make_pair(std::uint64_t{15}, std::uint64_t{15}));
}

TEST_F(JournalReaderTest, HistoryThrowsCorruptAtADamagedEventOfTheTaskAfterTheOnesBefore) {
  {
    RawJournal raw(sample_);
    raw.drop_triggers();
    raw.exec("UPDATE events SET recorded_at = recorded_at + 1 WHERE seq = 7");
  }
  auto reader = JournalReader::open(sample_);
  std::vector<std::uint64_t> seqs;
  try {
    reader.history("task_review", {},
                   [&](const TaskHistoryStep& s) { seqs.push_back(s.event.seq); });
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Corrupt);
    EXPECT_EQ(std::string(e.what()),
              sample_ + ": event 7: hash mismatch (row altered, removed or reordered)");
  }
  EXPECT_THAT(seqs, ElementsAre(4u));
  // Another task's events are not read.
  EXPECT_TRUE(reader.history("task_lint", {}, [](const TaskHistoryStep&) {}).found);
}

TEST_F(JournalReaderTest, DigestIsTheNewestEventAndItsHashAndVerifyChecksIt) {
  auto reader = JournalReader::open(sample_);
  const JournalDigest digest = reader.digest();
  EXPECT_EQ(digest.seq, 15u);
  ASSERT_EQ(digest.hash.size(), 64u);
  EXPECT_EQ(parse_digest(to_string(digest)), digest);
  EXPECT_EQ(to_string(digest), "15:" + digest.hash);
  EXPECT_FALSE(parse_digest("15"));
  EXPECT_FALSE(parse_digest(":" + digest.hash));
  EXPECT_FALSE(parse_digest("x:" + digest.hash));
  EXPECT_FALSE(parse_digest("15:" + digest.hash.substr(1)));
  EXPECT_FALSE(parse_digest("15:" + digest.hash.substr(1) + "g"));

  auto report = reader.verify({.digest = digest});
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report.digest, digest);
  JournalDigest wrong = digest;
  wrong.hash[0] = wrong.hash[0] == '0' ? '1' : '0';
  report = reader.verify({.digest = wrong});
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.problems[0].seq, 0u);
  EXPECT_THAT(report.problems[0].what, HasSubstr("the journal up to it was rewritten"));
  report = reader.verify({.digest = JournalDigest{.seq = 16, .hash = digest.hash}});
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_THAT(report.problems[0].what, HasSubstr("event 16 missing: the journal ends at event 15"));
}

// A reader opened while a registry holds the file exclusively: Busy after busy_timeout, and the
// message says who holds it and what to do.
TEST_F(JournalReaderTest, ALockedJournalIsBusyAfterTheBusyTimeoutNamingTheHolder) {
  auto registry = Registry::open(sample_, Options{.exclusive = true});
  try {
    JournalReader::open(sample_, ReaderOptions{.busy_timeout = std::chrono::milliseconds(0)});
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Busy);
    EXPECT_THAT(e.what(), HasSubstr("database is locked"));
    EXPECT_THAT(e.what(),
                HasSubstr("locked by process " + std::to_string(getpid()) + " (this process)"));
    EXPECT_THAT(e.what(), HasSubstr("busy_timeout"));
  }
}

TEST_F(JournalReaderTest, ReplayReportsProgressEndingWithAllEvents) {
  auto reader = JournalReader::open(sample_);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> progress;
  reader.replay({.seq = 9, .progress = [&](std::uint64_t d, std::uint64_t t) {
                   progress.emplace_back(d, t);
                 }});
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), std::make_pair(std::uint64_t{9}, std::uint64_t{9}));
}

// The JSON of reports, events and errors comes from the library and is valid JSON, also for text
// that is not UTF-8.
TEST_F(JournalReaderTest, ToJsonOfEventsReportsStepsAndErrorsIsValidJson) {
  auto valid = [](const std::string& text) {
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseValidateEncodingFlag>(text.c_str(), text.size());
    EXPECT_FALSE(doc.HasParseError()) << text;
    return doc;
  };
  auto reader = JournalReader::open(sample_);
  reader.read(0, [&](const JournalEvent& e) {
    const auto doc = valid(to_json(e));
    EXPECT_EQ(doc["seq"].GetUint64(), e.seq);
    EXPECT_EQ(std::string(doc["type"].GetString()), e.type);
    EXPECT_TRUE(doc["payload"].IsObject());
    return true;
  });
  reader.history("task_build", {}, [&](const TaskHistoryStep& step) {
    const auto doc = valid(to_json(step));
    EXPECT_EQ(doc["changes"].Size(), step.changes.size());
  });
  VerifyReport report = reader.verify();
  report.problems.push_back(JournalProblem{3, "event 3: \xff bad"});
  report.comparison_skipped = "bad \xc3";
  auto doc = valid(to_json(report));
  EXPECT_EQ(std::string(doc["problems"][0]["what"].GetString()), "event 3: \xEF\xBF\xBD bad");
  EXPECT_EQ(std::string(doc["comparison_skipped"].GetString()), "bad \xEF\xBF\xBD");
  doc = valid(to_json(Error(ErrorCode::Busy, "f\xff: locked")));
  EXPECT_EQ(std::string(doc["error"]["code"].GetString()), "busy");
  EXPECT_EQ(std::string(doc["error"]["message"].GetString()), "f\xEF\xBF\xBD: locked");
  EXPECT_EQ(json_string("a\"\n\xe2\x82\xac\xed\xa0\x80"),
            "\"a\\\"\\n\xe2\x82\xac\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
  auto summary = summarize(reader.replay());
  summary.file = "s\xfe.db";
  doc = valid(to_json(summary));
  EXPECT_EQ(doc["tasks"].GetUint64(), 3u);
  EXPECT_EQ(doc["tasks_by_state"]["succeeded"].GetUint64(), 1u);
  EXPECT_EQ(doc["tasks_by_kind"]["build"].GetUint64(), 2u);
  valid(to_json(reader.digest()));
  valid(to_json(*reader.replay().find("task_build")));
}

}  // namespace
