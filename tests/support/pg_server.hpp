// A throwaway PostgreSQL server for tests (notes/postgres-journal.md section 6).
//
// The first PgServer of a machine runs initdb once into a cached template
// (/tmp/taskjournal-pg-<uid>/template-<version>, built under a lock file so parallel ctest
// processes do not race); every PgServer then copies the template into a fresh temporary
// directory and starts `postgres` on a Unix socket there (listen_addresses = '', nothing on the
// network), with fsync off unless durability is asked for. Run as root (CI), the server runs as
// the `postgres` system user of Debian's postgresql package, which owns the directory; PostgreSQL
// refuses to run as root. The destructor stops it (`pg_ctl stop -m immediate`) and removes the
// directory.
//
// Never skips: without the server binaries (or, as root, the postgres user) the constructor
// throws std::runtime_error saying to run scripts/setup.sh.
//
// Thread-safety: one thread controls a PgServer; clients may connect from any thread.
#pragma once

#include <string>

namespace taskjournal::testing {

struct PgServerOptions {
  /// fsync, full_page_writes on: for tests of what survives a crash of the host. Off by default
  /// (a killed server still keeps everything written to the kernel).
  bool durable = false;
  /// The server's max_connections.
  int max_connections = 40;
};

class PgServer {
 public:
  /// Starts a fresh server and waits until it accepts connections. Throws std::runtime_error
  /// with the server's log when that fails.
  explicit PgServer(PgServerOptions options = {});
  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  /// "host=<dir> port=5432 dbname=postgres user=tj" plus `extra` (e.g. "options='-c
  /// search_path=s1'").
  std::string conninfo(const std::string& extra = "") const;
  /// The socket directory (also the server's temporary directory).
  const std::string& dir() const noexcept { return dir_; }

  /// Kills the postmaster and every server process with SIGKILL and waits until they are gone:
  /// a crash of the server, not of the host.
  void kill9();
  /// `pg_ctl stop -m immediate`: the server shuts down without a checkpoint (crash recovery on
  /// the next start). No-op when it is not running.
  void stop_immediate();
  /// Starts the (stopped or killed) server again on the same directory and waits for it.
  void start();
  /// True while the postmaster runs.
  bool running() const;

  /// Leaves the server running: the destructor will neither stop it nor remove its directory
  /// (a server shared by a whole ctest run, support/pg_shared_server.cpp).
  void release() noexcept;
  /// A PgServer for the server an earlier process started and released in `dir`; its destructor
  /// stops it and removes the directory.
  static PgServer adopt(const std::string& dir);
  PgServer(PgServer&&) = default;

 private:
  struct Adopt {};
  PgServer(Adopt, const std::string& dir);
  int postmaster_pid() const;

  PgServerOptions options_;
  std::string bindir_, dir_, data_;
  bool as_postgres_user_ = false;
};

}  // namespace taskjournal::testing
