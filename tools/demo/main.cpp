// taskjournal-demo: a guided tour of the session task registry on a journal file.
//
//   taskjournal-demo FILE            drives three tasks of session "sess_demo" through their
//                                    lifecycles on a new journal FILE, printing each step and each
//                                    wake-up, then re-runs itself with --inspect in a new process.
//                                    An existing FILE is replaced only if it is a journal of an
//                                    earlier run (every event of session "sess_demo"); any other
//                                    FILE is left alone and the demo exits with 1.
//                                    Then the host's side: a worker process that is killed while
//                                    its task runs, the restarted host's orphan reaper failing
//                                    that task, and a second process waiting for a task this one
//                                    finishes (and watching its events).
//   taskjournal-demo FILE --inspect  reopens FILE read-only and prints what the journal holds
//   (--worker and --wait ID are the demo's own child processes.)
//
// Uses the public API only. Errors go to stderr; exit code 0 = ok, 1 = failure, 2 = usage.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <variant>
#include <vector>

#include "taskjournal/taskjournal.hpp"

extern char** environ;

namespace {

namespace tj = taskjournal;

constexpr std::string_view kSession = "sess_demo";

constexpr std::string_view kUsage =
    "usage: taskjournal-demo FILE [--inspect]\n"
    "  FILE            drive a demo session on a new journal FILE (replaces the journal of an\n"
    "                  earlier demo run; refuses any other existing FILE)\n"
    "  FILE --inspect  print the tasks, history and messages stored in FILE\n";

tj::Timestamp now() {
  return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

// "Line one\nline two" → "Line one\n<indent>line two".
std::string indent_continuation(std::string_view text, std::string_view indent) {
  std::string out;
  for (char c : text) {
    out += c;
    if (c == '\n') out += indent;
  }
  return out;
}

// "running 2/3 steps (running the tests)" and the like: the state and what the task says about it.
std::string describe(const tj::SessionTask& task) {
  std::ostringstream out;
  out << tj::to_string(task.state);
  if (task.progress && task.progress->current && task.progress->total) {
    out << " " << *task.progress->current << "/" << *task.progress->total;
    if (task.progress->unit) out << " " << *task.progress->unit;
  }
  if (task.state_detail) out << " (" << *task.state_detail << ")";
  if (task.input_request) out << ", asks \"" << task.input_request->prompt << "\"";
  if (task.cancel_requested_at) {
    out << ", cancel requested at " << tj::format_timestamp(*task.cancel_requested_at);
  }
  if (task.error) out << ", error " << task.error->kind << ": " << task.error->message;
  if (task.attempt != 1) out << ", attempt " << task.attempt;
  return out.str();
}

std::string message_text(const tj::TaskMessage& message) {
  std::string text = tj::task_message_text(message.content);
  for (const auto& part : message.content) {
    if (const auto* data = std::get_if<tj::DataPart>(&part)) {
      // Appended piece by piece: `(… ? "" : " ") + std::string(…)` makes g++ 12 -O3 report a
      // false -Wrestrict (issue #10).
      if (!text.empty()) text += ' ';
      text += "+ data ";
      text += data->data;
    }
  }
  return text;
}

void step(std::string_view title) { std::cout << "\n== " << title << "\n"; }

void show(std::string_view label, const tj::SessionTask& task) {
  std::cout << "   " << label << ": " << describe(task) << std::endl;  // before a child's lines
}

// The task, or Error(NotFound) naming `id`.
tj::SessionTask must(std::optional<tj::SessionTask> task, std::string_view id) {
  if (!task) throw tj::Error(tj::ErrorCode::NotFound, "task " + std::string(id) + " not found");
  return *std::move(task);
}

// Why `file` must not be replaced by a new demo journal, or nullopt if it may: it does not exist
// (nor its -wal and -shm files, which SQLite would apply to a new file), or it is a taskjournal
// journal whose events all belong to the demo session, i.e. an earlier run's.
std::optional<std::string> why_not_replaceable(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::symlink_status(file, ec))) {
    for (const char* suffix : {"-wal", "-shm"}) {
      std::filesystem::path side = file;
      side += suffix;
      if (std::filesystem::exists(std::filesystem::symlink_status(side, ec))) {
        return side.string() + " exists without " + file.string();
      }
    }
    return std::nullopt;
  }
  try {
    tj::JournalReader reader = tj::JournalReader::open(file);
    std::optional<std::string> foreign;
    reader.read(0, [&](const tj::JournalEvent& event) {
      if (event.session_id == kSession) return true;
      foreign = event.session_id;
      return false;
    });
    if (foreign) return "it is a journal with tasks of session \"" + *foreign + "\"";
    return std::nullopt;
  } catch (const tj::Error& e) {
    return std::string("it is not a readable taskjournal journal (") + e.what() + ")";
  }
}

