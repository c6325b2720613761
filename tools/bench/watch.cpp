#include "watch.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "workload.hpp"

extern char** environ;

namespace bench::watch {
namespace {

namespace tj = taskjournal;
using Clock = std::chrono::steady_clock;

constexpr const char* kSession = "sess_watch";
constexpr const char* kNotifyTask = "task_watch";

std::string wait_task(int k) { return "task_wait_" + std::to_string(k); }

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

double ms_between(std::int64_t from_ns, std::int64_t to_ns) {
  return double(to_ns - from_ns) / 1e6;
}

// The writer process, with a pipe to its stdin and one from its stdout; killed and reaped if
// still running when destroyed (a measurement that threw).
class Child {
 public:
  explicit Child(const std::vector<std::string>& args) {
    int to_child[2], from_child[2];
    if (::pipe2(to_child, O_CLOEXEC) != 0 || ::pipe2(from_child, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe failed");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, to_child[0], 0);
    posix_spawn_file_actions_adddup2(&actions, from_child[1], 1);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
    const int rc = ::posix_spawn(&pid_, exe.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(to_child[0]);
    ::close(from_child[1]);
    in_ = to_child[1];
    out_ = from_child[0];
    if (rc != 0) {
      pid_ = -1;
      throw std::runtime_error("posix_spawn failed");
    }
  }
  ~Child() {
    close_input();
    if (out_ >= 0) ::close(out_);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  void send(const std::string& line) {
    const std::string text = line + "\n";
    if (::write(in_, text.data(), text.size()) != ssize_t(text.size())) {
      throw std::runtime_error("the writer process stopped reading");
    }
  }
  void close_input() {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
  }
  // Everything the child writes to its stdout, then its exit (which must be 0).
  std::string finish() {
    close_input();
    std::string text;
    char buf[65536];
    for (;;) {
      const ssize_t n = ::read(out_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      text.append(buf, std::size_t(n));
    }
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      throw std::runtime_error("the writer process failed");
    }
    return text;
  }

 private:
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1;
};

// One line of the child per update: its number, and the steady clock before and after update().
struct Write {
  std::int64_t before_ns = 0, after_ns = 0;
};

// The child's lines "k before_ns after_ns", k in 1..count (notify) or 0..count-1 (wait).
std::vector<Write> parse(const std::string& text, std::size_t count, std::size_t first) {
  std::vector<Write> writes(count);
  std::vector<bool> seen(count, false);
  std::istringstream in(text);
  std::size_t k = 0;
  Write w;
  while (in >> k >> w.before_ns >> w.after_ns) {
    if (k < first || k - first >= count || seen[k - first]) {
      throw std::runtime_error("the writer process reported update " + std::to_string(k));
    }
    writes[k - first] = w;
    seen[k - first] = true;
  }
  for (std::size_t i = 0; i < count; ++i) {
    if (!seen[i]) throw std::runtime_error("the writer process did not report every update");
  }
  return writes;
}

std::string format(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string ms(double v) { return format("%.2f", v); }

int child_notify(tj::Registry& r, int count, std::chrono::microseconds spacing) {
  std::string out;
  for (int i = 1; i <= count; ++i) {
    const std::int64_t before = now_ns();
    const auto task = r.update(
        kSession, kNotifyTask,
        {.progress = tj::TaskProgress{.current = std::uint64_t(i), .total = std::uint64_t(count)}});
    const std::int64_t after = now_ns();
    if (!task) throw std::runtime_error("the watched task is missing");
    out += std::to_string(i) + " " + std::to_string(before) + " " + std::to_string(after) + "\n";
    std::this_thread::sleep_for(spacing);
  }
  std::cout << out << std::flush;
  return 0;
}

// For each line k on stdin: sleeps a random 5–15 ms (so the commits fall at every phase of the
// waiter's detection), then finishes task k.
int child_wait(tj::Registry& r) {
  std::mt19937 rng(12);
  std::uniform_int_distribution<int> pause_us(5000, 15000);
  std::string out;
  int k = 0;
  while (std::cin >> k) {
    std::this_thread::sleep_for(std::chrono::microseconds(pause_us(rng)));
    const std::int64_t before = now_ns();
    const auto task = r.update(kSession, wait_task(k), {.state = tj::SessionTaskState::Succeeded});
    const std::int64_t after = now_ns();
    if (!task) throw std::runtime_error("a waited task is missing");
    out += std::to_string(k) + " " + std::to_string(before) + " " + std::to_string(after) + "\n";
  }
  std::cout << out << std::flush;
  return 0;
}

}  // namespace

int child_main(int argc, char** argv, const Opener& open) {
  if (argc != 6) {
    std::cerr << argv[0] << " " << kChildFlag << ": notify|wait TARGET COUNT SPACING_US\n";
    return 2;
  }
  try {
    const std::string mode = argv[2];
    auto r = open(argv[3], {});
    if (mode == "notify") {
      return child_notify(r, std::stoi(argv[4]), std::chrono::microseconds(std::stoll(argv[5])));
    }
    if (mode == "wait") return child_wait(r);
    std::cerr << kChildFlag << ": unknown mode " << mode << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "watch writer: " << e.what() << "\n";
    return 1;
  }
}

Latencies notifications(const Opener& open, const std::string& target,
                        std::chrono::milliseconds watch, int updates,
                        std::chrono::microseconds spacing, std::string label) {
  Latencies result{.label = std::move(label), .expected = std::size_t(updates)};
  {
    auto setup = open(target, {});
    setup.create({.session_id = kSession, .id = kNotifyTask, .kind = "monitor"});
    setup.update(kSession, kNotifyTask, {.state = tj::SessionTaskState::Running});
  }
  struct Delivery {
    std::int64_t ns;
    std::uint64_t seq;
    std::uint64_t current;  // 0: not one of the writer's updates
  };
  std::mutex mutex;
  std::condition_variable delivered;
  std::vector<Delivery> got;
  got.reserve(std::size_t(updates) + 16);
  std::vector<std::string> problems;
  tj::Options options{.watch = watch};
  options.on_problem = [&](const tj::Error& e) {
    std::lock_guard lock(mutex);
    problems.push_back(e.what());
  };
  auto r = open(target, options);
  auto subscription = r.on_event([&](const tj::RegistryEvent& e) {
    const std::int64_t at = now_ns();  // first: the delivery time
    std::uint64_t current = 0;
    if (e.type == "task.updated" && e.task_id == kNotifyTask && e.task && e.task->progress &&
        e.task->progress->current) {
      current = *e.task->progress->current;
    }
    {
      std::lock_guard lock(mutex);
      got.push_back({at, e.seq, current});
    }
    delivered.notify_all();
  });
  Child child({"writer", kChildFlag, "notify", target, std::to_string(updates),
               std::to_string(spacing.count())});
  const std::vector<Write> writes = parse(child.finish(), std::size_t(updates), 1);
  std::vector<Delivery> deliveries;
  {
    std::unique_lock lock(mutex);
    // The last ones arrive within one detection period (PostgreSQL: the NOTIFY, or the fallback
    // read every max(watch, 1 s)); generous bound.
    delivered.wait_for(lock, std::chrono::seconds(10) + watch,
                       [&] { return got.size() >= std::size_t(updates); });
  }
  // Anything later would be a repeat: give it a moment to show.
  std::this_thread::sleep_for(std::min(watch, std::chrono::milliseconds(200)));
  {
    std::lock_guard lock(mutex);
    deliveries = got;
  }
  subscription.disconnect();

  std::vector<int> seen(std::size_t(updates) + 1, 0);
  std::size_t foreign = 0, twice = 0, missing = 0;
  bool ordered = true;
  std::uint64_t last_seq = 0, last_current = 0;
  for (const Delivery& d : deliveries) {
    if (d.current == 0 || d.current > std::uint64_t(updates)) {
      ++foreign;
      continue;
    }
    if (seen[d.current]++ == 0) {
      const Write& w = writes[d.current - 1];
      result.ms.push_back(ms_between(w.after_ns, d.ns));
      result.from_call_ms.push_back(ms_between(w.before_ns, d.ns));
    }
    if (d.seq <= last_seq || d.current <= last_current) ordered = false;
    last_seq = d.seq;
    last_current = d.current;
  }
  for (int i = 1; i <= updates; ++i) {
    if (seen[std::size_t(i)] == 0) ++missing;
    if (seen[std::size_t(i)] > 1) twice += std::size_t(seen[std::size_t(i)] - 1);
  }
  for (const Write& w : writes) result.call_ms.push_back(ms_between(w.before_ns, w.after_ns));
  result.ok = missing == 0 && twice == 0 && foreign == 0 && ordered && problems.empty();
  std::string check = std::to_string(updates - int(missing)) + "/" + std::to_string(updates);
  if (result.ok) {
    check += " once each, seq ascending";
  } else {
    check += " (" + std::to_string(missing) + " missing, " + std::to_string(twice) + " repeated, " +
             std::to_string(foreign) + " unexpected, " +
             (ordered ? "in order" : "**out of order**") + ", " + std::to_string(problems.size()) +
             " problems" + (problems.empty() ? "" : ": " + problems.front()) + ")";
  }
  result.check = check;
  return result;
}

Latencies waits(const Opener& open, const std::string& target, int repetitions, std::string label) {
  ::signal(SIGPIPE, SIG_IGN);  // a writer that died shows as a failed write, not a dead parent
  Latencies result{.label = std::move(label), .expected = std::size_t(repetitions)};
  auto r = open(target, {});
  r.batch([&](tj::Batch& b) {
    b.create({.session_id = kSession, .id = "task_wait_done", .kind = "subagent"});
    b.update(kSession, "task_wait_done", {.state = tj::SessionTaskState::Succeeded});
    for (int k = 0; k < repetitions; ++k) {
      b.create({.session_id = kSession, .id = wait_task(k), .kind = "subagent"});
      b.update(kSession, wait_task(k), {.state = tj::SessionTaskState::Running});
    }
  });
  // A registry's first wait() starts its change detection (a connection of its own): timed here,
  // on a finished task (it returns at once), not in the measurement.
  const std::int64_t setup_start = now_ns();
  r.wait(kSession, "task_wait_done", std::chrono::seconds(1));
  result.setup_ms = ms_between(setup_start, now_ns());

  Child child({"writer", kChildFlag, "wait", target, std::to_string(repetitions), "0"});
  std::vector<std::int64_t> returned(static_cast<std::size_t>(repetitions));
  std::size_t settled = 0, timed_out = 0;
  for (int k = 0; k < repetitions; ++k) {
    child.send(std::to_string(k));
    const auto waited = r.wait(kSession, wait_task(k), std::chrono::seconds(30));
    returned[std::size_t(k)] = now_ns();
    if (waited && !waited->timed_out && waited->task.state == tj::SessionTaskState::Succeeded) {
      ++settled;
    } else {
      ++timed_out;
    }
  }
  const std::vector<Write> writes = parse(child.finish(), std::size_t(repetitions), 0);
  for (int k = 0; k < repetitions; ++k) {
    const Write& w = writes[std::size_t(k)];
    result.ms.push_back(ms_between(w.after_ns, returned[std::size_t(k)]));
    result.from_call_ms.push_back(ms_between(w.before_ns, returned[std::size_t(k)]));
    result.call_ms.push_back(ms_between(w.before_ns, w.after_ns));
  }
  result.ok = settled == std::size_t(repetitions);
  result.check = std::to_string(settled) + "/" + std::to_string(repetitions) +
                 " returned the succeeded task" +
                 (timed_out ? " (" + std::to_string(timed_out) + " timed out or wrong)" : "");
  return result;
}

std::string workload_text(int updates, int wait_repetitions) {
  return "on_event: the writer process makes " + std::to_string(updates) +
         " progress updates of one running task, sleeping 5 ms after each. wait(): " +
         std::to_string(wait_repetitions) +
         " tasks, each finished by the writer a random 5–15 ms after the waiting thread asked "
         "for it, on a registry whose first wait() (of a finished task, not counted) started "
         "its change detection";
}

std::vector<std::string> table(const std::vector<Latencies>& rows) {
  std::vector<std::string> lines{
      "| measured | samples | p50 ms | p99 ms | max ms | min ms | < 0 | from the call's start: "
      "p50 / p99 ms | update() p50 / p99 ms | check |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"};
  for (const Latencies& l : rows) {
    const auto early = std::count_if(l.ms.begin(), l.ms.end(), [](double v) { return v < 0; });
    lines.push_back(
        "| " + l.label + " | " + std::to_string(l.ms.size()) + " | " + ms(percentile(l.ms, 50)) +
        " | " + ms(percentile(l.ms, 99)) + " | " + ms(percentile(l.ms, 100)) + " | " +
        ms(l.ms.empty() ? 0 : *std::min_element(l.ms.begin(), l.ms.end())) + " | " +
        std::to_string(early) + " | " + ms(percentile(l.from_call_ms, 50)) + " / " +
        ms(percentile(l.from_call_ms, 99)) + " | " + ms(percentile(l.call_ms, 50)) + " / " +
        ms(percentile(l.call_ms, 99)) + " | " + (l.ok ? "" : "**failed**: ") + l.check + " |");
  }
  return lines;
}

}  // namespace bench::watch
