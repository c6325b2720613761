// Raw SQLite access to a journal file, as a tool other than taskjournal would have it: rows the
// registry never writes (unknown types, broken sequences, forged checkpoints) with a valid hash
// chain, damage to rows and triggers, queries behind the registry's back, and big journals
// generated quickly.
//
// The hash follows the formula in store/journal.hpp, computed here independently with OpenSSL's
// EVP API. Not thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "events/event.hpp"
#include "taskjournal/types.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace taskjournal::testing {

/// SHA-256 of `data` (32 bytes). Throws std::runtime_error if OpenSSL fails.
std::string sha256(std::string_view data);

/// SHA-256(prev ‖ u64le seq ‖ u32le len ‖ type ‖ u32le version ‖ i64le recorded_at ‖ u32le len ‖
/// session_id ‖ u32le len ‖ task_id ‖ u32le len ‖ payload).
std::string journal_hash(std::string_view prev, std::uint64_t seq, std::string_view type,
                         std::uint32_t version, std::int64_t recorded_at,
                         std::string_view session_id, std::string_view task_id,
                         std::string_view payload);

/// A raw SQLite connection of its own to an existing journal file (create it with Registry::open
/// first). Every method throws std::runtime_error with SQLite's message when SQLite fails.
class RawJournal {
 public:
  enum class Mode {
    ReadWrite,  ///< an existing file, read and written
    ReadOnly,   ///< an existing file, only read
    Create,     ///< read and written, created (as an empty database) if missing
  };

  /// Opens `path`, with a busy timeout of 5 s unless ReadOnly.
  explicit RawJournal(const std::filesystem::path& path, Mode mode = Mode::ReadWrite);
  ~RawJournal();
  RawJournal(const RawJournal&) = delete;
  RawJournal& operator=(const RawJournal&) = delete;

  /// Runs an SQL script (one or more statements).
  void exec(const std::string& sql);

  /// Runs an SQL script; SQLite's error message if it fails, "" if it succeeds.
  std::string exec_error(const std::string& sql);

  /// Runs one statement with `blob` bound to ?1; returns the number of rows it changed.
  int exec_with_blob(const std::string& sql, std::string_view blob);

  /// The first column of every row of a query, as integers.
  std::vector<std::int64_t> ints(const std::string& sql);

  /// The first column of the first row of a query, as bytes (empty if there is no row).
  std::string blob(const std::string& sql);

  /// Registers the SQL function sha256(X), the SHA-256 of blob X (to forge checkpoint digests).
  void add_sha256_function();

  /// Removes the immutability triggers, as a tool bent on editing the table would.
  void drop_triggers();

  /// The newest row's sequence number and hash (0 and 32 zero bytes when empty).
  std::pair<std::uint64_t, std::string> tail();

  /// Appends a row after the newest one, hash-chained to it. `seq` 0 means "the next one".
  void append(std::string_view type, std::uint32_t version, Timestamp recorded_at,
              std::string_view session_id, std::string_view task_id, std::string_view payload,
              std::uint64_t seq = 0);

  /// Appends `event` encoded as taskjournal would (events::encode at kPayloadVersion).
  void append(const events::Event& event);

  /// Inserts one row as given (any hash).
  void insert(std::uint64_t seq, std::string_view type, std::int64_t version,
              std::int64_t recorded_at, std::string_view session_id, std::string_view task_id,
              std::string_view payload, std::string_view hash);

 private:
  sqlite3_stmt* prepare(const char* sql);

  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
};

/// Runs an SQL script on `file` (created if missing) through a connection of its own. Throws
/// std::runtime_error with SQLite's message if it fails (which fails the test that called it).
void raw_sql(const std::filesystem::path& file, const std::string& sql);

/// Runs an SQL script on `file` (created if missing) through a connection of its own; SQLite's
/// error message if it fails (or the file cannot be opened), "" if it succeeds.
std::string raw_sql_error(const std::filesystem::path& file, const std::string& sql);

/// The first column of the first row of `sql` on a read-only connection, as an integer; -1 on any
/// error (and when there is no row).
std::int64_t raw_int(const std::filesystem::path& file, const std::string& sql);

/// The journal's event table is gap-free: count(*) == max(seq) and min(seq) == 1 (or empty).
::testing::AssertionResult sequence_is_gap_free(const std::filesystem::path& file);

}  // namespace taskjournal::testing
