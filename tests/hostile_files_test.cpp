// Hostile and broken files (issue 5, items 3 and 5), beyond journal_test's altered rows, gaps,
// foreign and newer files: a journal truncated mid-page, a WAL truncated mid-frame, bytes flipped
// anywhere in the file, a read-only file opened for writing, a directory that cannot be written,
// a file owned by another user, an empty file, and many processes creating one journal at once.
// Each gives a clear Error naming the file, or — where nothing that was committed is damaged —
// exactly the views of the undamaged journal; never a crash or a silently different view.
//
// Permission tests: root ignores file modes, and the tests run as root in CI. There each
// permission case runs in a forked child that switches to the user nobody (uid/gid 65534) after
// the parent gave it the files; as any other user they run in the test process itself.
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/processes.hpp"
#include "taskjournal/taskjournal.hpp"

using namespace taskjournal;
using namespace taskjournal::testing;

namespace {

const std::vector<std::string> kSessions{"s1", "s2", "s3"};
constexpr uid_t kNobody = 65534;

// A journal of a few hundred events over many pages, closed (so fully checkpointed, no WAL).
void write_bulk(const fs::path& file, int tasks = 60) {
  auto r = Registry::open(file);
  for (int i = 0; i < tasks; ++i) {
    const std::string session = kSessions[static_cast<std::size_t>(i) % kSessions.size()];
    auto t = r.create({.session_id = session,
                       .id = "task-" + std::to_string(i),
                       .kind = "bulk",
                       .display_name = std::string(200, 'n'),
                       .spec = "[1,2,3]"});
    r.update(session, t.id,
             {.state = SessionTaskState::Running, .state_detail = std::string(300 + 7 * i, 'd')});
    r.record_message(session, t.id, NewTaskMessage::outbound_text("message " + std::to_string(i)));
    if (i % 3 == 0) r.request_cancel(session, t.id);
    r.update(session, t.id, {.state = SessionTaskState::Succeeded, .summary = "done"});
  }
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
  fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write);
}

// What opening `file` gives: "ok" with the dump compared by the caller, or the error.
struct Opened {
  std::optional<Error> error;
  std::string dump;
};
Opened open_and_dump(const fs::path& file, Options options = {}) {
  Opened out;
  try {
    auto r = Registry::open(file, options);
    out.dump = dump_sessions(r, kSessions);
  } catch (const Error& e) {
    out.error = e;
  }
  return out;
}

// Runs `body` as an unprivileged user (see the top of the file) and returns what it returned.
std::string as_unprivileged(const std::function<std::string()>& body) {
  if (::geteuid() != 0) return body();
  Pipe pipe;
  const pid_t pid = fork_child([&] {
    pipe.close_read();
    if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) {
      throw std::runtime_error("cannot become nobody");
    }
    const std::string out = body();
    if (!write_all(pipe.write_end(), out.data(), out.size())) throw std::runtime_error("pipe");
  });
  pipe.close_write();
  std::string out;
  char chunk[4096];
  for (ssize_t n; (n = ::read(pipe.read_end(), chunk, sizeof chunk)) > 0;) {
    out.append(chunk, static_cast<std::size_t>(n));
  }
  EXPECT_TRUE(exited_ok(wait_child(pid)));
  return out;
}

// Gives `path` to the user the permission tests run as (nobody when root).
void give_away(const fs::path& path) {
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown(path.c_str(), kNobody, kNobody), 0) << path;
  }
}

// Makes `dir` a directory the unprivileged user cannot write (0755 and root's when run as root,
// else without the owner's write bit), and undoes that.
void lock_directory(const fs::path& dir) {
  fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                           fs::perms::others_read | fs::perms::others_exec);
  if (::geteuid() != 0) fs::permissions(dir, fs::perms::owner_write, fs::perm_options::remove);
}
void unlock_directory(const fs::path& dir) {
  if (::geteuid() != 0) fs::permissions(dir, fs::perms::owner_write, fs::perm_options::add);
}

std::string describe(const std::function<void()>& call) {
  try {
    call();
    return "ok";
  } catch (const Error& e) {
    return std::string(to_string(e.code())) + ": " + e.what();
  }
}

}  // namespace

// ---- truncation
// ----------------------------------------------------------------------------------

