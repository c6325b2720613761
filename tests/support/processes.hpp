// Helpers for tests that do the damage for real: temporary directories, child processes, raw
// SQLite access to a journal file, and a comparable dump of what a registry shows.
//
// Children are made with fork() from the (single-threaded) test process and leave with _exit(),
// so no gtest state or static destructor runs twice. Header-only.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "taskjournal/taskjournal.hpp"

namespace taskjournal::testing {

namespace fs = std::filesystem;

/// A fresh directory under the system temp directory, removed with everything in it.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "taskjournal-test") {
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            (prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  fs::path operator/(const std::string& name) const { return path_ / name; }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

/// Runs `body` in a forked child. The child exits 0 when `body` returns, 1 when it throws (the
/// message goes to stderr). Returns the child's pid.
inline pid_t fork_child(const std::function<void()>& body) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork failed: " << std::strerror(errno);
    return pid;
  }
  if (pid == 0) {
    int code = 0;
    try {
      body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child %d: %s\n", static_cast<int>(::getpid()), e.what());
      code = 1;
    } catch (...) {
      std::fprintf(stderr, "child %d: unknown exception\n", static_cast<int>(::getpid()));
      code = 1;
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  return pid;
}

/// Waits for `pid`; returns its wait status.
inline int wait_child(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

/// True if the child exited normally with status 0.
inline bool exited_ok(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

/// Writes all of `data` to `fd` (retrying short writes and EINTR); false on error.
inline bool write_all(int fd, const void* data, std::size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

/// Reads exactly `size` bytes; false on EOF or error.
inline bool read_exact(int fd, void* data, std::size_t size) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t n = ::read(fd, p, size);
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

/// A pipe whose ends close with it.
struct Pipe {
  int fds[2] = {-1, -1};
  Pipe() {
    if (::pipe(fds) != 0) ADD_FAILURE() << "pipe failed: " << std::strerror(errno);
  }
  ~Pipe() {
    close_read();
    close_write();
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  int read_end() const { return fds[0]; }
  int write_end() const { return fds[1]; }
  void close_read() {
    if (fds[0] >= 0) ::close(fds[0]);
    fds[0] = -1;
  }
  void close_write() {
    if (fds[1] >= 0) ::close(fds[1]);
    fds[1] = -1;
  }
};

/// Runs one SQL script on `file` through a connection of its own (as another tool would);
/// returns SQLite's error message, empty on success.
inline std::string raw_exec(const fs::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open(file.c_str(), &db) != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : "cannot open";
    sqlite3_close(db);
    return message;
  }
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string message = rc == SQLITE_OK ? "" : (err ? err : "error");
  sqlite3_free(err);
  sqlite3_close(db);
  return message;
}

/// The first column of the first row of `sql` as an integer (-1 on any error).
inline std::int64_t raw_int(const fs::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  std::int64_t out = -1;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      out = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return out;
}

/// The journal's event table is gap-free: count(*) == max(seq) and min(seq) == 1 (or empty).
inline ::testing::AssertionResult sequence_is_gap_free(const fs::path& file) {
  const auto count = raw_int(file, "SELECT count(*) FROM events");
  const auto max = raw_int(file, "SELECT coalesce(max(seq), 0) FROM events");
  const auto min = raw_int(file, "SELECT coalesce(min(seq), 1) FROM events");
  if (count < 0 || count != max || min != 1) {
    return ::testing::AssertionFailure()
           << file << ": count " << count << ", min seq " << min << ", max seq " << max;
  }
  return ::testing::AssertionSuccess();
}

/// Everything `registry` shows for the given sessions, as text: each task's JSON, its messages'
/// JSON and its audit trail (seq, type, payload), in list order. Equal dumps = equal views.
inline std::string dump_sessions(Registry& registry, const std::vector<std::string>& sessions) {
  std::string out;
  for (const auto& session : sessions) {
    out += "session " + session + "\n";
    for (const auto& task : registry.list(session)) {
      out += "  task " + to_json(task) + "\n";
      for (const auto& m : registry.list_messages(session, task.id)) {
        out += "    message " + to_json(m) + "\n";
      }
      for (const auto& e : registry.history(session, task.id)) {
        out += "    event " + std::to_string(e.seq) + " " + e.type + " " + e.payload + "\n";
      }
    }
  }
  return out;
}

/// The lifecycle invariants every stored task obeys (CONTRACT §2–§3); empty if it does.
inline std::string lifecycle_violations(const SessionTask& t) {
  std::string out;
  auto bad = [&](const std::string& what) { out += t.id + ": " + what + "; "; };
  if (t.attempt < 1) bad("attempt below 1");
  if (is_terminal(t.state) != t.finished_at.has_value()) bad("finished_at iff terminal broken");
  if (t.state != SessionTaskState::Queued && !t.started_at) bad("left queued without started_at");
  if (t.input_request && t.state != SessionTaskState::AwaitingInput) {
    bad("input_request outside awaiting_input");
  }
  if (t.updated_at < t.created_at) bad("updated_at before created_at");
  if (t.started_at && *t.started_at < t.created_at) bad("started_at before created_at");
  if (t.finished_at && *t.finished_at < t.created_at) bad("finished_at before created_at");
  if (t.id.empty() || t.session_id.empty() || t.kind.empty()) bad("empty id, session or kind");
  return out;
}

}  // namespace taskjournal::testing
