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
// never starts a thread); if no thread can be started it stays sequential.
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
  Auto,        ///< sequential for the first `parallel_after` rows, then parallel
  Sequential,  ///< always on the calling thread
  Parallel,    ///< parallel from the first row (tests: small journals, small batches)
};

struct FoldTuning {
  FoldMode mode = FoldMode::Auto;
  std::uint64_t parallel_after = 4096;  ///< Auto: rows checked on the calling thread first
  unsigned workers = 0;          ///< 0: hardware_concurrency() - 1 (the caller works too), 1 to 8
  std::size_t batch_rows = 512;  ///< rows per batch handed to a worker
};

/// The process-wide tuning every later scan uses (read once per scan; thread-safe).
FoldTuning fold_tuning();
void set_fold_tuning(const FoldTuning& tuning);

/// The worker count a parallel scan starts with under `tuning`.
unsigned fold_workers(const FoldTuning& tuning);

/// What a verified scan does around each row.
struct ScanHooks {
  /// Called on the calling thread for each row in order, just before its problems are reported:
  /// false ends the scan there (the row is neither reported nor handed to the sink).
  std::function<bool(const EventRow&)> before;
  /// Whether the row's payload is decoded (ChainVerifier::check's `payload`). Asked on the
  /// calling thread as each row is read, which may be before earlier rows reached the sink: it
  /// must not depend on what the sink did.
  std::function<bool(std::string_view session_id)> wants_payload;
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
