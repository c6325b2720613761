// What taskjournal-bench (SQLite) and taskjournal-bench-pg (PostgreSQL) share: the median of a
// round's figures, the wall clock, and workload (a), one task's lifecycle of 17 calls.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "taskjournal/taskjournal.hpp"

namespace bench {

/// The median (the upper one of an even count); 0 for none.
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
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
