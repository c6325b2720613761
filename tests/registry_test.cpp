// Acceptance tests of the registry operations (CONTRACT §4) and the journal behaviour (§7),
// through the public API only, with a FakeClock.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/errors.hpp"
#include "support/journals.hpp"
#include "support/processes.hpp"
#include "support/temp_dir.hpp"
#include "taskjournal/taskjournal.hpp"
#include "tests/support/fake_clock.hpp"

namespace {

using namespace std::chrono_literals;
using taskjournal::CreateSessionTask;
using taskjournal::DataPart;
using taskjournal::Error;
using taskjournal::ErrorCode;
using taskjournal::JournalEntry;
using taskjournal::NewTaskMessage;
using taskjournal::Options;
using taskjournal::Registry;
using taskjournal::SessionTask;
using taskjournal::SessionTaskFilter;
using taskjournal::SessionTaskState;
using taskjournal::SessionTaskUpdate;
using taskjournal::TaskArtifact;
using taskjournal::TaskError;
using taskjournal::TaskInputRequest;
using taskjournal::TaskLinks;
using taskjournal::TaskMessage;
using taskjournal::TaskMessageDirection;
using taskjournal::TaskProgress;
using taskjournal::TaskWakePolicy;
using taskjournal::TextPart;
using taskjournal::Timestamp;
using taskjournal::testing::error_code;
using taskjournal::testing::error_text;
using taskjournal::testing::FakeClock;
using taskjournal::testing::fresh_journal;
using taskjournal::testing::ids_of;
using taskjournal::testing::journal_at;
using taskjournal::testing::open_reader;
using taskjournal::testing::open_registry;
using taskjournal::testing::TempDir;
using taskjournal::testing::types_of;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// An in-memory registry driven by a FakeClock.
struct Env {
  FakeClock clock;
  Registry reg;
  Env() : reg(open_registry(fresh_journal(), Options{.clock = clock.fn()})) {}
};

CreateSessionTask input(std::string session, std::optional<std::string> id,
                        std::string kind = "subagent",
                        SessionTaskState state = SessionTaskState::Queued) {
  return CreateSessionTask{.session_id = std::move(session),
                           .id = std::move(id),
                           .kind = std::move(kind),
                           .display_name = "Worker",
                           .spec = R"({"goal":"test"})",
                           .state = state};
}

/// True if `id` is `prefix` + a UUIDv7 in simple form (version nibble 7, variant 10xx).
bool is_uuidv7_id(const std::string& id, const std::string& prefix) {
  const std::regex form("^" + prefix + "[0-9a-f]{32}$");
  if (!std::regex_match(id, form)) return false;
  const std::string hex = id.substr(prefix.size());
  return hex[12] == '7' && std::string("89ab").find(hex[16]) != std::string::npos;
}

/// The 12 hex digits of a UUIDv7's time field for `t` (Unix milliseconds).
std::string uuidv7_time_hex(Timestamp t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  char buf[32];
  std::snprintf(buf, sizeof buf, "%012" PRIx64, static_cast<std::uint64_t>(ms.count()));
  return buf;
}

// ---------------------------------------------------------------------------------------------
// create
// ---------------------------------------------------------------------------------------------

TEST(RegistryCreate, GeneratedIdIsTaskPrefixAndUuidV7SimpleForm) {
  Env env;
  const SessionTask task = env.reg.create(input("sess_1", std::nullopt));
  EXPECT_TRUE(is_uuidv7_id(task.id, "task_")) << task.id;
}

TEST(RegistryCreate, GeneratedIdTimePartComesFromTheClock) {
  Env env;
  const SessionTask task = env.reg.create(input("sess_1", std::nullopt));
  ASSERT_TRUE(is_uuidv7_id(task.id, "task_")) << task.id;
  EXPECT_EQ(task.id.substr(5, 12), uuidv7_time_hex(env.clock.now())) << task.id;
}

TEST(RegistryCreate, GeneratedIdsAreUniqueAtTheSameInstant) {
  Env env;
  std::set<std::string> ids;
  for (int i = 0; i < 200; ++i) ids.insert(env.reg.create(input("sess_1", std::nullopt)).id);
  EXPECT_EQ(ids.size(), 200u);
}

TEST(RegistryCreate, NewTaskIsTheLifecycleRecordAtClockTime) {
  Env env;
  env.clock.advance(5s);
  CreateSessionTask in = input("sess_1", std::nullopt, "subagent", SessionTaskState::Running);
  in.links = TaskLinks{.child_session_id = "child", .remote_task_id = "r", .resource_ids = {"x"}};
  in.wake_policy = TaskWakePolicy::OnActivity;
  const SessionTask task = env.reg.create(in);
  in.id = task.id;
  EXPECT_EQ(task, taskjournal::new_session_task(in, env.clock.now()));
  EXPECT_EQ(env.reg.get("sess_1", task.id), task);
}

TEST(RegistryCreate, SuppliedIdIsUsedVerbatim) {
  Env env;
  const std::string id = "My-Task_ü 1";
  const SessionTask task = env.reg.create(input("sess_1", id));
  EXPECT_EQ(task.id, id);
  EXPECT_EQ(task, taskjournal::new_session_task(input("sess_1", id), env.clock.now()));
  EXPECT_EQ(env.reg.get("sess_1", id), task);
}

TEST(RegistryCreate, IdOf256BytesIsAccepted) {
  Env env;
  const std::string id(256, 'a');
  EXPECT_EQ(env.reg.create(input("sess_1", id)).id, id);
  EXPECT_TRUE(env.reg.get("sess_1", id).has_value());
}

TEST(RegistryCreate, IdLimitCountsBytesNotCharacters) {
  Env env;
  std::string ok, too_long;
  for (int i = 0; i < 128; ++i) ok += "\xc3\xbc";           // 128 x "ü" = 256 bytes
  for (int i = 0; i < 86; ++i) too_long += "\xe2\x82\xac";  // 86 x "€" = 258 bytes
  EXPECT_EQ(env.reg.create(input("sess_1", ok)).id, ok);
  const auto seq = env.reg.last_seq();
  EXPECT_EQ(error_code([&] { env.reg.create(input("sess_1", too_long)); }),
            ErrorCode::InvalidArgument);
  EXPECT_EQ(env.reg.last_seq(), seq);
}

TEST(RegistryCreate, EmptyDisplayNameAndEmptyOptionalStringsAreAccepted) {
  Env env;
  CreateSessionTask in = input("sess_1", "task_1");
  in.display_name = "";
  const SessionTask t = env.reg.create(in);
  EXPECT_EQ(t.display_name, "");
  const auto u = env.reg.update(
      "sess_1", "task_1", SessionTaskUpdate{.state_detail = "", .summary = "", .worker_id = ""});
  ASSERT_TRUE(u);
  EXPECT_EQ(u->state_detail, "");
  EXPECT_EQ(u->summary, "");
  EXPECT_EQ(u->worker_id, "");
}

TEST(RegistryCreate, IdempotentCreateReturnsStoredTaskUnchangedAndWritesNothing) {
  Env env;
  env.reg.create(input("sess_1", "task_1"));
  env.clock.advance(1s);
  const auto updated =
      env.reg.update("sess_1", "task_1", SessionTaskUpdate{.state = SessionTaskState::Running});
  ASSERT_TRUE(updated);
  const auto history_before = env.reg.history("sess_1", "task_1");
  const auto seq_before = env.reg.last_seq();

  env.clock.advance(1s);
  CreateSessionTask again = input("sess_1", "task_1", "other_kind", SessionTaskState::Succeeded);
  again.display_name = "Other";
  again.spec = R"({"goal":"other"})";
  again.wake_policy = TaskWakePolicy::OnActivity;
  const SessionTask result = env.reg.create(again);

  EXPECT_EQ(result, *updated);
  EXPECT_EQ(env.reg.get("sess_1", "task_1"), updated);
  EXPECT_EQ(env.reg.history("sess_1", "task_1"), history_before);
  EXPECT_EQ(env.reg.last_seq(), seq_before);
  EXPECT_EQ(env.reg.list("sess_1").size(), 1u);
}

TEST(RegistryCreate, SameIdInAnotherSessionIsConflictAndWritesNothing) {
  Env env;
  const SessionTask original = env.reg.create(input("sess_a", "shared_id"));
  const auto seq_before = env.reg.last_seq();
  env.clock.advance(1s);

  EXPECT_EQ(error_code([&] { env.reg.create(input("sess_b", "shared_id")); }), ErrorCode::Conflict);
  const std::string text = error_text([&] { env.reg.create(input("sess_b", "shared_id")); });
  EXPECT_THAT(text, HasSubstr("shared_id"));
  EXPECT_THAT(text, HasSubstr("already exists under a different session"));

  EXPECT_EQ(env.reg.last_seq(), seq_before);
  EXPECT_EQ(env.reg.get("sess_b", "shared_id"), std::nullopt);
  EXPECT_TRUE(env.reg.list("sess_b").empty());
  EXPECT_TRUE(env.reg.history("sess_b", "shared_id").empty());
  EXPECT_EQ(env.reg.get("sess_a", "shared_id"), original);
  EXPECT_EQ(env.reg.history("sess_a", "shared_id").size(), 1u);
}

TEST(RegistryCreate, EmptyJournalHasLastSeqZeroAndCreateAdvancesIt) {
  Env env;
  EXPECT_EQ(env.reg.last_seq(), 0u);
  const SessionTask t = env.reg.create(input("sess_1", std::nullopt));
  EXPECT_GT(env.reg.last_seq(), 0u);
  const auto h = env.reg.history("sess_1", t.id);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].seq, env.reg.last_seq());
}

TEST(RegistryCreate, DefaultClockIsTheSystemClock) {
  Registry reg = open_registry(fresh_journal());
  const auto before =
      std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
  const SessionTask t = reg.create(input("sess_1", std::nullopt));
  const auto after =
      std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
  EXPECT_GE(t.created_at, before - 1ms);
  EXPECT_LE(t.created_at, after + 1ms);
  EXPECT_TRUE(is_uuidv7_id(t.id, "task_")) << t.id;
}

