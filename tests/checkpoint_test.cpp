// Projection checkpoints (issue 6, item 3): opening from a checkpoint gives exactly the views of a
// full fold; checkpoints are written by policy or on request; a checkpoint that is damaged, of
// another format, or disagrees with the events is ignored and reported, never trusted.
#include "events/checkpoint.hpp"

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "projections/views.hpp"
#include "store/journal.hpp"
#include "support/fake_clock.hpp"
#include "support/processes.hpp"
#include "support/raw_journal.hpp"
#include "taskjournal/taskjournal.hpp"

namespace fs = std::filesystem;
using namespace taskjournal;
using taskjournal::testing::FakeClock;

namespace {

using taskjournal::testing::RawJournal;
using taskjournal::testing::TempDir;

// The bytes of chunk `n` of checkpoint `seq`.
std::string chunk(RawJournal& raw, std::uint64_t seq, int n) {
  std::string data =
      raw.blob("SELECT data FROM checkpoint_chunks WHERE seq = " + std::to_string(seq) +
               " AND n = " + std::to_string(n));
  if (data.empty()) throw std::runtime_error("no such chunk");
  return data;
}

// Replaces the data of chunk `n` of checkpoint `seq`, with a matching digest if `fix_digest`.
void set_chunk(RawJournal& raw, std::uint64_t seq, int n, const std::string& data,
               bool fix_digest) {
  raw.add_sha256_function();
  const std::string where = " WHERE seq = " + std::to_string(seq) + " AND n = " + std::to_string(n);
  const std::string sql = fix_digest ? "UPDATE checkpoint_chunks SET data = ?1, digest = sha256(?1)"
                                     : "UPDATE checkpoint_chunks SET data = ?1";
  if (raw.exec_with_blob(sql + where, data) != 1) throw std::runtime_error("set_chunk");
}

const std::vector<std::string> kSessions{"sess_a", "sess_b", "sess_c"};

Options quiet(FakeClock& clock) {
  return Options{.clock = clock.fn(), .durability = Durability::Normal, .checkpoint_every = 0};
}

// quiet(), with a checkpoint every `events` events.
Options checkpointing(FakeClock& clock, std::uint64_t events) {
  Options options = quiet(clock);
  options.checkpoint_every = events;
  return options;
}

// The sequence numbers of the checkpoints stored in `file`, oldest first.
std::vector<std::int64_t> checkpoint_seqs(const fs::path& file) {
  return RawJournal(file.string()).ints("SELECT seq FROM checkpoints ORDER BY seq");
}

// The Error `call` throws; a test failure if it throws none.
template <class Call>
Error error_from(Call&& call) {
  try {
    call();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "expected an Error";
  return Error(ErrorCode::Storage, "no error thrown");
}

// Tasks of every kind of history: progress, input requests answered, cancels, artifacts, links,
// failures and attempts, with messages both ways. Task ids are "t<first + i>".
void populate(Registry& r, int first, int count) {
  for (int i = first; i < first + count; ++i) {
    const std::string session = kSessions[static_cast<std::size_t>(i) % kSessions.size()];
    const std::string id = "t" + std::to_string(i);
    r.create({.session_id = session,
              .id = id,
              .kind = i % 2 ? "subagent" : "tool",
              .display_name = "Task " + std::to_string(i),
              .spec = R"({"n":)" + std::to_string(i) + "}",
              .links = {.resource_ids = {"res_" + std::to_string(i)}},
              .wake_policy = TaskWakePolicy::OnTerminal});
    r.update(session, id,
             {.state = SessionTaskState::Running,
              .progress = TaskProgress{.current = 1, .total = 10, .unit = "steps"},
              .worker_id = "w" + std::to_string(i)});
    r.record_message(session, id, NewTaskMessage::outbound_text("hello " + std::to_string(i)));
    if (i % 3 == 0) {
      r.update(session, id,
               {.state = SessionTaskState::AwaitingInput,
                .input_request = TaskInputRequest{.id = "q" + std::to_string(i), .prompt = "?"}});
      r.record_message(session, id,
                       {.direction = TaskMessageDirection::Inbound,
                        .content = {TextPart{"yes"}, DataPart{R"({"ok":true})"}},
                        .in_reply_to = "q" + std::to_string(i)});
    }
    if (i % 4 == 1) r.request_cancel(session, id);
    if (i % 5 == 2) {
      r.update(session, id,
               {.append_artifact = TaskArtifact{.name = "out", .type = "file", .path = "/o"},
                .increment_attempt = true});
      r.update(session, id,
               {.state = SessionTaskState::Failed,
                .error = TaskError{.kind = "boom", .message = "it broke"}});
    } else if (i % 5 == 3) {
      r.update(session, id,
               {.state = SessionTaskState::Succeeded, .summary = "done", .result_path = "/r"});
    }
  }
}

// Everything the registry shows, from its views.
struct Dump {
  std::uint64_t last_seq = 0;
  std::vector<std::vector<SessionTask>> lists;
  std::vector<std::vector<TaskMessage>> messages;
  bool operator==(const Dump&) const = default;
};

Dump dump(Registry& r) {
  Dump d{.last_seq = r.last_seq()};
  for (const auto& session : kSessions) {
    d.lists.push_back(r.list(session));
    for (const auto& task : d.lists.back()) {
      d.messages.push_back(r.list_messages(session, task.id));
    }
  }
  return d;
}

// The views of `path` folded from the first event: a copy without its checkpoint tables.
Dump full_fold(const fs::path& path, const fs::path& scratch, FakeClock& clock) {
  fs::copy_file(path, scratch, fs::copy_options::overwrite_existing);
  {
    RawJournal sql((scratch).string());
    sql.exec("DROP TABLE IF EXISTS checkpoint_chunks; DROP TABLE IF EXISTS checkpoints;");
  }
  auto r = Registry::open(scratch, quiet(clock));
  EXPECT_EQ(r.open_report().checkpoint_seq, 0u);
  return dump(r);
}

// A journal of `tasks` tasks with one checkpoint (of everything written so far) followed by
// `tail` more tasks. Returns the checkpoint's seq.
std::uint64_t journal_with_checkpoint(const fs::path& path, FakeClock& clock, int tasks, int tail) {
  auto r = Registry::open(path, quiet(clock));
  populate(r, 0, tasks);
  const std::uint64_t seq = r.checkpoint();
  populate(r, tasks, tail);
  return seq;
}

}  // namespace

TEST(Checkpoints, OpenFromCheckpointEqualsFullFold) {
  TempDir dir;
  FakeClock clock;
  const std::uint64_t seq = journal_with_checkpoint(dir / "j.db", clock, 60, 15);
  ASSERT_GT(seq, 0u);

  auto r = Registry::open(dir / "j.db", quiet(clock));
  EXPECT_EQ(r.open_report().checkpoint_seq, seq);
  EXPECT_EQ(r.open_report().events_folded, r.last_seq() - seq);
  EXPECT_GT(r.open_report().events_folded, 0u);
  EXPECT_TRUE(r.open_report().ignored_checkpoints.empty());
  EXPECT_EQ(dump(r), full_fold(dir / "j.db", dir / "copy.db", clock));
}

TEST(Checkpoints, CheckpointAtTheLastEventLeavesNothingToFold) {
  TempDir dir;
  FakeClock clock;
  std::uint64_t seq = 0;
  {
    auto r = Registry::open(dir / "j.db", quiet(clock));
    populate(r, 0, 20);
    seq = r.checkpoint();
    EXPECT_EQ(seq, r.last_seq());
  }
  auto r = Registry::open(dir / "j.db", quiet(clock));
  EXPECT_EQ(r.open_report().checkpoint_seq, seq);
  EXPECT_EQ(r.open_report().events_folded, 0u);
  EXPECT_EQ(dump(r), full_fold(dir / "j.db", dir / "copy.db", clock));
}

TEST(Checkpoints, RegistryGoesOnWritingAfterOpeningFromACheckpoint) {
  TempDir dir;
  FakeClock clock;
  journal_with_checkpoint(dir / "j.db", clock, 30, 5);
  {
    auto r = Registry::open(dir / "j.db", quiet(clock));
    ASSERT_GT(r.open_report().checkpoint_seq, 0u);
    populate(r, 35, 10);  // decides against the restored views; the hash chain continues
    EXPECT_EQ(r.get("sess_a", "t3")->state, SessionTaskState::Succeeded);
  }
  auto r = Registry::open(dir / "j.db", quiet(clock));
  EXPECT_EQ(dump(r), full_fold(dir / "j.db", dir / "copy.db", clock));
}

TEST(Checkpoints, EmptyJournalCheckpointWritesNothing) {
  TempDir dir;
  FakeClock clock;
  auto r = Registry::open(dir / "j.db", quiet(clock));
  EXPECT_EQ(r.checkpoint(), 0u);
  RawJournal sql((dir / "j.db").string());
  EXPECT_THROW(sql.ints("SELECT seq FROM checkpoints"), std::runtime_error);  // no table yet
}

TEST(Checkpoints, PolicyWritesOneEveryNEventsAndKeepsTheNewestTwo) {
  TempDir dir;
  FakeClock clock;
  auto r = Registry::open(dir / "j.db", checkpointing(clock, 10));
  for (int i = 0; i < 35; ++i) {
    r.create({.session_id = "s", .id = "t" + std::to_string(i), .kind = "tool"});
  }
  EXPECT_EQ(checkpoint_seqs(dir / "j.db"), (std::vector<std::int64_t>{20, 30}));
  EXPECT_EQ(RawJournal((dir / "j.db").string())
                .ints("SELECT DISTINCT seq FROM checkpoint_chunks ORDER BY seq"),
            (std::vector<std::int64_t>{20, 30}));
}

TEST(Checkpoints, PolicyPeriodGrowsToATenthOfTheJournal) {
  // Every 10 events up to event 100, then a tenth of the newest checkpoint's event: 110, 121, 133,
  // 146, 160, 176, 193, 212, 233 (the next would be 256).
  TempDir dir;
  FakeClock clock;
  auto r = Registry::open(dir / "j.db", checkpointing(clock, 10));
  r.create({.session_id = "s", .id = "t", .kind = "tool"});
  for (int i = 1; i < 250; ++i) r.update("s", "t", {.summary = std::to_string(i)});
  EXPECT_EQ(checkpoint_seqs(dir / "j.db"), (std::vector<std::int64_t>{212, 233}));
}

TEST(Checkpoints, PolicyCountsFromTheNewestCheckpointAfterReopening) {
  TempDir dir;
  FakeClock clock;
  for (int round = 0; round < 3; ++round) {
    auto r = Registry::open(dir / "j.db", checkpointing(clock, 10));
    for (int i = 0; i < 7; ++i) {
      r.create({.session_id = "s", .id = "t" + std::to_string(round * 7 + i), .kind = "tool"});
    }
  }
  EXPECT_EQ(checkpoint_seqs(dir / "j.db"), (std::vector<std::int64_t>{10, 20}));
}

TEST(Checkpoints, BatchThatCrossesTheThresholdWritesOneCheckpoint) {
  TempDir dir;
  FakeClock clock;
  auto r = Registry::open(dir / "j.db", checkpointing(clock, 10));
  r.batch([](Batch& b) {
    for (int i = 0; i < 25; ++i) {
      b.create({.session_id = "s", .id = "t" + std::to_string(i), .kind = "tool"});
    }
  });
  EXPECT_EQ(checkpoint_seqs(dir / "j.db"), (std::vector<std::int64_t>{25}));
}

TEST(Checkpoints, CheckpointOnReadOnlyRegistryIsReadOnlyError) {
  TempDir dir;
  FakeClock clock;
  journal_with_checkpoint(dir / "j.db", clock, 10, 2);
  Options options = quiet(clock);
  options.read_only = true;
  auto r = Registry::open(dir / "j.db", options);
  EXPECT_GT(r.open_report().checkpoint_seq, 0u);  // read-only registries use checkpoints too
  EXPECT_EQ(error_from([&] { r.checkpoint(); }).code(), ErrorCode::ReadOnly);
}

// ---- checkpoints that must not be trusted -------------------------------------------------------

class UntrustedCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override { seq_ = journal_with_checkpoint(dir_ / "j.db", clock_, 40, 10); }

