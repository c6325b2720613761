// Acceptance tests of archiving the journal's prefix (issue 13 item 2, README "Archiving"):
// archive_journal, `taskjournal-replay archive` and `verify --archive`, and how registries and
// readers work from the anchor it leaves, on every engine (TASKJOURNAL_TEST_ENGINE). What an
// archived journal shows is compared with what the same journal showed before archiving; "another
// process" is a forked child on the same journal; crashes are SIGKILLs at random moments. Tasks
// age by moving a FakeClock, never by sleeping; no test measures a duration.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "store/postgres/pq.hpp"
#include "support/errors.hpp"
#include "support/fake_clock.hpp"
#include "support/journals.hpp"
#include "support/processes.hpp"
#include "support/temp_dir.hpp"
#include "support/watchdog.hpp"
#include "taskjournal/copy.hpp"
#include "taskjournal/json.hpp"
#include "taskjournal/taskjournal.hpp"

namespace {

using namespace std::chrono_literals;
using taskjournal::archive_journal;
using taskjournal::ArchiveOptions;
using taskjournal::ArchiveResult;
using taskjournal::Batch;
using taskjournal::copy_journal;
using taskjournal::CreateSessionTask;
using taskjournal::Durability;
using taskjournal::Error;
using taskjournal::ErrorCode;
using taskjournal::JournalEntry;
using taskjournal::JournalEvent;
using taskjournal::JournalReader;
using taskjournal::JournalSnapshot;
using taskjournal::NewTaskMessage;
using taskjournal::Options;
using taskjournal::Registry;
using taskjournal::SessionTask;
using taskjournal::SessionTaskState;
using taskjournal::SessionTaskUpdate;
using taskjournal::TaskInputRequest;
using taskjournal::TaskProgress;
using taskjournal::TaskView;
using taskjournal::VerifyOptions;
using taskjournal::VerifyReport;
using taskjournal::testing::error_text;
using taskjournal::testing::exited_ok;
using taskjournal::testing::FakeClock;
using taskjournal::testing::fork_child;
using taskjournal::testing::GatedChild;
using taskjournal::testing::ids_of;
using taskjournal::testing::journal_at;
using taskjournal::testing::JournalLocation;
using taskjournal::testing::open_reader;
using taskjournal::testing::open_registry;
using taskjournal::testing::Pipe;
using taskjournal::testing::ProgramRun;
using taskjournal::testing::RawJournal;
using taskjournal::testing::read_exact;
using taskjournal::testing::run_program;
using taskjournal::testing::TempDir;
using taskjournal::testing::test_engine;
using taskjournal::testing::TestEngine;
using taskjournal::testing::types_of;
using taskjournal::testing::wait_child;
using taskjournal::testing::within_seconds;
using taskjournal::testing::write_all;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

/// The sessions of these journals, in the order their tasks are created: not their sorted order.
const std::vector<std::string> kSessions{"sess_c", "sess_a", "sess_b"};
/// A generous bound for a wait that is expected to end long before it.
constexpr std::chrono::seconds kLong = 30s;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

std::string numbered(const char* prefix, int i) {
  char id[32];
  std::snprintf(id, sizeof id, "%s_%04d", prefix, i);
  return id;
}

CreateSessionTask input(std::string session, std::string id,
                        SessionTaskState state = SessionTaskState::Queued) {
  return CreateSessionTask{.session_id = std::move(session),
                           .id = std::move(id),
                           .kind = "subagent",
                           .display_name = "Worker one",
                           .spec = "{\"n\":1}",
                           .state = state};
}

/// Tasks `prefix_<first>` … of the three sessions in turn, each created, started with a
/// heartbeat, given progress and a message, and then succeeded, failed, left running or left
/// awaiting input (by i % 4), through `w` (a Registry or a Batch): four events a task.
template <typename Writer>
void write_tasks(Writer& w, FakeClock& clock, const char* prefix, int first, int count) {
  for (int i = first; i < first + count; ++i) {
    const std::string& session = kSessions[static_cast<std::size_t>(i) % kSessions.size()];
    const std::string id = numbered(prefix, i);
    w.create(input(session, id));
    w.update(session, id,
             SessionTaskUpdate{.state = SessionTaskState::Running,
                               .progress = TaskProgress{.current = 1, .total = 4, .unit = "steps"},
                               .heartbeat_at = clock.now()});
    w.record_message(session, id, NewTaskMessage::outbound_text("step " + std::to_string(i)));
    switch (i % 4) {
      case 0:
        w.update(session, id,
                 SessionTaskUpdate{.state = SessionTaskState::Succeeded, .summary = "done"});
        break;
      case 1:
        w.update(
            session, id,
            SessionTaskUpdate{.state = SessionTaskState::Failed,
                              .error = taskjournal::TaskError{.kind = "boom", .message = "x"}});
        break;
      case 2:
        w.update(session, id, SessionTaskUpdate{.summary = "still going"});
        break;
      default:
        w.update(session, id,
                 SessionTaskUpdate{.input_request =
                                       TaskInputRequest{.id = "q" + id, .prompt = "go on?"}});
        break;
    }
  }
  clock.advance(1s);
}

/// write_tasks in batches of `per_batch` tasks (one transaction each): big journals quickly.
void write_tasks_batched(Registry& reg, FakeClock& clock, const char* prefix, int first, int count,
                         int per_batch = 100) {
  for (int from = first; from < first + count; from += per_batch) {
    const int n = std::min(per_batch, first + count - from);
    reg.batch([&](Batch& b) { write_tasks(b, clock, prefix, from, n); });
  }
}

/// Everything `reg` shows of the sessions except histories (which archiving changes on purpose):
/// each task's JSON and its messages' JSON, in list order. Equal dumps = equal views.
std::string views_of(Registry& reg, const std::vector<std::string>& sessions = kSessions) {
  std::string out;
  for (const auto& session : sessions) {
    out += "session " + session + "\n";
    for (const auto& task : reg.list(session)) {
      out += "  task " + taskjournal::to_json(task) + "\n";
      for (const auto& m : reg.list_messages(session, task.id)) {
        out += "    message " + taskjournal::to_json(m) + "\n";
      }
    }
  }
  return out;
}

/// The tasks of a snapshot, by id (the order of a snapshot is compared on its own).
std::vector<TaskView> by_id(std::vector<TaskView> tasks) {
  std::sort(tasks.begin(), tasks.end(),
            [](const TaskView& a, const TaskView& b) { return a.task.id < b.task.id; });
  return tasks;
}

std::vector<std::string> ids_of(const std::vector<TaskView>& tasks) {
  std::vector<std::string> out;
  for (const auto& t : tasks) out.push_back(t.task.id);
  return out;
}

/// A verify report's problems as text ("" when it verifies).
std::string problems(const VerifyReport& report) {
  std::string out;
  for (const auto& p : report.problems) out += "[" + std::to_string(p.seq) + "] " + p.what + "\n";
  return out;
}

/// The events the reader hands out from the start of what it holds.
std::vector<JournalEvent> events_of(JournalReader& reader) {
  std::vector<JournalEvent> out;
  reader.read(0, [&](const JournalEvent& e) {
    out.push_back(e);
    return true;
  });
  return out;
}

std::vector<JournalEvent> events_of(const JournalLocation& at) {
  JournalReader reader = open_reader(at);
  return events_of(reader);
}

/// The first column of the first row of `sql` on the journal's own database, as an integer (-1
/// for no row or NULL): raw SQL behind the library's back.
std::int64_t sql_int(const JournalLocation& at, const std::string& sql) {
  if (at.engine == TestEngine::Sqlite) return taskjournal::testing::raw_int(at.where, sql);
  taskjournal::store::postgres::Connection conn(at.where);
  const auto r = conn.exec(sql);
  if (r.rows() == 0 || r.is_null(0, 0)) return -1;
  return std::stoll(std::string(r.bytes(0, 0)));
}

/// Runs `sql` on the journal's own database, behind the library's back.
void sql_run(const JournalLocation& at, const std::string& sql) {
  if (at.engine == TestEngine::Sqlite) {
    taskjournal::testing::raw_sql(at.where, sql);
  } else {
    taskjournal::store::postgres::Connection(at.where).exec(sql);
  }
}

/// Makes the events table writable behind the library's back (its immutability triggers off).
void allow_tampering(const JournalLocation& at) {
  if (at.engine == TestEngine::Sqlite) {
    RawJournal(at.where).drop_triggers();
  } else {
    sql_run(at, "ALTER TABLE events DISABLE TRIGGER USER");
  }
}

/// A live journal, its archive, and a FakeClock driving the registries on it. Durability Normal:
/// these tests crash processes, not machines.
struct Env {
  TempDir dir;
  JournalLocation live = journal_at(dir, "live.db");
  JournalLocation archive = journal_at(dir, "archive.db");
  FakeClock clock;

  Options options(Options o = {}) const {
    o.clock = clock.fn();
    o.durability = Durability::Normal;
    return o;
  }
  Registry open(Options o = {}) const { return open_registry(live, options(std::move(o))); }
  JournalReader reader() const { return open_reader(live); }

