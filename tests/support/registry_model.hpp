// A model of the Registry (CONTRACT §4, §5, §7) for the model-based and replay properties.
//
// The model is a plain in-memory map driven by new_session_task / apply_task_update. It predicts,
// for every operation, the answer (value, nothing or error code), the events written to the
// journal, and the notifications of §5. Ids the registry generates are random, so the model
// names them symbolically ("task_#0", "tmsg_#3", numbered in creation order) and the Sut learns
// the real id from the registry's answer; expected values are translated to real ids before they
// are compared.
//
// Time is deterministic: operation n runs at time_at(n), and the Sut's FakeClock is set to it
// before each call, so every timestamp is compared exactly.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <rapidcheck.h>
#include <rapidcheck/state.h>

#include "events/event.hpp"
#include "projections/views.hpp"
#include "store/journal.hpp"
#include "support/fake_clock.hpp"
#include "support/generators.hpp"
#include "support/journals.hpp"
#include "support/temp_dir.hpp"
#include "taskjournal/taskjournal.hpp"

namespace taskjournal::testing::model {

// ---- Operations ---------------------------------------------------------------------------------

struct CreateOp {
  CreateSessionTask input;  ///< bad input: kind ""
};
struct UpdateOp {
  std::string session, task;
  SessionTaskUpdate update;
  bool bad = false;  ///< update.state_detail is not UTF-8
};
struct GetOp {
  std::string session, task;
};
struct ListOp {
  std::string session;
  SessionTaskFilter filter;
};
struct CancelOp {
  std::string session, task;
};
struct RecordOp {
  std::string session, task;
  NewTaskMessage message;
  bool bad = false;  ///< the message has a data part that is not JSON
};
struct ListMessagesOp {
  std::string session, task;
  std::optional<std::uint32_t> limit;
  std::optional<std::string> after;
};
struct HistoryOp {
  std::string session, task;
};
struct ReopenOp {};
/// prune_terminal(ttl, limit) (docs/contract.md §4.11); generated only with allow_prune.
struct PruneOp {
  std::chrono::seconds ttl{1};  ///< bad input: ≤ 0
  std::uint32_t limit = 100;    ///< bad input: 0
};

using Op = std::variant<CreateOp, UpdateOp, GetOp, ListOp, CancelOp, RecordOp, ListMessagesOp,
                        HistoryOp, ReopenOp, PruneOp>;

std::ostream& operator<<(std::ostream& os, const Op& op);

}  // namespace taskjournal::testing::model

namespace taskjournal {
/// PrunedTask{.session_id = …, .task_id = …, .result_path = …} (found by ADL when printing).
std::ostream& operator<<(std::ostream& os, const PrunedTask& v);
}  // namespace taskjournal

namespace taskjournal::testing::model {

// ---- Answers and notifications ------------------------------------------------------------------

/// What a call returned. History is predicted as events (translated to JournalEntry by the Sut).
using Answer =
    std::variant<std::monostate, ErrorCode, SessionTask, std::optional<SessionTask>,
                 std::vector<SessionTask>, TaskMessage, std::vector<TaskMessage>,
                 std::vector<events::Event>, std::vector<JournalEntry>, std::vector<PrunedTask>>;

std::ostream& operator<<(std::ostream& os, const Answer& a);

struct Notes {
  std::vector<RegistryEvent> events;
  std::vector<std::pair<TaskTransition, SessionTask>> transitions;
  std::vector<WakeNotice> wakes;
  bool operator==(const Notes&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Notes& n);

struct Outcome {
  Answer answer;
  Notes notes;
};

// ---- The model ----------------------------------------------------------------------------------

Timestamp time_at(std::int64_t tick);

std::string task_label(const SessionTask& task);

struct Model {
  struct Entry {
    SessionTask task;
    std::vector<TaskMessage> messages;
  };
  std::map<std::string, Entry> tasks;  // by (symbolic) id
  std::vector<std::string> order;      // ids in creation order
  /// The tasks pruned (gone from `tasks` and `order`): id → session. Their events stay in
  /// `journal` (history), and their ids are never created again (Conflict).
  std::map<std::string, std::string> pruned;
  std::vector<events::Event> journal;  // every event written, in order
  int generated_tasks = 0;
  int generated_messages = 0;
  std::int64_t tick = 0;

