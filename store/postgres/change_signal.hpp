// The PostgreSQL change signal (internal; store/change_signal.hpp): a connection of its own that
// LISTENs on the journal's channel, to which every commit sends pg_notify (engine.cpp).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "store/change_signal.hpp"

namespace taskjournal::store::postgres {

/// Waits for a NOTIFY on `channel`. The notifications are a wake-up, not the data: wait() also
/// returns true every `fallback` (a poll in case one was missed) and after every reconnect
/// (notifications sent while disconnected are lost: the registry catches up by reading).
std::unique_ptr<ChangeSignal> listen_for_changes(std::string conninfo, std::string channel,
                                                 std::chrono::milliseconds fallback,
                                                 ProblemReporter report);

}  // namespace taskjournal::store::postgres
