#include "projections/session_views.hpp"

#include <utility>

#include "taskjournal/error.hpp"

namespace taskjournal::projections {

SessionViews::SessionViews(std::size_t max_sessions)
    : max_sessions_(max_sessions == 0 ? 1 : max_sessions) {}

void SessionViews::reset(std::uint64_t seq) {
  sessions_.clear();
  used_.clear();
  last_seq_ = seq;
}

Views* SessionViews::find(std::string_view session_id) {
  const auto it = sessions_.find(session_id);
  if (it == sessions_.end()) return nullptr;
  used_.splice(used_.begin(), used_, it->second.used);
  return &it->second.views;
}

Views& SessionViews::install(const std::string& session_id, Views views) {
  if (auto it = sessions_.find(session_id); it != sessions_.end()) {
    it->second.views = std::move(views);
    used_.splice(used_.begin(), used_, it->second.used);
    return it->second.views;
  }
  used_.push_front(session_id);
  auto [it, inserted] = sessions_.emplace(session_id, Loaded{std::move(views), used_.begin()});
  return it->second.views;
}

void SessionViews::trim() {
  while (sessions_.size() > max_sessions_) {
    sessions_.erase(sessions_.find(used_.back()));
    used_.pop_back();
  }
}

std::optional<Applied> SessionViews::apply(const events::Event& event) {
  if (event.seq <= last_seq_) {
    throw Error(ErrorCode::Corrupt, "event " + std::to_string(event.seq) +
                                        ": expected a sequence number above " +
                                        std::to_string(last_seq_));
  }
  std::optional<Applied> applied;
  if (const auto it = sessions_.find(event.session_id); it != sessions_.end()) {
    applied = it->second.views.apply(event);
  }
  last_seq_ = event.seq;
  return applied;
}

}  // namespace taskjournal::projections
