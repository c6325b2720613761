#include "events/ids.hpp"

#include <sys/random.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "taskjournal/error.hpp"

namespace taskjournal::events {
namespace {

void random_bytes(void* out, std::size_t size) {
  auto* p = static_cast<unsigned char*>(out);
  while (size > 0) {
    const ssize_t n = ::getrandom(p, size, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(ErrorCode::Storage,
                  std::string("cannot generate an id: getrandom failed: ") + std::strerror(errno));
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

// The 74 random bits of a UUIDv7 as a number: rand_a (12 bits) above rand_b (62 bits).
struct Random74 {
  std::uint16_t high = 0;  // rand_a, 12 bits
  std::uint64_t low = 0;   // rand_b, 62 bits
};

constexpr std::uint64_t kLowMask = (std::uint64_t{1} << 62) - 1;

// The state of the generator of this process: the previous id's millisecond and random bits, and
// CSPRNG bytes fetched ahead (one getrandom call per 16 ids or so, not one per id).
struct State {
  std::mutex mutex;
  pid_t pid = 0;  // the process the state belongs to: a forked child starts afresh
  bool have = false;
  std::uint64_t ms = 0;
  Random74 bits;
  std::array<unsigned char, 256> pool{};
  std::size_t pool_used = 256;

  void take(void* out, std::size_t size) {
    if (pool_used + size > pool.size()) {
      random_bytes(pool.data(), pool.size());
      pool_used = 0;
    }
    std::memcpy(out, pool.data() + pool_used, size);
    std::memset(pool.data() + pool_used, 0, size);  // used bytes do not linger
    pool_used += size;
  }

  Random74 fresh() {
    std::array<std::uint64_t, 2> r{};
    take(r.data(), sizeof r);
    return {static_cast<std::uint16_t>(r[0] & 0x0fff), r[1] & kLowMask};
  }
};

State& state() {
  static State s;
  return s;
}

}  // namespace

std::string new_id(std::string_view prefix, Timestamp now) {
  const auto since_epoch =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::uint64_t ms = since_epoch < 0 ? 0 : static_cast<std::uint64_t>(since_epoch);
  ms &= (std::uint64_t{1} << 48) - 1;

  Random74 bits;
  {
    State& s = state();
    std::lock_guard lock(s.mutex);
    const pid_t pid = ::getpid();
    if (s.pid != pid) {
      s.have = false;
      s.pool_used = s.pool.size();  // a forked child must not reuse its parent's bytes
    }
    if (!s.have || ms != s.ms) {
      bits = s.fresh();
    } else {
      // Same millisecond: the previous bits plus a random step, so the ids still sort in the
      // order they were made and are no easier to guess. A carry out of 74 bits (after some
      // 2^42 ids in one millisecond) moves the time field on by one.
      std::uint32_t step = 0;
      s.take(&step, sizeof step);
      bits = s.bits;
      bits.low += std::uint64_t{step} + 1;
      if (bits.low > kLowMask) {
        bits.low &= kLowMask;
        if (++bits.high > 0x0fff) {
          bits.high = 0;
          ms = (ms + 1) & ((std::uint64_t{1} << 48) - 1);
        }
      }
    }
    s.pid = pid;
    s.have = true;
    s.ms = ms;
    s.bits = bits;
  }

  std::array<unsigned char, 16> b{};
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  b[6] = static_cast<unsigned char>(0x70 | (bits.high >> 8));  // version 7
  b[7] = static_cast<unsigned char>(bits.high & 0xff);
  b[8] = static_cast<unsigned char>(0x80 | (bits.low >> 56));  // variant 10
  for (int i = 9; i < 16; ++i) b[i] = static_cast<unsigned char>(bits.low >> (8 * (15 - i)));

  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  id.reserve(prefix.size() + 32);
  id.append(prefix);
  for (unsigned char c : b) {
    id += kHex[c >> 4];
    id += kHex[c & 0x0f];
  }
  return id;
}

}  // namespace taskjournal::events
