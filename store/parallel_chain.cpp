#include "store/parallel_chain.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "store/engine.hpp"

namespace taskjournal::store {
namespace {

std::mutex tuning_mutex;
FoldTuning tuning_value;

// One batch of copied rows and what a worker found in them. The consumer fills and reads it; a
// worker owns it between submit() and its `done`.
struct Batch {
  struct Slot {
    std::uint64_t seq = 0;
    std::int64_t version = 0;
    std::int64_t recorded_at = 0;
    std::size_t type = 0, session = 0, task = 0, payload = 0, hash = 0;  // offsets into arena
    std::uint32_t type_n = 0, session_n = 0, task_n = 0, payload_n = 0, hash_n = 0;
    bool wants_payload = true;
    bool ok = false;  // check() returned true
  };
  struct Found {
    std::size_t row = 0;
    std::uint64_t seq = 0;
    ErrorCode code = ErrorCode::Corrupt;
    std::string what;
  };

  std::uint64_t next_seq = 0;  // what the verifier expected before the first row
  std::string prev_hash;       // the stored hash of the row before the first
  std::string arena;
  std::vector<Slot> slots;
  std::vector<events::Event> events;  // events[i] is slots[i]'s (reused between batches)
  std::vector<Found> problems;        // in order of rows, then of checks
  std::exception_ptr error;           // thrown while checking row error_row (OpenSSL failing)
  std::size_t error_row = 0;
  bool done = false;  // guarded by Workers::mutex_

  static constexpr std::size_t kKeptArena = 4 * 1024 * 1024;

  void clear() {
    if (arena.capacity() > kKeptArena) {
      arena = std::string();
    } else {
      arena.clear();
    }
    slots.clear();
    problems.clear();
    error = nullptr;
    done = false;
  }

  std::size_t put(std::string_view s) {
    const std::size_t at = arena.size();
    arena.append(s.data(), s.size());
    return at;
  }

  void add(const EventRow& row, bool wants_payload) {
    Slot& s = slots.emplace_back();
    s.seq = row.seq;
    s.version = row.version;
    s.recorded_at = row.recorded_at;
    s.type = put(row.type);
    s.type_n = static_cast<std::uint32_t>(row.type.size());
    s.session = put(row.session_id);
    s.session_n = static_cast<std::uint32_t>(row.session_id.size());
    s.task = put(row.task_id);
    s.task_n = static_cast<std::uint32_t>(row.task_id.size());
    s.payload = put(row.payload);
    s.payload_n = static_cast<std::uint32_t>(row.payload.size());
    s.hash = put(row.hash);
    s.hash_n = static_cast<std::uint32_t>(row.hash.size());
    s.wants_payload = wants_payload;
  }

  EventRow row(std::size_t i) const {
    const Slot& s = slots[i];
    const char* a = arena.data();
    return EventRow{.seq = s.seq,
                    .type = {a + s.type, s.type_n},
                    .version = s.version,
                    .recorded_at = s.recorded_at,
                    .session_id = {a + s.session, s.session_n},
                    .task_id = {a + s.task, s.task_n},
                    .payload = {a + s.payload, s.payload_n},
                    .hash = {a + s.hash, s.hash_n}};
  }
};

// A worker's own verifier: it collects the problems of the batch it checks.
struct WorkerChain final : ChainReporter {
  ChainHasher hasher;
  ChainVerifier verifier{0, genesis_hash(), *this, hasher};
  Batch* batch = nullptr;
  std::size_t row = 0;

  void problem(std::uint64_t seq, ErrorCode code, const std::string& what) override {
    batch->problems.push_back(Batch::Found{row, seq, code, what});
  }

