// Helpers for tests that do the damage for real: child processes, pipes, and a comparable dump
// of what a registry shows. Also brings in TempDir (temp_dir.hpp) and the raw SQLite helpers
// (raw_journal.hpp) such tests use with them.
//
// Children are made with fork() from the (single-threaded) test process and leave with _exit(),
// so no gtest state or static destructor runs twice.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/raw_journal.hpp"
#include "support/temp_dir.hpp"
#include "taskjournal/taskjournal.hpp"

namespace taskjournal::testing {

/// How a program run by run_program ended and what it printed.
struct ProgramRun {
  int status = -1;  ///< its exit status, or 128 + the signal that killed it
  std::string out, err;
};
/// Runs `program` with `args` (no shell), its stdout and stderr into files in `scratch`, and
/// waits for it (at most 120 s, then the test program aborts: within_seconds). A program that
/// cannot be started is a test failure (status -1).
ProgramRun run_program(const std::string& program, std::vector<std::string> args,
                       const std::filesystem::path& scratch);

/// The ids of tasks, the types of history entries: what tests compare lists by.
std::vector<std::string> ids_of(const std::vector<SessionTask>& tasks);
std::vector<std::string> ids_of(const std::vector<TaskMessage>& messages);
std::vector<std::string> types_of(const std::vector<JournalEntry>& entries);

/// Runs `body` in a forked child. The child exits 0 when `body` returns, 1 when it throws (the
/// message goes to stderr). Returns the child's pid (negative, and a test failure, if fork fails).
pid_t fork_child(const std::function<void()>& body);

/// Waits for `pid`; returns its wait status.
int wait_child(pid_t pid);

/// True if the child exited normally with status 0.
bool exited_ok(int status);

/// Writes all of `data` to `fd` (retrying short writes and EINTR); false on error.
bool write_all(int fd, const void* data, std::size_t size);

/// Reads exactly `size` bytes; false on EOF or error.
bool read_exact(int fd, void* data, std::size_t size);

/// A pipe whose ends close with it (a test failure if it cannot be made).
struct Pipe {
  int fds[2] = {-1, -1};
  Pipe();
  ~Pipe();
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  int read_end() const { return fds[0]; }
  int write_end() const { return fds[1]; }
  void close_read();
  void close_write();
};

/// A forked child that runs `body` only once the parent calls go(). Fork it while the test
/// process is still single-threaded and holds no open journal (SQLite keeps per-process lock state
/// that a child must not inherit), then open the parent's registries and start their threads
/// (a watching registry), then let the child run. `body` must take everything it needs by value
/// or from memory copied at the fork. The child exits 0 when `body` returns, 1 when it throws,
/// 3 without running `body` when the gate closes without go(). The destructor closes the gate and
/// waits for the child if wait() was not called.
class GatedChild {
 public:
  explicit GatedChild(const std::function<void()>& body);
  ~GatedChild();
  GatedChild(const GatedChild&) = delete;
  GatedChild& operator=(const GatedChild&) = delete;

  /// Lets the child run `body` (once; later calls do nothing).
  void go();
  /// Waits for the child to exit and returns its wait status (the same status on later calls).
  /// Without go() first, the child exits 3.
  int wait();
  pid_t pid() const noexcept { return pid_; }

 private:
  Pipe gate_;
  pid_t pid_ = -1;
  bool waited_ = false;
  int status_ = -1;  // no child (fork failed): not exited_ok()
};

/// Everything `registry` shows for the given sessions, as text: each task's JSON, its messages'
/// JSON and its audit trail (seq, type, payload), in list order. Equal dumps = equal views.
std::string dump_sessions(Registry& registry, const std::vector<std::string>& sessions);

/// The lifecycle invariants every stored task obeys (CONTRACT §2–§3); empty if it does.
std::string lifecycle_violations(const SessionTask& t);

}  // namespace taskjournal::testing