// ---------------------------------------------------------------------------------------------
// update / get
// ---------------------------------------------------------------------------------------------

TEST(RegistryUpdate, AppliesLifecycleRulesAtClockTimeAndReturnsTask) {
  Env env;
  const SessionTask created = env.reg.create(input("sess_1", "task_1"));
  env.clock.advance(1s);
  const SessionTaskUpdate upd{.state = SessionTaskState::Running,
                              .state_detail = "working",
                              .progress = TaskProgress{.current = 1, .total = 3},
                              .append_artifact = TaskArtifact{.name = "a", .type = "file"},
                              .links = TaskLinks{.resource_ids = {"r1", "r1"}},
                              .worker_id = "w1",
                              .heartbeat_at = env.clock.now(),
                              .increment_attempt = true};
  const auto result = env.reg.update("sess_1", "task_1", upd);
  SessionTask expected = created;
  taskjournal::apply_task_update(expected, upd, env.clock.now());
  ASSERT_TRUE(result);
  EXPECT_EQ(*result, expected);
  EXPECT_EQ(env.reg.get("sess_1", "task_1"), expected);
  EXPECT_EQ(result->attempt, 2);
  EXPECT_EQ(result->started_at, env.clock.now());
}

TEST(RegistryUpdate, MissingTaskGivesNulloptAndWritesNothing) {
  Env env;
  env.reg.create(input("sess_1", "task_1"));
  const auto seq = env.reg.last_seq();
  EXPECT_EQ(env.reg.update("sess_1", "nope", SessionTaskUpdate{.summary = "x"}), std::nullopt);
  EXPECT_EQ(env.reg.last_seq(), seq);
  EXPECT_TRUE(env.reg.history("sess_1", "nope").empty());
}

TEST(RegistryUpdate, ForeignTaskGivesNulloptAndWritesNothing) {
  Env env;
  const SessionTask task = env.reg.create(input("sess_a", "task_1"));
  const auto seq = env.reg.last_seq();
  env.clock.advance(1s);
  EXPECT_EQ(env.reg.update("sess_b", "task_1",
                           SessionTaskUpdate{.state = SessionTaskState::Failed, .summary = "x"}),
            std::nullopt);
  EXPECT_EQ(env.reg.last_seq(), seq);
  EXPECT_EQ(env.reg.get("sess_a", "task_1"), task);
  EXPECT_EQ(env.reg.history("sess_a", "task_1").size(), 1u);
}

TEST(RegistryUpdate, FencedUpdateReturnsUnchangedTaskAndIsJournaled) {
  Env env;
  const SessionTask task = env.reg.create(input("sess_1", "task_1"));
  const auto seq = env.reg.last_seq();
  env.clock.advance(1s);
  const auto result = env.reg.update(
      "sess_1", "task_1",
      SessionTaskUpdate{.state = SessionTaskState::Running, .summary = "x", .expected_attempt = 2});
  EXPECT_EQ(result, task);
  EXPECT_EQ(env.reg.get("sess_1", "task_1"), task);
  EXPECT_GT(env.reg.last_seq(), seq);
  const auto history = env.reg.history("sess_1", "task_1");
  EXPECT_THAT(types_of(history), ElementsAre("task_created", "task_updated"));
  EXPECT_EQ(history.back().recorded_at, env.clock.now());
}

TEST(RegistryUpdate, TerminalDropReturnsUnchangedTaskAndIsJournaled) {
  Env env;
  env.reg.create(input("sess_1", "task_1"));
  env.clock.advance(1s);
  const auto done =
      env.reg.update("sess_1", "task_1", SessionTaskUpdate{.state = SessionTaskState::Succeeded});
  ASSERT_TRUE(done);
  env.clock.advance(1s);
  const auto result = env.reg.update(
      "sess_1", "task_1",
      SessionTaskUpdate{
          .state = SessionTaskState::Running, .summary = "late", .increment_attempt = true});
  EXPECT_EQ(result, done);
  EXPECT_EQ(env.reg.get("sess_1", "task_1"), done);
  EXPECT_THAT(types_of(env.reg.history("sess_1", "task_1")),
              ElementsAre("task_created", "task_updated", "task_updated"));
}

TEST(RegistryUpdate, EmptyUpdateStampsUpdatedAt) {
  Env env;
  SessionTask expected = env.reg.create(input("sess_1", "task_1"));
  env.clock.advance(3s);
  expected.updated_at = env.clock.now();
  EXPECT_EQ(env.reg.update("sess_1", "task_1", SessionTaskUpdate{}), expected);
  EXPECT_EQ(env.reg.get("sess_1", "task_1"), expected);
}

TEST(RegistryGet, MissingAndForeignTaskGiveNullopt) {
  Env env;
  env.reg.create(input("sess_a", "task_1"));
  EXPECT_EQ(env.reg.get("sess_a", "task_2"), std::nullopt);
  EXPECT_EQ(env.reg.get("sess_b", "task_1"), std::nullopt);
  EXPECT_EQ(env.reg.get("", "task_1"), std::nullopt);
  EXPECT_TRUE(env.reg.get("sess_a", "task_1").has_value());
}

// ---------------------------------------------------------------------------------------------
// list
// ---------------------------------------------------------------------------------------------

TEST(RegistryList, ReturnsSessionTasksInCreationOrder) {
  Env env;
  // Same timestamp for all, ids deliberately out of lexical order.
  env.reg.create(input("sess_1", "c"));
  env.reg.create(input("sess_2", "x"));
  env.reg.create(input("sess_1", "a"));
  const SessionTask gen = env.reg.create(input("sess_1", std::nullopt));
  env.reg.create(input("sess_1", "b"));
  // Updating an early task does not move it.
  env.clock.advance(1s);
  env.reg.update("sess_1", "c", SessionTaskUpdate{.state = SessionTaskState::Running});
  EXPECT_THAT(ids_of(env.reg.list("sess_1")), ElementsAre("c", "a", gen.id, "b"));
  EXPECT_THAT(ids_of(env.reg.list("sess_2")), ElementsAre("x"));
}

TEST(RegistryList, ReturnsCurrentSnapshots) {
  Env env;
  env.reg.create(input("sess_1", "a"));
  env.clock.advance(1s);
  const auto a = env.reg.update("sess_1", "a", SessionTaskUpdate{.summary = "s"});
  const SessionTask b = env.reg.create(input("sess_1", "b"));
  EXPECT_EQ(env.reg.list("sess_1"), (std::vector<SessionTask>{*a, b}));
}

TEST(RegistryList, FiltersByKindStateAndBoth) {
  Env env;
  env.reg.create(input("sess_1", "t1", "alpha"));
  env.reg.create(input("sess_1", "t2", "beta", SessionTaskState::Running));
  env.reg.create(input("sess_1", "t3", "alpha", SessionTaskState::Running));
  env.reg.create(input("sess_1", "t4", "beta"));
  env.reg.create(input("sess_1", "t5", "alpha"));
  env.reg.create(input("sess_2", "t6", "alpha"));
  env.clock.advance(1s);
  env.reg.update("sess_1", "t5", SessionTaskUpdate{.state = SessionTaskState::Running});
  env.reg.update("sess_1", "t1", SessionTaskUpdate{.state = SessionTaskState::Failed});

  EXPECT_THAT(ids_of(env.reg.list("sess_1", SessionTaskFilter{.kind = "alpha"})),
              ElementsAre("t1", "t3", "t5"));
  EXPECT_THAT(ids_of(env.reg.list("sess_1", SessionTaskFilter{.state = SessionTaskState::Running})),
              ElementsAre("t2", "t3", "t5"));
  EXPECT_THAT(ids_of(env.reg.list("sess_1", SessionTaskFilter{.kind = "alpha",
                                                              .state = SessionTaskState::Running})),
              ElementsAre("t3", "t5"));
  EXPECT_THAT(ids_of(env.reg.list(
                  "sess_1", SessionTaskFilter{.kind = "beta", .state = SessionTaskState::Queued})),
              ElementsAre("t4"));
  EXPECT_THAT(ids_of(env.reg.list("sess_1", SessionTaskFilter{.state = SessionTaskState::Failed})),
              ElementsAre("t1"));
  EXPECT_TRUE(env.reg.list("sess_1", SessionTaskFilter{.kind = "Alpha"}).empty());
  EXPECT_TRUE(env.reg.list("sess_1", SessionTaskFilter{.kind = "alph"}).empty());
  EXPECT_TRUE(
      env.reg.list("sess_1", SessionTaskFilter{.state = SessionTaskState::Canceled}).empty());
  EXPECT_THAT(ids_of(env.reg.list("sess_1", SessionTaskFilter{})),
              ElementsAre("t1", "t2", "t3", "t4", "t5"));
}

TEST(RegistryList, CreationOrderIsCallOrderEvenWhenTheClockGoesBack) {
  Env env;
  env.reg.create(input("sess_1", "first"));
  env.clock.advance(-1h);
  env.reg.create(input("sess_1", "second"));
  env.clock.advance(-1h);
  env.reg.create(input("sess_1", "third"));
  EXPECT_THAT(ids_of(env.reg.list("sess_1")), ElementsAre("first", "second", "third"));
}

TEST(RegistryList, SessionIdMatchesExactly) {
  Env env;
  env.reg.create(input("sess_1", "a"));
  env.reg.create(input("sess_10", "b"));
  EXPECT_THAT(ids_of(env.reg.list("sess_1")), ElementsAre("a"));
  EXPECT_THAT(ids_of(env.reg.list("sess_10")), ElementsAre("b"));
  EXPECT_TRUE(env.reg.list("sess_").empty());
  EXPECT_TRUE(env.reg.list("SESS_1").empty());
  EXPECT_EQ(env.reg.get("SESS_1", "a"), std::nullopt);
}

TEST(RegistryList, UnknownSessionGivesEmptyList) {
  Env env;
  env.reg.create(input("sess_1", "t1"));
  EXPECT_TRUE(env.reg.list("sess_unknown").empty());
  EXPECT_TRUE(env.reg.list("").empty());
}

