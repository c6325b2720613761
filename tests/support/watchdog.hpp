// A bound on calls that could deadlock: a hung test binary tells nothing, an abort with a message
// names the call.
#pragma once

#include <functional>
#include <string>

namespace taskjournal::testing {

/// Runs `f` in another thread and waits for it at most `seconds` (a generous bound, not a
/// timing). If it has not finished by then, prints "<what> did not finish within N s: deadlock?"
/// and aborts the test program. Rethrows what `f` threw. `f` must not refer to locals of the
/// caller that the caller destroys before `f` ends (it cannot end early here: on a hang the
/// program aborts).
void within_seconds(int seconds, const std::string& what, std::function<void()> f);

}  // namespace taskjournal::testing
