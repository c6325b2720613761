// Faults of a PostgreSQL journal, done for real (issue 11, item 3): a writing client killed with
// SIGKILL, the server shut down immediately or killed mid-run and started again, a connection
// string that points nowhere, a database of another application, a schema of a newer version.
// Each through the public API; what must hold is that a call fails clearly or succeeds, and that
// nothing acknowledged is ever lost.
#include <signal.h>
#include <sys/wait.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <ostream>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "pg_schemas.hpp"
#include "store/engine.hpp"
#include "support/errors.hpp"
#include "support/pg_server.hpp"
#include "support/processes.hpp"
#include "taskjournal/taskjournal.hpp"

namespace taskjournal::testing {
namespace {

PgServer& shared_server() {
  static PgServer server;
  return server;
}

// ---- a writing client killed with SIGKILL --------------------------------------------------

// Call k of round r: even k creates task c<r>-<k/2>, odd k appends artifact a<r>-<k/2> to it.
std::string task_of(int round, int k) {
  return "c" + std::to_string(round) + "-" + std::to_string(k / 2);
}
std::string artifact_of(int round, int k) {
  return "a" + std::to_string(round) + "-" + std::to_string(k / 2);
}

TEST(PgFaults, KilledWritingClientLosesNothingAcknowledgedAndANewRegistryWritesOn) {
  const PgSchema s = fresh_schema(shared_server());
  Registry::open_postgresql(s.conninfo);  // the journal exists before the children race
  constexpr int kRounds = 3;
  std::vector<int> acked(kRounds, 0);  // calls 0 .. acked-1 of each round returned
  for (int round = 0; round < kRounds; ++round) {
    Pipe acks;
    const pid_t pid = fork_child([&] {
      acks.close_read();
      Registry r = Registry::open_postgresql(s.conninfo);
      for (std::uint32_t k = 0;; ++k) {
        if (k % 2 == 0) {
          r.create({.session_id = "s", .id = task_of(round, int(k)), .kind = "k"});
        } else {
          r.update("s", task_of(round, int(k)),
                   {.append_artifact = TaskArtifact{artifact_of(round, int(k)), "log"}});
        }
        if (!write_all(acks.write_end(), &k, sizeof k)) throw std::runtime_error("ack pipe");
      }
    });
    ASSERT_GT(pid, 0);
    acks.close_write();
    // Kill it at a different point each round, while it writes on.
    const int kill_after = 20 + 7 * round;
    std::uint32_t k = 0;
    int received = 0;
    while (received < kill_after && read_exact(acks.read_end(), &k, sizeof k)) ++received;
    ::kill(pid, SIGKILL);
    const int status = wait_child(pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the child ended by itself (status " << status << ") before round " << round
        << " killed it";
    while (read_exact(acks.read_end(), &k, sizeof k)) ++received;  // acks written before death
    ASSERT_GE(received, kill_after);
    EXPECT_EQ(k, static_cast<std::uint32_t>(received - 1)) << "acks out of order";
    acked[static_cast<std::size_t>(round)] = received;
  }

  // Every acknowledged call is stored; of each round at most the call in flight beyond them.
  Registry fresh = Registry::open_postgresql(s.conninfo);
  std::uint64_t acknowledged = 0;
  for (int round = 0; round < kRounds; ++round) {
    const int n = acked[static_cast<std::size_t>(round)];
    acknowledged += static_cast<std::uint64_t>(n);
    for (int k = 0; k < n; ++k) {
      const auto task = fresh.get("s", task_of(round, k));
      ASSERT_TRUE(task) << "acknowledged create " << task_of(round, k) << " lost";
      if (k % 2 == 1) {
        EXPECT_TRUE(has_artifact(*task, artifact_of(round, k)))
            << "acknowledged update " << artifact_of(round, k) << " lost";
      }
    }
    // The call in flight (n) may have committed; none after it was made.
    EXPECT_FALSE(fresh.get("s", task_of(round, n + 2)));
    if (n % 2 == 1) {  // n is a create
      EXPECT_FALSE(fresh.get("s", task_of(round, n + 1)));
    }
  }
  EXPECT_GE(fresh.last_seq(), acknowledged);
  EXPECT_LE(fresh.last_seq(), acknowledged + kRounds);
  EXPECT_EQ(problems_of(s.conninfo), "");

  // The killed clients left no lock behind: a new registry writes at once.
  fresh.create({.session_id = "s", .id = "after", .kind = "k"});
  fresh.update("s", "after", {.state = SessionTaskState::Succeeded});
  Registry another = Registry::open_postgresql(s.conninfo);
  EXPECT_EQ(another.get("s", "after")->state, SessionTaskState::Succeeded);
  EXPECT_EQ(problems_of(s.conninfo), "");
}

// ---- the server shut down immediately, or killed, and started again ------------------------

enum class ServerFault { StopImmediate, Kill9 };

void PrintTo(ServerFault fault, std::ostream* out) {
  *out << (fault == ServerFault::StopImmediate ? "stop_immediate" : "kill9");
}

void inflict(PgServer& server, ServerFault fault) {
  if (fault == ServerFault::StopImmediate) {
    server.stop_immediate();
  } else {
    server.kill9();
  }
  ASSERT_FALSE(server.running());
}

class PgServerFaults : public ::testing::TestWithParam<ServerFault> {};

TEST_P(PgServerFaults, CallsFailClearlyDuringTheOutageAndTheSameRegistryGoesOnAfterRestart) {
  PgServer server;
  const PgSchema s = fresh_schema(server);
  Registry r = Registry::open_postgresql(s.conninfo);
  for (int i = 0; i < 3; ++i) {
    r.create({.session_id = "s", .id = "t" + std::to_string(i), .kind = "k"});
  }
  inflict(server, GetParam());

  // The first call finds its connection gone, the next ones cannot connect; each says so and
  // names the server.
  const std::string lost =
      expect_error([&] { r.update("s", "t0", {.summary = "lost"}); }, ErrorCode::Storage);
  EXPECT_NE(lost.find("connection is lost"), std::string::npos) << lost;
  EXPECT_NE(lost.find("next call reconnects"), std::string::npos) << lost;
  EXPECT_NE(lost.find("host=" + server.dir()), std::string::npos) << lost;
  const std::string down = expect_error(
      [&] { r.create({.session_id = "s", .id = "t9", .kind = "k"}); }, ErrorCode::Storage);
  EXPECT_NE(down.find("cannot connect"), std::string::npos) << down;
  EXPECT_NE(down.find("host=" + server.dir()), std::string::npos) << down;
  EXPECT_NE(down.find("port=5432"), std::string::npos) << down;
  const std::string read = expect_error([&] { r.get("s", "t0"); }, ErrorCode::Storage);
  EXPECT_NE(read.find("cannot connect"), std::string::npos) << read;
  EXPECT_THROW_CODE(Registry::open_postgresql(s.conninfo), ErrorCode::Storage);
  EXPECT_THROW_CODE(JournalReader::open_postgresql(s.conninfo), ErrorCode::Storage);

  server.start();
  const auto after = r.update("s", "t0", {.summary = "back"});
  ASSERT_TRUE(after);
  EXPECT_EQ(after->summary, "back");
  EXPECT_EQ(r.last_seq(), 4u) << "a failed call wrote, or an acknowledged one is lost";
  EXPECT_EQ(r.list("s").size(), 3u);
  Registry fresh = Registry::open_postgresql(s.conninfo);
  EXPECT_EQ(fresh.last_seq(), 4u);
  EXPECT_EQ(fresh.get("s", "t0")->summary, "back");
  EXPECT_FALSE(fresh.get("s", "t9"));
  EXPECT_EQ(problems_of(s.conninfo), "");
}

TEST_P(PgServerFaults, FaultMidRunLosesNothingAcknowledgedAndTheWriterGoesOnAfterRestart) {
  PgServer server;
  const PgSchema s = fresh_schema(server);
  constexpr int kBefore = 40, kAfter = 40;
  std::mutex m;
  std::condition_variable cv;
  std::set<std::string> acknowledged;
  std::vector<std::string> errors, unexpected;
  int after_restart = 0;
  bool restarted = false, done = false;

  std::thread writer([&] {
    try {
      Registry r = Registry::open_postgresql(s.conninfo);
      // A call that failed is made again with the same id: create is idempotent, so a create
      // that committed although its answer was lost writes nothing the second time.
      for (int i = 0; after_restart < kAfter;) {
        const std::string id = "w" + std::to_string(i);
        try {
          r.create({.session_id = "s", .id = id, .kind = "k"});
          std::lock_guard lock(m);
          acknowledged.insert(id);
          if (restarted) ++after_restart;
          ++i;
          cv.notify_all();
        } catch (const Error& e) {
          std::unique_lock lock(m);
          if (e.code() != ErrorCode::Storage) unexpected.push_back(e.what());
          errors.push_back(e.what());
          cv.notify_all();
          cv.wait(lock, [&] { return restarted; });
        }
      }
    } catch (const std::exception& e) {
      std::lock_guard lock(m);
      unexpected.push_back(e.what());
    }
    std::lock_guard lock(m);
    done = true;
    cv.notify_all();
  });

  {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return acknowledged.size() >= kBefore || done; });
  }
  inflict(server, GetParam());
  {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return !errors.empty() || done; });
  }
  server.start();
  {
    std::lock_guard lock(m);
    restarted = true;
    cv.notify_all();
  }
  writer.join();

  ASSERT_TRUE(unexpected.empty()) << unexpected.front();
  ASSERT_FALSE(errors.empty()) << "the writer never saw the outage";
  for (const auto& e : errors) {
    EXPECT_NE(e.find("host=" + server.dir()), std::string::npos) << e;
    EXPECT_TRUE(e.find("connection is lost") != std::string::npos ||
                e.find("cannot connect") != std::string::npos ||
                e.find("connection was lost") != std::string::npos)
        << e;
  }
  Registry fresh = Registry::open_postgresql(s.conninfo);
  std::set<std::string> stored;
  for (const auto& t : fresh.list("s")) stored.insert(t.id);
  EXPECT_EQ(stored, acknowledged) << "an acknowledged create is lost, or a failed one stored";
  EXPECT_EQ(fresh.last_seq(), acknowledged.size()) << "one event per create, none twice";
  EXPECT_EQ(problems_of(s.conninfo), "");
}