// ---------------------------------------------------------------------------------------------
// request_cancel
// ---------------------------------------------------------------------------------------------

TEST(RegistryRequestCancel, SetsCancelRequestedAtAndUpdatedAtFirstTimeOnly) {
  Env env;
  const SessionTask created = env.reg.create(input("sess_1", "task_1"));
  const Timestamp t1 = env.clock.advance(1s);
  const auto first = env.reg.request_cancel("sess_1", "task_1");
  SessionTask expected = created;
  expected.cancel_requested_at = t1;
  expected.updated_at = t1;
  EXPECT_EQ(first, expected);
  EXPECT_EQ(env.reg.get("sess_1", "task_1"), expected);

  env.clock.advance(1s);
  const auto second = env.reg.request_cancel("sess_1", "task_1");
  EXPECT_EQ(second, expected);
  EXPECT_EQ(env.reg.get("sess_1", "task_1"), expected);
  // Both calls are in the audit trail (§7: a repeated cancel is journaled).
  EXPECT_THAT(types_of(env.reg.history("sess_1", "task_1")),
              ElementsAre("task_created", "cancel_requested", "cancel_requested"));
}

TEST(RegistryRequestCancel, NeverChangesStateAlsoOnTerminalTask) {
  Env env;
  env.reg.create(input("sess_1", "running", "k", SessionTaskState::Running));
  env.reg.create(input("sess_1", "done"));
  env.clock.advance(1s);
  const auto done =
      env.reg.update("sess_1", "done", SessionTaskUpdate{.state = SessionTaskState::Succeeded});
  const Timestamp t2 = env.clock.advance(1s);

  const auto r = env.reg.request_cancel("sess_1", "running");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->state, SessionTaskState::Running);
  EXPECT_EQ(r->finished_at, std::nullopt);

  const auto d = env.reg.request_cancel("sess_1", "done");
  SessionTask expected = *done;
  expected.cancel_requested_at = t2;
  expected.updated_at = t2;
  EXPECT_EQ(d, expected);
}

TEST(RegistryRequestCancel, LaterUpdatesKeepCancelRequestedAt) {
  Env env;
  env.reg.create(input("sess_1", "task_1"));
  const Timestamp t1 = env.clock.advance(1s);
  env.reg.request_cancel("sess_1", "task_1");
  env.clock.advance(1s);
  const auto r =
      env.reg.update("sess_1", "task_1", SessionTaskUpdate{.state = SessionTaskState::Canceled});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->cancel_requested_at, t1);
  EXPECT_EQ(r->state, SessionTaskState::Canceled);
}

TEST(RegistryRequestCancel, MissingOrForeignTaskGivesNulloptAndWritesNothing) {
  Env env;
  const SessionTask t = env.reg.create(input("sess_a", "task_1"));
  const auto seq = env.reg.last_seq();
  env.clock.advance(1s);
  EXPECT_EQ(env.reg.request_cancel("sess_a", "missing"), std::nullopt);
  EXPECT_EQ(env.reg.request_cancel("sess_b", "task_1"), std::nullopt);
  EXPECT_EQ(env.reg.last_seq(), seq);
  EXPECT_EQ(env.reg.get("sess_a", "task_1"), t);
}

// ---------------------------------------------------------------------------------------------
// record_message
// ---------------------------------------------------------------------------------------------

TEST(RegistryRecordMessage, StoresMessageWithGeneratedIdAndClockTime) {
  Env env;
  const SessionTask task = env.reg.create(input("sess_1", "task_1"));
  const Timestamp t1 = env.clock.advance(1s);
  const NewTaskMessage in{.direction = TaskMessageDirection::Outbound,
                          .content = {TextPart{"hello"}, DataPart{R"({"pct":50})"}},
                          .in_reply_to = "something",
                          .expected_attempt = 1};
  const TaskMessage m = env.reg.record_message("sess_1", "task_1", in);
  EXPECT_TRUE(is_uuidv7_id(m.id, "tmsg_")) << m.id;
  EXPECT_EQ(m.id.substr(5, 12), uuidv7_time_hex(t1));
  EXPECT_EQ(m, (TaskMessage{.id = m.id,
                            .task_id = "task_1",
                            .direction = TaskMessageDirection::Outbound,
                            .content = {TextPart{"hello"}, DataPart{R"({"pct":50})"}},
                            .in_reply_to = "something",
                            .created_at = t1}));
  EXPECT_EQ(env.reg.list_messages("sess_1", "task_1"), std::vector<TaskMessage>{m});
  // A message that answers nothing does not touch the task.
  EXPECT_EQ(env.reg.get("sess_1", "task_1"), task);
}

TEST(RegistryRecordMessage, GeneratedMessageIdsAreUnique) {
  Env env;
  env.reg.create(input("sess_1", "task_1"));
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    ids.insert(env.reg.record_message("sess_1", "task_1", NewTaskMessage::inbound_text("m")).id);
  }
  EXPECT_EQ(ids.size(), 100u);
}

TEST(RegistryRecordMessage, MissingAndForeignTaskAreNotFoundWithTheSameCode) {
  Env env;
  env.reg.create(input("sess_a", "task_1"));
  const auto seq = env.reg.last_seq();
  const auto missing = error_code(
      [&] { env.reg.record_message("sess_a", "nope", NewTaskMessage::inbound_text("x")); });
  const auto foreign = error_code(
      [&] { env.reg.record_message("sess_b", "task_1", NewTaskMessage::inbound_text("x")); });
  EXPECT_EQ(missing, ErrorCode::NotFound);
  EXPECT_EQ(foreign, ErrorCode::NotFound);
  EXPECT_EQ(env.reg.last_seq(), seq);
  EXPECT_TRUE(env.reg.list_messages("sess_a", "task_1").empty());
}

TEST(RegistryRecordMessage, StaleAttemptIsRejectedWithExactTextAndNothingStored) {
  Env env;
  env.reg.create(input("sess_1", "task_1"));
  NewTaskMessage msg = NewTaskMessage::outbound_text("from a zombie");
  msg.expected_attempt = 2;
  const auto seq = env.reg.last_seq();
  EXPECT_EQ(error_code([&] { env.reg.record_message("sess_1", "task_1", msg); }),
            ErrorCode::StaleAttempt);
  EXPECT_EQ(error_text([&] { env.reg.record_message("sess_1", "task_1", msg); }),
            "stale attempt for task task_1: expected 2, current 1");
  EXPECT_EQ(env.reg.last_seq(), seq);
  EXPECT_TRUE(env.reg.list_messages("sess_1", "task_1").empty());

  env.reg.update("sess_1", "task_1", SessionTaskUpdate{.increment_attempt = true});
  env.reg.update("sess_1", "task_1", SessionTaskUpdate{.increment_attempt = true});
  msg.expected_attempt = 1;
  EXPECT_EQ(error_text([&] { env.reg.record_message("sess_1", "task_1", msg); }),
            "stale attempt for task task_1: expected 1, current 3");
  EXPECT_TRUE(env.reg.list_messages("sess_1", "task_1").empty());

  msg.expected_attempt = 3;
  const TaskMessage m = env.reg.record_message("sess_1", "task_1", msg);
  EXPECT_EQ(env.reg.list_messages("sess_1", "task_1"), std::vector<TaskMessage>{m});
}

TEST(RegistryRecordMessage, MessagesAreStoredOnTerminalTasks) {
  Env env;
  env.reg.create(input("sess_1", "task_1"));
  const auto done =
      env.reg.update("sess_1", "task_1", SessionTaskUpdate{.state = SessionTaskState::Failed});
  env.clock.advance(1s);
  const TaskMessage a =
      env.reg.record_message("sess_1", "task_1", NewTaskMessage::outbound_text("post mortem"));
  const TaskMessage b =
      env.reg.record_message("sess_1", "task_1", NewTaskMessage::inbound_text("thanks"));
  EXPECT_EQ(env.reg.list_messages("sess_1", "task_1"), (std::vector<TaskMessage>{a, b}));
  EXPECT_EQ(env.reg.get("sess_1", "task_1"), done);
}

/// A task created queued at the clock's start, asked for input (request "req_1") one second later.
SessionTask awaiting_task(Env& env, const std::string& id) {
  env.reg.create(input("sess_1", id));
  env.clock.advance(1s);
  auto t = env.reg.update(
      "sess_1", id,
      SessionTaskUpdate{.input_request = TaskInputRequest{.id = "req_1", .prompt = "Which?"}});
  return *t;
}

TEST(RegistryRecordMessage, InboundReplyToPendingRequestResumesTask) {
  Env env;
  const SessionTask waiting = awaiting_task(env, "task_1");
  ASSERT_EQ(waiting.state, SessionTaskState::AwaitingInput);
  ASSERT_EQ(waiting.started_at, env.clock.now());  // leaving queued stamped it
  const auto history_len = env.reg.history("sess_1", "task_1").size();

  const Timestamp t2 = env.clock.advance(1s);
  NewTaskMessage reply = NewTaskMessage::inbound_text("main");
  reply.in_reply_to = "req_1";
  const TaskMessage m = env.reg.record_message("sess_1", "task_1", reply);
  EXPECT_EQ(m.in_reply_to, "req_1");

  SessionTask expected = waiting;
  expected.state = SessionTaskState::Running;
  expected.input_request = std::nullopt;
  expected.updated_at = t2;
  EXPECT_EQ(env.reg.get("sess_1", "task_1"), expected);
  // One call, one event.
  const auto history = env.reg.history("sess_1", "task_1");
  ASSERT_EQ(history.size(), history_len + 1);
  EXPECT_EQ(history.back().type, "message_recorded");

  // The request is gone: a second answer changes nothing.
  env.clock.advance(1s);
  env.reg.record_message("sess_1", "task_1", reply);
  EXPECT_EQ(env.reg.get("sess_1", "task_1"), expected);
}

