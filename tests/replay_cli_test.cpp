// taskjournal-replay, run as a program against journals the tests write: the exact output of
// every subcommand, --as-of-seq/--as-of, --json, bad arguments, a missing file; verify catching
// rows altered, deleted or forged by another tool; export matching CONTRACT §6 field by field;
// follow printing what another writer appends; every subcommand on a postgresql:// URI, `copy`
// between files and PostgreSQL (same hashes, same views, resume, refusals), and no password from
// a URI ever printed.
//
// Journals come from support/replay_sample.hpp (FakeClock, supplied task ids); message ids are
// random, so outputs that show them go through normalise().
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "events/event.hpp"
#include "support/fake_clock.hpp"
#include "support/journals.hpp"
#include "support/raw_journal.hpp"
#include "support/replay_sample.hpp"
#include "support/temp_dir.hpp"
#include "taskjournal/taskjournal.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using namespace taskjournal;
using taskjournal::testing::FakeClock;
using taskjournal::testing::journal_at;
using taskjournal::testing::JournalLocation;
using taskjournal::testing::RawJournal;
using taskjournal::testing::TestEngine;
using taskjournal::testing::write_sample_journal;

struct Result {
  int status = -1;
  std::string out;
  std::string err;
};

// A child process running taskjournal-replay in `dir`, its stdout and stderr on pipes.
class Child {
 public:
  // With `stderr_tty`, stderr is a pseudo-terminal instead (its output is read as err()).
  Child(const fs::path& dir, const std::vector<std::string>& args, bool stderr_tty = false) {
    int out[2], err[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe");
    if (stderr_tty) {
      err[0] = posix_openpt(O_RDWR | O_NOCTTY);
      if (err[0] < 0 || grantpt(err[0]) != 0 || unlockpt(err[0]) != 0) {
        throw std::runtime_error("posix_openpt");
      }
      err[1] = open(ptsname(err[0]), O_RDWR | O_NOCTTY);
      if (err[1] < 0) throw std::runtime_error("open pty");
    } else if (pipe(err) != 0) {
      throw std::runtime_error("pipe");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addchdir_np(&actions, dir.c_str());
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    posix_spawn_file_actions_addclose(&actions, err[0]);
    std::vector<std::string> argv_s{TASKJOURNAL_REPLAY};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, TASKJOURNAL_REPLAY, &actions, nullptr, argv.data(), environ) != 0) {
      throw std::runtime_error("posix_spawn");
    }
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    close(err[1]);
    fds_[0] = out[0];
    fds_[1] = err[0];
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      wait();
    }
    for (int fd : fds_) {
      if (fd >= 0) close(fd);
    }
  }

  // Reads what is available within `timeout`; false once both pipes are closed.
  bool pump(std::chrono::milliseconds timeout) {
    pollfd p[2];
    int n = 0;
    for (int i = 0; i < 2; ++i) {
      if (fds_[i] >= 0) p[n++] = pollfd{fds_[i], POLLIN, 0};
    }
    if (n == 0) return false;
    if (poll(p, static_cast<nfds_t>(n), static_cast<int>(timeout.count())) <= 0) return true;
    for (int i = 0; i < n; ++i) {
      if (!(p[i].revents & (POLLIN | POLLHUP))) continue;
      char buf[65536];
      const ssize_t got = read(p[i].fd, buf, sizeof buf);
      const int which = p[i].fd == fds_[0] ? 0 : 1;
      if (got <= 0) {
        close(fds_[which]);
        fds_[which] = -1;
      } else {
        (which == 0 ? result_.out : result_.err).append(buf, static_cast<std::size_t>(got));
      }
    }
    return true;
  }

  const std::string& out() const { return result_.out; }
  void signal(int sig) { kill(pid_, sig); }

  Result finish() {
    while (pump(std::chrono::milliseconds(10000))) {
    }
    wait();
    return result_;
  }

 private:
  void wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    result_.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    pid_ = -1;
  }
  pid_t pid_ = -1;
  int fds_[2] = {-1, -1};
  Result result_;
};

Result run_in(const fs::path& dir, const std::vector<std::string>& args) {
  return Child(dir, args).finish();
}

// Parses one JSON document strictly (UTF-8 validated); fails the test when it is not JSON.
::testing::AssertionResult is_json(const std::string& text, rapidjson::Document& doc) {
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(text.c_str(), text.size());
  if (doc.HasParseError()) return ::testing::AssertionFailure() << "not JSON: " << text;
  return ::testing::AssertionSuccess();
}

// Random message ids → a fixed placeholder of the same width.
std::string normalise(const std::string& text) {
  static const std::regex id("tmsg_[0-9a-f]{32}");
  return std::regex_replace(text, id, "tmsg_<random id 32 hex digits>");
}

std::string file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class ReplayCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    temp_.emplace("replay_cli_test");
    dir_ = temp_->path();
    write_sample_journal((dir_ / "s.db").string());
  }
  static void TearDownTestSuite() { temp_.reset(); }

  static Result run(const std::vector<std::string>& args) { return run_in(dir_, args); }
  static std::string path(const std::string& name) { return (dir_ / name).string(); }

  // A fresh copy of the sample journal, for tests that damage it.
  static std::string fresh_sample(const std::string& name) {
    fs::remove(dir_ / name);
    write_sample_journal(path(name));
    return name;
  }

  static void expect_ok(const Result& r, const std::string& out) {
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(normalise(r.out), out);
    EXPECT_EQ(r.status, 0);
  }
  static void expect_usage(const std::vector<std::string>& args, const std::string& first_line) {
    const Result r = run(args);
    EXPECT_EQ(r.status, 2) << first_line;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err.substr(0, r.err.find('\n') + 1), first_line);
    EXPECT_NE(r.err.find("\nusage: taskjournal-replay "), std::string::npos) << r.err;
  }

  static std::optional<taskjournal::testing::TempDir> temp_;
  static fs::path dir_;
};

std::optional<taskjournal::testing::TempDir> ReplayCli::temp_;
fs::path ReplayCli::dir_;

// --- summary ---------------------------------------------------------------------------------

TEST_F(ReplayCli, SummaryCountsEventsSessionsStatesKindsAndMessages) {
  expect_ok(run({"summary", "s.db"}), R"(file              s.db
schema version    1
payload versions  1
events            15
first event       2026-01-02T03:04:06.000006Z
last event        2026-01-02T03:04:20.000006Z
sessions          2
tasks             3
  queued          0
  running         1
  awaiting_input  0
  succeeded       1
  failed          1
  canceled        0
tasks by kind     2 kinds
  build           2
  review          1
messages          2
)");
}

TEST_F(ReplayCli, SummaryAsOfSeqShowsTheViewsAfterThatEvent) {
  expect_ok(run({"summary", "s.db", "--as-of-seq", "5"}), R"(file              s.db
as of             event 5
schema version    1
payload versions  1
events            5
first event       2026-01-02T03:04:06.000006Z
last event        2026-01-02T03:04:10.000006Z
sessions          1
tasks             2
  queued          1
  running         0
  awaiting_input  1
  succeeded       0
  failed          0
  canceled        0
tasks by kind     2 kinds
  build           1
  review          1
messages          1
)");
}

TEST_F(ReplayCli, SummaryAsOfTimeStopsBeforeTheFirstLaterEvent) {
  // 03:04:10.5Z falls between event 5 (03:04:10.000006Z) and event 6 (03:04:11.000006Z).
  expect_ok(run({"summary", "s.db", "--as-of=2026-01-02T04:04:10.5+01:00"}),
            R"(file              s.db
as of             2026-01-02T03:04:10.500000Z, event 5
schema version    1
payload versions  1
events            5
first event       2026-01-02T03:04:06.000006Z
last event        2026-01-02T03:04:10.000006Z
sessions          1
tasks             2
  queued          1
  running         0
  awaiting_input  1
  succeeded       0
  failed          0
  canceled        0
tasks by kind     2 kinds
  build           1
  review          1
messages          1
)");
  // Before the first event: empty views.
  expect_ok(run({"summary", "s.db", "--as-of-seq", "0", "--json"}),
            R"({"file":"s.db","as_of_seq":0,"schema_version":1,"payload_versions":[],"events":0,)"
            R"("sessions":0,"tasks":0,"tasks_by_state":{"queued":0,"running":0,)"
            R"("awaiting_input":0,"succeeded":0,"failed":0,"canceled":0},"tasks_by_kind":{},)"
            R"("messages":0})"
            "\n");
}

TEST_F(ReplayCli, SummaryJson) {
  expect_ok(run({"summary", "--json", "s.db"}),
            R"({"file":"s.db","schema_version":1,"payload_versions":[1],"events":15,)"
            R"("first_event_at":"2026-01-02T03:04:06.000006Z",)"
            R"("last_event_at":"2026-01-02T03:04:20.000006Z","sessions":2,"tasks":3,)"
            R"("tasks_by_state":{"queued":0,"running":1,"awaiting_input":0,"succeeded":1,)"
            R"("failed":1,"canceled":0},"tasks_by_kind":{"build":2,"review":1},"messages":2})"
            "\n");
}

// --- tasks -----------------------------------------------------------------------------------

TEST_F(ReplayCli, TasksListsEveryTaskInCreationOrder) {
  expect_ok(
      run({"tasks", "s.db"}),
      R"(ID           SESSION  KIND    STATE      ATTEMPT  UPDATED_AT                   DISPLAY_NAME
task_build   sess_a   build   succeeded        1  2026-01-02T03:04:14.000006Z  Build the app
task_review  sess_a   review  failed           2  2026-01-02T03:04:17.000006Z  Review the change
task_lint    sess_b   build   running          1  2026-01-02T03:04:19.000006Z  Lint
)");
}