TEST(HostileFiles, FileTruncatedMidPageIsCorruptNamingTheFile) {
  TempDir dir;
  const fs::path original = dir / "original.db";
  write_bulk(original);
  ASSERT_FALSE(fs::exists(dir / "original.db-wal"));
  const auto want = open_and_dump(original);
  ASSERT_FALSE(want.error);
  const auto page = static_cast<std::size_t>(raw_int(original, "PRAGMA page_size"));
  const std::string bytes = read_bytes(original);
  const std::size_t pages = bytes.size() / page;
  ASSERT_GE(pages, 20u);

  std::vector<std::size_t> cuts{1, 50, 99, 100, 101, bytes.size() - 1};
  for (std::size_t k = 0; k < pages; ++k) cuts.push_back(k * page + page / 2);
  int refused = 0, harmless = 0;
  for (const std::size_t cut : cuts) {
    const fs::path file = dir / ("cut-" + std::to_string(cut) + ".db");
    write_bytes(file, bytes.substr(0, cut));
    const auto got = open_and_dump(file);
    if (!got.error) {
      // Only possible when the lost half page held nothing the journal uses (free space).
      EXPECT_EQ(got.dump, want.dump) << "a journal cut at byte " << cut << " of " << bytes.size()
                                     << " opened with different views";
      ++harmless;
      continue;
    }
    EXPECT_EQ(got.error->code(), ErrorCode::Corrupt) << cut << ": " << got.error->what();
    EXPECT_NE(std::string(got.error->what()).find(file.string()), std::string::npos)
        << got.error->what();
    ++refused;
  }
  std::printf("truncated journals tried: %zu, %d refused as corrupt, %d harmless\n", cuts.size(),
              refused, harmless);
  EXPECT_GE(refused, static_cast<int>(cuts.size()) - 2);
}

// Regression (short file overwritten): SQLite reads a file shorter than its header as an empty
// database, so a file of a few bytes of anything was taken for a new journal and overwritten
// with the schema. Only a zero-length file is a new journal now.
TEST(HostileFiles, ShortFileThatIsNotSqliteIsRefusedAndLeftAlone) {
  TempDir dir;
  for (const std::string& content : {std::string("hello\n"), std::string("S"),
                                     std::string("SQLite format", 13), std::string(15, '\0')}) {
    const fs::path file = dir / "short.db";
    write_bytes(file, content);
    const auto got = open_and_dump(file);
    ASSERT_TRUE(got.error) << content.size() << " bytes opened as a journal";
    EXPECT_EQ(got.error->code(), ErrorCode::Corrupt) << got.error->what();
    EXPECT_EQ(std::string(got.error->what()),
              file.string() + ": not a taskjournal journal (not a SQLite database file)");
    EXPECT_EQ(read_bytes(file), content);
    EXPECT_FALSE(fs::exists(dir / "short.db-wal"));
  }
}

// Regression (history through a damaged index): history() finds a task's rows through the
// events_by_task index, which SQLite never checks against the table; an index entry damaged on
// disk made history silently leave events out. The fold's count of the task's events now catches
// it as Corrupt.
TEST(HostileFiles, DamagedTaskIndexMakesHistoryCorruptNotShorter) {
  TempDir dir;
  const fs::path file = dir / "index.db";
  {
    auto r = Registry::open(file);
    for (int i = 0; i < 6; ++i) {
      const std::string id = "task-" + std::to_string(i);
      r.create({.session_id = "s1", .id = id, .kind = "k"});
      for (int u = 0; u < 4; ++u) r.update("s1", id, {.summary = std::to_string(u)});
    }
  }
  // The index is one page: rename one entry of task-3 there ("task-3" → "task-X").
  const auto page = static_cast<std::size_t>(raw_int(file, "PRAGMA page_size"));
  const auto root = static_cast<std::size_t>(
      raw_int(file, "SELECT rootpage FROM sqlite_schema WHERE name = 'events_by_task'"));
  ASSERT_GT(root, 0u);
  std::string bytes = read_bytes(file);
  const std::size_t begin = (root - 1) * page;
  std::vector<std::size_t> hits;
  for (std::size_t at = bytes.find("task-3", begin); at < begin + page;
       at = bytes.find("task-3", at + 1)) {
    hits.push_back(at);
  }
  ASSERT_EQ(hits.size(), 5u) << "one index entry per event of task-3";
  bytes[hits[2] + 5] = 'X';
  write_bytes(file, bytes);

  auto r = Registry::open(file);  // the table itself is intact: the fold is right
  EXPECT_EQ(r.get("s1", "task-3")->summary, "3");
  try {
    const auto history = r.history("s1", "task-3");
    FAIL() << "history gave " << history.size() << " of 5 events";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Corrupt);
    EXPECT_EQ(std::string(e.what()), file.string() +
                                         ": history of task task-3: found 2 of its 5 events (the " +
                                         "events_by_task index is damaged)");
  }
  EXPECT_EQ(r.history("s1", "task-2").size(), 5u);
}