TEST(RegistryRecordMessage, ResumeKeepsStartedAtOfTaskCreatedRunning) {
  Env env;
  const SessionTask created =
      env.reg.create(input("sess_1", "task_1", "k", SessionTaskState::Running));
  env.clock.advance(1s);
  env.reg.update("sess_1", "task_1",
                 SessionTaskUpdate{.input_request = TaskInputRequest{.id = "q", .prompt = "?"}});
  const Timestamp t2 = env.clock.advance(1s);
  NewTaskMessage reply = NewTaskMessage::inbound_text("yes");
  reply.in_reply_to = "q";
  env.reg.record_message("sess_1", "task_1", reply);
  SessionTask expected = created;
  expected.updated_at = t2;
  EXPECT_EQ(env.reg.get("sess_1", "task_1"), expected);
}

TEST(RegistryRecordMessage, TaskCreatedAwaitingInputHasStartedAtAndNoRequestToAnswer) {
  Env env;
  const SessionTask created =
      env.reg.create(input("sess_1", "task_1", "k", SessionTaskState::AwaitingInput));
  EXPECT_EQ(created.started_at, env.clock.now());
  EXPECT_EQ(created.input_request, std::nullopt);
  env.clock.advance(1s);
  NewTaskMessage reply = NewTaskMessage::inbound_text("yes");
  reply.in_reply_to = "anything";
  env.reg.record_message("sess_1", "task_1", reply);
  EXPECT_EQ(env.reg.get("sess_1", "task_1"), created);
}

TEST(RegistryRecordMessage, OutboundReplyNeverResumes) {
  Env env;
  const SessionTask waiting = awaiting_task(env, "task_1");
  env.clock.advance(1s);
  NewTaskMessage msg = NewTaskMessage::outbound_text("still waiting");
  msg.in_reply_to = "req_1";
  env.reg.record_message("sess_1", "task_1", msg);
  EXPECT_EQ(env.reg.get("sess_1", "task_1"), waiting);
}

TEST(RegistryRecordMessage, InboundWithOtherOrNoInReplyToDoesNotResume) {
  Env env;
  const SessionTask waiting = awaiting_task(env, "task_1");
  env.clock.advance(1s);
  NewTaskMessage wrong = NewTaskMessage::inbound_text("answer");
  wrong.in_reply_to = "req_2";
  env.reg.record_message("sess_1", "task_1", wrong);
  EXPECT_EQ(env.reg.get("sess_1", "task_1"), waiting);
  env.reg.record_message("sess_1", "task_1", NewTaskMessage::inbound_text("no reply id"));
  EXPECT_EQ(env.reg.get("sess_1", "task_1"), waiting);
  EXPECT_EQ(env.reg.list_messages("sess_1", "task_1").size(), 2u);
}

TEST(RegistryRecordMessage, ReplyWithMatchingFenceResumesAndStaleFenceDoesNot) {
  Env env;
  const SessionTask waiting = awaiting_task(env, "task_1");
  env.clock.advance(1s);
  NewTaskMessage reply = NewTaskMessage::inbound_text("go");
  reply.in_reply_to = "req_1";
  reply.expected_attempt = 5;
  EXPECT_EQ(error_code([&] { env.reg.record_message("sess_1", "task_1", reply); }),
            ErrorCode::StaleAttempt);
  EXPECT_EQ(env.reg.get("sess_1", "task_1"), waiting);
  reply.expected_attempt = 1;
  env.reg.record_message("sess_1", "task_1", reply);
  EXPECT_EQ(env.reg.get("sess_1", "task_1")->state, SessionTaskState::Running);
}

// ---------------------------------------------------------------------------------------------
// list_messages
// ---------------------------------------------------------------------------------------------

struct MessagesEnv : Env {
  std::vector<TaskMessage> m;        // five messages of task_1, oldest first
  std::vector<TaskMessage> other;    // messages of task_2 (same session)
  std::vector<TaskMessage> foreign;  // messages of task_3 (another session)
  MessagesEnv() {
    reg.create(input("sess_1", "task_1"));
    reg.create(input("sess_1", "task_2"));
    reg.create(input("sess_2", "task_3"));
    for (int i = 1; i <= 5; ++i) {
      clock.advance(1s);
      m.push_back(reg.record_message("sess_1", "task_1",
                                     i % 2
                                         ? NewTaskMessage::inbound_text("m" + std::to_string(i))
                                         : NewTaskMessage::outbound_text("m" + std::to_string(i))));
      if (i <= 2) {
        other.push_back(reg.record_message("sess_1", "task_2", NewTaskMessage::inbound_text("o")));
        foreign.push_back(
            reg.record_message("sess_2", "task_3", NewTaskMessage::inbound_text("f")));
      }
    }
  }
};

TEST(RegistryListMessages, ReturnsAllOldestFirst) {
  MessagesEnv env;
  EXPECT_EQ(env.reg.list_messages("sess_1", "task_1"), env.m);
  EXPECT_EQ(env.reg.list_messages("sess_1", "task_2"), env.other);
  EXPECT_EQ(env.reg.list_messages("sess_2", "task_3"), env.foreign);
}

TEST(RegistryListMessages, MessagesAtTheSameInstantKeepRecordOrder) {
  Env env;
  env.reg.create(input("sess_1", "task_1"));
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    ids.push_back(env.reg.record_message("sess_1", "task_1", NewTaskMessage::inbound_text("x")).id);
  }
  EXPECT_EQ(ids_of(env.reg.list_messages("sess_1", "task_1")), ids);
}

TEST(RegistryListMessages, AfterIdGivesLaterMessagesAndLimitTakesTheFirstOfThem) {
  MessagesEnv env;
  const auto& m = env.m;
  EXPECT_EQ(env.reg.list_messages("sess_1", "task_1", std::nullopt, m[1].id),
            (std::vector<TaskMessage>{m[2], m[3], m[4]}));
  EXPECT_EQ(env.reg.list_messages("sess_1", "task_1", 2u, m[1].id),
            (std::vector<TaskMessage>{m[2], m[3]}));
  EXPECT_EQ(env.reg.list_messages("sess_1", "task_1", 1u, m[0].id),
            (std::vector<TaskMessage>{m[1]}));
  EXPECT_EQ(env.reg.list_messages("sess_1", "task_1", 10u, m[3].id),
            (std::vector<TaskMessage>{m[4]}));
  EXPECT_TRUE(env.reg.list_messages("sess_1", "task_1", std::nullopt, m[4].id).empty());
  EXPECT_TRUE(env.reg.list_messages("sess_1", "task_1", 3u, m[4].id).empty());
}

TEST(RegistryListMessages, LimitWithoutCursorGivesMostRecentOldestFirst) {
  MessagesEnv env;
  const auto& m = env.m;
  EXPECT_EQ(env.reg.list_messages("sess_1", "task_1", 2u), (std::vector<TaskMessage>{m[3], m[4]}));
  EXPECT_EQ(env.reg.list_messages("sess_1", "task_1", 1u), (std::vector<TaskMessage>{m[4]}));
  EXPECT_EQ(env.reg.list_messages("sess_1", "task_1", 5u), m);
  EXPECT_EQ(env.reg.list_messages("sess_1", "task_1", 100u), m);
}

TEST(RegistryListMessages, UnknownCursorGivesEmpty) {
  MessagesEnv env;
  EXPECT_TRUE(env.reg.list_messages("sess_1", "task_1", std::nullopt, "tmsg_unknown").empty());
  EXPECT_TRUE(env.reg.list_messages("sess_1", "task_1", 3u, "tmsg_unknown").empty());
  EXPECT_TRUE(env.reg.list_messages("sess_1", "task_1", std::nullopt, "").empty());
}

TEST(RegistryListMessages, CursorOfAnotherTasksMessageGivesEmpty) {
  MessagesEnv env;
  EXPECT_TRUE(env.reg.list_messages("sess_1", "task_1", std::nullopt, env.other[0].id).empty());
  EXPECT_TRUE(env.reg.list_messages("sess_1", "task_1", 2u, env.other[0].id).empty());
  EXPECT_TRUE(env.reg.list_messages("sess_1", "task_1", std::nullopt, env.foreign[0].id).empty());
  EXPECT_TRUE(env.reg.list_messages("sess_1", "task_2", std::nullopt, env.m[0].id).empty());
}

TEST(RegistryListMessages, LimitZeroGivesEmpty) {
  MessagesEnv env;
  EXPECT_TRUE(env.reg.list_messages("sess_1", "task_1", 0u).empty());
  EXPECT_TRUE(env.reg.list_messages("sess_1", "task_1", 0u, env.m[0].id).empty());
}

TEST(RegistryListMessages, MissingOrForeignTaskGivesEmpty) {
  MessagesEnv env;
  EXPECT_TRUE(env.reg.list_messages("sess_2", "task_1").empty());
  EXPECT_TRUE(env.reg.list_messages("sess_1", "task_3").empty());
  EXPECT_TRUE(env.reg.list_messages("sess_1", "missing").empty());
  EXPECT_TRUE(env.reg.list_messages("sess_2", "task_1", 2u, env.m[0].id).empty());
}

TEST(RegistryListMessages, TaskWithoutMessagesGivesEmpty) {
  Env env;
  env.reg.create(input("sess_1", "task_1"));
  EXPECT_TRUE(env.reg.list_messages("sess_1", "task_1").empty());
  EXPECT_TRUE(env.reg.list_messages("sess_1", "task_1", 3u).empty());
}

// ---------------------------------------------------------------------------------------------
// history (§7)
// ---------------------------------------------------------------------------------------------