TEST_F(ReplayCli, TasksFilterBySessionStateAndKind) {
  expect_ok(
      run({"tasks", "s.db", "--session", "sess_a", "--kind", "build"}),
      R"(ID          SESSION  KIND   STATE      ATTEMPT  UPDATED_AT                   DISPLAY_NAME
task_build  sess_a   build  succeeded        1  2026-01-02T03:04:14.000006Z  Build the app
)");
  expect_ok(
      run({"tasks", "s.db", "--state", "running"}),
      R"(ID         SESSION  KIND   STATE    ATTEMPT  UPDATED_AT                   DISPLAY_NAME
task_lint  sess_b   build  running        1  2026-01-02T03:04:19.000006Z  Lint
)");
  expect_ok(run({"tasks", "s.db", "--state", "canceled"}),
            "ID  SESSION  KIND  STATE  ATTEMPT  UPDATED_AT  DISPLAY_NAME\n");
}

TEST_F(ReplayCli, TasksAsOfSeq) {
  expect_ok(
      run({"tasks", "s.db", "--as-of-seq", "7"}),
      R"(ID           SESSION  KIND    STATE    ATTEMPT  UPDATED_AT                   DISPLAY_NAME
task_build   sess_a   build   running        1  2026-01-02T03:04:11.000006Z  Build the app
task_review  sess_a   review  running        2  2026-01-02T03:04:12.000006Z  Review the change
)");
}

TEST_F(ReplayCli, TasksJsonIsAnArrayOfPublicTaskJson) {
  expect_ok(run({"tasks", "s.db", "--json", "--session", "sess_b"}),
            R"([
 {"id":"task_lint","session_id":"sess_b","kind":"build","display_name":"Lint","spec":{},"state":"running","cancel_requested_at":"2026-01-02T03:04:19.000006Z","attempt":1,"wake_policy":"silent","created_at":"2026-01-02T03:04:18.000006Z","started_at":"2026-01-02T03:04:18.000006Z","updated_at":"2026-01-02T03:04:19.000006Z"}
]
)");
  expect_ok(run({"tasks", "s.db", "--json", "--kind", "nothing"}), "[]\n");
}

// --- show ------------------------------------------------------------------------------------

TEST_F(ReplayCli, ShowPrintsTheSnapshotWithSecretsRedactedAndTheMessages) {
  expect_ok(run({"show", "s.db", "task_build"}),
            R"(id            task_build
session_id    sess_a
kind          build
display_name  Build the app
spec          {"target":"app","push_configs":[{"url":"https://hooks.example/1","has_secret":true}]}
state         succeeded
progress      {"current":1,"total":3,"unit":"steps"}
summary       built
result_path   out/app
attempt       1
worker_id     w-1
wake_policy   on_terminal
created_at    2026-01-02T03:04:06.000006Z
started_at    2026-01-02T03:04:07.000006Z
finished_at   2026-01-02T03:04:14.000006Z
updated_at    2026-01-02T03:04:14.000006Z

messages: 2, oldest first
CREATED_AT                   DIRECTION  ID                                     IN_REPLY_TO  CONTENT
2026-01-02T03:04:08.000006Z  outbound   tmsg_<random id 32 hex digits>  -            compiling
2026-01-02T03:04:11.000006Z  inbound    tmsg_<random id 32 hex digits>  q1           main
)");
}

TEST_F(ReplayCli, ShowAsOfSeq) {
  expect_ok(run({"show", "s.db", "task_build", "--as-of-seq", "5"}), R"(id             task_build
session_id     sess_a
kind           build
display_name   Build the app
spec           {"target":"app","push_configs":[{"url":"https://hooks.example/1","has_secret":true}]}
state          awaiting_input
progress       {"current":1,"total":3,"unit":"steps"}
input_request  {"id":"q1","prompt":"Which branch?"}
attempt        1
worker_id      w-1
wake_policy    on_terminal
created_at     2026-01-02T03:04:06.000006Z
started_at     2026-01-02T03:04:07.000006Z
updated_at     2026-01-02T03:04:10.000006Z

messages: 1, oldest first
CREATED_AT                   DIRECTION  ID                                     IN_REPLY_TO  CONTENT
2026-01-02T03:04:08.000006Z  outbound   tmsg_<random id 32 hex digits>  -            compiling
)");
}

TEST_F(ReplayCli, ShowJson) {
  expect_ok(
      run({"show", "s.db", "task_review", "--json"}),
      R"({"task":{"id":"task_review","session_id":"sess_a","kind":"review","display_name":"Review the change","spec":{},"state":"failed","cancel_requested_at":"2026-01-02T03:04:16.000006Z","error":{"kind":"timeout","message":"no answer"},"attempt":2,"wake_policy":"silent","created_at":"2026-01-02T03:04:09.000006Z","started_at":"2026-01-02T03:04:12.000006Z","finished_at":"2026-01-02T03:04:17.000006Z","updated_at":"2026-01-02T03:04:17.000006Z"},"messages":[]}
)");
}

