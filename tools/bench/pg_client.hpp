// A thin libpq client for the benchmark's contenders (raw appends, the snapshot design). The tools
// use taskjournal's public API only (DESIGN habit 10), so this is the bench's own, not
// store/postgres/pq.hpp. Every failure throws std::runtime_error with the server's message.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bench::pg {

/// One PGresult, cleared on destruction.
class Result {
 public:
  explicit Result(PGresult* r = nullptr) noexcept : r_(r) {}
  ~Result() { PQclear(r_); }
  Result(Result&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
  Result& operator=(Result&& o) noexcept {
    std::swap(r_, o.r_);
    return *this;
  }
  int rows() const { return PQntuples(r_); }
  /// Field (row, col) as bytes (text results: the text; binary: the raw value).
  std::string_view get(int row, int col) const {
    return {PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col))};
  }
  std::int64_t int8(int row, int col) const { return std::stoll(std::string(get(row, col))); }
  PGresult* raw() const noexcept { return r_; }

 private:
  PGresult* r_;
};

/// A parameter: text (integers written as text) or binary (bytea).
struct Param {
  std::string_view data;
  bool binary = false;
};

/// One prepared statement with its parameters, for a pipeline.
struct Statement {
  const char* name;
  std::vector<Param> params;
};

/// One connection. Results come back as text.
class Conn {
 public:
  explicit Conn(const std::string& conninfo);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  /// Runs `sql` (one or several statements, no parameters); returns the last result.
  Result exec(const std::string& sql);
  void prepare(const char* name, const std::string& sql, int params);
  /// One prepared statement, one round trip.
  Result run(const char* name, const std::vector<Param>& params);
  /// The statements in one round trip (libpq pipeline mode, one Sync): their results in order.
  /// A failure throws (an open transaction stays open and aborted: the caller rolls back).
  std::vector<Result> pipeline(const std::vector<Statement>& statements);
  /// Runs a `COPY ... TO STDOUT` and reads all of it; returns the bytes received.
  std::uint64_t copy_out(const std::string& sql);
  PGconn* raw() const noexcept { return c_; }

 private:
  [[noreturn]] void fail(const std::string& doing, const PGresult* r = nullptr) const;
  static void check(const Result& r, const std::string& doing, const Conn& conn);
  PGconn* c_ = nullptr;
};

}  // namespace bench::pg
