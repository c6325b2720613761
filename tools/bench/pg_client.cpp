#include "pg_client.hpp"

#include <stdexcept>

namespace bench::pg {
namespace {

struct Arrays {
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  explicit Arrays(const std::vector<Param>& params) {
    for (const Param& p : params) {
      values.push_back(p.data.data());
      lengths.push_back(static_cast<int>(p.data.size()));
      formats.push_back(p.binary ? 1 : 0);
    }
  }
  int size() const { return static_cast<int>(values.size()); }
};

bool good(const PGresult* r) {
  const auto s = PQresultStatus(r);
  return r != nullptr && (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK);
}

}  // namespace

Conn::Conn(const std::string& conninfo) : c_(PQconnectdb(conninfo.c_str())) {
  if (PQstatus(c_) != CONNECTION_OK) {
    const std::string message = PQerrorMessage(c_);
    PQfinish(c_);
    throw std::runtime_error("connect to " + conninfo + ": " + message);
  }
  PQsetNoticeProcessor(
      c_, [](void*, const char*) {}, nullptr);  // "already exists, skipping"
}

Conn::~Conn() { PQfinish(c_); }

void Conn::fail(const std::string& doing, const PGresult* r) const {
  const char* message = r != nullptr ? PQresultErrorMessage(r) : "";
  throw std::runtime_error(doing + ": " + (*message != 0 ? message : PQerrorMessage(c_)));
}

void Conn::check(const Result& r, const std::string& doing, const Conn& conn) {
  if (!good(r.raw())) conn.fail(doing, r.raw());
}

Result Conn::exec(const std::string& sql) {
  Result r(PQexec(c_, sql.c_str()));
  check(r, sql.substr(0, 80), *this);
  return r;
}

void Conn::prepare(const char* name, const std::string& sql, int params) {
  Result r(PQprepare(c_, name, sql.c_str(), params, nullptr));
  check(r, std::string("prepare ") + name, *this);
}

Result Conn::run(const char* name, const std::vector<Param>& params) {
  const Arrays a(params);
  Result r(
      PQexecPrepared(c_, name, a.size(), a.values.data(), a.lengths.data(), a.formats.data(), 0));
  check(r, name, *this);
  return r;
}

std::vector<Result> Conn::pipeline(const std::vector<Statement>& statements) {
  if (PQenterPipelineMode(c_) != 1) fail("enter pipeline mode");
  for (const Statement& s : statements) {
    const Arrays a(s.params);
    if (PQsendQueryPrepared(c_, s.name, a.size(), a.values.data(), a.lengths.data(),
                            a.formats.data(), 0) != 1) {
      fail(std::string("send ") + s.name);
    }
  }
  if (PQpipelineSync(c_) != 1) fail("pipeline sync");
  std::vector<Result> results;
  for (std::size_t i = 0; i < statements.size(); ++i) {
    results.emplace_back(PQgetResult(c_));
    while (PGresult* end = PQgetResult(c_)) PQclear(end);  // the NULL after each statement
  }
  Result sync(PQgetResult(c_));
  if (PQresultStatus(sync.raw()) != PGRES_PIPELINE_SYNC) fail("pipeline sync result", sync.raw());
  PQexitPipelineMode(c_);
  for (std::size_t i = 0; i < results.size(); ++i) check(results[i], statements[i].name, *this);
  return results;
}

std::uint64_t Conn::copy_out(const std::string& sql) {
  Result started(PQexec(c_, sql.c_str()));
  if (PQresultStatus(started.raw()) != PGRES_COPY_OUT) fail("COPY", started.raw());
  std::uint64_t bytes = 0;
  for (;;) {
    char* chunk = nullptr;
    const int n = PQgetCopyData(c_, &chunk, 0);
    if (n == -1) break;
    if (n == -2) fail("COPY data");
    bytes += static_cast<std::uint64_t>(n);
    PQfreemem(chunk);
  }
  Result done(PQgetResult(c_));
  check(done, "COPY end", *this);
  while (PGresult* r = PQgetResult(c_)) PQclear(r);
  return bytes;
}

}  // namespace bench::pg
