#include "support/stress_workload.hpp"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support/processes.hpp"

namespace taskjournal::testing {
namespace {

constexpr int kSharedTasks = 4;
constexpr int kRaceTasks = 24;
const std::string kShared = "shared";
const std::string kFenceTask = "fence";

std::string shared_task(int k) { return "shared-" + std::to_string(k); }
std::string race_task(int k) { return "race-" + std::to_string(k); }
std::string private_session(int p, int t) {
  return "p" + std::to_string(p) + "t" + std::to_string(t);
}
std::vector<std::string> all_sessions(const StressPlan& plan) {
  std::vector<std::string> out{kShared};
  for (int p = 0; p < plan.processes; ++p)
    for (int t = 0; t < plan.threads; ++t) out.push_back(private_session(p, t));
  return out;
}
std::vector<std::string> shared_ids() {
  std::vector<std::string> out;
  for (int k = 0; k < kSharedTasks; ++k) out.push_back(shared_task(k));
  for (int k = 0; k < kRaceTasks; ++k) out.push_back(race_task(k));
  out.push_back(kFenceTask);
  return out;
}

bool has_artifact(const SessionTask& t, const std::string& name) {
  return std::any_of(t.artifacts.begin(), t.artifacts.end(),
                     [&](const TaskArtifact& a) { return a.name == name; });
}

// Notifications seen by one process, from any of its registries and threads.
struct Transitions {
  std::mutex mutex;
  std::vector<std::string> lines;  // "tn <task> <state> <summary>"
  Subscription watch(Registry& r) {
    return r.on_transition([this](TaskTransition tr, const SessionTask& task) {
      if (tr != TaskTransition::Terminal) return;
      std::lock_guard lock(mutex);
      lines.push_back("tn " + task.id + " " + std::string(to_string(task.state)) + " " +
                      task.summary.value_or("-"));
    });
  }
};

// One thread's script. Every line in `acks` stands for a call that returned; lines starting with
// "event" for a call that must have written exactly one event.
class Worker {
 public:
  Worker(const StressPlan& plan, Registry& registry, int p, int t)
      : plan_(plan),
        r_(registry),
        p_(p),
        t_(t),
        session_(private_session(p, t)),
        rng_(static_cast<unsigned>(1000 * p + t + 1)) {}

  void run() {
    for (const auto& id : shared_ids()) {
      call([&] {
        auto task = r_.create({.session_id = kShared,
                               .id = id,
                               .kind = "shared",
                               .display_name = id,
                               .wake_policy = TaskWakePolicy::OnTerminal});
        expect(task.session_id == kShared && task.id == id, "shared create returned " + task.id);
      });
    }
    for (int k = 0; k < kRaceTasks; ++k) race(k);
    for (int i = 0; i < plan_.commands; ++i) step(i);
  }

  std::vector<std::string> acks;

 private:
  std::string unique() {
    return "p" + std::to_string(p_) + "t" + std::to_string(t_) + "n" + std::to_string(serial_++);
  }
  void expect(bool ok, const std::string& what) {
    if (!ok) acks.push_back("error expectation failed: " + what);
  }
  template <class F>
  void call(F&& f) {
    try {
      f();
    } catch (const Error& e) {
      acks.push_back("error " + std::string(to_string(e.code())) + " " + e.what());
    }
  }
  std::string pick_open() {
    if (open_.empty()) create_private();
    return open_.empty() ? std::string() : open_[rng_() % open_.size()];
  }

  void create_private() {
    call([&] {
      auto task = r_.create({.session_id = session_, .kind = "private", .display_name = unique()});
      acks.push_back("event create " + session_ + " " + task.id);
      open_.push_back(task.id);
    });
  }

  void race(int k) {
    static constexpr SessionTaskState kEnds[] = {
        SessionTaskState::Succeeded, SessionTaskState::Failed, SessionTaskState::Canceled};
    const auto state = kEnds[(p_ * plan_.threads + t_ + k) % 3];
    call([&] {
      auto task = r_.update(kShared, race_task(k), {.state = state, .summary = unique()});
      expect(task && is_terminal(task->state), "race update on " + race_task(k));
      acks.push_back("event race " + race_task(k));
    });
  }

