// The text names of the public enums (snake_case, as in the JSON and the journal) and their
// strict parsers: every value round-trips, and only the exact name parses.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "taskjournal/error.hpp"
#include "taskjournal/notifications.hpp"
#include "taskjournal/reader.hpp"
#include "taskjournal/types.hpp"

namespace taskjournal {
namespace {

const std::vector<std::pair<SessionTaskState, std::string_view>> kStates{
    {SessionTaskState::Queued, "queued"},
    {SessionTaskState::Running, "running"},
    {SessionTaskState::AwaitingInput, "awaiting_input"},
    {SessionTaskState::Succeeded, "succeeded"},
    {SessionTaskState::Failed, "failed"},
    {SessionTaskState::Canceled, "canceled"}};

const std::vector<std::pair<TaskWakePolicy, std::string_view>> kPolicies{
    {TaskWakePolicy::Silent, "silent"},
    {TaskWakePolicy::OnTerminal, "on_terminal"},
    {TaskWakePolicy::OnActivity, "on_activity"}};

const std::vector<std::pair<TaskMessageDirection, std::string_view>> kDirections{
    {TaskMessageDirection::Inbound, "inbound"}, {TaskMessageDirection::Outbound, "outbound"}};

// Near misses of a name: other case, surrounding or inner spaces, a cut or extended name, a NUL.
std::vector<std::string> near_misses(std::string_view name) {
  std::string upper(name);
  for (char& c : upper) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  std::string capitalised(name);
  capitalised[0] = upper[0];
  return {upper,
          capitalised,
          " " + std::string(name),
          std::string(name) + " ",
          std::string(name) + "\n",
          std::string(name.substr(0, name.size() - 1)),
          std::string(name) + "s",
          std::string(name) + std::string(1, '\0'),
          "\"" + std::string(name) + "\""};
}

TEST(Names, SessionTaskStatesAreSnakeCaseAndParseBack) {
  for (const auto& [state, name] : kStates) {
    EXPECT_EQ(to_string(state), name);
    EXPECT_EQ(parse_session_task_state(name), state) << name;
  }
}

TEST(Names, SessionTaskStateParserAcceptsOnlyTheExactName) {
  for (const auto& [state, name] : kStates) {
    for (const auto& miss : near_misses(name)) {
      EXPECT_EQ(parse_session_task_state(miss), std::nullopt) << '"' << miss << '"';
    }
  }
  for (const std::string_view other :
       {"", "cancelled", "done", "awaiting-input", "awaitinginput"}) {
    EXPECT_EQ(parse_session_task_state(other), std::nullopt) << other;
  }
}

TEST(Names, WakePoliciesAreSnakeCaseAndParseStrictly) {
  for (const auto& [policy, name] : kPolicies) {
    EXPECT_EQ(to_string(policy), name);
    EXPECT_EQ(parse_task_wake_policy(name), policy) << name;
    for (const auto& miss : near_misses(name)) {
      EXPECT_EQ(parse_task_wake_policy(miss), std::nullopt) << '"' << miss << '"';
    }
  }
  EXPECT_EQ(parse_task_wake_policy(""), std::nullopt);
  EXPECT_EQ(parse_task_wake_policy("on-terminal"), std::nullopt);
  EXPECT_EQ(parse_task_wake_policy("queued"), std::nullopt);
}

TEST(Names, MessageDirectionsAreSnakeCaseAndParseStrictly) {
  for (const auto& [direction, name] : kDirections) {
    EXPECT_EQ(to_string(direction), name);
    EXPECT_EQ(parse_task_message_direction(name), direction) << name;
    for (const auto& miss : near_misses(name)) {
      EXPECT_EQ(parse_task_message_direction(miss), std::nullopt) << '"' << miss << '"';
    }
  }
  EXPECT_EQ(parse_task_message_direction(""), std::nullopt);
  EXPECT_EQ(parse_task_message_direction("in"), std::nullopt);
}

TEST(Names, ParsersDoNotAcceptAnotherEnumsNames) {
  for (const auto& [policy, name] : kPolicies) {
    EXPECT_EQ(parse_session_task_state(name), std::nullopt) << name;
    EXPECT_EQ(parse_task_message_direction(name), std::nullopt) << name;
  }
  for (const auto& [state, name] : kStates) {
    EXPECT_EQ(parse_task_wake_policy(name), std::nullopt) << name;
    EXPECT_EQ(parse_task_message_direction(name), std::nullopt) << name;
  }
}

TEST(Names, TransitionsErrorCodesAndDropReasonsAreSnakeCase) {
  EXPECT_EQ(to_string(TaskTransition::Terminal), "terminal");
  EXPECT_EQ(to_string(TaskTransition::AwaitingInput), "awaiting_input");
  EXPECT_EQ(to_string(TaskTransition::Message), "message");

  EXPECT_EQ(to_string(ErrorCode::InvalidArgument), "invalid_argument");
  EXPECT_EQ(to_string(ErrorCode::NotFound), "not_found");
  EXPECT_EQ(to_string(ErrorCode::Conflict), "conflict");
  EXPECT_EQ(to_string(ErrorCode::StaleAttempt), "stale_attempt");
  EXPECT_EQ(to_string(ErrorCode::Busy), "busy");
  EXPECT_EQ(to_string(ErrorCode::ReadOnly), "read_only");
  EXPECT_EQ(to_string(ErrorCode::Corrupt), "corrupt");
  EXPECT_EQ(to_string(ErrorCode::Unsupported), "unsupported");
  EXPECT_EQ(to_string(ErrorCode::Storage), "storage");

  EXPECT_EQ(to_string(DropReason::None), "none");
  EXPECT_EQ(to_string(DropReason::Fenced), "fenced");
  EXPECT_EQ(to_string(DropReason::Terminal), "terminal");
}

TEST(Names, TerminalStatesAreSucceededFailedAndCanceled) {
  for (const auto& [state, name] : kStates) {
    const bool terminal = name == "succeeded" || name == "failed" || name == "canceled";
    EXPECT_EQ(is_terminal(state), terminal) << name;
  }
}

}  // namespace
}  // namespace taskjournal
