// The PostgreSQL journal through the public API (Registry::open_postgresql,
// JournalReader::open_postgresql) and, where a failure cannot be provoked from above, through the
// engine (store/postgres/engine.hpp): the schema on first use, concurrent opens and writers,
// immutability, the write lock, NOTIFY, ids of any bytes, several journals in one database.
#include <algorithm>
#include <atomic>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "pg_schemas.hpp"
#include "store/engine.hpp"
#include "store/postgres/engine.hpp"
#include "store/postgres/pq.hpp"
#include "support/errors.hpp"
#include "support/pg_server.hpp"
#include "taskjournal/taskjournal.hpp"

namespace taskjournal::testing {
namespace {

using store::postgres::Connection;

PgServer& server() {
  static PgServer shared;
  return shared;
}

// A fresh schema on this process's server, named after the test.
PgSchema fresh(std::string_view suffix = "") { return fresh_schema(server(), suffix); }

TEST(PgJournal, SchemaIsCreatedOnFirstUseAndFoundBySecondOpen) {
  const PgSchema s = fresh();
  EXPECT_EQ(table_count(s.admin, s.name), 0);
  {
    Registry r = Registry::open_postgresql(s.conninfo);
    EXPECT_EQ(r.last_seq(), 0u);
    r.create({.session_id = "s", .id = "t1", .kind = "k"});
  }
  EXPECT_EQ(sql_text(s.conninfo,
                     "SELECT application_id || ' ' || schema_version FROM "
                     "taskjournal_meta"),
            std::to_string(store::kApplicationId) + " " +
                std::to_string(store::kNewJournalSchemaVersion));
  const auto tables = table_count(s.admin, s.name);
  EXPECT_GE(tables, 3);

  Registry again = Registry::open_postgresql(s.conninfo);
  EXPECT_EQ(again.last_seq(), 1u);
  ASSERT_TRUE(again.get("s", "t1"));
  again.create({.session_id = "s", .id = "t2", .kind = "k"});
  EXPECT_EQ(table_count(s.admin, s.name), tables) << "the second open created tables";
  auto reader = JournalReader::open_postgresql(s.conninfo);
  EXPECT_EQ(reader.newest_seq(), 2u);
  EXPECT_EQ(reader.schema_version(), store::kNewJournalSchemaVersion);  // 2 after a prune
  EXPECT_NE(reader.path().string().find(s.name), std::string::npos) << reader.path();
}

TEST(PgJournal, ConcurrentFirstOpensCreateOneJournal) {
  const PgSchema s = fresh();
  constexpr int kOpeners = 6;
  std::latch start(kOpeners);
  std::mutex m;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] {
      try {
        start.arrive_and_wait();
        Registry r = Registry::open_postgresql(s.conninfo);
        r.create({.session_id = "s", .id = "t" + std::to_string(i), .kind = "k"});
      } catch (const std::exception& e) {
        std::lock_guard lock(m);
        errors.push_back(e.what());
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(errors.empty()) << errors.size() << " opens failed, first: " << errors.front();
  EXPECT_EQ(sql_int(s.conninfo, "SELECT count(*) FROM taskjournal_meta"), 1);
  Registry fresh_registry = Registry::open_postgresql(s.conninfo);
  EXPECT_EQ(fresh_registry.list("s").size(), static_cast<std::size_t>(kOpeners));
  EXPECT_EQ(fresh_registry.last_seq(), static_cast<std::uint64_t>(kOpeners));
  EXPECT_EQ(problems_of(s.conninfo), "");
}

TEST(PgJournal, ReadOnlyOpenOfAnEmptySchemaIsReadOnlyErrorAndCreatesNothing) {
  const PgSchema s = fresh();
  const std::string message = expect_error(
      [&] { Registry::open_postgresql(s.conninfo, {.read_only = true}); }, ErrorCode::ReadOnly);
  EXPECT_NE(message.find("without read_only"), std::string::npos) << message;
  EXPECT_NE(message.find(s.name), std::string::npos) << message;
  EXPECT_THROW_CODE(JournalReader::open_postgresql(s.conninfo), ErrorCode::ReadOnly);
  EXPECT_EQ(table_count(s.admin, s.name), 0);
}

TEST(PgJournal, SearchPathWithoutAnExistingSchemaIsStorageErrorSayingToCreateOne) {
  const std::string conninfo = server().conninfo("options='-c search_path=no_such_schema'");
  const std::string message =
      expect_error([&] { Registry::open_postgresql(conninfo); }, ErrorCode::Storage);
  EXPECT_NE(message.find("CREATE SCHEMA"), std::string::npos) << message;
}

TEST(PgJournal, TableOfAnotherApplicationIsCorruptAndNothingIsCreatedBesideIt) {
  const PgSchema s = fresh();
  sql_run(s.conninfo, "CREATE TABLE events (id serial PRIMARY KEY, name text)");
  const std::string message =
      expect_error([&] { Registry::open_postgresql(s.conninfo); }, ErrorCode::Corrupt);
  EXPECT_NE(message.find("not a taskjournal journal"), std::string::npos) << message;
  EXPECT_NE(message.find(s.name), std::string::npos) << message;
  EXPECT_NE(message.find("search_path"), std::string::npos) << message;
  EXPECT_EQ(table_count(s.admin, s.name), 1);
}

TEST(PgJournal, MetaRowOfAnotherApplicationIsCorrupt) {
  const PgSchema s = fresh();
  Registry::open_postgresql(s.conninfo).create({.session_id = "s", .id = "t", .kind = "k"});
  sql_run(s.conninfo, "UPDATE taskjournal_meta SET application_id = 42");
  const std::string message =
      expect_error([&] { Registry::open_postgresql(s.conninfo); }, ErrorCode::Corrupt);
  EXPECT_THROW_CODE(JournalReader::open_postgresql(s.conninfo), ErrorCode::Corrupt);
  EXPECT_NE(message.find("application id 42"), std::string::npos) << message;
}

TEST(PgJournal, ReconnectToAServerWithoutTheJournalIsNotFoundNeverANewJournal) {
  const PgSchema s = fresh();
  Registry r = Registry::open_postgresql(s.conninfo);
  r.create({.session_id = "s", .id = "t", .kind = "k"});
  // As after a failover to a server that does not have the journal: the schema is there, empty.
  sql_run(s.admin, "DROP SCHEMA " + s.name + " CASCADE; CREATE SCHEMA " + s.name);
  sql_run(
      s.admin,
      "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE backend_type = 'client "
      "backend' AND pid <> pg_backend_pid()");
  EXPECT_THROW_CODE(r.update("s", "t", {.summary = "lost"}), ErrorCode::Storage)
      << "the connection in use is gone";
  const std::string message =
      expect_error([&] { r.update("s", "t", {.summary = "again"}); }, ErrorCode::NotFound);
  EXPECT_NE(message.find("no taskjournal journal"), std::string::npos) << message;
  EXPECT_THROW_CODE(r.get("s", "t"), ErrorCode::NotFound);
  EXPECT_EQ(table_count(s.admin, s.name), 0) << "a reconnect created a journal";
}

TEST(PgJournal, StoredEventsAndHeadCannotBeChangedOrRemoved) {
  const PgSchema s = fresh();
  Registry r = Registry::open_postgresql(s.conninfo);
  r.create({.session_id = "s", .id = "t", .kind = "k"});
  r.update("s", "t", {.summary = "x"});
  Connection admin(s.conninfo);
  for (const char* sql :
       {"UPDATE events SET type = 'x'", "UPDATE events SET payload = ''::bytea WHERE seq = 2",
        "DELETE FROM events", "DELETE FROM events WHERE seq = 2", "TRUNCATE events",
        "UPDATE journal_head SET seq = 0", "DELETE FROM journal_head", "TRUNCATE journal_head"}) {
    const std::string message = expect_error([&] { admin.exec(sql); }, ErrorCode::Storage);
    EXPECT_NE(message.find("taskjournal"), std::string::npos) << sql << ": " << message;
  }
  EXPECT_EQ(sql_int(s.conninfo, "SELECT count(*) FROM events"), 2);
  EXPECT_EQ(sql_int(s.conninfo, "SELECT seq FROM journal_head"), 2);
  EXPECT_EQ(problems_of(s.conninfo), "");
  r.update("s", "t", {.summary = "y"});
  EXPECT_EQ(r.last_seq(), 3u);
}

TEST(PgJournal, ConcurrentWritersEachWithItsOwnRegistryGiveAGapFreeChainAndLoseNoUpdate) {
  const PgSchema s = fresh();
  constexpr int kThreads = 4, kUpdates = 60, kTasks = 3;
  {
    Registry setup = Registry::open_postgresql(s.conninfo);
    for (int k = 0; k < kTasks; ++k) {
      setup.create({.session_id = "s", .id = "t" + std::to_string(k), .kind = "k"});
    }
  }
  std::latch start(kThreads);
  std::mutex m;
  std::vector<std::string> errors;
  std::map<std::string, std::multiset<std::string>> acknowledged;  // task → artifact names
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        Registry r = Registry::open_postgresql(s.conninfo, {.durability = Durability::Normal});
        start.arrive_and_wait();
        for (int i = 0; i < kUpdates; ++i) {
          const std::string task = "t" + std::to_string((t + i) % kTasks);
          const std::string name = "w" + std::to_string(t) + "-" + std::to_string(i);
          auto after = r.update("s", task, {.append_artifact = TaskArtifact{name, "log"}});
          std::lock_guard lock(m);
          if (!after || !has_artifact(*after, name)) errors.push_back("lost " + name);
          acknowledged[task].insert(name);
        }
      } catch (const std::exception& e) {
        std::lock_guard lock(m);
        errors.push_back(e.what());
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(errors.empty()) << errors.size() << " failures, first: " << errors.front();

  auto report = JournalReader::open_postgresql(s.conninfo).verify();
  EXPECT_TRUE(report.ok()) << report.problems.front().what;
  EXPECT_EQ(report.events, static_cast<std::uint64_t>(kTasks + kThreads * kUpdates));
  EXPECT_EQ(report.last_seq, report.events) << "the sequence has a gap";
  Registry fresh_registry = Registry::open_postgresql(s.conninfo, {.read_only = true});
  for (int k = 0; k < kTasks; ++k) {
    const std::string task = "t" + std::to_string(k);
    const auto stored = fresh_registry.get("s", task);
    ASSERT_TRUE(stored);
    std::multiset<std::string> names;
    for (const auto& a : stored->artifacts) names.insert(a.name);
    EXPECT_EQ(names, acknowledged[task]) << task << ": each update's artifact exactly once";
  }
}

TEST(PgJournal, EveryWriteDecidesAgainstTheOtherRegistrysNewestCommit) {
  const PgSchema s = fresh();
  Registry a = Registry::open_postgresql(s.conninfo);
  Registry b = Registry::open_postgresql(s.conninfo);
  a.create({.session_id = "s", .id = "t", .kind = "k"});
  b.update("s", "t", {.append_artifact = TaskArtifact{"from-b", "log"}});
  const auto after = a.update("s", "t", {.append_artifact = TaskArtifact{"from-a", "log"}});
  ASSERT_TRUE(after);
  EXPECT_TRUE(has_artifact(*after, "from-b")) << "a decided on a stale view";
  EXPECT_TRUE(has_artifact(*after, "from-a"));
  // Terminal is final also across registries: b's later state change is dropped.
  a.update("s", "t", {.state = SessionTaskState::Succeeded});
  const auto late = b.update("s", "t", {.state = SessionTaskState::Failed});
  ASSERT_TRUE(late);
  EXPECT_EQ(late->state, SessionTaskState::Succeeded);
  EXPECT_EQ(b.last_seq(), 5u) << "the dropped update is stored as an event too";
  EXPECT_EQ(a.last_seq(), 5u);
}

// A single call decides on the views it holds and its commit checks nobody appended meanwhile:
// answers that write nothing (a missing task, a refusal, an idempotent create) are checked the
// same way, so none rests on a view another registry's commit made stale.
TEST(PgJournal, AnswersThatWriteNothingAreNeverDecidedOnAStaleView) {
  const PgSchema s = fresh();
  Registry a = Registry::open_postgresql(s.conninfo);
  Registry b = Registry::open_postgresql(s.conninfo);
  EXPECT_FALSE(a.get("s", "t"));  // a holds session s, without t
  b.create({.session_id = "s", .id = "t", .kind = "k"});
  EXPECT_TRUE(a.update("s", "t", {.state = SessionTaskState::Running}))
      << "missing on a stale view";
  b.create({.session_id = "s", .id = "u", .kind = "k"});
  EXPECT_NO_THROW(a.record_message("s", "u", {.content = {TextPart{"hi"}}}));
  b.create({.session_id = "other", .id = "v", .kind = "k"});
  EXPECT_THROW_CODE(a.create({.session_id = "s", .id = "v", .kind = "k"}), ErrorCode::Conflict);
  b.update("s", "t", {.summary = "from b"});
  EXPECT_EQ(a.create({.session_id = "s", .id = "t", .kind = "k"}).summary, "from b")
      << "an idempotent create returned a stale task";
  b.update("s", "t", {.increment_attempt = true});
  EXPECT_NO_THROW(a.record_message("s", "t", {.content = {TextPart{"x"}}, .expected_attempt = 2}))
      << "a stale attempt fence";
  EXPECT_EQ(a.last_seq(), b.last_seq());
  EXPECT_EQ(problems_of(s.conninfo), "");
}

TEST(PgJournal, LockWaitBeyondBusyTimeoutIsBusyAndWritesNothing) {
  const PgSchema s = fresh();
  Registry r =
      Registry::open_postgresql(s.conninfo, {.busy_timeout = std::chrono::milliseconds(100)});
  r.create({.session_id = "s", .id = "t", .kind = "k"});
  Connection holder(s.conninfo);
  holder.exec("BEGIN; SELECT seq FROM journal_head WHERE id = 1 FOR UPDATE");  // another writer
  const std::string message =
      expect_error([&] { r.update("s", "t", {.summary = "waits"}); }, ErrorCode::Busy);
  EXPECT_NE(message.find("55P03"), std::string::npos) << message;
  EXPECT_THROW_CODE(r.create({.session_id = "s", .id = "u", .kind = "k"}), ErrorCode::Busy);
  holder.exec("ROLLBACK");
  EXPECT_EQ(sql_int(s.conninfo, "SELECT count(*) FROM events"), 1) << "a Busy call wrote";
  EXPECT_FALSE(r.get("s", "u"));
  EXPECT_FALSE(r.get("s", "t")->summary);
  r.update("s", "t", {.summary = "now"});
  EXPECT_EQ(r.last_seq(), 2u);
  EXPECT_EQ(problems_of(s.conninfo), "");
}

TEST(PgJournal, CommitNotifiesAListenerWithTheNewestSeq) {
  const PgSchema s = fresh();
  Registry r = Registry::open_postgresql(s.conninfo);
  Connection listener(s.conninfo);
  listener.listen(s.channel());
  r.create({.session_id = "s", .id = "t", .kind = "k"});
  auto n = listener.wait_notification(std::chrono::seconds(30));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->channel, s.channel());
  EXPECT_EQ(n->payload, "1");
  r.batch([](Batch& b) {
    b.update("s", "t", {.summary = "a"});
    b.update("s", "t", {.summary = "b"});
    b.record_message("s", "t", NewTaskMessage::outbound_text("c"));
  });
  n = listener.wait_notification(std::chrono::seconds(30));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->payload, "4") << "one notification per commit, naming its last event";
  // A call that writes nothing (a repeated create) notifies nothing.
  r.create({.session_id = "s", .id = "t", .kind = "k"});
  r.update("s", "t", {.summary = "d"});
  n = listener.wait_notification(std::chrono::seconds(30));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->payload, "5");
}

