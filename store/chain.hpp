// The hash chain and the checks of one stored event row (internal): the one verifier that every
// engine, the registry and the reader use.
//
//   hash(n) = SHA-256( hash(n-1) | u64le seq | u32le len, type | u32le version | i64le recorded_at
//                      | u32le len, session_id | u32le len, task_id | u32le len, payload )
//   hash(0) = 32 zero bytes
//
// A verifier follows the sequence and the chain row by row and decodes each payload. What it does
// with a problem is the caller's choice, as with leveldb's log::Reader::Reporter: the registry
// passes a reporter that throws at the first problem, JournalReader::verify one that collects
// them and lets the verifier go on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "events/event.hpp"
#include "taskjournal/error.hpp"

namespace taskjournal::store {

inline constexpr std::size_t kHashSize = 32;

/// hash(0): 32 zero bytes.
std::string genesis_hash();

/// One stored event row as an engine hands it over, unchecked. The views point into the
/// engine's buffers and stay valid only as long as the engine says.
struct EventRow {
  std::uint64_t seq = 0;
  std::string_view type;
  std::int64_t version = 0;
  std::int64_t recorded_at = 0;
  std::string_view session_id;
  std::string_view task_id;
  std::string_view payload;
  std::string_view hash;
};

/// SHA-256 of rows and chunks. Not thread-safe: one per thread or connection. Results are valid
/// until the next call on the same hasher (no allocation per event).
class ChainHasher {
 public:
  ChainHasher();
  ~ChainHasher();
  ChainHasher(const ChainHasher&) = delete;
  ChainHasher& operator=(const ChainHasher&) = delete;

  /// hash(n) of `row` when `prev` is hash(n-1); row.hash is not read. Throws Error(Storage) if
  /// OpenSSL fails.
  const std::string& hash(std::string_view prev, const EventRow& row);
  /// The same over the fields themselves (the append path, before a row exists).
  const std::string& hash(std::string_view prev, std::uint64_t seq, std::string_view type,
                          std::uint32_t version, std::int64_t recorded_at,
                          std::string_view session_id, std::string_view task_id,
                          std::string_view payload);
  /// Plain SHA-256 of `data` where it is (checkpoint chunks: no copy).
  const std::string& digest(std::string_view data);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// What a verifier does with each problem it finds. `what` starts with "event <seq>: ".
class ChainReporter {
 public:
  virtual ~ChainReporter() = default;
  /// Called for each problem in journal order; may throw to stop the verifier.
  virtual void problem(std::uint64_t seq, ErrorCode code, const std::string& what) = 0;
};

/// A reporter that throws Error(code, "<prefix>: <what>") at the first problem.
class ThrowingReporter final : public ChainReporter {
 public:
  explicit ThrowingReporter(std::string prefix) : prefix_(std::move(prefix)) {}
  void problem(std::uint64_t seq, ErrorCode code, const std::string& what) override;

 private:
  std::string prefix_;
};

/// Follows the sequence and the hash chain of the rows after (after_seq, prev_hash), and checks
/// each row's version, type and payload.
class ChainVerifier {
 public:
  /// Uses `hasher` (which must outlive it) for the hashes.
  ChainVerifier(std::uint64_t after_seq, std::string prev_hash, ChainReporter& reporter,
                ChainHasher& hasher);

  /// Checks `row`, the next row read, reporting each problem in this order: a sequence gap or a
  /// row out of sequence, a hash that does not chain to its predecessor, an unknown version or
  /// type, a payload that does not decode. After a broken link it goes on from the row's stored
  /// hash, so one altered row is reported once. Returns true, with `event` holding the decoded
  /// row, when the row decoded (`event`'s strings keep their buffers between calls: refilling
  /// one Event per row costs no allocation for ids of the same length). With `payload` false the
  /// payload is not decoded (event.payload is then unspecified): for rows the caller only counts
  /// and chains, such as other sessions' events in a registry that does not hold them.
  bool check(const EventRow& row, events::Event& event, bool payload = true);

  /// Checks `row` against `prev` alone, the stored hash of the row before it (a per-task scan,
  /// which finds rows through an index): the hash, version, type and payload, as check() does.
  /// An empty `prev` (the row before is missing) is reported as a sequence gap.
  bool check_linked(const EventRow& row, std::string_view prev, events::Event& event);

  /// Continues as if the row before the next one carried `next_seq - 1` and had the stored hash
  /// `prev_hash` (a row checked elsewhere: store/parallel_chain.hpp).
  void resume(std::uint64_t next_seq, std::string_view prev_hash) {
    next_ = next_seq;
    prev_.assign(prev_hash);
  }

  /// The sequence number the next row must carry.
  std::uint64_t next_seq() const noexcept { return next_; }
  /// The hash of the last row checked (the stored one after a broken link).
  const std::string& last_hash() const noexcept { return prev_; }

  /// The reporter it was given.
  ChainReporter& reporter() noexcept { return reporter_; }

  /// The hasher, for other checks of the same rows.
  ChainHasher& hasher() noexcept { return hasher_; }

 private:
  bool decode(const EventRow& row, events::Event& event, bool payload = true);
  void report(std::uint64_t seq, ErrorCode code, const std::string& what);

  ChainReporter& reporter_;
  ChainHasher& hasher_;
  std::uint64_t next_;
  std::string prev_;
};

}  // namespace taskjournal::store