  // Opens the journal, expecting the views of a full fold and one ignored checkpoint whose
  // reason contains `why`, reported through on_problem too.
  void expect_ignored(const std::string& why) {
    std::vector<std::string> problems;
    Options options = quiet(clock_);
    options.on_problem = [&](const Error& e) { problems.push_back(e.what()); };
    auto r = Registry::open(dir_ / "j.db", options);
    EXPECT_EQ(r.open_report().checkpoint_seq, 0u);
    EXPECT_EQ(r.open_report().events_folded, r.last_seq());
    ASSERT_EQ(r.open_report().ignored_checkpoints.size(), 1u);
    const std::string& reason = r.open_report().ignored_checkpoints[0];
    EXPECT_NE(reason.find("checkpoint of event " + std::to_string(seq_) + " ignored"),
              std::string::npos)
        << reason;
    EXPECT_NE(reason.find(why), std::string::npos) << reason;
    EXPECT_EQ(problems, r.open_report().ignored_checkpoints);
    EXPECT_EQ(dump(r), full_fold(dir_ / "j.db", dir_ / "copy.db", clock_));
  }

  TempDir dir_;
  FakeClock clock_;
  std::uint64_t seq_ = 0;
};

TEST_F(UntrustedCheckpoint, DamagedChunkIsIgnored) {
  RawJournal sql((dir_ / "j.db").string());
  std::string data = chunk(sql, seq_, 0);
  data[data.size() / 2] ^= 0x20;
  set_chunk(sql, seq_, 0, data, /*fix_digest=*/false);
  expect_ignored("chunk 0 damaged");
}

