#include "support/registry_model.hpp"

#include <algorithm>

namespace taskjournal::testing::model {

std::ostream& operator<<(std::ostream& os, const Op& op) {
  using print_detail::quoted;
  std::visit(
      [&](const auto& o) {
        using O = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<O, CreateOp>) {
          os << "create(" << o.input << ")";
        } else if constexpr (std::is_same_v<O, UpdateOp>) {
          os << "update(";
          quoted(os, o.session);
          os << ", ";
          quoted(os, o.task);
          os << ", " << o.update << (o.bad ? ") [bad input]" : ")");
        } else if constexpr (std::is_same_v<O, GetOp>) {
          os << "get(";
          quoted(os, o.session);
          os << ", ";
          quoted(os, o.task);
          os << ")";
        } else if constexpr (std::is_same_v<O, ListOp>) {
          os << "list(";
          quoted(os, o.session);
          os << ", " << o.filter << ")";
        } else if constexpr (std::is_same_v<O, CancelOp>) {
          os << "request_cancel(";
          quoted(os, o.session);
          os << ", ";
          quoted(os, o.task);
          os << ")";
        } else if constexpr (std::is_same_v<O, RecordOp>) {
          os << "record_message(";
          quoted(os, o.session);
          os << ", ";
          quoted(os, o.task);
          os << ", " << o.message << (o.bad ? ") [bad input]" : ")");
        } else if constexpr (std::is_same_v<O, ListMessagesOp>) {
          os << "list_messages(";
          quoted(os, o.session);
          os << ", ";
          quoted(os, o.task);
          os << ", limit = ";
          print_detail::value(os, o.limit);
          os << ", after_id = ";
          print_detail::value(os, o.after);
          os << ")";
        } else if constexpr (std::is_same_v<O, HistoryOp>) {
          os << "history(";
          quoted(os, o.session);
          os << ", ";
          quoted(os, o.task);
          os << ")";
        } else if constexpr (std::is_same_v<O, PruneOp>) {
          os << "prune_terminal(" << o.ttl.count() << "s, " << o.limit << ")";
        } else {
          os << "close and reopen";
        }
      },
      op);
  return os;
}

}  // namespace taskjournal::testing::model

namespace taskjournal {
std::ostream& operator<<(std::ostream& os, const PrunedTask& v) {
  print_detail::Fields(os, "PrunedTask")("session_id", v.session_id)("task_id", v.task_id)
      .opt("result_path", v.result_path);
  return os;
}
}  // namespace taskjournal

namespace taskjournal::testing::model {

std::ostream& operator<<(std::ostream& os, const Answer& a) {
  std::visit(
      [&](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, std::monostate>) {
          os << "(nothing)";
        } else if constexpr (std::is_same_v<V, ErrorCode>) {
          os << "Error(" << v << ")";
        } else if constexpr (std::is_same_v<V, std::vector<events::Event>>) {
          os << v.size() << " events";
        } else {
          print_detail::value(os, v);
        }
      },
      a);
  return os;
}

std::ostream& operator<<(std::ostream& os, const Notes& n) {
  os << "events ";
  print_detail::value(os, n.events);
  os << "\n  transitions {";
  for (std::size_t i = 0; i < n.transitions.size(); ++i) {
    os << (i ? ", " : "") << n.transitions[i].first << ": " << n.transitions[i].second;
  }
  os << "}\n  wakes ";
  print_detail::value(os, n.wakes);
  return os;
}

Timestamp time_at(std::int64_t tick) {
  // Distinct, increasing, and not round: ticks are 1.000003 s apart.
  return fake_clock_start() + std::chrono::microseconds{tick * 1'000'003};
}

std::string task_label(const SessionTask& task) {
  return "Task \"" + task.display_name + "\" (" + task.id + ")";
}

bool is_generated_task_ref(const std::string& id) { return id.rfind("task_#", 0) == 0; }

bool is_generated_message_ref(const std::string& id) { return id.rfind("tmsg_#", 0) == 0; }

bool valid(const Model& m, const Op& op) {
  if (const auto* c = std::get_if<CreateOp>(&op);
      c && c->input.id && is_generated_task_ref(*c->input.id)) {
    return m.tasks.contains(*c->input.id) || m.pruned.contains(*c->input.id);
  }
  return true;
}

