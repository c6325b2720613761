#include "store/sqlite/file_checks.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "taskjournal/error.hpp"

namespace taskjournal::store {

void prepare_journal_file(const std::filesystem::path& path, bool read_only) {
  if (path == ":memory:") return;
  const std::string name = path.string();
  auto refuse = [&](ErrorCode code, const std::string& why) {
    throw Error(code, name + ": " + why);
  };

  struct stat st {};
  if (::lstat(name.c_str(), &st) != 0) {
    if (errno != ENOENT) refuse(ErrorCode::Storage, std::strerror(errno));
    if (read_only) refuse(ErrorCode::ReadOnly, "no such journal (opened read-only)");
    const int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ::close(fd);
      return;
    }
    if (errno != EEXIST)
      refuse(ErrorCode::Storage, std::string("cannot create: ") + std::strerror(errno));
    // Another process created it first: check what it made.
    if (::lstat(name.c_str(), &st) != 0) refuse(ErrorCode::Storage, std::strerror(errno));
  }
  if (S_ISLNK(st.st_mode)) refuse(ErrorCode::Storage, "refusing a symlink as journal");
  if (!S_ISREG(st.st_mode)) refuse(ErrorCode::Storage, "not a regular file");
  if (st.st_uid != ::geteuid())
    refuse(ErrorCode::Storage, "owned by another user (uid " + std::to_string(st.st_uid) + ")");

  // SQLite takes a file shorter than its 100-byte header, whose missing bytes read as zeros, for
  // an empty database, which open would then make a new journal of. Only a zero-length file is
  // one (the state this function creates); anything else must start like a SQLite file.
  if (st.st_size > 0) {
    static constexpr char kMagic[] = "SQLite format 3";  // 16 bytes with its NUL
    char head[sizeof kMagic] = {};
    const int fd = ::open(name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) refuse(ErrorCode::Storage, std::string("cannot read: ") + std::strerror(errno));
    const ssize_t n = ::pread(fd, head, sizeof head, 0);
    ::close(fd);
    if (n != static_cast<ssize_t>(sizeof head) || std::memcmp(head, kMagic, sizeof kMagic) != 0) {
      refuse(ErrorCode::Corrupt, "not a taskjournal journal (not a SQLite database file)");
    }
  }
}

}  // namespace taskjournal::store
