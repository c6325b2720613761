// A small RAII wrapper over libpq (after osm2pgsql's src/pgsql.hpp): a connection, its results,
// prepared statements with binary parameters and results, a pipeline, a binary COPY-out reader
// and LISTEN/NOTIFY. libpq's own header stays in pq.cpp: this header only forward-declares its
// two handle types, so nothing outside store/postgres/ compiles against libpq.
//
// Errors: every libpq failure becomes taskjournal::Error, with a message
//   "postgresql <target>: <doing>: <libpq message> (SQLSTATE xxxxx)[; what to do]"
// where <target> names host/socket, port, database and user (never the password). Codes:
//   Busy     serialization failure, deadlock, lock or statement timeout (40001, 40P01, 55P03,
//            57014): retry;
//   ReadOnly a write in a read-only transaction or on a hot standby (25006);
//   Storage  everything else, in particular a connection that could not be made or was lost
//            (class 08, server shutdown 57P01-57P03): the message says so and that the next call
//            on a new Connection may succeed.
//
// Thread-safety: a Connection (and its Pipeline) is used by one thread at a time; distinct
// Connections are independent.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct pg_conn;
struct pg_result;

namespace taskjournal::store::postgres {

/// PostgreSQL type OIDs of the parameters taskjournal binds (pg_type.dat).
enum class Oid : unsigned { Bool = 16, Bytea = 17, Int8 = 20, Int4 = 23, Text = 25 };

/// Parameters of one statement, bound in binary (int4/int8 in network order, text and bytea as
/// raw bytes). Views passed to text()/bytes() must outlive the call that sends them.
class Params {
 public:
  Params& int8(std::int64_t v);
  Params& int4(std::int32_t v);
  Params& text(std::string_view v);
  Params& bytes(std::string_view v);
  Params& null(Oid type);

  int size() const noexcept { return static_cast<int>(values_.size()); }
  const unsigned* types() const noexcept { return types_.data(); }
  const char* const* values() const noexcept { return values_.data(); }
  const int* lengths() const noexcept { return lengths_.data(); }
  const int* formats() const noexcept { return formats_.data(); }

 private:
  void add(Oid type, const char* data, int length);
  std::vector<unsigned> types_;
  std::vector<const char*> values_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
  std::vector<std::unique_ptr<char[]>> scratch_;  // network-order integers; stable addresses
};

/// One PGresult, owned (PQclear on destruction). Accessors read binary-format columns; `row` and
/// `col` must be in range.
class Result {
 public:
  Result() = default;
  explicit Result(pg_result* r) noexcept : r_(r) {}

  explicit operator bool() const noexcept { return r_ != nullptr; }
  pg_result* get() const noexcept { return r_.get(); }

  /// True for PGRES_COMMAND_OK / TUPLES_OK / COPY_OUT / PIPELINE_SYNC.
  bool ok() const noexcept;
  /// True if this command was skipped because an earlier one in its pipeline failed.
  bool aborted() const noexcept;
  /// The SQLSTATE of a failed command ("" if none).
  std::string sqlstate() const;
  /// The primary error message of a failed command, without trailing newline ("" if none).
  std::string message() const;

  int rows() const noexcept;
  int columns() const noexcept;
  /// Rows affected by INSERT/UPDATE/DELETE (0 when not applicable).
  std::int64_t affected() const noexcept;
  bool is_null(int row, int col) const noexcept;
  /// The raw value: bytes of a bytea/text column, network-order bytes of an integer.
  std::string_view bytes(int row, int col) const noexcept;
  /// A binary int8 / int4 / bool column; throws Error(Corrupt) if the width is wrong.
  std::int64_t int8(int row, int col) const;
  std::int32_t int4(int row, int col) const;

 private:
  struct Clear {
    void operator()(pg_result* r) const noexcept;
  };
  std::unique_ptr<pg_result, Clear> r_;
};

/// A row of a binary COPY: views into the reader's buffer, valid during the callback only.
class CopyRow {
 public:
  int columns() const noexcept { return static_cast<int>(fields_.size()); }
  bool is_null(int col) const noexcept { return !fields_[static_cast<std::size_t>(col)]; }
  /// The raw bytes (empty for NULL).
  std::string_view bytes(int col) const noexcept {
    const auto& f = fields_[static_cast<std::size_t>(col)];
    return f ? *f : std::string_view{};
  }
  /// A binary int8 / int4 field; throws Error(Corrupt) if it is NULL or has the wrong width.
  std::int64_t int8(int col) const;
  std::int32_t int4(int col) const;