std::vector<PrunedTask> prune_candidates(const Model& m, Timestamp now, std::chrono::seconds ttl,
                                         std::uint32_t limit) {
  struct Candidate {
    Timestamp finished_at;
    const SessionTask* task;
  };
  std::vector<Candidate> found;
  const Timestamp cutoff = now - ttl;
  for (const auto& [id, e] : m.tasks) {
    const SessionTask& t = e.task;
    if (!is_terminal(t.state)) continue;
    // A terminal task always has finished_at (lifecycle invariant); without, it is never old.
    if (t.finished_at && *t.finished_at < cutoff) found.push_back({*t.finished_at, &t});
  }
  std::sort(found.begin(), found.end(), [](const Candidate& a, const Candidate& b) {
    return a.finished_at != b.finished_at ? a.finished_at < b.finished_at : a.task->id < b.task->id;
  });
  const std::size_t n = std::min<std::size_t>({found.size(), limit, 1000});
  std::vector<PrunedTask> out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(PrunedTask{.session_id = found[i].task->session_id,
                             .task_id = found[i].task->id,
                             .result_path = found[i].task->result_path});
  }
  return out;
}

std::vector<SessionTask> list_of(const Model& m, const std::string& session,
                                 const SessionTaskFilter& filter) {
  std::vector<SessionTask> list;
  for (const auto& id : m.order) {
    const SessionTask& t = m.tasks.at(id).task;
    if (t.session_id != session) continue;
    if (filter.kind && t.kind != *filter.kind) continue;
    if (filter.state && t.state != *filter.state) continue;
    list.push_back(t);
  }
  return list;
}

bool in_rfc3339_range(Timestamp t) {
  using namespace std::chrono;
  static const Timestamp first{sys_days{year{0} / January / 1}};
  static const Timestamp end{sys_days{year{10000} / January / 1}};
  return t >= first && t < end;
}

namespace detail {

std::uint64_t append(Model& m, Timestamp now, const std::string& session, const std::string& task,
                     events::Payload payload) {
  const auto seq = static_cast<std::uint64_t>(m.journal.size() + 1);
  m.journal.push_back(events::Event{.seq = seq,
                                    .recorded_at = now,
                                    .session_id = session,
                                    .task_id = task,
                                    .payload = std::move(payload)});
  return seq;
}

void transition(Notes& notes, TaskTransition t, const SessionTask& task, std::string text) {
  notes.transitions.emplace_back(t, task);
  const bool wake =
      task.wake_policy == TaskWakePolicy::OnActivity ||
      (task.wake_policy == TaskWakePolicy::OnTerminal && t == TaskTransition::Terminal);
  if (wake) {
    notes.wakes.push_back(WakeNotice{.session_id = task.session_id,
                                     .task_id = task.id,
                                     .transition = t,
                                     .text = std::move(text)});
  }
}

RegistryEvent task_event(std::string type, std::uint64_t seq, const SessionTask& task) {
  return RegistryEvent{.type = std::move(type),
                       .seq = seq,
                       .session_id = task.session_id,
                       .task_id = task.id,
                       .task = task};
}

bool is_blank(const std::string& s) {
  return s.find_first_not_of(" \t\r\n\f\v") == std::string::npos;
}
}  // namespace detail

