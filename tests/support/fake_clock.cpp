#include "support/fake_clock.hpp"

#include <mutex>

namespace taskjournal::testing {

Timestamp fake_clock_start() {
  using namespace std::chrono;
  return Timestamp{sys_days{year{2026} / January / 2}} + hours{3} + minutes{4} + seconds{5} +
         microseconds{6};
}

struct FakeClock::State {
  explicit State(Timestamp t) : now(t) {}
  std::mutex mutex;
  Timestamp now;
};

FakeClock::FakeClock() : FakeClock(fake_clock_start()) {}

FakeClock::FakeClock(Timestamp start) : state_(std::make_shared<State>(start)) {}

Timestamp FakeClock::now() const {
  std::lock_guard lock(state_->mutex);
  return state_->now;
}

Timestamp FakeClock::advance(std::chrono::microseconds step) {
  std::lock_guard lock(state_->mutex);
  state_->now += step;
  return state_->now;
}

void FakeClock::set(Timestamp t) {
  std::lock_guard lock(state_->mutex);
  state_->now = t;
}

std::function<Timestamp()> FakeClock::fn() const {
  return [state = state_] {
    std::lock_guard lock(state->mutex);
    return state->now;
  };
}

}  // namespace taskjournal::testing