TEST_F(ReplayCli, ShowUnknownTaskFails) {
  Result r = run({"show", "s.db", "task_nope"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "taskjournal-replay: no task task_nope in s.db\n");
  r = run({"show", "s.db", "task_lint", "--as-of-seq", "12"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "taskjournal-replay: no task task_lint in s.db as of event 12\n");
  r = run({"history", "s.db", "task_nope"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "taskjournal-replay: no task task_nope in s.db\n");
}

// --- history ---------------------------------------------------------------------------------

TEST_F(ReplayCli, HistoryShowsWhatEachEventChangedAndMarksDroppedUpdates) {
  expect_ok(run({"history", "s.db", "task_build"}),
            R"(SEQ  TIME                         EVENT             CHANGES
  1  2026-01-02T03:04:06.000006Z  task_created      created: kind build, state queued
  2  2026-01-02T03:04:07.000006Z  task_updated      state queued → running, progress (none) → {"current":1,"total":3,"unit":"steps"}, worker_id (none) → w-1, started_at (none) → 2026-01-02T03:04:07.000006Z
  3  2026-01-02T03:04:08.000006Z  message_recorded  message outbound tmsg_<random id 32 hex digits>: compiling
  5  2026-01-02T03:04:10.000006Z  task_updated      state running → awaiting_input, input_request (none) → {"id":"q1","prompt":"Which branch?"}
  6  2026-01-02T03:04:11.000006Z  message_recorded  message inbound tmsg_<random id 32 hex digits>: main, state awaiting_input → running, input_request {"id":"q1","prompt":"Which branch?"} → (none)
  9  2026-01-02T03:04:14.000006Z  task_updated      state running → succeeded, summary (none) → built, result_path (none) → out/app, finished_at (none) → 2026-01-02T03:04:14.000006Z
 10  2026-01-02T03:04:15.000006Z  task_updated      DROPPED terminal (asked running, task is succeeded)
)");
  expect_ok(run({"history", "s.db", "task_review"}),
            R"(SEQ  TIME                         EVENT             CHANGES
  4  2026-01-02T03:04:09.000006Z  task_created      created: kind review, state queued
  7  2026-01-02T03:04:12.000006Z  task_updated      state queued → running, attempt 1 → 2, started_at (none) → 2026-01-02T03:04:12.000006Z
  8  2026-01-02T03:04:13.000006Z  task_updated      DROPPED fenced (expected_attempt 1, task at attempt 2)
 11  2026-01-02T03:04:16.000006Z  cancel_requested  cancel_requested_at (none) → 2026-01-02T03:04:16.000006Z
 12  2026-01-02T03:04:17.000006Z  task_updated      state running → failed, error (none) → {"kind":"timeout","message":"no answer"}, finished_at (none) → 2026-01-02T03:04:17.000006Z
)");
  expect_ok(run({"history", "s.db", "task_lint"}),
            R"(SEQ  TIME                         EVENT             CHANGES
 13  2026-01-02T03:04:18.000006Z  task_created      created: kind build, state running
 14  2026-01-02T03:04:19.000006Z  cancel_requested  cancel_requested_at (none) → 2026-01-02T03:04:19.000006Z
 15  2026-01-02T03:04:20.000006Z  cancel_requested  (no change)
)");
}

TEST_F(ReplayCli, HistoryAsOfSeqAndAsOfTime) {
  // Fixed column widths (history prints each line as it comes): EVENT is 16 wide here too.
  const std::string expected = R"(SEQ  TIME                         EVENT             CHANGES
  4  2026-01-02T03:04:09.000006Z  task_created      created: kind review, state queued
  7  2026-01-02T03:04:12.000006Z  task_updated      state queued → running, attempt 1 → 2, started_at (none) → 2026-01-02T03:04:12.000006Z
  8  2026-01-02T03:04:13.000006Z  task_updated      DROPPED fenced (expected_attempt 1, task at attempt 2)
)";
  expect_ok(run({"history", "s.db", "task_review", "--as-of-seq", "10"}), expected);
  expect_ok(run({"history", "s.db", "task_review", "--as-of", "2026-01-02T03:04:15.000006Z"}),
            expected);
}

TEST_F(ReplayCli, HistoryJson) {
  expect_ok(run({"history", "s.db", "task_review", "--json", "--as-of-seq", "11"}),
            R"([
 {"seq":4,"recorded_at":"2026-01-02T03:04:09.000006Z","type":"task_created","version":1,"payload":{"kind":"review","display_name":"Review the change","spec":{},"state":"queued","links":{},"wake_policy":"silent"},"changes":[{"field":"id","before":null,"after":"task_review"},{"field":"session_id","before":null,"after":"sess_a"},{"field":"kind","before":null,"after":"review"},{"field":"display_name","before":null,"after":"Review the change"},{"field":"spec","before":null,"after":{}},{"field":"state","before":null,"after":"queued"},{"field":"attempt","before":null,"after":1},{"field":"wake_policy","before":null,"after":"silent"},{"field":"created_at","before":null,"after":"2026-01-02T03:04:09.000006Z"},{"field":"updated_at","before":null,"after":"2026-01-02T03:04:09.000006Z"}]},
 {"seq":7,"recorded_at":"2026-01-02T03:04:12.000006Z","type":"task_updated","version":1,"payload":{"state":"running","increment_attempt":true},"changes":[{"field":"state","before":"queued","after":"running"},{"field":"attempt","before":1,"after":2},{"field":"started_at","before":null,"after":"2026-01-02T03:04:12.000006Z"},{"field":"updated_at","before":"2026-01-02T03:04:09.000006Z","after":"2026-01-02T03:04:12.000006Z"}]},
 {"seq":8,"recorded_at":"2026-01-02T03:04:13.000006Z","type":"task_updated","version":1,"payload":{"state":"failed","expected_attempt":1},"dropped":"fenced","changes":[]},
 {"seq":11,"recorded_at":"2026-01-02T03:04:16.000006Z","type":"cancel_requested","version":1,"payload":{},"changes":[{"field":"cancel_requested_at","before":null,"after":"2026-01-02T03:04:16.000006Z"},{"field":"updated_at","before":"2026-01-02T03:04:12.000006Z","after":"2026-01-02T03:04:16.000006Z"}]}
]
)");
}

// --- verify ----------------------------------------------------------------------------------

TEST_F(ReplayCli, VerifyPassesOnAHealthyJournal) {
  expect_ok(run({"verify", "s.db"}),
            "ok: 15 events, 3 tasks, 2 messages; sequence, hash chain, payloads, lifecycle "
            "invariants and registry views hold\n");
  expect_ok(run({"verify", "s.db", "--json"}),
            R"({"ok":true,"events":15,"last_seq":15,"tasks":3,"messages":2,"problems":[],)"
            R"("truncated":false,"checkpoint_seq":0,"ignored_checkpoints":[]})"
            "\n");
}

// A journal with a checkpoint: verify's registry restores its views from it, so comparing them
// with verify's own full fold checks the checkpoint too.
TEST_F(ReplayCli, VerifyChecksTheCheckpointAgainstTheFold) {
  const std::string db = fresh_sample("checkpointed.db");
  {
    auto r = Registry::open(path(db), {.checkpoint_every = 0});
    ASSERT_EQ(r.checkpoint(), 15u);
  }
  expect_ok(run({"verify", db}),
            "ok: 15 events, 3 tasks, 2 messages; sequence, hash chain, payloads, lifecycle "
            "invariants and registry views hold\n"
            "checkpoint of event 15: the registry's views restored from it equal the fold\n");
}

TEST_F(ReplayCli, VerifyWarnsOfADamagedCheckpointAndPasses) {
  const std::string db = fresh_sample("damaged-checkpoint.db");
  {
    auto r = Registry::open(path(db), {.checkpoint_every = 0});
    r.checkpoint();
  }
  RawJournal(path(db)).exec("UPDATE checkpoint_chunks SET digest = zeroblob(32)");
  expect_ok(run({"verify", db}),
            "ok: 15 events, 3 tasks, 2 messages; sequence, hash chain, payloads, lifecycle "
            "invariants and registry views hold\n"
            "warning: " +
                db + ": checkpoint of event 15 ignored: chunk 0 damaged\n");
}

TEST_F(ReplayCli, VerifyCatchesACheckpointThatDiffersFromTheFold) {
  // Well-formed, with valid digests and counts, and the later events fit it; only a full fold
  // shows that a task's display name in it is not the journal's.
  const std::string db = fresh_sample("forged-checkpoint.db");
  {
    auto r = Registry::open(path(db), {.checkpoint_every = 0});
    r.checkpoint();
  }
  {
    RawJournal raw(path(db));
    raw.exec(
        "UPDATE checkpoint_chunks SET data = CAST(replace(CAST(data AS TEXT), 'Review the "
        "change', 'Review the chanGe') AS BLOB)");
    raw.add_sha256_function();
    raw.exec("UPDATE checkpoint_chunks SET digest = sha256(data)");
  }
  const Result r = run({"verify", db});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("FAILED: a registry's"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("differs from the fold"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("note: the registry restored its views from the checkpoint of event 15"),
            std::string::npos)
      << r.out;
}

TEST_F(ReplayCli, VerifyCatchesARowAlteredByAnotherTool) {
  const std::string db = fresh_sample("altered.db");
  {
    RawJournal raw(path(db));
    EXPECT_ANY_THROW(raw.exec("UPDATE events SET version = 1 WHERE seq = 2"));  // the trigger
    raw.drop_triggers();
    // One payload byte: the worker id "w-1" becomes "w-2"; the payload still decodes.
    raw.exec(
        "UPDATE events SET payload = CAST(replace(CAST(payload AS TEXT), 'w-1', 'w-2') "
        "AS BLOB) WHERE seq = 2");
  }
  const Result r = run({"verify", db});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out,
            "FAILED: event 2: hash mismatch (row altered, removed or reordered) (1 problem in 15 "
            "events, 3 tasks, 2 messages)\n");
  // The other subcommands refuse to build views from it, naming the event.
  const Result s = run({"summary", db});
  EXPECT_EQ(s.status, 1);
  EXPECT_EQ(s.err, "taskjournal-replay: " + db +
                       ": event 2: hash mismatch (row altered, removed or reordered)\n");
  // ... but the views before it are still there.
  EXPECT_EQ(run({"tasks", db, "--as-of-seq", "1"}).status, 0);
}

TEST_F(ReplayCli, VerifyCatchesADeletedRow) {
  const std::string db = fresh_sample("gap.db");
  {
    RawJournal raw(path(db));
    raw.drop_triggers();
    raw.exec("DELETE FROM events WHERE seq = 7");
  }
  const Result r = run({"verify", db});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out,
            "FAILED: event 7: missing (sequence gap: event 8 follows event 6) (1 problem in 14 "
            "events, 3 tasks, 2 messages)\n");
  const Result j = run({"verify", db, "--json"});
  EXPECT_EQ(j.status, 1);
  EXPECT_EQ(j.out,
            R"({"ok":false,"events":14,"last_seq":15,"tasks":3,"messages":2,"problems":[)"
            R"~({"seq":7,"what":"event 7: missing (sequence gap: event 8 follows event 6)"}],)~"
            R"("truncated":false,"checkpoint_seq":0,"ignored_checkpoints":[]})"
            "\n");
}

TEST_F(ReplayCli, VerifyCatchesAnUnknownEventTypeAndVersion) {
  const std::string db = fresh_sample("unknown.db");
  {
    RawJournal raw(path(db));
    const Timestamp t = taskjournal::testing::fake_clock_start() + std::chrono::seconds(20);
    raw.append("task_exploded", 1, t, "sess_a", "task_build", "");  // event 16
    raw.append(events::Event{.recorded_at = t,
                             .session_id = "sess_a",
                             .task_id = "task_build",
                             .payload = events::CancelRequested{}});   // event 17, fine
    raw.append("cancel_requested", 7, t, "sess_a", "task_build", "");  // event 18
  }
  const Result r = run({"verify", db});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out,
            "FAILED: event 16: unknown event type \"task_exploded\" (2 problems in 18 events, 3 "
            "tasks, 2 messages)\n"
            "  event 16: unknown event type \"task_exploded\"\n"
            "  event 18: unknown payload version 7 (this build reads 1 to 1)\n");
}

TEST_F(ReplayCli, VerifyCatchesAnInvariantBreakingSequenceWithValidHashes) {
  // Rows a registry never writes, hash-chained correctly: an update of a task that was never
  // created, a second create of an existing id, a message naming a task of another session.
  const std::string db = "forged.db";
  fs::remove(path(db));
  {
    FakeClock clock;
    auto registry = Registry::open(path(db), Options{.clock = clock.fn()});
    registry.create({.session_id = "sess_a", .id = "task_a", .kind = "build"});
  }
  {
    RawJournal raw(path(db));
    const Timestamp t = taskjournal::testing::fake_clock_start();
    raw.append(events::Event{.recorded_at = t,
                             .session_id = "sess_a",
                             .task_id = "task_ghost",
                             .payload = events::TaskUpdated{{.state = SessionTaskState::Running}}});
    raw.append(events::Event{
        .recorded_at = t,
        .session_id = "sess_a",
        .task_id = "task_a",
        .payload = events::TaskCreated{{.session_id = "sess_a", .id = "task_a", .kind = "x"}}});
    raw.append(events::Event{.recorded_at = t,
                             .session_id = "sess_b",
                             .task_id = "task_a",
                             .payload = events::MessageRecorded{TaskMessage{.id = "tmsg_1"}}});
    raw.append(events::Event{.recorded_at = t,
                             .session_id = "sess_a",
                             .task_id = "task_a",
                             .payload = events::TaskUpdated{{.state = SessionTaskState::Failed}}});
  }
  const Result r = run({"verify", db});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out,
            "FAILED: event 2: names task task_ghost, unknown in session sess_a (3 problems in 5 "
            "events, 1 task, 0 messages)\n"
            "  event 2: names task task_ghost, unknown in session sess_a\n"
            "  event 3: task task_a created twice\n"
            "  event 4: names task task_a, unknown in session sess_b\n");
  // The registry refuses the file at the same event.
  EXPECT_THROW(Registry::open(path(db), Options{.read_only = true}), Error);
}

