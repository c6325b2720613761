// The host's side of the lifecycle (README "Running a host"): orphans and the reaper, worker
// sinks, waiting for a task, and the watch thread that folds and tells other registries' events.
#include <algorithm>
#include <string>

#include "store/registry_impl.hpp"
#include "taskjournal/registry.hpp"

namespace taskjournal {
namespace {

constexpr std::uint32_t kMaxOrphans = 1000;
// No stored time is more than 10,000 years from another (years 0000-9999): a longer staleness
// finds nothing, and converting it to microseconds would overflow.
constexpr std::chrono::seconds kLongestStaleness{400'000'000'000};

bool settled(const SessionTask& task) {
  return is_terminal(task.state) || task.state == SessionTaskState::AwaitingInput;
}

}  // namespace

// ---- watching -----------------------------------------------------------------------------------

void Registry::Impl::start_watching(std::chrono::milliseconds interval) {
  if (watch_started) return;
  // The signal reports from inside wait(), in the watch thread without the lock: its problems
  // are kept for the loop, which reports them under the lock as Options::on_problem promises.
  signal =
      journal.change_signal(interval, [this](const Error& e) { signal_problems.push_back(e); });
  watch_started = true;
  if (!signal) return;  // nobody else can write this journal: own writes wake the waiters
  watcher = std::thread([this, interval] { watch_loop(interval); });
}

// Waits for the change signal, folds what others committed, and delivers the notices of
// others' events (Options::watch) outside the lock, in journal order.
void Registry::Impl::watch_loop(std::chrono::milliseconds interval) {
  watcher_id.store(std::this_thread::get_id());
  bool failing = false;
  while (!stopping.load()) {
    const bool maybe_changed = signal->wait(interval);
    std::vector<Notice> notices;
    {
      std::unique_lock guard(mutex);
      if (stopping.load()) return;
      for (const Error& problem : signal_problems) {
        report(Error(problem.code(), std::string("watch: ") + problem.what()));
      }
      signal_problems.clear();
      if (maybe_changed) {
        try {
          refresh();
          failing = false;
        } catch (const Error& e) {
          // Reported once until a catch-up works again; the calls of the registry throw it too.
          if (!failing) report(Error(e.code(), std::string("watch: ") + e.what()));
          failing = true;
        } catch (const std::exception& e) {
          if (!failing) report(Error(ErrorCode::Storage, std::string("watch: ") + e.what()));
          failing = true;
        }
      }
      notices.swap(pending);
    }
    notify(notices);
  }
}

void Registry::Impl::stop_watching() noexcept {
  stopping.store(true);
  if (signal) signal->interrupt();
  if (watcher.joinable()) watcher.join();
}

// ---- orphans and the reaper --------------------------------------------------------------------

void Registry::Impl::for_each_unfinished(const std::function<void(const SessionTask&)>& f) {
  if (!sessions) {
    views.for_each_task([&](const SessionTask& task, const auto&, std::uint64_t) {
      if (!is_terminal(task.state)) f(task);
    });
    return;
  }
  ensure_live();
  live->for_each(f);
}

void Registry::Impl::ensure_live() {
  if (!sessions || live) return;
  projections::LiveTasks built;
  if (const auto& anchor = journal.anchor()) {
    // The tasks the anchor's checkpoint holds, then the events after it.
    const auto info = store::checkpoint_at(journal, anchor->seq);
    if (!info) throw anchor_unusable(*anchor);
    const projections::Views at_anchor = store::read_views_checkpoint(journal, *info);
    at_anchor.for_each_task(
        [&](const SessionTask& task, const auto&, std::uint64_t) { built.seed(task); });
    built.start_after(anchor->seq);
  }
  journal.events_up_to(position(), [&](events::Event&& event) { built.apply(event); });
  live.emplace(std::move(built));
}

Registry::Impl::Fenced Registry::Impl::fenced_update(std::string_view session_id,
                                                     std::string_view task_id,
                                                     const SessionTaskUpdate& update) {
  return single([&](Transaction& tx) {
    const SessionTask* before = tx.find(session_id, task_id);
    if (!before) return Fenced{};
    if (is_terminal(before->state) || before->attempt != update.expected_attempt) {
      return Fenced{.took_effect = false, .task = *before};
    }
    return Fenced{.took_effect = true, .task = this->update(tx, session_id, task_id, update)};
  });
}

std::vector<SessionTask> Registry::list_orphaned(std::chrono::seconds stale_after,
                                                 std::uint32_t limit) {
  if (stale_after.count() <= 0) {
    throw Error(ErrorCode::InvalidArgument,
                "invalid argument: list_orphaned: stale_after must be positive (got " +
                    std::to_string(stale_after.count()) + " s)");
  }
  if (limit == 0) {
    throw Error(ErrorCode::InvalidArgument,
                "invalid argument: list_orphaned: limit must be at least 1 (at most " +
                    std::to_string(kMaxOrphans) + " are returned)");
  }
  limit = std::min(limit, kMaxOrphans);
  Impl& r = *impl_;
  auto guard = r.lock();
  r.refresh();
  if (stale_after > kLongestStaleness) return {};
  const Timestamp cutoff = r.now() - stale_after;
  std::vector<const SessionTask*> found;
  r.for_each_unfinished([&](const SessionTask& task) {
    if ((task.state == SessionTaskState::Queued || task.state == SessionTaskState::Running) &&
        task.heartbeat_at && *task.heartbeat_at < cutoff) {
      found.push_back(&task);
    }
  });
  const auto by_id = [](const SessionTask* a, const SessionTask* b) { return a->id < b->id; };
  const std::size_t n = std::min<std::size_t>(limit, found.size());
  std::partial_sort(found.begin(), found.begin() + static_cast<std::ptrdiff_t>(n), found.end(),
                    by_id);
  std::vector<SessionTask> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(*found[i]);
  return out;
}

ReapReport Registry::reap_orphans(const ReaperOptions& options) {
  ReapReport report;
  const std::vector<SessionTask> candidates = list_orphaned(options.stale_after, options.limit);
  report.candidates = static_cast<std::uint32_t>(candidates.size());
  for (const SessionTask& candidate : candidates) {
    ReapOutcome& outcome = report.outcomes.emplace_back(
        ReapOutcome{.session_id = candidate.session_id, .task_id = candidate.id});
    const auto finish = [&](const char* status, std::string detail) {
      outcome.status = status;
      outcome.detail = std::move(detail);
      ++(outcome.status == "reaped"       ? report.reaped
         : outcome.status == "reattached" ? report.reattached
                                          : report.skipped);
    };
    const std::optional<SessionTask> task = get(candidate.session_id, candidate.id);
    if (!task) {
      finish("skipped", "task not found");
      continue;
    }
    if (is_terminal(task->state)) {
      finish("skipped", "already terminal");
      continue;
    }
    // Another reaper (another process or host) may have re-attached it since it was listed: its
    // new attempt has a fresh heartbeat and is not this run's to take.
    if (task->attempt != candidate.attempt) {
      finish("skipped", "superseded by concurrent reaper");
      continue;
    }
    const std::int32_t n = task->attempt;
    const auto fail = [&](std::int32_t attempt, std::string message, bool increment) {
      return impl_->fenced_update(
          task->session_id, task->id,
          {.state = SessionTaskState::Failed,
           .error = TaskError{.kind = "orphaned", .message = std::move(message)},
           .expected_attempt = attempt,
           .increment_attempt = increment});
    };
    if (options.can_reattach && n < options.max_attempts && options.can_reattach(*task)) {
      const Impl::Fenced attached = impl_->fenced_update(
          task->session_id, task->id,
          {.state_detail = "re-attached (attempt " + std::to_string(n + 1) + ")",
           .worker_id = "reaper",
           .heartbeat_at = impl_->now(),
           .expected_attempt = n,
           .increment_attempt = true});
      if (!attached.took_effect || !attached.task) {
        finish("skipped", "superseded by concurrent reaper");
        continue;
      }
      std::string failure;
      try {
        if (options.start) options.start(*attached.task);
        finish("reattached", "re-attached (attempt " + std::to_string(n + 1) + ")");
        continue;
      } catch (const std::exception& e) {
        failure = e.what();
      } catch (...) {
        failure = "unknown exception";
      }
      const std::string why = "worker heartbeat stopped; re-attach failed: " + failure;
      if (fail(n + 1, why, false).took_effect) {
        finish("reaped", why);
      } else {
        finish("skipped", "superseded by concurrent reaper");
      }
      continue;
    }
    if (fail(n, "worker heartbeat stopped", true).took_effect) {
      finish("reaped", "worker heartbeat stopped");
    } else {
      finish("skipped", "already terminal or missing");
    }
  }
  return report;
}

// ---- sinks --------------------------------------------------------------------------------------

TaskSink Registry::sink(std::string_view session_id, std::string_view task_id,
                        std::int32_t attempt) {
  return TaskSink(*impl_, std::string(session_id), std::string(task_id), attempt);
}

std::optional<SessionTask> TaskSink::fenced(SessionTaskUpdate update) {
  update.expected_attempt = attempt_;
  Registry::Impl& r = *registry_;
  return r.single(
      [&](Registry::Impl::Transaction& tx) { return r.update(tx, session_id_, task_id_, update); });
}

std::optional<SessionTask> TaskSink::state(SessionTaskState state,
                                           std::optional<std::string> detail) {
  return fenced({.state = state, .state_detail = std::move(detail)});
}
std::optional<SessionTask> TaskSink::progress(TaskProgress progress) {
  return fenced({.progress = std::move(progress)});
}
std::optional<SessionTask> TaskSink::heartbeat() {
  return fenced({.heartbeat_at = registry_->now()});
}
std::optional<SessionTask> TaskSink::request_input(TaskInputRequest request) {
  return fenced({.input_request = std::move(request)});
}
std::optional<SessionTask> TaskSink::artifact(TaskArtifact artifact) {
  return fenced({.append_artifact = std::move(artifact)});
}
TaskMessage TaskSink::post(NewTaskMessage message) {
  message.expected_attempt = attempt_;
  Registry::Impl& r = *registry_;
  return r.single([&](Registry::Impl::Transaction& tx) {
    return r.record_message(tx, session_id_, task_id_, message);
  });
}

// ---- waiting ------------------------------------------------------------------------------------

std::optional<WaitResult> Registry::wait(std::string_view session_id, std::string_view task_id,
                                         std::chrono::milliseconds timeout) {
  Impl& r = *impl_;
  const auto deadline =
      std::chrono::steady_clock::now() + std::max(timeout, std::chrono::milliseconds{0});
  auto guard = r.lock();
  r.refresh();
  r.start_watching(r.options.watch.value_or(Impl::kWaitInterval));
  for (;;) {
    const SessionTask* task = r.views_of(session_id).find(session_id, task_id);
    if (!task) return std::nullopt;
    if (settled(*task)) return WaitResult{.task = *task, .timed_out = false};
    if (r.advanced.wait_until(guard, deadline) == std::cv_status::timeout) {
      r.refresh();
      task = r.views_of(session_id).find(session_id, task_id);
      if (!task) return std::nullopt;
      return WaitResult{.task = *task, .timed_out = !settled(*task)};
    }
  }
}

}  // namespace taskjournal
