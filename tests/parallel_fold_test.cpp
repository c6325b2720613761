// The parallel verified fold (issue 14, item 2; store/parallel_chain.hpp): hashing and decoding
// on worker threads give exactly what the sequential verifier gives — the same views, the same
// events handed over, the same problems in the same order with the same messages — on random
// journals, also damaged ones; a sink or reporter that throws stops the workers and propagates.
// Case counts: RC_PARAMS.
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "events/event.hpp"
#include "store/journal.hpp"
#include "store/parallel_chain.hpp"
#include "support/event_generators.hpp"
#include "support/generators.hpp"
#include "support/raw_journal.hpp"
#include "support/registry_model.hpp"
#include "support/temp_dir.hpp"
#include "taskjournal/taskjournal.hpp"

namespace tj = taskjournal;
namespace tjt = taskjournal::testing;
namespace tjm = taskjournal::testing::model;
namespace ev = taskjournal::events;
using tj::store::FoldMode;
using tj::store::FoldTuning;

namespace {

// Every scan of the process runs under `tuning` while it lives.
class Tuned {
 public:
  explicit Tuned(const FoldTuning& tuning) : old_(tj::store::fold_tuning()) {
    tj::store::set_fold_tuning(tuning);
  }
  ~Tuned() { tj::store::set_fold_tuning(old_); }
  Tuned(const Tuned&) = delete;
  Tuned& operator=(const Tuned&) = delete;

 private:
  FoldTuning old_;
};

const FoldTuning kSequential{.mode = FoldMode::Sequential};

std::string error_text(const tj::Error& e) {
  return std::to_string(static_cast<int>(e.code())) + " " + e.what();
}

// Everything a journal's readers show: verify's report, replay's views, read's events, the
// journal's own read_new (other sessions' payloads not decoded, and all of them), events_up_to,
// a read-only registry's views and a copy of the journal (store/copy.cpp).
struct Outcome {
  std::vector<tj::JournalProblem> problems;
  std::uint64_t verified_events = 0;
  std::uint64_t verified_last = 0;
  std::size_t verified_tasks = 0;
  std::size_t verified_messages = 0;
  bool truncated = false;

  std::vector<tj::TaskView> replayed;
  std::uint64_t replayed_last = 0;
  std::string replay_error;

  std::vector<tj::JournalEvent> read;  // stopped after `stop_after` events
  std::string read_error;

  std::vector<std::string> journal;  // seq, session, payload (only for the first session)
  std::uint64_t journal_verified = 0;
  std::string journal_error;

  std::vector<std::string> all;  // read_new without a filter: seq, session, payload
  std::uint64_t all_verified = 0;
  std::string all_error;

  std::vector<std::string> up_to;  // events_up_to the newest row
  std::string up_to_error;

  std::vector<std::vector<tj::SessionTask>> lists;
  std::vector<std::vector<tj::TaskMessage>> messages;
  std::string registry_error;