TEST(RegistryHistory, OneEntryPerJournaledCallInOrder) {
  Env env;
  std::vector<Timestamp> times;
  times.push_back(env.clock.now());
  env.reg.create(input("sess_1", "task_1"));
  env.reg.create(input("sess_1", "task_2"));  // interleaved events of another task
  times.push_back(env.clock.advance(1s));
  env.reg.update("sess_1", "task_1", SessionTaskUpdate{.state = SessionTaskState::Running});
  env.reg.update("sess_1", "task_2", SessionTaskUpdate{.state = SessionTaskState::Running});
  times.push_back(env.clock.advance(1s));
  env.reg.request_cancel("sess_1", "task_1");
  times.push_back(env.clock.advance(1s));
  const TaskMessage msg =
      env.reg.record_message("sess_1", "task_1", NewTaskMessage::outbound_text("hi"));
  times.push_back(env.clock.advance(1s));
  env.reg.update("sess_1", "task_1", SessionTaskUpdate{.expected_attempt = 9});  // fenced
  times.push_back(env.clock.advance(1s));
  env.reg.request_cancel("sess_1", "task_1");  // repeated
  // Not journaled: rejected, foreign, missing, idempotent.
  env.clock.advance(1s);
  env.reg.create(input("sess_1", "task_1"));
  env.reg.update("sess_2", "task_1", SessionTaskUpdate{});
  env.reg.request_cancel("sess_2", "task_1");
  NewTaskMessage stale = NewTaskMessage::inbound_text("x");
  stale.expected_attempt = 4;
  EXPECT_EQ(error_code([&] { env.reg.record_message("sess_1", "task_1", stale); }),
            ErrorCode::StaleAttempt);

  const auto history = env.reg.history("sess_1", "task_1");
  EXPECT_THAT(types_of(history),
              ElementsAre("task_created", "task_updated", "cancel_requested", "message_recorded",
                          "task_updated", "cancel_requested"));
  ASSERT_EQ(history.size(), times.size());
  for (std::size_t i = 0; i < history.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(history[i].recorded_at, times[i]);
    EXPECT_EQ(history[i].session_id, "sess_1");
    EXPECT_EQ(history[i].task_id, "task_1");
    ASSERT_FALSE(history[i].payload.empty());
    EXPECT_EQ(history[i].payload.front(), '{');
    EXPECT_EQ(history[i].payload.back(), '}');
    if (i > 0) {
      EXPECT_GT(history[i].seq, history[i - 1].seq);
    }
  }
  EXPECT_EQ(history[3].recorded_at, msg.created_at);
  EXPECT_EQ(history.back().seq, env.reg.last_seq());

  const auto other = env.reg.history("sess_1", "task_2");
  EXPECT_THAT(types_of(other), ElementsAre("task_created", "task_updated"));
  // One journal: the two tasks' events interleave in one sequence.
  EXPECT_GT(other[0].seq, history[0].seq);
  EXPECT_LT(other[0].seq, history[1].seq);
  EXPECT_GT(other[1].seq, history[1].seq);
  EXPECT_LT(other[1].seq, history[2].seq);
}

TEST(RegistryHistory, EmptyForMissingAndForeignTask) {
  Env env;
  env.reg.create(input("sess_1", "task_1"));
  env.reg.update("sess_1", "task_1", SessionTaskUpdate{});
  EXPECT_TRUE(env.reg.history("sess_1", "missing").empty());
  EXPECT_TRUE(env.reg.history("sess_2", "task_1").empty());
  EXPECT_EQ(env.reg.history("sess_1", "task_1").size(), 2u);
}

// ---------------------------------------------------------------------------------------------
// Bad input: InvalidArgument, nothing written
// ---------------------------------------------------------------------------------------------

const std::string kInvalidUtf8 = "bad \xff byte";

TEST(RegistryValidation, CreateRejectsBadInputAndWritesNothing) {
  Env env;
  env.reg.create(input("sess_1", "existing"));
  const auto seq = env.reg.last_seq();

  auto with = [](auto mutate) {
    CreateSessionTask in = input("sess_1", "new_task");
    mutate(in);
    return in;
  };
  const std::vector<std::pair<std::string, CreateSessionTask>> cases{
      {"empty session id", with([](CreateSessionTask& in) { in.session_id = ""; })},
      {"empty kind", with([](CreateSessionTask& in) { in.kind = ""; })},
      {"empty supplied id", with([](CreateSessionTask& in) { in.id = ""; })},
      {"id of 257 bytes", with([](CreateSessionTask& in) { in.id = std::string(257, 'a'); })},
      {"display_name not UTF-8",
       with([](CreateSessionTask& in) { in.display_name = kInvalidUtf8; })},
      {"kind not UTF-8", with([](CreateSessionTask& in) { in.kind = kInvalidUtf8; })},
      {"session id not UTF-8", with([](CreateSessionTask& in) { in.session_id = kInvalidUtf8; })},
      {"id not UTF-8", with([](CreateSessionTask& in) { in.id = kInvalidUtf8; })},
      {"child_session_id not UTF-8",
       with([](CreateSessionTask& in) { in.links.child_session_id = kInvalidUtf8; })},
      {"resource id not UTF-8", with([](CreateSessionTask& in) {
         in.links.resource_ids = {"ok", kInvalidUtf8};
       })},
      {"spec {", with([](CreateSessionTask& in) { in.spec = "{"; })},
      {"spec nope", with([](CreateSessionTask& in) { in.spec = "nope"; })},
      {"spec empty", with([](CreateSessionTask& in) { in.spec = ""; })},
      {"spec with trailing garbage", with([](CreateSessionTask& in) { in.spec = "{} x"; })},
  };
  for (const auto& [name, in] : cases) {
    SCOPED_TRACE(name);
    EXPECT_EQ(error_code([&] { env.reg.create(in); }), ErrorCode::InvalidArgument);
    EXPECT_EQ(env.reg.last_seq(), seq);
  }
  EXPECT_THAT(ids_of(env.reg.list("sess_1")), ElementsAre("existing"));
  EXPECT_EQ(env.reg.get("sess_1", "new_task"), std::nullopt);
}

TEST(RegistryValidation, EveryFormOfInvalidUtf8IsRejected) {
  Env env;
  for (const std::string bad : {"\xff", "\xc3\x28", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                "abc\xe2\x82", "\x80"}) {
    SCOPED_TRACE(::testing::PrintToString(bad));
    CreateSessionTask in = input("sess_1", std::nullopt);
    in.display_name = bad;
    EXPECT_EQ(error_code([&] { env.reg.create(in); }), ErrorCode::InvalidArgument);
  }
  EXPECT_EQ(env.reg.last_seq(), 0u);
}

