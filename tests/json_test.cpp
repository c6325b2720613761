// The public JSON form (CONTRACT §6), RFC 3339 timestamps, and the JSON of event payloads.
#include "taskjournal/json.hpp"

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "events/event.hpp"
#include "events/validate.hpp"
#include "taskjournal/error.hpp"

namespace taskjournal {
namespace {

using namespace std::chrono_literals;
using std::chrono::sys_days;
using std::chrono::year;

const Timestamp kT0 = Timestamp{sys_days{year{2026} / 11 / 26}} + 16h + 50min + 53s + 123us;

SessionTask minimal_task() {
  SessionTask t;
  t.id = "task_1";
  t.session_id = "sess_1";
  t.kind = "subagent";
  t.display_name = "Do it";
  t.created_at = kT0;
  t.updated_at = kT0;
  return t;
}

SessionTask full_task() {
  return SessionTask{
      .id = "task_1",
      .session_id = "sess_1",
      .kind = "subagent",
      .display_name = "Write \"docs\"",
      .spec = R"({"model":"m","n":1.50})",
      .state = SessionTaskState::AwaitingInput,
      .state_detail = "waiting",
      .progress = TaskProgress{.current = 3, .total = 10, .unit = "files", .label = "copy"},
      .input_request =
          TaskInputRequest{
              .id = "req_1", .prompt = "Which one?", .expected = R"({"type":"string"})"},
      .cancel_requested_at = kT0 + 1s,
      .summary = "sum",
      .result_path = "/out",
      .artifacts = {TaskArtifact{.name = "a", .type = "file", .path = "/a", .url = "https://x/a"},
                    TaskArtifact{.name = "b", .type = "link"}},
      .error = TaskError{.kind = "timeout", .message = "slow"},
      .attempt = 2,
      .worker_id = "w1",
      .heartbeat_at = kT0 + 2s,
      .links =
          TaskLinks{
              .child_session_id = "sess_2", .remote_task_id = "r_1", .resource_ids = {"x", "y"}},
      .wake_policy = TaskWakePolicy::OnActivity,
      .created_at = kT0,
      .started_at = kT0 + 1us,
      .finished_at = kT0 + 3s,
      .updated_at = kT0 + 4s,
  };
}

std::string spec_json_of(const std::string& spec) {
  auto t = minimal_task();
  t.spec = spec;
  const auto json = to_json(t);
  const auto begin = json.find(R"("spec":)") + 7;
  const auto end = json.find(R"(,"state":)");
  return json.substr(begin, end - begin);
}

// ---- tasks --------------------------------------------------------------------------------------

TEST(TaskJson, MinimalTaskOmitsEveryEmptyField) {
  EXPECT_EQ(
      to_json(minimal_task()),
      R"({"id":"task_1","session_id":"sess_1","kind":"subagent","display_name":"Do it",)"
      R"("spec":{},"state":"queued","attempt":1,"wake_policy":"silent",)"
      R"("created_at":"2026-11-26T16:50:53.000123Z","updated_at":"2026-11-26T16:50:53.000123Z"})");
}

TEST(TaskJson, FullTaskHasEveryFieldInDeclarationOrder) {
  EXPECT_EQ(
      to_json(full_task()),
      R"({"id":"task_1","session_id":"sess_1","kind":"subagent","display_name":"Write \"docs\"",)"
      R"("spec":{"model":"m","n":1.50},"state":"awaiting_input","state_detail":"waiting",)"
      R"("progress":{"current":3,"total":10,"unit":"files","label":"copy"},)"
      R"("input_request":{"id":"req_1","prompt":"Which one?","expected":{"type":"string"}},)"
      R"("cancel_requested_at":"2026-11-26T16:50:54.000123Z","summary":"sum","result_path":"/out",)"
      R"("artifacts":[{"name":"a","type":"file","path":"/a","url":"https://x/a"},)"
      R"({"name":"b","type":"link"}],"error":{"kind":"timeout","message":"slow"},"attempt":2,)"
      R"("worker_id":"w1","heartbeat_at":"2026-11-26T16:50:55.000123Z",)"
      R"("links":{"child_session_id":"sess_2","remote_task_id":"r_1","resource_ids":["x","y"]},)"
      R"("wake_policy":"on_activity","created_at":"2026-11-26T16:50:53.000123Z",)"
      R"("started_at":"2026-11-26T16:50:53.000124Z","finished_at":"2026-11-26T16:50:56.000123Z",)"
      R"("updated_at":"2026-11-26T16:50:57.000123Z"})");
}

TEST(TaskJson, StatesAndPoliciesAreSnakeCase) {
  auto t = minimal_task();
  t.state = SessionTaskState::Canceled;
  t.wake_policy = TaskWakePolicy::OnTerminal;
  const auto json = to_json(t);
  EXPECT_NE(json.find(R"("state":"canceled")"), std::string::npos);
  EXPECT_NE(json.find(R"("wake_policy":"on_terminal")"), std::string::npos);
}

TEST(TaskJson, LinksShowOnlyTheirPresentParts) {
  auto t = minimal_task();
  t.links.resource_ids = {"r"};
  EXPECT_NE(to_json(t).find(R"("attempt":1,"links":{"resource_ids":["r"]},"wake_policy")"),
            std::string::npos);
  t.links = TaskLinks{.remote_task_id = "x"};
  EXPECT_NE(to_json(t).find(R"("links":{"remote_task_id":"x"},)"), std::string::npos);
  t.links = TaskLinks{};
  EXPECT_EQ(to_json(t).find("links"), std::string::npos);
}

TEST(TaskJson, EmptyProgressIsAnEmptyObject) {
  auto t = minimal_task();
  t.progress = TaskProgress{};
  EXPECT_NE(to_json(t).find(R"("state":"queued","progress":{},"attempt")"), std::string::npos);
}

TEST(TaskJson, StringsAreEscaped) {
  auto t = minimal_task();
  t.display_name = "a\"b\\c\n\t\x01\x1f/é😀";
  EXPECT_NE(to_json(t).find(R"("display_name":"a\"b\\c\n\t\u0001\u001F/é😀")"), std::string::npos)
      << to_json(t);
}

TEST(TaskJson, SpecIsEmbeddedCompactWithNumbersVerbatim) {
  EXPECT_EQ(spec_json_of(" { \"a\" : [ 1 , 2.50, -0, 1E+2 ] ,\n \"b\":null } "),
            R"({"a":[1,2.50,-0,1E+2],"b":null})");
  EXPECT_EQ(spec_json_of("\"text\""), R"("text")");
  EXPECT_EQ(spec_json_of(R"("\u00e9\ud83d\ude00\/")"), R"("é😀/")");
  EXPECT_EQ(spec_json_of("12345678901234567890123"), "12345678901234567890123");
}

TEST(TaskJson, DeeplyNestedSpecIsWrittenWithoutRecursion) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_EQ(spec_json_of(deep), deep);
}

TEST(TaskJson, SpecThatIsNotJsonIsCorrupt) {
  for (const std::string spec : {"{", "", "{} {}", "NaN", "{\"a\":\"\xff\"}"}) {
    auto t = minimal_task();
    t.spec = spec;
    try {
      to_json(t);
      ADD_FAILURE() << "accepted " << spec;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::Corrupt);
      EXPECT_STREQ(e.what(), "task task_1: spec is not valid JSON");
    }
  }
}

