// The libpq wrapper of the PostgreSQL engine (store/postgres/pq.hpp) against a real throwaway
// server (tests/support/pg_server.hpp): connections and how their failures are named and mapped
// to error codes, binary parameters and results, pipelines, binary COPY and LISTEN/NOTIFY.
#include "store/postgres/pq.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "pg_schemas.hpp"
#include "store/postgres/schema.hpp"
#include "support/errors.hpp"
#include "support/pg_server.hpp"
#include "taskjournal/error.hpp"

namespace taskjournal::store::postgres {
namespace {

using testing::expect_error;
using testing::PgServer;

// One server for every test of this process.
PgServer& server() {
  static PgServer shared;
  return shared;
}

TEST(PqServer, RunsAsNonRootAndAcceptsConnections) {
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
  EXPECT_EQ(conn.backend_pid(), std::stoi(std::string(r.bytes(0, 1))));
}

TEST(PqConnection, TargetThatPointsNowhereIsStorageErrorNamingTheTargetButNotThePassword) {
  const std::string message = expect_error(
      [] {
        Connection c(
            "host=/tmp/taskjournal-no-such-dir port=5999 dbname=nowhere user=nobody "
            "password=hunter2");
      },
      ErrorCode::Storage);
  for (const char* part : {"host=/tmp/taskjournal-no-such-dir", "port=5999", "dbname=nowhere",
                           "user=nobody", "cannot connect"}) {
    EXPECT_NE(message.find(part), std::string::npos) << part << " missing in: " << message;
  }
  EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;

  const std::string uri = expect_error(
      [] {
        Connection c("postgresql://nobody:hunter2@/nowhere?host=/tmp/taskjournal-no-such-dir");
      },
      ErrorCode::Storage);
  EXPECT_NE(uri.find("/tmp/taskjournal-no-such-dir"), std::string::npos) << uri;
  EXPECT_EQ(uri.find("hunter2"), std::string::npos) << uri;
}

TEST(PqConnection, MalformedConnectionStringIsStorageErrorThatDoesNotQuoteThePassword) {
  const std::string message = expect_error(
      [] { Connection c("host=/tmp password=hunter2 bogus_option=1"); }, ErrorCode::Storage);
  EXPECT_NE(message.find("bogus_option"), std::string::npos) << message;
  EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
}

TEST(PqConnection, SqlErrorIsStorageWithSqlstateAndLeavesTheConnectionUsable) {
  Connection conn(server().conninfo());
  const std::string message =
      expect_error([&] { conn.exec("SELECT * FROM no_such_table"); }, ErrorCode::Storage);
  EXPECT_NE(message.find("SQLSTATE 42P01"), std::string::npos) << message;
  EXPECT_NE(message.find("host=" + server().dir()), std::string::npos) << message;
  EXPECT_TRUE(conn.usable());
  EXPECT_EQ(conn.exec("SELECT 1").bytes(0, 0), "1");
}

TEST(PqConnection, LockTimeoutIsBusy) {
  Connection holder(server().conninfo());
  Connection waiter(server().conninfo());
  holder.exec("CREATE TABLE IF NOT EXISTS locked (k int)");
  holder.exec("BEGIN; LOCK TABLE locked IN ACCESS EXCLUSIVE MODE");
  waiter.exec("SET lock_timeout = 50");
  const std::string message =
      expect_error([&] { waiter.exec("SELECT * FROM locked"); }, ErrorCode::Busy);
  EXPECT_NE(message.find("55P03"), std::string::npos) << message;
  EXPECT_NE(message.find("retry"), std::string::npos) << message;
  holder.exec("ROLLBACK");
  EXPECT_TRUE(waiter.usable());
}

TEST(PqConnection, StatementTimeoutIsBusy) {
  Connection conn(server().conninfo());
  conn.exec("SET statement_timeout = 1");
  const std::string message =
      expect_error([&] { conn.exec("SELECT pg_sleep(30)"); }, ErrorCode::Busy);
  EXPECT_NE(message.find("57014"), std::string::npos) << message;
}

TEST(PqConnection, WriteInReadOnlyTransactionIsReadOnly) {
  Connection conn(server().conninfo());
  conn.exec("SET default_transaction_read_only = on");
  const std::string message =
      expect_error([&] { conn.exec("CREATE TABLE refused (k int)"); }, ErrorCode::ReadOnly);
  EXPECT_NE(message.find("25006"), std::string::npos) << message;
}

TEST(PqConnection, TerminatedBackendIsStorageErrorSayingTheConnectionIsLost) {
  Connection victim(server().conninfo());
  Connection admin(server().conninfo());
  admin.exec_params("SELECT pg_terminate_backend($1, 10000)", Params().int4(victim.backend_pid()));
  const std::string message = expect_error([&] { victim.exec("SELECT 1"); }, ErrorCode::Storage);
  EXPECT_NE(message.find("connection is lost"), std::string::npos) << message;
  EXPECT_NE(message.find("next call reconnects"), std::string::npos) << message;
  EXPECT_FALSE(victim.usable());
  // A second call on the broken connection fails the same way instead of hanging.
  EXPECT_THROW_CODE(victim.exec("SELECT 1"), ErrorCode::Storage);
}

TEST(PqParams, BinaryParametersAndResultsRoundTrip) {
  Connection conn(server().conninfo());
  conn.prepare("echo", "SELECT $1::int8, $2::int4, $3::bytea, $4::text, $5::bytea, $6::bytea",
               {Oid::Int8, Oid::Int4, Oid::Bytea, Oid::Text, Oid::Bytea, Oid::Bytea});
  const std::string blob("\0\x01\xff\x7f", 4);
  Result r = conn.exec_prepared(
      "echo",
      Params().int8(-1234567890123).int4(-7).bytes(blob).text("héllo").bytes("").null(Oid::Bytea));
  EXPECT_EQ(r.int8(0, 0), -1234567890123);
  EXPECT_EQ(r.int4(0, 1), -7);
  EXPECT_EQ(r.bytes(0, 2), blob);
  EXPECT_EQ(r.bytes(0, 3), "héllo");
  EXPECT_FALSE(r.is_null(0, 4)) << "an empty value must not be sent as NULL";
  EXPECT_EQ(r.bytes(0, 4), "");
  EXPECT_TRUE(r.is_null(0, 5));
}

TEST(PqResult, ReadingAColumnOfTheWrongWidthIsCorrupt) {
  Connection conn(server().conninfo());
  Result r = conn.exec_params("SELECT 1::int4, 2::int8", Params());
  EXPECT_THROW_CODE(r.int8(0, 0), ErrorCode::Corrupt);
  EXPECT_THROW_CODE(r.int4(0, 1), ErrorCode::Corrupt);
}

TEST(PqPipeline, FailingStatementRollsBackItsTransactionAndLeavesTheConnectionIdle) {
  Connection conn(server().conninfo());
  conn.exec("DROP TABLE IF EXISTS piped; CREATE TABLE piped (k int PRIMARY KEY)");
  std::vector<Result> results;
  {
    Pipeline pipe(conn);
    pipe.send("BEGIN", Params());
    pipe.send("INSERT INTO piped VALUES ($1)", Params().int4(1));
    pipe.send("INSERT INTO piped VALUES ($1)", Params().int4(1));  // duplicate key
    pipe.send("INSERT INTO piped VALUES ($1)", Params().int4(2));
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
  EXPECT_EQ(conn.exec("SELECT count(*) FROM piped").bytes(0, 0), "0");
}

TEST(PqPipeline, SuccessfulPipelineCommitsEveryStatementInOrder) {
  Connection conn(server().conninfo());
  conn.exec("DROP TABLE IF EXISTS piped_ok; CREATE TABLE piped_ok (k int PRIMARY KEY)");
  conn.prepare("piped_insert", "INSERT INTO piped_ok VALUES ($1) RETURNING k", {Oid::Int4});
  std::vector<Result> results;
  {
    Pipeline pipe(conn);
    pipe.send("BEGIN", Params());
    std::vector<Params> params(3);  // alive until sync()
    for (int i = 0; i < 3; ++i) pipe.send_prepared("piped_insert", params[i].int4(10 + i));
    pipe.send("COMMIT", Params());
    results = pipe.sync();
  }
  ASSERT_EQ(results.size(), 5u);
  EXPECT_EQ(Pipeline::first_failure(results), -1);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(results[1 + i].int4(0, 0), 10 + i);
  EXPECT_TRUE(conn.idle());
  EXPECT_EQ(conn.exec("SELECT string_agg(k::text, ',' ORDER BY k) FROM piped_ok").bytes(0, 0),
            "10,11,12");
}

TEST(PqCopyOut, ReadsEveryRowInOrder) {
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
  for (std::size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i], static_cast<std::int64_t>(i + 1));
  }
}

TEST(PqCopyOut, OfNoRowsCallsNothing) {
  Connection conn(server().conninfo());
  int calls = 0;
  EXPECT_EQ(conn.copy_out("COPY (SELECT 1::int8 WHERE false) TO STDOUT (FORMAT binary)",
                          [&](const CopyRow&) { ++calls; }),
            0);
  EXPECT_EQ(calls, 0);
  EXPECT_TRUE(conn.idle());
}

TEST(PqCopyOut, StoppedByCallbackLeavesConnectionUsable) {
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

TEST(PqCopyOut, FailingCopyIsStorageErrorAndLeavesConnectionUsable) {
  Connection conn(server().conninfo());
  const std::string message = expect_error(
      [&] {
        conn.copy_out(
            "COPY (SELECT 1 / (g - 3) FROM generate_series(1, 5) g) TO STDOUT "
            "(FORMAT binary)",
            [](const CopyRow&) {});
      },
      ErrorCode::Storage);
  EXPECT_NE(message.find("22012"), std::string::npos) << message;  // division by zero
  EXPECT_TRUE(conn.usable());
  EXPECT_EQ(conn.exec("SELECT 2").bytes(0, 0), "2");
}

TEST(PqNotify, ListenerReceivesChannelPayloadAndSender) {
  Connection listener(server().conninfo());
  Connection sender(server().conninfo());
  listener.listen("Mixed Case-channel");
  EXPECT_FALSE(listener.wait_notification(std::chrono::milliseconds(0)).has_value());
  sender.exec_params("SELECT pg_notify($1, $2)", Params().text("Mixed Case-channel").text("42"));
  const auto n = listener.wait_notification(std::chrono::seconds(30));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->channel, "Mixed Case-channel");
  EXPECT_EQ(n->payload, "42");
  EXPECT_EQ(n->backend_pid, sender.backend_pid());
}

TEST(PqNotify, NotificationOfARolledBackTransactionIsNeverDelivered) {
  Connection listener(server().conninfo());
  Connection sender(server().conninfo());
  listener.listen("rolled_back");
  sender.exec("BEGIN; SELECT pg_notify('rolled_back', 'no'); ROLLBACK");
  sender.exec("SELECT pg_notify('rolled_back', 'yes')");
  const auto n = listener.wait_notification(std::chrono::seconds(30));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->payload, "yes");
}

TEST(PqNotify, WaitOnALostConnectionIsStorageError) {
  Connection listener(server().conninfo());
  listener.listen("lost");
  Connection admin(server().conninfo());
  admin.exec_params("SELECT pg_terminate_backend($1, 10000)",
                    Params().int4(listener.backend_pid()));
  EXPECT_THROW_CODE(listener.wait_notification(std::chrono::seconds(30)), ErrorCode::Storage);
}

TEST(PqSchema, QuoteIdentifierDoublesQuotes) {
  EXPECT_EQ(quote_identifier("plain"), "\"plain\"");
  EXPECT_EQ(quote_identifier("a\"b"), "\"a\"\"b\"");
  Connection conn(server().conninfo());
  const std::string odd = "we\"ird schema";
  conn.exec("CREATE SCHEMA IF NOT EXISTS " + quote_identifier(odd));
  Result r = conn.exec_params("SELECT count(*)::int8 FROM pg_namespace WHERE nspname = $1",
                              Params().text(odd));
  EXPECT_EQ(r.int8(0, 0), 1);
}

}  // namespace
}  // namespace taskjournal::store::postgres
