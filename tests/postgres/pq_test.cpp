// The PostgreSQL engine's groundwork (issue 11): the libpq wrapper (store/postgres/pq.hpp), the
// journal schema and the optimistic head-row append (store/postgres/pg_journal.hpp), against a
// real throwaway server (tests/support/pg_server.hpp).
#include "store/postgres/pq.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "store/postgres/pg_journal.hpp"
#include "store/postgres/schema.hpp"
#include "support/pg_server.hpp"
#include "taskjournal/error.hpp"

namespace taskjournal::store::postgres {
namespace {

using testing::PgServer;

// The README's chain, written out independently of store/journal.cpp: hash(n) = SHA-256(hash(n-1)
// ‖ u64le seq ‖ u32le len ‖ type ‖ u32le version ‖ i64le recorded_at ‖ u32le len ‖ session_id ‖
// u32le len ‖ task_id ‖ u32le len ‖ payload).
std::string chain_hash(std::string_view prev, std::int64_t seq, std::string_view type,
                       std::int32_t version, std::int64_t recorded_at, std::string_view session,
                       std::string_view task, std::string_view payload) {
  std::string bytes(prev);
  auto le = [&](std::uint64_t v, int width) {
    for (int i = 0; i < width; ++i) bytes += static_cast<char>((v >> (8 * i)) & 0xff);
  };
  auto sized = [&](std::string_view s) {
    le(s.size(), 4);
    bytes += s;
  };
  le(static_cast<std::uint64_t>(seq), 8);
  sized(type);
  le(static_cast<std::uint32_t>(version), 4);
  le(static_cast<std::uint64_t>(recorded_at), 8);
  sized(session);
  sized(task);
  sized(payload);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(digest), size);
}

// A row following `prev`, with a payload that has NUL and high bytes (bytea must be binary-safe).
EventRow next_row(const Head& prev, const std::string& writer) {
  EventRow r;
  r.seq = prev.seq + 1;
  r.type = "task_created";
  r.version = 1;
  r.recorded_at = 1'700'000'000'000'000 + r.seq;
  r.session_id = "session-" + writer;
  r.task_id = "task-" + std::to_string(r.seq);
  r.payload = std::string("\0\xff\x01payload-", 12) + writer + std::string(1, '\0');
  r.hash = chain_hash(prev.hash, r.seq, r.type, r.version, r.recorded_at, r.session_id, r.task_id,
                      r.payload);
  return r;
}

// Reads every event after `from`, checking numbering and chain; returns the new head. Throws
// std::runtime_error on a gap or a broken chain.
Head verify_from(PgJournal& journal, Head from, std::vector<EventRow>* rows = nullptr) {
  journal.read_after(from.seq, [&](const EventView& e) {
    // The rows' numbers as the PostgreSQL journal writes them (int8, int4).
    const auto seq = static_cast<std::int64_t>(e.seq);
    const auto version = static_cast<std::int32_t>(e.version);
    if (seq != from.seq + 1) {
      throw std::runtime_error("gap: " + std::to_string(seq) + " after " +
                               std::to_string(from.seq));
    }
    const std::string own = chain_hash(from.hash, seq, e.type, version, e.recorded_at, e.session_id,
                                       e.task_id, e.payload);
    if (own != e.hash) throw std::runtime_error("chain broken at " + std::to_string(seq));
    from = Head{seq, std::string(e.hash)};
    if (rows != nullptr) {
      rows->push_back(EventRow{seq, std::string(e.type), version, e.recorded_at,
                               std::string(e.session_id), std::string(e.task_id),
                               std::string(e.payload), std::string(e.hash)});
    }
  });
  return from;
}

// Appends one row, catching up and retrying on the optimistic conflict; returns it.
EventRow append_with_retry(PgJournal& journal, Head& known, const std::string& writer,
                           int* conflicts = nullptr) {
  for (;;) {
    EventRow row = next_row(known, writer);
    journal.begin_write(known);
    journal.append(row);
    if (journal.commit() == CommitResult::Committed) {
      known = Head{row.seq, row.hash};
      return row;
    }
    if (conflicts != nullptr) ++*conflicts;
    known = verify_from(journal, known);
  }
}

// Runs `body`, expects Error with `code`, returns its message.
std::string error_of(const std::function<void()>& body, ErrorCode code) {
  try {
    body();
  } catch (const Error& e) {
    EXPECT_EQ(to_string(e.code()), to_string(code)) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no Error(" << to_string(code) << ") thrown";
  return {};
}

// One server for the tests of this process that do not stop it; each test its own schema.
class Pg : public ::testing::Test {
 protected:
  static PgServer& server() {
    static PgServer shared;
    return shared;
  }
  // A fresh schema named after the test, and a conninfo whose search_path points at it.
  std::string fresh_schema_conninfo() {
    std::string name =
        std::string("t_") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    Connection admin(server().conninfo());
    admin.exec("DROP SCHEMA IF EXISTS " + quote_identifier(name) + " CASCADE");
    admin.exec("CREATE SCHEMA " + quote_identifier(name));
    schema_ = name;
    return server().conninfo("options='-c search_path=" + name + "'");
  }
  std::string schema_;
};

TEST_F(Pg, ServerRunsAsNonRootAndAcceptsConnections) {
  Connection conn(server().conninfo());
  Result r = conn.exec("SELECT current_user, pg_backend_pid()");
  EXPECT_EQ(r.bytes(0, 0), "tj");
  struct stat st {};
  const std::string proc = "/proc/" + std::string(r.bytes(0, 1));
  ASSERT_EQ(::stat(proc.c_str(), &st), 0) << proc;
  EXPECT_NE(st.st_uid, 0u) << "the server process runs as root";
  if (::geteuid() != 0) {
    EXPECT_EQ(st.st_uid, ::geteuid());
  }
}

TEST(PqConnection, TargetThatPointsNowhereIsStorageErrorNamingTheTarget) {
  const std::string message = error_of(
      [] {
        Connection c(
            "host=/tmp/taskjournal-no-such-dir port=5999 dbname=nowhere user=nobody "
            "password=hunter2");
      },
      ErrorCode::Storage);
  EXPECT_NE(message.find("/tmp/taskjournal-no-such-dir"), std::string::npos) << message;
  EXPECT_NE(message.find("port=5999"), std::string::npos) << message;
  EXPECT_NE(message.find("dbname=nowhere"), std::string::npos) << message;
  EXPECT_NE(message.find("user=nobody"), std::string::npos) << message;
  EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;

  const std::string uri = error_of(
      [] {
        Connection c("postgresql://nobody:hunter2@/nowhere?host=/tmp/taskjournal-no-such-dir");
      },
      ErrorCode::Storage);
  EXPECT_NE(uri.find("/tmp/taskjournal-no-such-dir"), std::string::npos) << uri;
  EXPECT_EQ(uri.find("hunter2"), std::string::npos) << uri;
}

TEST_F(Pg, SchemaIsCreatedOnFirstUseAndFoundBySecondOpen) {
  const std::string conninfo = fresh_schema_conninfo();
  Head first_head;
  {
    PgJournal first({.conninfo = conninfo});
    EXPECT_EQ(first.schema(), schema_);
    EXPECT_EQ(first.head(), Head{});
    Head known;
    append_with_retry(first, known, "a");
    first_head = first.head();
    EXPECT_EQ(first_head, known);
  }
  PgJournal second({.conninfo = conninfo, .create = false});
  EXPECT_EQ(second.head(), first_head);
  Connection admin(server().conninfo());
  Result meta = admin.exec("SELECT application_id, schema_version FROM " +
                           quote_identifier(schema_) + ".taskjournal_meta");
  ASSERT_EQ(meta.rows(), 1);
  EXPECT_EQ(meta.bytes(0, 0), std::to_string(kApplicationId));
  EXPECT_EQ(meta.bytes(0, 1), std::to_string(kSchemaVersion));
}

TEST_F(Pg, ConcurrentFirstOpensCreateOneJournal) {
  const std::string conninfo = fresh_schema_conninfo();
  std::vector<std::thread> threads;
  std::atomic<int> opened{0};
  std::mutex m;
  std::vector<std::string> errors;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      try {
        PgJournal j({.conninfo = conninfo});
        if (j.head() == Head{}) ++opened;
      } catch (const std::exception& e) {
        std::lock_guard lock(m);
        errors.push_back(e.what());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(opened, 4);
}

TEST_F(Pg, OpenWithoutCreateOnEmptySchemaIsNotFound) {
  const std::string conninfo = fresh_schema_conninfo();
  error_of([&] { PgJournal j({.conninfo = conninfo, .create = false}); }, ErrorCode::NotFound);
}

TEST_F(Pg, TablesOfAnotherApplicationAreCorrupt) {
  const std::string conninfo = fresh_schema_conninfo();
  Connection admin(conninfo);
  admin.exec("CREATE TABLE events (id serial PRIMARY KEY, name text)");
  const std::string message =
      error_of([&] { PgJournal j({.conninfo = conninfo}); }, ErrorCode::Corrupt);
  EXPECT_NE(message.find("not a taskjournal journal"), std::string::npos) << message;
  EXPECT_NE(message.find(schema_), std::string::npos) << message;
  // Nothing was created beside the foreign table.
  Result tables = admin.exec("SELECT count(*) FROM pg_tables WHERE schemaname = '" + schema_ + "'");
  EXPECT_EQ(tables.bytes(0, 0), "1");
}

TEST_F(Pg, MetaTableOfAnotherApplicationIsCorrupt) {
  const std::string conninfo = fresh_schema_conninfo();
  { PgJournal j({.conninfo = conninfo}); }
  Connection admin(conninfo);
  admin.exec("UPDATE taskjournal_meta SET application_id = 42");
  const std::string message =
      error_of([&] { PgJournal j({.conninfo = conninfo}); }, ErrorCode::Corrupt);
  EXPECT_NE(message.find("application id 42"), std::string::npos) << message;
}

TEST_F(Pg, NewerSchemaVersionIsUnsupported) {
  const std::string conninfo = fresh_schema_conninfo();
  { PgJournal j({.conninfo = conninfo}); }
  Connection admin(conninfo);
  admin.exec("UPDATE taskjournal_meta SET schema_version = " + std::to_string(kSchemaVersion + 1));
  const std::string message =
      error_of([&] { PgJournal j({.conninfo = conninfo}); }, ErrorCode::Unsupported);
  EXPECT_NE(message.find("newer"), std::string::npos) << message;
}

TEST_F(Pg, ReconnectToServerWithoutTheJournalIsNotFoundNotANewJournal) {
  const std::string conninfo = fresh_schema_conninfo();
  PgJournal j({.conninfo = conninfo});
  Head known;
  append_with_retry(j, known, "a");
  Connection admin(server().conninfo());
  admin.exec("DROP SCHEMA " + quote_identifier(schema_) + " CASCADE");
  admin.exec("CREATE SCHEMA " +
             quote_identifier(schema_));  // as after a failover to a wrong server
  admin.exec(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client "
      "backend' AND pid <> pg_backend_pid()");
  error_of([&] { j.head(); }, ErrorCode::Storage);   // the connection in use is lost
  error_of([&] { j.head(); }, ErrorCode::NotFound);  // the reconnect finds no journal
  Result tables = admin.exec("SELECT count(*) FROM pg_tables WHERE schemaname = '" + schema_ + "'");
  EXPECT_EQ(tables.bytes(0, 0), "0");
}

TEST_F(Pg, EventsAreImmutable) {
  const std::string conninfo = fresh_schema_conninfo();
  PgJournal j({.conninfo = conninfo});
  Head known;
  append_with_retry(j, known, "a");
  Connection admin(conninfo);
  for (const char* sql : {"UPDATE events SET type = 'x'", "DELETE FROM events", "TRUNCATE events",
                          "UPDATE journal_head SET seq = 0", "DELETE FROM journal_head"}) {
    error_of([&] { admin.exec(sql); }, ErrorCode::Storage);
  }
  EXPECT_EQ(verify_from(j, Head{}), known);
}

TEST_F(Pg, ConcurrentWritersAppendGapFreeChainedEvents) {
  const std::string conninfo = fresh_schema_conninfo();
  constexpr int kThreads = 4, kAppends = 200;
  std::mutex m;
  std::vector<std::string> errors;
  std::vector<EventRow> acknowledged;
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        PgJournal j({.conninfo = conninfo, .synchronous_commit = false});
        Head known;
        int mine = 0;
        for (int i = 0; i < kAppends; ++i) {
          EventRow row = append_with_retry(j, known, std::to_string(t), &mine);
          std::lock_guard lock(m);
          acknowledged.push_back(std::move(row));
        }
        conflicts += mine;
      } catch (const std::exception& e) {
        std::lock_guard lock(m);
        errors.push_back(e.what());
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(errors.empty()) << errors.front();

  PgJournal reader({.conninfo = conninfo});
  std::vector<EventRow> stored;
  const Head end = verify_from(reader, Head{}, &stored);  // gap-free 1..N, chain intact
  EXPECT_EQ(end.seq, kThreads * kAppends);
  EXPECT_EQ(reader.head(), end);
  ASSERT_EQ(acknowledged.size(), stored.size());
  for (const EventRow& a : acknowledged) {
    const EventRow& s = stored[static_cast<std::size_t>(a.seq - 1)];
    EXPECT_EQ(s.hash, a.hash) << "seq " << a.seq;
    EXPECT_EQ(s.payload, a.payload) << "seq " << a.seq;
  }
  EXPECT_GT(conflicts, 0) << "the writers never raced; the retry path went untested";
}

TEST_F(Pg, CommitOnStaleHeadIsConflictAndWritesNothing) {
  const std::string conninfo = fresh_schema_conninfo();
  PgJournal a({.conninfo = conninfo});
  PgJournal b({.conninfo = conninfo});
  Head a_known, b_known;
  append_with_retry(a, a_known, "a");

  EXPECT_TRUE(b.changed_since(b_known));
  EXPECT_FALSE(a.changed_since(a_known));
  b.begin_write(b_known);  // b decided against the empty journal
  b.append(next_row(b_known, "b"));
  EXPECT_EQ(b.commit(), CommitResult::Conflict);
  EXPECT_FALSE(b.writing());
  EXPECT_EQ(b.head(), a_known);
  EXPECT_EQ(verify_from(b, Head{}), a_known);

  b_known = verify_from(b, b_known);  // catch up, decide again
  append_with_retry(b, b_known, "b");
  EXPECT_EQ(b_known.seq, 2);
  EXPECT_EQ(verify_from(a, Head{}), b_known);
}

// Appends `count` rows after `known` in one write; returns the result and moves `known` on success.
CommitResult commit_batch(PgJournal& j, Head& known, int count, const std::string& writer) {
  j.begin_write(known);
  Head h = known;
  for (int i = 0; i < count; ++i) {
    EventRow r = next_row(h, writer);
    h = Head{r.seq, r.hash};
    j.append(std::move(r));
  }
  const CommitResult result = j.commit();
  if (result == CommitResult::Committed) known = h;
  return result;
}

TEST_F(Pg, BatchCommitsAllRowsInOneWrite) {
  const std::string conninfo = fresh_schema_conninfo();
  PgJournal j({.conninfo = conninfo});
  Head known;
  ASSERT_EQ(commit_batch(j, known, 3, "a"), CommitResult::Committed);
  ASSERT_EQ(commit_batch(j, known, 2, "a"), CommitResult::Committed);
  EXPECT_EQ(known.seq, 5);
  EXPECT_EQ(j.head(), known);
  EXPECT_EQ(verify_from(j, Head{}), known);
}

TEST_F(Pg, StaleBatchIsConflictAndWritesNothing) {
  const std::string conninfo = fresh_schema_conninfo();
  PgJournal a({.conninfo = conninfo});
  PgJournal b({.conninfo = conninfo});
  for (int ahead : {1, 3}) {  // the other writer ends below, or exactly at, the batch's last seq
    SCOPED_TRACE("other writer appended " + std::to_string(ahead));
    Head b_known = a.head();
    Head a_known = b_known;
    ASSERT_EQ(commit_batch(a, a_known, ahead, "a"), CommitResult::Committed);
    EXPECT_EQ(commit_batch(b, b_known, 3, "b"), CommitResult::Conflict);
    EXPECT_EQ(b.head(), a_known);
    EXPECT_EQ(verify_from(b, Head{}), a_known);
  }
}

TEST_F(Pg, CommitWaitingBeyondLockTimeoutIsBusyAndWritesNothing) {
  const std::string conninfo = fresh_schema_conninfo();
  PgJournal j({.conninfo = conninfo, .lock_timeout = std::chrono::milliseconds(200)});
  Connection holder(conninfo);
  holder.exec("BEGIN");
  holder.exec("SELECT seq FROM journal_head WHERE id = 1 FOR UPDATE");  // another writer's lock
  Head known;
  j.begin_write(known);
  j.append(next_row(known, "a"));
  const std::string message = error_of([&] { j.commit(); }, ErrorCode::Busy);
  EXPECT_NE(message.find("55P03"), std::string::npos) << message;
  holder.exec("ROLLBACK");
  EXPECT_EQ(j.head(), Head{});
  append_with_retry(j, known, "a");
  EXPECT_EQ(known.seq, 1);
}

TEST_F(Pg, AppendOutOfSequenceIsRejectedBeforeSending) {
  const std::string conninfo = fresh_schema_conninfo();
  PgJournal j({.conninfo = conninfo});
  Head known;
  j.begin_write(known);
  EventRow skipped = next_row(Head{5, known.hash}, "a");
  error_of([&] { j.append(skipped); }, ErrorCode::InvalidArgument);
  EventRow short_hash = next_row(known, "a");
  short_hash.hash.resize(5);
  error_of([&] { j.append(short_hash); }, ErrorCode::InvalidArgument);
  EXPECT_TRUE(j.pending().empty());
  j.rollback();
  EXPECT_EQ(j.head(), Head{});
}

TEST_F(Pg, BatchWithFailingInsertWritesNothing) {
  const std::string conninfo = fresh_schema_conninfo();
  PgJournal j({.conninfo = conninfo});
  Head known;
  append_with_retry(j, known, "a");

  j.begin_write(known);
  EventRow r2 = next_row(known, "a");
  EventRow r3 = next_row(Head{r2.seq, r2.hash}, "a");
  r3.session_id = std::string("bad\0id", 6);  // text cannot hold NUL: the server refuses row 3
  r3.hash = chain_hash(r2.hash, r3.seq, r3.type, r3.version, r3.recorded_at, r3.session_id,
                       r3.task_id, r3.payload);
  EventRow r4 = next_row(Head{r3.seq, r3.hash}, "a");
  j.append(r2);
  j.append(r3);
  j.append(r4);
  const std::string message = error_of([&] { j.commit(); }, ErrorCode::Storage);
  EXPECT_NE(message.find("SQLSTATE"), std::string::npos) << message;
  EXPECT_FALSE(j.writing());
  EXPECT_EQ(j.head(), known);
  EXPECT_EQ(verify_from(j, Head{}), known);

  append_with_retry(j, known, "a");  // the same connection writes again
  EXPECT_EQ(known.seq, 2);
}

TEST_F(Pg, PipelineWithFailingStatementRollsBackItsTransaction) {
  Connection conn(fresh_schema_conninfo());
  conn.exec("CREATE TABLE t (k int PRIMARY KEY)");
  std::vector<Result> results;
  {
    Pipeline pipe(conn);
    pipe.send("BEGIN", Params());
    pipe.send("INSERT INTO t VALUES ($1)", Params().int4(1));
    pipe.send("INSERT INTO t VALUES ($1)", Params().int4(1));  // duplicate key
    pipe.send("INSERT INTO t VALUES ($1)", Params().int4(2));
    pipe.send("COMMIT", Params());
    results = pipe.sync();
  }
  ASSERT_EQ(results.size(), 5u);
  EXPECT_TRUE(results[0].ok());
  EXPECT_TRUE(results[1].ok());
  EXPECT_EQ(Pipeline::first_failure(results), 2);
  EXPECT_EQ(results[2].sqlstate(), "23505");
  EXPECT_TRUE(results[3].aborted());
  EXPECT_TRUE(results[4].aborted());
  EXPECT_TRUE(conn.idle());
  EXPECT_EQ(conn.exec("SELECT count(*) FROM t").bytes(0, 0), "0");
}

TEST_F(Pg, BinaryParametersAndResultsRoundTrip) {
  Connection conn(server().conninfo());
  conn.prepare("echo", "SELECT $1::int8, $2::int4, $3::bytea, $4::text",
               {Oid::Int8, Oid::Int4, Oid::Bytea, Oid::Text});
  const std::string blob("\0\x01\xff\x7f", 4);
  Result r =
      conn.exec_prepared("echo", Params().int8(-1234567890123).int4(-7).bytes(blob).text("héllo"));
  EXPECT_EQ(r.int8(0, 0), -1234567890123);
  EXPECT_EQ(r.int4(0, 1), -7);
  EXPECT_EQ(r.bytes(0, 2), blob);
  EXPECT_EQ(r.bytes(0, 3), "héllo");
}

TEST_F(Pg, CopyOutReadsEveryRowInOrder) {
  Connection conn(server().conninfo());
  std::vector<std::int64_t> seen;
  const auto n = conn.copy_out(
      "COPY (SELECT g::int8, repeat('x', g)::bytea, NULL::text FROM generate_series(1, 3000) g "
      "ORDER BY g) TO STDOUT (FORMAT binary)",
      [&](const CopyRow& row) {
        seen.push_back(row.int8(0));
        EXPECT_EQ(row.bytes(1).size(), static_cast<std::size_t>(row.int8(0)));
        EXPECT_TRUE(row.is_null(2));
      });
  EXPECT_EQ(n, 3000);
  ASSERT_EQ(seen.size(), 3000u);
  for (std::size_t i = 0; i < seen.size(); ++i)
    EXPECT_EQ(seen[i], static_cast<std::int64_t>(i + 1));
}

TEST_F(Pg, CopyOutStoppedByCallbackLeavesConnectionUsable) {
  Connection conn(server().conninfo());
  EXPECT_THROW(conn.copy_out("COPY (SELECT g::int8 FROM generate_series(1, 100000) g) TO STDOUT "
                             "(FORMAT binary)",
                             [](const CopyRow& row) {
                               if (row.int8(0) == 10) throw std::runtime_error("enough");
                             }),
               std::runtime_error);
  EXPECT_TRUE(conn.usable());
  EXPECT_TRUE(conn.idle());
  EXPECT_EQ(conn.exec("SELECT 1").bytes(0, 0), "1");
}

TEST_F(Pg, CommitNotifiesListener) {
  const std::string conninfo = fresh_schema_conninfo();
  PgJournal j({.conninfo = conninfo});
  Connection listener(conninfo);
  listener.listen(j.channel());
  Head known;
  append_with_retry(j, known, "a");
  const auto n = listener.wait_notification(std::chrono::seconds(30));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->channel, j.channel());
  EXPECT_EQ(n->payload, "1");
}

// Appends from a writer thread while the server is killed with SIGKILL and restarted.
TEST(PgFaults, KilledServerFailsTheCallThenNextCallReconnectsAndNothingAcknowledgedIsLost) {
  PgServer server;
  const std::string conninfo = server.conninfo();
  std::mutex m;
  std::condition_variable cv;
  std::vector<EventRow> acknowledged;
  std::vector<std::string> errors, unexpected;
  bool restarted = false, done = false;

  std::thread writer([&] {
    try {
      std::unique_ptr<PgJournal> j;
      Head known;
      int after_restart = 0;
      while (after_restart < 50) {
        try {
          if (!j) j = std::make_unique<PgJournal>(PgJournalConfig{.conninfo = conninfo});
          known = verify_from(*j, known);  // catch up: an append in flight may have committed
          EventRow row = append_with_retry(*j, known, "w");
          std::lock_guard lock(m);
          acknowledged.push_back(std::move(row));
          if (restarted) ++after_restart;
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
    cv.wait(lock, [&] { return acknowledged.size() >= 50 || done; });
  }
  server.kill9();
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
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(errors.front().find("host=" + server.dir()), std::string::npos) << errors.front();
  PgJournal reader({.conninfo = conninfo});
  std::vector<EventRow> stored;
  const Head end = verify_from(reader, Head{}, &stored);
  EXPECT_EQ(reader.head(), end);
  ASSERT_GE(stored.size(), acknowledged.size());
  for (const EventRow& a : acknowledged) {
    ASSERT_LE(a.seq, static_cast<std::int64_t>(stored.size()));
    EXPECT_EQ(stored[static_cast<std::size_t>(a.seq - 1)].hash, a.hash) << "seq " << a.seq;
  }
}

TEST(PgFaults, ImmediateShutdownFailsTheCallClearlyAndRestartRecovers) {
  PgServer server;
  PgJournal j({.conninfo = server.conninfo()});
  Head known;
  for (int i = 0; i < 3; ++i) append_with_retry(j, known, "a");

  server.stop_immediate();
  const std::string lost = error_of([&] { j.head(); }, ErrorCode::Storage);
  EXPECT_NE(lost.find("reconnects"), std::string::npos) << lost;
  const std::string down = error_of([&] { j.head(); }, ErrorCode::Storage);
  EXPECT_NE(down.find("cannot connect"), std::string::npos) << down;

  server.start();
  EXPECT_EQ(j.head(), known);
  append_with_retry(j, known, "a");
  EXPECT_EQ(verify_from(j, Head{}), known);
  EXPECT_EQ(known.seq, 4);
}

}  // namespace
}  // namespace taskjournal::store::postgres