TEST(RegistryValidation, SpecWithInvalidUtf8InsideAStringIsRejected) {
  Env env;
  CreateSessionTask in = input("sess_1", std::nullopt);
  in.spec = "{\"a\":\"\xff\"}";
  EXPECT_EQ(error_code([&] { env.reg.create(in); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(env.reg.last_seq(), 0u);
}

TEST(RegistryValidation, ValidUnicodeAndAnyJsonSpecAreAccepted) {
  Env env;
  CreateSessionTask in = input("sess_1", "t_\xc3\xbc");
  in.display_name = "na\xc3\xafve \xe2\x98\x83 \xf0\x9f\x9a\x80";
  for (const char* spec : {R"([1,2])", "42", R"("s")", "null", R"({"k":"\u00fc"})"}) {
    SCOPED_TRACE(spec);
    in.id = std::string("t_") + spec;
    in.spec = spec;
    const SessionTask t = env.reg.create(in);
    EXPECT_EQ(t.display_name, in.display_name);
    EXPECT_EQ(env.reg.get("sess_1", t.id)->display_name, in.display_name);
  }
}

TEST(RegistryValidation, UpdateRejectsBadInputAndWritesNothing) {
  Env env;
  const SessionTask task =
      env.reg.create(input("sess_1", "task_1", "k", SessionTaskState::Running));
  const auto seq = env.reg.last_seq();
  env.clock.advance(1s);
  const std::vector<std::pair<std::string, SessionTaskUpdate>> cases{
      {"state_detail", SessionTaskUpdate{.state_detail = kInvalidUtf8}},
      {"summary", SessionTaskUpdate{.summary = kInvalidUtf8}},
      {"result_path", SessionTaskUpdate{.result_path = kInvalidUtf8}},
      {"worker_id", SessionTaskUpdate{.worker_id = kInvalidUtf8}},
      {"error.message",
       SessionTaskUpdate{.error = TaskError{.kind = "k", .message = kInvalidUtf8}}},
      {"progress.unit", SessionTaskUpdate{.progress = TaskProgress{.unit = kInvalidUtf8}}},
      {"append_artifact.name",
       SessionTaskUpdate{.append_artifact = TaskArtifact{.name = kInvalidUtf8, .type = "f"}}},
      {"artifacts[0].type",
       SessionTaskUpdate{.artifacts =
                             std::vector<TaskArtifact>{{.name = "n", .type = kInvalidUtf8}}}},
      {"input_request.prompt",
       SessionTaskUpdate{.input_request = TaskInputRequest{.id = "r", .prompt = kInvalidUtf8}}},
      {"input_request.expected nope",
       SessionTaskUpdate{.input_request =
                             TaskInputRequest{.id = "r", .prompt = "p", .expected = "nope"}}},
      {"input_request.expected {",
       SessionTaskUpdate{.input_request =
                             TaskInputRequest{.id = "r", .prompt = "p", .expected = "{"}}},
      {"links.resource_ids", SessionTaskUpdate{.links = TaskLinks{.resource_ids = {kInvalidUtf8}}}},
  };
  for (const auto& [name, upd] : cases) {
    SCOPED_TRACE(name);
    EXPECT_EQ(error_code([&] { env.reg.update("sess_1", "task_1", upd); }),
              ErrorCode::InvalidArgument);
    EXPECT_EQ(env.reg.last_seq(), seq);
    EXPECT_EQ(env.reg.get("sess_1", "task_1"), task);
  }
  EXPECT_EQ(env.reg.history("sess_1", "task_1").size(), 1u);
}

TEST(RegistryValidation, RecordMessageRejectsBadInputAndStoresNothing) {
  Env env;
  env.reg.create(input("sess_1", "task_1"));
  const auto seq = env.reg.last_seq();
  NewTaskMessage bad_text = NewTaskMessage::inbound_text(kInvalidUtf8);
  NewTaskMessage bad_data{.direction = TaskMessageDirection::Outbound,
                          .content = {TextPart{"ok"}, DataPart{"[1,"}}};
  NewTaskMessage bad_data_empty{.direction = TaskMessageDirection::Outbound,
                                .content = {DataPart{""}}};
  NewTaskMessage bad_reply = NewTaskMessage::inbound_text("ok");
  bad_reply.in_reply_to = kInvalidUtf8;
  for (const NewTaskMessage& msg : {bad_text, bad_data, bad_data_empty, bad_reply}) {
    EXPECT_EQ(error_code([&] { env.reg.record_message("sess_1", "task_1", msg); }),
              ErrorCode::InvalidArgument);
  }
  EXPECT_EQ(env.reg.last_seq(), seq);
  EXPECT_TRUE(env.reg.list_messages("sess_1", "task_1").empty());
}

TEST(RegistryValidation, InvalidArgumentMessageNamesTheField) {
  Env env;
  env.reg.create(input("sess_1", "task_1"));
  CreateSessionTask in = input("sess_1", std::nullopt);
  in.display_name = kInvalidUtf8;
  EXPECT_THAT(error_text([&] { env.reg.create(in); }), HasSubstr("display_name"));
  in = input("sess_1", std::nullopt);
  in.spec = "{";
  EXPECT_THAT(error_text([&] { env.reg.create(in); }), HasSubstr("spec"));
  in = input("sess_1", std::nullopt);
  in.kind = "";
  EXPECT_THAT(error_text([&] { env.reg.create(in); }), HasSubstr("kind"));
  in = input("", std::nullopt);
  EXPECT_THAT(error_text([&] { env.reg.create(in); }), HasSubstr("session_id"));
  EXPECT_THAT(error_text([&] {
                env.reg.update("sess_1", "task_1", SessionTaskUpdate{.state_detail = kInvalidUtf8});
              }),
              HasSubstr("state_detail"));
}

// ---------------------------------------------------------------------------------------------
// Files: read-only, reopen, two registries on one file
// ---------------------------------------------------------------------------------------------

/// Fills a registry with a bit of everything; returns the ids of sess_1's tasks.
void populate(Registry& reg, FakeClock& clock) {
  reg.create(input("sess_1", "t1"));
  reg.create(input("sess_1", "t2", "other", SessionTaskState::Running));
  reg.create(input("sess_2", "t3"));
  clock.advance(1s);
  reg.update("sess_1", "t1",
             SessionTaskUpdate{.state = SessionTaskState::Running,
                               .progress = TaskProgress{.current = 1, .total = 2, .label = "l"},
                               .links = TaskLinks{.child_session_id = "c", .resource_ids = {"r"}},
                               .heartbeat_at = clock.now()});
  reg.update("sess_1", "t1",
             SessionTaskUpdate{.input_request = TaskInputRequest{
                                   .id = "q1", .prompt = "?", .expected = R"({"type":"string"})"}});
  clock.advance(1s);
  NewTaskMessage reply = NewTaskMessage::inbound_text("answer");
  reply.in_reply_to = "q1";
  reg.record_message("sess_1", "t1", reply);
  reg.record_message("sess_1", "t1",
                     NewTaskMessage{.direction = TaskMessageDirection::Outbound,
                                    .content = {TextPart{"p"}, DataPart{R"({"pct":10})"}}});
  reg.request_cancel("sess_1", "t2");
  reg.request_cancel("sess_1", "t2");
  clock.advance(1s);
  reg.update("sess_1", "t2",
             SessionTaskUpdate{
                 .state = SessionTaskState::Failed,
                 .append_artifact = TaskArtifact{.name = "a", .type = "url", .url = "https://a"},
                 .error = TaskError{.kind = "timeout", .message = "slow"},
                 .increment_attempt = true});
  reg.update("sess_1", "t2", SessionTaskUpdate{.state = SessionTaskState::Running});  // dropped
  reg.update("sess_1", "t1", SessionTaskUpdate{.expected_attempt = 3});               // fenced
}

struct Snapshot {
  std::vector<SessionTask> list1, list2;
  std::optional<SessionTask> t1, t2, t3;
  std::vector<TaskMessage> msgs1, msgs2, msgs_last;
  std::vector<JournalEntry> h1, h2, h3;
  std::uint64_t last_seq = 0;
  bool operator==(const Snapshot&) const = default;
};

Snapshot snapshot(Registry& reg) {
  return Snapshot{.list1 = reg.list("sess_1"),
                  .list2 = reg.list("sess_2"),
                  .t1 = reg.get("sess_1", "t1"),
                  .t2 = reg.get("sess_1", "t2"),
                  .t3 = reg.get("sess_2", "t3"),
                  .msgs1 = reg.list_messages("sess_1", "t1"),
                  .msgs2 = reg.list_messages("sess_1", "t2"),
                  .msgs_last = reg.list_messages("sess_1", "t1", 1u),
                  .h1 = reg.history("sess_1", "t1"),
                  .h2 = reg.history("sess_1", "t2"),
                  .h3 = reg.history("sess_2", "t3"),
                  .last_seq = reg.last_seq()};
}

TEST(RegistryReopen, ReopenedFileGivesEqualViews) {
  TempDir dir;
  const auto path = journal_at(dir, "journal.db");
  FakeClock clock;
  Snapshot before;
  {
    Registry reg = open_registry(path, Options{.clock = clock.fn()});
    populate(reg, clock);
    before = snapshot(reg);
  }
  ASSERT_EQ(before.list1.size(), 2u);
  ASSERT_EQ(before.msgs1.size(), 2u);
  ASSERT_EQ(before.t1->state, SessionTaskState::Running);  // resumed by the reply
  clock.advance(1h);                                       // the fold must not read the clock
  Registry reopened = open_registry(path, Options{.clock = clock.fn()});
  EXPECT_EQ(snapshot(reopened), before);
}

TEST(RegistryReopen, WritesContinueAfterReopen) {
  TempDir dir;
  const auto path = journal_at(dir, "journal.db");
  FakeClock clock;
  std::uint64_t seq = 0;
  std::string first_id;
  {
    Registry reg = open_registry(path, Options{.clock = clock.fn()});
    first_id = reg.create(input("sess_1", std::nullopt)).id;
    seq = reg.last_seq();
  }
  Registry reg = open_registry(path, Options{.clock = clock.fn()});
  EXPECT_EQ(reg.last_seq(), seq);
  const SessionTask second = reg.create(input("sess_1", std::nullopt));
  EXPECT_NE(second.id, first_id);
  EXPECT_GT(reg.last_seq(), seq);
  EXPECT_THAT(ids_of(reg.list("sess_1")), ElementsAre(first_id, second.id));
  // Idempotent create and conflict also hold against replayed state.
  EXPECT_EQ(reg.create(input("sess_1", first_id)).id, first_id);
  EXPECT_EQ(error_code([&] { reg.create(input("sess_9", first_id)); }), ErrorCode::Conflict);
}

TEST(RegistryReopen, FullRangeValuesAndExactTimestampsSurviveReopen) {
  TempDir dir;
  const auto path = journal_at(dir, "journal.db");
  FakeClock clock;
  std::optional<SessionTask> before;
  std::vector<TaskMessage> messages;
  {
    Registry reg = open_registry(path, Options{.clock = clock.fn()});
    reg.create(input("sess_1", "task_1", "k", SessionTaskState::Running));
    clock.advance(123457us);
    before = reg.update("sess_1", "task_1",
                        SessionTaskUpdate{.progress = TaskProgress{.current = UINT64_MAX,
                                                                   .total = UINT64_MAX,
                                                                   .unit = "",
                                                                   .label = "\xe2\x98\x83"},
                                          .heartbeat_at = Timestamp{} + 1us,
                                          .increment_attempt = true});
    messages.push_back(reg.record_message(
        "sess_1", "task_1",
        NewTaskMessage{.direction = TaskMessageDirection::Outbound,
                       .content = {TextPart{""}, DataPart{"18446744073709551615"},
                                   TextPart{"multi\nline \xf0\x9f\x9a\x80"}}}));
  }
  ASSERT_TRUE(before);
  ASSERT_EQ(before->progress->current, UINT64_MAX);
  Registry reg = open_registry(path, Options{.clock = clock.fn()});
  EXPECT_EQ(reg.get("sess_1", "task_1"), before);
  EXPECT_EQ(reg.list_messages("sess_1", "task_1"), messages);
}

TEST(RegistryReopen, StringsWithNulBytesSurviveReopen) {
  TempDir dir;
  const auto path = journal_at(dir, "journal.db");
  const std::string with_nul("a\0b", 3);
  SessionTask created;
  {
    Registry reg = open_registry(path);
    CreateSessionTask in = input("sess_1", "task_1");
    in.display_name = with_nul;
    created = reg.create(in);
  }
  EXPECT_EQ(created.display_name, with_nul);
  Registry reg = open_registry(path);
  EXPECT_EQ(reg.get("sess_1", "task_1"), created);
}

TEST(RegistryReadOnly, ReadOnlyRegistrySeesWritesCommittedByAnotherRegistry) {
  TempDir dir;
  const auto path = journal_at(dir, "journal.db");
  Registry rw = open_registry(path);
  rw.create(input("sess_1", "t1"));
  Registry ro = open_registry(path, Options{.read_only = true});
  EXPECT_THAT(ids_of(ro.list("sess_1")), ElementsAre("t1"));
  const SessionTask t2 = rw.create(input("sess_1", "t2"));
  EXPECT_EQ(ro.get("sess_1", "t2"), t2);
  const auto u = rw.update("sess_1", "t1", SessionTaskUpdate{.state = SessionTaskState::Running});
  EXPECT_EQ(ro.get("sess_1", "t1"), u);
  EXPECT_EQ(ro.last_seq(), rw.last_seq());
}

TEST(RegistryReadOnly, ReadsWorkAndEveryWriteThrowsReadOnly) {
  TempDir dir;
  const auto path = journal_at(dir, "journal.db");
  FakeClock clock;
  Snapshot before;
  {
    Registry reg = open_registry(path, Options{.clock = clock.fn()});
    populate(reg, clock);
    before = snapshot(reg);
  }
  {
    Registry ro = open_registry(path, Options{.clock = clock.fn(), .read_only = true});
    EXPECT_EQ(snapshot(ro), before);
    EXPECT_EQ(error_code([&] { ro.create(input("sess_1", "new")); }), ErrorCode::ReadOnly);
    EXPECT_EQ(error_code([&] { ro.create(input("sess_1", std::nullopt)); }), ErrorCode::ReadOnly);
    EXPECT_EQ(error_code([&] { ro.update("sess_1", "t1", SessionTaskUpdate{.summary = "x"}); }),
              ErrorCode::ReadOnly);
    EXPECT_EQ(error_code([&] { ro.request_cancel("sess_1", "t1"); }), ErrorCode::ReadOnly);
    EXPECT_EQ(
        error_code([&] { ro.record_message("sess_1", "t1", NewTaskMessage::inbound_text("x")); }),
        ErrorCode::ReadOnly);
    EXPECT_EQ(snapshot(ro), before);
  }
  Registry rw = open_registry(path, Options{.clock = clock.fn()});
  EXPECT_EQ(snapshot(rw), before);
}

// A PostgreSQL registry holds only the sessions it serves (projections/session_views.hpp).
TEST(RegistryCheckpoint, PostgresqlRegistryHasNoWholeViewsToCheckpoint) {
  TempDir dir;
  auto reg = open_registry(journal_at(dir, "j", taskjournal::testing::TestEngine::Postgresql));
  reg.create(input("sess_1", "t1"));
  EXPECT_EQ(error_code([&] { reg.checkpoint(); }), ErrorCode::Unsupported);
  EXPECT_EQ(reg.last_seq(), 1u);
}

// Memory and open time do not grow with the journal (issue 11): a PostgreSQL registry folds no
// event at open, and reads a session's events when a call first names it.
TEST(RegistryOpen, PostgresqlOpenFoldsNothingAndServesEverySessionOnDemand) {
  TempDir dir;
  const auto at = journal_at(dir, "j", taskjournal::testing::TestEngine::Postgresql);
  {
    auto writer = open_registry(at);
    for (int s = 0; s < 20; ++s) {
      const std::string session = "sess_" + std::to_string(s);
      writer.create(input(session, "t" + std::to_string(s)));
      writer.update(session, "t" + std::to_string(s), {.state = SessionTaskState::Running});
    }
  }
  auto reg = open_registry(at);
  EXPECT_EQ(reg.open_report().events_folded, 0u);
  EXPECT_EQ(reg.open_report().checkpoint_seq, 0u);
  EXPECT_EQ(reg.last_seq(), 40u);
  EXPECT_EQ(reg.get("sess_7", "t7")->state, SessionTaskState::Running);
  EXPECT_FALSE(reg.get("sess_7", "t8"));  // another session's task
  EXPECT_EQ(reg.list("sess_19").size(), 1u);
  EXPECT_EQ(error_code([&] { reg.create(input("sess_0", "t19")); }), ErrorCode::Conflict);
  EXPECT_EQ(reg.history("sess_3", "t3").size(), 2u);
}

TEST(RegistryReadOnly, MissingJournalThrowsReadOnlyAndCreatesNothing) {
  TempDir dir;
  const auto path = journal_at(dir, "missing.db");
  EXPECT_EQ(error_code([&] { open_registry(path, Options{.read_only = true}); }),
            ErrorCode::ReadOnly);
  // Nothing was created: a second read-only open finds no journal either.
  EXPECT_EQ(error_code([&] { open_registry(path, Options{.read_only = true}); }),
            ErrorCode::ReadOnly);
  if (path.engine == taskjournal::testing::TestEngine::Sqlite) {
    EXPECT_FALSE(std::filesystem::exists(path.where));
  }
}

TEST(RegistrySharedFile, TwoRegistriesSeeEachOthersWrites) {
  TempDir dir;
  const auto path = journal_at(dir, "journal.db");
  FakeClock clock;
  Registry a = open_registry(path, Options{.clock = clock.fn()});
  Registry b = open_registry(path, Options{.clock = clock.fn()});

  const SessionTask created = a.create(input("sess_1", "task_1"));
  EXPECT_EQ(b.get("sess_1", "task_1"), created);

  clock.advance(1s);
  const auto updated =
      b.update("sess_1", "task_1",
               SessionTaskUpdate{.state = SessionTaskState::Running, .increment_attempt = true});
  ASSERT_TRUE(updated);
  EXPECT_EQ(updated->attempt, 2);
  EXPECT_EQ(a.get("sess_1", "task_1"), updated);
  EXPECT_EQ(a.list("sess_1"), std::vector<SessionTask>{*updated});

  // A's view is caught up before deciding: the fence sees attempt 2.
  NewTaskMessage stale = NewTaskMessage::outbound_text("zombie");
  stale.expected_attempt = 1;
  EXPECT_EQ(error_code([&] { a.record_message("sess_1", "task_1", stale); }),
            ErrorCode::StaleAttempt);

  // Conflict and idempotence across the two.
  EXPECT_EQ(error_code([&] { b.create(input("sess_2", "task_1")); }), ErrorCode::Conflict);
  const auto seq = a.last_seq();
  EXPECT_EQ(b.create(input("sess_1", "task_1")), *updated);
  EXPECT_EQ(a.last_seq(), seq);

  const TaskMessage m = a.record_message("sess_1", "task_1", NewTaskMessage::outbound_text("hi"));
  EXPECT_EQ(b.list_messages("sess_1", "task_1"), std::vector<TaskMessage>{m});
  const SessionTask other = b.create(input("sess_1", std::nullopt));
  EXPECT_THAT(ids_of(a.list("sess_1")), ElementsAre("task_1", other.id));
  EXPECT_EQ(a.history("sess_1", "task_1"), b.history("sess_1", "task_1"));
  EXPECT_EQ(a.last_seq(), b.last_seq());
}

TEST(RegistrySharedFile, AlternatingWritesWithoutReadsInBetweenSucceed) {
  // Each registry writes right after the other committed, with no read of its own in between:
  // no other writer holds the lock, so no call may fail (least of all with Busy).
  TempDir dir;
  const auto path = journal_at(dir, "journal.db");
  Registry a = open_registry(path);
  Registry b = open_registry(path);
  a.create(input("sess_1", "task_1", "k", SessionTaskState::Running));
  std::vector<std::string> failures;
  for (int i = 0; i < 10; ++i) {
    Registry& writer = i % 2 ? a : b;
    try {
      writer.update("sess_1", "task_1", SessionTaskUpdate{.increment_attempt = true});
    } catch (const Error& e) {
      failures.push_back("update " + std::to_string(i) + " by " + (i % 2 ? "a" : "b") + ": " +
                         std::string(taskjournal::to_string(e.code())) + ": " + e.what());
    }
  }
  EXPECT_TRUE(failures.empty()) << ::testing::PrintToString(failures);
  EXPECT_EQ(a.get("sess_1", "task_1")->attempt, 11);
  EXPECT_EQ(b.get("sess_1", "task_1")->attempt, 11);
  EXPECT_EQ(a.history("sess_1", "task_1").size(), 11u);
}

TEST(RegistrySharedFile, CreateAfterTheOtherRegistrysCreateSucceeds) {
  TempDir dir;
  const auto path = journal_at(dir, "journal.db");
  Registry a = open_registry(path);
  Registry b = open_registry(path);
  a.create(input("sess_1", "t1"));
  b.create(input("sess_1", "t2"));
  EXPECT_EQ(error_code([&] { a.create(input("sess_1", "t3")); }), std::nullopt);
  EXPECT_THAT(ids_of(b.list("sess_1")), ElementsAre("t1", "t2", "t3"));
}

TEST(RegistrySharedFile, TwoRegistriesWritingFromThreadsLoseNothing) {
  TempDir dir;
  const auto path = journal_at(dir, "journal.db");
  Registry a = open_registry(path);
  Registry b = open_registry(path);
  a.create(input("sess_1", "shared", "k", SessionTaskState::Running));
  constexpr int kPerThread = 15;
  std::mutex failures_mutex;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Registry& reg = t % 2 ? a : b;
      for (int i = 0; i < kPerThread; ++i) {
        try {
          reg.create(input("sess_1", "t" + std::to_string(t) + "_" + std::to_string(i)));
          reg.update("sess_1", "shared", SessionTaskUpdate{.increment_attempt = true});
        } catch (const std::exception& e) {
          std::lock_guard lock(failures_mutex);
          failures.push_back(e.what());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_TRUE(failures.empty()) << failures.size()
                                << " failures, first: " << (failures.empty() ? "" : failures[0]);
  EXPECT_EQ(a.list("sess_1").size(), 1u + 4u * kPerThread);
  EXPECT_EQ(b.get("sess_1", "shared")->attempt, 1 + 4 * kPerThread);
  EXPECT_EQ(a.get("sess_1", "shared"), b.get("sess_1", "shared"));
}

// ---------------------------------------------------------------------------------------------
// Concurrency and object lifetime
// ---------------------------------------------------------------------------------------------

TEST(RegistryConcurrency, FourThreadsCreatingAndUpdatingLoseNothing) {
  FakeClock clock;
  Registry reg = open_registry(fresh_journal(), Options{.clock = clock.fn()});
  reg.create(input("sess_1", "shared", "k", SessionTaskState::Running));
  constexpr int kThreads = 4;
  constexpr int kTasksPerThread = 20;
  constexpr int kBumps = 3;
  std::vector<std::thread> threads;
  std::mutex failures_mutex;
  std::vector<std::string> failures;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        for (int i = 0; i < kTasksPerThread; ++i) {
          const std::string id = "t" + std::to_string(t) + "_" + std::to_string(i);
          reg.create(input("sess_1", id, "kind_" + std::to_string(t)));
          for (int k = 0; k < kBumps; ++k) {
            reg.update("sess_1", id, SessionTaskUpdate{.increment_attempt = true});
          }
          reg.update("sess_1", "shared", SessionTaskUpdate{.increment_attempt = true});
          reg.record_message("sess_1", id, NewTaskMessage::outbound_text(id));
          reg.create(input("sess_1", std::nullopt, "generated"));
          clock.advance(1us);
        }
      } catch (const std::exception& e) {
        std::lock_guard lock(failures_mutex);
        failures.push_back(e.what());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_TRUE(failures.empty()) << ::testing::PrintToString(failures);

  EXPECT_EQ(reg.list("sess_1").size(), 1u + 2u * kThreads * kTasksPerThread);
  EXPECT_EQ(reg.list("sess_1", SessionTaskFilter{.kind = "generated"}).size(),
            std::size_t{kThreads * kTasksPerThread});
  EXPECT_EQ(reg.get("sess_1", "shared")->attempt, 1 + kThreads * kTasksPerThread);
  for (int t = 0; t < kThreads; ++t) {
    const auto mine = reg.list("sess_1", SessionTaskFilter{.kind = "kind_" + std::to_string(t)});
    ASSERT_EQ(mine.size(), std::size_t{kTasksPerThread});
    for (int i = 0; i < kTasksPerThread; ++i) {
      const std::string id = "t" + std::to_string(t) + "_" + std::to_string(i);
      EXPECT_EQ(mine[i].id, id);  // one thread's creations keep their order
      EXPECT_EQ(mine[i].attempt, 1 + kBumps);
      const auto msgs = reg.list_messages("sess_1", id);
      ASSERT_EQ(msgs.size(), 1u);
      EXPECT_EQ(taskjournal::task_message_text(msgs[0].content), id);
      EXPECT_EQ(reg.history("sess_1", id).size(), std::size_t{2 + kBumps});
    }
  }
}

TEST(ErrorCodeNames, ToStringGivesSnakeCase) {
  EXPECT_EQ(taskjournal::to_string(ErrorCode::InvalidArgument), "invalid_argument");
  EXPECT_EQ(taskjournal::to_string(ErrorCode::NotFound), "not_found");
  EXPECT_EQ(taskjournal::to_string(ErrorCode::Conflict), "conflict");
  EXPECT_EQ(taskjournal::to_string(ErrorCode::StaleAttempt), "stale_attempt");
  EXPECT_EQ(taskjournal::to_string(ErrorCode::Busy), "busy");
  EXPECT_EQ(taskjournal::to_string(ErrorCode::ReadOnly), "read_only");
  EXPECT_EQ(taskjournal::to_string(ErrorCode::Corrupt), "corrupt");
  EXPECT_EQ(taskjournal::to_string(ErrorCode::Unsupported), "unsupported");
  EXPECT_EQ(taskjournal::to_string(ErrorCode::Storage), "storage");
}

TEST(RegistryLifetime, MovedRegistryKeepsItsJournal) {
  FakeClock clock;
  Registry a = open_registry(fresh_journal(), Options{.clock = clock.fn()});
  const SessionTask t = a.create(input("sess_1", "task_1"));
  Registry b = std::move(a);
  EXPECT_EQ(b.get("sess_1", "task_1"), t);
  Registry c = open_registry(fresh_journal());
  c = std::move(b);
  EXPECT_EQ(c.get("sess_1", "task_1"), t);
}

TEST(RegistryLifetime, InMemoryRegistriesAreIndependent) {
  Registry a = open_registry(fresh_journal());
  Registry b = open_registry(fresh_journal());
  a.create(input("sess_1", "task_1"));
  EXPECT_EQ(b.get("sess_1", "task_1"), std::nullopt);
  EXPECT_NO_THROW(b.create(input("sess_2", "task_1")));
}

}  // namespace

// Regression: a heartbeat far outside 0000–9999 was stored, and to_json then had no RFC 3339 form.
TEST(RegistryUpdate, HeartbeatOutsideRfc3339YearsIsInvalidAndWritesNothing) {
  Env env;
  env.reg.create(input("sess_1", "t1"));
  const auto before = env.reg.history("sess_1", "t1").size();
  const Timestamp far_future = Timestamp{} + std::chrono::years(10000);
  EXPECT_EQ(error_code([&] { env.reg.update("sess_1", "t1", {.heartbeat_at = far_future}); }),
            ErrorCode::InvalidArgument);
  EXPECT_THAT(error_text([&] { env.reg.update("sess_1", "t1", {.heartbeat_at = far_future}); }),
              HasSubstr("heartbeat_at"));
  EXPECT_EQ(env.reg.history("sess_1", "t1").size(), before);
  const Timestamp last_year_9999 = Timestamp{} + std::chrono::years(8029);
  EXPECT_TRUE(env.reg.update("sess_1", "t1", {.heartbeat_at = last_year_9999}));
}

// Regression: the year came from year_month_day, whose short year wraps: +131072-01-01 read as
// year 0 and was stored.
TEST(RegistryUpdate, HeartbeatInAYearThatWrapsIntoRangeIsInvalid) {
  Env env;
  env.reg.create(input("sess_1", "t1"));
  const Timestamp wraps{std::chrono::microseconds{4074065596800000000}};  // +131072-01-01
  EXPECT_EQ(error_code([&] { env.reg.update("sess_1", "t1", {.heartbeat_at = wraps}); }),
            ErrorCode::InvalidArgument);
  EXPECT_EQ(error_code([&] { env.reg.update("sess_1", "t1", {.heartbeat_at = Timestamp::min()}); }),
            ErrorCode::InvalidArgument);
}

// Regression (issue 10, defect 3): ids generated in one process sort in creation order, also
// within one millisecond (RFC 9562 §6.2); the FakeClock here never moves.
TEST(RegistryCreate, GeneratedIdsAtTheSameInstantSortInCreationOrder) {
  Env env;
  std::vector<std::string> ids;
  for (int i = 0; i < 500; ++i) ids.push_back(env.reg.create(input("sess_1", std::nullopt)).id);
  for (int i = 0; i < 500; ++i) {
    ids.push_back(env.reg.record_message("sess_1", ids[0], NewTaskMessage::inbound_text("m")).id);
  }
  for (std::size_t i = 1; i < ids.size(); ++i) {
    if (i == 500) continue;  // task ids, then message ids: compare each kind with its own
    ASSERT_LT(ids[i - 1].substr(5), ids[i].substr(5)) << "id " << i << " sorts before id " << i - 1;
  }
  for (const auto& id : ids) EXPECT_EQ(id.substr(5, 12), uuidv7_time_hex(env.clock.now())) << id;
}

// Regression (issue 10, defect 9): a clock past the year 9999 wrote timestamps that are not
// RFC 3339 and ids whose time field was garbage.
TEST(RegistryCreate, ClockOutsideTheYearsAnEventCanHoldIsInvalidAndWritesNothing) {
  Env env;
  env.reg.create(input("sess_1", "t1"));
  const std::uint64_t seq = env.reg.last_seq();
  for (const Timestamp bad : {Timestamp{} + std::chrono::years(8030), Timestamp{} - 1us,
                              Timestamp::max(), Timestamp::min()}) {
    env.clock.set(bad);
    EXPECT_EQ(error_code([&] { env.reg.create(input("sess_1", std::nullopt)); }),
              ErrorCode::InvalidArgument);
    EXPECT_THAT(error_text([&] { env.reg.update("sess_1", "t1", {.summary = "x"}); }),
                HasSubstr("Options::clock"));
    EXPECT_EQ(error_code([&] { env.reg.request_cancel("sess_1", "t1"); }),
              ErrorCode::InvalidArgument);
    EXPECT_EQ(error_code([&] {
                env.reg.record_message("sess_1", "t1", NewTaskMessage::inbound_text("m"));
              }),
              ErrorCode::InvalidArgument);
  }
  EXPECT_EQ(env.reg.last_seq(), seq);
  env.clock.set(Timestamp{} + std::chrono::years(8029));  // in 9999
  EXPECT_TRUE(env.reg.update("sess_1", "t1", {.summary = "last year"}));
}

// Regression (issue 10, defect 12): a number beyond the range of a double was refused as "not
// valid JSON text", although RFC 8259 allows it; it is a documented limit, and says so.
TEST(RegistryValidation, JsonNumberBeyondADoubleIsRefusedAsOutOfRange) {
  Env env;
  for (const std::string& spec :
       {std::string(R"({"a":1e400})"), "[" + std::string(400, '9') + "]", std::string("-1E+999")}) {
    SCOPED_TRACE(spec);
    CreateSessionTask in = input("sess_1", std::nullopt);
    in.spec = spec;
    EXPECT_EQ(error_code([&] { env.reg.create(in); }), ErrorCode::InvalidArgument);
    EXPECT_THAT(error_text([&] { env.reg.create(in); }),
                HasSubstr("spec holds a number out of range"));
  }
  CreateSessionTask tiny = input("sess_1", std::nullopt);
  tiny.spec = R"({"a":1e-400,"b":123456789012345678901234567890})";  // within a double's range
  EXPECT_EQ(env.reg.create(tiny).spec, tiny.spec);
  EXPECT_EQ(env.reg.last_seq(), 1u);
}

// Regression (issue 10, defect 6): a busy_timeout above INT_MAX ms was cast to int, which meant
// no waiting at all (and the open deadline overflowed).
TEST(RegistryOpen, BusyTimeoutAboveIntMaxWaitsForTheLock) {
  TempDir dir;
  const auto file = journal_at(dir, "busy.db");
  auto holder = open_registry(file);
  auto waiter = open_registry(file, Options{.busy_timeout = std::chrono::milliseconds::max()});
  std::atomic<bool> locked{false};
  std::thread t([&] {
    holder.batch([&](taskjournal::Batch& b) {
      b.create(input("sess_1", "held"));
      locked = true;
      std::this_thread::sleep_for(300ms);  // the waiter must wait this out, not fail at once
    });
  });
  while (!locked) std::this_thread::yield();
  std::optional<ErrorCode> code = error_code([&] { waiter.create(input("sess_1", "waited")); });
  t.join();
  EXPECT_EQ(code, std::nullopt);
  EXPECT_TRUE(waiter.get("sess_1", "held"));
  EXPECT_TRUE(waiter.get("sess_1", "waited"));
  EXPECT_EQ(error_code([&] { open_registry(file, Options{.busy_timeout = -1ms}); }),
            ErrorCode::InvalidArgument);
}
