// What taskjournal-bench (SQLite) and taskjournal-bench-pg (PostgreSQL) share: the median and
// percentiles of a round's figures, the wall clock, the load average, the generated blocks of
// docs/benchmarks.md, and workload (a), one task's lifecycle of 17 calls.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "taskjournal/taskjournal.hpp"

namespace bench {

/// The median (the upper one of an even count); 0 for none.
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

/// The `p`-th percentile (0 < p ≤ 100) by nearest rank: the smallest value that at least p % of
/// the values do not exceed (p = 50 gives the lower median, p = 100 the maximum); 0 for none.
inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * double(v.size())));
  return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

/// "1.32 / 1.04 / 0.76": the 1, 5 and 15 minute load averages.
inline std::string load_average() {
  std::ifstream in("/proc/loadavg");
  double one = 0, five = 0, fifteen = 0;
  in >> one >> five >> fifteen;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f / %.2f / %.2f", one, five, fifteen);
  return buf;
}

/// Replaces the text from the line `begin` to the line `end` in `out` with those markers around
/// `block`, keeping the rest of the file. When the markers are missing, appends the marked block
/// at the end, after `heading` unless the file has that line already.
inline void write_block(const std::filesystem::path& out, const std::string& begin,
                        const std::string& end, const std::string& block,
                        const std::string& heading) {
  std::string text;
  if (std::ifstream in(out); in) {
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  const std::string wrapped = begin + "\n\n" + block + "\n" + end;
  const auto from = text.find(begin);
  const auto to = text.find(end);
  if (from != std::string::npos && to != std::string::npos && to > from) {
    text.replace(from, to + end.size() - from, wrapped);
  } else {
    if (!text.empty() && text.back() != '\n') text += "\n";
    if (!text.empty()) text += "\n";
    if (text.find("\n" + heading + "\n") == std::string::npos) text += heading + "\n\n";
    text += wrapped + "\n";
  }
  if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
  std::ofstream(out) << text;
}

inline taskjournal::Timestamp wall_now() {
  return std::chrono::floor<std::chrono::microseconds>(std::chrono::system_clock::now());
}

inline constexpr int kCallsPerLifecycle = 17;

/// Task i's lifecycle (create, 10 progress updates, an input request answered, 3 outbound
/// messages, success) through `r`: a Registry or a Batch.
template <class Registry>
void lifecycle(Registry& r, int i) {
  namespace tj = taskjournal;
  const std::string session = "sess_" + std::to_string(i % 10);
  const std::string id = "task_bench_" + std::to_string(i);
  r.create(tj::CreateSessionTask{.session_id = session,
                                 .id = id,
                                 .kind = "subagent",
                                 .display_name = "Bench task " + std::to_string(i),
                                 .spec = R"({"prompt":"summarise the repository","depth":2})"});
  for (std::uint64_t k = 1; k <= 10; ++k) {
    tj::SessionTaskUpdate u{
        .progress = tj::TaskProgress{.current = k, .total = 10, .unit = "steps"},
        .worker_id = "worker-1",
        .heartbeat_at = wall_now()};
    if (k == 1) u.state = tj::SessionTaskState::Running;
    r.update(session, id, u);
  }
  const std::string question = "q_" + std::to_string(i);
  r.update(session, id,
           {.input_request = tj::TaskInputRequest{.id = question, .prompt = "Which branch?"}});
  auto answer = tj::NewTaskMessage::inbound_text("main");
  answer.in_reply_to = question;
  r.record_message(session, id, answer);
  for (int k = 1; k <= 3; ++k) {
    r.record_message(session, id,
                     tj::NewTaskMessage::outbound_text("finished step " + std::to_string(k)));
  }
  r.update(
      session, id,
      {.state = tj::SessionTaskState::Succeeded, .summary = "done", .result_path = "/tmp/out.md"});
}

}  // namespace bench
