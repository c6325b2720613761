// A string-keyed hash map that looks up by std::string_view without building a std::string.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace taskjournal::projections {

// Deliberately not noexcept: libstdc++ then stores each key's hash in its node. Otherwise it
// hashes the keys again while walking a bucket and on every rehash, which made inserting the
// message ids of a large journal the most expensive step of open.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

}  // namespace taskjournal::projections