 private:
  friend class Connection;
  std::vector<std::optional<std::string_view>> fields_;
};

/// A notification received on a LISTENed channel.
struct Notification {
  std::string channel;
  std::string payload;
  int backend_pid = 0;  ///< the notifying session (compare with Connection::backend_pid())
};

class Pipeline;

/// One libpq connection. Construction connects (blocking, connect_timeout 10 s unless the
/// conninfo says otherwise); the destructor closes it.
class Connection {
 public:
  /// `conninfo`: any libpq connection string ("host=/tmp/d dbname=x") or postgresql:// URI.
  /// Throws Error(Storage) naming the target when the server cannot be reached or refuses.
  explicit Connection(const std::string& conninfo);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// "host=/tmp/d port=5432 dbname=x user=u" (the password never appears).
  const std::string& target() const noexcept { return target_; }
  /// False once libpq reports the connection broken; a broken Connection is to be replaced.
  bool usable() const noexcept;
  /// The server process serving this connection.
  int backend_pid() const noexcept;
  /// True outside any transaction block.
  bool idle() const noexcept;

  /// Runs `sql` (one or several statements, no parameters, text results). Throws Error.
  Result exec(const std::string& sql);
  /// Runs one statement with binary parameters; results in binary unless `text_results`.
  Result exec_params(const std::string& sql, const Params& params, bool text_results = false);
  /// Prepares `sql` as `name` with the given parameter types. Throws Error.
  void prepare(const std::string& name, const std::string& sql, const std::vector<Oid>& types);
  /// Runs a prepared statement with binary parameters and binary results. Throws Error.
  Result exec_prepared(const std::string& name, const Params& params);

  /// Runs `COPY (...) TO STDOUT (FORMAT binary)` (`copy_sql` is the whole COPY statement) and
  /// calls `on_row` for every row, in order, with constant memory. Throws Error(Corrupt) on a
  /// malformed stream and Error for a failed COPY; if `on_row` throws, the COPY is cancelled,
  /// the connection is left idle and the exception propagates. Returns the number of rows.
  std::int64_t copy_out(const std::string& copy_sql,
                        const std::function<void(const CopyRow&)>& on_row);

  /// LISTEN on `channel` (quoted as an identifier).
  void listen(const std::string& channel);
  /// The next notification already received or arriving within `timeout`; nullopt if none.
  /// Throws Error(Storage) if the connection is lost meanwhile. Use an idle connection: a
  /// session inside a transaction gets notifications only after the transaction ends.
  std::optional<Notification> wait_notification(std::chrono::milliseconds timeout);

  /// "postgresql <target>: <doing>: <message>": the prefix of this connection's errors.
  std::string where(std::string_view doing) const;
  /// Throws the Error for `r` (a failed result, or none) while `doing`.
  [[noreturn]] void fail(std::string_view doing, const Result& r) const;

  pg_conn* raw() const noexcept { return conn_; }

 private:
  pg_conn* conn_ = nullptr;
  std::string target_;
  mutable bool broken_ = false;  // set by fail() when the error means the connection is gone
};

/// One libpq pipeline: the statements sent are executed in order, their results collected by
/// sync() in one round trip. Enter with a Connection that is idle; the Pipeline owns it until it
/// is destroyed (which leaves pipeline mode).
///
/// Abort semantics: when a statement fails, the server skips the rest up to the Sync (their
/// results are aborted()). If the pipeline opened a transaction with BEGIN, sync() rolls it back,
/// so a failed pipeline writes nothing and the connection is idle again.
class Pipeline {
 public:
  /// Throws Error(Storage) if the connection cannot enter pipeline mode.
  explicit Pipeline(Connection& conn);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  /// Queues a prepared statement (binary parameters and results).
  void send_prepared(const std::string& name, const Params& params);
  /// Queues an unprepared statement (binary parameters and results).
  void send(const std::string& sql, const Params& params);

  /// Sends a Sync, waits, and returns one Result per queued statement, in order (each ok(),
  /// failed, or aborted()). SQL failures do not throw; a lost connection throws Error(Storage).
  /// A transaction the statements left failed is rolled back; one they left open too, unless
  /// `keep_open` (the caller goes on with it).
  std::vector<Result> sync(bool keep_open = false);

  /// The index of the first failed (not aborted) result, or -1.
  static int first_failure(const std::vector<Result>& results) noexcept;

 private:
  Connection& conn_;
  int queued_ = 0;
};

}  // namespace taskjournal::store::postgres
