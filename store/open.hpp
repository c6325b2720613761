// The one place that picks the storage engine for a location (internal), as LogCabin's
// Storage/LogFactory.cc does: Registry::open and JournalReader::open both come here, so the two
// can never disagree about what a location means.
#pragma once

#include <memory>
#include <string_view>

#include "store/engine.hpp"

namespace taskjournal::store {

/// Opens the engine config.kind names at config.location. Throws what the engine's open throws;
/// Error(Unsupported) for PostgreSQL in a build without it.
std::unique_ptr<Engine> open_engine(const EngineConfig& config);

/// True for a location that is a PostgreSQL URI (postgresql:// or postgres://), which tools take
/// wherever they take a file.
bool is_postgresql_uri(std::string_view location) noexcept;

}  // namespace taskjournal::store