// Removes the journal `file` and its -wal and -shm files, after checking that they are an earlier
// demo run's. Throws std::runtime_error, saying what to do, for anything else.
void remove_journal(const std::filesystem::path& file) {
  if (auto reason = why_not_replaceable(file)) {
    throw std::runtime_error("will not overwrite " + file.string() + ": " + *reason +
                             ". The demo replaces only a journal of an earlier demo run; give a "
                             "FILE that does not exist, or move or remove this one yourself.");
  }
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::path path = file;
    path += suffix;
    std::error_code ec;
    std::filesystem::remove(path, ec);
    if (ec) {
      throw std::runtime_error("cannot remove " + path.string() + ": " + ec.message());
    }
  }
}

// The lifecycle: task A (a subagent) asks a question and succeeds, task B (an external agent)
// times out, task C (a background tool) is canceled on request.
void run_demo(const std::filesystem::path& file) {
  remove_journal(file);
  std::cout << "taskjournal " << tj::kVersion << " demo: journal " << file.string() << ", session "
            << kSession << "\n"
            << "Lines starting with \"wake:\" are the wake-ups the registry sends the session.\n";

  tj::Registry registry = tj::Registry::open(file);
  tj::Subscription wake_subscription = registry.on_wake([](const tj::WakeNotice& notice) {
    std::cout << "   wake: " << indent_continuation(notice.text, "         ") << "\n";
  });
  const std::string session(kSession);
  auto create = [&](tj::CreateSessionTask input) {
    input.session_id = session;
    return registry.create(input).id;
  };
  // update() returns nullopt only for a task missing from the session: a bug in this demo.
  auto update = [&](const std::string& id, const tj::SessionTaskUpdate& change) {
    return must(registry.update(session, id, change), id);
  };
  auto progress = [](std::uint64_t done) {
    return tj::TaskProgress{.current = done, .total = 3, .unit = "steps", .label = "refactor"};
  };

  step("A: a subagent task is queued (wake policy on_activity: all transitions wake the session)");
  const std::string a = create({
      .kind = "subagent",
      .display_name = "Refactor the parser",
      .spec = R"({"prompt":"Split parser.cpp","model":"small"})",
      .wake_policy = tj::TaskWakePolicy::OnActivity,
  });
  std::cout << "   A is " << a << " (the registry generated the id)\n";
  show("A", must(registry.get(session, a), a));

  step("A: a worker picks it up and reports progress 1/3 with a heartbeat");
  show("A", update(a, {.state = tj::SessionTaskState::Running,
                       .state_detail = "reading the code",
                       .progress = progress(1),
                       .worker_id = "worker-1",
                       .heartbeat_at = now()}));

  step("A: progress 2/3 and a heartbeat; an outbound progress message with a data part");
  show("A", update(a, {.state_detail = "splitting the lexer out",
                       .progress = progress(2),
                       .heartbeat_at = now()}));
  tj::NewTaskMessage progress_message = tj::NewTaskMessage::outbound_text("Lexer extracted");
  progress_message.content.emplace_back(tj::DataPart{R"({"files_changed":2,"tests":"pending"})"});
  const tj::TaskMessage sent = registry.record_message(session, a, progress_message);
  std::cout << "   A sent " << sent.id << ": " << message_text(sent) << "\n";
  update(a, {.heartbeat_at = now()});
  std::cout << "   A sent a heartbeat\n";

  step("A: asks its session a question (input request), so it waits: awaiting_input");
  show("A", update(a, {.input_request = tj::TaskInputRequest{
                           .id = "req_branch",
                           .prompt = "Which branch?",
                           .expected = R"({"type":"string"})",
                       }}));

  step("A: the session answers with an inbound message in reply to req_branch: A resumes");
  tj::NewTaskMessage answer = tj::NewTaskMessage::inbound_text("feature/parser-split");
  answer.in_reply_to = "req_branch";
  const tj::TaskMessage answered = registry.record_message(session, a, answer);
  std::cout << "   session sent " << answered.id << ": " << message_text(answered) << "\n";
  show("A", must(registry.get(session, a), a));

  step("A: progress 3/3, a last progress message, then it succeeds with a summary and result");
  update(a, {.state_detail = "running the tests", .progress = progress(3), .heartbeat_at = now()});
  registry.record_message(session, a, tj::NewTaskMessage::outbound_text("All 214 tests pass"));
  show("A", update(a, {.state = tj::SessionTaskState::Succeeded,
                       .state_detail = "done",
                       .summary = "Parser split into lexer.cpp and parser.cpp",
                       .result_path = "out/parser-split.patch"}));

  step("B: an external agent task starts running, then fails with a timeout (on_terminal)");
  const std::string b = create({
      .kind = "external_agent",
      .display_name = "Remote code review",
      .spec = R"({"endpoint":"https://review.example/agents/7"})",
      .state = tj::SessionTaskState::Running,
      .wake_policy = tj::TaskWakePolicy::OnTerminal,
  });
  std::cout << "   B is " << b << "\n";
  show("B", must(registry.get(session, b), b));
  show("B", update(b, {.state = tj::SessionTaskState::Failed,
                       .error = tj::TaskError{
                           .kind = "timeout",
                           .message = "no answer from the agent within 300 s",
                       }}));

  step("C: a background tool runs; the session requests a cancel, the worker acknowledges it");
  const std::string c = create({
      .kind = "background_tool",
      .display_name = "Index the repository",
      .wake_policy = tj::TaskWakePolicy::OnTerminal,
  });
  std::cout << "   C is " << c << "\n";
  show("C", update(c, {.state = tj::SessionTaskState::Running,
                       .worker_id = "worker-2",
                       .heartbeat_at = now()}));
  show("C after request_cancel (intent only, the state stays)",
       must(registry.request_cancel(session, c), c));
  show("C",
       update(c, {.state = tj::SessionTaskState::Canceled, .state_detail = "stopped on request"}));

  std::cout << "\nClosing the registry at journal sequence " << registry.last_seq() << ".\n";
}

