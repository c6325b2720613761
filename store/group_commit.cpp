// Group commit: the writer queue, the delivery order, and the leader's side of a call
// (store/group_commit.hpp).
#include "store/group_commit.hpp"

#include <algorithm>
#include <array>
#include <span>
#include <thread>
#include <utility>

#include "store/registry_impl.hpp"

namespace taskjournal {
namespace store {

namespace {
std::function<void(std::size_t)>& queued_hook() {
  static std::function<void(std::size_t)> hook;
  return hook;
}
std::function<void(std::size_t)>& grouped_hook() {
  static std::function<void(std::size_t)> hook;
  return hook;
}
}  // namespace

namespace testing {
void set_writer_queue_hooks(std::function<void(std::size_t queued)> queued,
                            std::function<void(std::size_t grouped)> grouped) {
  queued_hook() = std::move(queued);
  grouped_hook() = std::move(grouped);
}
}  // namespace testing

// ---- the writer queue ---------------------------------------------------------------------------

namespace {
// This thread's signal: a thread waits for one call at a time.
const std::shared_ptr<WriterQueue::Signal>& own_signal() {
  thread_local const auto signal = std::make_shared<WriterQueue::Signal>();
  return signal;
}

// Sets `state` and wakes the writer; notified after unlocking, on a signal this holds alive.
void wake(const WriterQueue::Writer& w, int state) {
  const std::shared_ptr<WriterQueue::Signal> signal = *w.signal;
  {
    const std::lock_guard lock(signal->mutex);
    signal->state = state;
  }
  signal->cv.notify_one();
}
}  // namespace

bool WriterQueue::join(Writer& w) {
  w.signal = &own_signal();
  {
    const std::lock_guard lock(mutex_);
    queue_.push_back(&w);
    if (queued_hook()) queued_hook()(queue_.size());
    if (queue_.size() == 1) return true;  // no commit in flight: lead at once
  }
  Signal& signal = **w.signal;
  std::unique_lock lock(signal.mutex);
  signal.cv.wait(lock, [&] { return signal.state != 0; });
  const bool leads = signal.state == kLeads;
  signal.state = 0;  // for this thread's next call
  return leads;
}

std::size_t WriterQueue::group(std::span<Writer*> out) {
  const std::lock_guard lock(mutex_);
  const std::size_t n = std::min(out.size(), queue_.size());
  std::copy_n(queue_.begin(), n, out.begin());
  return n;
}

void WriterQueue::finish(std::span<Writer* const> group) {
  Writer* next = nullptr;
  {
    const std::lock_guard lock(mutex_);
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(group.size()));
    if (!queue_.empty()) next = queue_.front();
  }
  // The next group starts while this one's writers wake up.
  if (next) wake(*next, kLeads);
  for (Writer* w : group.subspan(1)) wake(*w, kDone);  // not the leader, not waiting
}

// ---- the delivery order -------------------------------------------------------------------------

namespace {
// The orders this thread is delivering for, innermost last (a subscriber may call another
// registry, or this one).
thread_local std::vector<const DeliveryOrder*> delivering;

struct Delivering {
  explicit Delivering(const DeliveryOrder* order) { delivering.push_back(order); }
  ~Delivering() { delivering.pop_back(); }
  Delivering(const Delivering&) = delete;
  Delivering& operator=(const Delivering&) = delete;
};
}  // namespace

std::uint64_t DeliveryOrder::take() {
  std::lock_guard lock(mutex_);
  return next_++;
}

bool DeliveryOrder::delivering_here() const {
  return std::find(delivering.begin(), delivering.end(), this) != delivering.end();
}

void DeliveryOrder::deliver(std::uint64_t ticket, const std::function<void()>& deliver) {
  struct Pass {
    DeliveryOrder& order;
    std::uint64_t ticket;
    ~Pass() { order.passed(ticket); }
  };
  if (delivering_here()) {
    // A subscriber's call: its notifications come now, inside the one it was called from.
    const Pass pass{*this, ticket};
    deliver();
    return;
  }
  {
    std::unique_lock lock(mutex_);
    turn_.wait(lock, [&] { return serving_ == ticket; });
  }
  const Pass pass{*this, ticket};
  const Delivering here(this);
  deliver();
}

void DeliveryOrder::passed(std::uint64_t ticket) {
  std::lock_guard lock(mutex_);
  if (ticket != serving_) {
    early_.insert(ticket);  // out of turn: skipped when its turn comes
    return;
  }
  ++serving_;
  while (early_.erase(serving_) > 0) ++serving_;
  turn_.notify_all();
}

}  // namespace store

// ---- the leader ---------------------------------------------------------------------------------

