#include "store/postgres/change_signal.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <utility>

#include "store/postgres/pq.hpp"

namespace taskjournal::store::postgres {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class ListeningSignal final : public ChangeSignal {
 public:
  ListeningSignal(std::string conninfo, std::string channel, milliseconds fallback,
                  ProblemReporter report)
      : conninfo_(std::move(conninfo)),
        channel_(std::move(channel)),
        fallback_(fallback),
        report_(std::move(report)) {}

  bool wait(milliseconds timeout) override {
    const auto deadline = Clock::now() + timeout;
    try {
      if (!conn_ && !connect()) {
        return wakeup_.wait(timeout) != Wakeup::Woke::Timeout;
      }
      for (;;) {
        if (drain()) return true;
        const auto now = Clock::now();
        if (now >= last_poll_ + fallback_) {
          last_poll_ = now;
          return true;  // the fallback poll: read the journal even without a notification
        }
        const auto until = std::min(deadline, last_poll_ + fallback_);
        const auto left = std::chrono::ceil<milliseconds>(until - now);
        if (until == deadline && left.count() <= 0) return false;
        switch (wakeup_.wait(std::max(left, milliseconds{0}), PQsocket(conn_->raw()))) {
          case Wakeup::Woke::Notified:
            return true;
          case Wakeup::Woke::Ready:
            if (PQconsumeInput(conn_->raw()) == 0) lost();
            if (!conn_) return true;  // notifications may be lost: read the journal
            break;
          case Wakeup::Woke::Timeout:
            if (until == deadline) return false;
            break;
        }
      }
    } catch (const Error& e) {
      problem(e);
      conn_.reset();
      return true;
    }
  }

  void interrupt() noexcept override { wakeup_.notify(); }

 private:
  // Connects and LISTENs; true on success (after which the caller reads the journal: what was
  // committed while not listening sent notifications to nobody).
  bool connect() {
    const auto now = Clock::now();
    if (now < next_connect_) return false;
    next_connect_ = now + milliseconds{1000};
    try {
      auto conn = std::make_unique<Connection>(conninfo_);
      conn->listen(channel_);
      conn_ = std::move(conn);
      failing_ = false;
      last_poll_ = Clock::now();
      wakeup_.notify();  // the first wait after a connect returns true
      return true;
    } catch (const Error& e) {
      problem(e);
      return false;
    }
  }

  // True if notifications arrived (all are consumed: one read of the journal covers them).
  bool drain() {
    bool any = false;
    while (PGnotify* n = PQnotifies(conn_->raw())) {
      PQfreemem(n);
      any = true;
    }
    return any;
  }

  void lost() {
    problem(Error(ErrorCode::Storage,
                  conn_->where("wait for notifications") + ": connection lost; reconnecting"));
    conn_.reset();
  }

  void problem(const Error& e) {
    if (!failing_ && report_) report_(e);
    failing_ = true;
  }

  std::string conninfo_, channel_;
  milliseconds fallback_;
  ProblemReporter report_;
  Wakeup wakeup_;
  std::unique_ptr<Connection> conn_;
  Clock::time_point last_poll_{};
  Clock::time_point next_connect_{};
  bool failing_ = false;
};

}  // namespace

std::unique_ptr<ChangeSignal> listen_for_changes(std::string conninfo, std::string channel,
                                                 milliseconds fallback, ProblemReporter report) {
  return std::make_unique<ListeningSignal>(std::move(conninfo), std::move(channel), fallback,
                                           std::move(report));
}

}  // namespace taskjournal::store::postgres
