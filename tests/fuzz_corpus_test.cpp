// The decoder fuzzer's corpus as regression inputs (issue 5, item 3), run in every build, with or
// without clang: every file of tests/fuzz/corpus/ — the seeds (valid payloads) and each input the
// fuzzer ever failed on — goes through the same checks as in tests/fuzz/decode_fuzzer.cpp.
//
// The seeds are written by this test (run from the source directory):
//   TASKJOURNAL_WRITE_FUZZ_SEEDS=tests/fuzz/corpus build/tests/fuzz_corpus_test
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "events/event.hpp"
#include "fuzz/decode_one.hpp"

namespace fs = std::filesystem;
using namespace taskjournal;

namespace {

const fs::path kCorpus = fs::path(TASKJOURNAL_SOURCE_DIR) / "tests/fuzz/corpus";

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Valid payloads of every type, from empty to every field set.
std::vector<std::pair<std::string, events::Payload>> seeds() {
  using namespace std::chrono;
  const Timestamp t{microseconds{1767225600123456}};
  std::vector<std::pair<std::string, events::Payload>> out;
  out.emplace_back("created-minimal",
                   events::TaskCreated{{.session_id = "session", .id = "task", .kind = "k"}});
  out.emplace_back(
      "created-full",
      events::TaskCreated{
          {.session_id = "session",
           .id = "task",
           .kind = "subagent",
           .display_name = "Research \xc3\xa9",
           .spec = R"({"push_configs":[{"url":"u","secret":"s"}],"n":[1,2.5,null]})",
           .state = SessionTaskState::AwaitingInput,
           .links = {.child_session_id = "c", .remote_task_id = "r", .resource_ids = {"r1", "r2"}},
           .wake_policy = TaskWakePolicy::OnActivity}});
  out.emplace_back("updated-empty", events::TaskUpdated{});
  out.emplace_back(
      "updated-full",
      events::TaskUpdated{
          {.state = SessionTaskState::Failed,
           .state_detail = "detail",
           .progress =
               TaskProgress{.current = 1, .total = UINT64_MAX, .unit = "files", .label = "l"},
           .input_request =
               TaskInputRequest{.id = "q", .prompt = "?", .expected = R"({"type":"string"})"},
           .summary = "s",
           .result_path = "/r",
           .artifacts =
               std::vector<TaskArtifact>{{.name = "a", .type = "t", .path = "/p", .url = "u"},
                                         {.name = "b", .type = "t"}},
           .append_artifact = TaskArtifact{.name = "c", .type = "log"},
           .error = TaskError{.kind = "timeout", .message = "m"},
           .links = TaskLinks{.resource_ids = {"x"}},
           .worker_id = "w",
           .heartbeat_at = t,
           .expected_attempt = -7,
           .increment_attempt = true}});
  out.emplace_back("cancel", events::CancelRequested{});
  out.emplace_back("message-text",
                   events::MessageRecorded{{.id = "tmsg_1",
                                            .task_id = "task",
                                            .direction = TaskMessageDirection::Outbound,
                                            .content = {TextPart{"hello"}},
                                            .created_at = t}});
  out.emplace_back("message-parts",
                   events::MessageRecorded{{.id = "tmsg_2",
                                            .task_id = "task",
                                            .direction = TaskMessageDirection::Inbound,
                                            .content = {TextPart{""}, DataPart{R"({"a":[true]})"},
                                                        TextPart{"\xf0\x9f\x99\x82"}},
                                            .in_reply_to = "q",
                                            .created_at = t}});
  return out;
}

std::string fuzz_input(const events::Payload& p) {
  std::string input(1, static_cast<char>(p.index()));
  input += static_cast<char>(events::kPayloadVersion);
  return input + events::encode(p);
}

}  // namespace

TEST(FuzzCorpus, SeedsAreValidPayloadsOfEveryType) {
  if (const char* dir = std::getenv("TASKJOURNAL_WRITE_FUZZ_SEEDS")) {
    for (const auto& [name, payload] : seeds()) {
      std::ofstream(fs::path(dir) / ("seed-" + name), std::ios::binary) << fuzz_input(payload);
    }
  }
  for (const auto& [name, payload] : seeds()) {
    const fs::path file = kCorpus / ("seed-" + name);
    ASSERT_TRUE(fs::exists(file)) << file;
    EXPECT_EQ(read_file(file), fuzz_input(payload)) << file << " is not the current encoding";
    const std::string input = read_file(file);
    const auto decoded =
        events::decode(fuzz::kTypes[static_cast<unsigned char>(input[0])], events::kPayloadVersion,
                       std::string_view(input).substr(2), "session", "task",
                       Timestamp{std::chrono::microseconds{1767225600123456}});
    EXPECT_EQ(decoded, payload) << file;
  }
}

TEST(FuzzCorpus, EveryCommittedInputDecodesSafely) {
  int files = 0;
  for (const auto& entry : fs::directory_iterator(kCorpus)) {
    if (!entry.is_regular_file()) continue;
    ++files;
    EXPECT_TRUE(fuzz::decode_one(read_file(entry.path()))) << entry.path();
  }
  EXPECT_GE(files, static_cast<int>(seeds().size()));
}
