#include "store/change_signal.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "store/engine.hpp"

namespace taskjournal::store {

Wakeup::Wakeup() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (fd_ < 0) {
    throw Error(ErrorCode::Storage,
                std::string("cannot watch the journal: eventfd: ") + std::strerror(errno));
  }
}

Wakeup::~Wakeup() { ::close(fd_); }

void Wakeup::notify() noexcept {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(fd_, &one, sizeof one);  // full counter: already set
}

Wakeup::Woke Wakeup::wait(std::chrono::milliseconds timeout, int fd) {
  pollfd fds[2] = {{fd_, POLLIN, 0}, {fd, POLLIN, 0}};
  const int count = fd >= 0 ? 2 : 1;
  const int ms = static_cast<int>(std::clamp<std::int64_t>(timeout.count(), 0, 1 << 30));
  int ready = ::poll(fds, count, ms);
  if (ready < 0) {
    if (errno == EINTR) return Woke::Notified;  // the caller looks again: harmless
    throw Error(ErrorCode::Storage,
                std::string("cannot watch the journal: poll: ") + std::strerror(errno));
  }
  if (fds[0].revents != 0) {
    std::uint64_t value = 0;
    [[maybe_unused]] const auto n = ::read(fd_, &value, sizeof value);
    return Woke::Notified;
  }
  if (count == 2 && fds[1].revents != 0) return Woke::Ready;
  return Woke::Timeout;
}

PollingChangeSignal::PollingChangeSignal(std::unique_ptr<Engine> engine,
                                         std::chrono::milliseconds period, ProblemReporter report)
    : engine_(std::move(engine)), period_(period), report_(std::move(report)) {}

PollingChangeSignal::~PollingChangeSignal() = default;

bool PollingChangeSignal::wait(std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    try {
      const bool changed = engine_->changed_by_others();
      failing_ = false;
      if (changed) return true;
    } catch (const Error& e) {
      if (!failing_ && report_) report_(e);
      failing_ = true;  // look again at the next wait, not every period
      return wakeup_.wait(timeout) != Wakeup::Woke::Timeout;
    }
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    if (wakeup_.wait(std::min(period_, left)) != Wakeup::Woke::Timeout) return true;
  }
}

}  // namespace taskjournal::store