  ArchiveResult archive_through(std::uint64_t before_seq, bool compact = true) const {
    return archive_journal(live.uri(), archive.uri(),
                           ArchiveOptions{.before_seq = before_seq, .compact = compact});
  }
  VerifyReport verify_with_archive() const {
    return reader().verify(VerifyOptions{.archive = archive.uri()});
  }
};

/// What a journal showed before it was archived, to compare with afterwards.
struct Before {
  std::uint64_t newest = 0;
  std::string views;
  JournalSnapshot snapshot;
  std::vector<JournalEvent> events;
};

Before look(const Env& env) {
  Before b;
  Registry reg = env.open();
  b.newest = reg.last_seq();
  b.views = views_of(reg);
  JournalReader reader = env.reader();
  b.snapshot = reader.replay();
  b.events = events_of(reader);
  return b;
}

/// A journal of `tasks` tasks (four events each), written in batches.
std::uint64_t populate(Env& env, int tasks, const char* prefix = "task") {
  Registry reg = env.open();
  write_tasks_batched(reg, env.clock, prefix, 0, tasks, 20);
  return reg.last_seq();
}

#ifdef TASKJOURNAL_REPLAY
/// Runs taskjournal-replay with `args`, its output in `dir`.
ProgramRun run_replay_tool(const TempDir& dir, std::vector<std::string> args) {
  return run_program(TASKJOURNAL_REPLAY, std::move(args), dir.path());
}
#endif

// ---------------------------------------------------------------------------------------------
// The live journal and the archive after archiving
// ---------------------------------------------------------------------------------------------

TEST(Archive, LiveJournalOpensAndVerifiesFromItsAnchor) {
  Env env;
  const std::uint64_t newest = populate(env, 30);
  const std::uint64_t n = newest / 2;

  const ArchiveResult result = env.archive_through(n);

  EXPECT_EQ(result.archived_through, n);
  EXPECT_EQ(result.events_archived, n);
  EXPECT_FALSE(result.journal.empty());
  EXPECT_FALSE(result.archive.empty());
  Registry reg = env.open();
  EXPECT_EQ(reg.last_seq(), newest);
  if (test_engine() == TestEngine::Sqlite) {  // a PostgreSQL registry folds nothing at open
    EXPECT_EQ(reg.open_report().checkpoint_seq, n);
    EXPECT_EQ(reg.open_report().events_folded, newest - n);
  }
  const VerifyReport report = env.reader().verify();
  EXPECT_TRUE(report.ok()) << problems(report);
  EXPECT_EQ(report.archived_through, n);
  EXPECT_EQ(report.last_seq, newest);
  EXPECT_EQ(report.events, newest - n);
}

TEST(Archive, ArchiveIsAnOrdinaryJournalOfTheArchivedEvents) {
  Env env;
  const std::uint64_t newest = populate(env, 30);
  const std::uint64_t n = newest / 2;
  const Before before = look(env);

  env.archive_through(n);

  JournalReader archive = open_reader(env.archive);
  const VerifyReport report = archive.verify();
  EXPECT_TRUE(report.ok()) << problems(report);
  EXPECT_EQ(report.archived_through, 0u);
  EXPECT_EQ(archive.newest_seq(), n);
  const std::vector<JournalEvent> archived = events_of(archive);
  const std::vector<JournalEvent> expected(before.events.begin(),
                                           before.events.begin() + static_cast<std::ptrdiff_t>(n));
  EXPECT_EQ(archived, expected);
  // The archive's fold at its end is the unarchived journal's at event n.
  EXPECT_EQ(by_id(archive.replay().tasks), by_id(env.reader().replay({.seq = n}).tasks));
}

TEST(Archive, LiveJournalHoldsOnlyTheEventsAfterTheAnchor) {
  Env env;
  const std::uint64_t newest = populate(env, 30);
  const std::uint64_t n = newest / 2;
  const Before before = look(env);

  env.archive_through(n);

  const std::vector<JournalEvent> expected(before.events.begin() + static_cast<std::ptrdiff_t>(n),
                                           before.events.end());
  EXPECT_EQ(events_of(env.live), expected);
  EXPECT_EQ(env.reader().newest_seq(), newest);
  EXPECT_EQ(sql_int(env.live, "SELECT count(*) FROM events"),
            static_cast<std::int64_t>(newest - n));
  EXPECT_EQ(sql_int(env.live, "SELECT min(seq) FROM events"), static_cast<std::int64_t>(n + 1));
}

TEST(Archive, VerifyWithTheArchiveChecksTheChainAcrossBoth) {
  Env env;
  const std::uint64_t n = populate(env, 30) / 3;
  env.archive_through(n);
  const VerifyReport report = env.verify_with_archive();
  EXPECT_TRUE(report.ok()) << problems(report);
  EXPECT_EQ(report.archived_through, n);
}

TEST(Archive, LiveRegistryShowsTheSameViewsAsACopyMadeBeforeArchiving) {
  Env env;
  const std::uint64_t newest = populate(env, 30);
  const JournalLocation copy = journal_at(env.dir, "before.db");
  copy_journal(env.live.uri(), copy.uri());

  env.archive_through(newest / 2);

  Registry archived = env.open();
  Registry unarchived = open_registry(copy, env.options());
  EXPECT_EQ(views_of(archived), views_of(unarchived));
  EXPECT_EQ(archived.last_seq(), unarchived.last_seq());
  const JournalSnapshot ours = env.reader().replay();
  const JournalSnapshot theirs = open_reader(copy).replay();
  EXPECT_EQ(ours.last_seq, theirs.last_seq);
  EXPECT_EQ(by_id(ours.tasks), by_id(theirs.tasks));
  EXPECT_EQ(ours.last_event_at, theirs.last_event_at);
}

TEST(Archive, ViewsAreTheSameForEveryAnchor) {
  Env env;
  const std::uint64_t newest = populate(env, 8);
  const Before before = look(env);
  // Each anchor in turn, on a fresh copy: the first event, every one up to the newest.
  for (std::uint64_t n = 1; n <= newest; n += 3) {
    Env each;
    copy_journal(env.live.uri(), each.live.uri());
    each.archive_through(n);
    Registry reg = each.open();
    EXPECT_EQ(views_of(reg), before.views) << "anchor " << n;
    EXPECT_EQ(by_id(each.reader().replay().tasks), by_id(before.snapshot.tasks)) << "anchor " << n;
    EXPECT_TRUE(each.verify_with_archive().ok()) << "anchor " << n;
  }
}

TEST(Archive, ReplaySnapshotHoldsTheSameTasksTheAnchorsFirstByCreationTime) {
  Env env;
  const std::uint64_t newest = populate(env, 12);
  const Before before = look(env);
  env.archive_through(newest / 2);
  // JournalSnapshot::tasks: after an archived prefix, the anchor's tasks come first, ordered by
  // created_at (the checkpoint keeps no finer creation order), then the later ones in order.
  const auto tasks = env.reader().replay().tasks;
  for (std::size_t i = 1; i < tasks.size(); ++i) {
    EXPECT_LE(tasks[i - 1].task.created_at, tasks[i].task.created_at) << tasks[i].task.id;
  }
  auto sorted = [](std::vector<std::string> ids) {
    std::sort(ids.begin(), ids.end());
    return ids;
  };
  EXPECT_EQ(sorted(ids_of(tasks)), sorted(ids_of(before.snapshot.tasks)));
}

TEST(Archive, NewWritesContinueAtTheNextSequenceNumberAndVerify) {
  Env env;
  const std::uint64_t newest = populate(env, 20);
  env.archive_through(newest / 2);
  {
    Registry reg = env.open();
    reg.create(input("sess_a", "after_1"));
    EXPECT_EQ(reg.last_seq(), newest + 1);
    reg.update("sess_a", "task_0001", SessionTaskUpdate{.summary = "touched after the archive"});
    EXPECT_EQ(reg.last_seq(), newest + 2);
  }
  Registry reopened = env.open();
  EXPECT_EQ(reopened.get("sess_a", "after_1")->id, "after_1");
  EXPECT_EQ(reopened.get("sess_a", "task_0001")->summary, "touched after the archive");
  const VerifyReport report = env.verify_with_archive();
  EXPECT_TRUE(report.ok()) << problems(report);
  EXPECT_EQ(report.last_seq, newest + 2);
}

TEST(Archive, ArchivingTheSamePrefixAgainChangesNothing) {
  Env env;
  const std::uint64_t n = populate(env, 20) / 2;
  const ArchiveResult first = env.archive_through(n);
  const Before before = look(env);

  const ArchiveResult again = env.archive_through(n);

  EXPECT_EQ(again.archived_through, n);
  EXPECT_EQ(again.events_archived, 0u);
  EXPECT_EQ(again.archive, first.archive);
  EXPECT_EQ(look(env).views, before.views);
  EXPECT_EQ(open_reader(env.archive).newest_seq(), n);
  EXPECT_TRUE(env.verify_with_archive().ok());
}

TEST(Archive, BeforeSeqBeyondTheNewestArchivesEverything) {
  Env env;
  const std::uint64_t newest = populate(env, 20);
  const Before before = look(env);

  const ArchiveResult result = env.archive_through(newest + 1000);

  EXPECT_EQ(result.archived_through, newest);
  EXPECT_EQ(result.events_archived, newest);
  EXPECT_THAT(events_of(env.live), IsEmpty());
  EXPECT_EQ(sql_int(env.live, "SELECT count(*) FROM events"), 0);
  EXPECT_EQ(open_reader(env.archive).newest_seq(), newest);
  {
    Registry reg = env.open();
    EXPECT_EQ(reg.last_seq(), newest);
    EXPECT_EQ(views_of(reg), before.views);
    const VerifyReport report = env.verify_with_archive();
    EXPECT_TRUE(report.ok()) << problems(report);
    EXPECT_EQ(report.events, 0u);
    reg.create(input("sess_b", "after_all"));
    EXPECT_EQ(reg.last_seq(), newest + 1);
  }
  EXPECT_EQ(events_of(env.live).at(0).seq, newest + 1);
  Registry reopened = env.open();
  EXPECT_TRUE(reopened.get("sess_b", "after_all"));
  EXPECT_TRUE(env.verify_with_archive().ok());
}

TEST(Archive, BeforeSeqZeroOrBatchEventsZeroIsInvalidArgumentAndChangesNothing) {
  Env env;
  const std::uint64_t newest = populate(env, 5);
  EXPECT_THROW_CODE(
      archive_journal(env.live.uri(), env.archive.uri(), ArchiveOptions{.before_seq = 0}),
      ErrorCode::InvalidArgument);
  EXPECT_THROW_CODE(archive_journal(env.live.uri(), env.archive.uri(),
                                    ArchiveOptions{.before_seq = 3, .batch_events = 0}),
                    ErrorCode::InvalidArgument);
  EXPECT_EQ(events_of(env.live).size(), newest);
  EXPECT_EQ(env.reader().verify().archived_through, 0u);
}

// ---------------------------------------------------------------------------------------------
// history() across the anchor
// ---------------------------------------------------------------------------------------------

TEST(ArchiveHistory, TaskWhoseFirstEventsWereArchivedStartsWithAnArchivedEntry) {
  Env env;
  std::uint64_t n = 0;
  std::vector<JournalEntry> before;
  {
    Registry reg = env.open();
    write_tasks(reg, env.clock, "task", 0, 1);  // task_0000 of sess_c: four events
    n = reg.last_seq() - 2;  // the anchor inside its history: two of them archived
    write_tasks(reg, env.clock, "other", 1, 2);
    reg.update("sess_c", "task_0000", SessionTaskUpdate{.summary = "later"});
    before = reg.history("sess_c", "task_0000");
  }
  const ArchiveResult result = env.archive_through(n);

  Registry reg = env.open();
  const std::vector<JournalEntry> history = reg.history("sess_c", "task_0000");
  ASSERT_FALSE(history.empty());
  const JournalEntry& marker = history.front();
  EXPECT_EQ(marker.type, "archived");
  EXPECT_EQ(marker.seq, n);
  EXPECT_EQ(marker.session_id, "sess_c");
  EXPECT_EQ(marker.task_id, "task_0000");
  EXPECT_EQ(marker.payload, "{\"archived_through\":" + std::to_string(n) + ",\"archive\":" +
                                taskjournal::json_string(result.archive) + ",\"events\":2}");
  std::vector<JournalEntry> live_part;
  for (const auto& e : before) {
    if (e.seq > n) live_part.push_back(e);
  }
  EXPECT_EQ(std::vector<JournalEntry>(history.begin() + 1, history.end()), live_part);
}

TEST(ArchiveHistory, TaskCreatedAfterTheAnchorHasItsFullHistory) {
  Env env;
  const std::uint64_t n = populate(env, 6);
  std::vector<JournalEntry> before;
  {
    Registry reg = env.open();
    write_tasks(reg, env.clock, "late", 6, 1);
    before = reg.history("sess_c", "late_0006");
  }
  env.archive_through(n);
  Registry reg = env.open();
  EXPECT_EQ(reg.history("sess_c", "late_0006"), before);
  EXPECT_EQ(types_of(before).front(), "task_created");
}

TEST(ArchiveHistory, TaskWhollyInTheArchiveHasOnlyTheArchivedEntry) {
  Env env;
  const std::uint64_t n = populate(env, 6);
  {
    Registry reg = env.open();
    write_tasks(reg, env.clock, "late", 6, 1);
  }
  env.archive_through(n);
  Registry reg = env.open();
  const auto history = reg.history("sess_a", "task_0001");  // four events, all archived
  ASSERT_THAT(types_of(history), ElementsAre("archived"));
  EXPECT_THAT(history[0].payload, HasSubstr("\"events\":4}"));
}

TEST(ArchiveHistory, ReaderHistoryStartsFromTheTaskAsTheAnchorHoldsIt) {
  Env env;
  std::uint64_t n = 0;
  {
    Registry reg = env.open();
    write_tasks(reg, env.clock, "task", 0, 1);
    n = reg.last_seq() - 2;
  }
  const Before before = look(env);
  env.archive_through(n);
  std::vector<std::uint64_t> seqs;
  SessionTask last;
  const auto history =
      env.reader().history("task_0000", {}, [&](const taskjournal::TaskHistoryStep& step) {
        seqs.push_back(step.event.seq);
        last = *step.task;
      });
  EXPECT_TRUE(history.found);
  EXPECT_EQ(history.archived_through, n);
  EXPECT_THAT(seqs, ElementsAre(n + 1, n + 2));
  EXPECT_EQ(last, before.snapshot.find("task_0000")->task);
}

TEST(ArchiveReplay, HistoryAndTimeLimitsBeforeTheFirstStoredEventAreInvalidArgument) {
  Env env;
  const std::uint64_t n = populate(env, 10) / 2;
  const JournalSnapshot all = env.reader().replay();
  const ArchiveResult result = env.archive_through(n);
  JournalReader reader = env.reader();
  const auto none = [](const taskjournal::TaskHistoryStep&) {};
  EXPECT_THROW_CODE(reader.history("task_0000", {.seq = n - 1}, none), ErrorCode::InvalidArgument);
  // A time before every event: only the archive can say what held then.
  const taskjournal::Timestamp early = all.first_event_at.value() - std::chrono::seconds(1);
  ErrorCode code{};
  const std::string what = error_text([&] { reader.replay({.time = early}); }, &code);
  EXPECT_EQ(code, ErrorCode::InvalidArgument) << what;
  EXPECT_THAT(what, HasSubstr(result.archive));
  EXPECT_THROW_CODE(reader.history("task_0000", {.time = early}, none), ErrorCode::InvalidArgument);
  // A time after the newest event is answered.
  EXPECT_EQ(by_id(reader.replay({.time = all.last_event_at.value()}).tasks), by_id(all.tasks));
}

TEST(ArchiveReplay, ReplayWithALimitBeforeTheAnchorIsInvalidArgumentNamingTheArchive) {
  Env env;
  const std::uint64_t n = populate(env, 10) / 2;
  const Before before = look(env);
  const JournalSnapshot at_next = env.reader().replay({.seq = n + 1});
  const ArchiveResult result = env.archive_through(n);
  JournalReader reader = env.reader();
  ErrorCode code{};
  const std::string what = error_text([&] { reader.replay({.seq = n - 1}); }, &code);
  EXPECT_EQ(code, ErrorCode::InvalidArgument) << what;
  EXPECT_THAT(what, HasSubstr(result.archive));
  EXPECT_THROW_CODE(reader.replay({.seq = 1}), ErrorCode::InvalidArgument);
  // At the anchor and after it the reader replays as before.
  JournalReader unarchived_at_n = open_reader(env.archive);
  EXPECT_EQ(by_id(reader.replay({.seq = n}).tasks), by_id(unarchived_at_n.replay().tasks));
  EXPECT_EQ(by_id(reader.replay({.seq = n + 1}).tasks), by_id(at_next.tasks));
  EXPECT_EQ(by_id(reader.replay().tasks), by_id(before.snapshot.tasks));
}

// ---------------------------------------------------------------------------------------------
// Archiving again
// ---------------------------------------------------------------------------------------------

TEST(ArchiveAgain, SecondArchiveIntoTheSameArchiveAppendsTheNextPart) {
  Env env;
  const std::uint64_t n1 = populate(env, 10);
  const ArchiveResult first = env.archive_through(n1);
  std::uint64_t newest = 0;
  {
    Registry reg = env.open();
    write_tasks_batched(reg, env.clock, "more", 10, 10, 5);
    reg.update("sess_a", "task_0001", SessionTaskUpdate{.summary = "after the first archive"});
    newest = reg.last_seq();
  }
  const std::uint64_t n2 = newest - 7;
  const Before before = look(env);

  const ArchiveResult second = env.archive_through(n2);

  EXPECT_EQ(second.archived_through, n2);
  EXPECT_EQ(second.events_archived, n2 - n1);
  EXPECT_EQ(second.archive, first.archive);
  JournalReader archive = open_reader(env.archive);
  EXPECT_EQ(archive.newest_seq(), n2);
  const VerifyReport own = archive.verify();
  EXPECT_TRUE(own.ok()) << problems(own);
  EXPECT_EQ(own.events, n2);
  const std::vector<JournalEvent> live_part = events_of(env.live);
  ASSERT_EQ(live_part.size(), newest - n2);
  EXPECT_EQ(live_part.front().seq, n2 + 1);
  const VerifyReport both = env.verify_with_archive();
  EXPECT_TRUE(both.ok()) << problems(both);
  EXPECT_EQ(both.archived_through, n2);
  Registry reg = env.open();
  EXPECT_EQ(views_of(reg), before.views);
  // Its four first events went with the first archive, the update stays live.
  const auto history = reg.history("sess_a", "task_0001");
  ASSERT_THAT(types_of(history), ElementsAre("archived", "task_updated"));
  EXPECT_EQ(history[0].seq, n2);
  EXPECT_THAT(history[0].payload, HasSubstr("\"events\":4}"));
}

TEST(ArchiveAgain, IntoANewArchiveAfterTheFirstIsInvalidArgumentAndChangesNothing) {
  Env env;
  const std::uint64_t n1 = populate(env, 10);
  env.archive_through(n1);
  {
    Registry reg = env.open();
    write_tasks(reg, env.clock, "more", 10, 4);
  }
  const Before before = look(env);
  const JournalLocation fresh = journal_at(env.dir, "fresh-archive.db");

  EXPECT_THROW_CODE(archive_journal(env.live.uri(), fresh.uri(), ArchiveOptions{.before_seq = 60}),
                    ErrorCode::InvalidArgument);

  EXPECT_EQ(events_of(env.live), before.events);
  const VerifyReport report = env.verify_with_archive();
  EXPECT_TRUE(report.ok()) << problems(report);
  EXPECT_EQ(report.archived_through, n1);
  EXPECT_EQ(look(env).views, before.views);
}

TEST(ArchiveAgain, IntoAnotherJournalsArchiveIsInvalidArgumentAndChangesNothing) {
  Env env;
  const std::uint64_t n1 = populate(env, 10);
  env.archive_through(n1);
  {
    Registry reg = env.open();
    write_tasks(reg, env.clock, "more", 10, 4);
  }
  // Another journal with more events than our anchor, archived into an archive of its own.
  Env other;
  populate(other, 12, "theirs");
  other.archive_through(n1 + 5);
  const Before before = look(env);

  EXPECT_THROW_CODE(
      archive_journal(env.live.uri(), other.archive.uri(), ArchiveOptions{.before_seq = n1 + 10}),
      ErrorCode::InvalidArgument);

  EXPECT_EQ(events_of(env.live), before.events);
  EXPECT_EQ(open_reader(other.archive).newest_seq(), n1 + 5);
  EXPECT_TRUE(env.verify_with_archive().ok());
}

TEST(ArchiveAgain, FirstArchiveIntoAJournalWithOtherEventsIsInvalidArgument) {
  Env env;
  const std::uint64_t newest = populate(env, 10);
  Env other;
  populate(other, 3, "theirs");
  const Before before = look(env);
  EXPECT_THROW_CODE(
      archive_journal(env.live.uri(), other.live.uri(), ArchiveOptions{.before_seq = newest / 2}),
      ErrorCode::InvalidArgument);
  EXPECT_EQ(events_of(env.live), before.events);
  EXPECT_EQ(env.reader().verify().archived_through, 0u);
}

// ---------------------------------------------------------------------------------------------
// Registries open during the archive
// ---------------------------------------------------------------------------------------------

TEST(ArchiveElsewhere, RegistryThatHadNotCaughtUpRebuildsFromTheAnchorAndWritesAtTheRightSeq) {
  Env env;
  populate(env, 6);
  Registry lagging = env.open();
  ASSERT_TRUE(lagging.get("sess_c", "task_0000"));  // loaded, then left behind
  std::uint64_t newest = 0;
  {
    Registry writer = env.open();
    write_tasks(writer, env.clock, "more", 6, 6);
    newest = writer.last_seq();
  }
  const Before before = look(env);
  env.archive_through(newest - 3);  // past everything `lagging` has seen

  EXPECT_EQ(views_of(lagging), before.views);
  EXPECT_EQ(lagging.last_seq(), newest);
  lagging.create(input("sess_a", "after_archive"));
  EXPECT_EQ(lagging.last_seq(), newest + 1);
  lagging.update("sess_c", "task_0000", SessionTaskUpdate{.summary = "still mine"});
  EXPECT_EQ(lagging.last_seq(), newest + 2);
  Registry fresh = env.open();
  EXPECT_EQ(views_of(fresh), views_of(lagging));
  const VerifyReport report = env.verify_with_archive();
  EXPECT_TRUE(report.ok()) << problems(report);
}

TEST(ArchiveElsewhere, RegistryThatHadCaughtUpKeepsItsViewsAndWrites) {
  Env env;
  const std::uint64_t newest = populate(env, 6);
  Registry reg = env.open();
  const std::string views = views_of(reg);
  env.archive_through(newest);
  EXPECT_EQ(views_of(reg), views);
  reg.create(input("sess_b", "after_archive"));
  EXPECT_EQ(reg.last_seq(), newest + 1);
  EXPECT_TRUE(env.verify_with_archive().ok());
}

TEST(ArchiveElsewhere, RegistryOfAnotherProcessThatHadNotCaughtUpKeepsWorking) {
  Env env;
  const std::filesystem::path out = env.dir / "child.txt";
  Pipe ready, archived;
  const JournalLocation live = env.live;
  const FakeClock clock = env.clock;
  const int ready_fd = ready.write_end(), archived_fd = archived.read_end();
  GatedChild child([live, clock, out, ready_fd, archived_fd] {
    Registry reg =
        open_registry(live, Options{.clock = clock.fn(), .durability = Durability::Normal});
    if (!reg.get("sess_c", "task_0000")) throw std::runtime_error("task_0000 missing");
    const char one = 1;
    if (!write_all(ready_fd, &one, 1)) throw std::runtime_error("ready");
    char go = 0;
    if (!read_exact(archived_fd, &go, 1)) throw std::runtime_error("archived");
    std::ofstream text(out);
    text << views_of(reg);
    reg.create(input("sess_a", "from_child"));
    text << "seq " << reg.last_seq() << "\n";
    if (!text.flush()) throw std::runtime_error("cannot write " + out.string());
  });
  populate(env, 6);
  child.go();
  char got = 0;
  ASSERT_TRUE(read_exact(ready.read_end(), &got, 1)) << "the child did not open its registry";
  std::uint64_t newest = 0;
  {
    Registry writer = env.open();
    write_tasks(writer, env.clock, "more", 6, 6);
    newest = writer.last_seq();
  }
  const Before before = look(env);
  env.archive_through(newest - 2);
  const char one = 1;
  ASSERT_TRUE(write_all(archived.write_end(), &one, 1));
  ASSERT_TRUE(exited_ok(child.wait())) << "the child's registry failed after the archive";

  std::ifstream in(out);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), before.views + "seq " + std::to_string(newest + 1) + "\n");
  Registry reg = env.open();
  EXPECT_TRUE(reg.get("sess_a", "from_child"));
  EXPECT_TRUE(env.verify_with_archive().ok());
}

