// The fold: one decoded event into the task and message views.
#include "projections/views.hpp"

#include <algorithm>
#include <string>

#include "taskjournal/error.hpp"
#include "taskjournal/lifecycle.hpp"

namespace taskjournal::projections {
namespace {

[[noreturn]] void corrupt(std::uint64_t seq, const std::string& what) {
  throw Error(ErrorCode::Corrupt, "event " + std::to_string(seq) + ": " + what);
}

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

}  // namespace

TaskFold fold_into_task(SessionTask& task, const events::Event& event) {
  TaskFold fold;
  std::visit(Overloaded{
                 [](const events::TaskCreated&) {},
                 [&](const events::TaskUpdated& e) {
                   apply_task_update(task, e.update, event.recorded_at);
                 },
                 [&](const events::CancelRequested&) {
                   if (!task.cancel_requested_at) {
                     task.cancel_requested_at = event.recorded_at;
                     task.updated_at = event.recorded_at;
                     fold.cancel_set = true;
                   }
                 },
                 [](const events::TaskPruned&) {},
                 [&](const events::MessageRecorded& e) {
                   const TaskMessage& message = e.message;
                   if (message.direction == TaskMessageDirection::Inbound && message.in_reply_to &&
                       task.input_request && task.input_request->id == *message.in_reply_to) {
                     apply_task_update(task, SessionTaskUpdate{.state = SessionTaskState::Running},
                                       event.recorded_at);
                     fold.resumed = true;
                   }
                 },
             },
             event.payload);
  return fold;
}

Applied Views::apply(const events::Event& event) {
  if (sequence_ == Sequence::Subset ? event.seq <= last_seq_ : event.seq != last_seq_ + 1) {
    corrupt(event.seq,
            (sequence_ == Sequence::Subset ? "expected a sequence number above "
                                           : "expected sequence number ") +
                std::to_string(sequence_ == Sequence::Subset ? last_seq_ : last_seq_ + 1));
  }
  Applied applied;

  if (const auto* created = std::get_if<events::TaskCreated>(&event.payload)) {
    if (tasks_.contains(event.task_id))
      corrupt(event.seq, "task " + event.task_id + " created twice");
    SessionTask task = new_session_task(created->input, event.recorded_at);
    auto [it, inserted] = tasks_.emplace(event.task_id, TaskEntry{std::move(task), {}, 1});
    sessions_[event.session_id].push_back(&it->second);
    applied.task = &it->second.task;
    applied.state_before = it->second.task.state;
    applied.created = true;
    last_seq_ = event.seq;
    return applied;
  }

  auto it = tasks_.find(event.task_id);
  if (it == tasks_.end() || it->second.task.session_id != event.session_id) {
    corrupt(event.seq, "names task " + event.task_id + ", unknown in session " + event.session_id);
  }
  TaskEntry& entry = it->second;
  SessionTask& task = entry.task;
  applied.task = &task;
  applied.state_before = task.state;

  if (std::holds_alternative<events::TaskPruned>(event.payload)) {
    if (!is_terminal(task.state)) {
      corrupt(event.seq, "prunes task " + event.task_id + ", which is " +
                             std::string(to_string(task.state)) + ", not terminal");
    }
    for (std::size_t i = 0; i < entry.messages.size(); ++i) message_index_.erase(&entry, i);
    auto session = sessions_.find(event.session_id);
    auto& list = session->second;
    list.erase(std::find(list.begin(), list.end(), &entry));
    if (list.empty()) sessions_.erase(session);
    pruned_events_ += entry.events + 1;
    tasks_.erase(it);
    last_seq_ = event.seq;
    return Applied{.state_before = applied.state_before, .pruned = true};
  }
  if (const auto* recorded = std::get_if<events::MessageRecorded>(&event.payload)) {
    const TaskMessage& message = recorded->message;
    if (message_index_.find(message.id).entry) {
      corrupt(event.seq, "message id " + message.id + " used twice");
    }
    entry.messages.push_back(message);
    message_index_.insert(&entry, entry.messages.size() - 1);
    applied.message = &entry.messages.back();
  }
  const TaskFold fold = fold_into_task(task, event);
  applied.cancel_set = fold.cancel_set;
  applied.resumed = fold.resumed;
  ++entry.events;
  last_seq_ = event.seq;
  return applied;
}

std::uint64_t Views::event_count(std::string_view session_id,
                                 std::string_view task_id) const noexcept {
  auto it = tasks_.find(task_id);
  if (it == tasks_.end() || it->second.task.session_id != session_id) return 0;
  return it->second.events;
}

const SessionTask* Views::find(std::string_view session_id,
                               std::string_view task_id) const noexcept {
  auto it = tasks_.find(task_id);
  if (it == tasks_.end() || it->second.task.session_id != session_id) return nullptr;
  return &it->second.task;
}

const SessionTask* Views::find_any(std::string_view task_id) const noexcept {
  auto it = tasks_.find(task_id);
  return it == tasks_.end() ? nullptr : &it->second.task;
}

std::vector<SessionTask> Views::list(std::string_view session_id,
                                     const SessionTaskFilter& filter) const {
  std::vector<SessionTask> out;
  auto it = sessions_.find(session_id);
  if (it == sessions_.end()) return out;
  for (const TaskEntry* entry : it->second) {
    const SessionTask& task = entry->task;
    if (filter.kind && task.kind != *filter.kind) continue;
    if (filter.state && task.state != *filter.state) continue;
    out.push_back(task);
  }
  return out;
}

std::vector<TaskMessage> Views::messages(std::string_view session_id, std::string_view task_id,
                                         std::optional<std::uint32_t> limit,
                                         std::optional<std::string_view> after_id) const {
  auto it = tasks_.find(task_id);
  if (it == tasks_.end() || it->second.task.session_id != session_id) return {};
  if (limit && *limit == 0) return {};
  const auto& all = it->second.messages;

  std::size_t first = 0;
  std::size_t last = all.size();
  if (after_id) {
    const MessageRef ref = message_index_.find(*after_id);
    if (ref.entry != &it->second) return {};
    first = ref.index + 1;
    if (limit) last = std::min(all.size(), first + *limit);
  } else if (limit && *limit < all.size()) {
    first = all.size() - *limit;
  }
  return {all.begin() + static_cast<std::ptrdiff_t>(first),
          all.begin() + static_cast<std::ptrdiff_t>(last)};
}

void Views::for_each_task(
    const std::function<void(const SessionTask&, const std::vector<TaskMessage>&, std::uint64_t)>&
        sink) const {
  for (const auto& [session_id, entries] : sessions_) {
    for (const TaskEntry* entry : entries) sink(entry->task, entry->messages, entry->events);
  }
}

void Views::restore_task(events::CheckpointEntry&& in) {
  auto bad = [&](const std::string& what) {
    throw Error(ErrorCode::Corrupt, "checkpoint: task " + in.task.id + ": " + what);
  };
  if (last_seq_ != 0) bad("restored into views that are not empty");
  if (in.task.id.empty() || in.task.session_id.empty()) bad("empty task or session id");
  if (in.events < 1 + in.messages.size()) bad("fewer events than its creation and messages");
  for (const auto& m : in.messages) {
    if (m.task_id != in.task.id) bad("message " + m.id + " of another task");
  }
  auto [it, inserted] = tasks_.try_emplace(in.task.id);
  if (!inserted) bad("stored twice");
  TaskEntry& entry = it->second;
  entry.task = std::move(in.task);
  entry.messages = std::move(in.messages);
  entry.events = in.events;
  for (std::size_t i = 0; i < entry.messages.size(); ++i) {
    if (!message_index_.insert(&entry, i)) {
      throw Error(ErrorCode::Corrupt,
                  "checkpoint: message id " + entry.messages[i].id + " used twice");
    }
  }
  sessions_[entry.task.session_id].push_back(&entry);
  restored_events_ += entry.events;
}

void Views::finish_restore(std::uint64_t seq, std::uint64_t pruned_events) {
  if (pruned_events > seq || restored_events_ != seq - pruned_events) {
    throw Error(ErrorCode::Corrupt,
                "checkpoint: its tasks hold " + std::to_string(restored_events_) + " events and " +
                    std::to_string(pruned_events) + " of pruned tasks, not " + std::to_string(seq));
  }
  pruned_events_ = pruned_events;
  last_seq_ = seq;
}

void Views::finish_restore_subset(std::uint64_t seq) {
  if (sequence_ != Sequence::Subset) {
    throw Error(ErrorCode::Corrupt, "checkpoint: a part of it restored into whole views");
  }
  last_seq_ = seq;
}

void Views::reserve(std::size_t tasks, std::size_t messages) {
  tasks_.reserve(tasks);
  message_index_.reserve(messages);
}

bool Views::MessageIndex::insert(const TaskEntry* entry, std::size_t index) {
  if ((size_ + 1) * 2 > slots_.size()) rehash(std::max<std::size_t>(16, slots_.size() * 2));
  const std::string& id = entry->messages[index].id;
  const std::size_t hash = StringHash{}(id);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    Slot& slot = slots_[i];
    if (!slot.ref.entry) {
      slot = Slot{hash, MessageRef{entry, index}};
      ++size_;
      return true;
    }
    if (slot.hash == hash && slot.ref.entry->messages[slot.ref.index].id == id) return false;
  }
}

