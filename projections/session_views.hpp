// The views of the sessions one process serves, out of a journal too large to hold (internal).
//
// A registry on PostgreSQL does not fold the whole journal: it folds a session's events the first
// time a call names the session (Sequence::Subset views of that session alone), keeps those views
// current with the events appended after (its own and other hosts'), and forgets the least
// recently used session beyond a bound. Its memory is what it serves, its open time constant.
// Pure: the registry reads the events; nothing here knows the engine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>

#include "events/event.hpp"
#include "projections/string_map.hpp"
#include "projections/views.hpp"

namespace taskjournal::projections {

class SessionViews {
 public:
  /// How many sessions stay loaded at most (the least recently used go first).
  static constexpr std::size_t kDefaultMaxSessions = 1024;

  explicit SessionViews(std::size_t max_sessions = kDefaultMaxSessions);
  SessionViews(SessionViews&&) noexcept = default;
  SessionViews& operator=(SessionViews&&) noexcept = default;

  /// The journal event the loaded views are current to (0 for an empty journal).
  std::uint64_t last_seq() const noexcept { return last_seq_; }

  /// Forgets every session; the views are then current to `seq` (nothing loaded).
  void reset(std::uint64_t seq);

  /// True if the session is loaded (nothing marked).
  bool loaded(std::string_view session_id) const { return sessions_.contains(session_id); }

  /// The session's views if it is loaded (marking it the most recently used), else nullptr.
  Views* find(std::string_view session_id);

  /// Keeps `views`, the fold of every event of `session_id` up to last_seq(), as the session's
  /// (the most recently used). Returns the kept views, valid until trim() or reset().
  Views& install(const std::string& session_id, Views views);

  /// Forgets the least recently used sessions beyond the bound. The registry calls it at the
  /// start of a call, so that the sessions one call (or batch) uses stay loaded to its end.
  void trim();

  /// Folds one journal event, which must be after last_seq(), into its session's views when the
  /// session is loaded (returning what Views::apply did), else only moves last_seq(). Throws
  /// Error(Corrupt) like Views::apply, changing nothing.
  std::optional<Applied> apply(const events::Event& event);

  std::size_t session_count() const noexcept { return sessions_.size(); }

 private:
  struct Loaded {
    Views views;
    std::list<std::string>::iterator used;  // its place in used_
  };
  std::size_t max_sessions_;
  StringMap<Loaded> sessions_;
  std::list<std::string> used_;  // most recently used first
  std::uint64_t last_seq_ = 0;
};

}  // namespace taskjournal::projections