TEST_F(ReplayCli, VerifyThroughASymlinkSaysTheRegistryViewsWereNotCompared) {
  // The reader follows the link; Registry::open refuses a symlink as journal (a path problem, not
  // a journal problem), so the comparison with its views is skipped and said so.
  fs::remove(path("link.db"));
  fs::create_symlink("s.db", path("link.db"));
  expect_ok(run({"verify", "link.db"}),
            "ok: 15 events, 3 tasks, 2 messages; sequence, hash chain, payloads and lifecycle "
            "invariants hold (registry views not compared: link.db: refusing a symlink as "
            "journal)\n");
  expect_ok(run({"summary", "link.db", "--json"}),
            R"({"file":"link.db","schema_version":1,"payload_versions":[1],"events":15,)"
            R"("first_event_at":"2026-01-02T03:04:06.000006Z",)"
            R"("last_event_at":"2026-01-02T03:04:20.000006Z","sessions":2,"tasks":3,)"
            R"("tasks_by_state":{"queued":0,"running":1,"awaiting_input":0,"succeeded":1,)"
            R"("failed":1,"canceled":0},"tasks_by_kind":{"build":2,"review":1},"messages":2})"
            "\n");
}

TEST_F(ReplayCli, VerifyOfAnEmptyJournalPasses) {
  fs::remove(path("empty.db"));
  { auto registry = Registry::open(path("empty.db")); }
  expect_ok(run({"verify", "empty.db"}),
            "ok: 0 events, 0 tasks, 0 messages; sequence, hash chain, payloads, lifecycle "
            "invariants and registry views hold\n");
  expect_ok(run({"tasks", "empty.db"}),
            "ID  SESSION  KIND  STATE  ATTEMPT  UPDATED_AT  DISPLAY_NAME\n");
}

// --- export ----------------------------------------------------------------------------------

// CONTRACT §6, checked member by member against the registry's own values.
void expect_contract_task(const rapidjson::Value& j, const SessionTask& t) {
  ASSERT_TRUE(j.IsObject());
  auto str = [&](const char* key) -> std::string {
    EXPECT_TRUE(j.HasMember(key) && j[key].IsString()) << key;
    return j.HasMember(key) && j[key].IsString() ? j[key].GetString() : "";
  };
  auto opt_str = [&](const char* key, const std::optional<std::string>& v) {
    EXPECT_EQ(j.HasMember(key), v.has_value()) << key;
    if (v && j.HasMember(key)) {
      EXPECT_EQ(str(key), *v) << key;
    }
  };
  auto opt_time = [&](const char* key, const std::optional<Timestamp>& v) {
    opt_str(key, v ? std::optional<std::string>(format_timestamp(*v)) : std::nullopt);
  };
  EXPECT_EQ(str("id"), t.id);
  EXPECT_EQ(str("session_id"), t.session_id);
  EXPECT_EQ(str("kind"), t.kind);
  EXPECT_EQ(str("display_name"), t.display_name);
  EXPECT_TRUE(j.HasMember("spec"));
  EXPECT_EQ(str("state"), to_string(t.state));
  opt_str("state_detail", t.state_detail);
  EXPECT_EQ(j.HasMember("progress"), t.progress.has_value());
  if (t.progress && j.HasMember("progress")) {
    const auto& p = j["progress"];
    EXPECT_EQ(p.HasMember("current"), t.progress->current.has_value());
    EXPECT_EQ(p["current"].GetUint64(), t.progress->current.value_or(0));
    EXPECT_EQ(p["total"].GetUint64(), t.progress->total.value_or(0));
    EXPECT_EQ(std::string(p["unit"].GetString()), t.progress->unit.value_or(""));
    EXPECT_EQ(p.HasMember("label"), t.progress->label.has_value());
  }
  EXPECT_EQ(j.HasMember("input_request"), t.input_request.has_value());
  opt_time("cancel_requested_at", t.cancel_requested_at);
  opt_str("summary", t.summary);
  opt_str("result_path", t.result_path);
  EXPECT_EQ(j.HasMember("artifacts"), !t.artifacts.empty());
  EXPECT_EQ(j.HasMember("error"), t.error.has_value());
  if (t.error && j.HasMember("error")) {
    EXPECT_EQ(std::string(j["error"]["kind"].GetString()), t.error->kind);
    EXPECT_EQ(std::string(j["error"]["message"].GetString()), t.error->message);
  }
  EXPECT_TRUE(j.HasMember("attempt") && j["attempt"].IsInt());
  EXPECT_EQ(j["attempt"].GetInt(), t.attempt);
  opt_str("worker_id", t.worker_id);
  opt_time("heartbeat_at", t.heartbeat_at);
  EXPECT_EQ(j.HasMember("links"), t.links != TaskLinks{});
  EXPECT_EQ(str("wake_policy"), to_string(t.wake_policy));
  EXPECT_EQ(str("created_at"), format_timestamp(t.created_at));
  opt_time("started_at", t.started_at);
  opt_time("finished_at", t.finished_at);
  EXPECT_EQ(str("updated_at"), format_timestamp(t.updated_at));
  std::size_t members = 0;
  for (auto it = j.MemberBegin(); it != j.MemberEnd(); ++it) ++members;
  // Nothing else: id, session_id, kind, display_name, spec, state, attempt, wake_policy,
  // created_at and updated_at always, the optional fields when set.
  const std::size_t expected =
      10 + t.state_detail.has_value() + t.progress.has_value() + t.input_request.has_value() +
      t.cancel_requested_at.has_value() + t.summary.has_value() + t.result_path.has_value() +
      !t.artifacts.empty() + t.error.has_value() + t.worker_id.has_value() +
      t.heartbeat_at.has_value() + (t.links != TaskLinks{}) + t.started_at.has_value() +
      t.finished_at.has_value();
  EXPECT_EQ(members, expected);
}

TEST_F(ReplayCli, ExportWritesOneContractJsonObjectPerTaskAndLine) {
  const Result r = run({"export", "s.db", "--format", "jsonl"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(run({"export", "s.db"}).out, r.out);
  EXPECT_EQ(r.out.find("s3cr3t"), std::string::npos);

  auto registry = Registry::open(path("s.db"), Options{.read_only = true});
  const std::vector<std::pair<std::string, std::string>> order{
      {"sess_a", "task_build"}, {"sess_a", "task_review"}, {"sess_b", "task_lint"}};
  std::istringstream lines(r.out);
  std::string line;
  std::size_t n = 0;
  while (std::getline(lines, line)) {
    ASSERT_LT(n, order.size());
    rapidjson::Document doc;
    doc.Parse(line.c_str(), line.size());
    ASSERT_FALSE(doc.HasParseError()) << line;
    ASSERT_TRUE(doc.IsObject());
    EXPECT_EQ(doc.MemberCount(), 2u);
    const auto& [session, id] = order[n];
    const SessionTask task = *registry.get(session, id);
    expect_contract_task(doc["task"], task);

    // spec: stored with its secret, exported with "has_secret": true in its place.
    const auto& spec = doc["task"]["spec"];
    if (id == "task_build") {
      const auto& push = spec["push_configs"][0];
      EXPECT_FALSE(push.HasMember("secret"));
      EXPECT_TRUE(push["has_secret"].GetBool());
      EXPECT_EQ(std::string(push["url"].GetString()), "https://hooks.example/1");
      EXPECT_EQ(std::string(spec["target"].GetString()), "app");
      EXPECT_NE(task.spec.find("s3cr3t"), std::string::npos);
    } else {
      EXPECT_TRUE(spec.IsObject() && spec.MemberCount() == 0);
    }

    const auto messages = registry.list_messages(session, id);
    const auto& m = doc["messages"];
    ASSERT_TRUE(m.IsArray());
    ASSERT_EQ(m.Size(), messages.size());
    for (rapidjson::SizeType i = 0; i < m.Size(); ++i) {
      const auto& msg = m[i];
      const TaskMessage& want = messages[i];
      EXPECT_EQ(std::string(msg["id"].GetString()), want.id);
      EXPECT_EQ(std::string(msg["task_id"].GetString()), id);
      EXPECT_EQ(std::string(msg["direction"].GetString()), to_string(want.direction));
      ASSERT_EQ(msg["content"].Size(), 1u);
      EXPECT_EQ(std::string(msg["content"][0]["type"].GetString()), "text");
      EXPECT_EQ(std::string(msg["content"][0]["text"].GetString()),
                std::get<TextPart>(want.content[0]).text);
      EXPECT_EQ(msg.HasMember("in_reply_to"), want.in_reply_to.has_value());
      EXPECT_EQ(std::string(msg["created_at"].GetString()), format_timestamp(want.created_at));
      EXPECT_EQ(msg.MemberCount(), want.in_reply_to ? 6u : 5u);
    }
    ++n;
  }
  EXPECT_EQ(n, order.size());
}

// --- arguments, files ------------------------------------------------------------------------

TEST_F(ReplayCli, BadArgumentsPrintUsageAndExit2) {
  expect_usage({}, "taskjournal-replay: missing command\n");
  expect_usage({"frobnicate", "s.db"}, "taskjournal-replay: unknown command 'frobnicate'\n");
  expect_usage({"summary"}, "taskjournal-replay: missing FILE\n");
  expect_usage({"show", "s.db"}, "taskjournal-replay: missing TASK_ID\n");
  expect_usage({"summary", "s.db", "extra"}, "taskjournal-replay: unexpected argument 'extra'\n");
  expect_usage({"summary", "s.db", "--frob"}, "taskjournal-replay: unknown option '--frob'\n");
  expect_usage({"verify", "s.db", "--as-of-seq", "3"},
               "taskjournal-replay: unknown option '--as-of-seq'\n");
  expect_usage({"summary", "s.db", "--as-of-seq"},
               "taskjournal-replay: option --as-of-seq needs a value\n");
  expect_usage({"summary", "s.db", "--as-of-seq", "-1"},
               "taskjournal-replay: option --as-of-seq needs a non-negative integer, not '-1'\n");
  expect_usage({"tasks", "s.db", "--as-of", "yesterday"},
               "taskjournal-replay: option --as-of needs an RFC 3339 time such as "
               "2026-01-02T03:04:05Z, not 'yesterday'\n");
  expect_usage({"tasks", "s.db", "--state", "cancelled"},
               "taskjournal-replay: unknown state 'cancelled' (queued, running, awaiting_input, "
               "succeeded, failed, canceled)\n");
  expect_usage({"tasks", "s.db", "--json=yes"},
               "taskjournal-replay: option --json takes no value\n");
  expect_usage({"tasks", "s.db", "--kind", "a", "--kind", "b"},
               "taskjournal-replay: option --kind given twice\n");
  expect_usage({"export", "s.db", "--format", "csv"},
               "taskjournal-replay: unknown format 'csv' (only jsonl)\n");
  // The usage of the command itself follows the message.
  const Result r = run({"show", "s.db"});
  EXPECT_EQ(r.err,
            "taskjournal-replay: missing TASK_ID\n"
            "usage: taskjournal-replay show FILE TASK_ID [--as-of-seq N | --as-of TIME] [--json]\n"
            "  The task's snapshot (its public JSON fields, spec secrets redacted) and its "
            "messages,\n"
            "  oldest first.\n");
}

TEST_F(ReplayCli, HelpOnEachCommand) {
  for (const std::string command :
       {"summary", "tasks", "show", "history", "verify", "export", "follow"}) {
    const Result r = run({command, "--help"});
    EXPECT_EQ(r.status, 0) << command;
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(r.out.rfind("usage: taskjournal-replay " + command + " FILE", 0), 0u) << r.out;
    EXPECT_EQ(run({command, "s.db", "-h"}).out, r.out);
  }
  const Result r = run({"--help"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out.rfind("usage: taskjournal-replay COMMAND FILE [ARGS] [OPTIONS]\n", 0), 0u);
  for (const char* command :
       {"summary", "tasks", "show", "history", "verify", "export", "follow"}) {
    EXPECT_NE(r.out.find(std::string("\n  ") + command + " FILE"), std::string::npos) << command;
  }
}

TEST_F(ReplayCli, AMissingFileIsAnErrorAndIsNotCreated) {
  for (const std::string command : {"summary", "tasks", "verify", "export", "follow"}) {
    const Result r = run({command, "missing.db"});
    EXPECT_EQ(r.status, 1) << command;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "taskjournal-replay: missing.db: no such journal\n");
  }
  EXPECT_FALSE(fs::exists(path("missing.db")));
}

TEST_F(ReplayCli, AFileThatIsNotAJournalIsAnError) {
  std::ofstream(path("notes.txt")) << "not a journal\n";
  Result r = run({"summary", "notes.txt"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "taskjournal-replay: notes.txt: open: file is not a database\n");
  std::ofstream(path("zero.db")).close();
  r = run({"verify", "zero.db"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "taskjournal-replay: zero.db: not a taskjournal journal (empty file)\n");
  r = run({"tasks", "."});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "taskjournal-replay: .: not a regular file\n");
}

TEST_F(ReplayCli, NeverWritesTheJournal) {
  const std::string db = fresh_sample("readonly.db");
  const std::string before = file_bytes(path(db));
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"summary", db},
                                             {"tasks", db},
                                             {"show", db, "task_build"},
                                             {"history", db, "task_build"},
                                             {"verify", db},
                                             {"export", db}}) {
    EXPECT_EQ(run(args).status, 0) << args[0];
  }
  EXPECT_EQ(file_bytes(path(db)), before);
  // Not even with write permission taken away.
  fs::permissions(path(db), fs::perms::owner_read);
  EXPECT_EQ(run({"verify", db}).status, 0);
  fs::permissions(path(db), fs::perms::owner_read | fs::perms::owner_write);
}