// A table of the session's tasks, task A's history and its messages, as stored in the file.
void inspect(const std::filesystem::path& file) {
  std::cout << "\n== A new process (pid " << ::getpid() << ") reopens " << file.string()
            << " read-only and folds its journal\n";
  tj::Registry registry = tj::Registry::open(file, {.read_only = true});
  std::cout << "   journal holds " << registry.last_seq() << " events\n";

  const std::vector<tj::SessionTask> tasks = registry.list(kSession);
  step("Tasks of session sess_demo, in creation order");
  std::size_t id_width = 2;
  std::size_t kind_width = 4;
  std::size_t state_width = 5;
  for (const auto& task : tasks) {
    id_width = std::max(id_width, task.id.size());
    kind_width = std::max(kind_width, task.kind.size());
    state_width = std::max(state_width, tj::to_string(task.state).size());
  }
  auto pad = [](std::string_view text, std::size_t width) {
    return std::string(text) + std::string(width - std::min(width, text.size()) + 2, ' ');
  };
  auto row = [&](std::string_view id, std::string_view kind, std::string_view state,
                 std::string_view attempt, std::string_view name) {
    std::cout << "   " << pad(id, id_width) << pad(kind, kind_width) << pad(state, state_width)
              << pad(attempt, 7) << name << "\n";
  };
  row("id", "kind", "state", "attempt", "display name");
  for (const auto& task : tasks) {
    row(task.id, task.kind, tj::to_string(task.state), std::to_string(task.attempt),
        task.display_name);
  }

  const std::vector<tj::SessionTask> subagents = registry.list(kSession, {.kind = "subagent"});
  if (subagents.empty()) throw std::runtime_error(file.string() + " holds no subagent task");
  const tj::SessionTask& a = subagents.front();

  step("History of task A (" + a.id + "): one event per call, payload as JSON");
  for (const tj::JournalEntry& entry : registry.history(kSession, a.id)) {
    std::cout << "   #" << entry.seq << "  " << tj::format_timestamp(entry.recorded_at) << "  "
              << entry.type << "\n      " << entry.payload << "\n";
  }

  step("Messages of task A, oldest first");
  for (const tj::TaskMessage& message : registry.list_messages(kSession, a.id)) {
    std::cout << "   " << tj::format_timestamp(message.created_at) << "  "
              << tj::to_string(message.direction) << "  " << message.id;
    if (message.in_reply_to) std::cout << " (in reply to " << *message.in_reply_to << ")";
    std::cout << "\n      " << message_text(message) << "\n";
  }

  step("Task A as public JSON");
  std::cout << "   " << tj::to_json(a) << "\n";
}

