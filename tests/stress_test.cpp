// Concurrent writers, for real (issue 5, item 1): 4 processes × 2 threads write one journal file.
//
// The workload and every check of what the public API shows are shared with the PostgreSQL
// stress test (tests/support/stress_workload.hpp); here the journal file itself is checked too:
// the sequence is gap-free and holds exactly one event per acknowledged writing call.
#include <cstdint>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "support/processes.hpp"
#include "support/stress_workload.hpp"
#include "taskjournal/taskjournal.hpp"

using namespace taskjournal;
using namespace taskjournal::testing;

TEST(StressManyProcesses, FourProcessesTwoThreadsLoseNothingAndAgree) {
  TempDir dir("taskjournal-stress");
  const fs::path journal = dir / "stress.db";
  const StressOutcome outcome =
      run_stress({.processes = 4,
                  .threads = 2,
                  .commands = 1000,
                  .open = [&](const Options& options) { return Registry::open(journal, options); },
                  .engine = "sqlite"},
                 dir.path());
  ASSERT_TRUE(outcome.completed);
  EXPECT_TRUE(sequence_is_gap_free(journal));
  EXPECT_EQ(raw_int(journal, "SELECT count(*) FROM events"),
            static_cast<std::int64_t>(outcome.expected_events))
      << "one event per acknowledged writing call, and nothing else";
}

// Reads skip their read transaction while the wal-index header is unchanged (store/journal.cpp):
// every commit of another process, also one that follows a checkpoint that restarted the WAL,
// must still be seen by the very next read of a registry in this process.
TEST(StressReadAfterWrite, EveryCommitOfAnotherProcessIsSeenByTheNextRead) {
  TempDir dir("taskjournal-fresh");
  const fs::path journal = dir / "fresh.db";
  constexpr int kWrites = 300;
  Registry reader = Registry::open(journal);
  reader.create({.session_id = "s", .id = "t", .kind = "k"});
  Registry read_only = Registry::open(journal, {.read_only = true});
  ASSERT_TRUE(read_only.get("s", "t"));

  Pipe request, ack;
  const pid_t pid = fork_child([&] {
    request.close_write();
    ack.close_read();
    Registry writer = Registry::open(journal);
    char byte = 0;
    for (int k = 1; k <= kWrites; ++k) {
      if (!read_exact(request.read_end(), &byte, 1)) throw std::runtime_error("request pipe");
      writer.update("s", "t", {.progress = TaskProgress{.current = std::uint64_t(k)}});
      if (k % 50 == 0) {
        // Checkpoint everything and truncate the WAL: the next commit starts a new one.
        sqlite3* db = nullptr;
        sqlite3_open_v2(journal.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
        sqlite3_busy_timeout(db, 5000);
        const int rc =
            sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
        sqlite3_close(db);
        if (rc != SQLITE_OK) throw std::runtime_error("checkpoint failed");
      }
      if (!write_all(ack.write_end(), &byte, 1)) throw std::runtime_error("ack pipe");
    }
  });
  request.close_read();
  ack.close_write();
  expect_each_write_seen(reader, read_only, request, ack, kWrites);
  EXPECT_TRUE(exited_ok(wait_child(pid)));
  EXPECT_EQ(reader.last_seq(), read_only.last_seq());
}