TEST(PgJournal, IdsWithArbitraryBytesRoundTrip) {
  const PgSchema s = fresh();
  const std::string session("sess\0ion", 8);  // NUL is valid UTF-8
  const std::string task = std::string("t\0", 2) + "äß\xe2\x82\xac-\xf0\x9f\x98\x80";  // €, 😀
  const std::string text = std::string("line\0two", 8) + " ü";
  std::string message_id;
  {
    Registry r = Registry::open_postgresql(s.conninfo);
    const auto created = r.create({.session_id = session, .id = task, .kind = "k\xc3\xa9"});
    EXPECT_EQ(created.id, task);
    EXPECT_EQ(created.session_id, session);
    r.update(session, task, {.summary = text});
    message_id = r.record_message(session, task, NewTaskMessage::outbound_text(text)).id;
    // Another session that differs only after the NUL byte does not see the task.
    EXPECT_FALSE(r.get(std::string("sess\0other", 10), task));
    EXPECT_FALSE(r.get("sess", task));
  }
  Registry again = Registry::open_postgresql(s.conninfo);
  const auto stored = again.get(session, task);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->id, task);
  EXPECT_EQ(stored->kind, "k\xc3\xa9");
  EXPECT_EQ(stored->summary, text);
  const auto messages = again.list_messages(session, task);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].id, message_id);
  ASSERT_EQ(again.list(session).size(), 1u);
  EXPECT_EQ(again.history(session, task).size(), 3u);
  EXPECT_EQ(sql_text(s.conninfo, "SELECT encode(task_id, 'hex') FROM events WHERE seq = 1"),
            "7400c3a4c39fe282ac2df09f9880")
      << "task_id stored as its bytes";

  auto reader = JournalReader::open_postgresql(s.conninfo);
  std::vector<std::uint64_t> seqs;
  const auto history = reader.history(task, {}, [&](const TaskHistoryStep& step) {
    EXPECT_EQ(step.event.session_id, session);
    seqs.push_back(step.event.seq);
  });
  EXPECT_TRUE(history.found);
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(problems_of(s.conninfo), "");
}

