#include "store/open.hpp"

#include "store/sqlite/engine.hpp"

namespace taskjournal::store {

std::unique_ptr<Engine> open_engine(const EngineConfig& config) { return sqlite::open(config); }

}  // namespace taskjournal::store