TEST(HostileFiles, EmptyFileIsANewJournal) {
  // A zero-length file is what Registry::open itself creates before writing the schema; a journal
  // truncated to nothing cannot be told from it (README, Limits).
  TempDir dir;
  write_bytes(dir / "empty.db", "");
  auto r = Registry::open(dir / "empty.db");
  EXPECT_EQ(r.last_seq(), 0u);
  EXPECT_NO_THROW(r.create({.session_id = "s1", .kind = "k"}));
}

TEST(HostileFiles, WalTruncatedMidFrameOpensAsAnEarlierConsistentJournal) {
  // A WAL cut short loses the transactions in its torn tail, as a power loss would, and nothing
  // else: SQLite ignores frames after the last complete commit. What opens is a prefix of the
  // journal that verifies, and takes new writes.
  TempDir dir;
  const fs::path live = dir / "live.db";
  auto writer = Registry::open(live);
  std::vector<std::string> dumps;  // dumps[n] = views after n events
  dumps.push_back(dump_sessions(writer, kSessions));
  for (int i = 0; i < 30; ++i) {
    const std::string id = "t" + std::to_string(i);
    writer.create(
        {.session_id = "s1", .id = id, .kind = "k", .spec = "\"" + std::string(900, 's') + "\""});
    dumps.push_back(dump_sessions(writer, kSessions));
    writer.update("s1", id, {.state_detail = std::string(1500, 'd')});
    dumps.push_back(dump_sessions(writer, kSessions));
  }
  // Copy the file and its WAL while the writer keeps them open (nothing checkpointed yet).
  ASSERT_TRUE(fs::exists(dir / "live.db-wal"));
  const std::string db = read_bytes(live);
  const std::string wal = read_bytes(dir / "live.db-wal");
  const std::size_t frame = 24 + static_cast<std::size_t>(raw_int(live, "PRAGMA page_size"));
  int tried = 0;
  std::uint64_t last = 0;
  for (std::size_t cut = 32 + frame / 2; cut < wal.size(); cut += frame * 3 + 517) {
    const fs::path file = dir / ("wal-" + std::to_string(cut) + ".db");
    write_bytes(file, db);
    write_bytes(fs::path(file.string() + "-wal"), wal.substr(0, cut));
    auto r = Registry::open(file);
    const auto seq = r.last_seq();
    ASSERT_LT(seq, dumps.size());
    EXPECT_GE(seq, last) << "a longer WAL gave fewer events";
    EXPECT_EQ(dump_sessions(r, kSessions), dumps[seq]) << "cut at " << cut;
    EXPECT_TRUE(sequence_is_gap_free(file));
    EXPECT_NO_THROW(r.create({.session_id = "s2", .kind = "after"}));
    last = seq;
    ++tried;
  }
  EXPECT_GT(tried, 10);
  EXPECT_GT(last, 0u);
}

// ---- flipped bytes
// -------------------------------------------------------------------------------

TEST(HostileFiles, FlippedByteAnywhereIsRefusedOrHarmless) {
  // One byte of the file inverted, at 1200 places spread over every page: opening either fails
  // with a clear error naming the file, or gives exactly the undamaged journal's views (the byte
  // was in free space); reading each task's history likewise.
  TempDir dir;
  const fs::path original = dir / "original.db";
  write_bulk(original, 30);
  const auto want = open_and_dump(original);
  ASSERT_FALSE(want.error);
  const std::string bytes = read_bytes(original);
  std::mt19937 rng(7);
  std::map<std::string, int> outcomes;
  constexpr int kFlips = 1200;
  for (int i = 0; i < kFlips; ++i) {
    const std::size_t slice = bytes.size() / kFlips;
    const std::size_t at = slice * static_cast<std::size_t>(i) + rng() % slice;
    std::string damaged = bytes;
    damaged[at] = static_cast<char>(~damaged[at]);
    const fs::path file = dir / "flipped.db";
    fs::remove(file);
    write_bytes(file, damaged);
    const auto got = open_and_dump(file);
    if (got.error) {
      const std::string what = got.error->what();
      EXPECT_NE(what.find(file.string()), std::string::npos) << what;
      EXPECT_EQ(got.error->code(), ErrorCode::Corrupt) << "byte " << at << ": " << what;
      ++outcomes[std::string(to_string(got.error->code()))];
    } else {
      EXPECT_EQ(got.dump, want.dump) << "byte " << at << " flipped gave different views";
      ++outcomes["same views"];
    }
  }
  std::string summary;
  for (const auto& [what, n] : outcomes) summary += " " + what + "=" + std::to_string(n);
  std::printf("flipped bytes: %d files:%s\n", kFlips, summary.c_str());
}