TEST(PgJournal, ExclusiveIsInvalidArgumentSayingItIsASqliteMode) {
  const PgSchema s = fresh();
  const std::string message =
      expect_error([&] { Registry::open_postgresql(s.conninfo, {.exclusive = true}); },
                   ErrorCode::InvalidArgument);
  EXPECT_NE(message.find("SQLite"), std::string::npos) << message;
  EXPECT_EQ(table_count(s.admin, s.name), 0);
}

TEST(PgJournal, NegativeBusyTimeoutIsInvalidArgument) {
  const PgSchema s = fresh();
  EXPECT_THROW_CODE(
      Registry::open_postgresql(s.conninfo, {.busy_timeout = std::chrono::milliseconds(-1)}),
      ErrorCode::InvalidArgument);
}

TEST(PgJournal, JournalsInDifferentSchemasOfOneDatabaseStayIndependent) {
  const PgSchema one = fresh("one");
  const PgSchema two = fresh("two");
  Registry a = Registry::open_postgresql(one.conninfo);
  Registry b = Registry::open_postgresql(two.conninfo);
  Connection listener(one.admin);
  listener.listen(one.channel());
  listener.listen(two.channel());
  a.create({.session_id = "s", .id = "only-in-one", .kind = "k"});
  b.create({.session_id = "s", .id = "only-in-two", .kind = "k"});
  b.create({.session_id = "s", .id = "also-in-two", .kind = "k"});
  // The same task id in both: no conflict, they are different journals.
  a.create({.session_id = "other", .id = "also-in-two", .kind = "k"});

  EXPECT_EQ(a.last_seq(), 2u);
  EXPECT_EQ(b.last_seq(), 2u);
  EXPECT_FALSE(a.get("s", "only-in-two"));
  EXPECT_FALSE(b.get("s", "only-in-one"));
  EXPECT_TRUE(b.get("s", "also-in-two"));
  EXPECT_TRUE(a.get("other", "also-in-two"));
  std::multiset<std::string> channels;
  for (int i = 0; i < 4; ++i) {
    auto n = listener.wait_notification(std::chrono::seconds(30));
    ASSERT_TRUE(n.has_value());
    channels.insert(n->channel);
  }
  EXPECT_EQ(channels.count(one.channel()), 2u);
  EXPECT_EQ(channels.count(two.channel()), 2u);
  EXPECT_EQ(problems_of(one.conninfo), "");
  EXPECT_EQ(problems_of(two.conninfo), "");
  EXPECT_NE(JournalReader::open_postgresql(one.conninfo).digest(),
            JournalReader::open_postgresql(two.conninfo).digest());
}