  void update_with_artifact(const std::string& session, const std::string& id,
                            SessionTaskUpdate update) {
    const std::string name = unique();
    update.append_artifact = TaskArtifact{.name = name, .type = "log"};
    auto task = r_.update(session, id, update);
    expect(task && has_artifact(*task, name), "update of " + id + " lost artifact " + name);
    acks.push_back("event artifact " + session + " " + id + " " + name);
  }

  void step(int i) {
    switch (rng_() % 10) {
      case 0:
      case 1:
        create_private();
        break;
      case 2: {  // private progress
        const auto id = pick_open();
        call([&] {
          update_with_artifact(session_, id,
                               {.state = SessionTaskState::Running,
                                .progress = TaskProgress{.current = std::uint64_t(i),
                                                         .total = std::uint64_t(plan_.commands)}});
        });
        break;
      }
      case 3: {  // input request answered by an inbound message
        const auto id = pick_open();
        const std::string request = "req-" + unique();
        call([&] {
          update_with_artifact(session_, id,
                               {.input_request = TaskInputRequest{.id = request, .prompt = "?"}});
          auto m = r_.record_message(session_, id,
                                     {.direction = TaskMessageDirection::Inbound,
                                      .content = {TextPart{"answer"}},
                                      .in_reply_to = request});
          acks.push_back("event msg " + session_ + " " + id + " " + m.id);
          auto task = r_.get(session_, id);
          expect(task && task->state == SessionTaskState::Running && !task->input_request,
                 "reply did not resume " + id);
        });
        break;
      }
      case 4: {  // racing content updates on shared tasks
        const auto id = shared_task(static_cast<int>(rng_() % kSharedTasks));
        call([&] {
          const std::string name = unique();
          auto task = r_.update(kShared, id,
                                {.state_detail = name,
                                 .append_artifact = TaskArtifact{.name = name, .type = "shared"},
                                 .links = TaskLinks{.resource_ids = {name}}});
          expect(task && has_artifact(*task, name), "shared update lost " + name);
          acks.push_back("event artifact " + kShared + " " + id + " " + name);
          acks.push_back("resource " + id + " " + name);
        });
        break;
      }
      case 5: {  // outbound messages on shared tasks
        const auto id = shared_task(static_cast<int>(rng_() % kSharedTasks));
        call([&] {
          auto m = r_.record_message(kShared, id, NewTaskMessage::outbound_text(unique()));
          acks.push_back("event msg " + kShared + " " + id + " " + m.id);
        });
        break;
      }
      case 6: {  // fenced increment, then a fenced message
        call([&] {
          auto before = r_.get(kShared, kFenceTask);
          expect(before.has_value(), "fence task missing");
          if (!before) return;
          const int attempt = before->attempt;
          const std::string name = unique();
          auto after = r_.update(kShared, kFenceTask,
                                 {.append_artifact = TaskArtifact{.name = name, .type = "fence"},
                                  .expected_attempt = attempt,
                                  .increment_attempt = true});
          expect(after.has_value(), "fenced update found no task");
          if (!after) return;
          const bool applied = has_artifact(*after, name);
          expect(!applied || after->attempt == attempt + 1, "applied fence without increment");
          acks.push_back("event fence " + name + " " + std::to_string(attempt) + " " +
                         (applied ? "1" : "0"));
          try {
            auto m = r_.record_message(kShared, kFenceTask,
                                       {.direction = TaskMessageDirection::Outbound,
                                        .content = {TextPart{name}},
                                        .expected_attempt = applied ? attempt + 1 : attempt});
            acks.push_back("event msg " + kShared + " " + kFenceTask + " " + m.id);
          } catch (const Error& e) {
            if (e.code() != ErrorCode::StaleAttempt) throw;
            acks.push_back("stale");
          }
        });
        break;
      }
      case 7: {  // cancel requests, repeated ones included
        const bool shared = rng_() % 2 == 0;
        const auto session = shared ? kShared : session_;
        const auto id = shared ? shared_task(static_cast<int>(rng_() % kSharedTasks)) : pick_open();
        call([&] {
          auto task = r_.request_cancel(session, id);
          expect(task && task->cancel_requested_at, "cancel of " + id);
          acks.push_back("event cancel " + session + " " + id);
        });
        break;
      }
      case 8: {  // a private task finishes
        const auto id = pick_open();
        call([&] {
          update_with_artifact(session_, id,
                               {.state = SessionTaskState::Succeeded, .summary = unique()});
          open_.erase(std::find(open_.begin(), open_.end(), id));
        });
        break;
      }
      default: {  // reads, and a late racer on an already finished task
        call([&] {
          const auto tasks = r_.list(kShared);
          expect(tasks.size() == shared_ids().size(), "shared list has the wrong size");
        });
        race(static_cast<int>(rng_() % kRaceTasks));
        break;
      }
    }
  }

