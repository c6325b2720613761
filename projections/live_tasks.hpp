// The unfinished tasks of a whole journal (internal): what the orphan reaper looks at in a
// registry that does not hold every session (PostgreSQL, projections/session_views.hpp).
//
// Holds every task not in a terminal state, folded with the same fold_into_task as the views; a
// task leaves when it becomes terminal (terminal states are final, docs/contract.md §3 rule 2).
#pragma once

#include <cstdint>
#include <functional>

#include "events/event.hpp"
#include "projections/string_map.hpp"
#include "taskjournal/types.hpp"

namespace taskjournal::projections {

class LiveTasks {
 public:
  /// Folds `event` if it comes after last_seq(); an earlier one was folded already and is
  /// ignored (the index is built from a read of the journal that may overlap later catch-ups).
  void apply(const events::Event& event);
  /// The newest event folded.
  std::uint64_t last_seq() const noexcept { return last_seq_; }
  /// Calls `f` for every unfinished task, in no particular order.
  void for_each(const std::function<void(const SessionTask&)>& f) const;
  std::size_t size() const noexcept { return tasks_.size(); }

 private:
  StringMap<SessionTask> tasks_;
  std::uint64_t last_seq_ = 0;
};

}  // namespace taskjournal::projections