TEST_F(UntrustedCheckpoint, ChunkThatDoesNotDecodeIsIgnored) {
  RawJournal sql((dir_ / "j.db").string());
  std::string data = chunk(sql, seq_, 0);
  data.resize(data.size() - 3);  // truncated, with a digest that matches the damage
  set_chunk(sql, seq_, 0, data, /*fix_digest=*/true);
  expect_ignored("truncated");
}

TEST_F(UntrustedCheckpoint, MissingChunkIsIgnored) {
  RawJournal sql((dir_ / "j.db").string());
  sql.exec("UPDATE checkpoints SET chunks = chunks + 1");
  expect_ignored("chunks");
}

TEST_F(UntrustedCheckpoint, OtherFormatIsIgnored) {
  RawJournal sql((dir_ / "j.db").string());
  sql.exec("UPDATE checkpoints SET format = 3");
  expect_ignored("format 3 (this build reads formats 1 to 2)");
}

TEST_F(UntrustedCheckpoint, FormatOneCheckpointOfAnEarlierBuildStillRestores) {
  // Format 1 is format 2 without the pruned count after the marker byte.
  {
    RawJournal sql((dir_ / "j.db").string());
    std::string data = chunk(sql, seq_, 0);  // the checkpoint's only chunk
    data.erase(1, sizeof(std::uint64_t));
    set_chunk(sql, seq_, 0, data, /*fix_digest=*/true);
    sql.exec("UPDATE checkpoints SET format = 1");
  }
  auto r = Registry::open(dir_ / "j.db", quiet(clock_));
  EXPECT_EQ(r.open_report().checkpoint_seq, seq_);
  EXPECT_TRUE(r.open_report().ignored_checkpoints.empty());
  EXPECT_EQ(dump(r), full_fold(dir_ / "j.db", dir_ / "copy.db", clock_));
}