  void check(Batch& b) {
    batch = &b;
    std::uint64_t next = b.next_seq;
    std::string_view prev = b.prev_hash;
    for (row = 0; row < b.slots.size(); ++row) {
      const EventRow r = b.row(row);
      verifier.resume(next, prev);
      try {
        b.slots[row].ok = verifier.check(r, b.events[row], b.slots[row].wants_payload);
      } catch (...) {
        b.error = std::current_exception();
        b.error_row = row;
        return;
      }
      next = r.seq + 1;
      prev = r.hash;
    }
  }
};

// Threads that check batches in the order submitted (any worker takes the next one).
class Workers {
 public:
  // Starts up to `n` threads; fewer (none) if the system refuses more.
  explicit Workers(unsigned n) {
    threads_.reserve(n);
    for (unsigned i = 0; i < n; ++i) {
      try {
        threads_.emplace_back([this] { run(); });
      } catch (...) {
        break;  // the threads started so far do the work
      }
    }
  }
  ~Workers() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    work_.notify_all();
    for (auto& t : threads_) t.join();
  }
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  std::size_t size() const noexcept { return threads_.size(); }

  void submit(Batch* b) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(b);
    }
    work_.notify_one();
  }
  bool done(const Batch* b) {
    std::lock_guard lock(mutex_);
    return b->done;
  }
  void wait(const Batch* b) {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return b->done; });
  }
  // A batch checked by the thread that read it (no workers).
  void mark_done(Batch* b) {
    std::lock_guard lock(mutex_);
    b->done = true;
  }

 private:
  void run() {
    std::unique_ptr<WorkerChain> chain;
    std::exception_ptr failed;  // the worker's hasher could not be made
    try {
      chain = std::make_unique<WorkerChain>();
    } catch (...) {
      failed = std::current_exception();
    }
    std::unique_lock lock(mutex_);
    while (true) {
      work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      Batch* b = queue_.front();
      queue_.pop_front();
      lock.unlock();
      if (chain) {
        chain->check(*b);
      } else {
        b->error = failed;
        b->error_row = 0;
      }
      lock.lock();
      b->done = true;
      done_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable work_;
  std::condition_variable done_;
  std::deque<Batch*> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// One verified scan in its parallel part.
// Hands a checked batch to the caller, in order, on the calling thread: the `before` hook, each
// row's problems to the reporter, then the sink. False once the hook or the sink stopped.
bool deliver_batch(Batch& b, ChainVerifier& verifier, const ScanHooks& hooks,
                   const std::function<bool(const EventRow&, events::Event*)>& sink) {
  ChainReporter& reporter = verifier.reporter();
  std::size_t p = 0;
  for (std::size_t i = 0; i < b.slots.size(); ++i) {
    const EventRow row = b.row(i);
    if (hooks.before && !hooks.before(row)) return false;
    verifier.resume(row.seq + 1, row.hash);
    for (; p < b.problems.size() && b.problems[p].row == i; ++p) {
      reporter.problem(b.problems[p].seq, b.problems[p].code, b.problems[p].what);
    }
    if (b.error && b.error_row == i) std::rethrow_exception(b.error);
    if (!sink(row, b.slots[i].ok ? &b.events[i] : nullptr)) return false;
  }
  return true;
}

class ParallelScan {
 public:
  ParallelScan(ChainVerifier& verifier, const ScanHooks& hooks,
               const std::function<bool(const EventRow&, events::Event*)>& sink,
               const FoldTuning& tuning)
      : verifier_(verifier),
        hooks_(hooks),
        sink_(sink),
        batch_rows_(std::max<std::size_t>(tuning.batch_rows, 1)),
        workers_(fold_workers(tuning)),
        max_in_flight_(2 * workers_.size() + 2) {}

  // False if no worker could be started: the scan stays sequential.
  bool started() const noexcept { return workers_.size() > 0; }

  // Takes one row as read; false once the scan must end (a hook or the sink stopped it).
  bool add(const EventRow& row) {
    if (!current_) {
      current_ = take_free();
      if (first_) {
        current_->next_seq = verifier_.next_seq();
        current_->prev_hash.assign(verifier_.last_hash());
        first_ = false;
      } else {
        current_->next_seq = copied_next_;
        current_->prev_hash.assign(copied_hash_);
      }
    }
    current_->add(row, !hooks_.wants_payload || hooks_.wants_payload(row.session_id));
    copied_next_ = row.seq + 1;
    copied_hash_.assign(row.hash);
    if (current_->slots.size() >= batch_rows_) {
      submit();
      return drain(false);
    }
    return true;
  }

  // Hands over every row read so far; false if a hook or the sink stopped the scan.
  bool finish() {
    if (current_ && !current_->slots.empty()) submit();
    return drain(true);
  }

 private:
  Batch* take_free() {
    if (!free_.empty()) {
      Batch* b = free_.back();
      free_.pop_back();
      return b;
    }
    owned_.push_back(std::make_unique<Batch>());
    return owned_.back().get();
  }

  void submit() {
    Batch* b = current_;
    current_ = nullptr;
    if (b->events.size() < b->slots.size()) b->events.resize(b->slots.size());
    in_flight_.push_back(b);
    workers_.submit(b);
  }

  // Delivers the checked batches at the front: all of them with `all`, else those done (waiting
  // for the oldest while too many are in flight).
  bool drain(bool all) {
    while (!in_flight_.empty()) {
      Batch* b = in_flight_.front();
      if (!all && in_flight_.size() < max_in_flight_ && !workers_.done(b)) return true;
      workers_.wait(b);
      const bool go_on = deliver(*b);
      in_flight_.pop_front();
      b->clear();
      free_.push_back(b);
      if (!go_on) return false;
    }
    return true;
  }

  bool deliver(Batch& b) { return deliver_batch(b, verifier_, hooks_, sink_); }

  ChainVerifier& verifier_;
  const ScanHooks& hooks_;
  const std::function<bool(const EventRow&, events::Event*)>& sink_;
  const std::size_t batch_rows_;
  // Batches first: the workers (destroyed before them) may still hold some.
  std::vector<std::unique_ptr<Batch>> owned_;
  std::vector<Batch*> free_;
  std::deque<Batch*> in_flight_;
  Batch* current_ = nullptr;
  bool first_ = true;
  std::uint64_t copied_next_ = 0;
  std::string copied_hash_;
  Workers workers_;
  const std::size_t max_in_flight_;
};

// One verified scan read on a scan thread of its own: the scan thread reads the rows and copies
// them into batches (checking them itself when there are no workers), workers check them, the
// calling thread takes the batches back in order and delivers them (ParallelScan::deliver's
// order of hooks, reports and sink calls). The scan thread waits inside the engine's scan after
// the first row until that row was delivered, so that the first `before` may use the engine.
class ThreadedScan {
 public:
  ThreadedScan(Engine& engine, ChainVerifier& verifier, const ScanHooks& hooks,
               const std::function<bool(const EventRow&, events::Event*)>& sink,
               const FoldTuning& tuning)
      : engine_(engine),
        verifier_(verifier),
        hooks_(hooks),
        sink_(sink),
        batch_rows_(std::max<std::size_t>(tuning.batch_rows, 1)),
        workers_(scan_thread_workers(tuning)),
        max_batches_(2 * workers_.size() + 4),
        after_(verifier.next_seq() - 1),
        prev_hash_(verifier.last_hash()) {
    if (workers_.size() == 0) own_chain_ = std::make_unique<WorkerChain>();
    thread_ = std::thread([this] { read(); });  // throws if it cannot start: nothing read yet
  }
  ~ThreadedScan() {
    stop();
    thread_.join();
  }
  ThreadedScan(const ThreadedScan&) = delete;
  ThreadedScan& operator=(const ThreadedScan&) = delete;

  // Delivers every row read, in order; rethrows the engine's error after the rows before it.
  void run() {
    while (true) {
      Batch* b = nullptr;
      {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return !ready_.empty() || finished_; });
        if (ready_.empty()) break;
        b = ready_.front();
      }
      workers_.wait(b);
      bool go_on = false;
      try {
        go_on = deliver(*b);
      } catch (...) {
        stop();
        throw;
      }
      {
        std::lock_guard lock(mutex_);
        ready_.pop_front();
        b->clear();
        free_.push_back(b);
        first_delivered_ = true;
        if (!go_on) stopping_ = true;
      }
      changed_.notify_all();
      if (!go_on) return;
    }
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
  }

  // The scan thread.
  void read() {
    Batch* current = nullptr;
    std::uint64_t next = verifier_next();
    std::string prev = prev_hash_;
    bool first = true;
    try {
      engine_.scan(after_, [&](const EventRow& row) {
        if (!current) {
          current = take_free();
          if (!current) return false;  // stopping
          current->next_seq = next;
          current->prev_hash.assign(prev);
        }
        current->add(row, true);
        next = row.seq + 1;
        prev.assign(row.hash);
        if (first || current->slots.size() >= batch_rows_) {
          if (!submit(std::exchange(current, nullptr))) return false;
          if (std::exchange(first, false)) {
            // The first row's `before` may use the engine: wait here until it was delivered.
            std::unique_lock lock(mutex_);
            changed_.wait(lock, [&] { return first_delivered_ || stopping_; });
            return !stopping_;
          }
        }
        return true;
      });
    } catch (...) {
      std::lock_guard lock(mutex_);
      error_ = std::current_exception();
    }
    if (current && !current->slots.empty()) {
      try {
        submit(current);
      } catch (...) {  // cannot happen (no allocation), but never lose the error
      }
    }
    {
      std::lock_guard lock(mutex_);
      finished_ = true;
    }
    changed_.notify_all();
  }

  std::uint64_t verifier_next() const noexcept { return after_ + 1; }

  // A batch to fill, waiting while the most are in flight; nullptr once stopping.
  Batch* take_free() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock,
                  [&] { return stopping_ || !free_.empty() || owned_.size() < max_batches_; });
    if (stopping_) return nullptr;
    if (!free_.empty()) {
      Batch* b = free_.back();
      free_.pop_back();
      return b;
    }
    owned_.push_back(std::make_unique<Batch>());
    return owned_.back().get();
  }

  // Hands a filled batch to the workers (or checks it here) and to the calling thread.
  bool submit(Batch* b) {
    if (b->events.size() < b->slots.size()) b->events.resize(b->slots.size());
    if (own_chain_) {
      own_chain_->check(*b);
      workers_.mark_done(b);
    } else {
      workers_.submit(b);
    }
    {
      std::lock_guard lock(mutex_);
      ready_.push_back(b);
      if (stopping_) return false;
    }
    changed_.notify_all();
    return true;
  }

  bool deliver(Batch& b) { return deliver_batch(b, verifier_, hooks_, sink_); }

  Engine& engine_;
  ChainVerifier& verifier_;
  const ScanHooks& hooks_;
  const std::function<bool(const EventRow&, events::Event*)>& sink_;
  const std::size_t batch_rows_;
  // Batches first: the workers and the scan thread (stopped before them) may still hold some.
  std::vector<std::unique_ptr<Batch>> owned_;  // guarded by mutex_
  std::unique_ptr<WorkerChain> own_chain_;     // no workers: the scan thread checks
  Workers workers_;
  const std::size_t max_batches_;
  const std::uint64_t after_;
  const std::string prev_hash_;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Batch*> free_;  // guarded by mutex_
  std::deque<Batch*> ready_;  // in order of rows; guarded by mutex_
  bool stopping_ = false;     // the calling thread wants no more rows; guarded by mutex_
  bool finished_ = false;     // the scan thread read its last row; guarded by mutex_
  bool first_delivered_ = false;
  std::exception_ptr error_;  // what the engine threw; guarded by mutex_ until finished_
  std::thread thread_;        // last: started when everything else is in place
};

}  // namespace