TEST(TaskJson, SpecWithEmbeddedNulAfterTheValueIsCorrupt) {
  auto t = minimal_task();
  t.spec = std::string("{}\0{}", 5);
  EXPECT_THROW(to_json(t), Error);
}

TEST(TaskJson, StringThatIsNotUtf8IsCorrupt) {
  auto t = minimal_task();
  t.display_name = "\xc0\x80";
  try {
    to_json(t);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Corrupt);
    EXPECT_STREQ(e.what(), "task task_1: display_name is not valid UTF-8");
  }
}

TEST(TaskJson, ExpectedThatIsNotJsonIsCorrupt) {
  auto t = minimal_task();
  t.input_request = TaskInputRequest{.id = "r", .prompt = "p", .expected = "[1,]"};
  try {
    to_json(t);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Corrupt);
    EXPECT_STREQ(e.what(), "task task_1: expected is not valid JSON");
  }
}

// ---- redaction ----------------------------------------------------------------------------------

TEST(Redaction, SecretIsReplacedByHasSecretInPlace) {
  EXPECT_EQ(spec_json_of(R"({"push_configs":[{"url":"u","secret":"s3cr3t","x":1},{"url":"v"}],)"
                         R"("other":{"secret":"keep"},"secret":"top"})"),
            R"({"push_configs":[{"url":"u","has_secret":true,"x":1},{"url":"v"}],)"
            R"("other":{"secret":"keep"},"secret":"top"})");
}