// ---- permissions and owners
// ----------------------------------------------------------------------

// Regression (silently read-only): SQLite opens a file it may not write read-only without a
// word; Registry::open then succeeded and only the first write failed. Now the open is refused
// unless Options::read_only asked for a read-only registry.
TEST(HostileFiles, ReadOnlyFileOpenedForWritingIsReadOnlyErrorAndOpensWhenAskedReadOnly) {
  TempDir dir;
  const fs::path sub = dir / "ro";
  fs::create_directories(sub);
  const fs::path file = sub / "journal.db";
  write_bulk(file, 6);
  fs::permissions(file, fs::perms::owner_read);  // 0400
  give_away(sub);
  give_away(file);

  const std::string result = as_unprivileged([&] {
    std::string out = "write: " + describe([&] {
                        auto r = Registry::open(file);
                        r.create({.session_id = "s1", .kind = "k"});
                      });
    out += "\nread: " + describe([&] {
             auto r = Registry::open(file, {.read_only = true});
             if (r.list("s1").size() != 2) throw std::runtime_error("wrong tasks");
           });
    return out;
  });
  EXPECT_EQ(result.substr(0, result.find('\n')),
            "write: read_only: " + file.string() +
                ": the file is not writable (open it with Options::read_only to read it)")
      << result;
  EXPECT_EQ(result.substr(result.find('\n') + 1), "read: ok") << result;
}

TEST(HostileFiles, JournalInADirectoryThatCannotBeWrittenIsAClearError) {
  // SQLite's WAL needs to create journal.db-wal and -shm beside the file.
  TempDir dir;
  const fs::path sub = dir / "locked";
  fs::create_directories(sub);
  const fs::path file = sub / "journal.db";
  write_bulk(file, 3);
  give_away(file);
  lock_directory(sub);

  const std::string result = as_unprivileged([&] {
    return describe([&] {
      auto r = Registry::open(file);
      r.create({.session_id = "s1", .kind = "k"});
    });
  });
  unlock_directory(sub);
  std::printf("journal in a directory that cannot be written: %s\n", result.c_str());
  EXPECT_NE(result, "ok");
  EXPECT_TRUE(result.rfind("storage: ", 0) == 0 || result.rfind("read_only: ", 0) == 0) << result;
  EXPECT_NE(result.find(file.string()), std::string::npos) << result;
}

// Regression (issue 10, defect 4): a healthy journal in a directory the user cannot write could
// not be read at all: both read-only opens failed ("attempt to write a readonly database"), and
// the reader called it "not a taskjournal journal (empty database)".
TEST(HostileFiles, HealthyJournalInADirectoryThatCannotBeWrittenOpensReadOnly) {
  TempDir dir;
  const fs::path sub = dir / "locked-ro";
  fs::create_directories(sub);
  const fs::path file = sub / "journal.db";
  write_bulk(file, 3);
  ASSERT_FALSE(fs::exists(sub / "journal.db-wal"));
  const auto want = open_and_dump(file);
  ASSERT_FALSE(want.error);
  give_away(file);
  lock_directory(sub);

  const std::string result = as_unprivileged([&] {
    std::string out = "registry: " + describe([&] {
                        auto r = Registry::open(file, {.read_only = true});
                        if (dump_sessions(r, kSessions) != want.dump) {
                          throw std::runtime_error("views differ");
                        }
                      });
    out += "\nreader: " + describe([&] {
             auto reader = JournalReader::open(file);
             if (!reader.verify().ok()) throw std::runtime_error("does not verify");
           });
    out += "\nwrite: " + describe([&] { Registry::open(file); });
    return out;
  });
  unlock_directory(sub);
  const auto lines = [&] {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (std::size_t end; (end = result.find('\n', start)) != std::string::npos; start = end + 1) {
      out.push_back(result.substr(start, end - start));
    }
    out.push_back(result.substr(start));
    return out;
  }();
  ASSERT_EQ(lines.size(), 3u) << result;
  EXPECT_EQ(lines[0], "registry: ok") << result;
  EXPECT_EQ(lines[1], "reader: ok") << result;
  // A writable open says what is wrong and what to do, not SQLite's words alone.
  EXPECT_EQ(
      lines[2].rfind("write: read_only: " + file.string() + ": cannot write the journal here", 0),
      0u)
      << result;
  EXPECT_NE(lines[2].find("Options::read_only"), std::string::npos) << result;
  EXPECT_FALSE(fs::exists(sub / "journal.db-shm"));
}

