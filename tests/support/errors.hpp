// Expecting a taskjournal::Error: EXPECT_THROW_CODE and the helpers that read what was thrown.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "taskjournal/error.hpp"

namespace taskjournal::testing {

/// The taskjournal::Error `call` throws; nullopt if it returns. Other exceptions propagate.
std::optional<Error> thrown_error(const std::function<void()>& call);

/// The code of the Error `call` throws; nullopt if it returns. Other exceptions propagate.
std::optional<ErrorCode> error_code(const std::function<void()>& call);

/// The what() of the Error `call` throws (its code in `*code` when `code` is given); "" if it
/// returns. Other exceptions propagate.
std::string error_text(const std::function<void()>& call, ErrorCode* code = nullptr);

/// Success if `call` throws a taskjournal::Error with `code`; otherwise a failure that quotes
/// `statement` and says what happened instead: nothing thrown, an Error of another code (with its
/// message), or another exception. The implementation of EXPECT_THROW_CODE.
::testing::AssertionResult throws_code(const char* statement, const std::function<void()>& call,
                                       ErrorCode code);

}  // namespace taskjournal::testing

/// EXPECT_THROW_CODE(statement, ErrorCode::X): `statement` throws a taskjournal::Error whose
/// code() is X. Fails (non-fatally) with a message naming the statement and what it did instead.
/// More text can be streamed in: EXPECT_THROW_CODE(r.get("s", id), ErrorCode::Corrupt) << id;
/// A statement with a comma outside parentheses (a braced initializer) needs parentheses.
#define EXPECT_THROW_CODE(statement, code) \
  TASKJOURNAL_THROW_CODE_(statement, code, GTEST_NONFATAL_FAILURE_)

/// ASSERT_THROW_CODE: EXPECT_THROW_CODE that ends the test on failure.
#define ASSERT_THROW_CODE(statement, code) \
  TASKJOURNAL_THROW_CODE_(statement, code, GTEST_FATAL_FAILURE_)

#define TASKJOURNAL_THROW_CODE_(statement, code, fail)           \
  GTEST_AMBIGUOUS_ELSE_BLOCKER_                                  \
  if (const ::testing::AssertionResult taskjournal_throw_code_ = \
          ::taskjournal::testing::throws_code(                   \
              #statement, [&] { statement; }, (code)))           \
    ;                                                            \
  else                                                           \
    fail(taskjournal_throw_code_.failure_message())
