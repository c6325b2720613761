// The one place that picks the storage engine for a location (internal), as LogCabin's
// Storage/LogFactory.cc does: Registry::open and JournalReader::open both come here, so the two
// can never disagree about what a location means.
#pragma once

#include <memory>

#include "store/engine.hpp"

namespace taskjournal::store {

/// Opens the engine for `config.location`: a SQLite file path (or ":memory:"), the only engine
/// built today. Throws what the engine's open throws.
std::unique_ptr<Engine> open_engine(const EngineConfig& config);

}  // namespace taskjournal::store