TEST(ArchiveElsewhere, WatchingRegistryIsStillNotifiedOfOthersWritesAfterTheArchive) {
  Env env;
  populate(env, 6);
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::string> created;
  Registry watching = env.open(Options{.watch = 20ms});
  const auto sub = watching.on_event([&](const taskjournal::RegistryEvent& e) {
    std::lock_guard lock(mutex);
    if (e.type == "task.created") created.push_back(e.task_id);
    changed.notify_all();
  });
  ASSERT_TRUE(watching.get("sess_c", "task_0000"));
  std::uint64_t newest = 0;
  {
    Registry writer = env.open();
    write_tasks(writer, env.clock, "more", 6, 3);
    newest = writer.last_seq();
  }
  env.archive_through(newest);
  Registry writer = env.open();
  writer.create(input("sess_a", "after_archive"));
  std::unique_lock lock(mutex);
  EXPECT_TRUE(changed.wait_for(lock, kLong, [&] {
    return std::find(created.begin(), created.end(), "after_archive") != created.end();
  })) << "the watching registry was not notified after the archive";
  lock.unlock();
  EXPECT_EQ(views_of(watching), views_of(writer));
}

TEST(ArchiveElsewhere, ReaderOpenedBeforeTheArchiveReadsTheJournalAfterIt) {
  Env env;
  const std::uint64_t newest = populate(env, 10);
  JournalReader reader = env.reader();
  const JournalSnapshot before = reader.replay();
  const std::vector<JournalEvent> events = events_of(reader);

  env.archive_through(newest / 2);

  // "Every call reads the file anew."
  EXPECT_EQ(reader.newest_seq(), newest);
  EXPECT_EQ(by_id(reader.replay().tasks), by_id(before.tasks));
  const VerifyReport report = reader.verify();
  EXPECT_TRUE(report.ok()) << problems(report);
  EXPECT_EQ(report.archived_through, newest / 2);
  const std::vector<JournalEvent> live(events.begin() + static_cast<std::ptrdiff_t>(newest / 2),
                                       events.end());
  EXPECT_EQ(events_of(reader), live);
}

