// Safety checks on a journal path before SQLite touches it (internal).
#pragma once

#include <filesystem>

namespace taskjournal::store {

/// Refuses (Error(Storage)) a path that is a symlink, not a regular file, or owned by another
/// user. A missing file is created empty with mode 0600 unless `read_only`, which refuses it
/// with Error(ReadOnly). ":memory:" passes unchecked.
void prepare_journal_file(const std::filesystem::path& path, bool read_only);

}  // namespace taskjournal::store