// --- follow ----------------------------------------------------------------------------------

TEST_F(ReplayCli, FollowPrintsEventsOtherWritersAppendUntilInterrupted) {
  const std::string db = "follow.db";
  fs::remove(path(db));
  FakeClock clock;
  auto registry = Registry::open(path(db), Options{.clock = clock.fn()});
  registry.create({.session_id = "sess_f", .id = "task_old", .kind = "k"});

  Child follow(dir_, {"follow", db, "--interval-ms", "10"});
  Child follow_json(dir_, {"follow", db, "--after-seq", "0", "--json", "--interval-ms", "10"});
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // both started
  clock.advance(std::chrono::seconds(1));
  registry.create({.session_id = "sess_f", .id = "task_new", .kind = "k", .display_name = "New"});
  clock.advance(std::chrono::seconds(1));
  registry.update("sess_f", "task_new", {.state = SessionTaskState::Running});

  auto wait_lines = [](Child& c, std::size_t lines) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (static_cast<std::size_t>(std::count(c.out().begin(), c.out().end(), '\n')) < lines &&
           std::chrono::steady_clock::now() < deadline) {
      c.pump(std::chrono::milliseconds(50));
    }
  };
  wait_lines(follow, 2);
  wait_lines(follow_json, 3);
  follow.signal(SIGINT);
  follow_json.signal(SIGINT);
  const Result r = follow.finish();
  const Result j = follow_json.finish();
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(
      r.out,
      "2  2026-01-02T03:04:06.000006Z  task_created      sess_f  task_new  "
      R"({"kind":"k","display_name":"New","spec":{},"state":"queued","links":{},)"
      R"("wake_policy":"silent"})"
      "\n"
      R"(3  2026-01-02T03:04:07.000006Z  task_updated      sess_f  task_new  {"state":"running"})"
      "\n");
  EXPECT_EQ(j.status, 0) << j.err;
  std::istringstream lines(j.out);
  std::string line;
  std::uint64_t seq = 0;
  while (std::getline(lines, line)) {
    rapidjson::Document doc;
    doc.Parse(line.c_str(), line.size());
    ASSERT_FALSE(doc.HasParseError()) << line;
    EXPECT_EQ(doc["seq"].GetUint64(), ++seq);
    EXPECT_EQ(std::string(doc["session_id"].GetString()), "sess_f");
    EXPECT_TRUE(doc["payload"].IsObject());
  }
  EXPECT_EQ(seq, 3u);
}

// --- Regression tests of issue #10 -------------------------------------------------------------

std::string to_hex(const std::string& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  }
  return out;
}

// history folded the whole journal (every task, a copy of the task per event): a damaged event of
// another task, after the task's own, stopped it. It reads only the task's own events now.
TEST_F(ReplayCli, HistoryReadsOnlyTheTasksOwnEventsNotTheWholeJournal) {
  const std::string db = fresh_sample("other_damaged.db");
  {
    RawJournal raw(path(db));
    raw.drop_triggers();
    raw.exec("UPDATE events SET recorded_at = recorded_at + 1 WHERE seq = 13");  // task_lint
  }
  const Result r = run({"history", db, "task_review"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 6) << r.out;
  // Its own damaged event still stops it, naming the event.
  const Result l = run({"history", db, "task_lint"});
  EXPECT_EQ(l.status, 1);
  EXPECT_EQ(l.out, "");
  EXPECT_EQ(l.err, "taskjournal-replay: " + db +
                       ": event 13: hash mismatch (row altered, removed or reordered)\n");
}

// Lines come out as the events are read, with fixed columns: SEQ as wide as the newest sequence
// number (at least 3), EVENT 16 wide.
TEST_F(ReplayCli, HistoryColumnsAreFixedByTheNewestSequenceNumber) {
  const std::string db = "wide.db";
  fs::remove(path(db));
  {
    FakeClock clock;
    auto registry = Registry::open(path(db), Options{.clock = clock.fn()});
    registry.create({.session_id = "s", .id = "task_a", .kind = "k"});
    registry.batch([&](Batch& b) {
      for (int i = 0; i < 1000; ++i) b.create({.session_id = "s", .kind = "filler"});
    });
    registry.update("s", "task_a", {.state = SessionTaskState::Running});
  }
  expect_ok(run({"history", db, "task_a"}),
            " SEQ  TIME                         EVENT             CHANGES\n"
            "   1  2026-01-02T03:04:05.000006Z  task_created      created: kind k, state queued\n"
            "1002  2026-01-02T03:04:05.000006Z  task_updated      state queued → running, "
            "started_at (none) → 2026-01-02T03:04:05.000006Z\n");
}

// follow --after-seq N past the newest event exited 1 with "event N: missing".
TEST_F(ReplayCli, FollowAfterASeqPastTheNewestEventWaitsForIt) {
  const std::string db = "follow_ahead.db";
  fs::remove(path(db));
  FakeClock clock;
  auto registry = Registry::open(path(db), Options{.clock = clock.fn()});
  registry.create({.session_id = "s", .id = "task_a", .kind = "k"});  // event 1

  Child follow(dir_, {"follow", db, "--after-seq", "3", "--interval-ms", "10"});
  std::this_thread::sleep_for(std::chrono::milliseconds(200));           // started, waiting
  registry.update("s", "task_a", {.state = SessionTaskState::Running});  // 2
  registry.update("s", "task_a", {.summary = "three"});                  // 3
  registry.update("s", "task_a", {.summary = "four"});                   // 4
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::count(follow.out().begin(), follow.out().end(), '\n') < 1 &&
         std::chrono::steady_clock::now() < deadline) {
    follow.pump(std::chrono::milliseconds(50));
  }
  follow.signal(SIGINT);
  const Result r = follow.finish();
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(
      r.out,
      "4  2026-01-02T03:04:05.000006Z  task_updated      s  task_a  {\"summary\":\"four\"}\n");
}