TEST(ArchiveOpen, OpenFromCheckpointFalseStillOpensFromTheAnchor) {
  Env env;
  const std::uint64_t newest = populate(env, 10);
  const Before before = look(env);
  env.archive_through(newest / 2);
  Registry reg = env.open(Options{.open_from_checkpoint = false});
  EXPECT_EQ(views_of(reg), before.views);
  if (test_engine() == TestEngine::Sqlite) {  // a PostgreSQL registry folds nothing at open
    EXPECT_EQ(reg.open_report().checkpoint_seq, newest / 2);
    EXPECT_EQ(reg.open_report().events_folded, newest - newest / 2);
  }
}

TEST(ArchiveOpen, ReadOnlyRegistryOpensAnArchivedJournal) {
  Env env;
  const std::uint64_t newest = populate(env, 10);
  const Before before = look(env);
  env.archive_through(newest / 2);
  Registry reg = env.open(Options{.read_only = true});
  EXPECT_EQ(views_of(reg), before.views);
}

/// Flips a byte of the data of every chunk of the anchor's checkpoint (event `n`), leaving the
/// digest as it was.
void damage_anchor_checkpoint(const JournalLocation& at, std::uint64_t n) {
  const std::string where = " WHERE seq = " + std::to_string(n);
  if (at.engine == TestEngine::Sqlite) {
    RawJournal raw(at.where);
    for (const std::int64_t chunk : raw.ints("SELECT n FROM checkpoint_chunks" + where)) {
      const std::string key = where + " AND n = " + std::to_string(chunk);
      std::string data = raw.blob("SELECT data FROM checkpoint_chunks" + key);
      data[data.size() / 2] ^= 0x20;
      ASSERT_EQ(raw.exec_with_blob("UPDATE checkpoint_chunks SET data = ?1" + key, data), 1);
    }
  } else {
    sql_run(at,
            "UPDATE checkpoint_chunks SET data = set_byte(data, length(data) / 2, "
            "get_byte(data, length(data) / 2) # 32)" +
                where);
  }
  ASSERT_GT(sql_int(at, "SELECT count(*) FROM checkpoint_chunks" + where), 0);
}