  std::uint64_t copied = 0;
  std::string copy_digest;  // or the copy's error

  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  os << "verify: " << o.verified_events << " events, last " << o.verified_last << ", "
     << o.verified_tasks << " tasks, " << o.verified_messages << " messages"
     << (o.truncated ? ", truncated" : "") << "\n";
  for (const auto& p : o.problems) os << "  problem " << p.seq << " " << p.what << "\n";
  os << "replay: " << o.replayed.size() << " tasks, last " << o.replayed_last << " "
     << o.replay_error << "\n";
  for (const auto& v : o.replayed) {
    os << "  ";
    tj::print_detail::value(os, v.task);
    os << " messages " << v.messages.size() << "\n";
  }
  os << "read: " << o.read.size() << " events " << o.read_error << "\n";
  for (const auto& e : o.read) os << "  " << e.seq << " " << e.type << "\n";
  os << "journal: verified " << o.journal_verified << " " << o.journal_error << "\n";
  for (const auto& e : o.journal) os << "  " << e << "\n";
  os << "read_new all: verified " << o.all_verified << " " << o.all_error << "\n";
  for (const auto& e : o.all) os << "  " << e << "\n";
  os << "events_up_to: " << o.up_to.size() << " " << o.up_to_error << "\n";
  os << "copy: " << o.copied << " " << o.copy_digest << "\n";
  os << "registry: " << o.registry_error << "\n  lists ";
  tj::print_detail::value(os, o.lists);
  os << "\n  messages ";
  tj::print_detail::value(os, o.messages);
  return os << "\n";
}

Outcome outcome_of(const std::string& path, std::size_t stop_after) {
  Outcome o;
  auto reader = tj::JournalReader::open(path);
  const tj::VerifyReport report = reader.verify({.max_problems = 1000});
  o.problems = report.problems;
  o.verified_events = report.events;
  o.verified_last = report.last_seq;
  o.verified_tasks = report.tasks;
  o.verified_messages = report.messages;
  o.truncated = report.truncated;
  try {
    const tj::JournalSnapshot snap = reader.replay();
    o.replayed = snap.tasks;
    o.replayed_last = snap.last_seq;
  } catch (const tj::Error& e) {
    o.replay_error = error_text(e);
  }
  try {
    reader.read(0, [&](const tj::JournalEvent& e) {
      o.read.push_back(e);
      return o.read.size() < stop_after;
    });
  } catch (const tj::Error& e) {
    o.read_error = error_text(e);
  }

  const std::string wanted = tjt::session_pool().front();
  tj::store::Journal journal(tj::store::JournalConfig{.path = path, .read_only = true});
  try {
    journal.read_new(
        [&](ev::Event&& e) {
          std::string line = std::to_string(e.seq) + " " + e.session_id + " " + e.task_id;
          if (e.session_id == wanted) line += " " + ev::payload_json(e.payload);
          o.journal.push_back(std::move(line));
        },
        [&](std::string_view session) { return session == wanted; });
  } catch (const tj::Error& e) {
    o.journal_error = error_text(e);
  }
  o.journal_verified = journal.verified_seq();

  tj::store::Journal all(tj::store::JournalConfig{.path = path, .read_only = true});
  try {
    all.read_new([&](ev::Event&& e) {
      o.all.push_back(std::to_string(e.seq) + " " + e.session_id + " " + e.task_id + " " +
                      ev::payload_json(e.payload));
    });
  } catch (const tj::Error& e) {
    o.all_error = error_text(e);
  }
  o.all_verified = all.verified_seq();
  try {
    all.events_up_to(all.newest_seq(), [&](ev::Event&& e) {
      o.up_to.push_back(std::to_string(e.seq) + " " + ev::payload_json(e.payload));
    });
  } catch (const tj::Error& e) {
    o.up_to_error = error_text(e);
  }

  try {
    auto registry =
        tj::Registry::open(path, tj::Options{.read_only = true, .open_from_checkpoint = false});
    for (const auto& session : tjt::session_pool()) {
      o.lists.push_back(registry.list(session));
      for (const auto& task : o.lists.back()) {
        o.messages.push_back(registry.list_messages(session, task.id));
      }
    }
  } catch (const tj::Error& e) {
    o.registry_error = error_text(e);
  }

  const std::string copy = path + ".copy";
  std::filesystem::remove(copy);
  try {
    const tj::CopyResult result = tj::copy_journal(path, copy, {.batch_events = 16});
    o.copied = result.copied;
    o.copy_digest = result.digest.hash;
  } catch (const tj::Error& e) {
    o.copy_digest = error_text(e);
  }
  std::filesystem::remove(copy);
  return o;
}

// Damage to one row `seq` of a journal, as a tool other than taskjournal could do it.
enum Damage { AlterRow, DeleteRow, GarbagePayload, UnknownType, BadVersion, kDamages };

std::string damage_sql(int damage, std::uint64_t seq) {
  const std::string where = " WHERE seq = " + std::to_string(seq);
  switch (damage) {
    case AlterRow:
      return "UPDATE events SET recorded_at = recorded_at + 1" + where;
    case DeleteRow:
      return "DELETE FROM events" + where;
    case GarbagePayload:
      return "UPDATE events SET payload = x'ff00'" + where;
    case UnknownType:
      return "UPDATE events SET type = 'task_exploded'" + where;
    default:
      return "UPDATE events SET version = 99" + where;
  }
}

// Events of the registry model, then events of any type appended with a valid chain (some of
// them of unknown tasks, or not decodable), then damage to rows anywhere.
void make_random_journal(tjm::Sut& sut) {
  tjm::run_commands(sut, /*allow_reopen=*/false);
  const std::string path = sut.location().where;
  tjt::RawJournal raw(path);
  raw.drop_triggers();
  const int appended = *tjt::uniform(0, 120);
  for (int i = 0; i < appended; ++i) {
    if (*tjt::uniform(0, 8) == 0) {
      // Chained, but the payload does not decode.
      raw.append("task_updated", 1, tj::Timestamp{}, tjt::session_pool().front(), "task_bad",
                 "\xff\x01");
    } else {
      raw.append(*tjt::event_of(*tjt::uniform(0, 5)));
    }
  }
  const std::uint64_t rows = raw.tail().first;
  const int damages = *tjt::uniform(0, 4) == 0 ? 0 : *tjt::uniform(1, 5);
  for (int i = 0; rows > 0 && i < damages; ++i) {
    const auto seq = *tjt::uniform<std::uint64_t>(1, rows + 1);
    raw.exec(damage_sql(*tjt::uniform(0, static_cast<int>(kDamages)), seq));
  }
}

}  // namespace