// summary --json wrote a file name that is not UTF-8 as it is: not JSON.
TEST_F(ReplayCli, JsonOutputIsValidJsonForAFileNameThatIsNotUtf8) {
  const std::string db = "s\xff\xfe.db";
  fs::copy_file(path("s.db"), path(db), fs::copy_options::overwrite_existing);
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"summary", db, "--json"}, {"verify", db, "--json"}, {"digest", db, "--json"}}) {
    const Result r = run(args);
    EXPECT_EQ(r.status, 0) << args[0] << r.err;
    rapidjson::Document doc;
    ASSERT_TRUE(is_json(r.out, doc)) << args[0];
  }
  rapidjson::Document doc;
  ASSERT_TRUE(is_json(run({"summary", db, "--json"}).out, doc));
  // Each invalid byte is replaced by U+FFFD.
  EXPECT_EQ(std::string(doc["file"].GetString()), "s\xEF\xBF\xBD\xEF\xBF\xBD.db");
  fs::remove(path(db));
}

// With --json, a file that cannot be opened printed nothing on stdout: now a JSON error object
// there, the message on stderr as before, the same exit status.
TEST_F(ReplayCli, JsonPrintsAnErrorObjectWhenTheFileCannotBeOpened) {
  for (const std::string command : {"summary", "tasks", "verify", "digest", "follow"}) {
    const Result r = run({command, "missing\xff.db", "--json"});
    EXPECT_EQ(r.status, 1) << command;
    EXPECT_EQ(r.err, "taskjournal-replay: missing\xff.db: no such journal\n") << command;
    EXPECT_EQ(r.out,
              "{\"error\":{\"code\":\"read_only\",\"message\":\"missing\xEF\xBF\xBD.db: no such "
              "journal\"}}\n")
        << command;
  }
  const Result r = run({"history", "s.db", "task_nope", "--json"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, R"({"error":{"code":"not_found","message":"no task task_nope in s.db"}})"
                   "\n");
}

TEST_F(ReplayCli, DigestPrintsTheNewestEventAndItsHash) {
  const auto [seq, hash] = RawJournal(path("s.db")).tail();
  ASSERT_EQ(seq, 15u);
  expect_ok(run({"digest", "s.db"}), "15:" + to_hex(hash) + "\n");
  expect_ok(run({"digest", "s.db", "--json"}),
            R"({"seq":15,"hash":")" + to_hex(hash) + R"(","digest":"15:)" + to_hex(hash) + "\"}\n");
}

// Deleting the newest rows went unnoticed: verify said ok. It still does without a digest (the
// chain cannot see it); with the digest saved before, verify fails.
TEST_F(ReplayCli, VerifyWithASavedDigestCatchesRemovedNewestEvents) {
  const std::string db = fresh_sample("truncated.db");
  const Result d = run({"digest", db});
  ASSERT_EQ(d.status, 0);
  const std::string digest = d.out.substr(0, d.out.size() - 1);
  expect_ok(run({"verify", db, "--digest", digest}),
            "ok: 15 events, 3 tasks, 2 messages; sequence, hash chain, payloads, lifecycle "
            "invariants and registry views hold\n"
            "digest " +
                digest + ": the journal holds exactly the events up to it, and 0 after it\n");
  {
    RawJournal raw(path(db));
    raw.drop_triggers();
    raw.exec("DELETE FROM events WHERE seq >= 14");
  }
  EXPECT_EQ(run({"verify", db}).status, 0);  // what the chain alone cannot see
  const Result r = run({"verify", db, "--digest", digest});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out, "FAILED: digest " + digest +
                       ": event 15 missing: the journal ends at event 13 (its newest events were "
                       "removed, or it is another file) (1 problem in 13 events, 3 tasks, 2 "
                       "messages)\n");
  const Result j = run({"verify", db, "--digest", digest, "--json"});
  EXPECT_EQ(j.status, 1);
  rapidjson::Document doc;
  ASSERT_TRUE(is_json(j.out, doc));
  EXPECT_FALSE(doc["ok"].GetBool());
  EXPECT_EQ(std::string(doc["digest"]["digest"].GetString()), digest);
}

TEST_F(ReplayCli, VerifyWithADigestCatchesARewrittenPrefixAndAcceptsLaterEvents) {
  const std::string db = fresh_sample("rewritten.db");
  const std::string old = run({"digest", db}).out;
  const std::string digest = old.substr(0, old.size() - 1);
  // Events appended after the digest: the prefix still holds.
  {
    auto registry = Registry::open(path(db));
    registry.update("sess_b", "task_lint", {.summary = "later"});
  }
  const Result later = run({"verify", db, "--digest", digest});
  EXPECT_EQ(later.status, 0) << later.out;
  EXPECT_NE(later.out.find("and 1 after it\n"), std::string::npos) << later.out;
  // The whole file rewritten from event 14 on, hashes recomputed: the chain holds, the digest not.
  {
    RawJournal raw(path(db));
    raw.drop_triggers();
    raw.exec("DELETE FROM events WHERE seq >= 14");
    const Timestamp t = taskjournal::testing::fake_clock_start() + std::chrono::seconds(30);
    raw.append(events::Event{.recorded_at = t,
                             .session_id = "sess_b",
                             .task_id = "task_lint",
                             .payload = events::CancelRequested{}});
    raw.append(events::Event{.recorded_at = t,
                             .session_id = "sess_b",
                             .task_id = "task_lint",
                             .payload = events::CancelRequested{}});
  }
  EXPECT_EQ(run({"verify", db}).status, 0);
  const Result r = run({"verify", db, "--digest", digest});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("FAILED: digest " + digest + ": event 15 has hash "), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find(": the journal up to it was rewritten, or it is another file"),
            std::string::npos)
      << r.out;
  expect_usage({"verify", db, "--digest", "15:abc"},
               "taskjournal-replay: option --digest needs SEQ:HASH as `digest` prints it (a "
               "sequence number, a colon and 64 hex digits), not '15:abc'\n");
}

// --as-of-seq and --as-of are alternatives; both were accepted.
TEST_F(ReplayCli, AsOfSeqTogetherWithAsOfIsAUsageError) {
  for (const std::string command : {"summary", "tasks"}) {
    expect_usage({command, "s.db", "--as-of-seq", "3", "--as-of", "2026-01-02T03:04:15Z"},
                 "taskjournal-replay: options --as-of-seq and --as-of are alternatives: give one "
                 "of them\n");
  }
  expect_usage(
      {"history", "s.db", "task_build", "--as-of-seq", "3", "--as-of", "2026-01-02T03:04:15Z"},
      "taskjournal-replay: options --as-of-seq and --as-of are alternatives: give one of "
      "them\n");
}

