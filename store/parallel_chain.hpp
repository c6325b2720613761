// The verified scan of a whole journal (internal): the rows of Engine::scan checked as one
// ChainVerifier checks them, with the hashing and decoding of large scans on worker threads.
//
// A verifier's check of a row depends only on the row and on the row before it as stored: its
// sequence number and its stored hash (after a good row the computed hash equals the stored one,
// after a broken link the verifier goes on from the stored hash). So rows can be checked out of
// order once they are copied out of the engine's buffers: the calling thread reads the rows and
// copies them into batches, workers hash and decode each batch, and the calling thread takes the
// batches back in order, reports each row's problems in order and hands the row to the sink.
// What the sink and the reporter see is what a sequential verifier gives them, call for call.
//
// A scan starts sequential and goes parallel after its first rows (a catch-up of a few events
// never starts a thread); if no thread can be started it stays sequential. A scan whose caller
// allows it (ScanHooks::scan_thread) and that is expected to be large (Engine::newest_seq) may
// instead read the engine on a scan thread of its own from the first row, so that reading,
// checking and folding run on different cores: the calling thread then only folds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

#include "events/event.hpp"
#include "store/chain.hpp"

namespace taskjournal::store {

class Engine;

/// How verified scans run: an internal knob (tests force one path, the benchmark compares them).
enum class FoldMode {
  Auto,        ///< sequential for the first `parallel_after` rows, then parallel; a scan that
               ///< allows it (ScanHooks::scan_thread) and is expected to hold at least
               ///< `parallel_after` rows reads them on a scan thread when `scan_thread` says so
  Sequential,  ///< always on the calling thread
  Parallel,    ///< the caller reads, workers check, from the first row (tests: small batches)
  ScanThread,  ///< a scan thread reads, workers check, from the first row, where the scan
               ///< allows it (else Parallel)
};

struct FoldTuning {
  FoldMode mode = FoldMode::Auto;
  std::uint64_t parallel_after = 4096;  ///< Auto: rows checked on the calling thread first
  /// Checking workers; 0: per cores (fold_workers). With a scan thread, 0 workers is a choice
  /// (`scan_thread_workers`): the scan thread then checks the rows itself.
  unsigned workers = 0;
  std::size_t batch_rows = 512;  ///< rows per batch handed to a worker
  /// Auto: whether a large scan that allows it reads on a scan thread; by default when the
  /// machine has more than 2 cores (on 2 cores a third busy thread only takes turns).
  enum class Scan { PerCores, Never, Always } scan_thread = Scan::PerCores;
  /// Workers beside a scan thread (ScanThread, or Auto with a scan thread): -1 per cores
  /// (cores - 2, at least 0, at most 8), else that many (0: the scan thread checks too).
  int scan_thread_workers = -1;
};

/// The process-wide tuning every later scan uses (read once per scan; thread-safe).
FoldTuning fold_tuning();
void set_fold_tuning(const FoldTuning& tuning);

/// The worker count a parallel scan (the caller reading) starts with under `tuning`.
unsigned fold_workers(const FoldTuning& tuning);

/// Whether Auto reads a large scan on a scan thread under `tuning`.
bool fold_uses_scan_thread(const FoldTuning& tuning);

/// The worker count beside a scan thread under `tuning` (0: the scan thread checks the rows).
unsigned scan_thread_workers(const FoldTuning& tuning);

/// What a verified scan does around each row.
struct ScanHooks {
  /// Called on the calling thread for each row in order, just before its problems are reported:
  /// false ends the scan there (the row is neither reported nor handed to the sink).
  std::function<bool(const EventRow&)> before;
  /// Whether the row's payload is decoded (ChainVerifier::check's `payload`). Asked on the
  /// calling thread as each row is read, which may be before earlier rows reached the sink: it
  /// must not depend on what the sink did.
  std::function<bool(std::string_view session_id)> wants_payload;
  /// Set by callers whose scan may read the engine on a thread of its own (the pipeline scan
  /// thread -> checking workers -> in-order sink on the calling thread): after the first row,
  /// neither `before` nor the sink touches the engine (`before` of the first row may: the scan
  /// thread waits inside the engine's scan until that row reached the sink). Never used with
  /// `wants_payload` (it reads state the sink changes, so it stays on the reading thread).
  bool scan_thread = false;
};

/// Reads every row after verifier.next_seq() - 1 with engine.scan and checks it as
/// verifier.check() would, reporting each problem to the verifier's reporter in order; then calls
/// `sink(row, event)` with the decoded event (nullptr when check() returned false), which may
/// move from it; the scan ends when the sink returns false. Afterwards the verifier stands after
/// the last row handed to the sink, as if it had checked every row itself. What the engine, the
/// reporter, the sink or the hooks throw propagates (the workers are stopped first).
void verified_scan(Engine& engine, ChainVerifier& verifier, const ScanHooks& hooks,
                   const std::function<bool(const EventRow&, events::Event*)>& sink);

}  // namespace taskjournal::store
