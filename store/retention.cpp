// Bounded growth (README "Retention"): pruning finished tasks as task_pruned events.
#include <algorithm>
#include <string>

#include "store/registry_impl.hpp"
#include "taskjournal/registry.hpp"

namespace taskjournal {
namespace {

constexpr std::uint32_t kMaxPruned = 1000;
// As in host.cpp: no stored time is this far from another; converting more would overflow.
constexpr std::chrono::seconds kLongestAge{400'000'000'000};

}  // namespace

void Registry::Impl::for_each_finished(
    const std::function<void(const std::string&, const std::string&, Timestamp)>& f) {
  if (!sessions) {
    views.for_each_task([&](const SessionTask& task, const auto&, std::uint64_t) {
      if (is_terminal(task.state))
        f(task.id, task.session_id, task.finished_at.value_or(task.updated_at));
    });
    return;
  }
  ensure_live();
  live->for_each_finished([&](const std::string& id, const projections::LiveTasks::Finished& done) {
    f(id, done.session_id, done.finished_at);
  });
}

std::vector<PrunedTask> Registry::prune_terminal(std::chrono::seconds ttl, std::uint32_t limit) {
  if (ttl.count() <= 0) {
    throw Error(ErrorCode::InvalidArgument,
                "invalid argument: prune_terminal: ttl must be positive (got " +
                    std::to_string(ttl.count()) + " s)");
  }
  if (limit == 0) {
    throw Error(ErrorCode::InvalidArgument,
                "invalid argument: prune_terminal: limit must be at least 1 (at most " +
                    std::to_string(kMaxPruned) + " are pruned per call)");
  }
  limit = std::min(limit, kMaxPruned);
  Impl& r = *impl_;
  if (r.sessions && !r.options.read_only) {
    auto guard = r.lock();  // the index is built outside the write, which holds the journal lock
    r.refresh();
    r.ensure_live();
  }
  std::vector<PrunedTask> pruned;
  r.single(
      [&](Impl::Transaction& tx) {
        pruned.clear();
        if (ttl > kLongestAge) return 0;
        const Timestamp now = r.now();
        const Timestamp cutoff = now - ttl;
        struct Candidate {
          Timestamp finished_at;
          std::string id, session;
        };
        std::vector<Candidate> found;
        r.for_each_finished([&](const std::string& id, const std::string& session, Timestamp at) {
          if (at < cutoff) found.push_back({at, id, session});
        });
        const auto older = [](const Candidate& a, const Candidate& b) {
          return a.finished_at != b.finished_at ? a.finished_at < b.finished_at : a.id < b.id;
        };
        // The candidates come from the views, which do not hold the events of the calls before
        // this one in its group commit: a task another prune of the group removed is gone for
        // this transaction (tx.find), and is skipped.
        std::sort(found.begin(), found.end(), older);
        for (const Candidate& candidate : found) {
          if (pruned.size() == limit) break;
          const SessionTask* task = tx.find(candidate.session, candidate.id);
          if (!task || !is_terminal(task->state)) continue;
          if (pruned.empty()) r.journal.raise_schema_version(store::kPrunedSchemaVersion);
          pruned.push_back({.session_id = candidate.session,
                            .task_id = candidate.id,
                            .result_path = task->result_path});
          tx.append(events::Event{.recorded_at = now,
                                  .session_id = candidate.session,
                                  .task_id = candidate.id,
                                  .payload = events::TaskPruned{}});
        }
        return 0;
      },
      /*may_be_optimistic=*/false);
  return pruned;
}

}  // namespace taskjournal
