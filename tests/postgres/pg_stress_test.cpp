// Multi-host semantics on PostgreSQL (issue 11, item 3): 4 processes × 2 threads against one
// server, each process as if on a host of its own (no shared memory, no shared file, only the
// server). The workload and the checks of what the public API shows are the SQLite stress test's
// (tests/support/stress_workload.hpp); here the journal is checked too: gap-free, chained, and
// exactly one event per acknowledged writing call.
#include <cstdint>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "pg_schemas.hpp"
#include "support/pg_server.hpp"
#include "support/processes.hpp"
#include "support/stress_workload.hpp"
#include "taskjournal/taskjournal.hpp"

namespace taskjournal::testing {
namespace {

TEST(PgStressManyProcesses, FourProcessesTwoThreadsLoseNothingAndAgree) {
  PgServer server;
  const PgSchema s = fresh_schema(server);
  TempDir dir("taskjournal-pg-stress");
  // As many commands as on SQLite (tests/stress_test.cpp).
  const StressOutcome outcome = run_stress(
      {.processes = 4,
       .threads = 2,
       .commands = 1000,
       .open =
           [&](const Options& options) { return Registry::open_postgresql(s.conninfo, options); },
       .engine = "postgresql"},
      dir.path());
  ASSERT_TRUE(outcome.completed);

  const auto expected = static_cast<std::int64_t>(outcome.expected_events);
  EXPECT_EQ(sql_int(s.conninfo, "SELECT count(*) FROM events"), expected)
      << "one event per acknowledged writing call, and nothing else";
  EXPECT_EQ(sql_int(s.conninfo, "SELECT coalesce(max(seq), 0) FROM events"), expected)
      << "the sequence has a gap";
  EXPECT_EQ(sql_int(s.conninfo, "SELECT seq FROM journal_head"), expected);
  auto report = JournalReader::open_postgresql(s.conninfo).verify();
  EXPECT_TRUE(report.ok()) << report.problems.front().what;
  EXPECT_EQ(report.events, outcome.expected_events);
  EXPECT_EQ(report.last_seq, outcome.expected_events);
  EXPECT_EQ(report.comparison_skipped, "");
}

// Every read sees every write committed by another process before it began: the next read after
// each acknowledged write of a child shows it, in a writing and in a read-only registry.
TEST(PgStressReadAfterWrite, EveryCommitOfAnotherProcessIsSeenByTheNextRead) {
  PgServer server;
  const PgSchema s = fresh_schema(server);
  constexpr int kWrites = 200;
  Registry reader = Registry::open_postgresql(s.conninfo);
  reader.create({.session_id = "s", .id = "t", .kind = "k"});
  Registry read_only = Registry::open_postgresql(s.conninfo, {.read_only = true});
  ASSERT_TRUE(read_only.get("s", "t"));

  Pipe request, ack;
  const pid_t pid = fork_child([&] {
    request.close_write();
    ack.close_read();
    Registry writer = Registry::open_postgresql(s.conninfo);
    char byte = 0;
    for (int k = 1; k <= kWrites; ++k) {
      if (!read_exact(request.read_end(), &byte, 1)) throw std::runtime_error("request pipe");
      writer.update("s", "t", {.progress = TaskProgress{.current = std::uint64_t(k)}});
      if (!write_all(ack.write_end(), &byte, 1)) throw std::runtime_error("ack pipe");
    }
  });
  request.close_read();
  ack.close_write();
  expect_each_write_seen(reader, read_only, request, ack, kWrites);
  EXPECT_TRUE(exited_ok(wait_child(pid)));
  EXPECT_EQ(reader.last_seq(), read_only.last_seq());
  EXPECT_EQ(reader.last_seq(), static_cast<std::uint64_t>(1 + kWrites + kWrites / 7));
}

}  // namespace
}  // namespace taskjournal::testing
