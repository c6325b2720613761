#include "snapshot.hpp"

#include <chrono>
#include <stdexcept>

#include "snapshot_json.hpp"

namespace bench {
namespace tj = taskjournal;
namespace {

void check(int rc, sqlite3* db, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    throw std::runtime_error(std::string(what) + ": " + sqlite3_errmsg(db));
  }
}

sqlite3_stmt* prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  check(sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr), db, sql);
  return stmt;
}

void bind_text(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

std::string column(sqlite3_stmt* s, int i) {
  return {reinterpret_cast<const char*>(sqlite3_column_text(s, i)),
          static_cast<std::size_t>(sqlite3_column_bytes(s, i))};
}

tj::Timestamp now() {
  return std::chrono::floor<std::chrono::microseconds>(std::chrono::system_clock::now());
}

}  // namespace

SnapshotRegistry::SnapshotRegistry(const std::filesystem::path& path, tj::Durability durability) {
  check(sqlite3_open(path.c_str(), &db_), db_, "open");
  check(sqlite3_exec(db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr), db_, "wal");
  check(sqlite3_exec(db_,
                     durability == tj::Durability::Full ? "PRAGMA synchronous=FULL"
                                                        : "PRAGMA synchronous=NORMAL",
                     nullptr, nullptr, nullptr),
        db_, "synchronous");
  // The reference's schema, verbatim.
  check(sqlite3_exec(db_, R"sql(
    CREATE TABLE IF NOT EXISTS local_tasks (
        id          TEXT PRIMARY KEY,
        session_id  TEXT NOT NULL,
        kind        TEXT NOT NULL,
        state       TEXT NOT NULL,
        snapshot    TEXT NOT NULL
     );
     CREATE INDEX IF NOT EXISTS idx_local_tasks_session
        ON local_tasks(session_id);
     CREATE TABLE IF NOT EXISTS local_task_messages (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        id          TEXT NOT NULL UNIQUE,
        task_id     TEXT NOT NULL,
        snapshot    TEXT NOT NULL,
        FOREIGN KEY(task_id) REFERENCES local_tasks(id)
     );
     CREATE INDEX IF NOT EXISTS idx_local_task_messages_task
        ON local_task_messages(task_id, seq);)sql",
                     nullptr, nullptr, nullptr),
        db_, "schema");
  load_ = prepare(db_, "SELECT snapshot FROM local_tasks WHERE id = ?1");
  store_ = prepare(db_,
                   "INSERT INTO local_tasks (id, session_id, kind, state, snapshot) "
                   "VALUES (?1, ?2, ?3, ?4, ?5) "
                   "ON CONFLICT(id) DO UPDATE SET "
                   "session_id = excluded.session_id, kind = excluded.kind, "
                   "state = excluded.state, snapshot = excluded.snapshot");
  list_ = prepare(db_, "SELECT snapshot FROM local_tasks WHERE session_id = ?1 ORDER BY rowid ASC");
  insert_message_ =
      prepare(db_, "INSERT INTO local_task_messages (id, task_id, snapshot) VALUES (?1, ?2, ?3)");
  list_messages_limit_ = prepare(
      db_, "SELECT snapshot FROM local_task_messages WHERE task_id = ?1 ORDER BY seq ASC LIMIT ?2");
}

SnapshotRegistry::~SnapshotRegistry() {
  for (auto* s : {load_, store_, list_, insert_message_, list_messages_limit_}) sqlite3_finalize(s);
  sqlite3_close(db_);
}

std::optional<tj::SessionTask> SnapshotRegistry::load_task(std::string_view id) {
  sqlite3_reset(load_);
  bind_text(load_, 1, id);
  std::optional<tj::SessionTask> task;
  if (sqlite3_step(load_) == SQLITE_ROW) task = task_from_json(column(load_, 0));
  sqlite3_reset(load_);
  return task;
}