TEST_F(UntrustedCheckpoint, HashThatDisagreesWithTheJournalIsIgnored) {
  RawJournal sql((dir_ / "j.db").string());
  sql.exec("UPDATE checkpoints SET hash = zeroblob(32)");
  expect_ignored("disagrees with the journal");
}

TEST_F(UntrustedCheckpoint, CheckpointBeyondTheLastEventIsIgnored) {
  RawJournal sql((dir_ / "j.db").string());
  sql.exec("UPDATE checkpoint_chunks SET seq = 100000; UPDATE checkpoints SET seq = 100000");
  seq_ = 100000;
  expect_ignored("the journal has no such event");
}

TEST_F(UntrustedCheckpoint, EventCountsThatDoNotAddUpAreIgnored) {
  // A well-formed checkpoint with a valid digest that lost one task: its counts fall short.
  RawJournal sql((dir_ / "j.db").string());
  events::CheckpointEncoder encoder;
  bool first = true;
  for (auto& e : events::decode_checkpoint_chunk(chunk(sql, seq_, 0)).entries) {
    if (!first) encoder.add(e.task, e.messages, e.events);
    first = false;
  }
  set_chunk(sql, seq_, 0, encoder.take(), /*fix_digest=*/true);
  expect_ignored("of pruned tasks, not " + std::to_string(seq_));
}

