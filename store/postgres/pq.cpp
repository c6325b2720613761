#include "store/postgres/pq.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>
#include <cstring>

#include "taskjournal/error.hpp"

namespace taskjournal::store::postgres {
namespace {

void put_be(char* out, std::uint64_t v, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

std::uint64_t get_be(const char* in, int width) {
  std::uint64_t v = 0;
  for (int i = 0; i < width; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

std::string trimmed(const char* s) {
  std::string out = s != nullptr ? s : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// The connection string as written, for a message when libpq could not parse it: a password=
// anywhere hides it whole, and a URI's user:password@ shows as user:***@ (userinfo ends at the
// first '@' before any '/', as libpq reads it).
std::string shown_conninfo(const std::string& conninfo) {
  if (conninfo.find("password") != std::string::npos) return "(conninfo)";
  const auto scheme = conninfo.find("://");
  if (scheme == std::string::npos) return conninfo;
  const auto start = scheme + 3;
  const auto at = conninfo.find_first_of("@/", start);
  if (at == std::string::npos || conninfo[at] != '@') return conninfo;
  const auto colon = conninfo.find(':', start);
  if (colon == std::string::npos || colon > at) return conninfo;
  return conninfo.substr(0, colon + 1) + "***" + conninfo.substr(at);
}

// "host=/tmp/d port=5432 dbname=x user=u": where the connection goes, from the options libpq
// resolved (defaults and environment included), never the password.
std::string describe_target(PGconn* conn, const std::string& conninfo) {
  std::string out;
  if (conn != nullptr) {
    PQconninfoOption* options = PQconninfo(conn);
    if (options != nullptr) {
      for (const char* key : {"host", "hostaddr", "port", "dbname", "user"}) {
        for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
          if (std::strcmp(o->keyword, key) == 0 && o->val != nullptr && *o->val != '\0') {
            if (!out.empty()) out += ' ';
            out += std::string(key) + "=" + o->val;
          }
        }
      }
      PQconninfoFree(options);
    }
  }
  if (out.empty()) out = shown_conninfo(conninfo);
  return out;
}

bool is_connection_state(std::string_view sqlstate) {
  return sqlstate.substr(0, 2) == "08" || sqlstate == "57P01" || sqlstate == "57P02" ||
         sqlstate == "57P03";
}

ErrorCode code_for(std::string_view sqlstate) {
  if (sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "55P03" || sqlstate == "57014") {
    return ErrorCode::Busy;
  }
  if (sqlstate == "25006") return ErrorCode::ReadOnly;
  return ErrorCode::Storage;
}

constexpr std::string_view kLostAdvice =
    "; the connection is lost (server shutdown or restart, failover, network): the next call "
    "reconnects; a write in flight was committed whole or not at all, so catch up before retrying "
    "it";

}  // namespace

// --- Params ---------------------------------------------------------------------------------

void Params::add(Oid type, const char* data, int length) {
  types_.push_back(static_cast<unsigned>(type));
  values_.push_back(data);
  lengths_.push_back(length);
  formats_.push_back(1);
}

Params& Params::int8(std::int64_t v) {
  scratch_.push_back(std::make_unique<char[]>(8));
  put_be(scratch_.back().get(), static_cast<std::uint64_t>(v), 8);
  add(Oid::Int8, scratch_.back().get(), 8);
  return *this;
}

Params& Params::int4(std::int32_t v) {
  scratch_.push_back(std::make_unique<char[]>(4));
  put_be(scratch_.back().get(), static_cast<std::uint32_t>(v), 4);
  add(Oid::Int4, scratch_.back().get(), 4);
  return *this;
}

Params& Params::text(std::string_view v) {
  // A zero-length value must still be a non-null pointer, or libpq sends NULL.
  add(Oid::Text, v.data() != nullptr ? v.data() : "", static_cast<int>(v.size()));
  return *this;
}

Params& Params::bytes(std::string_view v) {
  add(Oid::Bytea, v.data() != nullptr ? v.data() : "", static_cast<int>(v.size()));
  return *this;
}

Params& Params::null(Oid type) {
  add(type, nullptr, 0);
  return *this;
}

// --- Result ---------------------------------------------------------------------------------

void Result::Clear::operator()(pg_result* r) const noexcept { PQclear(r); }

bool Result::ok() const noexcept {
  if (!r_) return false;
  switch (PQresultStatus(r_.get())) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_COPY_OUT:
    case PGRES_PIPELINE_SYNC:
      return true;
    default:
      return false;
  }
}

bool Result::aborted() const noexcept {
  return r_ && PQresultStatus(r_.get()) == PGRES_PIPELINE_ABORTED;
}

std::string Result::sqlstate() const {
  if (!r_) return {};
  const char* s = PQresultErrorField(r_.get(), PG_DIAG_SQLSTATE);
  return s != nullptr ? s : "";
}

std::string Result::message() const {
  if (!r_) return {};
  const char* primary = PQresultErrorField(r_.get(), PG_DIAG_MESSAGE_PRIMARY);
  return trimmed(primary != nullptr ? primary : PQresultErrorMessage(r_.get()));
}

int Result::rows() const noexcept { return r_ ? PQntuples(r_.get()) : 0; }
int Result::columns() const noexcept { return r_ ? PQnfields(r_.get()) : 0; }

std::int64_t Result::affected() const noexcept {
  const char* n = r_ ? PQcmdTuples(r_.get()) : nullptr;
  return n != nullptr && *n != '\0' ? std::strtoll(n, nullptr, 10) : 0;
}

bool Result::is_null(int row, int col) const noexcept {
  return PQgetisnull(r_.get(), row, col) != 0;
}

std::string_view Result::bytes(int row, int col) const noexcept {
  return {PQgetvalue(r_.get(), row, col),
          static_cast<std::size_t>(PQgetlength(r_.get(), row, col))};
}

std::int64_t Result::int8(int row, int col) const {
  const auto v = bytes(row, col);
  if (v.size() != 8 || is_null(row, col)) {
    throw Error(ErrorCode::Corrupt, "postgresql: column " + std::to_string(col) +
                                        " is not a binary int8 (" + std::to_string(v.size()) +
                                        " bytes)");
  }
  return static_cast<std::int64_t>(get_be(v.data(), 8));
}

std::int32_t Result::int4(int row, int col) const {
  const auto v = bytes(row, col);
  if (v.size() != 4 || is_null(row, col)) {
    throw Error(ErrorCode::Corrupt, "postgresql: column " + std::to_string(col) +
                                        " is not a binary int4 (" + std::to_string(v.size()) +
                                        " bytes)");
  }
  return static_cast<std::int32_t>(get_be(v.data(), 4));
}

// --- CopyRow --------------------------------------------------------------------------------

std::int64_t CopyRow::int8(int col) const {
  const auto& f = fields_[static_cast<std::size_t>(col)];
  if (!f || f->size() != 8) {
    throw Error(ErrorCode::Corrupt,
                "postgresql: COPY field " + std::to_string(col) + " is not a binary int8");
  }
  return static_cast<std::int64_t>(get_be(f->data(), 8));
}

std::int32_t CopyRow::int4(int col) const {
  const auto& f = fields_[static_cast<std::size_t>(col)];
  if (!f || f->size() != 4) {
    throw Error(ErrorCode::Corrupt,
                "postgresql: COPY field " + std::to_string(col) + " is not a binary int4");
  }
  return static_cast<std::int32_t>(get_be(f->data(), 4));
}

// --- Connection -----------------------------------------------------------------------------

Connection::Connection(const std::string& conninfo) {
  // Defaults first; the conninfo (expanded from the dbname slot) overrides them.
  const char* keywords[] = {"connect_timeout", "fallback_application_name", "dbname", nullptr};
  const char* values[] = {"10", "taskjournal", conninfo.c_str(), nullptr};
  conn_ = PQconnectdbParams(keywords, values, 1);
  target_ = describe_target(conn_, conninfo);
  if (conn_ == nullptr) {
    throw Error(ErrorCode::Storage, "postgresql " + target_ + ": connect: out of memory");
  }
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);  // notices are not errors
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string message = trimmed(PQerrorMessage(conn_));
    PQfinish(conn_);
    conn_ = nullptr;
    throw Error(ErrorCode::Storage,
                "postgresql " + target_ + ": cannot connect: " + message +
                    "; check that the connection string names a running server (host or socket "
                    "directory, port, database, user) and that it accepts this user");
  }
}

Connection::~Connection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

bool Connection::usable() const noexcept {
  return !broken_ && conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK;
}
int Connection::backend_pid() const noexcept { return PQbackendPID(conn_); }
bool Connection::idle() const noexcept { return PQtransactionStatus(conn_) == PQTRANS_IDLE; }

std::string Connection::where(std::string_view doing) const {
  return "postgresql " + target_ + ": " + std::string(doing);
}

void Connection::fail(std::string_view doing, const Result& r) const {
  const std::string state = r.sqlstate();
  std::string message = r ? r.message() : "";
  if (message.empty()) message = trimmed(PQerrorMessage(conn_));
  if (message.empty()) message = "no result from the server";
  std::string text = where(doing) + ": " + message;
  if (!state.empty()) text += " (SQLSTATE " + state + ")";
  // libpq's own failures carry no SQLSTATE: a lost server (PQstatus may still say OK when a
  // send failed first) or a protocol error. Either way this connection is done.
  if (state.empty() || is_connection_state(state)) broken_ = true;
  if (!usable()) {
    throw Error(ErrorCode::Storage, text + std::string(kLostAdvice));
  }
  const ErrorCode code = code_for(state);
  if (code == ErrorCode::Busy) text += "; another transaction held what this one needed: retry";
  throw Error(code, text);
}

Result Connection::exec(const std::string& sql) {
  Result r(PQexec(conn_, sql.c_str()));
  if (!r.ok()) fail("exec \"" + sql.substr(0, 60) + "\"", r);
  return r;
}

Result Connection::exec_params(const std::string& sql, const Params& params, bool text_results) {
  Result r(PQexecParams(conn_, sql.c_str(), params.size(), params.types(), params.values(),
                        params.lengths(), params.formats(), text_results ? 0 : 1));
  if (!r.ok()) fail("exec \"" + sql.substr(0, 60) + "\"", r);
  return r;
}

void Connection::prepare(const std::string& name, const std::string& sql,
                         const std::vector<Oid>& types) {
  std::vector<unsigned> oids;
  for (Oid t : types) oids.push_back(static_cast<unsigned>(t));
  Result r(PQprepare(conn_, name.c_str(), sql.c_str(), static_cast<int>(oids.size()), oids.data()));
  if (!r.ok()) fail("prepare " + name, r);
}

Result Connection::exec_prepared(const std::string& name, const Params& params) {
  Result r(PQexecPrepared(conn_, name.c_str(), params.size(), params.values(), params.lengths(),
                          params.formats(), 1));
  if (!r.ok()) fail("run " + name, r);
  return r;
}

std::int64_t Connection::copy_out(const std::string& copy_sql,
                                  const std::function<void(const CopyRow&)>& on_row) {
  static constexpr char kSignature[] = "PGCOPY\n\377\r\n";  // + '\0': 11 bytes
  Result started(PQexec(conn_, copy_sql.c_str()));
  if (!started || PQresultStatus(started.get()) != PGRES_COPY_OUT) fail("COPY out", started);

  auto corrupt = [&](const std::string& what) {
    return Error(ErrorCode::Corrupt, where("COPY out") + ": malformed binary COPY stream: " + what);
  };
  // Leaves the connection idle after an early exit: cancel, then drain what is still coming.
  auto abandon = [&] {
    if (PGcancel* cancel = PQgetCancel(conn_)) {
      char ignored[256];
      PQcancel(cancel, ignored, sizeof ignored);
      PQfreeCancel(cancel);
    }
    char* chunk = nullptr;
    while (PQgetCopyData(conn_, &chunk, 0) > 0) PQfreemem(chunk);
    while (PGresult* r = PQgetResult(conn_)) PQclear(r);
  };

  std::string buffer;  // unparsed bytes; CopyData messages need not align with tuples
  std::size_t pos = 0;
  bool header_seen = false, trailer_seen = false;
  std::int64_t count = 0;
  CopyRow row;
  bool in_copy = true;
  try {
    for (;;) {
      char* chunk = nullptr;
      const int n = PQgetCopyData(conn_, &chunk, 0);
      if (n == -1) {  // end of COPY; the final result follows
        in_copy = false;
        break;
      }
      if (n == -2) fail("COPY out", Result{});
      buffer.erase(0, pos);
      pos = 0;
      buffer.append(chunk, static_cast<std::size_t>(n));
      PQfreemem(chunk);

      auto have = [&](std::size_t k) { return buffer.size() - pos >= k; };
      if (!header_seen) {
        if (!have(19)) continue;
        if (std::memcmp(buffer.data() + pos, kSignature, 11) != 0) throw corrupt("bad signature");
        const auto ext = get_be(buffer.data() + pos + 15, 4);
        if (!have(19 + ext)) continue;
        pos += 19 + ext;
        header_seen = true;
      }
      while (!trailer_seen && have(2)) {
        const auto fields = static_cast<std::int16_t>(get_be(buffer.data() + pos, 2));
        if (fields == -1) {
          trailer_seen = true;
          pos += 2;
          break;
        }
        if (fields < 0) throw corrupt("negative field count");
        std::size_t p = pos + 2;
        row.fields_.clear();
        bool complete = true;
        for (int f = 0; f < fields; ++f) {
          if (buffer.size() - p < 4) {
            complete = false;
            break;
          }
          const auto len = static_cast<std::int32_t>(get_be(buffer.data() + p, 4));
          p += 4;
          if (len == -1) {
            row.fields_.emplace_back(std::nullopt);
            continue;
          }
          if (len < 0) throw corrupt("negative field length");
          if (buffer.size() - p < static_cast<std::size_t>(len)) {
            complete = false;
            break;
          }
          row.fields_.emplace_back(
              std::string_view(buffer.data() + p, static_cast<std::size_t>(len)));
          p += static_cast<std::size_t>(len);
        }
        if (!complete) break;
        pos = p;
        ++count;
        on_row(row);
      }
    }
  } catch (...) {
    if (in_copy && PQstatus(conn_) == CONNECTION_OK) abandon();
    throw;
  }
  Result done(PQgetResult(conn_));
  if (!done.ok()) {
    while (PGresult* r = PQgetResult(conn_)) PQclear(r);
    fail("COPY out", done);
  }
  while (PGresult* r = PQgetResult(conn_)) PQclear(r);
  if (!header_seen || !trailer_seen || pos != buffer.size()) {
    throw corrupt(!header_seen    ? "no header"
                  : !trailer_seen ? "no trailer"
                                  : "bytes after trailer");
  }
  return count;
}

void Connection::listen(const std::string& channel) {
  char* quoted = PQescapeIdentifier(conn_, channel.c_str(), channel.size());
  if (quoted == nullptr) fail("LISTEN " + channel, Result{});
  const std::string sql = std::string("LISTEN ") + quoted;
  PQfreemem(quoted);
  exec(sql);
}

std::optional<Notification> Connection::wait_notification(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (PGnotify* n = PQnotifies(conn_)) {
      Notification out{n->relname, n->extra != nullptr ? n->extra : "", n->be_pid};
      PQfreemem(n);
      return out;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) return std::nullopt;
    pollfd fd{PQsocket(conn_), POLLIN, 0};
    if (fd.fd < 0) fail("wait for a notification", Result{});
    const int ready = ::poll(&fd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno != EINTR) {
      throw Error(ErrorCode::Storage,
                  where("wait for a notification") + ": poll: " + std::strerror(errno));
    }
    if (ready > 0 && PQconsumeInput(conn_) == 0) fail("wait for a notification", Result{});
  }
}

