// TempDir: a fresh directory for one test's files, removed with everything in it.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace taskjournal::testing {

namespace fs = std::filesystem;

/// A new, empty directory <base>/<prefix>-<pid>-<random>, removed with everything in it when the
/// TempDir goes. Not copyable or movable: its path stays valid for its whole life.
class TempDir {
 public:
  /// A directory under the system temp directory (TMPDIR). Throws std::runtime_error if none can
  /// be created.
  explicit TempDir(std::string_view prefix = "taskjournal-test");

  /// A directory on a RAM disk (/dev/shm) when there is a writable one, else under the system
  /// temp directory; TASKJOURNAL_PROPS_TMPDIR, when set, overrides the choice. For tests that
  /// open many journals and do not test durability: SQLite's fsyncs then dominate on a disk.
  static TempDir in_memory(std::string_view prefix);

  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const noexcept { return path_; }
  /// The path of `name` in the directory (nothing is created).
  fs::path operator/(std::string_view name) const { return path_ / name; }
  /// Same as `*this / name`.
  fs::path file(std::string_view name) const { return path_ / name; }

 private:
  TempDir(const fs::path& base, std::string_view prefix);
  fs::path path_;
};

}  // namespace taskjournal::testing
