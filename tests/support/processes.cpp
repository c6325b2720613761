#include "support/processes.hpp"

#include "support/watchdog.hpp"

extern char** environ;

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>

namespace taskjournal::testing {

pid_t fork_child(const std::function<void()>& body) {
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

int wait_child(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

bool exited_ok(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

bool write_all(int fd, const void* data, std::size_t size) {
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

bool read_exact(int fd, void* data, std::size_t size) {
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

std::string dump_sessions(Registry& registry, const std::vector<std::string>& sessions) {
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

std::string lifecycle_violations(const SessionTask& t) {
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

Pipe::Pipe() {
  if (::pipe(fds) != 0) ADD_FAILURE() << "pipe failed: " << std::strerror(errno);
}

Pipe::~Pipe() {
  close_read();
  close_write();
}

void Pipe::close_read() {
  if (fds[0] >= 0) ::close(fds[0]);
  fds[0] = -1;
}

void Pipe::close_write() {
  if (fds[1] >= 0) ::close(fds[1]);
  fds[1] = -1;
}

GatedChild::GatedChild(const std::function<void()>& body) {
  pid_ = fork_child([&] {
    gate_.close_write();
    char byte = 0;
    if (!read_exact(gate_.read_end(), &byte, 1)) {
      std::fflush(nullptr);
      ::_exit(3);
    }
    gate_.close_read();
    body();
  });
  gate_.close_read();
}

GatedChild::~GatedChild() { static_cast<void>(wait()); }

void GatedChild::go() {
  if (gate_.write_end() < 0) return;
  const char byte = 'g';
  if (!write_all(gate_.write_end(), &byte, 1)) ADD_FAILURE() << "cannot start child " << pid_;
  gate_.close_write();
}

int GatedChild::wait() {
  if (!waited_ && pid_ > 0) {
    gate_.close_write();
    status_ = wait_child(pid_);
    waited_ = true;
  }
  return status_;
}

namespace {
std::string file_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

ProgramRun run_program(const std::string& program, std::vector<std::string> args,
                       const std::filesystem::path& scratch) {
  const std::string out = (scratch / "program.out").string();
  const std::string err = (scratch / "program.err").string();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  args.insert(args.begin(), program);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  ProgramRun result;
  const int spawned = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    ADD_FAILURE() << "cannot run " << program << ": " << std::strerror(spawned);
    return result;
  }
  int status = 0;
  within_seconds(120, program, [&] { waitpid(pid, &status, 0); });
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = file_text(out);
  result.err = file_text(err);
  return result;
}

std::vector<std::string> ids_of(const std::vector<SessionTask>& tasks) {
  std::vector<std::string> ids;
  for (const auto& t : tasks) ids.push_back(t.id);
  return ids;
}

std::vector<std::string> ids_of(const std::vector<TaskMessage>& messages) {
  std::vector<std::string> ids;
  for (const auto& m : messages) ids.push_back(m.id);
  return ids;
}

std::vector<std::string> types_of(const std::vector<JournalEntry>& entries) {
  std::vector<std::string> types;
  for (const auto& e : entries) types.push_back(e.type);
  return types;
}

}  // namespace taskjournal::testing
