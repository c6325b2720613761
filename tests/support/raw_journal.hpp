// Writes journal rows straight into the events table, as a tool other than taskjournal would:
// for tests that need rows the registry never writes (unknown types, broken sequences) with a
// valid hash chain, and for generating big journals quickly.
//
// The hash follows the formula in store/journal.hpp, computed here independently with OpenSSL's
// EVP API. Not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "events/event.hpp"
#include "taskjournal/taskjournal.hpp"

namespace taskjournal::testing {

/// SHA-256 of `data`.
inline std::string sha256(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), md.data(), &size, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("EVP_Digest failed");
  }
  return std::string(reinterpret_cast<const char*>(md.data()), size);
}

/// SHA-256(prev ‖ u64le seq ‖ u32le len ‖ type ‖ u32le version ‖ i64le recorded_at ‖ u32le len ‖
/// session_id ‖ u32le len ‖ task_id ‖ u32le len ‖ payload).
inline std::string journal_hash(std::string_view prev, std::uint64_t seq, std::string_view type,
                                std::uint32_t version, std::int64_t recorded_at,
                                std::string_view session_id, std::string_view task_id,
                                std::string_view payload) {
  std::string data(prev);
  auto le = [&](std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) data += static_cast<char>((v >> (8 * i)) & 0xff);
  };
  auto sized = [&](std::string_view s) {
    le(s.size(), 4);
    data += s;
  };
  le(seq, 8);
  sized(type);
  le(version, 4);
  le(static_cast<std::uint64_t>(recorded_at), 8);
  sized(session_id);
  sized(task_id);
  sized(payload);
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), md.data(), &size, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("EVP_Digest failed");
  }
  return std::string(reinterpret_cast<const char*>(md.data()), size);
}

/// A raw SQLite connection to an existing journal (create it with Registry::open first).
class RawJournal {
 public:
  explicit RawJournal(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
      throw std::runtime_error("cannot open " + path);
    }
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawJournal() {
    sqlite3_finalize(insert_);
    sqlite3_close(db_);
  }
  RawJournal(const RawJournal&) = delete;
  RawJournal& operator=(const RawJournal&) = delete;

  void exec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      std::string what = error ? error : "?";
      sqlite3_free(error);
      throw std::runtime_error(sql + ": " + what);
    }
  }

  /// Runs one statement with `blob` bound to ?1; returns the number of rows it changed.
  int exec_with_blob(const std::string& sql, std::string_view blob) {
    sqlite3_stmt* stmt = prepare(sql.c_str());
    sqlite3_bind_blob(stmt, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
    const int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
    return sqlite3_changes(db_);
  }

  /// The first column of every row of a query, as integers.
  std::vector<std::int64_t> ints(const std::string& sql) {
    sqlite3_stmt* stmt = prepare(sql.c_str());
    std::vector<std::int64_t> out;
    while (sqlite3_step(stmt) == SQLITE_ROW) out.push_back(sqlite3_column_int64(stmt, 0));
    sqlite3_finalize(stmt);
    return out;
  }

  /// The first column of the first row of a query, as bytes (empty if there is no row).
  std::string blob(const std::string& sql) {
    sqlite3_stmt* stmt = prepare(sql.c_str());
    std::string out;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt, 0));
      out.assign(data ? data : "", static_cast<std::size_t>(sqlite3_column_bytes(stmt, 0)));
    }
    sqlite3_finalize(stmt);
    return out;
  }

  /// Registers the SQL function sha256(X), the SHA-256 of blob X (to forge checkpoint digests).
  void add_sha256_function() {
    auto fn = [](sqlite3_context* ctx, int, sqlite3_value** argv) {
      const auto* data = static_cast<const char*>(sqlite3_value_blob(argv[0]));
      const auto size = static_cast<std::size_t>(sqlite3_value_bytes(argv[0]));
      const std::string digest = sha256(std::string_view(data ? data : "", data ? size : 0));
      sqlite3_result_blob(ctx, digest.data(), static_cast<int>(digest.size()), SQLITE_TRANSIENT);
    };
    sqlite3_create_function(db_, "sha256", 1, SQLITE_UTF8, nullptr, fn, nullptr, nullptr);
  }

  /// Removes the immutability triggers, as a tool bent on editing the table would.
  void drop_triggers() {
    exec("DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete");
  }

  /// The newest row's sequence number and hash (0 and 32 zero bytes when empty).
  std::pair<std::uint64_t, std::string> tail() {
    sqlite3_stmt* stmt = prepare("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1");
    std::pair<std::uint64_t, std::string> out{0, std::string(32, '\0')};
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      out.first = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 0));
      out.second.assign(static_cast<const char*>(sqlite3_column_blob(stmt, 1)),
                        static_cast<std::size_t>(sqlite3_column_bytes(stmt, 1)));
    }
    sqlite3_finalize(stmt);
    return out;
  }

  /// Appends a row after the newest one, hash-chained to it. `seq` 0 means "the next one".
  void append(std::string_view type, std::uint32_t version, Timestamp recorded_at,
              std::string_view session_id, std::string_view task_id, std::string_view payload,
              std::uint64_t seq = 0) {
    auto [last, prev] = tail();
    if (seq == 0) seq = last + 1;
    insert(seq, type, version, recorded_at.time_since_epoch().count(), session_id, task_id, payload,
           journal_hash(prev, seq, type, version, recorded_at.time_since_epoch().count(),
                        session_id, task_id, payload));
  }

  /// Appends `event` encoded as taskjournal would (events::encode at kPayloadVersion).
  void append(const events::Event& event) {
    append(events::type_name(event.payload), events::kPayloadVersion, event.recorded_at,
           event.session_id, event.task_id, events::encode(event.payload));
  }

  /// Inserts one row as given (any hash).
  void insert(std::uint64_t seq, std::string_view type, std::int64_t version,
              std::int64_t recorded_at, std::string_view session_id, std::string_view task_id,
              std::string_view payload, std::string_view hash) {
    if (!insert_) {
      insert_ = prepare(
          "INSERT INTO events (seq, type, version, recorded_at, session_id, task_id, payload, "
          "hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    }
    sqlite3_reset(insert_);
    sqlite3_bind_int64(insert_, 1, static_cast<sqlite3_int64>(seq));
    sqlite3_bind_text(insert_, 2, type.data(), static_cast<int>(type.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(insert_, 3, version);
    sqlite3_bind_int64(insert_, 4, recorded_at);
    sqlite3_bind_text(insert_, 5, session_id.data(), static_cast<int>(session_id.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_text(insert_, 6, task_id.data(), static_cast<int>(task_id.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_blob(insert_, 7, payload.data(), static_cast<int>(payload.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_blob(insert_, 8, hash.data(), static_cast<int>(hash.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(insert_) != SQLITE_DONE) {
      throw std::runtime_error(std::string("insert: ") + sqlite3_errmsg(db_));
    }
  }

 private:
  sqlite3_stmt* prepare(const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) != SQLITE_OK) {
      throw std::runtime_error(std::string(sql) + ": " + sqlite3_errmsg(db_));
    }
    return stmt;
  }

  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
};

}  // namespace taskjournal::testing
