// Crashes (issue 5, item 2): a child process writes in a loop and reports every call that
// returned through a pipe; the parent kills it with SIGKILL at a random moment, reopens the
// journal and checks that every acknowledged call is there, that at most the one call in flight
// was committed without its acknowledgement, that the journal verifies (opening it checks the
// whole hash chain and decodes every event) and that the next write succeeds.
//
// Both durability modes: SIGKILL is a process crash, which neither mode may lose anything to
// (a power loss, which only Full survives, cannot be staged in a test).
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support/processes.hpp"
#include "taskjournal/taskjournal.hpp"

using namespace taskjournal;
using namespace taskjournal::testing;

namespace {

constexpr int kFileRounds = 20;  // kills on one file before starting a new one
const std::string kSession = "crash";

// The child: opens the journal and writes until killed. Each acknowledged call becomes one line
// on `ack_fd`, written after the call returned ("C task", "A task artifact", "M task message",
// "X task"); the first line ("R") says the journal is open.
[[noreturn]] void writer(const fs::path& journal, Durability durability, unsigned seed,
                         int ack_fd) {
  try {
    auto r = Registry::open(journal, {.durability = durability});
    auto ack = [&](const std::string& line) {
      const std::string l = line + "\n";
      if (!write_all(ack_fd, l.data(), l.size())) ::_exit(3);
    };
    ack("R");
    std::mt19937 rng(seed);
    std::vector<std::string> tasks;
    for (long n = 0;; ++n) {
      const std::string name = "s" + std::to_string(seed) + "n" + std::to_string(n);
      const unsigned op = tasks.empty() ? 0 : rng() % 6;
      if (op == 0) {
        auto t = r.create({.session_id = kSession,
                           .kind = "crash",
                           .display_name = name,
                           .spec = "{\"n\":" + std::to_string(n) + "}"});
        ack("C " + t.id);
        tasks.push_back(t.id);
        continue;
      }
      const std::string& id = tasks[rng() % tasks.size()];
      if (op <= 2) {
        // A larger update now and then, so that commits span several pages.
        SessionTaskUpdate u{.state = SessionTaskState::Running,
                            .append_artifact = TaskArtifact{.name = name, .type = "log"}};
        if (rng() % 8 == 0) u.state_detail = std::string(6000 + rng() % 6000, 'x');
        r.update(kSession, id, u);
        ack("A " + id + " " + name);
      } else if (op <= 4) {
        auto m = r.record_message(kSession, id, NewTaskMessage::outbound_text(name));
        ack("M " + id + " " + m.id);
      } else {
        r.request_cancel(kSession, id);
        ack("X " + id);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crash writer: %s\n", e.what());
  }
  ::_exit(2);
}

struct Acks {
  std::vector<std::string> created;
  std::vector<std::pair<std::string, std::string>> artifacts;
  std::vector<std::pair<std::string, std::string>> messages;
  std::set<std::string> cancels;
  bool ready = false;
  std::uint64_t writes() const {
    return created.size() + artifacts.size() + messages.size() + cancel_count;
  }
  std::uint64_t cancel_count = 0;

  void add(const std::string& line) {
    std::istringstream in(line);
    std::string kind, a, b;
    in >> kind >> a >> b;
    if (kind == "R") ready = true;
    if (kind == "C") created.push_back(a);
    if (kind == "A") artifacts.emplace_back(a, b);
    if (kind == "M") messages.emplace_back(a, b);
    if (kind == "X") cancels.insert(a), ++cancel_count;
  }
};

// Reads complete lines from `fd` until `deadline` (or EOF, or the ready line when
// `until_ready`); returns false on EOF.
bool read_lines_until(int fd, std::string& buffer, Acks& acks,
                      std::chrono::steady_clock::time_point deadline, bool until_ready = false) {
  for (;;) {
    if (until_ready && acks.ready) return true;
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return true;
    pollfd pfd{.fd = fd, .events = POLLIN, .revents = 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
    char chunk[4096];
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<std::size_t>(n));
    for (std::size_t pos; (pos = buffer.find('\n')) != std::string::npos;) {
      acks.add(buffer.substr(0, pos));
      buffer.erase(0, pos + 1);
    }
  }
}

struct Totals {
  int kills = 0;
  int killed_before_ready = 0;
  std::uint64_t acknowledged = 0;
  std::uint64_t in_flight_committed = 0;
};

// Everything acknowledged so far on one file, checked after every kill.
struct Expected {
  std::set<std::string> tasks;
  std::map<std::string, std::multiset<std::string>> artifacts;
  std::map<std::string, std::set<std::string>> messages;
  std::set<std::string> cancels;
  std::uint64_t writes = 0;  // acknowledged calls, plus the parent's own writes
};

void run_kills(Durability durability, int kills, Totals& totals) {
  std::mt19937 rng(durability == Durability::Full ? 17u : 29u);
  std::uniform_int_distribution<int> delay_ms(2, 30);
  std::optional<TempDir> dir;
  fs::path journal;
  Expected expected;
  std::uint64_t events_before = 0;

  for (int k = 0; k < kills; ++k) {
    if (k % kFileRounds == 0) {
      dir.emplace("taskjournal-crash");
      journal = dir->path() / "crash.db";
      expected = Expected{};
      events_before = 0;
    }
    Pipe pipe;
    const unsigned seed = static_cast<unsigned>(k + 1);
    const pid_t pid = fork_child([&] {
      pipe.close_read();
      writer(journal, durability, seed, pipe.write_end());
    });
    pipe.close_write();
    Acks acks;
    std::string buffer;
    bool alive = true;
    // Odd rounds start the clock once the journal is open, so that most of their kills land in
    // writes; even rounds start it at fork, so that some land in the open (WAL recovery).
    if (k % 2 == 1) {
      alive = read_lines_until(pipe.read_end(), buffer, acks,
                               std::chrono::steady_clock::now() + std::chrono::seconds(10), true);
    }
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms(rng));
    if (alive) alive = read_lines_until(pipe.read_end(), buffer, acks, deadline);
    ::kill(pid, SIGKILL);
    const int status = wait_child(pid);
    ASSERT_TRUE(alive) << "the writer ended by itself, status " << status;
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
    // What was already in the pipe when the child died was acknowledged too.
    read_lines_until(pipe.read_end(), buffer, acks,
                     std::chrono::steady_clock::now() + std::chrono::seconds(5));
    ++totals.kills;
    if (!acks.ready) ++totals.killed_before_ready;

    for (const auto& id : acks.created) expected.tasks.insert(id);
    for (const auto& [id, name] : acks.artifacts) expected.artifacts[id].insert(name);
    for (const auto& [id, mid] : acks.messages) expected.messages[id].insert(mid);
    expected.cancels.insert(acks.cancels.begin(), acks.cancels.end());
    expected.writes += acks.writes();
    totals.acknowledged += acks.writes();

    // Reopen: this folds and verifies every event; it throws on a partial or corrupt one.
    std::optional<Registry> r;
    try {
      r.emplace(Registry::open(journal));
    } catch (const Error& e) {
      FAIL() << "kill " << k << ": reopening failed: " << e.what();
    }
    ASSERT_TRUE(sequence_is_gap_free(journal)) << "kill " << k;
    const std::uint64_t events = r->last_seq();
    // Every acknowledged call is there; at most the call in flight committed unacknowledged.
    ASSERT_GE(events - events_before, acks.writes()) << "kill " << k << ": acknowledged calls lost";
    ASSERT_LE(events - events_before, acks.writes() + 1) << "kill " << k;
    totals.in_flight_committed += events - events_before - acks.writes();
    expected.writes += events - events_before - acks.writes();

    const auto stored = r->list(kSession);
    std::map<std::string, const SessionTask*> by_id;
    for (const auto& t : stored) by_id[t.id] = &t;
    for (const auto& id : expected.tasks) {
      ASSERT_EQ(by_id.count(id), 1u) << "kill " << k << ": acknowledged task " << id << " lost";
    }
    for (const auto& [id, names] : expected.artifacts) {
      ASSERT_EQ(by_id.count(id), 1u);
      std::multiset<std::string> have;
      for (const auto& a : by_id[id]->artifacts) have.insert(a.name);
      for (const auto& name : names) {
        ASSERT_EQ(have.count(name), 1u) << "kill " << k << ": update " << name << " lost";
      }
    }
    for (const auto& [id, ids] : expected.messages) {
      std::set<std::string> have;
      for (const auto& m : r->list_messages(kSession, id)) have.insert(m.id);
      for (const auto& mid : ids) {
        ASSERT_EQ(have.count(mid), 1u) << "kill " << k << ": message " << mid << " lost";
      }
    }
    for (const auto& id : expected.cancels) {
      ASSERT_TRUE(by_id[id]->cancel_requested_at) << "kill " << k << ": cancel of " << id;
    }
    for (const auto& t : stored) ASSERT_EQ(lifecycle_violations(t), "");

    // The next write succeeds and is there after another reopen.
    auto t = r->create({.session_id = kSession, .kind = "after-crash", .display_name = "next"});
    expected.tasks.insert(t.id);
    r.reset();
    events_before = events + 1;
    ASSERT_EQ(Registry::open(journal).last_seq(), events_before) << "kill " << k;
  }
}

void report(const char* mode, const Totals& t) {
  std::printf(
      "crash (%s): %d kills survived (%d before the journal was open), %llu acknowledged "
      "calls all present, %llu in-flight calls found committed\n",
      mode, t.kills, t.killed_before_ready, static_cast<unsigned long long>(t.acknowledged),
      static_cast<unsigned long long>(t.in_flight_committed));
}

}  // namespace

TEST(CrashSigkill, DurabilityFullLosesNoAcknowledgedCall) {
  Totals totals;
  run_kills(Durability::Full, 200, totals);
  report("full", totals);
  EXPECT_EQ(totals.kills, 200);
  EXPECT_GT(totals.acknowledged, 0u);
}

TEST(CrashSigkill, DurabilityNormalLosesNoAcknowledgedCallToAProcessCrash) {
  Totals totals;
  run_kills(Durability::Normal, 100, totals);
  report("normal", totals);
  EXPECT_EQ(totals.kills, 100);
  EXPECT_GT(totals.acknowledged, 0u);
}