// --- Pipeline -------------------------------------------------------------------------------

Pipeline::Pipeline(Connection& conn) : conn_(conn) {
  if (PQenterPipelineMode(conn_.raw()) != 1) conn_.fail("enter pipeline mode", Result{});
}

Pipeline::~Pipeline() {
  if (PQpipelineStatus(conn_.raw()) != PQ_PIPELINE_OFF && PQstatus(conn_.raw()) == CONNECTION_OK) {
    if (queued_ > 0) {
      try {
        sync();
      } catch (...) {  // nothing is thrown from destructors; the connection is broken anyway
      }
    }
    PQexitPipelineMode(conn_.raw());
  }
}

void Pipeline::send_prepared(const std::string& name, const Params& params) {
  if (PQsendQueryPrepared(conn_.raw(), name.c_str(), params.size(), params.values(),
                          params.lengths(), params.formats(), 1) != 1) {
    conn_.fail("send " + name, Result{});
  }
  ++queued_;
}

void Pipeline::send(const std::string& sql, const Params& params) {
  if (PQsendQueryParams(conn_.raw(), sql.c_str(), params.size(), params.types(), params.values(),
                        params.lengths(), params.formats(), 1) != 1) {
    conn_.fail("send \"" + sql.substr(0, 60) + "\"", Result{});
  }
  ++queued_;
}