INSTANTIATE_TEST_SUITE_P(Faults, PgServerFaults,
                         ::testing::Values(ServerFault::StopImmediate, ServerFault::Kill9),
                         [](const ::testing::TestParamInfo<ServerFault>& info) {
                           return info.param == ServerFault::StopImmediate ? "StopImmediate"
                                                                           : "Kill9";
                         });

// ---- a connection string that points nowhere -----------------------------------------------

// Every way to open the journal fails with Error(Storage), naming each of `parts`.
void expect_nowhere(const std::string& conninfo, const std::vector<std::string>& parts) {
  SCOPED_TRACE(conninfo);
  const std::vector<std::string> messages = {
      expect_error([&] { Registry::open_postgresql(conninfo); }, ErrorCode::Storage),
      expect_error([&] { Registry::open_postgresql(conninfo, {.read_only = true}); },
                   ErrorCode::Storage),
      expect_error([&] { JournalReader::open_postgresql(conninfo); }, ErrorCode::Storage)};
  for (const auto& message : messages) {
    EXPECT_NE(message.find("cannot connect"), std::string::npos) << message;
    for (const auto& part : parts) {
      EXPECT_NE(message.find(part), std::string::npos) << part << " missing in: " << message;
    }
    EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
  }
}

TEST(PgFaults, SocketDirectoryWithoutAServerIsStorageErrorNamingIt) {
  TempDir empty("taskjournal-no-server");
  expect_nowhere("host=" + empty.path().string() +
                     " port=5432 dbname=postgres user=tj password=hunter2 connect_timeout=2",
                 {"host=" + empty.path().string(), "port=5432", "dbname=postgres", "user=tj"});
}

