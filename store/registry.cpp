// Registry: the public calls of registry.hpp over Registry::Impl (store/registry_impl.hpp).
#include "taskjournal/registry.hpp"

#include <boost/signals2/signal.hpp>

#include "store/registry_impl.hpp"
#include "taskjournal/json.hpp"

namespace taskjournal {
namespace {

// The first entry of the history of a task whose first events were archived (README
// "Archiving"): type "archived", the anchor's sequence number, and how many events are there.
JournalEntry archived_marker(const store::Journal& journal, const JournalEntry& like,
                             std::optional<std::uint64_t> events) {
  const store::Anchor& anchor = *journal.anchor();
  std::string payload = "{\"archived_through\":" + std::to_string(anchor.seq) +
                        ",\"archive\":" + json_string(anchor.archive);
  if (events) payload += ",\"events\":" + std::to_string(*events);
  payload += "}";
  return JournalEntry{.seq = anchor.seq,
                      .type = "archived",
                      .recorded_at = like.recorded_at,
                      .session_id = like.session_id,
                      .task_id = like.task_id,
                      .payload = std::move(payload)};
}

}  // namespace

SessionTask Batch::create(const CreateSessionTask& input) {
  context_.tx.check_alive();
  return context_.registry.create(context_.tx, input);
}
std::optional<SessionTask> Batch::update(std::string_view session_id, std::string_view task_id,
                                         const SessionTaskUpdate& update) {
  context_.tx.check_alive();
  return context_.registry.update(context_.tx, session_id, task_id, update);
}
std::optional<SessionTask> Batch::request_cancel(std::string_view session_id,
                                                 std::string_view task_id) {
  context_.tx.check_alive();
  return context_.registry.request_cancel(context_.tx, session_id, task_id);
}
TaskMessage Batch::record_message(std::string_view session_id, std::string_view task_id,
                                  const NewTaskMessage& message) {
  context_.tx.check_alive();
  return context_.registry.record_message(context_.tx, session_id, task_id, message);
}
std::optional<SessionTask> Batch::get(std::string_view session_id, std::string_view task_id) const {
  context_.tx.check_alive();
  const SessionTask* task = context_.tx.find(session_id, task_id);
  return task ? std::optional<SessionTask>(*task) : std::nullopt;
}

Registry::Registry(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Registry::Registry(Registry&&) noexcept = default;
Registry& Registry::operator=(Registry&&) noexcept = default;
Registry::~Registry() = default;

Registry Registry::open(const std::filesystem::path& path, Options options) {
  store::prepare_journal_file(path, options.read_only);
  return Registry(
      std::make_unique<Impl>(store::EngineKind::Sqlite, path.string(), std::move(options)));
}

Registry Registry::open_postgresql(const std::string& conninfo, Options options) {
  return Registry(
      std::make_unique<Impl>(store::EngineKind::Postgresql, conninfo, std::move(options)));
}

SessionTask Registry::create(const CreateSessionTask& input) {
  return impl_->single([&](Impl::Transaction& tx) { return impl_->create(tx, input); });
}

std::optional<SessionTask> Registry::update(std::string_view session_id, std::string_view task_id,
                                            const SessionTaskUpdate& update) {
  return impl_->single(
      [&](Impl::Transaction& tx) { return impl_->update(tx, session_id, task_id, update); });
}

std::optional<SessionTask> Registry::request_cancel(std::string_view session_id,
                                                    std::string_view task_id) {
  return impl_->single(
      [&](Impl::Transaction& tx) { return impl_->request_cancel(tx, session_id, task_id); });
}

TaskMessage Registry::record_message(std::string_view session_id, std::string_view task_id,
                                     const NewTaskMessage& message) {
  return impl_->single([&](Impl::Transaction& tx) {
    return impl_->record_message(tx, session_id, task_id, message);
  });
}

void Registry::batch(const std::function<void(Batch&)>& body) {
  Impl& r = *impl_;
  auto guard = r.lock();
  Impl::Transaction tx(r);
  Batch::Context context{r, tx};
  Batch batch(context);
  r.batch_thread.store(std::this_thread::get_id());
  try {
    body(batch);
  } catch (...) {
    r.batch_thread.store(std::thread::id{});
    throw;
  }
  r.batch_thread.store(std::thread::id{});
  auto notices = tx.commit();
  r.checkpoint_if_due();
  const std::uint64_t ticket = notices.empty() ? 0 : r.delivery.take();
  guard.unlock();
  r.deliver(ticket, notices);
}

std::optional<SessionTask> Registry::get(std::string_view session_id, std::string_view task_id) {
  auto guard = impl_->lock();
  impl_->refresh();
  const SessionTask* task = impl_->views_of(session_id).find(session_id, task_id);
  return task ? std::optional<SessionTask>(*task) : std::nullopt;
}

std::vector<SessionTask> Registry::list(std::string_view session_id,
                                        const SessionTaskFilter& filter) {
  auto guard = impl_->lock();
  impl_->refresh();
  return impl_->views_of(session_id).list(session_id, filter);
}

std::vector<TaskMessage> Registry::list_messages(std::string_view session_id,
                                                 std::string_view task_id,
                                                 std::optional<std::uint32_t> limit,
                                                 std::optional<std::string_view> after_id) {
  auto guard = impl_->lock();
  impl_->refresh();
  return impl_->views_of(session_id).messages(session_id, task_id, limit, after_id);
}

std::vector<JournalEntry> Registry::history(std::string_view session_id, std::string_view task_id) {
  auto guard = impl_->lock();
  impl_->refresh();
  const projections::Views& views = impl_->views_of(session_id);
  if (!views.find(session_id, task_id)) {
    // A pruned task's events stay in the journal (task_pruned last) until they are archived.
    if (impl_->sessions || views.pruned_events() > 0) {
      auto entries = impl_->journal.task_entries(session_id, task_id, impl_->position());
      if (!entries.empty() && entries.back().type == "task_pruned") {
        if (entries.front().type != "task_created" && impl_->journal.anchor()) {
          entries.insert(entries.begin(), archived_marker(impl_->journal, entries.front(), {}));
        }
        return entries;
      }
    }
    return {};
  }
  auto entries = impl_->journal.task_entries(session_id, task_id, impl_->position());
  // The rows come through an index that SQLite never checks against the table: a damaged index
  // would silently leave events out (or add some) without this count from the fold.
  const std::uint64_t expected = views.event_count(session_id, task_id);
  // A task created before the archived prefix's end has its first events in the archive: the
  // count then bounds what is left, and a marker says how many are elsewhere.
  const bool archived_part = impl_->journal.anchor() && entries.size() < expected &&
                             (entries.empty() || entries.front().type != "task_created");
  if (entries.size() != expected && !archived_part) {
    throw Error(ErrorCode::Corrupt,
                impl_->journal.path() + ": history of task " + std::string(task_id) + ": found " +
                    std::to_string(entries.size()) + " of its " + std::to_string(expected) +
                    " events (the events_by_task index is damaged)");
  }
  if (archived_part) {
    const SessionTask& task = *views.find(session_id, task_id);
    JournalEntry first{.recorded_at = task.created_at,
                       .session_id = std::string(session_id),
                       .task_id = std::string(task_id)};
    entries.insert(entries.begin(),
                   archived_marker(impl_->journal, first, expected - entries.size()));
  }
  return entries;
}

std::uint64_t Registry::last_seq() {
  auto guard = impl_->lock();
  impl_->refresh();
  return impl_->position();
}

std::uint64_t Registry::checkpoint() {
  auto guard = impl_->lock();
  if (impl_->options.read_only) {
    throw Error(ErrorCode::ReadOnly, impl_->journal.path() + ": journal opened read-only");
  }
  if (impl_->sessions) {
    throw Error(ErrorCode::Unsupported,
                impl_->journal.path() +
                    ": checkpoint: a PostgreSQL registry holds only the sessions it serves and "
                    "opens without folding the journal, so it has no views to checkpoint");
  }
  impl_->refresh();
  return impl_->write_checkpoint();
}

const OpenReport& Registry::open_report() const noexcept { return impl_->open_report; }

namespace {
template <class Signal, class Slot>
Subscription connect_guarded(Signal& signal, Slot slot) {
  auto connection = signal.connect([slot = std::move(slot)](const auto&... args) {
    try {
      slot(args...);
    } catch (...) {
      // A subscriber's failure never undoes or fails a committed write (docs/contract.md §5).
    }
  });
  return Subscription([connection]() mutable { connection.disconnect(); });
}
}  // namespace

Subscription Registry::on_event(std::function<void(const RegistryEvent&)> slot) {
  return connect_guarded(impl_->event_signal, std::move(slot));
}

Subscription Registry::on_transition(std::function<void(TaskTransition, const SessionTask&)> slot) {
  return connect_guarded(impl_->transition_signal, std::move(slot));
}

Subscription Registry::on_wake(std::function<void(const WakeNotice&)> slot) {
  return connect_guarded(impl_->wake_signal, std::move(slot));
}

}  // namespace taskjournal