Outcome step(Model& m, const Op& op) {
  const Timestamp now = time_at(++m.tick);
  Outcome out;
  Notes& notes = out.notes;
  std::visit(
      [&](const auto& o) {
        using O = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<O, CreateOp>) {
          const CreateSessionTask& in = o.input;
          if (in.kind.empty()) {
            out.answer = ErrorCode::InvalidArgument;
            return;
          }
          if (in.id) {
            if (auto it = m.tasks.find(*in.id); it != m.tasks.end()) {
              if (it->second.task.session_id == in.session_id) {
                out.answer = it->second.task;  // idempotent: nothing written, no notification
              } else {
                out.answer = ErrorCode::Conflict;
              }
              return;
            }
            if (m.pruned.contains(*in.id)) {  // ids are not reused, in any session (§4.11)
              out.answer = ErrorCode::Conflict;
              return;
            }
          }
          CreateSessionTask stored = in;
          if (!stored.id) stored.id = "task_#" + std::to_string(m.generated_tasks++);
          SessionTask task = new_session_task(stored, now);
          const auto seq =
              detail::append(m, now, in.session_id, *stored.id, events::TaskCreated{stored});
          m.tasks[task.id] = Model::Entry{task, {}};
          m.order.push_back(task.id);
          notes.events.push_back(detail::task_event("task.created", seq, task));
          out.answer = task;
        } else if constexpr (std::is_same_v<O, UpdateOp>) {
          if (o.bad || (o.update.heartbeat_at && !in_rfc3339_range(*o.update.heartbeat_at))) {
            out.answer = ErrorCode::InvalidArgument;
            return;
          }
          auto* e = m.find(o.session, o.task);
          if (!e) {
            out.answer = std::optional<SessionTask>();
            return;
          }
          SessionTask& task = e->task;
          const SessionTaskState before = task.state;
          const auto seq = detail::append(m, now, o.session, o.task, events::TaskUpdated{o.update});
          apply_task_update(task, o.update, now);
          notes.events.push_back(detail::task_event("task.updated", seq, task));
          const auto& asked = o.update.state;
          if (asked && is_terminal(*asked) && !is_terminal(before) && is_terminal(task.state)) {
            std::string text =
                task_label(task) + " finished: " + std::string(to_string(task.state)) + ".";
            if (task.summary) text += "\n- summary: " + *task.summary;
            if (task.result_path) text += "\n- result_path: " + *task.result_path;
            detail::transition(notes, TaskTransition::Terminal, task, std::move(text));
          }
          if (before != SessionTaskState::AwaitingInput &&
              task.state == SessionTaskState::AwaitingInput) {
            const std::string prompt = task.input_request ? task.input_request->prompt : "";
            detail::transition(notes, TaskTransition::AwaitingInput, task,
                               task_label(task) + " is awaiting input: " + prompt);
          }
          out.answer = std::optional<SessionTask>(task);
        } else if constexpr (std::is_same_v<O, GetOp>) {
          const auto* e = m.find(o.session, o.task);
          out.answer = e ? std::optional<SessionTask>(e->task) : std::nullopt;
        } else if constexpr (std::is_same_v<O, ListOp>) {
          out.answer = list_of(m, o.session, o.filter);
        } else if constexpr (std::is_same_v<O, CancelOp>) {
          auto* e = m.find(o.session, o.task);
          if (!e) {
            out.answer = std::optional<SessionTask>();
            return;
          }
          const auto seq = detail::append(m, now, o.session, o.task, events::CancelRequested{});
          if (!e->task.cancel_requested_at) {
            e->task.cancel_requested_at = now;
            e->task.updated_at = now;
            notes.events.push_back(detail::task_event("task.updated", seq, e->task));
          }
          out.answer = std::optional<SessionTask>(e->task);
        } else if constexpr (std::is_same_v<O, RecordOp>) {
          if (o.bad) {
            out.answer = ErrorCode::InvalidArgument;
            return;
          }
          auto* e = m.find(o.session, o.task);
          if (!e) {
            out.answer = ErrorCode::NotFound;
            return;
          }
          SessionTask& task = e->task;
          if (o.message.expected_attempt && *o.message.expected_attempt != task.attempt) {
            out.answer = ErrorCode::StaleAttempt;
            return;
          }
          TaskMessage message{.id = "tmsg_#" + std::to_string(m.generated_messages++),
                              .task_id = o.task,
                              .direction = o.message.direction,
                              .content = o.message.content,
                              .in_reply_to = o.message.in_reply_to,
                              .created_at = now};
          const auto seq =
              detail::append(m, now, o.session, o.task, events::MessageRecorded{message});
          e->messages.push_back(message);
          const bool inbound = message.direction == TaskMessageDirection::Inbound;
          notes.events.push_back(
              RegistryEvent{.type = inbound ? "task.message.sent" : "task.message.received",
                            .seq = seq,
                            .session_id = o.session,
                            .task_id = o.task,
                            .message = message});
          if (inbound && message.in_reply_to && task.input_request &&
              task.input_request->id == *message.in_reply_to) {
            apply_task_update(task, SessionTaskUpdate{.state = SessionTaskState::Running}, now);
            notes.events.push_back(detail::task_event("task.updated", seq, task));
          }
          if (!inbound) {
            std::string text = task_message_text(message.content);
            if (detail::is_blank(text)) text = "structured progress update";
            detail::transition(notes, TaskTransition::Message, task,
                               task_label(task) + " sent a message: " + text);
          }
          out.answer = message;
        } else if constexpr (std::is_same_v<O, ListMessagesOp>) {
          std::vector<TaskMessage> list;
          const auto* e = m.find(o.session, o.task);
          if (!e || (o.limit && *o.limit == 0)) {
            out.answer = std::move(list);
            return;
          }
          const auto& all = e->messages;
          std::size_t first = 0;
          std::size_t last = all.size();
          if (o.after) {
            std::size_t i = 0;
            while (i < all.size() && all[i].id != *o.after) ++i;
            if (i == all.size()) {
              out.answer = std::move(list);  // names no message of this task
              return;
            }
            first = i + 1;
            if (o.limit) last = std::min<std::size_t>(all.size(), first + *o.limit);
          } else if (o.limit && *o.limit < all.size()) {
            first = all.size() - *o.limit;
          }
          list.assign(all.begin() + static_cast<std::ptrdiff_t>(first),
                      all.begin() + static_cast<std::ptrdiff_t>(last));
          out.answer = std::move(list);
        } else if constexpr (std::is_same_v<O, HistoryOp>) {
          std::vector<events::Event> list;
          const auto pruned = m.pruned.find(o.task);
          if (m.find(o.session, o.task) ||
              (pruned != m.pruned.end() && pruned->second == o.session)) {
            for (const auto& ev : m.journal) {
              if (ev.task_id == o.task && ev.session_id == o.session) list.push_back(ev);
            }
          }
          out.answer = std::move(list);
        } else if constexpr (std::is_same_v<O, PruneOp>) {
          if (o.ttl.count() <= 0 || o.limit == 0) {
            out.answer = ErrorCode::InvalidArgument;
            return;
          }
          std::vector<PrunedTask> gone = prune_candidates(m, now, o.ttl, o.limit);
          for (const auto& p : gone) {
            detail::append(m, now, p.session_id, p.task_id, events::TaskPruned{});
            m.tasks.erase(p.task_id);
            m.order.erase(std::find(m.order.begin(), m.order.end(), p.task_id));
            m.pruned.emplace(p.task_id, p.session_id);
          }
          out.answer = std::move(gone);  // and no notification
        } else {
          out.answer = std::monostate{};
        }
      },
      op);
  return out;
}