  Entry* find(const std::string& session, const std::string& id) {
    auto it = tasks.find(id);
    return it == tasks.end() || it->second.task.session_id != session ? nullptr : &it->second;
  }
  const Entry* find(const std::string& session, const std::string& id) const {
    return const_cast<Model*>(this)->find(session, id);
  }
};

bool is_generated_task_ref(const std::string& id);
bool is_generated_message_ref(const std::string& id);

/// False for an operation that shrinking made meaningless: a create that supplies the symbolic id
/// of a generated task that does not exist (yet) and was not pruned.
bool valid(const Model& m, const Op& op);

/// The model's own rule of docs/contract.md §4.11 (not the library's): the terminal tasks whose
/// finished_at is older than now − ttl, oldest finished_at first, ties by (symbolic) id, at most
/// min(limit, 1000). The model's finished_at are all distinct (one operation per tick finishes at
/// most one task), so the tie rule never decides and symbolic ids order like the real ones.
std::vector<PrunedTask> prune_candidates(const Model& m, Timestamp now, std::chrono::seconds ttl,
                                         std::uint32_t limit);

/// CONTRACT §4 list on the model.
std::vector<SessionTask> list_of(const Model& m, const std::string& session,
                                 const SessionTaskFilter& filter = {});

/// The registry refuses (InvalidArgument) a heartbeat_at outside the years 0000–9999, which
/// RFC 3339 cannot express.
bool in_rfc3339_range(Timestamp t);

namespace detail {

std::uint64_t append(Model& m, Timestamp now, const std::string& session, const std::string& task,
                     events::Payload payload);

void transition(Notes& notes, TaskTransition t, const SessionTask& task, std::string text);

RegistryEvent task_event(std::string type, std::uint64_t seq, const SessionTask& task);

bool is_blank(const std::string& s);

}  // namespace detail

/// Runs `op` on the model at time_at(++tick) and returns what the registry must answer and notify.
Outcome step(Model& m, const Op& op);

// ---- Generating operations from the model -------------------------------------------------------

/// An operation that is likely to hit something interesting in `m`: mostly existing tasks (in
/// their own session, sometimes from a foreign one), replies to pending requests, fences near the
/// current attempt, cursors naming this task's, another task's or no message. With
/// `allow_prune`, also prune_terminal with ttls of a few ticks (and sometimes bad arguments), and
/// the other operations then target pruned tasks too.
rc::Gen<Op> op_gen(const Model& m, bool allow_reopen = true, bool allow_prune = false);

// ---- The system under test ----------------------------------------------------------------------

/// What run_step compares besides the answer.
struct Checks {
  bool writes = true;          ///< last_seq() equals the number of events the model wrote
  bool notifications = false;  ///< the subscribers saw exactly the predicted notifications
};

/// `registries` Registry objects on one journal file, with subscribers recording what they see.
class Sut {
 public:
  explicit Sut(std::size_t registries = 1) : at_(journal_at(dir_, "journal.db")) {
    for (std::size_t i = 0; i < registries; ++i) regs_.emplace_back();
    open_all();
  }
  Sut(const Sut&) = delete;
  Sut& operator=(const Sut&) = delete;

  /// The journal, on the engine under test (support/journals.hpp).
  const JournalLocation& location() const { return at_; }
  std::size_t size() const { return regs_.size(); }
  Registry& registry(std::size_t i) { return *regs_[i]; }
  /// What run_step checks besides the answers, for the commands run on this Sut.
  Checks checks;
  FakeClock& clock() { return clock_; }
  Notes& seen() { return seen_; }