// Starts `/proc/self/exe ARGS...` (the demo's own child processes).
pid_t spawn_self(const char* argv0, std::vector<std::string> args) {
  std::cout.flush();
  std::vector<std::string> all{argv0};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> child_argv;
  for (auto& arg : all) child_argv.push_back(arg.data());
  child_argv.push_back(nullptr);
  pid_t pid = 0;
  if (int err =
          ::posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, child_argv.data(), environ)) {
    throw std::runtime_error(std::string("cannot start /proc/self/exe: ") + std::strerror(err));
  }
  return pid;
}

// Waits for child `pid`; "exited with 0", "was killed by signal 9", ...
std::string wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error(std::string("waitpid: ") + std::strerror(errno));
  }
  return WIFEXITED(status) ? "exited with " + std::to_string(WEXITSTATUS(status))
                           : "was killed by signal " + std::to_string(WTERMSIG(status));
}

// Runs `/proc/self/exe FILE --inspect` and waits for it; true if it exited with 0.
bool inspect_in_new_process(const char* argv0, const std::filesystem::path& file) {
  const std::string how = wait_for(spawn_self(argv0, {file.string(), "--inspect"}));
  if (how == "exited with 0") return true;
  std::cerr << "taskjournal-demo: the --inspect process " << how << "\n";
  return false;
}

// ---- the host's side: a killed worker, the reaper, a waiting process
// -----------------------------

// The child of --worker: takes task D, reports through a sink with heartbeats, and is killed
// (by itself, as abruptly as kill -9) while D runs.
[[noreturn]] void killed_worker(const std::filesystem::path& file) {
  tj::Registry registry = tj::Registry::open(file);
  const std::string d = registry
                            .create({.session_id = std::string(kSession),
                                     .kind = "background_tool",
                                     .display_name = "Crawl the docs",
                                     .wake_policy = tj::TaskWakePolicy::OnTerminal})
                            .id;
  tj::TaskSink sink = registry.sink(kSession, d);
  sink.state(tj::SessionTaskState::Running, "crawling");
  sink.heartbeat();
  show("D (in worker process " + std::to_string(::getpid()) + ")",
       must(sink.progress({.current = 40, .total = 100, .unit = "pages"}), d));
  std::cout << "   the worker process is killed (SIGKILL) while D runs\n";
  std::cout.flush();
  ::raise(SIGKILL);
  std::abort();  // not reached
}

// The child of --wait ID: waits for task ID (finished by the parent) and watches its events.
int waiting_process(const std::filesystem::path& file, const std::string& id) {
  using namespace std::chrono_literals;
  tj::Registry registry = tj::Registry::open(file, {.watch = 50ms});
  tj::Subscription watching = registry.on_event([](const tj::RegistryEvent& event) {
    std::cout << "   [pid " << ::getpid() << " watch] #" << event.seq << " " << event.type;
    if (event.task) std::cout << ": " << describe(*event.task);
    std::cout << "\n";
    std::cout.flush();
  });
  std::cout << "   [pid " << ::getpid() << "] waits for " << id << "\n";
  std::cout.flush();
  const auto started = std::chrono::steady_clock::now();
  const std::optional<tj::WaitResult> result = registry.wait(kSession, id, 30s);
  if (!result) throw std::runtime_error("task " + id + " not found");
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  std::this_thread::sleep_for(200ms);  // the watch tells the last events, too
  std::cout << "   [pid " << ::getpid() << "] wait returned after " << waited.count()
            << " ms: " << describe(result->task) << (result->timed_out ? " (timed out)" : "")
            << "\n";
  return result->timed_out || !tj::is_terminal(result->task.state) ? 1 : 0;
}

