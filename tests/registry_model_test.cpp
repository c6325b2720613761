// Model-based test of the Registry with rc::state (issue 3, item 3).
//
// Commands: create (without an id, with a pool id, with the id of an existing task of this or
// another session, with bad input), update, get, list with filters, request_cancel,
// record_message (replies to the pending request, stale fences, unknown and foreign tasks, bad
// input), list_messages (limits and cursors), history, and close-and-reopen. The model
// (support/registry_model.hpp) is a map driven by apply_task_update; after every command the
// registry's answer (value, nothing, or error code) and its last_seq() equal the model's.
//
// With pruning (issue 13 item 1, docs/contract.md §4.11) the commands also include
// prune_terminal(ttl, limit); the model removes the tasks its own rule says are pruned, and the
// other commands go on targeting them (missing for every call but history and create). After the
// sequence, the journal replayed, reopened, restored from a checkpoint or folded from the first
// event equals the model with the pruned tasks removed.
// Case counts: RC_PARAMS; a case runs up to max_size + 1 commands on a journal file.
#include "support/registry_model.hpp"

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

namespace tj = taskjournal;
namespace tjt = taskjournal::testing;
namespace tjm = taskjournal::testing::model;

namespace {

/// The model's views as JournalReader::replay gives them: every task left, in creation order,
/// with its messages.
std::vector<tj::TaskView> model_snapshot(const tjm::Model& m, const tjm::Sut& sut) {
  std::vector<tj::TaskView> out;
  for (const auto& id : m.order) {
    const auto& e = m.tasks.at(id);
    out.push_back(tj::TaskView{sut.real(e.task), sut.real(e.messages)});
  }
  return out;
}

/// "" when every event of the journal equals the model's (seq, type, time, ids, payload).
std::string compare_events(const tjm::Model& m, const tjm::Sut& sut, tj::JournalReader& reader) {
  std::vector<tj::JournalEvent> file;
  reader.read(0, [&](const tj::JournalEvent& e) {
    file.push_back(e);
    return true;
  });
  if (file.size() != m.journal.size()) {
    return "the journal holds " + std::to_string(file.size()) + " events, the model wrote " +
           std::to_string(m.journal.size());
  }
  for (std::size_t i = 0; i < file.size(); ++i) {
    const tj::JournalEntry want = sut.entry(m.journal[i]);
    const tj::JournalEvent& got = file[i];
    if (got.seq != want.seq || got.type != want.type || got.recorded_at != want.recorded_at ||
        got.session_id != want.session_id || got.task_id != want.task_id ||
        got.payload != want.payload) {
      std::ostringstream why;
      why << "event " << got.seq << " differs\n  journal: " << got.type << " " << got.session_id
          << "/" << got.task_id << " " << got.payload << "\n  model:   " << want;
      return why.str();
    }
  }
  return {};
}

}  // namespace

RC_GTEST_PROP(RegistryModelProps, AnswersEqualTheModel, ()) {
  tjm::Sut sut;
  sut.checks = {.writes = true, .notifications = false};
  const tjm::Model m = tjm::run_commands(sut);

  // The final state, seen through list and list_messages, equals the model's.
  const std::string diff = tjm::compare_views(m, sut, 0);
  if (!diff.empty()) RC_FAIL(diff);
}

// With prune_terminal among the commands: every answer (the pruned tasks and their result paths,
// in order) and every last_seq() equal the model's, pruning notifies nobody, and the calls on a
// pruned task answer as the model (which prunes by its own rule) says.
RC_GTEST_PROP(RegistryModelProps, AnswersWithPruningEqualTheModel, ()) {
  tjm::Sut sut;
  sut.checks = {.writes = true, .notifications = true};
  const tjm::Model m = tjm::run_commands(sut, /*allow_reopen=*/true, /*allow_prune=*/true);
  RC_TAG(m.pruned.empty() ? "nothing pruned" : "pruned");
  const std::string diff = tjm::compare_views(m, sut, 0);
  if (!diff.empty()) RC_FAIL(diff);
}

// Prune, then replay: the journal holds exactly the model's events (task_pruned included), its
// replay gives the model's views with the pruned tasks removed, it verifies, and it declares
// schema version 2 exactly when something was pruned. Reopening, opening without the checkpoint
// and (SQLite) restoring a checkpoint taken after the pruning show the same views.
RC_GTEST_PROP(RegistryModelProps, PruneThenReplayEqualsTheModelWithoutThePrunedTasks, ()) {
  tjm::Sut sut;
  const tjm::Model m = tjm::run_commands(sut, /*allow_reopen=*/true, /*allow_prune=*/true);
  RC_TAG(m.pruned.empty() ? "nothing pruned" : "pruned");

  tj::JournalReader reader = tjt::open_reader(sut.location());
  const std::string events = compare_events(m, sut, reader);
  if (!events.empty()) RC_FAIL(events);
  const tj::JournalSnapshot snapshot = reader.replay();
  TJ_RC_ASSERT_EQ(snapshot.last_seq, static_cast<std::uint64_t>(m.journal.size()));
  const std::vector<tj::TaskView> want = model_snapshot(m, sut);
  TJ_RC_ASSERT_EQ(snapshot.tasks.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    TJ_RC_ASSERT_EQ(snapshot.tasks[i].task, want[i].task);
    TJ_RC_ASSERT_EQ(snapshot.tasks[i].messages, want[i].messages);
  }
  const tj::VerifyReport report = reader.verify();
  if (!report.ok()) RC_FAIL("verify: " + report.problems.front().what);
  TJ_RC_ASSERT_EQ(report.tasks, m.tasks.size());
  if (!m.journal.empty()) TJ_RC_ASSERT_EQ(reader.schema_version(), m.pruned.empty() ? 1 : 2);

  sut.reopen();
  std::string diff = tjm::compare_views(m, sut, 0);
  if (!diff.empty()) RC_FAIL("after reopening: " + diff);

  {
    tj::Registry folded =
        tjt::open_registry(sut.location(), tj::Options{.open_from_checkpoint = false});
    diff = tjm::compare_views(m, sut, folded);
    if (!diff.empty()) RC_FAIL("folded from the first event: " + diff);
  }

  if (sut.location().engine == tjt::TestEngine::Sqlite) {
    const std::uint64_t seq = sut.registry(0).checkpoint();
    TJ_RC_ASSERT_EQ(seq, static_cast<std::uint64_t>(m.journal.size()));
    tj::Registry restored = tjt::open_registry(sut.location());
    TJ_RC_ASSERT_EQ(restored.open_report().checkpoint_seq, seq);
    TJ_RC_ASSERT_EQ(restored.open_report().events_folded, std::uint64_t{0});
    diff = tjm::compare_views(m, sut, restored);
    if (!diff.empty()) RC_FAIL("restored from a checkpoint: " + diff);
  }
}

// Two registries on one journal, every command (prune_terminal included) sent to one of them at
// random: each agrees with the model at every step, whichever of them pruned, and at the end.
RC_GTEST_PROP(RegistryModelProps, TwoRegistriesPruningInterleavedEqualTheModel, ()) {
  tjm::Sut sut(2);
  sut.checks = {.writes = true, .notifications = true};
  const tjm::Model m = tjm::run_commands(sut, /*allow_reopen=*/true, /*allow_prune=*/true);
  RC_TAG(m.pruned.empty() ? "nothing pruned" : "pruned");
  for (std::size_t i = 0; i < 2; ++i) {
    const std::string diff = tjm::compare_views(m, sut, i);
    if (!diff.empty()) RC_FAIL("registry " + std::to_string(i) + ": " + diff);
  }
}
