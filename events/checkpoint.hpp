// The encoding of projection checkpoints (internal to taskjournal).
//
// A checkpoint is the task and message views as they are after one event, cut into chunks of
// whole tasks so that neither writing nor reading one needs it in memory at once. The chunk
// grammar (primitives as in codec.cpp) is:
//
//   chunk   = marker, entry, { entry }        ; marker = u8 1, as in payloads
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
// `events` counts the journal events folded into the task (its creation included). Entries come
// session by session, each session's tasks in creation order.
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
inline constexpr std::uint32_t kCheckpointFormat = 1;

/// One task of a checkpoint with its messages (oldest first).
struct CheckpointEntry {
  SessionTask task;
  std::vector<TaskMessage> messages;
  std::uint64_t events = 0;
};

/// Builds chunks entry by entry. Not thread-safe.
class CheckpointEncoder {
 public:
  CheckpointEncoder();
  ~CheckpointEncoder();
  CheckpointEncoder(const CheckpointEncoder&) = delete;
  CheckpointEncoder& operator=(const CheckpointEncoder&) = delete;

  /// Appends one entry to the current chunk.
  void add(const SessionTask& task, const std::vector<TaskMessage>& messages, std::uint64_t events);
  /// Bytes in the current chunk (0 when it holds no entry).
  std::size_t size() const noexcept;
  /// The current chunk's bytes; the next add() starts a new chunk.
  std::string take();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// The entries of one chunk, in order. Throws Error(Corrupt) for an empty, malformed or truncated
/// chunk, an enum out of range, or a string that is not UTF-8 (JSON fields must hold JSON).
/// Never allocates more than a small multiple of bytes.size().
std::vector<CheckpointEntry> decode_checkpoint_chunk(std::string_view bytes);

}  // namespace taskjournal::events