void host_demo(const char* argv0, const std::filesystem::path& file) {
  using namespace std::chrono_literals;
  step("D: a worker process takes a background task and dies while it runs");
  const std::string how = wait_for(spawn_self(argv0, {file.string(), "--worker"}));
  std::cout << "   the worker process " << how << "\n";

  step("The host restarts ten minutes later and runs its orphan reaper (stale after 300 s)");
  // The demo cannot wait ten minutes: the restarted host's clock runs ten minutes ahead.
  tj::Registry registry = tj::Registry::open(file, {.clock = [] { return now() + 10min; }});
  for (const tj::SessionTask& orphan : registry.list_orphaned(300s)) {
    std::cout << "   orphan: " << orphan.id << " (" << orphan.display_name << "), "
              << describe(orphan) << ", last heartbeat "
              << tj::format_timestamp(*orphan.heartbeat_at) << "\n";
  }
  const tj::ReapReport report = registry.reap_orphans({.stale_after = 300s});
  std::cout << "   reaper: " << report.candidates << " candidate(s), " << report.reaped
            << " reaped, " << report.reattached << " re-attached, " << report.skipped
            << " skipped\n";
  for (const tj::ReapOutcome& outcome : report.outcomes) {
    show(outcome.task_id + " " + outcome.status,
         must(registry.get(kSession, outcome.task_id), outcome.task_id));
  }

  step("E: another process waits for a task this process works on through a sink");
  const std::string e = registry
                            .create({.session_id = std::string(kSession),
                                     .kind = "subagent",
                                     .display_name = "Summarize the crawl"})
                            .id;
  const pid_t waiter = spawn_self(argv0, {file.string(), "--wait", e});
  std::this_thread::sleep_for(500ms);  // the waiter is waiting by now (it works either way)
  tj::TaskSink sink = registry.sink(kSession, e);
  show("E", must(sink.state(tj::SessionTaskState::Running, "summarizing"), e));
  std::this_thread::sleep_for(200ms);
  show("E", must(sink.progress({.current = 1, .total = 1, .unit = "summary"}), e));
  std::this_thread::sleep_for(200ms);
  show("E", must(sink.state(tj::SessionTaskState::Succeeded, "done"), e));
  const std::string waited = wait_for(waiter);
  std::cout << "   the waiting process " << waited << "\n";
  if (waited != "exited with 0") throw std::runtime_error("the waiting process failed");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.size() == 1 && (args[0] == "-h" || args[0] == "--help")) {
    std::cout << kUsage;
    return 0;
  }
  const bool inspect_mode = args.size() == 2 && args[1] == "--inspect";
  const bool worker_mode = args.size() == 2 && args[1] == "--worker";
  const bool wait_mode = args.size() == 3 && args[1] == "--wait";
  if (!(args.size() == 1 || inspect_mode || worker_mode || wait_mode) || args[0].empty() ||
      args[0].front() == '-') {
    std::cerr << kUsage;
    return 2;
  }
  const std::filesystem::path file(args[0]);

  try {
    if (inspect_mode) {
      inspect(file);
      return 0;
    }
    if (worker_mode) killed_worker(file);
    if (wait_mode) return waiting_process(file, std::string(args[2]));
    run_demo(file);  // the registry is closed when it returns
    host_demo(argv[0], file);
    return inspect_in_new_process(argv[0], file) ? 0 : 1;
  } catch (const tj::Error& e) {
    std::cerr << "taskjournal-demo: " << tj::to_string(e.code()) << ": " << e.what() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "taskjournal-demo: " << e.what() << "\n";
  }
  return 1;
}
