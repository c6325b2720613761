// replay_make_journal N FILE: writes a healthy journal of N events to a new FILE, fast, for
// measuring taskjournal-replay verify on big journals (ctest runs it with a small N).
//
// The rows are what a registry would write for tasks of 100 sessions going through a typical
// lifecycle (create, running, progress, an outbound message, an input request answered by an
// inbound message, success, a late update dropped by terminal finality): encoded with
// events::encode and hash-chained, inserted in one transaction instead of one per event. The
// events are built as the registry builds them, so the journal verifies and opens.
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "events/event.hpp"
#include "support/fake_clock.hpp"
#include "support/raw_journal.hpp"
#include "taskjournal/taskjournal.hpp"

namespace {

using namespace taskjournal;

std::string hex32(std::uint64_t n) {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%032llx", static_cast<unsigned long long>(n));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t n = 0;
  if (argc != 3 ||
      std::from_chars(argv[1], argv[1] + std::string_view(argv[1]).size(), n).ec != std::errc{}) {
    std::fprintf(stderr, "usage: replay_make_journal N FILE\n");
    return 2;
  }
  const std::string path = argv[2];
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
  { auto registry = Registry::open(path); }  // the schema

  taskjournal::testing::RawJournal raw(path);
  raw.exec("PRAGMA synchronous=OFF");
  raw.exec("BEGIN");
  Timestamp now = taskjournal::testing::fake_clock_start();
  std::string prev(32, '\0');
  std::uint64_t seq = 0;
  std::uint64_t message = 0;
  auto put = [&](const std::string& session, const std::string& task, events::Payload payload) {
    if (seq == n) return;
    ++seq;
    now += std::chrono::milliseconds(1);
    if (auto* m = std::get_if<events::MessageRecorded>(&payload)) {
      m->message.id = "tmsg_" + hex32(++message);
      m->message.task_id = task;
      m->message.created_at = now;
    }
    const std::string type(events::type_name(payload));
    const std::string bytes = events::encode(payload);
    const std::int64_t at = now.time_since_epoch().count();
    std::string hash = taskjournal::testing::journal_hash(prev, seq, type, events::kPayloadVersion,
                                                          at, session, task, bytes);
    raw.insert(seq, type, events::kPayloadVersion, at, session, task, bytes, hash);
    prev = std::move(hash);
  };

  for (std::uint64_t t = 0; seq < n; ++t) {
    const std::string session = "sess_" + std::to_string(t % 100);
    const std::string task = "task_" + hex32(t);
    put(session, task,
        events::TaskCreated{{.session_id = session,
                             .id = task,
                             .kind = t % 3 == 0 ? "subagent" : "background_tool",
                             .display_name = "Task " + std::to_string(t),
                             .spec = R"({"prompt":"do the thing","push_configs":[{"secret":"x"}]})",
                             .wake_policy = TaskWakePolicy::OnTerminal}});
    put(session, task,
        events::TaskUpdated{{.state = SessionTaskState::Running, .worker_id = "worker-1"}});
    for (std::uint64_t step = 1; step <= 3; ++step) {
      put(session, task,
          events::TaskUpdated{
              {.progress = TaskProgress{.current = step, .total = 3, .unit = "steps"},
               .heartbeat_at = now}});
    }
    put(session, task,
        events::MessageRecorded{
            {.direction = TaskMessageDirection::Outbound, .content = {TextPart{"halfway there"}}}});
    put(session, task,
        events::TaskUpdated{{.input_request = TaskInputRequest{.id = "q", .prompt = "Go on?"}}});
    put(session, task,
        events::MessageRecorded{{.direction = TaskMessageDirection::Inbound,
                                 .content = {TextPart{"yes"}},
                                 .in_reply_to = "q"}});
    put(session, task,
        events::TaskUpdated{{.state = SessionTaskState::Succeeded, .summary = "done"}});
    put(session, task, events::TaskUpdated{{.state = SessionTaskState::Running}});  // dropped
  }
  raw.exec("COMMIT");
  std::printf("%llu events\n", static_cast<unsigned long long>(seq));
  return 0;
}
