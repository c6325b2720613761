// The encoding of projection checkpoints (internal to taskjournal).
//
// A checkpoint is the task and message views as they are after one event, cut into chunks of
// whole tasks so that neither writing nor reading one needs it in memory at once. The chunk
// grammar (primitives as in codec.cpp) is:
//
//   chunk   = marker, u64 pruned, { entry }   ; format 2; marker = u8 1, as in payloads
//   chunk   = marker, entry, { entry }        ; format 1 (read, no longer written)
//   entry   = task, list<message> messages, u64 events
//   task    = string id, string session_id, string kind, string display_name, json spec, state,
//             opt<string> state_detail, opt<progress> progress,
//             opt<input_request> input_request, opt<timestamp> cancel_requested_at,
//             opt<string> summary, opt<string> result_path, list<artifact> artifacts,
//             opt<error> error, i32 attempt, opt<string> worker_id,
//             opt<timestamp> heartbeat_at, links, wake_policy, timestamp created_at,
//             opt<timestamp> started_at, opt<timestamp> finished_at, timestamp updated_at
//   message = string id, direction, list<part> content, opt<string> in_reply_to,
//             timestamp created_at              ; task_id is the entry's task's id
//
// `events` counts the journal events folded into the task (its creation included). `pruned`
// counts the events of pruned tasks (issue 13), their task_pruned events included: the first
// chunk holds the total, the others 0, so entries' events plus pruned add up to the checkpoint's
// sequence number. A checkpoint has at least one chunk (one without entries when no task is
// left). Entries come session by session, each session's tasks in creation order.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "taskjournal/types.hpp"

namespace taskjournal::events {

/// Checkpoint format written by this build; a checkpoint of any other format is not read.
inline constexpr std::uint32_t kCheckpointFormat = 2;
/// The oldest format this build still reads (format 1 has no pruned count: it predates pruning).
inline constexpr std::uint32_t kOldestCheckpointFormat = 1;

/// One task of a checkpoint with its messages (oldest first).
struct CheckpointEntry {
  SessionTask task;
  std::vector<TaskMessage> messages;
  std::uint64_t events = 0;
};

/// One decoded chunk.
struct CheckpointChunk {
  std::uint64_t pruned_events = 0;
  std::vector<CheckpointEntry> entries;
};

/// Builds chunks entry by entry (format kCheckpointFormat). Not thread-safe.
class CheckpointEncoder {
 public:
  /// `pruned_events` goes into the first chunk.
  explicit CheckpointEncoder(std::uint64_t pruned_events = 0);
  ~CheckpointEncoder();
  CheckpointEncoder(const CheckpointEncoder&) = delete;
  CheckpointEncoder& operator=(const CheckpointEncoder&) = delete;

  /// Appends one entry to the current chunk.
  void add(const SessionTask& task, const std::vector<TaskMessage>& messages, std::uint64_t events);
  /// Bytes in the current chunk (0 when it holds no entry).
  std::size_t size() const noexcept;
  /// The current chunk's bytes; the next add() starts a new chunk.
  std::string take();
  /// The last chunk: the current one, or a chunk without entries if no chunk was taken yet (a
  /// checkpoint has at least one); empty if nothing is left to write.
  std::string finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// The pruned count and entries of one chunk of a checkpoint of `format`, in order. Throws
/// Error(Corrupt) for a malformed or truncated chunk (format 1: also an empty one), an enum out
/// of range, or a string that is not UTF-8 (JSON fields must hold JSON); Error(Unsupported) for
/// a format this build does not read. Never allocates more than a small multiple of bytes.size().
CheckpointChunk decode_checkpoint_chunk(std::string_view bytes,
                                        std::uint32_t format = kCheckpointFormat);

}  // namespace taskjournal::events