// Sequential and parallel verified folds are equal on random journals, damaged or not: the
// same views, events, verify report and errors, whatever the batch size and worker count.
RC_GTEST_PROP(ParallelFold, SequentialAndParallelVerifiedFoldAreEqualOnRandomJournals, ()) {
  tjm::Sut sut;
  make_random_journal(sut);
  const std::string path = sut.location().where;
  const auto rows = tjt::RawJournal(path, tjt::RawJournal::Mode::ReadOnly).tail().first;
  RC_CLASSIFY(rows > 60, "more than 60 rows");
  const auto stop_after = *tjt::uniform<std::size_t>(1, 200);
  const FoldTuning parallel{
      .mode = *rc::gen::element(FoldMode::Parallel, FoldMode::Auto, FoldMode::ScanThread),
      .parallel_after = *tjt::uniform<std::uint64_t>(0, 40),
      .workers = *tjt::uniform(1U, 5U),
      .batch_rows = *tjt::uniform<std::size_t>(1, 40),
      .scan_thread = *rc::gen::element(FoldTuning::Scan::Never, FoldTuning::Scan::Always),
      .scan_thread_workers = *tjt::uniform(0, 3),
  };
  RC_CLASSIFY(
      parallel.mode == FoldMode::ScanThread ||
          (parallel.mode == FoldMode::Auto && parallel.scan_thread == FoldTuning::Scan::Always &&
           rows >= parallel.parallel_after),
      "scan thread");
  Outcome sequential_outcome;
  {
    Tuned tuned(kSequential);
    sequential_outcome = outcome_of(path, stop_after);
  }
  Outcome parallel_outcome;
  {
    Tuned tuned(parallel);
    parallel_outcome = outcome_of(path, stop_after);
  }
  if (!(parallel_outcome == sequential_outcome)) {
    std::ostringstream os;
    os << "parallel (mode " << static_cast<int>(parallel.mode) << ", batches of "
       << parallel.batch_rows << ", " << parallel.workers << " workers, scan thread "
       << static_cast<int>(parallel.scan_thread) << " with " << parallel.scan_thread_workers
       << " workers):\n"
       << parallel_outcome << "sequential:\n"
       << sequential_outcome;
    RC_FAIL(os.str());
  }
}

class ParallelFoldTest : public ::testing::Test {
 protected:
  // A journal of `n` created tasks, each event chained.
  std::string journal_of(int n) {
    const std::string path = (dir_.path() / "journal.db").string();
    auto registry = tj::Registry::open(path);
    for (int i = 0; i < n; ++i) {
      registry.create({.session_id = "sess_a", .kind = "build", .spec = "{}"});
    }
    return path;
  }
  tjt::TempDir dir_ = tjt::TempDir::in_memory("taskjournal-parallel-fold");
};