TEST(ArchiveOpen, DamagedAnchorCheckpointMakesOpenThrowCorruptNamingTheArchive) {
  Env env;
  const std::uint64_t newest = populate(env, 10);
  const std::uint64_t n = newest / 2;
  const ArchiveResult result = env.archive_through(n);
  damage_anchor_checkpoint(env.live, n);

  ErrorCode code{};
  bool opened = false;
  const std::string what = error_text(
      [&] {
        Registry reg = env.open();
        opened = true;
        // A PostgreSQL registry folds nothing at open: it reads a session's part of the anchor
        // when it loads that session.
        for (const auto& session : kSessions) reg.list(session);
      },
      &code);
  EXPECT_EQ(code, ErrorCode::Corrupt) << what;
  EXPECT_THAT(what, HasSubstr(result.archive));
  if (test_engine() == TestEngine::Sqlite) {
    EXPECT_FALSE(opened) << "the open itself must refuse";
  }
  EXPECT_THROW_CODE(env.open(Options{.open_from_checkpoint = false}).list("sess_a"),
                    ErrorCode::Corrupt);
  const bool verifies = [&] {
    try {
      return env.reader().verify().ok();
    } catch (const Error&) {
      return false;
    }
  }();
  EXPECT_FALSE(verifies);
}

// ---------------------------------------------------------------------------------------------
// Storage: the space back, the rows gone
// ---------------------------------------------------------------------------------------------

TEST(ArchiveStorage, SqliteFileShrinksAfterArchiving) {
  // ctest registers it for Sqlite only (tests/CMakeLists.txt): by hand, the other engine fails.
  ASSERT_EQ(test_engine(), TestEngine::Sqlite) << "VACUUM is SQLite's";
  Env env;
  const std::uint64_t newest = populate(env, 400);
  const auto file_bytes = [&] {
    return std::filesystem::file_size(env.live.where) +
           (std::filesystem::exists(env.live.where + "-wal")
                ? std::filesystem::file_size(env.live.where + "-wal")
                : 0);
  };
  const std::uint64_t on_disk = file_bytes();

  const ArchiveResult result = env.archive_through(newest - 10);

  EXPECT_EQ(result.bytes_before, on_disk);
  EXPECT_LT(result.bytes_after, result.bytes_before);
  EXPECT_EQ(result.bytes_after, file_bytes());
  EXPECT_TRUE(env.verify_with_archive().ok());
}

TEST(ArchiveStorage, SqliteWithoutCompactTheFileNeedNotShrinkButArchivesTheSame) {
  // ctest registers it for Sqlite only (tests/CMakeLists.txt): by hand, the other engine fails.
  ASSERT_EQ(test_engine(), TestEngine::Sqlite) << "VACUUM is SQLite's";
  Env env;
  const std::uint64_t newest = populate(env, 200);
  const Before before = look(env);
  const ArchiveResult result = env.archive_through(newest - 10, /*compact=*/false);
  EXPECT_EQ(result.archived_through, newest - 10);
  EXPECT_GT(result.bytes_after, 0u);
  EXPECT_EQ(look(env).views, before.views);
  EXPECT_TRUE(env.verify_with_archive().ok());
  // A later run with compact gives the space back without archiving anything again.
  const ArchiveResult compacted = env.archive_through(newest - 10);
  EXPECT_EQ(compacted.events_archived, 0u);
  EXPECT_LT(compacted.bytes_after, result.bytes_after);
}

TEST(ArchiveStorage, PostgresqlRowsAreGoneFromTheEventsTableAndOlderCheckpointsToo) {
  // ctest registers it for Postgresql only (tests/CMakeLists.txt): by hand, the other engine fails.
  ASSERT_EQ(test_engine(), TestEngine::Postgresql) << "the PostgreSQL tables";
  Env env;
  const std::uint64_t newest = populate(env, 40);
  const std::uint64_t n = newest - 12;
  env.archive_through(n);
  EXPECT_EQ(sql_int(env.live, "SELECT count(*) FROM events WHERE seq <= " + std::to_string(n)), 0);
  EXPECT_EQ(sql_int(env.live, "SELECT count(*) FROM events"),
            static_cast<std::int64_t>(newest - n));
  EXPECT_EQ(sql_int(env.live, "SELECT seq FROM anchor"), static_cast<std::int64_t>(n));
  EXPECT_EQ(sql_int(env.live, "SELECT count(*) FROM checkpoints WHERE seq <> " + std::to_string(n)),
            0);
  // Every task of the anchor's checkpoint is indexed by its session.
  EXPECT_EQ(sql_int(env.live, "SELECT count(*) FROM anchor_tasks"),
            static_cast<std::int64_t>(open_reader(env.archive).replay().tasks.size()));
  EXPECT_EQ(sql_int(env.live, "SELECT seq FROM journal_head"), static_cast<std::int64_t>(newest));
}

TEST(ArchiveStorage, ArchivedEventsCannotBeAddedBackAndLiveOnesStayImmutable) {
  Env env;
  const std::uint64_t newest = populate(env, 10);
  const std::uint64_t n = newest / 2;
  env.archive_through(n);
  const std::string too_late = "DELETE FROM events WHERE seq = " + std::to_string(n + 1);
  EXPECT_THROW(sql_run(env.live, too_late), std::exception);
  EXPECT_EQ(sql_int(env.live, "SELECT count(*) FROM events"),
            static_cast<std::int64_t>(newest - n));
}

// ---------------------------------------------------------------------------------------------
// Tasks that exist only in the anchor's checkpoint
// ---------------------------------------------------------------------------------------------

TEST(ArchiveAnchorTasks, FreshRegistryLoadingASessionSeesItsArchivedTasks) {
  Env env;
  const std::uint64_t newest = populate(env, 12);
  const Before before = look(env);
  {
    Registry reg = env.open();
    write_tasks(reg, env.clock, "late", 12, 3);  // sess_c, sess_a, sess_b each get a later one
  }
  env.archive_through(newest);
  // One session at a time, in a registry that loads nothing else first.
  for (const auto& session : kSessions) {
    Registry reg = env.open();
    const SessionTask* expected = nullptr;
    for (const auto& t : before.snapshot.tasks) {
      if (t.task.session_id == session) expected = &t.task;
    }
    ASSERT_NE(expected, nullptr);
    EXPECT_EQ(reg.get(session, expected->id), *expected) << session;
    EXPECT_EQ(reg.list(session).size(), 4u + 1u) << session;
  }
  Registry reg = env.open();
  // A task's session is found from the anchor too: another session does not see it.
  EXPECT_FALSE(reg.get("sess_a", "task_0000"));
  EXPECT_THROW_CODE(reg.create(input("sess_a", "task_0000")), ErrorCode::Conflict);
  EXPECT_THROW_CODE(reg.record_message("sess_a", "task_0000", NewTaskMessage::inbound_text("hi")),
                    ErrorCode::NotFound);
  EXPECT_TRUE(reg.update("sess_c", "task_0000", SessionTaskUpdate{.summary = "found"}));
}