rc::Gen<Op> op_gen(const Model& m, bool allow_reopen, bool allow_prune) {
  struct Ref {
    std::string id, session;
    std::int32_t attempt;
    std::optional<std::string> pending;
    std::vector<std::string> messages;
  };
  std::vector<Ref> refs;
  std::vector<std::string> all_messages;
  for (const auto& id : m.order) {
    const auto& e = m.tasks.at(id);
    Ref r{id, e.task.session_id, e.task.attempt, std::nullopt, {}};
    if (e.task.input_request) r.pending = e.task.input_request->id;
    for (const auto& msg : e.messages) {
      r.messages.push_back(msg.id);
      all_messages.push_back(msg.id);
    }
    refs.push_back(std::move(r));
  }
  // Pruned tasks stay targets: each call must then behave as for a missing task (§4.11).
  for (const auto& [id, session] : m.pruned) refs.push_back(Ref{id, session, 1, std::nullopt, {}});
  const int generated = m.generated_tasks;

  return rc::gen::exec([refs, all_messages, generated, allow_reopen, allow_prune]() -> Op {
    // (session, task, the Ref if the task exists)
    // Which existing tasks a target should preferably be picked from.
    enum class Prefer { Any, WithMessages, AwaitingAnswer };
    auto target = [&](Prefer prefer) -> std::tuple<std::string, std::string, const Ref*> {
      if (!refs.empty() && *rc::gen::weightedElement<bool>({{1, false}, {6, true}})) {
        std::vector<const Ref*> pool;
        for (const auto& r : refs) {
          if ((prefer == Prefer::WithMessages && !r.messages.empty()) ||
              (prefer == Prefer::AwaitingAnswer && r.pending)) {
            pool.push_back(&r);
          }
        }
        if (pool.empty() || *rc::gen::weightedElement<bool>({{1, false}, {1, true}})) {
          pool.clear();
          for (const auto& r : refs) pool.push_back(&r);
        }
        const Ref& r = *pool[*uniform<std::size_t>(0, pool.size())];
        const bool own = *rc::gen::weightedElement<bool>({{1, false}, {8, true}});
        const std::string session = own ? r.session : *session_id();
        return {session, r.id, session == r.session ? &r : nullptr};
      }
      const std::string id = *rc::gen::weightedOneOf<std::string>(
          {{4, task_id()}, {1, rc::gen::just("task_#" + std::to_string(generated))}});
      const std::string session = *session_id();
      for (const auto& r : refs) {
        if (r.id == id && r.session == session) return {session, id, &r};
      }
      return {session, id, nullptr};
    };

    const int which_op = *rc::gen::weightedElement<int>({{5, 0},
                                                         {7, 1},
                                                         {2, 2},
                                                         {2, 3},
                                                         {2, 4},
                                                         {5, 5},
                                                         {3, 6},
                                                         {1, 7},
                                                         {allow_reopen ? 1u : 0u, 8},
                                                         {allow_prune ? 4u : 0u, 9}});
    switch (which_op) {
      case 0: {  // create: no id, a pool id, or the id of an existing task (any session)
        CreateOp op{*create_input()};
        if (!refs.empty() && *rc::gen::weightedElement<bool>({{4, false}, {1, true}})) {
          const Ref& r = refs[*uniform<std::size_t>(0, refs.size())];
          op.input.id = r.id;
          if (*rc::gen::weightedElement<bool>({{1, false}, {1, true}})) {
            op.input.session_id = r.session;
          }
        }
        if (*rc::gen::weightedElement<bool>({{30, false}, {1, true}})) op.input.kind = "";
        return op;
      }
      case 1: {
        auto [session, task, ref] = target(Prefer::Any);
        UpdateOp op{session, task, *update(ref ? ref->attempt : 1)};
        if (*rc::gen::weightedElement<bool>({{30, false}, {1, true}})) {
          op.update.state_detail = std::string("bad \xff utf-8");
          op.bad = true;
        }
        return op;
      }
      case 2: {
        auto [session, task, ref] = target(Prefer::Any);
        return GetOp{session, task};
      }
      case 3: {
        SessionTaskFilter filter{.kind = *opt(kind(), 40), .state = *opt(state(), 40)};
        return ListOp{*session_id(), filter};
      }
      case 4: {
        auto [session, task, ref] = target(Prefer::Any);
        return CancelOp{session, task};
      }
      case 5: {
        auto [session, task, ref] = target(Prefer::AwaitingAnswer);
        RecordOp op{session, task, *new_message(ref ? ref->attempt : 1)};
        if (ref && ref->pending && *rc::gen::weightedElement<bool>({{1, false}, {3, true}})) {
          op.message.in_reply_to = ref->pending;
          if (*rc::gen::weightedElement<bool>({{1, false}, {3, true}})) {
            op.message.direction = TaskMessageDirection::Inbound;
          }
        }
        if (*rc::gen::weightedElement<bool>({{30, false}, {1, true}})) {
          op.message.content.push_back(DataPart{"{\"unterminated\":"});
          op.bad = true;
        }
        return op;
      }
      case 6: {
        auto [session, task, ref] = target(Prefer::WithMessages);
        ListMessagesOp op{session, task, std::nullopt, std::nullopt};
        op.limit = *opt(uniform<std::uint32_t>(0, 6), 50);
        const int cursor = *rc::gen::weightedElement<int>({{3, 0}, {4, 1}, {1, 2}, {1, 3}});
        if (cursor == 1 && ref && !ref->messages.empty()) {
          op.after = ref->messages[*uniform<std::size_t>(0, ref->messages.size())];
        } else if (cursor == 2 && !all_messages.empty()) {
          op.after = all_messages[*uniform<std::size_t>(0, all_messages.size())];
        } else if (cursor == 3) {
          op.after = "tmsg_unknown";
        }
        return op;
      }
      case 7: {
        auto [session, task, ref] = target(Prefer::Any);
        return HistoryOp{session, task};
      }
      case 9: {
        // Ticks are about a second apart: a ttl of a few seconds prunes the tasks finished more
        // than that many operations ago. Sometimes a bad ttl or limit (InvalidArgument).
        PruneOp op;
        op.ttl = std::chrono::seconds{*rc::gen::weightedOneOf<std::int64_t>(
            {{20, uniform<std::int64_t>(1, 6)},
             {3, uniform<std::int64_t>(12, 120)},
             {1, rc::gen::element<std::int64_t>(0, -1, -3600)}})};
        op.limit = *rc::gen::weightedOneOf<std::uint32_t>({{8, uniform<std::uint32_t>(1, 4)},
                                                           {4, rc::gen::just<std::uint32_t>(100)},
                                                           {2, rc::gen::just<std::uint32_t>(5000)},
                                                           {1, rc::gen::just<std::uint32_t>(0)}});
        return op;
      }
      default:
        return ReopenOp{};
    }
  });
}

