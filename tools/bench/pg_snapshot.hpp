// The snapshot design (everruns' local task registry, see snapshot.hpp) on PostgreSQL: one JSON
// snapshot row per task. An update locks the task's row (SELECT ... FOR UPDATE), parses its JSON,
// applies the update with taskjournal's public apply_task_update and writes the JSON back with
// everruns' upsert; a get reads and parses the row. Each round trip is as short as libpq allows:
// an update is two (BEGIN + SELECT FOR UPDATE, then upsert + COMMIT, each pair pipelined), a get
// one. Tasks only (the PostgreSQL benchmark measures no messages).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pg_client.hpp"
#include "taskjournal/taskjournal.hpp"

namespace bench {

class PgSnapshotRegistry {
 public:
  /// Connects with `conninfo` (whose search_path names the schema) and creates the table if
  /// missing. `durable`: synchronous_commit on, else off.
  PgSnapshotRegistry(const std::string& conninfo, bool durable);

  taskjournal::SessionTask create(const taskjournal::CreateSessionTask& input);
  std::optional<taskjournal::SessionTask> update(std::string_view session, std::string_view task,
                                                 const taskjournal::SessionTaskUpdate& update);
  std::optional<taskjournal::SessionTask> get(std::string_view session, std::string_view task);
  /// Stores many tasks in one transaction (to populate a registry fast).
  void store_all(const std::vector<taskjournal::SessionTask>& tasks);

 private:
  std::vector<pg::Param> store_params(const taskjournal::SessionTask& task, std::string& json,
                                      std::string& state) const;
  pg::Conn conn_;
};

}  // namespace bench
