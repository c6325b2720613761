// A bounded queue from one producer thread to one consumer thread (internal).
//
// The producer push()es items and ends with close(), handing over its exception if it failed;
// the consumer pop()s until the end, and stop()s the producer if it gives up early.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <utility>

namespace taskjournal::store {

template <class T>
class Handoff {
 public:
  explicit Handoff(std::size_t capacity) : capacity_(capacity) {}

  /// Producer: waits for room, then queues `item`. False (item dropped) once the consumer stopped.
  bool push(T&& item) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return stopped_ || items_.size() < capacity_; });
    if (stopped_) return false;
    items_.push_back(std::move(item));
    changed_.notify_all();
    return true;
  }

  /// Producer: no more items; `error`, if set, is rethrown by pop() after the queued items.
  void close(std::exception_ptr error = nullptr) {
    std::lock_guard lock(mutex_);
    closed_ = true;
    error_ = std::move(error);
    changed_.notify_all();
  }

  /// Consumer: the next item; nullopt after the last. Rethrows the producer's exception.
  std::optional<T> pop() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return closed_ || !items_.empty(); });
    if (items_.empty()) {
      if (error_) std::rethrow_exception(error_);
      return std::nullopt;
    }
    T item = std::move(items_.front());
    items_.pop_front();
    changed_.notify_all();
    return item;
  }

  /// Consumer: makes every later push() return false.
  void stop() {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<T> items_;
  std::size_t capacity_;
  std::exception_ptr error_;
  bool closed_ = false;
  bool stopped_ = false;
};

}  // namespace taskjournal::store