namespace {

/// With TASKJOURNAL_PROPS_COVERAGE set, counts what the operations ran into and prints the counts
/// at exit, to check that the generators reach the interesting cases.
class Coverage {
 public:
  static Coverage& instance() {
    static Coverage c;
    return c;
  }
  void count(const Op& op, const Outcome& o) {
    if (!enabled_) return;
    static constexpr const char* kNames[] = {
        "create",         "update",        "get",     "list",   "request_cancel",
        "record_message", "list_messages", "history", "reopen", "prune_terminal"};
    std::string label = kNames[op.index()];
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, ErrorCode>) {
            label += ": error " + std::string(to_string(v));
          } else if constexpr (std::is_same_v<V, std::optional<SessionTask>>) {
            label += v ? ": found" : ": missing";
          } else if constexpr (requires { v.empty(); }) {
            label += v.empty() ? ": empty" : ": non-empty";
          } else if constexpr (std::is_same_v<V, SessionTask>) {
            label += o.notes.events.empty() ? ": idempotent" : ": new";
          } else if constexpr (std::is_same_v<V, TaskMessage>) {
            label += o.notes.events.size() > 1 ? ": resumed the task" : ": stored";
          }
        },
        o.answer);
    ++counts_[label];
  }
  ~Coverage() {
    if (!enabled_) return;
    std::fprintf(stderr, "coverage of the registry model's operations:\n");
    for (const auto& [label, n] : counts_) std::fprintf(stderr, "%8d  %s\n", n, label.c_str());
  }

 private:
  Coverage() : enabled_(std::getenv("TASKJOURNAL_PROPS_COVERAGE") != nullptr) {}
  bool enabled_;
  std::map<std::string, int> counts_;
};

}  // namespace