  const StressPlan& plan_;
  Registry& r_;
  int p_;
  int t_;
  std::string session_;
  std::mt19937 rng_;
  int serial_ = 0;
  std::vector<std::string> open_;  // this thread's non-terminal private tasks
};

// Reads one byte from `fd` within `timeout`; false on timeout or EOF.
bool await_byte(int fd, std::chrono::milliseconds timeout) {
  pollfd pfd{.fd = fd, .events = POLLIN, .revents = 0};
  if (::poll(&pfd, 1, static_cast<int>(timeout.count())) != 1) return false;
  char c = 0;
  return read_exact(fd, &c, 1);
}

void write_lines(const fs::path& file, const std::vector<std::string>& lines) {
  std::ofstream out(file);
  for (const auto& l : lines) out << l << '\n';
}

std::vector<std::string> read_lines(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// One child process: opens its registries, waits for the start, runs its threads, reports.
void child(const StressPlan& plan, const fs::path& dir, int p, int ready_fd, int start_fd,
           int dump_fd) {
  const Options options{.busy_timeout = std::chrono::seconds(60)};
  // Even processes share one Registry between their threads; odd ones open one per thread.
  std::vector<std::unique_ptr<Registry>> registries;
  const int count = p % 2 == 0 ? 1 : plan.threads;
  for (int i = 0; i < count; ++i) {
    registries.push_back(std::make_unique<Registry>(plan.open(options)));
  }
  Transitions transitions;
  std::vector<Subscription> subscriptions;
  for (auto& r : registries) subscriptions.push_back(transitions.watch(*r));

  char byte = 'o';
  if (!write_all(ready_fd, &byte, 1)) throw std::runtime_error("ready pipe");
  if (!await_byte(start_fd, std::chrono::seconds(60))) throw std::runtime_error("no start");

  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < plan.threads; ++t) {
    workers.push_back(std::make_unique<Worker>(plan, *registries[t % registries.size()], p, t));
  }
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });
  for (auto& th : threads) th.join();

  std::vector<std::string> acks;
  for (auto& w : workers) acks.insert(acks.end(), w->acks.begin(), w->acks.end());
  {
    std::lock_guard lock(transitions.mutex);
    acks.insert(acks.end(), transitions.lines.begin(), transitions.lines.end());
  }
  write_lines(dir / ("acks-" + std::to_string(p)), acks);

  // Once every process is done writing, each of this process's registries dumps its views.
  byte = 'd';
  if (!write_all(ready_fd, &byte, 1)) throw std::runtime_error("ready pipe");
  if (!await_byte(dump_fd, std::chrono::seconds(120))) throw std::runtime_error("no dump signal");
  for (std::size_t i = 0; i < registries.size(); ++i) {
    std::ofstream(dir / ("dump-" + std::to_string(p) + "-" + std::to_string(i)))
        << dump_sessions(*registries[i], all_sessions(plan));
  }
}

}  // namespace