TEST(Redaction, ObjectWithoutSecretIsUntouched) {
  EXPECT_EQ(spec_json_of(R"({"push_configs":[{"url":"v","has_secret":false}]})"),
            R"({"push_configs":[{"url":"v","has_secret":false}]})");
}

TEST(Redaction, ExistingHasSecretIsDroppedWhenASecretIsPresent) {
  EXPECT_EQ(spec_json_of(R"({"push_configs":[{"has_secret":false,"a":1,"secret":"s"}]})"),
            R"({"push_configs":[{"a":1,"has_secret":true}]})");
  EXPECT_EQ(spec_json_of(R"({"push_configs":[{"secret":"s","has_secret":{"x":[1]},"a":1}]})"),
            R"({"push_configs":[{"has_secret":true,"a":1}]})");
}

TEST(Redaction, SecretOfAnyTypeIsHidden) {
  EXPECT_EQ(spec_json_of(R"({"push_configs":[{"secret":{"k":[1,{"secret":2}]},"n":2},)"
                         R"({"secret":null},{"secret":[]},{"secret":false}]})"),
            R"({"push_configs":[{"has_secret":true,"n":2},{"has_secret":true},)"
            R"({"has_secret":true},{"has_secret":true}]})");
}

TEST(Redaction, DuplicateSecretKeysGiveOneHasSecret) {
  EXPECT_EQ(spec_json_of(R"({"push_configs":[{"secret":"a","b":1,"secret":"c"}]})"),
            R"({"push_configs":[{"has_secret":true,"b":1}]})");
}

TEST(Redaction, OnlyObjectsDirectlyInTheArrayAreRedacted) {
  EXPECT_EQ(spec_json_of(R"({"push_configs":[1,"secret",[{"secret":"s"}],{"secret":"t"}]})"),
            R"({"push_configs":[1,"secret",[{"secret":"s"}],{"has_secret":true}]})");
}

TEST(Redaction, PushConfigsThatIsNotAnArrayIsUntouched) {
  for (const std::string spec :
       {R"({"push_configs":{"secret":"s"}})", R"({"push_configs":"secret"})",
        R"({"push_configs":null,"x":[{"secret":"s"}]})",
        R"({"a":{"push_configs":[{"secret":"s"}]}})", R"([{"push_configs":[{"secret":"s"}]}])",
        R"({"Push_configs":[{"secret":"s"}]})", R"({"push_configs":[{"Secret":"s"}]})"}) {
    EXPECT_EQ(spec_json_of(spec), spec);
  }
}

TEST(Redaction, EscapedKeysAreRecognised) {
  EXPECT_EQ(spec_json_of(R"({"push\u005fconfigs":[{"s\u0065cret":"s"}]})"),
            R"({"push_configs":[{"has_secret":true}]})");
}

TEST(Redaction, EveryPushConfigsKeyIsRedacted) {
  EXPECT_EQ(spec_json_of(R"({"push_configs":[{"secret":1}],"x":0,"push_configs":[{"secret":2}]})"),
            R"({"push_configs":[{"has_secret":true}],"x":0,"push_configs":[{"has_secret":true}]})");
}

TEST(Redaction, StoredSpecKeepsTheSecret) {
  auto t = minimal_task();
  t.spec = R"({"push_configs":[{"secret":"s3cr3t"}]})";
  const auto copy = t;
  const auto json = to_json(t);
  EXPECT_EQ(json.find("s3cr3t"), std::string::npos);
  EXPECT_EQ(t, copy);
  EXPECT_EQ(t.spec, R"({"push_configs":[{"secret":"s3cr3t"}]})");
}

// ---- messages -----------------------------------------------------------------------------------

TEST(MessageJson, TextAndDataParts) {
  const TaskMessage m{
      .id = "tmsg_1",
      .task_id = "task_1",
      .direction = TaskMessageDirection::Outbound,
      .content = {TextPart{"hello"}, DataPart{R"( {"k": [true, null]} )"}},
      .in_reply_to = "req_1",
      .created_at = kT0,
  };
  EXPECT_EQ(to_json(m),
            R"({"id":"tmsg_1","task_id":"task_1","direction":"outbound","content":[)"
            R"({"type":"text","text":"hello"},{"type":"data","data":{"k":[true,null]}}],)"
            R"("in_reply_to":"req_1","created_at":"2026-11-26T16:50:53.000123Z"})");
}

