// The design taskjournal replaces, re-created for comparison: everruns' SQLite backend
// (../shared/reference/everruns_local_task_registry.rs.txt) with its exact SQL — one JSON snapshot
// row per task, upserted on every change and parsed on every read; message rows with a seq column.
// JSON is RapidJSON. Lifecycle rules come from taskjournal's public apply_task_update, as the
// reference calls everruns' apply_task_update.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sqlite3.h>

#include "taskjournal/taskjournal.hpp"

namespace bench {

class SnapshotRegistry {
 public:
  SnapshotRegistry(const std::filesystem::path& path, taskjournal::Durability durability);
  ~SnapshotRegistry();
  SnapshotRegistry(const SnapshotRegistry&) = delete;
  SnapshotRegistry& operator=(const SnapshotRegistry&) = delete;

  taskjournal::SessionTask create(const taskjournal::CreateSessionTask& input);
  std::optional<taskjournal::SessionTask> update(std::string_view session, std::string_view task,
                                                 const taskjournal::SessionTaskUpdate& update);
  std::optional<taskjournal::SessionTask> get(std::string_view session, std::string_view task);
  std::vector<taskjournal::SessionTask> list(std::string_view session);
  taskjournal::TaskMessage record_message(std::string_view session, std::string_view task,
                                          const taskjournal::NewTaskMessage& message);
  std::vector<taskjournal::TaskMessage> list_messages(std::string_view session,
                                                      std::string_view task,
                                                      std::optional<std::uint32_t> limit);

 private:
  std::optional<taskjournal::SessionTask> load_task(std::string_view id);
  void store_task(const taskjournal::SessionTask& task);
  sqlite3* db_ = nullptr;
  sqlite3_stmt* load_ = nullptr;
  sqlite3_stmt* store_ = nullptr;
  sqlite3_stmt* list_ = nullptr;
  sqlite3_stmt* insert_message_ = nullptr;
  sqlite3_stmt* list_messages_limit_ = nullptr;
  std::uint64_t next_id_ = 0;
};

}  // namespace bench
