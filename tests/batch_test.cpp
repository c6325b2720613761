// Registry::batch (group commit) and Options::exclusive.
#include <filesystem>
#include <random>

#include <gtest/gtest.h>

#include "support/errors.hpp"
#include "support/fake_clock.hpp"
#include "support/journals.hpp"
#include "support/temp_dir.hpp"
#include "taskjournal/taskjournal.hpp"

using namespace taskjournal;
using taskjournal::testing::error_code;
using taskjournal::testing::FakeClock;
using taskjournal::testing::fresh_journal;
using taskjournal::testing::open_registry;

namespace {

struct Env {
  FakeClock clock;
  Registry reg = open_registry(fresh_journal(), Options{.clock = clock.fn()});
};

// A journal file in a TempDir of its own.
struct TempFile {
  taskjournal::testing::TempDir dir{"taskjournal-batch-test"};
  taskjournal::testing::JournalLocation path() const {
    return taskjournal::testing::journal_at(dir, "j.db");
  }
};

// The same calls, through any of Registry or Batch.
template <class R>
void script(R& r) {
  r.create({.session_id = "s", .id = "a", .kind = "k", .display_name = "A"});
  r.update("s", "a", {.state = SessionTaskState::Running});
  r.update("s", "a", {.input_request = TaskInputRequest{.id = "q", .prompt = "?"}});
  auto answer = NewTaskMessage::inbound_text("yes");
  answer.in_reply_to = "q";
  r.record_message("s", "a", answer);
  r.request_cancel("s", "a");
  r.update("s", "a", {.state = SessionTaskState::Canceled, .expected_attempt = 1});
  r.create({.session_id = "s",
            .id = "b",
            .kind = "k",
            .display_name = "B",
            .state = SessionTaskState::Running});
}

}  // namespace

TEST(Batch, CommitsEveryCallAndEqualsTheSameCallsMadeOneByOne) {
  Env single, batched;
  script(single.reg);
  batched.reg.batch([&](Batch& b) { script(b); });
  EXPECT_EQ(batched.reg.last_seq(), 7u);
  EXPECT_EQ(batched.reg.list("s"), single.reg.list("s"));
  const auto a = batched.reg.list_messages("s", "a");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(batched.reg.get("s", "a")->state, SessionTaskState::Canceled);
  const auto history = batched.reg.history("s", "a");
  ASSERT_EQ(history.size(), 6u);
  for (std::size_t i = 0; i < history.size(); ++i) EXPECT_EQ(history[i].seq, i + 1);
}

TEST(Batch, SeesItsOwnEarlierCalls) {
  Env env;
  env.reg.batch([&](Batch& b) {
    b.create({.session_id = "s", .id = "t", .kind = "k"});
    EXPECT_EQ(b.get("s", "t")->state, SessionTaskState::Queued);
    auto after =
        b.update("s", "t", {.state = SessionTaskState::Running, .increment_attempt = true});
    ASSERT_TRUE(after);
    EXPECT_EQ(after->attempt, 2);
    EXPECT_EQ(b.get("s", "t")->attempt, 2);
    EXPECT_FALSE(b.get("other", "t"));
    // Idempotent create inside the batch returns the batch's version of the task.
    EXPECT_EQ(b.create({.session_id = "s", .id = "t", .kind = "k"}).attempt, 2);
    // A fence against the batch's own bump.
    EXPECT_EQ(error_code([&] {
                auto m = NewTaskMessage::outbound_text("old worker");
                m.expected_attempt = 1;
                b.record_message("s", "t", m);
              }),
              ErrorCode::StaleAttempt);
  });
  EXPECT_EQ(env.reg.get("s", "t")->attempt, 2);
  EXPECT_EQ(env.reg.history("s", "t").size(), 2u);
}

TEST(Batch, BodyThatThrowsWritesNothingAndLeavesViewsUnchanged) {
  Env env;
  env.reg.create({.session_id = "s", .id = "t", .kind = "k"});
  const auto before = env.reg.get("s", "t");
  int notifications = 0;
  auto sub = env.reg.on_event([&](const RegistryEvent&) { ++notifications; });
  EXPECT_THROW(env.reg.batch([&](Batch& b) {
    b.update("s", "t", {.state = SessionTaskState::Running});
    b.create({.session_id = "s", .id = "u", .kind = "k"});
    throw std::runtime_error("caller changed its mind");
  }),
               std::runtime_error);
  EXPECT_EQ(env.reg.get("s", "t"), before);
  EXPECT_FALSE(env.reg.get("s", "u"));
  EXPECT_EQ(env.reg.last_seq(), 1u);
  EXPECT_EQ(notifications, 0);
  // And the registry keeps working, continuing the sequence without a gap.
  env.reg.update("s", "t", {.state = SessionTaskState::Running});
  EXPECT_EQ(env.reg.last_seq(), 2u);
}

