// Noticing other connections' commits without reading the journal in a loop (internal; the
// Registry's watch thread and Registry::wait, README "Watching").
//
// Engine::change_signal() gives one of these over a connection of its own: SQLite checks the
// WAL index (PollingChangeSignal over a second SqliteEngine), PostgreSQL waits for the NOTIFY
// every commit sends (store/postgres/). Linux only (eventfd), like the rest of the build.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "taskjournal/error.hpp"

namespace taskjournal::store {

class Engine;

/// Where a change signal reports what it worked around (a lost connection): the registry's
/// Options::on_problem.
using ProblemReporter = std::function<void(const Error&)>;

/// Tells one watching thread that another connection may have committed.
class ChangeSignal {
 public:
  virtual ~ChangeSignal() = default;
  /// Blocks until another connection may have committed, `timeout` passed, or interrupt() was
  /// called. False only when the engine is sure nothing changed; true whenever the journal is
  /// worth reading (also after a reconnect, or a fallback period). Never throws: problems go to
  /// the reporter, once until the signal works again.
  virtual bool wait(std::chrono::milliseconds timeout) = 0;
  /// Makes the current or next wait() return true at once. Any thread; never throws.
  virtual void interrupt() noexcept = 0;
};

/// An eventfd one thread waits on, optionally together with another file descriptor.
class Wakeup {
 public:
  Wakeup();  ///< throws Error(Storage) if the kernel gives no eventfd
  ~Wakeup();
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;

  /// Wakes the current or next wait(). Any thread; never throws.
  void notify() noexcept;
  enum class Woke { Timeout, Notified, Ready };
  /// Waits up to `timeout` for notify() (consumed) or for `fd` (if ≥ 0) to be readable.
  Woke wait(std::chrono::milliseconds timeout, int fd = -1);

 private:
  int fd_;
};

/// A change signal that asks `engine` (a connection of its own) changed_by_others() every
/// `period`: for engines where that question is a memory read (SQLite's WAL index).
class PollingChangeSignal final : public ChangeSignal {
 public:
  PollingChangeSignal(std::unique_ptr<Engine> engine, std::chrono::milliseconds period,
                      ProblemReporter report);
  ~PollingChangeSignal() override;
  bool wait(std::chrono::milliseconds timeout) override;
  void interrupt() noexcept override { wakeup_.notify(); }

 private:
  std::unique_ptr<Engine> engine_;
  std::chrono::milliseconds period_;
  ProblemReporter report_;
  Wakeup wakeup_;
  bool failing_ = false;
};

}  // namespace taskjournal::store