Views::MessageRef Views::MessageIndex::find(std::string_view id) const {
  if (slots_.empty()) return {};
  const std::size_t hash = StringHash{}(id);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (!slot.ref.entry) return {};
    if (slot.hash == hash && slot.ref.entry->messages[slot.ref.index].id == id) return slot.ref;
  }
}

void Views::MessageIndex::erase(const TaskEntry* entry, std::size_t index) {
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = StringHash{}(entry->messages[index].id) & mask;
  while (slots_[i].ref.entry != entry || slots_[i].ref.index != index) {
    if (!slots_[i].ref.entry) return;  // not indexed
    i = (i + 1) & mask;
  }
  // Backward-shift deletion: move each following slot of the probe run into the hole unless
  // its home lies cyclically after the hole (it would then no longer be found).
  slots_[i] = Slot{};
  for (std::size_t j = (i + 1) & mask; slots_[j].ref.entry; j = (j + 1) & mask) {
    const std::size_t home = slots_[j].hash & mask;
    const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
    if (stays) continue;
    slots_[i] = slots_[j];
    slots_[j] = Slot{};
    i = j;
  }
  --size_;
}

void Views::MessageIndex::reserve(std::size_t count) {
  std::size_t slots = 16;
  while (slots < count * 2) slots *= 2;
  if (slots > slots_.size()) rehash(slots);
}

void Views::MessageIndex::rehash(std::size_t slots) {
  std::vector<Slot> old(slots, Slot{});
  old.swap(slots_);
  const std::size_t mask = slots_.size() - 1;
  for (const Slot& slot : old) {
    if (!slot.ref.entry) continue;
    std::size_t i = slot.hash & mask;
    while (slots_[i].ref.entry) i = (i + 1) & mask;
    slots_[i] = slot;
  }
}

bool Views::operator==(const Views& other) const {
  if (last_seq_ != other.last_seq_ || tasks_.size() != other.tasks_.size() ||
      sessions_.size() != other.sessions_.size()) {
    return false;
  }
  for (const auto& [session_id, entries] : sessions_) {
    auto it = other.sessions_.find(session_id);
    if (it == other.sessions_.end() || it->second.size() != entries.size()) return false;
    for (std::size_t i = 0; i < entries.size(); ++i) {
      if (it->second[i]->task.id != entries[i]->task.id) return false;
    }
  }
  for (const auto& [id, entry] : tasks_) {
    auto it = other.tasks_.find(id);
    if (it == other.tasks_.end() || it->second.task != entry.task ||
        it->second.messages != entry.messages) {
      return false;
    }
  }
  return true;
}

}  // namespace taskjournal::projections