std::string run_step(Model& m, Sut& sut, const Op& op, std::size_t which, const Checks& checks) {
  sut.clock().set(time_at(m.tick + 1));
  const Outcome expected = step(m, op);
  Coverage::instance().count(op, expected);
  sut.seen() = Notes{};
  const Answer actual = sut.execute(op, which, expected.answer);
  const Answer want = sut.real(expected.answer);
  std::ostringstream why;
  if (actual != want) {
    why << "answer differs\n  registry: " << actual << "\n  model:    " << want;
    return why.str();
  }
  if (checks.writes) {
    const auto seq = sut.registry(which).last_seq();
    if (seq != m.journal.size()) {
      why << "registry last_seq() " << seq << ", model wrote " << m.journal.size() << " events";
      return why.str();
    }
  }
  if (checks.notifications) {
    const Notes want_notes = sut.real(expected.notes);
    if (sut.seen() != want_notes) {
      why << "notifications differ\n  registry: " << sut.seen() << "\n  model:    " << want_notes;
      return why.str();
    }
  }
  return {};
}

std::string compare_views(const Model& m, Sut& sut, std::size_t which) {
  return compare_views(m, sut, sut.registry(which));
}

std::string compare_views(const Model& m, const Sut& sut, Registry& r) {
  std::ostringstream why;
  std::vector<std::string> sessions = session_pool();
  for (const auto& [id, e] : m.tasks) sessions.push_back(e.task.session_id);
  for (const auto& [id, session] : m.pruned) sessions.push_back(session);
  for (const auto& session : sessions) {
    const Answer want = sut.real(list_of(m, session));
    const Answer got = r.list(session);
    if (got != want) {
      why << "list(" << session << ") differs\n  registry: " << got << "\n  model:    " << want;
      return why.str();
    }
  }
  for (const auto& [id, e] : m.tasks) {
    const Answer got = r.list_messages(e.task.session_id, sut.real_task(id));
    const Answer want = sut.real(e.messages);
    if (got != want) {
      why << "list_messages(" << id << ") differs\n  registry: " << got << "\n  model:    " << want;
      return why.str();
    }
  }
  for (const auto& [id, session] : m.pruned) {
    const std::string real = sut.real_task(id);
    if (const auto task = r.get(session, real)) {
      why << "get(" << id << ") of a pruned task gives " << *task;
      return why.str();
    }
    if (const Answer got = r.list_messages(session, real);
        got != Answer(std::vector<TaskMessage>{})) {
      why << "list_messages(" << id << ") of a pruned task gives " << got;
      return why.str();
    }
    std::vector<events::Event> own;
    for (const auto& ev : m.journal) {
      if (ev.task_id == id && ev.session_id == session) own.push_back(ev);
    }
    const Answer got = r.history(session, real);
    const Answer want = sut.real(Answer(std::move(own)));
    if (got != want) {
      why << "history(" << id << ") of a pruned task differs\n  registry: " << got
          << "\n  model:    " << want;
      return why.str();
    }
  }
  return {};
}

