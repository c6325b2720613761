// libFuzzer target for the event decoder (issue 5, item 3): events::decode must never crash,
// hang, read out of bounds or allocate without bound on any bytes, and whatever it accepts must
// encode back to exactly the same bytes and print as JSON.
//
// Input: byte 0 picks the type (0 task_created, 1 task_updated, 2 cancel_requested,
// 3 message_recorded, 4 an unknown type), byte 1 the payload version (0, 1 or 2), the rest is the
// payload. tests/fuzz/corpus/ holds the seed inputs and every crash the fuzzer found; the gtest
// fuzz_corpus_test runs them all in every build, with or without clang.
//
// Built by tests/CMakeLists.txt with clang++ -fsanitize=fuzzer,address,undefined when clang is
// installed, and run for a bounded time by ctest (test fuzz_decode_run).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "tests/fuzz/decode_one.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (!taskjournal::fuzz::decode_one(std::string_view(reinterpret_cast<const char*>(data), size))) {
    std::abort();  // a property failed: decode_one printed which
  }
  return 0;
}