FoldTuning fold_tuning() {
  std::lock_guard lock(tuning_mutex);
  return tuning_value;
}

void set_fold_tuning(const FoldTuning& tuning) {
  std::lock_guard lock(tuning_mutex);
  tuning_value = tuning;
}

unsigned fold_workers(const FoldTuning& tuning) {
  if (tuning.workers != 0) return tuning.workers;
  // The calling thread is busy too (it scans and folds, the critical path): one worker fewer
  // than the machine has cores. One more would only take turns with it: on 2 cores, 2 workers
  // made a 1M-event open 40 % slower than 1.
  const unsigned cores = std::thread::hardware_concurrency();
  return std::clamp(cores > 1 ? cores - 1 : 1U, 1U, 8U);
}

bool fold_uses_scan_thread(const FoldTuning& tuning) {
  switch (tuning.scan_thread) {
    case FoldTuning::Scan::Never:
      return false;
    case FoldTuning::Scan::Always:
      return true;
    case FoldTuning::Scan::PerCores:
      break;
  }
  return std::thread::hardware_concurrency() > 2;
}

unsigned scan_thread_workers(const FoldTuning& tuning) {
  if (tuning.scan_thread_workers >= 0) return static_cast<unsigned>(tuning.scan_thread_workers);
  // The scan thread and the calling thread (the fold) take a core each.
  const unsigned cores = std::thread::hardware_concurrency();
  return std::clamp(cores > 2 ? cores - 2 : 0U, 0U, 8U);
}

