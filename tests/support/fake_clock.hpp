// A settable clock for tests: Options::clock reads it, tests move it forward by hand.
//
// Copies share one state, so the std::function handed to a Registry and the FakeClock the test
// keeps always agree. Thread-safe: now()/advance()/set() may be called from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>

#include "taskjournal/taskjournal.hpp"

namespace taskjournal::testing {

/// 2026-01-02T03:04:05.000006Z: every FakeClock starts here.
inline Timestamp fake_clock_start() {
  using namespace std::chrono;
  return Timestamp{sys_days{year{2026} / January / 2}} + hours{3} + minutes{4} + seconds{5} +
         microseconds{6};
}

class FakeClock {
 public:
  FakeClock() : FakeClock(fake_clock_start()) {}
  explicit FakeClock(Timestamp start) : state_(std::make_shared<State>(start)) {}

  /// The current fake time.
  Timestamp now() const {
    std::lock_guard lock(state_->mutex);
    return state_->now;
  }

  /// Moves the clock forward (or back, with a negative step) and returns the new time.
  Timestamp advance(std::chrono::microseconds step) {
    std::lock_guard lock(state_->mutex);
    state_->now += step;
    return state_->now;
  }

  /// Sets the clock to `t`.
  void set(Timestamp t) {
    std::lock_guard lock(state_->mutex);
    state_->now = t;
  }

  /// A clock function for Options::clock that reads this clock's shared state.
  std::function<Timestamp()> fn() const {
    return [state = state_] {
      std::lock_guard lock(state->mutex);
      return state->now;
    };
  }

 private:
  struct State {
    explicit State(Timestamp t) : now(t) {}
    std::mutex mutex;
    Timestamp now;
  };
  std::shared_ptr<State> state_;
};

}  // namespace taskjournal::testing