TEST(HostileFiles, WalWithCommitsButNoShmInADirectoryThatCannotBeWrittenSaysToCopyIt) {
  // A crashed host's journal whose -shm file is gone: SQLite cannot read the -wal without it,
  // and reading the file alone would silently miss the commits in the -wal.
  TempDir dir;
  const fs::path sub = dir / "crashed";
  fs::create_directories(sub);
  const fs::path file = sub / "journal.db";
  const pid_t pid = fork_child([&] {
    auto r = Registry::open(file);
    r.create({.session_id = "s1", .id = "t1", .kind = "k"});
    ::_exit(0);  // no close: the -wal and -shm files stay
  });
  ASSERT_TRUE(exited_ok(wait_child(pid)));
  ASSERT_TRUE(fs::exists(sub / "journal.db-wal"));
  fs::remove(sub / "journal.db-shm");
  give_away(file);
  give_away(sub / "journal.db-wal");

  const std::string result =
      as_unprivileged([&] { return describe([&] { Registry::open(file, {.read_only = true}); }); });
  EXPECT_EQ(result.rfind("storage: " + file.string() + ": cannot read the journal here", 0), 0u)
      << result;
  EXPECT_NE(result.find("Copy the journal together with its -wal file"), std::string::npos)
      << result;
}

TEST(HostileFiles, FileOwnedByAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a file to another user";
  TempDir dir;
  const fs::path file = dir / "theirs.db";
  write_bulk(file, 2);
  ASSERT_EQ(::chown(file.c_str(), kNobody, kNobody), 0);
  const std::string before = read_bytes(file);
  for (const bool read_only : {false, true}) {
    const std::string result = describe([&] { Registry::open(file, {.read_only = read_only}); });
    EXPECT_EQ(result, "storage: " + file.string() + ": owned by another user (uid 65534)");
  }
  EXPECT_EQ(read_bytes(file), before);
  EXPECT_FALSE(fs::exists(dir / "theirs.db-wal"));
}

// ---- many processes creating one journal
// ---------------------------------------------------------

// Regression (half-made journal taken for a foreign file): the opener read application_id,
// user_version and the schema in three snapshots; while another process was creating the journal
// it could see the schema without the application_id, and refused the file as "not a taskjournal
// journal (application_id 0)". Now one statement reads all three, and the check is repeated under
// the write lock before creating the schema. And two of them switching the new file to WAL at
// once got "database is locked" without any wait: the open now retries within busy_timeout.
TEST(HostileFiles, ManyProcessesCreatingOneJournalAtOnceAllOpenIt) {
  // Each round: 6 processes open a path that does not exist yet, released together; every one
  // must open it (one creates the file and the schema, the others find it being made) and write.
  constexpr int kRounds = 60;
  constexpr int kChildren = 6;
  TempDir dir;
  int failures = 0;
  for (int round = 0; round < kRounds; ++round) {
    const fs::path file = dir / ("race-" + std::to_string(round) + ".db");
    Pipe go;
    std::vector<pid_t> pids;
    for (int c = 0; c < kChildren; ++c) {
      pids.push_back(fork_child([&, c] {
        go.close_write();
        char byte;
        if (!read_exact(go.read_end(), &byte, 1)) throw std::runtime_error("no go");
        auto r = Registry::open(file);
        r.create({.session_id = "s1", .id = "c" + std::to_string(c), .kind = "k"});
      }));
    }
    go.close_read();
    const std::string bytes(kChildren, 'g');
    ASSERT_TRUE(write_all(go.write_end(), bytes.data(), bytes.size()));
    for (pid_t pid : pids) failures += exited_ok(wait_child(pid)) ? 0 : 1;
    EXPECT_EQ(Registry::open(file).list("s1").size(), static_cast<std::size_t>(kChildren))
        << "round " << round;
  }
  EXPECT_EQ(failures, 0) << "processes that could not open or write a journal being created";
}
