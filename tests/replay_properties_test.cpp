// Replay properties (issue 3, item 4), over generated command sequences on a journal file:
//   - closing and reopening gives the same views, and so does folding the file from scratch;
//     the file holds exactly the events the model predicts;
//   - history() of a task is that task's events in the journal, and folding them from nothing
//     gives the task's snapshot;
//   - two Registry objects on one file, commands interleaved between them at random, agree with
//     the model at every step and at the end;
//   - the notifications subscribers see are exactly CONTRACT §5's, none for a rejected call.
//   - a checkpoint taken after any event, restored, then folded on, equals the full fold.
// Case counts: RC_PARAMS; a case runs 1 to max_size + 1 commands (rc::state).
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "events/checkpoint.hpp"
#include "events/event.hpp"
#include "projections/views.hpp"
#include "store/journal.hpp"
#include "support/event_generators.hpp"
#include "support/registry_model.hpp"
#include "taskjournal/taskjournal.hpp"

namespace tj = taskjournal;
namespace tjt = taskjournal::testing;
namespace tjm = taskjournal::testing::model;
namespace ev = taskjournal::events;

namespace {

/// Everything a registry shows: each session's list, each task's messages and history.
struct Views {
  std::vector<std::vector<tj::SessionTask>> lists;
  std::vector<std::vector<tj::TaskMessage>> messages;
  std::vector<std::vector<tj::JournalEntry>> histories;
  bool operator==(const Views&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Views& v) {
  os << "lists ";
  tj::print_detail::value(os, v.lists);
  os << "\nmessages ";
  tj::print_detail::value(os, v.messages);
  os << "\nhistories ";
  tj::print_detail::value(os, v.histories);
  return os;
}

Views views_of(const tjm::Model& m, tjm::Sut& sut, tj::Registry& r) {
  Views v;
  for (const auto& session : tjt::session_pool()) v.lists.push_back(r.list(session));
  for (const auto& id : m.order) {
    const auto& task = m.tasks.at(id).task;
    v.messages.push_back(r.list_messages(task.session_id, sut.real_task(id)));
    v.histories.push_back(r.history(task.session_id, sut.real_task(id)));
  }
  return v;
}

/// Every event in the file, read and verified by a fresh read-only journal connection.
std::vector<ev::Event> read_file(const tjm::Sut& sut) {
  tj::store::Journal journal(
      tj::store::JournalConfig{.kind = sut.location().engine == tj::testing::TestEngine::Postgresql
                                           ? tj::store::EngineKind::Postgresql
                                           : tj::store::EngineKind::Sqlite,
                               .path = sut.location().where,
                               .read_only = true});
  std::vector<ev::Event> out;
  journal.read_new([&](ev::Event&& e) { out.push_back(std::move(e)); });
  return out;
}

/// The fold of one task's events from nothing, written out from CONTRACT §2–§4 (not
/// projections::Views).
std::optional<tj::SessionTask> fold_task(const std::vector<ev::Event>& events) {
  std::optional<tj::SessionTask> task;
  for (const auto& e : events) {
    if (const auto* c = std::get_if<ev::TaskCreated>(&e.payload)) {
      task = tj::new_session_task(c->input, e.recorded_at);
      continue;
    }
    if (!task) return std::nullopt;
    if (const auto* u = std::get_if<ev::TaskUpdated>(&e.payload)) {
      tj::apply_task_update(*task, u->update, e.recorded_at);
    } else if (std::holds_alternative<ev::CancelRequested>(e.payload)) {
      if (!task->cancel_requested_at) task->cancel_requested_at = task->updated_at = e.recorded_at;
    } else if (const auto* r = std::get_if<ev::MessageRecorded>(&e.payload)) {
      const auto& msg = r->message;
      if (msg.direction == tj::TaskMessageDirection::Inbound && msg.in_reply_to &&
          task->input_request && task->input_request->id == *msg.in_reply_to) {
        tj::apply_task_update(*task, {.state = tj::SessionTaskState::Running}, e.recorded_at);
      }
    }
  }
  return task;
}

}  // namespace

// Closing and reopening gives the same lists, messages and histories; the file holds exactly the
// events the model predicts; folding it from scratch (projections::Views) gives every task and
// message list the registry shows.
RC_GTEST_PROP(ReplayProps, ReopenAndFoldGiveTheSameViews, ()) {
  tjm::Sut sut;
  const tjm::Model m = tjm::run_commands(sut, /*allow_reopen=*/false);
  const Views before = views_of(m, sut, sut.registry(0));
  sut.reopen();
  const Views after = views_of(m, sut, sut.registry(0));
  TJ_RC_ASSERT_EQ(after, before);
  const std::string diff = tjm::compare_views(m, sut, 0);
  if (!diff.empty()) RC_FAIL("after reopening: " + diff);

  const std::vector<ev::Event> file = read_file(sut);
  TJ_RC_ASSERT_EQ(file, sut.real(m.journal));

  tj::projections::Views folded;
  for (const auto& e : file) folded.apply(e);
  TJ_RC_ASSERT_EQ(folded.last_seq(), sut.registry(0).last_seq());
  for (const auto& id : m.order) {
    const auto& task = m.tasks.at(id).task;
    const std::string real = sut.real_task(id);
    const tj::SessionTask* f = folded.find(task.session_id, real);
    RC_ASSERT(f != nullptr);
    TJ_RC_ASSERT_EQ(std::optional<tj::SessionTask>(*f), sut.registry(0).get(task.session_id, real));
    TJ_RC_ASSERT_EQ(folded.messages(task.session_id, real, std::nullopt, std::nullopt),
                    sut.registry(0).list_messages(task.session_id, real));
  }
  for (const auto& session : tjt::session_pool()) {
    TJ_RC_ASSERT_EQ(folded.list(session, {}), sut.registry(0).list(session));
  }
}

// history() is the task's events in journal order (as JournalEntry: seq, type, time, ids, payload
// JSON), and folding those events from nothing gives the task's snapshot.
RC_GTEST_PROP(ReplayProps, HistoryFoldsToTheSnapshot, ()) {
  tjm::Sut sut;
  const tjm::Model m = tjm::run_commands(sut);
  const std::vector<ev::Event> file = read_file(sut);
  for (const auto& id : m.order) {
    const auto& task = m.tasks.at(id).task;
    const std::string real = sut.real_task(id);
    std::vector<ev::Event> own;
    std::vector<tj::JournalEntry> expected;
    for (const auto& e : file) {
      if (e.task_id != real || e.session_id != task.session_id) continue;
      own.push_back(e);
      expected.push_back(tj::JournalEntry{.seq = e.seq,
                                          .type = std::string(ev::type_name(e.payload)),
                                          .recorded_at = e.recorded_at,
                                          .session_id = e.session_id,
                                          .task_id = e.task_id,
                                          .payload = ev::payload_json(e.payload)});
    }
    TJ_RC_ASSERT_EQ(sut.registry(0).history(task.session_id, real), expected);
    TJ_RC_ASSERT_EQ(fold_task(own), sut.registry(0).get(task.session_id, real));
  }
}

// Two registries on one file, every operation sent to one of them at random: each answer, each
// last_seq() and each notification (seen only by the registry that wrote) equals the model's,
// and at the end both show the model's views.
RC_GTEST_PROP(ReplayProps, TwoRegistriesInterleavedEqualTheModel, ()) {
  tjm::Sut sut(2);
  sut.checks = {.writes = true, .notifications = true};
  const tjm::Model m = tjm::run_commands(sut);
  for (std::size_t i = 0; i < 2; ++i) {
    const std::string diff = tjm::compare_views(m, sut, i);
    if (!diff.empty()) RC_FAIL("registry " + std::to_string(i) + ": " + diff);
  }
}

// The RegistryEvents, transitions and wake-ups subscribers see for each call are exactly those
// CONTRACT §5 predicts (in order, with the snapshots and texts), and none for a rejected call.
RC_GTEST_PROP(ReplayProps, NotificationsFollowTheContract, ()) {
  tjm::Sut sut;
  sut.checks = {.writes = true, .notifications = true};
  tjm::run_commands(sut);
}

// A checkpoint taken after any event k restores views equal to the fold of the first k events,
// and folding the events after k into the restored views gives the full fold (issue 6, item 3).
// Through the registry: a checkpoint, then reopening, shows the same views as before.
RC_GTEST_PROP(ReplayProps, CheckpointAtAnyEventThenTheRestEqualsTheFullFold, ()) {
  tjm::Sut sut;
  const tjm::Model m = tjm::run_commands(sut, /*allow_reopen=*/false);
  const std::vector<ev::Event> file = read_file(sut);
  const auto k = *rc::gen::inRange<std::size_t>(0, file.size() + 1);
  const auto chunk_bytes = *rc::gen::element<std::size_t>(1, 300, 1 << 20);

  tj::projections::Views full;
  for (const auto& e : file) full.apply(e);
  tj::projections::Views prefix;
  for (std::size_t i = 0; i < k; ++i) prefix.apply(file[i]);

  ev::CheckpointEncoder encoder;
  std::vector<std::string> chunks;
  prefix.for_each_task([&](const tj::SessionTask& task,
                           const std::vector<tj::TaskMessage>& messages, std::uint64_t events) {
    encoder.add(task, messages, events);
    if (encoder.size() >= chunk_bytes) chunks.push_back(encoder.take());
  });
  if (encoder.size() > 0) chunks.push_back(encoder.take());
  tj::projections::Views restored;
  for (const auto& chunk : chunks) {
    for (auto& e : ev::decode_checkpoint_chunk(chunk).entries) {
      restored.restore_task(std::move(e));
    }
  }
  restored.finish_restore(k);
  RC_ASSERT(restored == prefix);
  for (std::size_t i = k; i < file.size(); ++i) restored.apply(file[i]);
  RC_ASSERT(restored == full);

  const Views before = views_of(m, sut, sut.registry(0));
  const std::uint64_t seq = sut.registry(0).checkpoint();
  sut.reopen();
  TJ_RC_ASSERT_EQ(sut.registry(0).open_report().checkpoint_seq, seq);
  TJ_RC_ASSERT_EQ(views_of(m, sut, sut.registry(0)), before);
}