TEST_F(UntrustedCheckpoint, CheckpointThatTheLaterEventsDoNotFitIsIgnored) {
  // Task t40 (created after the checkpoint) gets the id of a task inside it: the counts add up,
  // but the event that creates t40 after the checkpoint then meets a task that exists.
  RawJournal sql((dir_ / "j.db").string());
  events::CheckpointEncoder encoder;
  for (auto& e : events::decode_checkpoint_chunk(chunk(sql, seq_, 0)).entries) {
    if (e.task.id == "t39") e.task.id = "t40";
    for (auto& m : e.messages) m.task_id = e.task.id;
    encoder.add(e.task, e.messages, e.events);
  }
  set_chunk(sql, seq_, 0, encoder.take(), /*fix_digest=*/true);
  expect_ignored("the events after it do not fit it");
}

TEST(Checkpoints, OlderCheckpointIsUsedWhenTheNewestIsDamaged) {
  TempDir dir;
  FakeClock clock;
  std::uint64_t older = 0;
  std::uint64_t newer = 0;
  {
    auto r = Registry::open(dir / "j.db", quiet(clock));
    populate(r, 0, 20);
    older = r.checkpoint();
    populate(r, 20, 20);
    newer = r.checkpoint();
    populate(r, 40, 5);
  }
  {
    RawJournal sql((dir / "j.db").string());
    sql.exec("UPDATE checkpoint_chunks SET digest = zeroblob(32) WHERE seq = " +
             std::to_string(newer));
  }
  auto r = Registry::open(dir / "j.db", quiet(clock));
  EXPECT_EQ(r.open_report().checkpoint_seq, older);
  EXPECT_EQ(r.open_report().ignored_checkpoints.size(), 1u);
  EXPECT_EQ(dump(r), full_fold(dir / "j.db", dir / "copy.db", clock));
}

TEST(Checkpoints, CorruptEventAfterTheCheckpointStillFailsTheOpen) {
  // The fallback to a full fold must not hide a damaged journal.
  TempDir dir;
  FakeClock clock;
  const std::uint64_t seq = journal_with_checkpoint(dir / "j.db", clock, 20, 5);
  {
    RawJournal sql((dir / "j.db").string());
    sql.exec("DROP TRIGGER events_no_update");
    sql.exec("UPDATE events SET hash = zeroblob(32) WHERE seq = " + std::to_string(seq + 2));
  }
  const Error e = error_from([&] { Registry::open(dir / "j.db", quiet(clock)); });
  EXPECT_EQ(e.code(), ErrorCode::Corrupt);
  EXPECT_NE(std::string(e.what()).find("event " + std::to_string(seq + 2)), std::string::npos)
      << e.what();
}

TEST(Checkpoints, FailedCheckpointWriteIsReportedAndTheCallSucceeds) {
  TempDir dir;
  FakeClock clock;
  {
    // A table that refuses rows: the checkpoint's transaction fails after the event committed.
    auto r = Registry::open(dir / "j.db", quiet(clock));
    RawJournal sql((dir / "j.db").string());
    sql.exec(
        "CREATE TABLE checkpoints (seq INTEGER PRIMARY KEY, hash BLOB NOT NULL, format INTEGER "
        "NOT NULL, chunks INTEGER NOT NULL, tasks INTEGER NOT NULL, messages INTEGER NOT NULL, "
        "created_at INTEGER NOT NULL);"
        "CREATE TRIGGER no_checkpoints BEFORE INSERT ON checkpoints "
        "BEGIN SELECT RAISE(ABORT, 'no checkpoints here'); END;");
  }
  std::vector<std::string> problems;
  Options options = checkpointing(clock, 5);
  options.on_problem = [&](const Error& e) { problems.push_back(e.what()); };
  {
    auto r = Registry::open(dir / "j.db", options);
    for (int i = 0; i < 12; ++i) {
      EXPECT_NO_THROW(r.create({.session_id = "s", .id = "t" + std::to_string(i), .kind = "k"}));
    }
    EXPECT_EQ(r.last_seq(), 12u);
  }
  ASSERT_EQ(problems.size(), 2u);  // at events 5 and 10, not on every call after a failure
  EXPECT_NE(problems[0].find("checkpoint not written"), std::string::npos) << problems[0];
  EXPECT_NE(problems[0].find("no checkpoints here"), std::string::npos) << problems[0];
  auto r = Registry::open(dir / "j.db", quiet(clock));
  EXPECT_EQ(r.list("s").size(), 12u);
}