namespace {

// Whether this scan reads on a scan thread: the caller allows it, no filter reads the sink's
// state, and it is expected to be large (the newest row a hint only: nothing relies on it).
bool wants_scan_thread(Engine& engine, const ChainVerifier& verifier, const ScanHooks& hooks,
                       const FoldTuning& tuning) {
  if (!hooks.scan_thread || hooks.wants_payload) return false;
  if (tuning.mode == FoldMode::ScanThread) return true;
  if (tuning.mode != FoldMode::Auto || !fold_uses_scan_thread(tuning)) return false;
  try {
    const std::uint64_t newest = engine.newest_seq();
    const std::uint64_t after = verifier.next_seq() - 1;
    return newest > after && newest - after >= tuning.parallel_after;
  } catch (...) {
    return false;  // the scan itself says what is wrong
  }
}

}  // namespace

void verified_scan(Engine& engine, ChainVerifier& verifier, const ScanHooks& hooks,
                   const std::function<bool(const EventRow&, events::Event*)>& sink) {
  const FoldTuning tuning = fold_tuning();
  if (wants_scan_thread(engine, verifier, hooks, tuning)) {
    std::unique_ptr<ThreadedScan> threaded;
    try {
      threaded = std::make_unique<ThreadedScan>(engine, verifier, hooks, sink, tuning);
    } catch (...) {
      threaded.reset();  // no thread (or memory): the calling thread reads, as below
    }
    if (threaded) {
      threaded->run();
      return;
    }
  }
  const std::uint64_t parallel_after =
      tuning.mode == FoldMode::Parallel || tuning.mode == FoldMode::ScanThread ? 0
      : tuning.mode == FoldMode::Sequential                                    ? UINT64_MAX
                                            : tuning.parallel_after;
  std::uint64_t sequential_rows = 0;
  bool tried = false;  // to start workers
  std::unique_ptr<ParallelScan> parallel;
  events::Event event;  // refilled for every row: its strings keep their buffers
  bool stopped = false;
  bool callback_threw = false;

  auto sequential = [&](const EventRow& row) {
    if (hooks.before && !hooks.before(row)) return false;
    const bool payload = !hooks.wants_payload || hooks.wants_payload(row.session_id);
    const bool ok = verifier.check(row, event, payload);
    return sink(row, ok ? &event : nullptr);
  };

  try {
    engine.scan(verifier.next_seq() - 1, [&](const EventRow& row) {
      try {
        if (!parallel && !tried && sequential_rows >= parallel_after) {
          tried = true;
          try {
            parallel = std::make_unique<ParallelScan>(verifier, hooks, sink, tuning);
          } catch (...) {
            parallel.reset();  // stays sequential (no memory for the batches)
          }
          if (parallel && !parallel->started()) parallel.reset();
        }
        const bool go_on = parallel ? parallel->add(row) : (++sequential_rows, sequential(row));
        stopped = !go_on;
        return go_on;
      } catch (...) {
        callback_threw = true;
        throw;
      }
    });
  } catch (...) {
    // The engine failed after the rows copied so far: they reach the sink first, as they would
    // have one by one (unless checking or sinking one of them throws first).
    if (parallel && !callback_threw && !stopped) parallel->finish();
    throw;
  }
  if (parallel && !stopped) parallel->finish();
}

}  // namespace taskjournal::store