TEST(MessageJson, WithoutReplyOrContent) {
  const TaskMessage m{.id = "tmsg_2", .task_id = "task_1", .created_at = Timestamp{}};
  EXPECT_EQ(to_json(m), R"({"id":"tmsg_2","task_id":"task_1","direction":"inbound","content":[],)"
                        R"("created_at":"1970-01-01T00:00:00.000000Z"})");
}

TEST(MessageJson, DataPartThatIsNotJsonIsCorrupt) {
  const TaskMessage m{.id = "tmsg_3", .content = {DataPart{"nope"}}};
  try {
    to_json(m);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Corrupt);
    EXPECT_STREQ(e.what(), "message tmsg_3: data is not valid JSON");
  }
}

// ---- timestamps ---------------------------------------------------------------------------------

TEST(Timestamps, FormatHasSixFractionalDigitsAndZ) {
  EXPECT_EQ(format_timestamp(kT0), "2026-11-26T16:50:53.000123Z");
  EXPECT_EQ(format_timestamp(Timestamp{}), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(format_timestamp(Timestamp{sys_days{year{2024} / 2 / 29}} + 23h + 59min + 59s),
            "2024-02-29T23:59:59.000000Z");
}

TEST(Timestamps, FormatBefore1970) {
  EXPECT_EQ(format_timestamp(Timestamp{-1us}), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(format_timestamp(Timestamp{-86'400'000'000us}), "1969-12-31T00:00:00.000000Z");
  EXPECT_EQ(format_timestamp(Timestamp{sys_days{year{1900} / 3 / 1}} - 1us),
            "1900-02-28T23:59:59.999999Z");
  EXPECT_EQ(format_timestamp(Timestamp{sys_days{year{1600} / 2 / 29}} + 1h + 2min + 3s + 4us),
            "1600-02-29T01:02:03.000004Z");
  EXPECT_EQ(format_timestamp(Timestamp{sys_days{year{0} / 1 / 1}}), "0000-01-01T00:00:00.000000Z");
}

TEST(Timestamps, YearsOutsideRfc3339UseTheExpandedForm) {
  EXPECT_EQ(format_timestamp(Timestamp{sys_days{year{0} / 1 / 1}} - 1us),
            "-0001-12-31T23:59:59.999999Z");
  EXPECT_EQ(format_timestamp(Timestamp{sys_days{year{9999} / 12 / 31}} + 86'399'999'999us),
            "9999-12-31T23:59:59.999999Z");
  EXPECT_EQ(format_timestamp(Timestamp{sys_days{year{10000} / 1 / 1}}),
            "+10000-01-01T00:00:00.000000Z");
  using Us = std::chrono::microseconds;
  EXPECT_EQ(format_timestamp(Timestamp{Us{std::numeric_limits<std::int64_t>::max()}}),
            "+294247-01-10T04:00:54.775807Z");
  EXPECT_EQ(format_timestamp(Timestamp{Us{std::numeric_limits<std::int64_t>::min()}}),
            "-290308-12-21T19:59:05.224192Z");
}

TEST(Timestamps, ParseAcceptsRfc3339Variants) {
  const std::pair<const char*, Timestamp> cases[] = {
      {"2026-11-26T16:50:53.000123Z", kT0},
      {"2026-11-26t16:50:53.000123z", kT0},
      {"2026-11-26 16:50:53.000123Z", kT0},
      {"2026-11-26T18:50:53.000123+02:00", kT0},
      {"2026-11-26T11:20:53.000123-05:30", kT0},
      {"2026-11-26T16:50:53.000123+00:00", kT0},
      {"2026-11-26T16:50:53.000123-00:00", kT0},
      {"2026-11-26T16:50:53.000123999Z", kT0},
      {"2026-11-26T16:50:53.0001239Z", kT0},
      {"2026-11-26T16:50:53Z", kT0 - 123us},
      {"2026-11-26T16:50:53.5Z", kT0 - 123us + 500ms},
      {"2026-11-27T06:50:53.000123+14:00", kT0},
      {"2026-11-26T04:30:53.000123-12:20", kT0},
  };
  for (const auto& [text, expected] : cases) {
    EXPECT_EQ(parse_timestamp(text), std::optional<Timestamp>(expected)) << text;
  }
}

TEST(Timestamps, ParseBefore1970AndAcrossDays) {
  EXPECT_EQ(parse_timestamp("1969-12-31T23:59:59.999999Z"), Timestamp{-1us});
  EXPECT_EQ(parse_timestamp("1970-01-01T00:30:00+01:00"), Timestamp{-30min});
  EXPECT_EQ(parse_timestamp("2025-12-31T23:30:00-01:00"),
            Timestamp{sys_days{year{2026} / 1 / 1}} + 30min);
  EXPECT_EQ(parse_timestamp("0000-01-01T00:00:00Z"), Timestamp{sys_days{year{0} / 1 / 1}});
  EXPECT_EQ(parse_timestamp("1900-02-28T23:59:59.999999Z"),
            Timestamp{sys_days{year{1900} / 3 / 1}} - 1us);
}

TEST(Timestamps, ParseChecksLeapDays) {
  EXPECT_TRUE(parse_timestamp("2024-02-29T00:00:00Z"));
  EXPECT_TRUE(parse_timestamp("2000-02-29T00:00:00Z"));
  EXPECT_TRUE(parse_timestamp("1600-02-29T00:00:00Z"));
  EXPECT_FALSE(parse_timestamp("2023-02-29T00:00:00Z"));
  EXPECT_FALSE(parse_timestamp("1900-02-29T00:00:00Z"));
  EXPECT_FALSE(parse_timestamp("2024-02-30T00:00:00Z"));
}

TEST(Timestamps, ParseRejectsMalformedText) {
  for (const char* text : {
           "",
           "2026-11-26",
           "2026-11-26T16:50:53",              // no offset
           "2026-11-26T16:50Z",                // no seconds
           "2026-11-26T16:50:53.Z",            // '.' without digits
           "2026-11-26T16:50:53.1234567890Z",  // ten fractional digits
           "2026-11-26T16:50:53,5Z",
           "2026-13-01T00:00:00Z",
           "2026-00-01T00:00:00Z",
           "2026-01-00T00:00:00Z",
           "2026-04-31T00:00:00Z",
           "2026-01-32T00:00:00Z",
           "2026-11-26T24:00:00Z",
           "2026-11-26T23:60:00Z",
           "2026-11-26T23:59:60Z",  // leap seconds are rejected
           "2026-11-26T16:50:53+24:00",
           "2026-11-26T16:50:53+05:60",
           "2026-11-26T16:50:53+0530",
           "2026-11-26T16:50:53+05",
           "2026-11-26T16:50:53 Z",
           "2026-11-26T16:50:53Z ",
           " 2026-11-26T16:50:53Z",
           "2026-11-26T16:50:53ZZ",
           "2026-11-26X16:50:53Z",
           "2026/11/26T16:50:53Z",
           "26-11-26T16:50:53Z",
           "+2026-11-26T16:50:53Z",
           "-0001-01-01T00:00:00Z",
           "2026-1-26T16:50:53Z",
           "2026-11-26T6:50:53Z",
           "2026-11-26T16:50:5aZ",
           "２０２６-11-26T16:50:53Z",
       }) {
    EXPECT_EQ(parse_timestamp(text), std::nullopt) << text;
  }
}

TEST(Timestamps, FormatThenParseIsIdentity) {
  for (const Timestamp t :
       {kT0, Timestamp{}, Timestamp{-1us}, Timestamp{sys_days{year{1} / 1 / 1}} + 1us,
        Timestamp{sys_days{year{9999} / 12 / 31}} + 86'399'999'999us}) {
    EXPECT_EQ(parse_timestamp(format_timestamp(t)), t) << format_timestamp(t);
  }
}

// ---- payloads -----------------------------------------------------------------------------------

TEST(PayloadJson, TaskCreated) {
  events::TaskCreated p;
  p.input = CreateSessionTask{
      .session_id = "sess_1",
      .id = "task_1",
      .kind = "subagent",
      .display_name = "Résumé",
      .spec = R"({"prompt":"hi"})",
      .state = SessionTaskState::Running,
      .links = TaskLinks{.child_session_id = "c", .remote_task_id = "r", .resource_ids = {"x"}},
      .wake_policy = TaskWakePolicy::OnActivity,
  };
  EXPECT_EQ(events::payload_json(p),
            R"({"kind":"subagent","display_name":"Résumé","spec":{"prompt":"hi"},)"
            R"("state":"running","links":{"child_session_id":"c","remote_task_id":"r",)"
            R"("resource_ids":["x"]},"wake_policy":"on_activity"})");
}

TEST(PayloadJson, TaskCreatedWithDefaultsHasEmptyLinks) {
  EXPECT_EQ(events::payload_json(events::TaskCreated{}),
            R"({"kind":"","display_name":"","spec":{},"state":"queued","links":{},)"
            R"("wake_policy":"silent"})");
}

TEST(PayloadJson, TaskCreatedHidesPushConfigSecrets) {
  events::TaskCreated p;
  p.input.spec = R"({"push_configs":[{"secret":"s"}]})";
  EXPECT_NE(events::payload_json(p).find(R"("spec":{"push_configs":[{"has_secret":true}]})"),
            std::string::npos);
}

TEST(PayloadJson, TaskUpdatedWithSomeFields) {
  events::TaskUpdated p;
  p.update.state = SessionTaskState::Running;
  p.update.progress = TaskProgress{.current = 3};
  EXPECT_EQ(events::payload_json(p), R"({"state":"running","progress":{"current":3}})");
}

TEST(PayloadJson, TaskUpdatedWithAllFields) {
  events::TaskUpdated p;
  p.update = SessionTaskUpdate{
      .state = SessionTaskState::AwaitingInput,
      .state_detail = "waiting",
      .progress = TaskProgress{.current = 3, .total = UINT64_MAX, .unit = "files", .label = "copy"},
      .input_request = TaskInputRequest{.id = "req_1", .prompt = "Which?", .expected = "[1, 2]"},
      .summary = "half",
      .result_path = "/tmp/out",
      .artifacts = std::vector<TaskArtifact>{{.name = "a", .type = "file", .url = "u"}},
      .append_artifact = TaskArtifact{.name = "c", .type = "log", .path = "/c"},
      .error = TaskError{.kind = "timeout", .message = "slow"},
      .links = TaskLinks{.child_session_id = "child", .resource_ids = {"r9"}},
      .worker_id = "w",
      .heartbeat_at = Timestamp{-1us},
      .expected_attempt = -5,
      .increment_attempt = true,
  };
  EXPECT_EQ(
      events::payload_json(p),
      R"({"state":"awaiting_input","state_detail":"waiting",)"
      R"("progress":{"current":3,"total":18446744073709551615,"unit":"files","label":"copy"},)"
      R"("input_request":{"id":"req_1","prompt":"Which?","expected":[1,2]},)"
      R"("summary":"half","result_path":"/tmp/out",)"
      R"("artifacts":[{"name":"a","type":"file","url":"u"}],)"
      R"("append_artifact":{"name":"c","type":"log","path":"/c"},)"
      R"("error":{"kind":"timeout","message":"slow"},)"
      R"("links":{"child_session_id":"child","resource_ids":["r9"]},"worker_id":"w",)"
      R"("heartbeat_at":"1969-12-31T23:59:59.999999Z","expected_attempt":-5,)"
      R"("increment_attempt":true})");
}

TEST(PayloadJson, EmptyUpdateIsEmptyObject) {
  EXPECT_EQ(events::payload_json(events::TaskUpdated{}), "{}");
}

TEST(PayloadJson, PresentButEmptyListsAndLinksAreShown) {
  events::TaskUpdated p;
  p.update.artifacts = std::vector<TaskArtifact>{};
  p.update.links = TaskLinks{};
  EXPECT_EQ(events::payload_json(p), R"({"artifacts":[],"links":{}})");
}

TEST(PayloadJson, CancelRequestedIsEmptyObject) {
  EXPECT_EQ(events::payload_json(events::CancelRequested{}), "{}");
}

TEST(PayloadJson, MessageRecordedLeavesEnvelopeFieldsOut) {
  events::MessageRecorded p;
  p.message = TaskMessage{
      .id = "tmsg_1",
      .task_id = "task_1",
      .direction = TaskMessageDirection::Outbound,
      .content = {TextPart{"hello"}, DataPart{R"({"k":[true,null]})"}},
      .in_reply_to = "req_1",
      .created_at = kT0,
  };
  EXPECT_EQ(events::payload_json(p),
            R"({"id":"tmsg_1","direction":"outbound","content":[{"type":"text","text":"hello"},)"
            R"({"type":"data","data":{"k":[true,null]}}],"in_reply_to":"req_1"})");
  p.message.in_reply_to.reset();
  p.message.content.clear();
  EXPECT_EQ(events::payload_json(p), R"({"id":"tmsg_1","direction":"outbound","content":[]})");
}

TEST(PayloadJson, StoredJsonThatIsNotJsonIsCorrupt) {
  events::MessageRecorded p;
  p.message.content = {DataPart{"{"}};
  try {
    events::payload_json(p);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Corrupt);
    EXPECT_STREQ(e.what(), "payload of message_recorded: data is not valid JSON");
  }
}

}  // namespace
}  // namespace taskjournal
