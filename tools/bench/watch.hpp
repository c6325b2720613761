// Notification latency (issue #12), shared by taskjournal-bench (SQLite) and taskjournal-bench-pg
// (PostgreSQL): how long after an update() returns in another process the registry watching the
// journal (Options::watch) delivers its on_event, and Registry::wait returns.
//
// The writer is a fresh copy of the benchmark's own program (posix_spawn of /proc/self/exe with
// kChildFlag), which opens its own Registry on the same journal. It takes a steady_clock
// timestamp (CLOCK_MONOTONIC, one clock for every process of the host) just before and just
// after each update() and sends them to the parent through a pipe when it is done; the parent
// takes one when its slot runs, or when wait() returns.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "taskjournal/taskjournal.hpp"

namespace bench::watch {

/// Opens a registry on the journal `target` names (a SQLite path, a PostgreSQL conninfo).
using Opener =
    std::function<taskjournal::Registry(const std::string& target, taskjournal::Options options)>;

/// argv[1] of the writer process.
inline constexpr const char* kChildFlag = "--watch-child";

/// The writer process's main: argv = {exe, kChildFlag, "notify"|"wait", target, count,
/// spacing µs}. Returns its exit status.
int child_main(int argc, char** argv, const Opener& open);

/// One measurement: a latency per update, in ms, and what the check of the deliveries found.
struct Latencies {
  std::string label;
  std::vector<double> ms;            // delivery (or wait() returning) − the update()'s return
  std::vector<double> from_call_ms;  // delivery − the update() call's start
  std::vector<double> call_ms;       // the writer's update() call, start to return
  std::size_t expected = 0;
  bool ok = false;       // every update delivered exactly once, in journal order
  std::string check;     // what the check found, in words
  double setup_ms = -1;  // wait: the first wait() of the registry (starting its detection)
};

/// `updates` progress updates of one running task by the writer process, one every `spacing`
/// (a sleep after each return), watched by a registry opened here with Options::watch = `watch`
/// whose on_event slot takes the delivery time. `target` names a fresh journal.
Latencies notifications(const Opener& open, const std::string& target,
                        std::chrono::milliseconds watch, int updates,
                        std::chrono::microseconds spacing, std::string label);

/// `repetitions` tasks, each finished by the writer process (a random 5–15 ms after the parent
/// tells it to) while a thread here is in Registry::wait for it on a registry without
/// Options::watch. `target` names a fresh journal.
Latencies waits(const Opener& open, const std::string& target, int repetitions, std::string label);

/// What the two measurements do, for the report: "on_event: … started its change detection"
/// (the caller says how that detection starts on its engine).
std::string workload_text(int updates, int wait_repetitions);

/// The Markdown table of `rows`, one line each, with its header.
std::vector<std::string> table(const std::vector<Latencies>& rows);

}  // namespace bench::watch