rc::Gen<CommandPtr> command_gen(const Model& m, std::size_t registries, bool allow_reopen,
                                bool allow_prune) {
  return rc::gen::apply(
      [](Op op, std::size_t which) -> CommandPtr {
        return std::make_shared<const OpCommand>(std::move(op), which);
      },
      op_gen(m, allow_reopen, allow_prune),
      registries > 1 ? uniform<std::size_t>(0, registries) : rc::gen::just<std::size_t>(0));
}

Model run_commands(Sut& sut, bool allow_reopen, bool allow_prune) {
  const std::size_t registries = sut.size();
  const auto commands = *rc::state::gen::commands(Model{}, [=](const Model& m) {
    return command_gen(m, registries, allow_reopen, allow_prune);
  });
  rc::state::runAll(commands, Model{}, sut);
  Model m;
  rc::state::applyAll(commands, m);
  return m;
}
}  // namespace taskjournal::testing::model

// ---- Sut ----

namespace taskjournal::testing::model {

void Sut::reopen() {
  subs_.clear();
  for (auto& r : regs_) r.reset();
  open_all();
}

TaskMessage Sut::real(TaskMessage m) const {
  m.id = real_message(m.id);
  m.task_id = real_task(m.task_id);
  return m;
}

events::Event Sut::real(events::Event e) const {
  e.task_id = real_task(e.task_id);
  if (auto* c = std::get_if<events::TaskCreated>(&e.payload)) {
    c->input.id = real_task(*c->input.id);
  } else if (auto* r = std::get_if<events::MessageRecorded>(&e.payload)) {
    r->message = real(r->message);
  }
  return e;
}

JournalEntry Sut::entry(const events::Event& symbolic) const {
  const events::Event e = real(symbolic);
  return JournalEntry{.seq = e.seq,
                      .type = std::string(events::type_name(e.payload)),
                      .recorded_at = e.recorded_at,
                      .session_id = e.session_id,
                      .task_id = e.task_id,
                      .payload = events::payload_json(e.payload)};
}

Answer Sut::real(const Answer& a) const {
  return std::visit(
      [&](const auto& v) -> Answer {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, SessionTask> || std::is_same_v<V, TaskMessage> ||
                      std::is_same_v<V, std::vector<SessionTask>> ||
                      std::is_same_v<V, std::vector<TaskMessage>>) {
          return real(v);
        } else if constexpr (std::is_same_v<V, std::optional<SessionTask>>) {
          return v ? std::optional<SessionTask>(real(*v)) : std::nullopt;
        } else if constexpr (std::is_same_v<V, std::vector<events::Event>>) {
          std::vector<JournalEntry> out;
          for (const auto& e : v) out.push_back(entry(e));
          return out;
        } else if constexpr (std::is_same_v<V, std::vector<PrunedTask>>) {
          std::vector<PrunedTask> out = v;
          for (auto& p : out) p.task_id = real_task(p.task_id);
          return out;
        } else {
          return v;
        }
      },
      a);
}

