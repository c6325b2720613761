#include "support/errors.hpp"

#include <exception>
#include <typeinfo>

namespace taskjournal::testing {

std::optional<Error> thrown_error(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& e) {
    return e;
  }
  return std::nullopt;
}

std::optional<ErrorCode> error_code(const std::function<void()>& call) {
  const auto error = thrown_error(call);
  return error ? std::optional<ErrorCode>(error->code()) : std::nullopt;
}

std::string error_text(const std::function<void()>& call, ErrorCode* code) {
  const auto error = thrown_error(call);
  if (!error) return {};
  if (code) *code = error->code();
  return error->what();
}

::testing::AssertionResult throws_code(const char* statement, const std::function<void()>& call,
                                       ErrorCode code) {
  const std::string expected = std::string("Expected: ") + statement +
                               " throws taskjournal::Error(" + std::string(to_string(code)) +
                               ")\n  Actual: ";
  try {
    call();
  } catch (const Error& e) {
    if (e.code() == code) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << expected << "it throws taskjournal::Error("
                                         << to_string(e.code()) << "): " << e.what();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure()
           << expected << "it throws " << typeid(e).name() << ": " << e.what();
  } catch (...) {
    return ::testing::AssertionFailure() << expected << "it throws an exception of unknown type";
  }
  return ::testing::AssertionFailure() << expected << "it throws nothing";
}

}  // namespace taskjournal::testing