std::vector<Result> Pipeline::sync(bool keep_open) {
  PGconn* c = conn_.raw();
  const int expected = queued_;
  queued_ = 0;
  if (PQpipelineSync(c) != 1 || PQflush(c) != 0) conn_.fail("send pipeline", Result{});
  std::vector<Result> results;
  results.reserve(static_cast<std::size_t>(expected));
  while (static_cast<int>(results.size()) < expected) {
    Result r(PQgetResult(c));
    if (!r) conn_.fail("read pipeline results", r);
    // PQgetResult then returns NULL to end this statement's results.
    while (PGresult* extra = PQgetResult(c)) PQclear(extra);
    if (PQstatus(c) != CONNECTION_OK) conn_.fail("read pipeline results", r);
    results.push_back(std::move(r));
  }
  Result end(PQgetResult(c));
  if (!end || PQresultStatus(end.get()) != PGRES_PIPELINE_SYNC) {
    conn_.fail("read pipeline sync", end);
  }
  // A failure inside BEGIN ... COMMIT leaves the transaction aborted: end it, writing nothing.
  const auto tx = PQtransactionStatus(c);
  if (tx == PQTRANS_INERROR || (tx == PQTRANS_INTRANS && !keep_open)) {
    PQexitPipelineMode(c);
    Result rolled(PQexec(c, "ROLLBACK"));
    if (!rolled.ok()) conn_.fail("roll back a failed pipeline", rolled);
    if (PQenterPipelineMode(c) != 1) conn_.fail("enter pipeline mode", Result{});
  }
  return results;
}

int Pipeline::first_failure(const std::vector<Result>& results) noexcept {
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (!results[i].ok() && !results[i].aborted()) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace taskjournal::store::postgres
