#include "store/open.hpp"

#include "store/sqlite/engine.hpp"
#include "taskjournal/error.hpp"
#ifdef TASKJOURNAL_WITH_POSTGRESQL
#include "store/postgres/engine.hpp"
#endif

namespace taskjournal::store {

std::unique_ptr<Engine> open_engine(const EngineConfig& config) {
  switch (config.kind) {
    case EngineKind::Sqlite:
      return sqlite::open(config);
    case EngineKind::Postgresql:
#ifdef TASKJOURNAL_WITH_POSTGRESQL
      return postgres::open(config);
#else
      throw Error(ErrorCode::Unsupported,
                  "this taskjournal was built without PostgreSQL (TASKJOURNAL_POSTGRESQL=OFF): "
                  "rebuild it with libpq-dev installed to open a PostgreSQL journal");
#endif
  }
  throw Error(ErrorCode::InvalidArgument, "invalid argument: unknown storage engine");
}

bool is_postgresql_uri(std::string_view location) noexcept {
  return location.starts_with("postgresql://") || location.starts_with("postgres://");
}

}  // namespace taskjournal::store