void SnapshotRegistry::store_task(const tj::SessionTask& task) {
  const std::string snapshot = tj::to_json(task);
  sqlite3_reset(store_);
  bind_text(store_, 1, task.id);
  bind_text(store_, 2, task.session_id);
  bind_text(store_, 3, task.kind);
  bind_text(store_, 4, tj::to_string(task.state));
  bind_text(store_, 5, snapshot);
  check(sqlite3_step(store_), db_, "store task");
  sqlite3_reset(store_);
}

tj::SessionTask SnapshotRegistry::create(const tj::CreateSessionTask& input) {
  if (input.id) {
    if (auto existing = load_task(*input.id)) {
      if (existing->session_id == input.session_id) return *existing;
      throw std::runtime_error("task id already exists under a different session");
    }
  }
  tj::CreateSessionTask with_id = input;
  if (!with_id.id) with_id.id = "task_" + std::to_string(++next_id_);
  tj::SessionTask task = tj::new_session_task(with_id, now());
  store_task(task);
  return task;
}

std::optional<tj::SessionTask> SnapshotRegistry::update(std::string_view session,
                                                        std::string_view task_id,
                                                        const tj::SessionTaskUpdate& update) {
  auto task = load_task(task_id);
  if (!task || task->session_id != session) return std::nullopt;
  tj::apply_task_update(*task, update, now());
  store_task(*task);
  return task;
}

std::optional<tj::SessionTask> SnapshotRegistry::get(std::string_view session,
                                                     std::string_view task_id) {
  auto task = load_task(task_id);
  if (task && task->session_id != session) return std::nullopt;
  return task;
}

std::vector<tj::SessionTask> SnapshotRegistry::list(std::string_view session) {
  std::vector<tj::SessionTask> out;
  sqlite3_reset(list_);
  bind_text(list_, 1, session);
  while (sqlite3_step(list_) == SQLITE_ROW) out.push_back(task_from_json(column(list_, 0)));
  sqlite3_reset(list_);
  return out;
}

tj::TaskMessage SnapshotRegistry::record_message(std::string_view session, std::string_view task_id,
                                                 const tj::NewTaskMessage& message) {
  auto task = get(session, task_id);
  if (!task) throw std::runtime_error("no task");
  tj::TaskMessage record{.id = "tmsg_" + std::to_string(++next_id_),
                         .task_id = std::string(task_id),
                         .direction = message.direction,
                         .content = message.content,
                         .in_reply_to = message.in_reply_to,
                         .created_at = now()};
  const std::string snapshot = tj::to_json(record);
  sqlite3_reset(insert_message_);
  bind_text(insert_message_, 1, record.id);
  bind_text(insert_message_, 2, task_id);
  bind_text(insert_message_, 3, snapshot);
  check(sqlite3_step(insert_message_), db_, "insert message");
  sqlite3_reset(insert_message_);
  if (message.direction == tj::TaskMessageDirection::Inbound && message.in_reply_to &&
      task->input_request && task->input_request->id == *message.in_reply_to) {
    tj::apply_task_update(*task, {.state = tj::SessionTaskState::Running}, now());
    store_task(*task);
  }
  return record;
}

std::vector<tj::TaskMessage> SnapshotRegistry::list_messages(std::string_view session,
                                                             std::string_view task_id,
                                                             std::optional<std::uint32_t> limit) {
  if (!get(session, task_id)) return {};
  std::vector<tj::TaskMessage> out;
  sqlite3_reset(list_messages_limit_);
  bind_text(list_messages_limit_, 1, task_id);
  sqlite3_bind_int64(list_messages_limit_, 2, limit ? *limit : -1);
  while (sqlite3_step(list_messages_limit_) == SQLITE_ROW) {
    out.push_back(message_from_json(column(list_messages_limit_, 0)));
  }
  sqlite3_reset(list_messages_limit_);
  return out;
}

}  // namespace bench
