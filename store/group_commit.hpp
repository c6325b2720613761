// Group commit (internal): the writer queue and the order notifications are delivered in.
//
// WriterQueue is leveldb's writer queue (DBImpl::Write): every call of a Registry queues a
// Writer. The writer at the front leads: it takes itself and the writers queued behind it (the
// calls that arrived while the previous commit was in flight), writes all of them in one
// transaction with one commit (one fsync, one WAL flush), marks them done and hands the front to
// the next writer. A writer alone in the queue leads at once: a single caller waits for nobody
// and no timer. Registry::Impl::write (store/group_commit.cpp) is the leader's side.
//
// DeliveryOrder keeps the notifications of the calls in journal order although each call
// delivers its own in its own thread (docs/contract.md §5): a call takes a ticket when its
// commit is done, under the registry's lock (so tickets follow the journal), and delivers when
// every smaller ticket has been delivered.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <vector>

namespace taskjournal::store {

class WriterQueue {
 public:
  // How a writer is woken. Its own, not the queue's lock: a leader hands the front to the next
  // leader first and then wakes its group's writers one by one, none of which waits for the
  // queue's lock on its way out. Shared (one per thread, reused): the leader holds it while it
  // notifies after unlocking, so a writer that returns at once cannot pull it from under it,
  // and a writer woken does not first wait for the leader to release its mutex.
  struct Signal {
    std::mutex mutex;
    std::condition_variable cv;
    int state = 0;  // 0 waiting, kDone or kLeads (set under `mutex`)
  };
  static constexpr int kDone = 1;   // a leader wrote it
  static constexpr int kLeads = 2;  // it is at the front: it leads the next group
  struct Writer {
    const std::shared_ptr<Signal>* signal = nullptr;  // its thread's (set by join())
  };

  /// Queues `w` and waits until a leader wrote it (false) or it is at the front (true: it leads
  /// the next group).
  bool join(Writer& w);
  /// The leader's group, in queue order, into `out`: the leader itself (at the front) and the
  /// writers behind it, as many as fit. Returns how many.
  std::size_t group(std::span<Writer*> out);
  /// Removes the `group` (as group() gave it, the leader first) from the front, wakes the
  /// writer now at the front (the next leader), then marks the others of the group done and
  /// wakes them.
  void finish(std::span<Writer* const> group);

 private:
  std::mutex mutex_;
  std::deque<Writer*> queue_;
};

class DeliveryOrder {
 public:
  /// The next ticket. Taken under the registry's lock right after the commit that holds the
  /// events whose notifications the ticket delivers.
  std::uint64_t take();
  /// Waits until every smaller ticket was delivered, runs `deliver`, then passes the turn on
  /// (also when `deliver` throws). On a thread that is inside a delivery of this order already
  /// (a subscriber calling the registry) it runs at once: waiting for its turn there would wait
  /// for itself.
  void deliver(std::uint64_t ticket, const std::function<void()>& deliver);

 private:
  void passed(std::uint64_t ticket);
  bool delivering_here() const;

  std::mutex mutex_;
  std::condition_variable turn_;
  std::uint64_t next_ = 1;         // the ticket take() gives next
  std::uint64_t serving_ = 1;      // the ticket whose turn it is
  std::set<std::uint64_t> early_;  // delivered out of turn (by a subscriber's call)
};

}  // namespace taskjournal::store

namespace taskjournal::store::testing {

/// Test hooks, not part of the API. Set and clear them while no registry is in use.
/// `queued` is called by every call that joins a writer queue, with the number of calls then in
/// that queue (its own included), so that a test can hold a commit until the calls it starts
/// are queued behind it; `grouped` by every leader, under the registry's lock, with the number
/// of calls its transaction is about to write.
void set_writer_queue_hooks(std::function<void(std::size_t queued)> queued,
                            std::function<void(std::size_t grouped)> grouped);

}  // namespace taskjournal::store::testing
