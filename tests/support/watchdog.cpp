#include "support/watchdog.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <future>
#include <memory>
#include <thread>
#include <utility>

namespace taskjournal::testing {

void within_seconds(int seconds, const std::string& what, std::function<void()> f) {
  auto done = std::make_shared<std::promise<void>>();
  auto future = done->get_future();
  std::thread([done, f = std::move(f)] {
    try {
      f();
      done->set_value();
    } catch (...) {
      done->set_exception(std::current_exception());
    }
  }).detach();
  if (future.wait_for(std::chrono::seconds(seconds)) == std::future_status::timeout) {
    std::fprintf(stderr, "%s did not finish within %d s: deadlock?\n", what.c_str(), seconds);
    std::fflush(stderr);
    std::abort();
  }
  future.get();
}

}  // namespace taskjournal::testing