TEST(Checkpoints, SecondRegistryOpensFromACheckpointAnotherWrote) {
  TempDir dir;
  FakeClock clock;
  auto a = Registry::open(dir / "j.db", quiet(clock));
  populate(a, 0, 20);
  const std::uint64_t seq = a.checkpoint();
  populate(a, 20, 3);
  auto b = Registry::open(dir / "j.db", quiet(clock));
  EXPECT_EQ(b.open_report().checkpoint_seq, seq);
  EXPECT_EQ(dump(b), dump(a));
  populate(b, 23, 2);  // each sees the other's writes
  EXPECT_EQ(dump(a), dump(b));
}

// ---- the views' encoding, below the registry ----------------------------------------------------

TEST(CheckpointCodec, ChunksOfAnySizeRestoreEqualViews) {
  TempDir dir;
  FakeClock clock;
  {
    auto r = Registry::open(dir / "j.db", quiet(clock));
    populate(r, 0, 30);
  }
  store::Journal journal(store::JournalConfig{.path = (dir / "j.db").string(), .read_only = true});
  projections::Views folded;
  journal.read_new([&](events::Event&& e) { folded.apply(e); });

  for (std::size_t chunk_bytes : {1u, 500u, 1u << 20}) {
    events::CheckpointEncoder encoder;
    std::vector<std::string> chunks;
    folded.for_each_task([&](const SessionTask& task, const std::vector<TaskMessage>& messages,
                             std::uint64_t events) {
      encoder.add(task, messages, events);
      if (encoder.size() >= chunk_bytes) chunks.push_back(encoder.take());
    });
    if (encoder.size() > 0) chunks.push_back(encoder.take());
    projections::Views restored;
    for (const auto& chunk : chunks) {
      for (auto& e : events::decode_checkpoint_chunk(chunk).entries) {
        restored.restore_task(std::move(e));
      }
    }
    restored.finish_restore(folded.last_seq());
    EXPECT_TRUE(restored == folded) << chunk_bytes << "-byte chunks";
    EXPECT_EQ(restored.messages("sess_a", "t3", 1, std::nullopt),
              folded.messages("sess_a", "t3", 1, std::nullopt));
  }
}

TEST(CheckpointCodec, EmptyChunkIsCorrupt) {
  EXPECT_EQ(error_from([] { events::decode_checkpoint_chunk(""); }).code(), ErrorCode::Corrupt);
  EXPECT_EQ(error_from([] { events::decode_checkpoint_chunk("", 1); }).code(), ErrorCode::Corrupt);
}

TEST(CheckpointCodec, FirstChunkCarriesThePrunedEventsAndAChunkMayHoldNoTask) {
  events::CheckpointEncoder none(7);
  const auto only = events::decode_checkpoint_chunk(none.finish());
  EXPECT_EQ(only.pruned_events, 7u);
  EXPECT_TRUE(only.entries.empty());
  EXPECT_EQ(none.finish(), "");  // nothing left once the chunk was taken

  events::CheckpointEncoder two(5);
  SessionTask task = new_session_task({.session_id = "s", .id = "t", .kind = "k"}, Timestamp{});
  two.add(task, {}, 1);
  const auto first = events::decode_checkpoint_chunk(two.take());
  two.add(task, {}, 1);
  const auto second = events::decode_checkpoint_chunk(two.finish());
  EXPECT_EQ(first.pruned_events, 5u);
  EXPECT_EQ(second.pruned_events, 0u);
  EXPECT_EQ(first.entries.size(), 1u);
  EXPECT_EQ(second.entries.size(), 1u);
}

TEST(CheckpointCodec, AFormatThisBuildDoesNotReadIsUnsupported) {
  EXPECT_EQ(error_from([] { events::decode_checkpoint_chunk("x", 0); }).code(),
            ErrorCode::Unsupported);
  EXPECT_EQ(error_from([] {
              events::decode_checkpoint_chunk("x", events::kCheckpointFormat + 1);
            }).code(),
            ErrorCode::Unsupported);
}

TEST(CheckpointCodec, MessageIdUsedTwiceIsCorrupt) {
  projections::Views v;
  TaskMessage m{.id = "m1", .task_id = "t1"};
  v.restore_task({.task = {.id = "t1", .session_id = "s"}, .messages = {m}, .events = 2});
  m.task_id = "t2";
  EXPECT_THROW(
      v.restore_task({.task = {.id = "t2", .session_id = "s"}, .messages = {m}, .events = 2}),
      Error);
}