TEST(PgJournal, ReadOnlyRegistrySeesOtherWritesAndRefusesItsOwn) {
  const PgSchema s = fresh();
  Registry writer = Registry::open_postgresql(s.conninfo);
  writer.create({.session_id = "s", .id = "t", .kind = "k"});
  Registry reader = Registry::open_postgresql(s.conninfo, {.read_only = true});
  EXPECT_THROW_CODE(reader.update("s", "t", {.summary = "no"}), ErrorCode::ReadOnly);
  EXPECT_THROW_CODE(reader.create({.session_id = "s", .id = "u", .kind = "k"}),
                    ErrorCode::ReadOnly);
  EXPECT_THROW_CODE(reader.checkpoint(), ErrorCode::ReadOnly);
  writer.update("s", "t", {.summary = "yes"});
  const auto seen = reader.get("s", "t");
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->summary, "yes") << "a read missed a commit made before it began";
  EXPECT_EQ(sql_int(s.conninfo, "SELECT count(*) FROM events"), 2);
}

TEST(PgJournal, ConnectionStringPasswordNeverAppearsInNamesOrMessages) {
  const PgSchema s = fresh();
  const std::string conninfo = s.conninfo + " password=hunter2";  // trust: accepted, unused
  Registry r = Registry::open_postgresql(conninfo);
  r.create({.session_id = "s", .id = "t", .kind = "k"});
  auto reader = JournalReader::open_postgresql(conninfo);
  EXPECT_EQ(reader.path().string().find("hunter2"), std::string::npos) << reader.path();
  const std::string message = error_text([&] {
    Registry ro = Registry::open_postgresql(conninfo, {.read_only = true});
    ro.update("s", "t", {.summary = "x"});
  });
  EXPECT_FALSE(message.empty());
  EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
}

