// A settable clock for tests: Options::clock reads it, tests move it forward by hand.
//
// Copies share one state, so the std::function handed to a Registry and the FakeClock the test
// keeps always agree. Thread-safe: now()/advance()/set() may be called from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "taskjournal/types.hpp"

namespace taskjournal::testing {

/// 2026-01-02T03:04:05.000006Z: every FakeClock starts here.
Timestamp fake_clock_start();

class FakeClock {
 public:
  FakeClock();
  explicit FakeClock(Timestamp start);

  /// The current fake time.
  Timestamp now() const;

  /// Moves the clock forward (or back, with a negative step) and returns the new time.
  Timestamp advance(std::chrono::microseconds step);

  /// Sets the clock to `t`.
  void set(Timestamp t);

  /// A clock function for Options::clock that reads this clock's shared state.
  std::function<Timestamp()> fn() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace taskjournal::testing
