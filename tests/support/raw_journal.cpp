#include "support/raw_journal.hpp"

#include <array>
#include <stdexcept>

#include <openssl/evp.h>
#include <sqlite3.h>

namespace taskjournal::testing {

std::string sha256(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), md.data(), &size, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("EVP_Digest failed");
  }
  return std::string(reinterpret_cast<const char*>(md.data()), size);
}

std::string journal_hash(std::string_view prev, std::uint64_t seq, std::string_view type,
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
  return sha256(data);
}

RawJournal::RawJournal(const std::filesystem::path& path, Mode mode) {
  const int flags = mode == Mode::ReadOnly    ? SQLITE_OPEN_READONLY
                    : mode == Mode::ReadWrite ? SQLITE_OPEN_READWRITE
                                              : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    std::string what = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw std::runtime_error("cannot open " + path.string() + ": " + what);
  }
  if (mode != Mode::ReadOnly) sqlite3_busy_timeout(db_, 5000);
}

RawJournal::~RawJournal() {
  sqlite3_finalize(insert_);
  sqlite3_close(db_);
}

void RawJournal::exec(const std::string& sql) {
  if (std::string what = exec_error(sql); !what.empty()) {
    throw std::runtime_error(sql + ": " + what);
  }
}

std::string RawJournal::exec_error(const std::string& sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) == SQLITE_OK) return {};
  std::string what = error ? error : "error";
  sqlite3_free(error);
  return what;
}

int RawJournal::exec_with_blob(const std::string& sql, std::string_view blob) {
  sqlite3_stmt* stmt = prepare(sql.c_str());
  sqlite3_bind_blob(stmt, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
  const int rc = sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
  return sqlite3_changes(db_);
}

std::vector<std::int64_t> RawJournal::ints(const std::string& sql) {
  sqlite3_stmt* stmt = prepare(sql.c_str());
  std::vector<std::int64_t> out;
  while (sqlite3_step(stmt) == SQLITE_ROW) out.push_back(sqlite3_column_int64(stmt, 0));
  sqlite3_finalize(stmt);
  return out;
}

std::string RawJournal::blob(const std::string& sql) {
  sqlite3_stmt* stmt = prepare(sql.c_str());
  std::string out;
  if (sqlite3_step(stmt) == SQLITE_ROW) {
    const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt, 0));
    out.assign(data ? data : "", static_cast<std::size_t>(sqlite3_column_bytes(stmt, 0)));
  }
  sqlite3_finalize(stmt);
  return out;
}

void RawJournal::add_sha256_function() {
  auto fn = [](sqlite3_context* ctx, int, sqlite3_value** argv) {
    const auto* data = static_cast<const char*>(sqlite3_value_blob(argv[0]));
    const auto size = static_cast<std::size_t>(sqlite3_value_bytes(argv[0]));
    const std::string digest = sha256(std::string_view(data ? data : "", data ? size : 0));
    sqlite3_result_blob(ctx, digest.data(), static_cast<int>(digest.size()), SQLITE_TRANSIENT);
  };
  sqlite3_create_function(db_, "sha256", 1, SQLITE_UTF8, nullptr, fn, nullptr, nullptr);
}

void RawJournal::drop_triggers() {
  exec("DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete");
}

std::pair<std::uint64_t, std::string> RawJournal::tail() {
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

void RawJournal::append(std::string_view type, std::uint32_t version, Timestamp recorded_at,
                        std::string_view session_id, std::string_view task_id,
                        std::string_view payload, std::uint64_t seq) {
  auto [last, prev] = tail();
  if (seq == 0) seq = last + 1;
  const std::int64_t at = recorded_at.time_since_epoch().count();
  insert(seq, type, version, at, session_id, task_id, payload,
         journal_hash(prev, seq, type, version, at, session_id, task_id, payload));
}

void RawJournal::append(const events::Event& event) {
  append(events::type_name(event.payload), events::kPayloadVersion, event.recorded_at,
         event.session_id, event.task_id, events::encode(event.payload));
}

void RawJournal::insert(std::uint64_t seq, std::string_view type, std::int64_t version,
                        std::int64_t recorded_at, std::string_view session_id,
                        std::string_view task_id, std::string_view payload, std::string_view hash) {
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
  sqlite3_bind_text(insert_, 6, task_id.data(), static_cast<int>(task_id.size()), SQLITE_TRANSIENT);
  sqlite3_bind_blob(insert_, 7, payload.data(), static_cast<int>(payload.size()), SQLITE_TRANSIENT);
  sqlite3_bind_blob(insert_, 8, hash.data(), static_cast<int>(hash.size()), SQLITE_TRANSIENT);
  if (sqlite3_step(insert_) != SQLITE_DONE) {
    throw std::runtime_error(std::string("insert: ") + sqlite3_errmsg(db_));
  }
}

sqlite3_stmt* RawJournal::prepare(const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) != SQLITE_OK) {
    throw std::runtime_error(std::string(sql) + ": " + sqlite3_errmsg(db_));
  }
  return stmt;
}

void raw_sql(const std::filesystem::path& file, const std::string& sql) {
  RawJournal(file, RawJournal::Mode::Create).exec(sql);
}

std::string raw_sql_error(const std::filesystem::path& file, const std::string& sql) {
  try {
    return RawJournal(file, RawJournal::Mode::Create).exec_error(sql);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
}

std::int64_t raw_int(const std::filesystem::path& file, const std::string& sql) {
  try {
    const auto values = RawJournal(file, RawJournal::Mode::ReadOnly).ints(sql);
    return values.empty() ? -1 : values.front();
  } catch (const std::runtime_error&) {
    return -1;
  }
}

::testing::AssertionResult sequence_is_gap_free(const std::filesystem::path& file) {
  const auto count = raw_int(file, "SELECT count(*) FROM events");
  const auto max = raw_int(file, "SELECT coalesce(max(seq), 0) FROM events");
  const auto min = raw_int(file, "SELECT coalesce(min(seq), 1) FROM events");
  if (count < 0 || count != max || min != 1) {
    return ::testing::AssertionFailure()
           << file << ": count " << count << ", min seq " << min << ", max seq " << max;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace taskjournal::testing