TEST(PgFaults, PortWithoutAServerIsStorageErrorNamingHostAndPort) {
  expect_nowhere("host=127.0.0.1 port=1 dbname=postgres user=tj password=hunter2 connect_timeout=2",
                 {"host=127.0.0.1", "port=1"});
  expect_nowhere("postgresql://tj:hunter2@127.0.0.1:1/postgres?connect_timeout=2",
                 {"host=127.0.0.1", "port=1"});
}

TEST(PgFaults, DatabaseThatDoesNotExistIsStorageErrorNamingIt) {
  const std::string conninfo = shared_server().conninfo("dbname=no_such_database");
  const std::string message =
      expect_error([&] { Registry::open_postgresql(conninfo); }, ErrorCode::Storage);
  EXPECT_NE(message.find("no_such_database"), std::string::npos) << message;
}

// ---- a database of another application ---------------------------------------------------

// Everything the database's tables hold, as text.
std::string dump_tables(const std::string& conninfo) {
  return sql_text(conninfo,
                  "SELECT (SELECT string_agg(id || ':' || body, ',' ORDER BY id) FROM events) || "
                  "' | ' || (SELECT string_agg(id || ':' || owner, ',' ORDER BY id) FROM "
                  "journal_head) || ' | ' || (SELECT string_agg(tablename, ',' ORDER BY "
                  "tablename) FROM pg_tables WHERE schemaname = current_schema())");
}

