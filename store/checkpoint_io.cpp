#include "store/checkpoint_io.hpp"

#include <algorithm>

#include "events/checkpoint.hpp"

namespace taskjournal::store {

void write_views_checkpoint(Journal& journal, const projections::Views& views,
                            const std::string& hash, std::int64_t created_at, int keep,
                            std::vector<AnchorTask>* index) {
  journal.write_checkpoint(
      {.seq = views.last_seq(),
       .hash = hash,
       .tasks = views.task_count(),
       .messages = views.message_count()},
      created_at,
      [&](const Journal::ChunkSink& sink) {
        events::CheckpointEncoder encoder(views.pruned_events());
        std::int64_t chunk = 0;
        if (index) index->clear();  // produce runs again if the write is retried
        views.for_each_task([&](const SessionTask& task, const std::vector<TaskMessage>& messages,
                                std::uint64_t events) {
          encoder.add(task, messages, events);
          if (index) index->push_back({task.id, task.session_id, chunk});
          if (encoder.size() >= kCheckpointChunkBytes) {
            sink(encoder.take());
            ++chunk;
          }
        });
        if (std::string last = encoder.finish(); !last.empty()) sink(last);
      },
      keep);
}

projections::Views read_views_checkpoint(Journal& journal, const CheckpointInfo& info,
                                         std::vector<AnchorTask>* index) {
  if (index) index->clear();
  std::int64_t n = 0;
  projections::Views restored;
  restored.reserve(std::min(info.tasks, info.seq), std::min(info.messages, info.seq));
  std::uint64_t pruned = 0;
  const auto format = static_cast<std::uint32_t>(info.format);
  journal.read_checkpoint(info, [&](std::string_view chunk) {
    events::CheckpointChunk decoded = events::decode_checkpoint_chunk(chunk, format);
    pruned += decoded.pruned_events;
    for (auto& entry : decoded.entries) {
      if (index) index->push_back({entry.task.id, entry.task.session_id, n});
      restored.restore_task(std::move(entry));
    }
    ++n;
  });
  restored.finish_restore(info.seq, pruned);
  return restored;
}

std::optional<CheckpointInfo> checkpoint_at(Journal& journal, std::uint64_t seq) {
  for (auto& info : journal.checkpoints()) {
    if (info.seq == seq) return info;
  }
  return std::nullopt;
}

}  // namespace taskjournal::store
