#include "store/ids.hpp"

#include <array>
#include <chrono>

namespace taskjournal::store {

IdGenerator::IdGenerator() {
  std::random_device device;
  std::seed_seq seed{device(), device(), device(), device(), device(), device()};
  rng_.seed(seed);
}

std::string IdGenerator::next(std::string_view prefix, Timestamp now) {
  const auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
  const std::uint64_t r1 = rng_();
  const std::uint64_t r2 = rng_();
  std::array<unsigned char, 16> b{};
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  b[6] = static_cast<unsigned char>(0x70 | (r1 & 0x0f));  // version 7
  b[7] = static_cast<unsigned char>(r1 >> 8);
  b[8] = static_cast<unsigned char>(0x80 | (r2 & 0x3f));  // variant 10
  for (int i = 9; i < 16; ++i) b[i] = static_cast<unsigned char>(r2 >> (8 * (i - 8)));

  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(prefix);
  id.reserve(prefix.size() + 32);
  for (unsigned char c : b) {
    id += kHex[c >> 4];
    id += kHex[c & 0x0f];
  }
  return id;
}

}  // namespace taskjournal::store