// ---- the engine itself, for failures the registry cannot provoke -------------------------------

std::unique_ptr<store::Engine> open_engine(const std::string& conninfo) {
  return store::postgres::open(
      store::EngineConfig{.kind = store::EngineKind::Postgresql, .location = conninfo});
}

// A row after `seq` with a well-formed (not chained: the engine checks nothing) 32-byte hash.
struct OwnedRow {
  std::string type = "task_created", session = "s", task, payload, hash;
  std::uint64_t seq = 0;
  store::EventRow row() const {
    return {.seq = seq,
            .type = type,
            .version = 1,
            .recorded_at = 1'700'000'000'000'000,
            .session_id = session,
            .task_id = task,
            .payload = payload,
            .hash = hash};
  }
};
OwnedRow row_at(std::uint64_t seq) {
  OwnedRow r;
  r.seq = seq;
  r.task = "t" + std::to_string(seq);
  r.payload = std::string("\0\xffpayload", 9);
  r.hash = std::string(32, static_cast<char>(seq));
  return r;
}

std::vector<std::uint64_t> stored_seqs(store::Engine& engine) {
  std::vector<std::uint64_t> out;
  engine.scan(0, [&](const store::EventRow& r) {
    out.push_back(r.seq);
    return true;
  });
  return out;
}

