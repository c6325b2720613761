#include "support/journals.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>

#include "store/postgres/pq.hpp"
#include "support/pg_server.hpp"

namespace taskjournal::testing {
namespace {

// This process's server. A child process (fork) that exits through the static destructors must
// not stop its parent's server.
struct ProcessServer {
  std::unique_ptr<PgServer> server;
  pid_t owner = ::getpid();
  ~ProcessServer() {
    if (::getpid() != owner) static_cast<void>(server.release());
  }
};

// The socket directory of the server ctest started for the whole run (fixture pg_shared,
// support/pg_shared_server.cpp), if the contract suites run on PostgreSQL, the file names one
// and it accepts connections; empty otherwise (the process then starts a server of its own).
// The tests in tests/postgres/ never share: some of them kill servers or every connection.
std::string shared_server_dir() {
#ifdef TASKJOURNAL_TEST_PG_SHARED_FILE
  if (test_engine() != TestEngine::Postgresql) return {};
  std::ifstream in(TASKJOURNAL_TEST_PG_SHARED_FILE);
  std::string dir;
  if (!std::getline(in, dir) || dir.empty()) return {};
  try {
    store::postgres::Connection probe("host=" + dir + " port=5432 dbname=postgres user=tj");
    return dir;
  } catch (const std::exception&) {
    return {};  // a stale file of an earlier run
  }
#else
  return {};
#endif
}

std::string process_server_conninfo(const std::string& extra) {
  static ProcessServer s;
  static std::mutex mutex;
  static const std::string shared = shared_server_dir();
  std::lock_guard lock(mutex);
  if (!shared.empty()) {
    std::string out = "host=" + shared + " port=5432 dbname=postgres user=tj";
    return extra.empty() ? out : out + " " + extra;
  }
  if (!s.server) s.server = std::make_unique<PgServer>();
  return s.server->conninfo(extra);
}

std::string schema_for(const TempDir& dir, std::string_view name) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a of "<dir>/<name>"
  for (const char c : dir.path().string() + "/" + std::string(name)) {
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  }
  char buf[24];
  std::snprintf(buf, sizeof buf, "tj_%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

TestEngine test_engine() {
  static const TestEngine engine = [] {
    const char* v = std::getenv("TASKJOURNAL_TEST_ENGINE");
    const std::string value = v ? v : "sqlite";
    if (value == "sqlite") return TestEngine::Sqlite;
    if (value == "postgresql") return TestEngine::Postgresql;
    std::fprintf(stderr, "TASKJOURNAL_TEST_ENGINE=%s: say sqlite or postgresql\n", value.c_str());
    std::abort();
  }();
  return engine;
}

const char* engine_name(TestEngine engine) noexcept {
  return engine == TestEngine::Postgresql ? "postgresql" : "sqlite";
}

std::string test_server_conninfo(const std::string& extra) {
  return process_server_conninfo(extra);
}

std::string JournalLocation::uri() const {
  if (engine == TestEngine::Sqlite) return where;
  // where: "host=<dir> port=5432 dbname=postgres user=tj options='-c search_path=<schema>'"
  const auto value = [&](const std::string& key) {
    const auto at = where.find(key + "=");
    const auto from = at + key.size() + 1;
    return where.substr(from, where.find(' ', from) - from);
  };
  const auto schema_at = where.find("search_path=") + 12;
  const std::string schema = where.substr(schema_at, where.find('\'', schema_at) - schema_at);
  return "postgresql:///" + value("dbname") + "?host=" + value("host") + "&port=" + value("port") +
         "&user=" + value("user") + "&options=-c%20search_path%3D" + schema;
}

JournalLocation fresh_journal() {
  if (test_engine() == TestEngine::Sqlite) return {TestEngine::Sqlite, ":memory:"};
  static std::atomic<unsigned> next{0};
  const std::string schema =
      "tj_fresh_" + std::to_string(::getpid()) + "_" + std::to_string(next.fetch_add(1));
  const std::string base = test_server_conninfo();
  store::postgres::Connection(base).exec("CREATE SCHEMA " + schema);
  return {TestEngine::Postgresql, base + " options='-c search_path=" + schema + "'"};
}

JournalLocation journal_at(const TempDir& dir, std::string_view name) {
  return journal_at(dir, name, test_engine());
}

JournalLocation journal_at(const TempDir& dir, std::string_view name, TestEngine engine) {
  if (engine == TestEngine::Sqlite) return {engine, (dir / name).string()};
  const std::string schema = schema_for(dir, name);
  const std::string base = test_server_conninfo();
  store::postgres::Connection(base).exec("CREATE SCHEMA IF NOT EXISTS " + schema);
  return {engine, base + " options='-c search_path=" + schema + "'"};
}

Registry open_registry(const JournalLocation& at, Options options) {
  if (at.engine == TestEngine::Postgresql) {
    return Registry::open_postgresql(at.where, std::move(options));
  }
  return Registry::open(at.where, std::move(options));
}

JournalReader open_reader(const JournalLocation& at, const ReaderOptions& options) {
  if (at.engine == TestEngine::Postgresql) {
    return JournalReader::open_postgresql(at.where, options);
  }
  return JournalReader::open(at.where, options);
}

}  // namespace taskjournal::testing