// A locked journal: the tool waited 5 s in silence, then said only "database is locked".
TEST_F(ReplayCli, ALockedJournalNamesTheProcessHoldingItAndBusyTimeoutBoundsTheWait) {
  const std::string db = fresh_sample("locked.db");
  auto registry = Registry::open(path(db), Options{.exclusive = true});
  const Result r = run({"summary", db, "--busy-timeout", "0"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("database is locked"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("locked by process " + std::to_string(getpid())), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("Options::exclusive"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--busy-timeout MS"), std::string::npos) << r.err;
  // With a wait, it says why it waits before it does.
  const Result w = run({"digest", db, "--busy-timeout", "50", "--json"});
  EXPECT_EQ(w.status, 1);
  EXPECT_EQ(w.err.rfind("taskjournal-replay: waiting up to 50 ms (--busy-timeout): ", 0), 0u)
      << w.err;
  rapidjson::Document doc;
  ASSERT_TRUE(is_json(w.out, doc));
  EXPECT_EQ(std::string(doc["error"]["code"].GetString()), "busy");
}

// summary, tasks, show, export and history showed no progress; on a terminal they do now (on
// stderr), and never when stderr is not a terminal.
TEST_F(ReplayCli, LongCommandsShowProgressOnATerminal) {
  const std::vector<std::vector<std::string>> commands{{"summary", "s.db"},
                                                       {"tasks", "s.db"},
                                                       {"show", "s.db", "task_build"},
                                                       {"export", "s.db"},
                                                       {"verify", "s.db"},
                                                       {"history", "s.db", "task_build"},
                                                       {"summary", "s.db", "--json"},
                                                       {"copy", "s.db", "progress_copy.db"}};
  for (const auto& args : commands) {
    const Result r = Child(dir_, args, true).finish();
    EXPECT_EQ(r.status, 0) << args[0];
    const std::string done = args[0] + ": 15/15 events (100%)";
    EXPECT_NE(r.err.find(done), std::string::npos) << args[0] << ": " << r.err;
    EXPECT_EQ(r.out.find(args[0] + ": "), std::string::npos) << args[0];
    EXPECT_EQ(run(args).err, "") << args[0];
  }
}

// --- PostgreSQL URIs ---------------------------------------------------------------------------

// The sample journal, copied onto the test server by the tool itself; its URI.
class ReplayCliPostgresql : public ReplayCli {
 protected:
  static void SetUpTestSuite() {
    ReplayCli::SetUpTestSuite();
    sample_ = journal_at(*temp_, "sample", TestEngine::Postgresql);
    const Result r = run({"copy", "s.db", sample_.uri()});
    ASSERT_EQ(r.status, 0) << r.out << r.err;
  }
  static std::string pg(const std::string& name) {
    return journal_at(*temp_, name, TestEngine::Postgresql).uri();
  }
  // What `summary` prints as the journal's name (the server, database and schema).
  static std::string name_of(const std::string& uri) {
    return JournalReader::open_postgresql(uri).path().string();
  }
  // The output of a command on the sample file, with its "file" line (summary) left out.
  static std::string without_file_line(std::string out) {
    if (out.rfind("file ", 0) == 0) out.erase(0, out.find('\n') + 1);
    static const std::regex json_file(R"(^\{"file":"(?:[^"\\]|\\.)*",)");
    return std::regex_replace(out, json_file, "{");
  }
  static JournalLocation sample_;
};

JournalLocation ReplayCliPostgresql::sample_;

TEST_F(ReplayCliPostgresql, EverySubcommandReadsAPostgresqlUriAsItReadsTheFile) {
  const std::string uri = sample_.uri();
  const std::vector<std::vector<std::string>> commands{
      {"summary"},
      {"summary", "--as-of-seq", "5", "--json"},
      {"tasks"},
      {"tasks", "--state", "failed", "--json"},
      {"show", "task_build"},
      {"show", "task_build", "--as-of-seq", "5", "--json"},
      {"history", "task_review"},
      {"history", "task_build", "--json"},
      {"verify"},
      {"verify", "--json"},
      {"digest"},
      {"export"}};
  for (const auto& command : commands) {
    std::vector<std::string> on_file{command[0], "s.db"}, on_pg{command[0], uri};
    on_file.insert(on_file.end(), command.begin() + 1, command.end());
    on_pg.insert(on_pg.end(), command.begin() + 1, command.end());
    const Result f = run(on_file);
    const Result p = run(on_pg);
    ASSERT_EQ(f.status, 0) << command[0] << ": " << f.err;
    EXPECT_EQ(p.status, 0) << command[0] << ": " << p.err;
    EXPECT_EQ(p.err, "") << command[0];
    EXPECT_EQ(without_file_line(p.out), without_file_line(f.out)) << command[0];
  }
  // The journal's name: the server, database and schema.
  const Result s = run({"summary", uri});
  EXPECT_EQ(s.out.rfind("file              " + name_of(uri) + "\n", 0), 0u) << s.out;
  EXPECT_NE(s.out.find("dbname=postgres"), std::string::npos) << s.out;
  // postgres:// is the same.
  const Result short_scheme = run({"digest", "postgres://" + uri.substr(13)});
  EXPECT_EQ(short_scheme.status, 0) << short_scheme.err;
  EXPECT_EQ(short_scheme.out, run({"digest", "s.db"}).out);
}

TEST_F(ReplayCliPostgresql, ErrorsNameTheServerDatabaseAndSchema) {
  // A schema without a journal: the reader does not create one.
  const std::string empty = pg("empty");
  const Result r = run({"summary", empty});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("dbname=postgres"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("read-only open does not create one"), std::string::npos) << r.err;
  EXPECT_EQ(run({"summary", empty}).status, 1);  // still none
  // An unknown task, named with the journal.
  const Result t = run({"show", sample_.uri(), "task_nope"});
  EXPECT_EQ(t.status, 1);
  EXPECT_EQ(t.err, "taskjournal-replay: no task task_nope in " + name_of(sample_.uri()) + "\n");
  // No server there.
  const Result n = run({"digest", "postgresql:///postgres?host=" + path("nowhere") + "&port=1"});
  EXPECT_EQ(n.status, 1);
  EXPECT_NE(n.err.find("cannot connect"), std::string::npos) << n.err;
  EXPECT_NE(n.err.find(path("nowhere")), std::string::npos) << n.err;
}

// follow polls the reader: an event another host appends shows up.
TEST_F(ReplayCliPostgresql, FollowPrintsEventsAppendedToAPostgresqlJournal) {
  const JournalLocation at = journal_at(*temp_, "follow", TestEngine::Postgresql);
  FakeClock clock;
  auto registry = taskjournal::testing::open_registry(at, Options{.clock = clock.fn()});
  registry.create({.session_id = "sess_f", .id = "task_old", .kind = "k"});

  Child follow(dir_, {"follow", at.uri(), "--interval-ms", "10"});
  Child follow_json(dir_,
                    {"follow", at.uri(), "--after-seq", "0", "--json", "--interval-ms", "10"});
  // Started (follow_json printed event 1) before the next events exist.
  const auto wait_lines = [](Child& c, std::size_t lines) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (static_cast<std::size_t>(std::count(c.out().begin(), c.out().end(), '\n')) < lines &&
           std::chrono::steady_clock::now() < deadline) {
      c.pump(std::chrono::milliseconds(50));
    }
  };
  wait_lines(follow_json, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // follow has read its start too
  clock.advance(std::chrono::seconds(1));
  registry.create({.session_id = "sess_f", .id = "task_new", .kind = "k", .display_name = "New"});
  clock.advance(std::chrono::seconds(1));
  registry.update("sess_f", "task_new", {.state = SessionTaskState::Running});
  wait_lines(follow, 2);
  wait_lines(follow_json, 3);
  follow.signal(SIGINT);
  follow_json.signal(SIGINT);
  const Result r = follow.finish();
  const Result j = follow_json.finish();
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(
      r.out,
      "2  2026-01-02T03:04:06.000006Z  task_created      sess_f  task_new  "
      R"({"kind":"k","display_name":"New","spec":{},"state":"queued","links":{},)"
      R"("wake_policy":"silent"})"
      "\n"
      R"(3  2026-01-02T03:04:07.000006Z  task_updated      sess_f  task_new  {"state":"running"})"
      "\n");
  EXPECT_EQ(j.status, 0) << j.err;
  EXPECT_EQ(std::count(j.out.begin(), j.out.end(), '\n'), 3) << j.out;
  EXPECT_EQ(j.out.rfind(R"({"seq":1,)", 0), 0u) << j.out;
}

// --- copy ----------------------------------------------------------------------------------------

// Every stored column of every event, in order, as bytes: equal for two files only if their
// events are byte-identical.
std::string stored_rows(const std::string& file) {
  return RawJournal(file, RawJournal::Mode::ReadOnly)
      .blob(
          "SELECT group_concat(seq || ',' || quote(type) || ',' || version || ',' || recorded_at "
          "|| ',' || quote(session_id) || ',' || quote(task_id) || ',' || hex(payload) || ',' || "
          "hex(hash), ';') FROM (SELECT * FROM events ORDER BY seq)");
}

TEST_F(ReplayCliPostgresql, CopySqliteToPostgresqlToSqliteKeepsEveryHashAndView) {
  const std::string uri = pg("round_trip");
  const std::string back = "round_trip_back.db";
  fs::remove(path(back));
  const std::string digest = run({"digest", "s.db"}).out;
  ASSERT_EQ(digest.substr(0, 3), "15:");

  const Result there = run({"copy", "s.db", uri});
  EXPECT_EQ(there.status, 0) << there.out << there.err;
  EXPECT_EQ(there.err, "");
  EXPECT_EQ(there.out,
            "copied 15 events in 1 transaction\n"
            "  from s.db\n"
            "  to   " +
                name_of(uri) +
                "\n"
                "digest " +
                digest.substr(0, digest.size() - 1) +
                ": SRC and DST end with the same event and hash\n"
                "DST: ok: 15 events, 3 tasks, 2 messages; sequence, hash chain, payloads, "
                "lifecycle invariants and registry views hold\n"
                "digest " +
                digest.substr(0, digest.size() - 1) +
                ": the journal holds exactly the events up to it, and 0 after it\n"
                "checkpoints are not copied (a cache of the views): a registry opening DST "
                "folds its events and writes checkpoints of its own\n");
  const Result home = run({"copy", uri, back, "--json"});
  EXPECT_EQ(home.status, 0) << home.out << home.err;
  rapidjson::Document doc;
  ASSERT_TRUE(is_json(home.out, doc));
  EXPECT_TRUE(doc["ok"].GetBool());
  EXPECT_EQ(std::string(doc["source"].GetString()), name_of(uri));
  EXPECT_EQ(std::string(doc["destination"].GetString()), back);
  EXPECT_EQ(doc["kept"].GetUint64(), 0u);
  EXPECT_EQ(doc["copied"].GetUint64(), 15u);
  EXPECT_EQ(doc["transactions"].GetUint64(), 1u);
  EXPECT_EQ(std::string(doc["digest"]["digest"].GetString()) + "\n", digest);
  EXPECT_EQ(std::string(doc["source_digest"]["digest"].GetString()) + "\n", digest);
  EXPECT_EQ(std::string(doc["destination_digest"]["digest"].GetString()) + "\n", digest);
  EXPECT_TRUE(doc["verify"]["ok"].GetBool());

  // Digest and verify on each; the same views everywhere.
  for (const std::string& at : {std::string("s.db"), uri, back}) {
    EXPECT_EQ(run({"digest", at}).out, digest) << at;
    EXPECT_EQ(run({"verify", at}).status, 0) << at;
    for (const std::vector<std::string>& command :
         std::vector<std::vector<std::string>>{{"tasks", at, "--json"},
                                               {"export", at},
                                               {"history", at, "task_review", "--json"},
                                               {"summary", at, "--as-of-seq", "9", "--json"}}) {
      auto on_file = command;
      on_file[1] = "s.db";
      EXPECT_EQ(without_file_line(run(command).out), without_file_line(run(on_file).out))
          << command[0] << " " << at;
    }
  }
  // And the very bytes: every column of every event of the file that went there and back.
  EXPECT_EQ(stored_rows(path(back)), stored_rows(path("s.db")));
  // A registry opened on the copy serves the same tasks and messages.
  auto original = Registry::open(path("s.db"), {.read_only = true});
  auto copy = Registry::open_postgresql(
      journal_at(*temp_, "round_trip", TestEngine::Postgresql).where, {.read_only = true});
  for (const char* session : {"sess_a", "sess_b"}) {
    EXPECT_EQ(copy.list(session), original.list(session)) << session;
  }
  EXPECT_EQ(copy.list_messages("sess_a", "task_build"),
            original.list_messages("sess_a", "task_build"));
}

TEST_F(ReplayCliPostgresql, CopyResumesAfterTheEventsADestinationAlreadyHolds) {
  const std::string src = "growing.db";
  fs::remove(path(src));
  const std::string dst = pg("resumed");
  {
    auto registry = Registry::open(path(src));
    for (int i = 0; i < 5; ++i) registry.create({.session_id = "s", .kind = "k"});
  }
  // The first five events; then the source grows (as an interrupted copy leaves a prefix).
  ASSERT_EQ(run({"copy", src, dst}).status, 0);
  {
    auto registry = Registry::open(path(src));
    for (int i = 0; i < 7; ++i) registry.create({.session_id = "s", .kind = "k"});
  }
  const Result r = run({"copy", src, dst, "--batch", "3"});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out.rfind("copied 7 events in 3 transactions, after the 5 events DST held (a prefix "
                        "of SRC)\n",
                        0),
            0u)
      << r.out;
  EXPECT_EQ(run({"digest", dst}).out, run({"digest", src}).out);
  EXPECT_EQ(run({"verify", dst}).status, 0);
  // Nothing left to copy: a rerun copies nothing and still checks the copy.
  const Result again = run({"copy", src, dst, "--json"});
  EXPECT_EQ(again.status, 0) << again.out << again.err;
  rapidjson::Document doc;
  ASSERT_TRUE(is_json(again.out, doc));
  EXPECT_EQ(doc["kept"].GetUint64(), 12u);
  EXPECT_EQ(doc["copied"].GetUint64(), 0u);
  EXPECT_TRUE(doc["ok"].GetBool());
  // A file destination resumes the same way.
  const std::string file_dst = "resumed.db";
  fs::remove(path(file_dst));
  ASSERT_EQ(run({"copy", dst, file_dst, "--batch", "1"}).status, 0);
  EXPECT_EQ(stored_rows(path(file_dst)), stored_rows(path(src)));
}

TEST_F(ReplayCliPostgresql, CopyRefusesADestinationThatHoldsOtherEvents) {
  const std::string other = "other.db";
  fs::remove(path(other));
  {
    auto registry = Registry::open(path(other));
    registry.create({.session_id = "s", .id = "task_other", .kind = "k"});
  }
  const std::string other_pg = pg("other");
  ASSERT_EQ(run({"copy", other, other_pg}).status, 0);
  for (const std::string& dst : {other, other_pg}) {
    const std::string before = run({"digest", dst}).out;
    const Result r = run({"copy", "s.db", dst});
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find(": holds 1 events that are not a prefix of s.db (event 1 differs): copy "
                         "into a new file or an empty schema"),
              std::string::npos)
        << r.err;
    EXPECT_EQ(run({"digest", dst}).out, before) << dst;
  }
  // A destination longer than the source is not a prefix either.
  const std::string empty = "empty_src.db";
  fs::remove(path(empty));
  Registry::open(path(empty));
  const Result longer = run({"copy", empty, other, "--json"});
  EXPECT_EQ(longer.status, 1);
  rapidjson::Document doc;
  ASSERT_TRUE(is_json(longer.out, doc));
  EXPECT_EQ(std::string(doc["error"]["code"].GetString()), "invalid_argument");
  EXPECT_NE(std::string(doc["error"]["message"].GetString()).find("the source has only 0 events"),
            std::string::npos)
      << longer.out;
}

TEST_F(ReplayCli, CopyOfAMissingSourceCreatesNothing) {
  const Result r = run({"copy", "missing.db", "never.db"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "taskjournal-replay: missing.db: no such journal\n");
  EXPECT_FALSE(fs::exists(path("never.db")));
  EXPECT_FALSE(fs::exists(path("missing.db")));
  expect_usage({"copy", "s.db"}, "taskjournal-replay: missing DST\n");
  expect_usage({"copy", "s.db", "x.db", "--batch", "0"},
               "taskjournal-replay: option --batch needs at least 1 (events per transaction)\n");
  const Result help = run({"copy", "--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_EQ(help.out.rfind("usage: taskjournal-replay copy SRC DST", 0), 0u) << help.out;
  EXPECT_NE(run({"--help"}).out.find("\n  copy SRC DST "), std::string::npos);
}

TEST_F(ReplayCli, CopyBetweenFilesKeepsTheBytesAndRefusesADamagedSource) {
  const std::string dst = "copied.db";
  fs::remove(path(dst));
  const Result r = run({"copy", "s.db", dst, "--batch", "4"});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out.rfind("copied 15 events in 4 transactions\n  from s.db\n  to   copied.db\n", 0),
            0u)
      << r.out;
  EXPECT_EQ(stored_rows(path(dst)), stored_rows(path("s.db")));
  // A source whose event 9 was altered: the copy stops there, naming it; the batches before it
  // stay, a prefix that the copy of the repaired source resumes from.
  const std::string bad = fresh_sample("bad_source.db");
  {
    RawJournal raw(path(bad));
    raw.drop_triggers();
    raw.exec("UPDATE events SET recorded_at = recorded_at - 1000000 WHERE seq = 9");
  }
  const std::string partial = "partial.db";
  fs::remove(path(partial));
  const Result b = run({"copy", bad, partial, "--batch", "4"});
  EXPECT_EQ(b.status, 1);
  EXPECT_EQ(b.err, "taskjournal-replay: " + bad +
                       ": event 9: hash mismatch (row altered, removed or reordered)\n");
  EXPECT_EQ(run({"digest", partial}).out.substr(0, 2), "8:");
  EXPECT_EQ(run({"verify", partial}).status, 0);
  RawJournal(path(bad)).exec("UPDATE events SET recorded_at = recorded_at + 1000000 WHERE seq = 9");
  const Result resumed = run({"copy", bad, partial});
  EXPECT_EQ(resumed.status, 0) << resumed.out << resumed.err;
  EXPECT_EQ(resumed.out.rfind("copied 7 events in 1 transaction, after the 8 events DST held", 0),
            0u)
      << resumed.out;
  EXPECT_EQ(stored_rows(path(partial)), stored_rows(path(bad)));
}

// --- passwords -----------------------------------------------------------------------------------

// libpq cannot parse the URI (an unknown parameter, a bad escape): the error named the target by
// the URI as written, password included. The tool masks it anyway; the library must not need that.
TEST(ReplayCliLibrary, AUriLibpqCannotParseIsNamedWithoutItsPassword) {
  for (const std::string uri : {"postgresql://tj:hunter2@/postgres?host=/nowhere&bogus=1",
                                "postgres://tj:hunter2@localhost:1/db?bogus=1"}) {
    try {
      JournalReader::open_postgresql(uri);
      ADD_FAILURE() << uri << " opened";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
      EXPECT_NE(message.find("tj:***@"), std::string::npos) << message;
      EXPECT_NE(message.find("invalid URI query parameter"), std::string::npos) << message;
    }
  }
}

TEST_F(ReplayCliPostgresql, APasswordInAUriIsNeverPrinted) {
  // The test server trusts local connections: the password is accepted and ignored.
  const std::string uri = sample_.uri();
  ASSERT_EQ(uri.rfind("postgresql:///", 0), 0u);
  const std::string tail = uri.substr(14);  // "postgres?host=…"
  const std::vector<std::string> uris{
      "postgresql://tj:hunter2@/" + tail,
      uri + "&password=hunter2",
      "postgresql://tj:hunt%65r2@/" + tail,
  };
  const std::string copy_dst = pg("secret_copy");
  for (const std::string& with_password : uris) {
    const std::string missing_schema = std::regex_replace(
        with_password, std::regex("search_path%3D[a-z0-9_]+"), "search_path%3Dno_such_schema");
    const std::string bad_database =
        std::regex_replace(with_password, std::regex("/postgres\\?"), "/no_such_db?");
    const std::string bad_port = with_password + "&port=notaport";
    const std::vector<std::vector<std::string>> commands{
        {"summary", with_password},
        {"summary", with_password, "--json"},
        {"tasks", with_password},
        {"show", with_password, "task_nope"},
        {"show", with_password, "task_nope", "--json"},
        {"history", with_password, "task_build", "--json"},
        {"verify", with_password, "--json"},
        {"digest", with_password},
        {"copy", with_password, copy_dst},
        {"copy", "s.db", with_password},
        {"copy", "s.db", with_password, "--json"},
        {"summary", missing_schema},
        {"summary", missing_schema, "--json"},
        {"digest", bad_database},
        {"digest", bad_database, "--json"},
        {"digest", bad_port, "--json"},
        {"copy", "s.db", bad_port},
        {"digest", "s.db", with_password},  // a usage error that quotes the argument
    };
    for (const auto& command : commands) {
      const Result r = run(command);
      EXPECT_EQ(r.out.find("hunter2"), std::string::npos) << command[0] << ": " << r.out;
      EXPECT_EQ(r.err.find("hunter2"), std::string::npos) << command[0] << ": " << r.err;
      EXPECT_EQ(r.out.find("hunt%65r2"), std::string::npos) << command[0] << ": " << r.out;
      EXPECT_EQ(r.err.find("hunt%65r2"), std::string::npos) << command[0] << ": " << r.err;
    }
    // The commands did run (with the password accepted): not a test of errors alone.
    EXPECT_EQ(run({"digest", with_password}).out, run({"digest", "s.db"}).out);
  }
  // libpq's own message quotes a malformed escape of the URI: the password with it.
  for (const bool json : {false, true}) {
    std::vector<std::string> args{"digest", "postgresql://tj:hunter2%zz@/" + tail};
    if (json) args.emplace_back("--json");
    const Result r = run(args);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("invalid percent-encoded token: \"***\""), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("hunter2"), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("hunter2"), std::string::npos) << r.out;
  }
}

}  // namespace
