// The tasks of a whole journal that were not pruned (internal): what the orphan reaper and
// prune_terminal look at in a registry that does not hold every session (PostgreSQL,
// projections/session_views.hpp).
//
// Holds every task not in a terminal state whole, folded with the same fold_into_task as the
// views; when it becomes terminal (terminal states are final, docs/contract.md §3 rule 2) only
// what pruning needs is kept, until the task is pruned.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "events/event.hpp"
#include "projections/string_map.hpp"
#include "taskjournal/types.hpp"

namespace taskjournal::projections {

class LiveTasks {
 public:
  /// A terminal task not pruned yet (finished_at is final; the rest is in its session's views).
  struct Finished {
    std::string session_id;
    Timestamp finished_at{};
  };

  /// Folds `event` if it comes after last_seq(); an earlier one was folded already and is
  /// ignored (the index is built from a read of the journal that may overlap later catch-ups).
  void apply(const events::Event& event);
  /// Adds `task` as a checkpoint holds it (before any apply()), then start_after(its seq).
  void seed(const SessionTask& task);
  void start_after(std::uint64_t seq) { last_seq_ = seq; }
  /// The newest event folded.
  std::uint64_t last_seq() const noexcept { return last_seq_; }
  /// Calls `f` for every unfinished task, in no particular order.
  void for_each(const std::function<void(const SessionTask&)>& f) const;
  std::size_t size() const noexcept { return tasks_.size(); }
  /// Calls `f` for every terminal task not pruned (id, what is kept of it), in no order.
  void for_each_finished(const std::function<void(const std::string&, const Finished&)>& f) const;

 private:
  void finish(const std::string& id, SessionTask&& task);
  StringMap<SessionTask> tasks_;
  StringMap<Finished> finished_;
  std::uint64_t last_seq_ = 0;
};

}  // namespace taskjournal::projections