  /// Closes every registry, then opens them again (subscribers reconnected).
  void reopen();

  // Symbolic ↔ real ids.
  std::string real_task(const std::string& id) const { return lookup(id, "task_#", task_ids_); }
  std::string real_message(const std::string& id) const {
    return lookup(id, "tmsg_#", message_ids_);
  }
  SessionTask real(SessionTask t) const {
    t.id = real_task(t.id);
    return t;
  }
  TaskMessage real(TaskMessage m) const;
  events::Event real(events::Event e) const;
  JournalEntry entry(const events::Event& symbolic) const;
  template <class T>
  std::vector<T> real(const std::vector<T>& v) const {
    std::vector<T> out;
    for (const auto& x : v) out.push_back(real(x));
    return out;
  }
  Answer real(const Answer& a) const;
  std::string real_text(std::string text, const std::string& symbolic_id) const;
  Notes real(const Notes& n) const;

  /// Runs `op` on registry `which` and returns its answer (an Error's code for an Error).
  /// Learns generated ids: `expected` is the model's (symbolic) answer.
  Answer execute(const Op& op, std::size_t which, const Answer& expected);

 private:
  static std::string lookup(const std::string& id, std::string_view prefix,
                            const std::vector<std::string>& known);

  void open_all();

  TempDir dir_ = TempDir::in_memory("taskjournal-props");
  JournalLocation at_;
  FakeClock clock_;
  std::vector<std::optional<Registry>> regs_;
  std::vector<Subscription> subs_;
  Notes seen_;
  std::vector<std::string> task_ids_;
  std::vector<std::string> message_ids_;
};

// ---- Checking a step ----------------------------------------------------------------------------

/// Runs `op` on the model and on registry `which` of `sut`; "" when they agree, else a readable
/// description of the first difference.
std::string run_step(Model& m, Sut& sut, const Op& op, std::size_t which, const Checks& checks);

/// Compares every session's list and every task's messages of registry `which` with the model,
/// and for every pruned task that get() gives nothing, list_messages() is empty and history()
/// is the model's (its events, task_pruned last); "" when equal.
std::string compare_views(const Model& m, Sut& sut, std::size_t which);
/// The same for any Registry on the Sut's journal (opened with other options, say).
std::string compare_views(const Model& m, const Sut& sut, Registry& r);

// ---- rc::state ----------------------------------------------------------------------------------

/// One operation on registry `which` as an rc::state command: apply() steps the model, run() runs
/// the operation on the Sut and fails with the first difference (run_step with sut.checks).
struct OpCommand : rc::state::Command<Model, Sut> {
  Op op;
  std::size_t which = 0;
  OpCommand(Op o, std::size_t w) : op(std::move(o)), which(w) {}

  void checkPreconditions(const Model& s0) const override { RC_PRE(valid(s0, op)); }
  void apply(Model& s0) const override { step(s0, op); }
  void run(const Model& s0, Sut& sut) const override {
    Model m = s0;
    const std::string diff = run_step(m, sut, op, which, sut.checks);
    if (!diff.empty()) RC_FAIL(diff);
  }
  void show(std::ostream& os) const override {
    if (which != 0) os << "[registry " << which << "] ";
    os << op;
  }
};

using CommandPtr = std::shared_ptr<const rc::state::Command<Model, Sut>>;

/// Commands for a Sut of `registries` registries, each sent to one of them at random.
rc::Gen<CommandPtr> command_gen(const Model& m, std::size_t registries, bool allow_reopen,
                                bool allow_prune = false);

/// Generates a command sequence (1 to max_size + 1 commands), runs it on `sut` with rc::state
/// (shrinking removes commands), and returns the model after it.
Model run_commands(Sut& sut, bool allow_reopen = true, bool allow_prune = false);

}  // namespace taskjournal::testing::model
