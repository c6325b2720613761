#include "pg_snapshot.hpp"

#include <chrono>
#include <stdexcept>

#include "snapshot_json.hpp"

namespace bench {
namespace tj = taskjournal;
namespace {

tj::Timestamp now() {
  return std::chrono::floor<std::chrono::microseconds>(std::chrono::system_clock::now());
}

pg::Param text(std::string_view s) { return pg::Param{s}; }

}  // namespace

PgSnapshotRegistry::PgSnapshotRegistry(const std::string& conninfo, bool durable)
    : conn_(conninfo) {
  conn_.exec(std::string("SET synchronous_commit = ") + (durable ? "on" : "off"));
  // The reference's schema (snapshot.cpp), in PostgreSQL's types.
  conn_.exec(R"sql(
    CREATE TABLE IF NOT EXISTS local_tasks (
        id          text PRIMARY KEY,
        session_id  text NOT NULL,
        kind        text NOT NULL,
        state       text NOT NULL,
        snapshot    text NOT NULL);
    CREATE INDEX IF NOT EXISTS idx_local_tasks_session ON local_tasks (session_id))sql");
  conn_.prepare("snap_begin", "BEGIN", 0);
  conn_.prepare("snap_commit", "COMMIT", 0);
  conn_.prepare("snap_load", "SELECT snapshot FROM local_tasks WHERE id = $1", 1);
  conn_.prepare("snap_lock", "SELECT snapshot FROM local_tasks WHERE id = $1 FOR UPDATE", 1);
  conn_.prepare("snap_store",
                "INSERT INTO local_tasks (id, session_id, kind, state, snapshot) "
                "VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT (id) DO UPDATE SET "
                "session_id = excluded.session_id, kind = excluded.kind, "
                "state = excluded.state, snapshot = excluded.snapshot",
                5);
}

std::vector<pg::Param> PgSnapshotRegistry::store_params(const tj::SessionTask& task,
                                                        std::string& json,
                                                        std::string& state) const {
  json = tj::to_json(task);
  state = tj::to_string(task.state);
  return {text(task.id), text(task.session_id), text(task.kind), text(state), text(json)};
}

tj::SessionTask PgSnapshotRegistry::create(const tj::CreateSessionTask& input) {
  if (!input.id) throw std::invalid_argument("PgSnapshotRegistry::create needs an id");
  const std::string id = *input.id;
  const pg::Result found = conn_.run("snap_load", {text(id)});
  if (found.rows() == 1) {
    tj::SessionTask existing = task_from_json(found.get(0, 0));
    if (existing.session_id == input.session_id) return existing;
    throw std::runtime_error("task id already exists under a different session");
  }
  const tj::SessionTask task = tj::new_session_task(input, now());
  std::string json, state;
  conn_.run("snap_store", store_params(task, json, state));
  return task;
}

std::optional<tj::SessionTask> PgSnapshotRegistry::update(std::string_view session,
                                                          std::string_view task_id,
                                                          const tj::SessionTaskUpdate& update) {
  const std::string id(task_id);
  auto locked = conn_.pipeline({{"snap_begin", {}}, {"snap_lock", {text(id)}}});
  std::optional<tj::SessionTask> task;
  if (locked[1].rows() == 1) task = task_from_json(locked[1].get(0, 0));
  if (!task || task->session_id != session) {
    conn_.exec("ROLLBACK");
    return std::nullopt;
  }
  tj::apply_task_update(*task, update, now());
  std::string json, state;
  conn_.pipeline({{"snap_store", store_params(*task, json, state)}, {"snap_commit", {}}});
  return task;
}

std::optional<tj::SessionTask> PgSnapshotRegistry::get(std::string_view session,
                                                       std::string_view task_id) {
  const pg::Result r = conn_.run("snap_load", {text(task_id)});
  if (r.rows() != 1) return std::nullopt;
  tj::SessionTask task = task_from_json(r.get(0, 0));
  if (task.session_id != session) return std::nullopt;
  return task;
}

void PgSnapshotRegistry::store_all(const std::vector<tj::SessionTask>& tasks) {
  conn_.exec("BEGIN");
  constexpr std::size_t kPerPipeline = 500;
  for (std::size_t from = 0; from < tasks.size(); from += kPerPipeline) {
    const std::size_t to = std::min(tasks.size(), from + kPerPipeline);
    std::vector<std::string> json(to - from), state(to - from);
    std::vector<pg::Statement> statements;
    for (std::size_t i = from; i < to; ++i) {
      statements.push_back({"snap_store", store_params(tasks[i], json[i - from], state[i - from])});
    }
    conn_.pipeline(statements);
  }
  conn_.exec("COMMIT");
}

}  // namespace bench