TEST(ArchiveAnchorTasks, ListOrphanedSeesRunningTasksThatExistOnlyInTheAnchor) {
  Env env;
  const std::uint64_t newest = populate(env, 12);  // i % 4 == 2: running, with a heartbeat
  std::vector<std::string> expected;
  {
    Registry reg = env.open();
    env.clock.advance(1h);
    expected = ids_of(reg.list_orphaned(30min));
  }
  ASSERT_THAT(expected, ElementsAre("task_0002", "task_0006", "task_0010"));
  env.archive_through(newest);
  Registry reg = env.open();
  EXPECT_EQ(ids_of(reg.list_orphaned(30min)), expected);
  const auto report = reg.reap_orphans({.stale_after = 30min});
  EXPECT_EQ(report.reaped, 3u);
  EXPECT_EQ(reg.get("sess_b", "task_0002")->state, SessionTaskState::Failed);
  EXPECT_THAT(reg.list_orphaned(30min), IsEmpty());
  EXPECT_TRUE(env.verify_with_archive().ok());
}

TEST(ArchiveAnchorTasks, PruneTerminalPrunesFinishedTasksThatExistOnlyInTheAnchor) {
  Env env;
  const std::uint64_t newest = populate(env, 8);  // task_0000, 0001, 0004, 0005: terminal
  env.archive_through(newest);
  env.clock.advance(2h);
  std::vector<std::string> pruned;
  {
    Registry reg = env.open();
    for (const auto& p : reg.prune_terminal(1h)) pruned.push_back(p.task_id);
    EXPECT_FALSE(reg.get("sess_c", "task_0000"));
    EXPECT_TRUE(reg.get("sess_b", "task_0002"));
    EXPECT_THROW_CODE(reg.create(input("sess_c", "task_0000")), ErrorCode::Conflict);
    EXPECT_THAT(types_of(reg.history("sess_c", "task_0000")),
                ElementsAre("archived", "task_pruned"));
  }
  std::sort(pruned.begin(), pruned.end());
  EXPECT_THAT(pruned, ElementsAre("task_0000", "task_0001", "task_0004", "task_0005"));
  Registry reopened = env.open();
  EXPECT_FALSE(reopened.get("sess_c", "task_0000"));
  EXPECT_THAT(ids_of(reopened.list("sess_b")), ElementsAre("task_0002"));
  const VerifyReport report = env.verify_with_archive();
  EXPECT_TRUE(report.ok()) << problems(report);
  // And the pruned tasks' events go with the next archive.
  const ArchiveResult again = env.archive_through(newest + 100);
  EXPECT_EQ(again.events_archived, 4u);
  EXPECT_TRUE(env.verify_with_archive().ok());
  EXPECT_THAT(ids_of(env.open().list("sess_b")), ElementsAre("task_0002"));
}

// ---------------------------------------------------------------------------------------------
// Checkpoints after the anchor (SQLite registries)
// ---------------------------------------------------------------------------------------------

TEST(ArchiveCheckpoints, CheckpointAfterTheAnchorRestoresAndTheAnchorsIsKept) {
  // ctest registers it for Sqlite only (tests/CMakeLists.txt): by hand, the other engine fails.
  ASSERT_EQ(test_engine(), TestEngine::Sqlite)
      << "a PostgreSQL registry has no checkpoints (Registry::checkpoint: Unsupported)";
  Env env;
  const std::uint64_t n = populate(env, 10);
  env.archive_through(n);
  std::uint64_t last_checkpoint = 0;
  {
    Registry reg = env.open();
    // More checkpoints than a registry keeps (two): the anchor's must stay.
    for (int round = 0; round < 4; ++round) {
      write_tasks(reg, env.clock, "more", 10 + round * 3, 3);
      last_checkpoint = reg.checkpoint();
    }
    write_tasks(reg, env.clock, "tail", 30, 2);
  }
  const Before after = look(env);
  EXPECT_EQ(sql_int(env.live, "SELECT count(*) FROM checkpoints WHERE seq = " + std::to_string(n)),
            1);
  Registry restored = env.open();
  EXPECT_EQ(restored.open_report().checkpoint_seq, last_checkpoint);
  EXPECT_THAT(restored.open_report().ignored_checkpoints, IsEmpty());
  EXPECT_EQ(views_of(restored), after.views);
  Registry folded = env.open(Options{.open_from_checkpoint = false});
  EXPECT_EQ(folded.open_report().checkpoint_seq, n);
  EXPECT_EQ(views_of(folded), after.views);
  const VerifyReport report = env.verify_with_archive();
  EXPECT_TRUE(report.ok()) << problems(report);
}

TEST(ArchiveCheckpoints, ArchivingPastCheckpointsOfTheRegistryStillOpens) {
  // ctest registers it for Sqlite only (tests/CMakeLists.txt): by hand, the other engine fails.
  ASSERT_EQ(test_engine(), TestEngine::Sqlite)
      << "a PostgreSQL registry has no checkpoints (Registry::checkpoint: Unsupported)";
  Env env;
  std::uint64_t newest = 0;
  {
    Registry reg = env.open(Options{.checkpoint_every = 40});
    write_tasks(reg, env.clock, "task", 0, 40);  // a checkpoint every 40 events or so
    newest = reg.last_seq();
  }
  ASSERT_GT(sql_int(env.live, "SELECT count(*) FROM checkpoints"), 0);
  const Before before = look(env);
  env.archive_through(newest - 25);
  EXPECT_EQ(sql_int(env.live, "SELECT min(seq) FROM checkpoints"),
            static_cast<std::int64_t>(newest - 25));
  Registry reg = env.open();
  EXPECT_EQ(views_of(reg), before.views);
  EXPECT_GE(reg.open_report().checkpoint_seq, newest - 25);
}

// ---------------------------------------------------------------------------------------------
// verify --archive: a tampered archive, a mismatched pair
// ---------------------------------------------------------------------------------------------

TEST(ArchiveVerify, TamperedArchiveEventIsReportedAsAnArchiveProblem) {
  Env env;
  const std::uint64_t n = populate(env, 10) / 2;
  env.archive_through(n);
  allow_tampering(env.archive);
  sql_run(env.archive, "UPDATE events SET recorded_at = recorded_at + 1 WHERE seq = 3");
  EXPECT_TRUE(env.reader().verify().ok());  // the live journal alone is fine
  const VerifyReport report = env.verify_with_archive();
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.problems.front().what, HasSubstr("archive: "));
  EXPECT_EQ(report.problems.front().seq, 3u);
}

TEST(ArchiveVerify, ArchiveMissingItsNewestEventsIsReported) {
  Env env;
  const std::uint64_t n = populate(env, 10) / 2;
  env.archive_through(n);
  allow_tampering(env.archive);
  sql_run(env.archive, "DELETE FROM events WHERE seq > " + std::to_string(n - 3));
  if (env.archive.engine == TestEngine::Postgresql) {
    sql_run(env.archive,
            "ALTER TABLE journal_head DISABLE TRIGGER USER; UPDATE journal_head SET seq = " +
                std::to_string(n - 3) +
                ", hash = (SELECT hash FROM events WHERE seq = " + std::to_string(n - 3) + ")");
  }
  const VerifyReport report = env.verify_with_archive();
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.problems.front().what, HasSubstr("archive: "));
}

TEST(ArchiveVerify, ArchiveOfAnotherJournalIsAMismatchedPair) {
  Env env;
  const std::uint64_t n = populate(env, 10) / 2;
  env.archive_through(n);
  Env other;
  populate(other, 10, "theirs");
  other.archive_through(n + 3);
  const VerifyReport report = env.reader().verify(VerifyOptions{.archive = other.archive.uri()});
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.problems.front().what, HasSubstr("not one history"));
  // An archive given to a journal that was never archived.
  Env plain;
  populate(plain, 3);
  EXPECT_FALSE(plain.reader().verify(VerifyOptions{.archive = env.archive.uri()}).ok());
}

TEST(ArchiveVerify, LiveJournalGivenAsItsOwnArchiveIsNotItsArchive) {
  Env env;
  const std::uint64_t n = populate(env, 10) / 2;
  env.archive_through(n);
  // The live journal does not hold the events up to n: it cannot be their archive.
  const VerifyReport report = env.reader().verify(VerifyOptions{.archive = env.live.uri()});
  EXPECT_FALSE(report.ok()) << "verify --archive took the live journal for its own archive";
}

/// Replaces, in every chunk of the anchor's checkpoint, "Worker one" by "Worker two" (same
/// length), with digests that match: a forged checkpoint that the live journal cannot tell from
/// a true one.
void forge_anchor_checkpoint(const JournalLocation& at, std::uint64_t n) {
  const std::string where = " WHERE seq = " + std::to_string(n);
  if (at.engine == TestEngine::Sqlite) {
    RawJournal raw(at.where);
    raw.add_sha256_function();
    for (const std::int64_t chunk : raw.ints("SELECT n FROM checkpoint_chunks" + where)) {
      const std::string key = where + " AND n = " + std::to_string(chunk);
      std::string data = raw.blob("SELECT data FROM checkpoint_chunks" + key);
      const auto at_name = data.find("Worker one");
      ASSERT_NE(at_name, std::string::npos);
      data.replace(at_name, 10, "Worker two");
      ASSERT_EQ(raw.exec_with_blob(
                    "UPDATE checkpoint_chunks SET data = ?1, digest = sha256(?1)" + key, data),
                1);
    }
  } else {
    sql_run(at,
            "UPDATE checkpoint_chunks SET data = overlay(data PLACING 'Worker two'::bytea FROM "
            "position('Worker one'::bytea IN data) FOR 10)" +
                where + "; UPDATE checkpoint_chunks SET digest = sha256(data)" + where);
  }
}