std::string Sut::real_text(std::string text, const std::string& symbolic_id) const {
  const std::string from = "(" + symbolic_id + ")";
  if (auto pos = text.find(from); pos != std::string::npos) {
    text.replace(pos, from.size(), "(" + real_task(symbolic_id) + ")");
  }
  return text;
}

Notes Sut::real(const Notes& n) const {
  Notes out;
  for (auto e : n.events) {
    e.task_id = real_task(e.task_id);
    if (e.task) e.task = real(*e.task);
    if (e.message) e.message = real(*e.message);
    out.events.push_back(std::move(e));
  }
  for (const auto& [t, task] : n.transitions) out.transitions.emplace_back(t, real(task));
  for (auto w : n.wakes) {
    w.text = real_text(w.text, w.task_id);
    w.task_id = real_task(w.task_id);
    out.wakes.push_back(std::move(w));
  }
  return out;
}

Answer Sut::execute(const Op& op, std::size_t which, const Answer& expected) {
  Registry& r = registry(which);
  Answer actual;
  try {
    actual = std::visit(
        [&](const auto& o) -> Answer {
          using O = std::decay_t<decltype(o)>;
          if constexpr (std::is_same_v<O, CreateOp>) {
            CreateSessionTask in = o.input;
            if (in.id) in.id = real_task(*in.id);
            return r.create(in);
          } else if constexpr (std::is_same_v<O, UpdateOp>) {
            return r.update(o.session, real_task(o.task), o.update);
          } else if constexpr (std::is_same_v<O, GetOp>) {
            return r.get(o.session, real_task(o.task));
          } else if constexpr (std::is_same_v<O, ListOp>) {
            return r.list(o.session, o.filter);
          } else if constexpr (std::is_same_v<O, CancelOp>) {
            return r.request_cancel(o.session, real_task(o.task));
          } else if constexpr (std::is_same_v<O, RecordOp>) {
            return r.record_message(o.session, real_task(o.task), o.message);
          } else if constexpr (std::is_same_v<O, ListMessagesOp>) {
            std::optional<std::string> after;
            if (o.after) after = real_message(*o.after);
            return r.list_messages(o.session, real_task(o.task), o.limit,
                                   after ? std::optional<std::string_view>(*after) : std::nullopt);
          } else if constexpr (std::is_same_v<O, HistoryOp>) {
            return r.history(o.session, real_task(o.task));
          } else if constexpr (std::is_same_v<O, PruneOp>) {
            return r.prune_terminal(o.ttl, o.limit);
          } else {
            reopen();
            return std::monostate{};
          }
        },
        op);
  } catch (const Error& e) {
    actual = e.code();
  }
  // A new generated id: learn it (the next symbolic number is the registry's answer).
  if (const auto* t = std::get_if<SessionTask>(&expected);
      t && t->id == "task_#" + std::to_string(task_ids_.size())) {
    if (const auto* a = std::get_if<SessionTask>(&actual)) task_ids_.push_back(a->id);
  }
  if (const auto* msg = std::get_if<TaskMessage>(&expected);
      msg && msg->id == "tmsg_#" + std::to_string(message_ids_.size())) {
    if (const auto* a = std::get_if<TaskMessage>(&actual)) message_ids_.push_back(a->id);
  }
  return actual;
}

std::string Sut::lookup(const std::string& id, std::string_view prefix,
                        const std::vector<std::string>& known) {
  if (id.rfind(prefix, 0) != 0) return id;
  const auto k = std::stoul(id.substr(prefix.size()));
  return k < known.size() ? known[k] : id;
}

void Sut::open_all() {
  for (auto& r : regs_) {
    r.emplace(open_registry(at_, Options{.clock = clock_.fn(), .durability = Durability::Normal}));
    subs_.push_back(r->on_event([this](const RegistryEvent& e) { seen_.events.push_back(e); }));
    subs_.push_back(r->on_transition([this](TaskTransition t, const SessionTask& task) {
      seen_.transitions.emplace_back(t, task);
    }));
    subs_.push_back(r->on_wake([this](const WakeNotice& w) { seen_.wakes.push_back(w); }));
  }
}

}  // namespace taskjournal::testing::model