TEST_F(ParallelFoldTest, ASinkThatThrowsStopsTheParallelReadAndTheNextReadGoesOnFromThere) {
  const std::string path = journal_of(100);
  Tuned tuned({.mode = FoldMode::Parallel, .workers = 3, .batch_rows = 7});
  tj::store::Journal journal(tj::store::JournalConfig{.path = path, .read_only = true});
  std::vector<std::uint64_t> seen;
  struct Stop {};
  EXPECT_THROW(journal.read_new([&](ev::Event&& e) {
    if (e.seq == 40) throw Stop{};
    seen.push_back(e.seq);
  }),
               Stop);
  EXPECT_EQ(seen.size(), 39u);
  EXPECT_EQ(journal.verified_seq(), 39u);
  journal.read_new([&](ev::Event&& e) { seen.push_back(e.seq); });
  ASSERT_EQ(seen.size(), 100u);
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], i + 1);
}

TEST_F(ParallelFoldTest, ASinkThatThrowsStopsTheScanThreadAndTheNextReadGoesOnFromThere) {
  const std::string path = journal_of(100);
  Tuned tuned({.mode = FoldMode::ScanThread, .batch_rows = 7, .scan_thread_workers = 2});
  tj::store::Journal journal(tj::store::JournalConfig{.path = path, .read_only = true});
  std::vector<std::uint64_t> seen;
  struct Stop {};
  EXPECT_THROW(journal.events_up_to(100,
                                    [&](ev::Event&& e) {
                                      if (e.seq == 40) throw Stop{};
                                      seen.push_back(e.seq);
                                    }),
               Stop);
  EXPECT_EQ(seen.size(), 39u);
  EXPECT_THROW(journal.read_new([&](ev::Event&& e) {
    if (e.seq == 40) throw Stop{};
  }),
               Stop);
  EXPECT_EQ(journal.verified_seq(), 39u);
  seen.clear();
  journal.read_new([&](ev::Event&& e) { seen.push_back(e.seq); });
  ASSERT_EQ(seen.size(), 61u);
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], i + 40);
}

TEST_F(ParallelFoldTest, AParallelReadStopsAtTheFirstDamagedRowWithTheSequentialError) {
  const std::string path = journal_of(100);
  {
    tjt::RawJournal raw(path);
    raw.drop_triggers();
    raw.exec("UPDATE events SET payload = x'ff00' WHERE seq = 61");
    raw.exec("DELETE FROM events WHERE seq = 80");
  }
  auto read_all = [&](const FoldTuning& tuning) {
    Tuned tuned(tuning);
    tj::store::Journal journal(tj::store::JournalConfig{.path = path, .read_only = true});
    std::uint64_t last = 0;
    try {
      journal.read_new([&](ev::Event&& e) { last = e.seq; });
    } catch (const tj::Error& e) {
      return std::make_pair(last, std::string(e.what()));
    }
    return std::make_pair(last, std::string("no error"));
  };
  const auto parallel = read_all({.mode = FoldMode::Parallel, .workers = 2, .batch_rows = 16});
  EXPECT_EQ(parallel, read_all(kSequential));
  for (int workers = 0; workers < 3; ++workers) {
    EXPECT_EQ(
        read_all({.mode = FoldMode::ScanThread, .batch_rows = 16, .scan_thread_workers = workers}),
        parallel);
  }
  EXPECT_EQ(parallel.first, 60u);
  EXPECT_EQ(parallel.second,
            path + ": event 61: hash mismatch (row altered, removed or reordered)");
}

TEST_F(ParallelFoldTest, ASinkThatStopsEarlyEndsTheParallelScanAndTheVerifierStandsThere) {
  const std::string path = journal_of(50);
  Tuned tuned({.mode = FoldMode::Parallel, .workers = 2, .batch_rows = 4});
  auto reader = tj::JournalReader::open(path);
  std::vector<std::uint64_t> seen;
  reader.read(0, [&](const tj::JournalEvent& e) {
    seen.push_back(e.seq);
    return e.seq < 10;
  });
  EXPECT_EQ(seen.size(), 10u);
  const auto snap = reader.replay({.seq = 30});
  EXPECT_EQ(snap.last_seq, 30u);
  EXPECT_EQ(snap.tasks.size(), 30u);
}

TEST(ParallelFoldTuning, AutoUsesOneWorkerPerCoreBesidesTheCallerCappedAtEight) {
  const unsigned n = tj::store::fold_workers({});
  EXPECT_GE(n, 1u);
  EXPECT_LE(n, 8u);
  EXPECT_EQ(tj::store::fold_workers({.workers = 3}), 3u);
}