void Registry::Impl::write(GroupWriter& writer) {
  if (!writers.join(writer)) return;  // a leader wrote it with its group
  // Durability::Full, where a commit waits for a flush: when the previous group was shared
  // (other threads are writing), let the writers it just released queue up behind this one
  // first, so that they share this flush rather than wait for the next one. One yield, no
  // timer, in the spirit of PostgreSQL's commit_delay, which applies only while other
  // transactions are active: a single caller's groups are of one, and it never yields.
  // Measured on SQLite, 16 threads: 28k -> 34k calls/s; with Normal it cost more than it gave.
  if (options.durability == Durability::Full && last_group.load(std::memory_order_relaxed) > 1) {
    std::this_thread::yield();
  }
  // From here this thread leads: whatever happens (an allocation that fails), the writers it
  // took leave the queue and the next leader gets the front.
  std::array<store::WriterQueue::Writer*, kMaxGroup> front{&writer};
  std::size_t taken = 1;
  struct Finish {
    store::WriterQueue& queue;
    const std::array<store::WriterQueue::Writer*, kMaxGroup>& front;
    const std::size_t& n;
    ~Finish() { queue.finish(std::span(front).first(n)); }
  } finish{writers, front, taken};
  taken = writers.group(std::span(front).first(options.group_commit ? kMaxGroup : 1));
  std::array<GroupWriter*, kMaxGroup> writers_of{};
  for (std::size_t i = 0; i < taken; ++i) writers_of[i] = static_cast<GroupWriter*>(front[i]);
  const std::span<GroupWriter* const> group = std::span(writers_of).first(taken);
  last_group.store(taken, std::memory_order_relaxed);
  const std::lock_guard guard(mutex);
  if (store::grouped_hook()) store::grouped_hook()(group.size());
  commit_group(group);
}

namespace {
// A copy of what `failure` holds for each call of a failed group, so that threads rethrowing
// it do not share one exception object (an Error is made anew; anything else is shared). Not a
// copy-constructed Error: std::runtime_error's copies share one reference-counted message.
std::exception_ptr copy_for_caller(const std::exception_ptr& failure) noexcept {
  try {
    std::rethrow_exception(failure);
  } catch (const Error& e) {
    try {
      return std::make_exception_ptr(Error(e.code(), e.what()));
    } catch (...) {
      return failure;  // no memory for a copy: share it
    }
  } catch (...) {
    return failure;
  }
}
}  // namespace

void Registry::Impl::commit_group(std::span<GroupWriter* const> group) {
  const bool may_be_optimistic = std::all_of(
      group.begin(), group.end(), [](const GroupWriter* w) { return w->may_be_optimistic; });
  std::vector<Notice> notices;
  std::vector<std::size_t>& ends = group_ends;  // notices up to each event of the transaction
  for (int attempt = 0;; ++attempt) {
    const bool optimistic =
        may_be_optimistic && sessions.has_value() && attempt == 0 && locked_calls_left == 0;
    if (sessions && !optimistic && locked_calls_left > 0) --locked_calls_left;
    notices.clear();
    ends.clear();
    try {
      Transaction tx(*this, optimistic);
      for (GroupWriter* w : group) {
        w->failure = nullptr;
        const std::size_t before = tx.size();
        try {
          w->run(tx);
        } catch (...) {
          // A call refused before it appended anything fails alone. One that failed with part
          // of its work in the transaction, or a statement that failed, fails the group.
          if (!tx.alive() || tx.size() != before) throw;
          w->failure = std::current_exception();
        }
        w->events = tx.size() - before;
      }
      // Optimistic (PostgreSQL): the commit stores the events only if nobody appended since the
      // views' newest event, so every decision, refusals included, rested on the newest state;
      // a commit with nothing to store checks the same (Transaction::commit).
      notices = tx.commit(&ends);
    } catch (const store::WriteConflict&) {
      locked_calls_left = kLockedAfterConflict;  // others append too: lock, catch up, decide
      continue;
    } catch (...) {
      const std::exception_ptr failure = std::current_exception();
      for (GroupWriter* w : group) w->failure = copy_for_caller(failure);
      return;
    }
    break;
  }
  checkpoint_if_due();
  // Each call's notifications, then a ticket for each call that has any, in journal order. A
  // ticket taken must be delivered (or every later delivery waits for it): none is taken before
  // every call has its notifications.
  try {
    std::size_t event = 0;
    for (GroupWriter* w : group) {
      const auto first = static_cast<std::ptrdiff_t>(event == 0 ? 0 : ends[event - 1]);
      event += w->events;
      const auto last = static_cast<std::ptrdiff_t>(event == 0 ? 0 : ends[event - 1]);
      w->notices.assign(std::make_move_iterator(notices.begin() + first),
                        std::make_move_iterator(notices.begin() + last));
    }
  } catch (const std::exception& e) {  // out of memory: the writes stand, unannounced
    for (GroupWriter* w : group) w->notices.clear();
    report(
        Error(ErrorCode::Storage,
              std::string("the notifications of a group commit were not delivered: ") + e.what()));
  }
  for (GroupWriter* w : group) {
    if (!w->notices.empty()) w->ticket = delivery.take();
  }
}

void Registry::Impl::deliver(std::uint64_t ticket, const std::vector<Notice>& notices) {
  if (ticket == 0) return;
  delivery.deliver(ticket, [&] { notify(notices); });
}

}  // namespace taskjournal