TEST(Batch, RejectedCallCaughtByTheBodyWritesNothingAndTheBatchGoesOn) {
  Env env;
  env.reg.create({.session_id = "a", .id = "shared", .kind = "k"});
  env.reg.batch([&](Batch& b) {
    EXPECT_EQ(error_code([&] { b.create({.session_id = "b", .id = "shared", .kind = "k"}); }),
              ErrorCode::Conflict);
    EXPECT_EQ(error_code([&] { b.record_message("b", "nope", NewTaskMessage::inbound_text("x")); }),
              ErrorCode::NotFound);
    b.create({.session_id = "b", .id = "own", .kind = "k"});
  });
  EXPECT_EQ(env.reg.last_seq(), 2u);
  EXPECT_TRUE(env.reg.get("b", "own"));
}

TEST(Batch, NotificationsArriveAfterTheCommitInCallOrder) {
  Env env;
  std::vector<std::string> seen;
  std::vector<std::uint64_t> visible_seq;
  auto sub = env.reg.on_event([&](const RegistryEvent& e) {
    seen.push_back(e.type + "@" + std::to_string(e.seq));
    visible_seq.push_back(env.reg.last_seq());  // a slot may call the registry
  });
  env.reg.batch([&](Batch& b) {
    b.create({.session_id = "s", .id = "t", .kind = "k"});
    b.record_message("s", "t", NewTaskMessage::outbound_text("hi"));
    b.update("s", "t", {.state = SessionTaskState::Succeeded});
    EXPECT_TRUE(seen.empty());
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"task.created@1", "task.message.received@2",
                                            "task.updated@3"}));
  EXPECT_EQ(visible_seq, (std::vector<std::uint64_t>{3, 3, 3}));
}

TEST(Batch, CallingTheRegistryInsideItsOwnBatchIsInvalidArgument) {
  Env env;
  env.reg.batch([&](Batch&) {
    EXPECT_EQ(error_code([&] { env.reg.get("s", "t"); }), ErrorCode::InvalidArgument);
    EXPECT_EQ(error_code([&] { env.reg.create({.session_id = "s", .kind = "k"}); }),
              ErrorCode::InvalidArgument);
  });
  EXPECT_NO_THROW(env.reg.get("s", "t"));
}

TEST(Batch, EmptyBatchWritesNothing) {
  Env env;
  env.reg.batch([](Batch&) {});
  EXPECT_EQ(env.reg.last_seq(), 0u);
}

TEST(Batch, ReopenedJournalEqualsTheBatchedViews) {
  TempFile file;
  std::vector<SessionTask> before;
  {
    auto r = open_registry(file.path());
    r.batch([&](Batch& b) { script(b); });
    before = r.list("s");
  }
  auto reopened = open_registry(file.path());
  EXPECT_EQ(reopened.list("s"), before);
  EXPECT_EQ(reopened.last_seq(), 7u);
}

TEST(Batch, ReadOnlyRegistryRefusesABatch) {
  TempFile file;
  open_registry(file.path());
  auto r = open_registry(file.path(), {.read_only = true});
  EXPECT_EQ(error_code([&] { r.batch([](Batch&) {}); }), ErrorCode::ReadOnly);
}

// Options::exclusive is a SQLite file mode: these run on the SQLite file whatever engine the
// suite tests, and PostgreSQL refuses the option.
TEST(Exclusive, PostgresqlRefusesExclusiveAsASqliteMode) {
  taskjournal::testing::TempDir dir;
  const auto at =
      taskjournal::testing::journal_at(dir, "j", taskjournal::testing::TestEngine::Postgresql);
  EXPECT_EQ(error_code([&] { open_registry(at, {.exclusive = true}); }),
            ErrorCode::InvalidArgument);
}

TEST(Exclusive, SecondRegistryOnTheFileIsBusyWhileTheFirstIsOpen) {
  taskjournal::testing::TempDir dir;
  const auto file =
      taskjournal::testing::journal_at(dir, "j.db", taskjournal::testing::TestEngine::Sqlite);
  {
    auto owner = open_registry(file, {.exclusive = true});
    owner.create({.session_id = "s", .id = "t", .kind = "k"});
    EXPECT_EQ(
        error_code([&] { open_registry(file, {.busy_timeout = std::chrono::milliseconds(50)}); }),
        ErrorCode::Busy);
    EXPECT_EQ(owner.get("s", "t")->id, "t");
  }
  auto later = open_registry(file);
  EXPECT_TRUE(later.get("s", "t"));
}