TEST(PgEngine, CommitWithARowTheServerRefusesWritesNothingAndTheEngineWritesOn) {
  const PgSchema s = fresh();
  auto engine = open_engine(s.conninfo);
  engine->begin_write();
  engine->append(row_at(1).row());
  engine->commit();

  engine->begin_write();
  OwnedRow bad = row_at(3);
  bad.hash.resize(5);  // CHECK (octet_length(hash) = 32) refuses the second row of the batch
  const OwnedRow good2 = row_at(2), good4 = row_at(4);
  engine->append(good2.row());
  engine->append(bad.row());
  engine->append(good4.row());
  const std::string message = expect_error([&] { engine->commit(); }, ErrorCode::Storage);
  EXPECT_NE(message.find("SQLSTATE 23514"), std::string::npos) << message;
  EXPECT_EQ(stored_seqs(*engine), (std::vector<std::uint64_t>{1}));
  EXPECT_EQ(sql_int(s.conninfo, "SELECT seq FROM journal_head"), 1);

  engine->begin_write();  // the same connection writes again
  engine->append(row_at(2).row());
  engine->commit();
  EXPECT_EQ(stored_seqs(*engine), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(engine->newest_seq(), 2u);
  EXPECT_EQ(engine->stored_hash(2), row_at(2).hash);
}

TEST(PgEngine, RolledBackWriteLeavesNothingAndReleasesTheLock) {
  const PgSchema s = fresh();
  auto a = open_engine(s.conninfo);
  auto b = open_engine(s.conninfo);
  a->begin_write();
  a->append(row_at(1).row());
  a->rollback();
  b->begin_write();  // would wait for a's lock if rollback had kept it
  b->append(row_at(1).row());
  b->commit();
  EXPECT_TRUE(a->changed_by_others());
  EXPECT_EQ(stored_seqs(*a), (std::vector<std::uint64_t>{1}));
}

TEST(PgEngine, AppendOrCommitWithoutAWriteIsStorageError) {
  const PgSchema s = fresh();
  auto engine = open_engine(s.conninfo);
  EXPECT_THROW_CODE(engine->append(row_at(1).row()), ErrorCode::Storage);
  EXPECT_THROW_CODE(engine->commit(), ErrorCode::Storage);
  engine->begin_write();
  EXPECT_THROW_CODE(engine->begin_write(), ErrorCode::Storage);
  engine->rollback();
  EXPECT_EQ(engine->newest_seq(), 0u);
}

}  // namespace
}  // namespace taskjournal::testing