StressOutcome run_stress(const StressPlan& plan, const fs::path& dir) {
  StressOutcome outcome;
  const auto started = std::chrono::steady_clock::now();

  Pipe ready, start, dump;
  std::vector<pid_t> pids;
  for (int p = 0; p < plan.processes; ++p) {
    pids.push_back(fork_child([&, p] {
      ready.close_read();
      start.close_write();
      dump.close_write();
      child(plan, dir, p, ready.write_end(), start.read_end(), dump.read_end());
    }));
  }
  ready.close_write();
  auto kill_all = [&] {
    for (pid_t pid : pids) ::kill(pid, SIGKILL);
    for (pid_t pid : pids) wait_child(pid);
  };
  // Start barrier: every process has its registries open (all opened the journal at once, the
  // first of them creating it), then all threads start together.
  for (int p = 0; p < plan.processes; ++p) {
    if (!await_byte(ready.read_end(), std::chrono::seconds(60))) {
      kill_all();
      ADD_FAILURE() << "a child did not open the journal";
      return outcome;
    }
  }
  const std::string go(static_cast<std::size_t>(plan.processes), 'g');
  if (!write_all(start.write_end(), go.data(), go.size())) {
    kill_all();
    ADD_FAILURE() << "start pipe";
    return outcome;
  }
  for (int p = 0; p < plan.processes; ++p) {
    if (!await_byte(ready.read_end(), std::chrono::seconds(110))) {
      kill_all();
      ADD_FAILURE() << "a child did not finish its commands";
      return outcome;
    }
  }
  const auto written = std::chrono::steady_clock::now();
  EXPECT_TRUE(write_all(dump.write_end(), go.data(), go.size()));
  for (pid_t pid : pids) EXPECT_TRUE(exited_ok(wait_child(pid)));

  // ---- what the children acknowledged ----
  std::uint64_t expected_events = shared_ids().size();  // each shared task created exactly once
  std::map<std::pair<std::string, std::string>, std::multiset<std::string>> artifacts;
  std::map<std::pair<std::string, std::string>, std::set<std::string>> messages;
  std::set<std::pair<std::string, std::string>> cancels;
  std::map<std::string, std::vector<std::string>> resources;
  std::map<std::string, std::vector<std::string>> notices;  // task → "state summary"
  std::vector<int> fenced_attempts;
  std::vector<std::string> errors;
  int commands = 0, stale = 0;
  std::size_t expected_tasks = shared_ids().size();
  for (int p = 0; p < plan.processes; ++p) {
    for (const auto& line : read_lines(dir / ("acks-" + std::to_string(p)))) {
      std::istringstream in(line);
      std::string kind;
      in >> kind;
      if (kind == "error") {
        errors.push_back(line);
        continue;
      }
      if (kind == "stale") {
        ++stale, ++commands;
        continue;
      }
      if (kind == "resource") {
        std::string id, name;
        in >> id >> name;
        resources[id].push_back(name);
        continue;
      }
      if (kind == "tn") {
        std::string id, rest;
        in >> id;
        std::getline(in, rest);
        notices[id].push_back(rest.substr(1));
        continue;
      }
      if (kind != "event") {
        ADD_FAILURE() << "unreadable ack: " << line;
        continue;
      }
      ++expected_events, ++commands;
      std::string what, session, id, name;
      in >> what;
      if (what == "artifact") {
        in >> session >> id >> name;
        artifacts[{session, id}].insert(name);
      } else if (what == "fence") {
        int attempt = 0, applied = 0;
        in >> name >> attempt >> applied;
        if (applied) {
          artifacts[{kShared, kFenceTask}].insert(name);
          fenced_attempts.push_back(attempt);
        }
      } else if (what == "msg") {
        in >> session >> id >> name;
        messages[{session, id}].insert(name);
      } else if (what == "cancel") {
        in >> session >> id;
        cancels.insert({session, id});
      } else if (what == "create") {
        in >> session >> id;
        ++expected_tasks;
      }
    }
  }
  EXPECT_TRUE(errors.empty()) << errors.size() << " failed calls, first: " << errors.front();
  outcome.completed = true;
  outcome.expected_events = expected_events;

  auto fresh = plan.open({.read_only = true});
  EXPECT_EQ(fresh.last_seq(), expected_events);

  // ---- no lost update, lifecycle invariants, one terminal notice per finished task ----
  std::size_t tasks_seen = 0;
  for (const auto& session : all_sessions(plan)) {
    for (const auto& task : fresh.list(session)) {
      ++tasks_seen;
      const std::pair key{session, task.id};
      EXPECT_EQ(lifecycle_violations(task), "");
      std::multiset<std::string> names;
      for (const auto& a : task.artifacts) names.insert(a.name);
      EXPECT_EQ(names, artifacts[key]) << session << "/" << task.id;
      std::set<std::string> ids;
      const auto stored = fresh.list_messages(session, task.id);
      for (const auto& m : stored) ids.insert(m.id);
      EXPECT_EQ(stored.size(), ids.size());
      EXPECT_EQ(ids, messages[key]) << session << "/" << task.id;
      EXPECT_EQ(task.cancel_requested_at.has_value(), cancels.count(key) == 1) << task.id;
      if (task.id.rfind("shared-", 0) == 0) {
        std::multiset<std::string> want(resources[task.id].begin(), resources[task.id].end());
        std::multiset<std::string> got(task.links.resource_ids.begin(),
                                       task.links.resource_ids.end());
        EXPECT_EQ(got, want) << task.id;
      }
      const auto& seen = notices[task.id];
      if (is_terminal(task.state)) {
        EXPECT_EQ(seen.size(), 1u) << task.id << ": terminal notices across all processes";
        if (seen.size() != 1) continue;
        // The notice came from the update that won the race: the first terminal one in the
        // journal (later updates with the same terminal state go on and may change the summary).
        const std::string state(to_string(task.state));
        EXPECT_EQ(seen[0].substr(0, seen[0].find(' ')), state) << task.id;
        std::string winner;
        for (const auto& e : fresh.history(session, task.id)) {
          if (e.type == "task_updated" &&
              e.payload.find("\"state\":\"" + state) != std::string::npos) {
            winner = e.payload;
            break;
          }
        }
        EXPECT_NE(winner.find("\"summary\":\"" + seen[0].substr(seen[0].find(' ') + 1) + "\""),
                  std::string::npos)
            << task.id << ": notice " << seen[0] << ", first terminal update " << winner;
      } else {
        EXPECT_TRUE(seen.empty()) << task.id;
      }
    }
  }
  EXPECT_EQ(tasks_seen, expected_tasks);
  for (int k = 0; k < kRaceTasks; ++k) {
    EXPECT_EQ(notices[race_task(k)].size(), 1u) << race_task(k);
  }

  // Fenced increments: each attempt value was taken by exactly one applied update.
  const auto fence = fresh.get(kShared, kFenceTask);
  EXPECT_TRUE(fence);
  std::sort(fenced_attempts.begin(), fenced_attempts.end());
  std::vector<int> want_attempts(fenced_attempts.size());
  for (std::size_t i = 0; i < want_attempts.size(); ++i) want_attempts[i] = int(i) + 1;
  EXPECT_EQ(fenced_attempts, want_attempts);
  if (fence) {
    EXPECT_EQ(fence->attempt, 1 + int(fenced_attempts.size()));
  }

  // ---- every process, and a fresh registry, see the same views ----
  const std::string want = dump_sessions(fresh, all_sessions(plan));
  int dumps = 0;
  for (int p = 0; p < plan.processes; ++p) {
    for (int i = 0; i < plan.threads; ++i) {
      const auto file = dir / ("dump-" + std::to_string(p) + "-" + std::to_string(i));
      if (!fs::exists(file)) continue;
      ++dumps;
      EXPECT_TRUE(read_text(file) == want) << file << " differs from a fresh registry's views";
    }
  }
  const int sharing = (plan.processes + 1) / 2;  // even processes: one registry
  EXPECT_EQ(dumps, sharing + (plan.processes - sharing) * plan.threads);

  const auto ms = [](auto d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  std::printf(
      "stress (%s): %d processes x %d threads, %d acknowledged writing calls + %d stale "
      "fences, %llu events, %zu tasks, %zu fenced increments, written in %lld ms, "
      "total %lld ms\n",
      plan.engine.c_str(), plan.processes, plan.threads, commands - stale, stale,
      static_cast<unsigned long long>(expected_events), tasks_seen, fenced_attempts.size(),
      static_cast<long long>(ms(written - started)),
      static_cast<long long>(ms(std::chrono::steady_clock::now() - started)));
  return outcome;
}

void expect_each_write_seen(Registry& reader, Registry& read_only, Pipe& request, Pipe& ack,
                            int writes) {
  char byte = 'w';
  for (int k = 1; k <= writes; ++k) {
    // Reads in between, so that each registry has looked at the journal just before the write.
    ASSERT_TRUE(reader.get("s", "t"));
    ASSERT_TRUE(read_only.get("s", "t"));
    ASSERT_TRUE(write_all(request.write_end(), &byte, 1));
    ASSERT_TRUE(read_exact(ack.read_end(), &byte, 1)) << "writer stopped at write " << k;
    const auto seen = reader.get("s", "t");
    ASSERT_TRUE(seen && seen->progress && seen->progress->current == std::uint64_t(k))
        << "write " << k << " not seen by the next read";
    const auto seen_ro = read_only.get("s", "t");
    ASSERT_TRUE(seen_ro && seen_ro->progress && seen_ro->progress->current == std::uint64_t(k))
        << "write " << k << " not seen by the next read of a read-only registry";
    if (k % 7 == 0) reader.update("s", "t", {.summary = "parent " + std::to_string(k)});
  }
}

}  // namespace taskjournal::testing
