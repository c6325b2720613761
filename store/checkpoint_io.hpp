// Checkpoints of whole views written and read over a Journal (internal): the registry's
// checkpoints, the anchor checkpoint an archive leaves, the reader's start after an anchor.
#pragma once

#include <cstdint>
#include <string>

#include "projections/views.hpp"
#include "store/journal.hpp"

namespace taskjournal::store {

/// Chunks of about this size (whole tasks each).
inline constexpr std::size_t kCheckpointChunkBytes = 1 << 20;

/// Stores a checkpoint of `views` (the fold up to views.last_seq(), whose event's hash is
/// `hash`) as Journal::write_checkpoint does, keeping the newest `keep` (and the anchor's).
/// With `index`, also where each task went (for an anchor, Engine::archive_prefix).
void write_views_checkpoint(Journal& journal, const projections::Views& views,
                            const std::string& hash, std::int64_t created_at, int keep,
                            std::vector<AnchorTask>* index = nullptr);

/// The views checkpoint `info` holds, decoded in this thread, its counts checked. Throws
/// Error(Corrupt) or Error(Unsupported) for a checkpoint that cannot be used.
/// With `index`, also which chunk holds each task (for an anchor, Engine::archive_prefix).
projections::Views read_views_checkpoint(Journal& journal, const CheckpointInfo& info,
                                         std::vector<AnchorTask>* index = nullptr);

/// The journal's checkpoint of event `seq`, if it has one.
std::optional<CheckpointInfo> checkpoint_at(Journal& journal, std::uint64_t seq);

}  // namespace taskjournal::store
