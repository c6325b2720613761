// The notifications of one folded event, as a pure function (internal): docs/contract.md §5's
// events, transitions and wake-up texts. The registry delivers them after the commit.
#pragma once

#include <optional>
#include <utility>
#include <vector>

#include "events/event.hpp"
#include "projections/views.hpp"
#include "taskjournal/notifications.hpp"

namespace taskjournal::projections {

/// One notification to deliver after the commit, in order.
struct Notice {
  std::optional<RegistryEvent> event;
  std::optional<std::pair<TaskTransition, SessionTask>> transition;
  std::optional<WakeNotice> wake;
};

/// Appends to `out` the notices of `event`, which the fold applied as `applied` says: the
/// RegistryEvent(s), then each transition with the wake-up its task's wake policy asks for.
void notices_for(const events::Event& event, const Applied& applied, std::vector<Notice>& out);

}  // namespace taskjournal::projections