TEST(ArchiveVerify, AnchorCheckpointThatDiffersFromTheArchivesFoldIsReported) {
  Env env;
  const std::uint64_t n = populate(env, 6);
  env.archive_through(n);
  forge_anchor_checkpoint(env.live, n);
  Registry reg = env.open();
  int forged = 0;
  for (const auto& session : kSessions) {
    for (const auto& t : reg.list(session)) forged += t.display_name == "Worker two" ? 1 : 0;
  }
  ASSERT_EQ(forged, 1) << "the forged checkpoint was not used";
  const VerifyReport report = env.verify_with_archive();
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.problems.front().what, HasSubstr("differs from the anchor's checkpoint"));
}

// ---------------------------------------------------------------------------------------------
// taskjournal-replay archive and verify --archive
// ---------------------------------------------------------------------------------------------

// Without the tools (TASKJOURNAL_BUILD_TOOLS=OFF) this test does not exist.
#ifdef TASKJOURNAL_REPLAY
TEST(ArchiveTool, ArchiveThenVerifyWithTheArchive) {
  Env env;
  const std::uint64_t newest = populate(env, 10);
  const Before before = look(env);
  const std::string n = std::to_string(newest / 2);

  const ProgramRun archived = run_replay_tool(
      env.dir, {"archive", env.live.uri(), "--before-seq", n, "--to", env.archive.uri(), "--json"});
  EXPECT_EQ(archived.status, 0) << archived.out << archived.err;
  EXPECT_THAT(archived.out, HasSubstr("{\"ok\":true,"));
  EXPECT_THAT(archived.out, HasSubstr("\"archived_through\":" + n + ","));
  EXPECT_THAT(archived.out, HasSubstr("\"events_archived\":" + n + ","));

  const ProgramRun verified =
      run_replay_tool(env.dir, {"verify", env.live.uri(), "--archive", env.archive.uri()});
  EXPECT_EQ(verified.status, 0) << verified.out << verified.err;
  EXPECT_THAT(verified.out, HasSubstr("anchor: the events up to " + n + " are archived"));
  EXPECT_EQ(look(env).views, before.views);

  // The archive verifies on its own, as any journal.
  const ProgramRun own = run_replay_tool(env.dir, {"verify", env.archive.uri()});
  EXPECT_EQ(own.status, 0) << own.out << own.err;

  // A later archive of everything, without compacting, into the same archive.
  const ProgramRun all =
      run_replay_tool(env.dir, {"archive", env.live.uri(), "--before-seq", std::to_string(newest),
                                "--to", env.archive.uri(), "--no-compact"});
  EXPECT_EQ(all.status, 0) << all.out << all.err;
  EXPECT_THAT(all.out, HasSubstr("archived " + std::to_string(newest - newest / 2) + " events"));
  EXPECT_EQ(open_reader(env.archive).newest_seq(), newest);
}
#endif

// Without the tools (TASKJOURNAL_BUILD_TOOLS=OFF) this test does not exist.
#ifdef TASKJOURNAL_REPLAY
TEST(ArchiveTool, VerifyWithATamperedArchiveFailsAndUsageErrorsExitTwo) {
  Env env;
  const std::uint64_t n = populate(env, 10) / 2;
  env.archive_through(n);
  allow_tampering(env.archive);
  sql_run(env.archive, "UPDATE events SET recorded_at = recorded_at + 1 WHERE seq = 2");
  const ProgramRun verified =
      run_replay_tool(env.dir, {"verify", env.live.uri(), "--archive", env.archive.uri()});
  EXPECT_EQ(verified.status, 1) << verified.out << verified.err;
  EXPECT_THAT(verified.out, HasSubstr("archive: "));

  const ProgramRun no_to =
      run_replay_tool(env.dir, {"archive", env.live.uri(), "--before-seq", "3"});
  EXPECT_EQ(no_to.status, 2) << no_to.out << no_to.err;
  const ProgramRun zero = run_replay_tool(
      env.dir, {"archive", env.live.uri(), "--before-seq", "0", "--to", env.archive.uri()});
  EXPECT_EQ(zero.status, 2) << zero.out << zero.err;
  const ProgramRun foreign =
      run_replay_tool(env.dir, {"archive", env.live.uri(), "--before-seq", std::to_string(n + 5),
                                "--to", journal_at(env.dir, "new-archive.db").uri()});
  EXPECT_EQ(foreign.status, 1) << foreign.out << foreign.err;
}
#endif

// ---------------------------------------------------------------------------------------------
// Crashes and writers during the archive
// ---------------------------------------------------------------------------------------------

/// The live journal opens, verifies, and shows `views`; `context` names the moment.
void expect_intact(const Env& env, const std::string& views, std::uint64_t newest,
                   const std::string& context) {
  try {
    Registry reg = env.open(Options{.busy_timeout = 30s});
    EXPECT_EQ(reg.last_seq(), newest) << context;
    EXPECT_EQ(views_of(reg), views) << context;
  } catch (const Error& e) {
    ADD_FAILURE() << context << ": the live journal does not open: " << e.what();
  }
  try {
    const VerifyReport report = env.reader().verify();
    EXPECT_TRUE(report.ok()) << context << ": " << problems(report);
  } catch (const Error& e) {
    ADD_FAILURE() << context << ": verify threw: " << e.what();
  }
}