TEST(PgFaults, DatabaseOfAnotherApplicationIsCorruptAndNothingInItChanges) {
  PgServer& server = shared_server();
  sql_run(server.conninfo(), "DROP DATABASE IF EXISTS otherapp");
  sql_run(server.conninfo(), "CREATE DATABASE otherapp");
  const std::string conninfo = server.conninfo("dbname=otherapp");  // its public schema
  sql_run(conninfo,
          "CREATE TABLE events (id serial PRIMARY KEY, body text NOT NULL);"
          "INSERT INTO events (body) VALUES ('signup'), ('login'), ('logout');"
          "CREATE TABLE journal_head (id int PRIMARY KEY, owner text);"
          "INSERT INTO journal_head VALUES (1, 'ledger')");
  const std::string before = dump_tables(conninfo);
  ASSERT_EQ(before, "1:signup,2:login,3:logout | 1:ledger | events,journal_head");

  for (const bool read_only : {false, true}) {
    const std::string message = expect_error(
        [&] { Registry::open_postgresql(conninfo, {.read_only = read_only}); }, ErrorCode::Corrupt);
    EXPECT_NE(message.find("not a taskjournal journal"), std::string::npos) << message;
    EXPECT_NE(message.find("dbname=otherapp"), std::string::npos) << message;
    EXPECT_NE(message.find("public"), std::string::npos) << message;
  }
  EXPECT_THROW_CODE(JournalReader::open_postgresql(conninfo), ErrorCode::Corrupt);
  EXPECT_EQ(dump_tables(conninfo), before);
}

TEST(PgFaults, TaskjournalMetaTableOfAnotherShapeIsCorruptAndUnchanged) {
  const PgSchema s = fresh_schema(shared_server());
  sql_run(s.conninfo,
          "CREATE TABLE taskjournal_meta (name text PRIMARY KEY);"
          "INSERT INTO taskjournal_meta VALUES ('theirs');"
          "CREATE TABLE events (id int)");
  const std::string message =
      expect_error([&] { Registry::open_postgresql(s.conninfo); }, ErrorCode::Corrupt);
  EXPECT_NE(message.find("not a taskjournal journal"), std::string::npos) << message;
  EXPECT_THROW_CODE(JournalReader::open_postgresql(s.conninfo), ErrorCode::Corrupt);
  EXPECT_EQ(sql_text(s.conninfo, "SELECT string_agg(name, ',') FROM taskjournal_meta"), "theirs");
  EXPECT_EQ(table_count(s.admin, s.name), 2);
}

// ---- a schema of a newer version ---------------------------------------------------------

TEST(PgFaults, SchemaOfANewerVersionIsUnsupportedSayingToUseANewerTaskjournal) {
  const PgSchema s = fresh_schema(shared_server());
  {
    Registry r = Registry::open_postgresql(s.conninfo);
    r.create({.session_id = "s", .id = "t", .kind = "k"});
    r.update("s", "t", {.summary = "x"});
  }
  const std::string newer = std::to_string(store::kSchemaVersion + 1);
  sql_run(s.conninfo, "UPDATE taskjournal_meta SET schema_version = " + newer);

  for (const bool read_only : {false, true}) {
    const std::string message =
        expect_error([&] { Registry::open_postgresql(s.conninfo, {.read_only = read_only}); },
                     ErrorCode::Unsupported);
    EXPECT_NE(message.find("newer taskjournal"), std::string::npos) << message;
    EXPECT_NE(message.find("version " + newer), std::string::npos) << message;
    EXPECT_NE(message.find(s.name), std::string::npos) << message;
  }
  EXPECT_THROW_CODE(JournalReader::open_postgresql(s.conninfo), ErrorCode::Unsupported);
  EXPECT_EQ(sql_int(s.conninfo, "SELECT count(*) FROM events"), 2) << "an open wrote";
  EXPECT_EQ(sql_text(s.conninfo, "SELECT schema_version FROM taskjournal_meta"), newer);
}

}  // namespace
}  // namespace taskjournal::testing
