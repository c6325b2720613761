// The journal file: format, identity checks, immutability, hash chain, file safety, fixtures.
#include "store/journal.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "events/event.hpp"
#include "support/fake_clock.hpp"
#include "support/raw_journal.hpp"
#include "support/temp_dir.hpp"
#include "taskjournal/taskjournal.hpp"

namespace fs = std::filesystem;
using namespace taskjournal;

namespace {

using taskjournal::testing::raw_sql;
using taskjournal::testing::raw_sql_error;
using taskjournal::testing::TempDir;

// Opens `file` and returns the error it throws (code and message); fails if it opens.
Error open_error(const fs::path& file, Options options = {}) {
  try {
    Registry::open(file, std::move(options));
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "open of " << file << " succeeded";
  return Error(ErrorCode::Storage, "no error");
}

// Three tasks, six events: created, updated, cancel, message, created, updated.
void write_sample(const fs::path& file) {
  taskjournal::testing::FakeClock clock;
  auto r = Registry::open(file, Options{.clock = clock.fn()});
  r.create({.session_id = "s1", .id = "t1", .kind = "subagent", .display_name = "One"});
  clock.advance(std::chrono::seconds(1));
  r.update("s1", "t1", {.state = SessionTaskState::Running});
  r.request_cancel("s1", "t1");
  r.record_message("s1", "t1", NewTaskMessage::outbound_text("hello"));
  r.create({.session_id = "s2", .id = "t2", .kind = "monitor", .display_name = "Two"});
  r.update("s2", "t2", {.state = SessionTaskState::Succeeded, .summary = "done"});
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

TEST(JournalFile, NewFileIsCreatedWithMode0600) {
  TempDir dir;
  Registry::open(dir / "j.db");
  struct stat st {};
  ASSERT_EQ(::stat((dir / "j.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(JournalFile, SymlinkIsRefused) {
  TempDir dir;
  Registry::open(dir / "real.db");
  fs::create_symlink(dir / "real.db", dir / "link.db");
  Error e = open_error(dir / "link.db");
  EXPECT_EQ(e.code(), ErrorCode::Storage);
  EXPECT_NE(std::string(e.what()).find("symlink"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("link.db"), std::string::npos) << e.what();
}

TEST(JournalFile, DirectoryIsRefused) {
  TempDir dir;
  fs::create_directories(dir / "d.db");
  EXPECT_EQ(open_error(dir / "d.db").code(), ErrorCode::Storage);
}

TEST(JournalFile, ReadOnlyOpenOfMissingFileIsReadOnlyError) {
  TempDir dir;
  EXPECT_EQ(open_error(dir / "missing.db", {.read_only = true}).code(), ErrorCode::ReadOnly);
  EXPECT_FALSE(fs::exists(dir / "missing.db"));
}

TEST(JournalFile, FileThatIsNotSqliteIsCorruptAndNamed) {
  TempDir dir;
  std::ofstream(dir / "text.db") << "this is not a database, just some text that is long enough\n";
  Error e = open_error(dir / "text.db");
  EXPECT_EQ(e.code(), ErrorCode::Corrupt);
  EXPECT_NE(std::string(e.what()).find("text.db"), std::string::npos) << e.what();
}

TEST(JournalFile, SqliteFileOfAnotherApplicationIsCorruptAndLeftUnchanged) {
  TempDir dir;
  raw_sql(dir / "other.db",
          "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT);"
          "INSERT INTO customers(name) VALUES ('ada');");
  const std::string before = read_file(dir / "other.db");
  Error e = open_error(dir / "other.db");
  EXPECT_EQ(e.code(), ErrorCode::Corrupt);
  EXPECT_NE(std::string(e.what()).find("not a taskjournal journal"), std::string::npos) << e.what();
  EXPECT_EQ(read_file(dir / "other.db"), before);
}

TEST(JournalFile, JournalOfNewerSchemaIsUnsupported) {
  TempDir dir;
  write_sample(dir / "j.db");
  raw_sql(dir / "j.db", "PRAGMA user_version = " + std::to_string(store::kSchemaVersion + 1));
  Error e = open_error(dir / "j.db");
  EXPECT_EQ(e.code(), ErrorCode::Unsupported);
  EXPECT_NE(std::string(e.what()).find("j.db"), std::string::npos) << e.what();
}

TEST(JournalFile, EventsCannotBeUpdatedOrDeleted) {
  TempDir dir;
  write_sample(dir / "j.db");
  EXPECT_NE(raw_sql_error(dir / "j.db", "UPDATE events SET payload = x'00' WHERE seq = 2")
                .find("taskjournal events are immutable"),
            std::string::npos);
  EXPECT_NE(raw_sql_error(dir / "j.db", "DELETE FROM events WHERE seq = 2")
                .find("taskjournal events are immutable"),
            std::string::npos);
  EXPECT_NO_THROW(Registry::open(dir / "j.db"));
}

TEST(JournalFile, AlteredPayloadIsCorruptNamingItsSequenceNumber) {
  TempDir dir;
  write_sample(dir / "j.db");
  raw_sql(dir / "j.db",
          "DROP TRIGGER events_no_update;"
          "UPDATE events SET payload = CAST(payload || x'00' AS BLOB) WHERE seq = 4;");
  Error e = open_error(dir / "j.db");
  EXPECT_EQ(e.code(), ErrorCode::Corrupt);
  EXPECT_NE(std::string(e.what()).find("event 4"), std::string::npos) << e.what();
}

TEST(JournalFile, AlteredTimestampIsCorrupt) {
  TempDir dir;
  write_sample(dir / "j.db");
  raw_sql(dir / "j.db",
          "DROP TRIGGER events_no_update;"
          "UPDATE events SET recorded_at = recorded_at + 1 WHERE seq = 2;");
  Error e = open_error(dir / "j.db");
  EXPECT_EQ(e.code(), ErrorCode::Corrupt);
  EXPECT_NE(std::string(e.what()).find("event 2"), std::string::npos) << e.what();
}

TEST(JournalFile, DeletedRowIsReportedAsSequenceGap) {
  TempDir dir;
  write_sample(dir / "j.db");
  raw_sql(dir / "j.db", "DROP TRIGGER events_no_delete; DELETE FROM events WHERE seq = 3;");
  Error e = open_error(dir / "j.db");
  EXPECT_EQ(e.code(), ErrorCode::Corrupt);
  EXPECT_NE(std::string(e.what()).find("event 4"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("gap"), std::string::npos) << e.what();
}

TEST(JournalFile, UnknownEventTypeIsCorruptNamingItsSequenceNumber) {
  TempDir dir;
  write_sample(dir / "j.db");
  raw_sql(dir / "j.db",
          "DROP TRIGGER events_no_update;"
          "UPDATE events SET type = 'task_exploded' WHERE seq = 5;");
  Error e = open_error(dir / "j.db");
  EXPECT_EQ(e.code(), ErrorCode::Corrupt);
  EXPECT_NE(std::string(e.what()).find("event 5"), std::string::npos) << e.what();
}

TEST(JournalFile, CorruptEventAppendedByAnotherWriterFailsReadsAndKeepsViews) {
  TempDir dir;
  write_sample(dir / "j.db");
  auto r = Registry::open(dir / "j.db");
  const auto before = r.get("s1", "t1");
  ASSERT_TRUE(before);
  raw_sql(dir / "j.db",
          "INSERT INTO events VALUES (7, 'task_updated', 1, 0, 's1', 't1', x'00', x'00')");
  try {
    r.get("s1", "t1");
    FAIL() << "get after a corrupt append did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Corrupt);
    EXPECT_NE(std::string(e.what()).find("event 7"), std::string::npos) << e.what();
  }
  // Still refused on the next call, never folded.
  EXPECT_THROW(r.list("s1"), Error);
  EXPECT_THROW(r.update("s1", "t1", {.summary = "x"}), Error);
}

TEST(JournalFile, HistoryChecksTheHashChain) {
  TempDir dir;
  write_sample(dir / "j.db");
  auto r = Registry::open(dir / "j.db");
  ASSERT_EQ(r.history("s1", "t1").size(), 4u);
  raw_sql(dir / "j.db",
          "DROP TRIGGER events_no_update;"
          "UPDATE events SET recorded_at = recorded_at + 5 WHERE seq = 3;");
  try {
    r.history("s1", "t1");
    FAIL() << "history over an altered row did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Corrupt);
    EXPECT_NE(std::string(e.what()).find("event 3"), std::string::npos) << e.what();
  }
}

TEST(JournalFile, TableHoldsOneRowPerEventWithTypeAndVersion) {
  TempDir dir;
  write_sample(dir / "j.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "j.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT seq, type, version FROM events ORDER BY seq", -1, &stmt,
                               nullptr),
            SQLITE_OK);
  std::vector<std::string> rows;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    rows.push_back(std::to_string(sqlite3_column_int64(stmt, 0)) + " " +
                   reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1)) + " v" +
                   std::to_string(sqlite3_column_int(stmt, 2)));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  EXPECT_EQ(rows, (std::vector<std::string>{"1 task_created v1", "2 task_updated v1",
                                            "3 cancel_requested v1", "4 message_recorded v1",
                                            "5 task_created v1", "6 task_updated v1"}));
}

TEST(JournalFormat, SchemaAndPayloadVersionsMatchTheReadme) {
  const std::string readme = read_file(fs::path(TASKJOURNAL_SOURCE_DIR) / "README.md");
  EXPECT_NE(readme.find("Schema version: " + std::to_string(store::kSchemaVersion) + "\n"),
            std::string::npos);
  EXPECT_NE(readme.find("Payload version: " + std::to_string(events::kPayloadVersion) + "\n"),
            std::string::npos);
  EXPECT_NE(readme.find("application_id = 0x544A524E"), std::string::npos);
}

// tests/fixtures/journal-v1.db was written by schema 1 (regenerate only for a new schema, under a
// new name): TASKJOURNAL_WRITE_FIXTURE=path ./journal_test --gtest_filter=*Fixture*
TEST(JournalFixture, JournalWrittenBySchemaV1StillOpens) {
  if (const char* out = std::getenv("TASKJOURNAL_WRITE_FIXTURE")) {
    fs::remove(out);
    write_sample(out);
    raw_sql(out, "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;");
  }
  TempDir dir;
  fs::copy_file(fs::path(TASKJOURNAL_SOURCE_DIR) / "tests/fixtures/journal-v1.db", dir / "v1.db");
  fs::permissions(dir / "v1.db", fs::perms::owner_read | fs::perms::owner_write);
  auto fixture = Registry::open(dir / "v1.db");
  write_sample(dir / "fresh.db");
  auto fresh = Registry::open(dir / "fresh.db");

  for (auto [session, task] : {std::pair{"s1", "t1"}, std::pair{"s2", "t2"}}) {
    EXPECT_EQ(fixture.get(session, task), fresh.get(session, task));
    auto a = fixture.history(session, task);
    auto b = fresh.history(session, task);
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].type, b[i].type);
      EXPECT_EQ(a[i].recorded_at, b[i].recorded_at);
      if (a[i].type != "message_recorded") {
        EXPECT_EQ(a[i].payload, b[i].payload);
      }
    }
  }
  auto messages = fixture.list_messages("s1", "t1");
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(task_message_text(messages[0].content), "hello");
  EXPECT_EQ(fixture.get("s2", "t2")->state, SessionTaskState::Succeeded);
  EXPECT_TRUE(fixture.get("s1", "t1")->cancel_requested_at.has_value());
  // And the fixture takes new writes.
  EXPECT_TRUE(fixture.update("s1", "t1", {.state = SessionTaskState::Succeeded}));
}
