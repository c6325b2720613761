#include "support/temp_dir.hpp"

#include <unistd.h>

#include <cstdlib>
#include <random>
#include <stdexcept>
#include <system_error>

namespace taskjournal::testing {

TempDir::TempDir(std::string_view prefix) : TempDir(fs::temp_directory_path(), prefix) {}

TempDir::TempDir(const fs::path& base, std::string_view prefix) {
  std::random_device rd;
  for (int i = 0; i < 100; ++i) {
    const fs::path candidate = base / (std::string(prefix) + "-" + std::to_string(::getpid()) +
                                       "-" + std::to_string(rd()));
    std::error_code ec;
    fs::create_directories(base, ec);
    if (fs::create_directory(candidate, ec)) {
      path_ = candidate;
      return;
    }
  }
  throw std::runtime_error("cannot create a temporary directory under " + base.string() +
                           ": set TMPDIR to a writable directory");
}

TempDir TempDir::in_memory(std::string_view prefix) {
  if (const char* dir = std::getenv("TASKJOURNAL_PROPS_TMPDIR"); dir && *dir) {
    return TempDir(fs::path(dir), prefix);
  }
  std::error_code ec;
  if (fs::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0) {
    return TempDir(fs::path("/dev/shm"), prefix);
  }
  return TempDir(prefix);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

}  // namespace taskjournal::testing