/// Forks a child that archives `live` through `before_seq` into `archive` in small batches (many
/// commits to die between) and SIGKILLs it at a random moment. Even rounds count the delay from
/// the fork (spread evenly on a log scale, 0.1 ms to 200 ms: the start and the copy); odd rounds
/// from the end of the copy, which the child signals from its progress callback (0.05 ms to
/// 50 ms: the anchor's transaction, the VACUUM, the exit). True if the child had finished.
bool kill_archiving_child(const JournalLocation& live, const JournalLocation& archive,
                          std::uint64_t before_seq, int round, std::mt19937& random) {
  const auto log_uniform_us = [&](double from, double to) {
    std::uniform_real_distribution<double> log_delay(std::log(from), std::log(to));
    return std::chrono::microseconds(std::llround(std::exp(log_delay(random))));
  };
  Pipe copied;
  const int copied_fd = copied.write_end();
  const pid_t pid = fork_child([live, archive, before_seq, copied_fd] {
    archive_journal(live.uri(), archive.uri(),
                    ArchiveOptions{.before_seq = before_seq,
                                   .batch_events = 97,
                                   .progress = [&](std::uint64_t done, std::uint64_t all) {
                                     const char one = 1;
                                     if (done == all) write_all(copied_fd, &one, 1);
                                   }});
  });
  if (pid <= 0) return false;
  copied.close_write();
  if (round % 2 == 0) {
    std::this_thread::sleep_for(log_uniform_us(100, 200'000));
  } else {
    char got = 0;
    within_seconds(120, "the archiving child's copy", [&] {
      static_cast<void>(read_exact(copied.read_end(), &got, 1));  // EOF if it died before
    });
    std::this_thread::sleep_for(log_uniform_us(50, 50'000));
  }
  ::kill(pid, SIGKILL);
  return exited_ok(wait_child(pid));
}

/// The anchor the live journal holds (0: none), and the newest event of its archive (0: none yet).
std::pair<std::uint64_t, std::uint64_t> anchor_and_archive(const Env& env) {
  const std::uint64_t anchor = env.reader().verify().archived_through;
  std::uint64_t in_archive = 0;
  try {
    in_archive = open_reader(env.archive).newest_seq();
  } catch (const Error&) {  // not created yet
  }
  return {anchor, in_archive};
}

TEST(ArchiveCrash, SigkillAtAnyMomentLeavesTheJournalOpenableAndARerunFinishes) {
  Env env;
  std::uint64_t newest = 0;
  {
    Registry reg = env.open();
    write_tasks_batched(reg, env.clock, "task", 0, 800, 100);  // 3,200 events
    newest = reg.last_seq();
  }
  const std::string views = look(env).views;
  // Each child archives a longer prefix than the one before (after the first archive, every
  // child appends to it).
  std::mt19937 random(20261202);
  constexpr int kKills = 20;
  int finished = 0, mid_copy = 0, archived = 0;
  std::uint64_t anchor = 0;
  for (int i = 0; i < kKills; ++i) {
    const std::uint64_t before_seq = newest * static_cast<std::uint64_t>(i + 1) / (kKills + 1);
    if (kill_archiving_child(env.live, env.archive, before_seq, i, random)) ++finished;
    const std::string context = "after kill " + std::to_string(i) + " (archiving through " +
                                std::to_string(before_seq) + ")";
    expect_intact(env, views, newest, context);
    if (HasFailure()) return;
    // As it was, or archived: nothing in between.
    const auto [now, in_archive] = anchor_and_archive(env);
    EXPECT_TRUE(now == anchor || now == before_seq) << context << ": anchor " << now;
    if (now == before_seq && now != anchor) ++archived;
    if (now == anchor && in_archive > anchor && in_archive < before_seq) ++mid_copy;
    anchor = now;
  }
  // Where the kills fell (random: reported, not asserted).
  std::printf(
      "of %d kills: %d after the child finished, %d left the journal archived, %d fell "
      "while the archive was copied\n",
      kKills, finished, archived, mid_copy);

  const ArchiveResult result = env.archive_through(newest - 100);
  EXPECT_EQ(result.archived_through, newest - 100);
  expect_intact(env, views, newest, "after the rerun");
  const VerifyReport report = env.verify_with_archive();
  EXPECT_TRUE(report.ok()) << problems(report);
  EXPECT_EQ(open_reader(env.archive).newest_seq(), newest - 100);
}

TEST(ArchiveCrash, SigkillDuringAFirstArchiveLeavesTheJournalAsItWasOrArchivedAndARerunFinishes) {
  // Every round on a fresh copy of one journal, never archived before: the first archive alone.
  Env original;
  std::uint64_t newest = 0;
  {
    Registry reg = original.open();
    write_tasks_batched(reg, original.clock, "task", 0, 400, 100);  // 1,600 events
    newest = reg.last_seq();
  }
  const std::string views = look(original).views;
  std::mt19937 random(20261203);
  constexpr int kKills = 10;
  for (int i = 0; i < kKills; ++i) {
    Env env;
    copy_journal(original.live.uri(), env.live.uri());
    const std::uint64_t before_seq = newest - 50;
    kill_archiving_child(env.live, env.archive, before_seq, i, random);
    const std::string context = "after kill " + std::to_string(i);
    expect_intact(env, views, newest, context);
    const auto [anchor, in_archive] = anchor_and_archive(env);
    EXPECT_TRUE(anchor == 0 || anchor == before_seq) << context << ": anchor " << anchor;
    EXPECT_LE(in_archive, before_seq) << context;

    const ArchiveResult rerun = env.archive_through(before_seq);
    EXPECT_EQ(rerun.archived_through, before_seq) << context;
    EXPECT_EQ(rerun.events_archived, before_seq - in_archive) << context;
    expect_intact(env, views, newest, context + ", then the rerun");
    const VerifyReport report = env.verify_with_archive();
    EXPECT_TRUE(report.ok()) << context << ": " << problems(report);
    if (HasFailure()) return;
  }
}

TEST(ArchiveCrash, RerunAfterAnArchiveStoppedBetweenTheCopyAndTheAnchorFinishesTheWork) {
  Env env;
  const std::uint64_t newest = populate(env, 40);
  const std::uint64_t n = newest - 20;
  const Before before = look(env);
  std::vector<std::string> per_session;
  {
    Registry reg = env.open();
    for (const auto& session : kSessions) per_session.push_back(views_of(reg, {session}));
  }
  // The progress callback throws when the copy is complete: the anchor's checkpoint is stored
  // and the archive holds the events, but the anchor was not recorded (as if killed there).
  EXPECT_THROW(archive_journal(env.live.uri(), env.archive.uri(),
                               ArchiveOptions{.before_seq = n,
                                              .batch_events = 1,  // all committed at the end
                                              .progress =
                                                  [](std::uint64_t done, std::uint64_t all) {
                                                    if (done == all) {
                                                      throw std::runtime_error("stop here");
                                                    }
                                                  }}),
               std::runtime_error);
  EXPECT_EQ(events_of(env.live), before.events);
  EXPECT_EQ(open_reader(env.archive).newest_seq(), n);

  const ArchiveResult rerun = env.archive_through(n);
  EXPECT_EQ(rerun.archived_through, n);
  EXPECT_EQ(rerun.events_archived, 0u);
  if (test_engine() == TestEngine::Postgresql) {  // the anchor's tasks, indexed by session
    EXPECT_EQ(sql_int(env.live, "SELECT count(*) FROM anchor_tasks"),
              static_cast<std::int64_t>(open_reader(env.archive).replay().tasks.size()));
  }
  // A fresh registry loads each session from the anchor.
  for (std::size_t i = 0; i < kSessions.size(); ++i) {
    try {
      Registry reg = env.open();
      EXPECT_EQ(views_of(reg, {kSessions[i]}), per_session[i]) << kSessions[i];
    } catch (const Error& e) {
      ADD_FAILURE() << kSessions[i] << ": " << e.what();
    }
  }
  try {
    Registry reg = env.open();
    EXPECT_EQ(views_of(reg), before.views);
  } catch (const Error& e) {
    ADD_FAILURE() << "the live journal does not open after the rerun: " << e.what();
  }
  const VerifyReport report = env.verify_with_archive();
  EXPECT_TRUE(report.ok()) << problems(report);
}

TEST(ArchiveWriters, WritesDuringTheArchiveAreAllKeptAndTheJournalVerifies) {
  Env env;
  std::uint64_t newest = 0;
  {
    Registry reg = env.open();
    // 4,400 events: the copy reports progress at event 4096 and at its end.
    write_tasks_batched(reg, env.clock, "task", 0, 1100, 100);
    newest = reg.last_seq();
  }
  // The writer: a registry of its own that creates tasks and posts messages until told to stop;
  // Busy (the VACUUM, the deletion) is retried and counted.
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::string> acknowledged;
  std::atomic<bool> stop{false};
  int busy = 0;
  int busy_but_stored = 0;
  std::string writer_failure;
  Registry writer = env.open(Options{.busy_timeout = 200ms});
  std::thread thread([&] {
    try {
      for (int i = 0; !stop.load(); ++i) {
        const std::string id = numbered("written", i);
        for (bool retried = false;; retried = true) {
          try {
            writer.create(input("sess_w", id, SessionTaskState::Running));
            break;
          } catch (const Error& e) {
            if (e.code() == ErrorCode::Conflict && retried) {
              ++busy_but_stored;  // a create that threw Busy and was stored all the same
              break;
            }
            if (e.code() != ErrorCode::Busy) throw;
            std::lock_guard lock(mutex);
            ++busy;
          }
        }
        for (;;) {
          try {
            writer.record_message("sess_w", id, NewTaskMessage::outbound_text("hello " + id));
            break;
          } catch (const Error& e) {
            if (e.code() != ErrorCode::Busy) throw;
            std::lock_guard lock(mutex);
            ++busy;
          }
        }
        std::lock_guard lock(mutex);
        acknowledged.push_back(id);
        changed.notify_all();
      }
    } catch (const std::exception& e) {
      std::lock_guard lock(mutex);
      writer_failure = e.what();
      changed.notify_all();
    }
  });
  // Waits for `more` acknowledged writes (bounded).
  const auto writes_go_on = [&](std::size_t more) {
    std::unique_lock lock(mutex);
    const std::size_t from = acknowledged.size();
    return changed.wait_for(
        lock, kLong, [&] { return !writer_failure.empty() || acknowledged.size() >= from + more; });
  };
  EXPECT_TRUE(writes_go_on(3));
  int progress_calls = 0;
  bool writes_during_copy = true;
  ArchiveResult result;
  within_seconds(120, "archive_journal with a writer", [&] {
    result = archive_journal(env.live.uri(), env.archive.uri(),
                             ArchiveOptions{.before_seq = newest,
                                            .batch_events = 500,
                                            .busy_timeout = 30s,
                                            .progress = [&](std::uint64_t, std::uint64_t) {
                                              ++progress_calls;
                                              writes_during_copy &= writes_go_on(2);
                                            }});
  });
  EXPECT_TRUE(writes_go_on(3)) << "the writer stopped after the archive";
  stop.store(true);
  thread.join();
  ASSERT_EQ(writer_failure, "") << "the writer failed";
  EXPECT_GE(progress_calls, 2);
  EXPECT_TRUE(writes_during_copy) << "the writer was held up while the archive copied";
  EXPECT_EQ(busy_but_stored, 0);
  std::printf("%zu writes acknowledged, %d retried after Busy\n", acknowledged.size(), busy);
  EXPECT_EQ(result.archived_through, newest);

  Registry fresh = env.open();
  std::set<std::string> seen;
  for (const auto& t : fresh.list("sess_w")) {
    seen.insert(t.id);
    EXPECT_EQ(fresh.list_messages("sess_w", t.id).size(), 1u) << t.id;
  }
  for (const auto& id : acknowledged) EXPECT_TRUE(seen.count(id)) << id << " was acknowledged";
  EXPECT_EQ(seen.size(), acknowledged.size());
  EXPECT_EQ(views_of(fresh, {"sess_w", "sess_a"}), views_of(writer, {"sess_w", "sess_a"}));
  EXPECT_EQ(fresh.last_seq(), newest + 2 * acknowledged.size());
  const VerifyReport report = env.verify_with_archive();
  EXPECT_TRUE(report.ok()) << problems(report);
}

}  // namespace