TEST(Checkpoints, OpenFromCheckpointFalseFoldsAndVerifiesEveryEvent) {
  TempDir dir;
  FakeClock clock;
  const std::uint64_t seq = journal_with_checkpoint(dir / "j.db", clock, 20, 5);
  Options options = quiet(clock);
  options.open_from_checkpoint = false;
  {
    auto r = Registry::open(dir / "j.db", options);
    EXPECT_EQ(r.open_report().checkpoint_seq, 0u);
    EXPECT_EQ(r.open_report().events_folded, r.last_seq());
    EXPECT_TRUE(r.open_report().ignored_checkpoints.empty());
  }
  // An event the checkpoint covers, altered: only the full fold sees it.
  {
    RawJournal sql((dir / "j.db").string());
    sql.exec("DROP TRIGGER events_no_update");
    sql.exec("UPDATE events SET recorded_at = recorded_at + 1 WHERE seq = 2");
  }
  EXPECT_EQ(Registry::open(dir / "j.db", quiet(clock)).open_report().checkpoint_seq, seq);
  const Error e = error_from([&] { Registry::open(dir / "j.db", options); });
  EXPECT_EQ(e.code(), ErrorCode::Corrupt);
  EXPECT_NE(std::string(e.what()).find("event 2"), std::string::npos) << e.what();
}

TEST(Checkpoints, CountsInTheCheckpointAreOnlyAHint) {
  // tasks and messages size the views before restoring; absurd values must not allocate them.
  TempDir dir;
  FakeClock clock;
  const std::uint64_t seq = journal_with_checkpoint(dir / "j.db", clock, 20, 3);
  {
    RawJournal sql((dir / "j.db").string());
    sql.exec("UPDATE checkpoints SET tasks = 1000000000000000, messages = 1000000000000000");
  }
  auto r = Registry::open(dir / "j.db", quiet(clock));
  EXPECT_EQ(r.open_report().checkpoint_seq, seq);
  EXPECT_EQ(dump(r), full_fold(dir / "j.db", dir / "copy.db", clock));
}

TEST(Checkpoints, ManyChunksRestoreAndAnEarlyBadChunkStopsTheReader) {
  // Views of several MiB: the checkpoint spans several chunks, read and decoded by a second
  // thread while the first builds the views. A bad task in chunk 0 must stop that reader and
  // fall back to the full fold.
  TempDir dir;
  FakeClock clock;
  std::uint64_t seq = 0;
  {
    auto r = Registry::open(dir / "j.db", quiet(clock));
    r.batch([](Batch& b) {
      for (int i = 0; i < 4000; ++i) {
        b.create({.session_id = kSessions[static_cast<std::size_t>(i) % 3],
                  .id = "t" + std::to_string(i),
                  .kind = "tool",
                  .display_name = std::string(1000, 'x')});
      }
    });
    populate(r, 4000, 10);
    seq = r.checkpoint();
    populate(r, 4010, 5);
  }
  RawJournal sql((dir / "j.db").string());
  ASSERT_GE(sql.ints("SELECT chunks FROM checkpoints").at(0), 3);
  {
    auto r = Registry::open(dir / "j.db", quiet(clock));
    EXPECT_EQ(r.open_report().checkpoint_seq, seq);
    EXPECT_EQ(dump(r), full_fold(dir / "j.db", dir / "copy.db", clock));
  }
  events::CheckpointEncoder encoder;
  std::string first_id;
  for (auto& e : events::decode_checkpoint_chunk(chunk(sql, seq, 0)).entries) {
    if (first_id.empty()) first_id = e.task.id;
    e.task.id = first_id;  // every task of chunk 0 the same id
    encoder.add(e.task, e.messages, e.events);
  }
  set_chunk(sql, seq, 0, encoder.take(), /*fix_digest=*/true);
  auto r = Registry::open(dir / "j.db", quiet(clock));
  EXPECT_EQ(r.open_report().checkpoint_seq, 0u);
  ASSERT_EQ(r.open_report().ignored_checkpoints.size(), 1u);
  EXPECT_NE(r.open_report().ignored_checkpoints[0].find("stored twice"), std::string::npos)
      << r.open_report().ignored_checkpoints[0];
  EXPECT_EQ(dump(r), full_fold(dir / "j.db", dir / "copy.db", clock));
}
