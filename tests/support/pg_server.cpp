#include "support/pg_server.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace taskjournal::testing {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSetupHint =
    "run scripts/setup.sh (it installs the Debian packages postgresql-15 and libpq-dev)";

struct Ran {
  int status = -1;  // the exit status, or -1 if it did not exit normally
  std::string output;
};

// Runs argv (no shell), stdout and stderr captured together.
Ran run(const std::vector<std::string>& argv) {
  char path[] = "/tmp/taskjournal-pg-out-XXXXXX";
  const int out = ::mkstemp(path);
  if (out < 0) throw std::runtime_error(std::string("pg_server: mkstemp: ") + std::strerror(errno));
  ::unlink(path);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out, 1);
    ::dup2(out, 2);
    const int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, 0);
    ::close_range(3, ~0U, 0);  // the server must not inherit the tests' connections
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  Ran ran;
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) < 0) {
    ::close(out);
    throw std::runtime_error(std::string("pg_server: fork/wait: ") + std::strerror(errno));
  }
  ran.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  ::lseek(out, 0, SEEK_SET);
  char buf[4096];
  for (ssize_t n; (n = ::read(out, buf, sizeof buf)) > 0;)
    ran.output.append(buf, static_cast<std::size_t>(n));
  ::close(out);
  return ran;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

std::string command_line(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

std::string tail(const std::string& file, std::size_t max = 3000) {
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  return text.size() > max ? text.substr(text.size() - max) : text;
}

bool is_exe(const fs::path& p) { return ::access(p.c_str(), X_OK) == 0; }

std::string find_bindir() {
  std::vector<std::string> tried;
  auto ok = [&](const std::string& dir) {
    tried.push_back(dir);
    return !dir.empty() && is_exe(fs::path(dir) / "postgres") && is_exe(fs::path(dir) / "initdb") &&
           is_exe(fs::path(dir) / "pg_ctl");
  };
  if (const char* env = std::getenv("TASKJOURNAL_PG_BINDIR"); env != nullptr && ok(env)) return env;
  try {
    const Ran r = run({"pg_config", "--bindir"});
    if (r.status == 0 && ok(trim(r.output))) return trim(r.output);
  } catch (const std::exception&) {
  }
  if (ok("/usr/lib/postgresql/15/bin")) return "/usr/lib/postgresql/15/bin";
  std::vector<fs::path> versions;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec))
    versions.push_back(e.path());
  std::sort(versions.rbegin(), versions.rend());
  for (const auto& v : versions) {
    if (ok((v / "bin").string())) return (v / "bin").string();
  }
  std::string list;
  for (const auto& t : tried) list += (list.empty() ? "" : ", ") + t;
  throw std::runtime_error(
      "pg_server: no PostgreSQL server binaries (postgres, initdb, pg_ctl) in " + list + ": " +
      kSetupHint);
}

// "15.18" from "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)".
std::string server_version(const std::string& bindir) {
  const Ran r = run({bindir + "/postgres", "-V"});
  std::istringstream words(r.output);
  std::string w, version;
  while (words >> w) {
    if (!w.empty() && std::isdigit(static_cast<unsigned char>(w[0]))) {
      version = w;
      break;
    }
  }
  if (r.status != 0 || version.empty()) {
    throw std::runtime_error("pg_server: " + bindir + "/postgres -V failed: " + r.output + "; " +
                             kSetupHint);
  }
  return version;
}

void make_dir(const fs::path& dir, mode_t mode) {
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) {
    throw std::runtime_error("pg_server: mkdir " + dir.string() + ": " + std::strerror(errno));
  }
}

void chown_to(const fs::path& path, const passwd* user) {
  if (user != nullptr && ::chown(path.c_str(), user->pw_uid, user->pw_gid) != 0) {
    throw std::runtime_error("pg_server: chown " + path.string() + ": " + std::strerror(errno));
  }
}

// pids whose parent is `parent`, from /proc.
std::vector<int> children_of(int parent) {
  std::vector<int> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 1));
    char state = 0;
    int ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) out.push_back(std::stoi(name));
  }
  return out;
}

// Alive and not a zombie (a zombie may wait for a parent that never reaps it).
bool alive(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z' &&
         line[close + 2] != 'X';
}

}  // namespace

PgServer::PgServer(PgServerOptions options) : options_(options) {
  bindir_ = find_bindir();
  const std::string version = server_version(bindir_);
  const passwd* postgres = nullptr;
  if (::geteuid() == 0) {
    postgres = ::getpwnam("postgres");
    if (postgres == nullptr) {
      throw std::runtime_error(
          "pg_server: running as root, and PostgreSQL refuses to run as root, but there is no "
          "`postgres` system user to run it as: " +
          std::string(kSetupHint));
    }
    as_postgres_user_ = true;
  }

  const fs::path cache = "/tmp/taskjournal-pg-" + std::to_string(::geteuid());
  make_dir(cache, 0755);
  const fs::path tmpl = cache / ("template-" + version);
  {
    // One initdb per machine and version; concurrent test processes wait for it here.
    const std::string lock_path = tmpl.string() + ".lock";
    const int lock = ::open(lock_path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (lock < 0 || ::flock(lock, LOCK_EX) != 0) {
      throw std::runtime_error("pg_server: lock " + lock_path + ": " + std::strerror(errno));
    }
    struct Unlock {
      int fd;
      ~Unlock() { ::close(fd); }
    } unlock{lock};
    if (!fs::exists(tmpl / "data" / "PG_VERSION")) {
      const fs::path building = tmpl.string() + ".building";
      fs::remove_all(building);
      make_dir(building, 0700);
      chown_to(building, postgres);
      std::vector<std::string> argv = {bindir_ + "/initdb",
                                       "-D",
                                       (building / "data").string(),
                                       "-A",
                                       "trust",
                                       "-U",
                                       "tj",
                                       "-N",
                                       "-E",
                                       "UTF8",
                                       "--no-locale"};
      if (as_postgres_user_) argv.insert(argv.begin(), {"runuser", "-u", "postgres", "--"});
      const Ran r = run(argv);
      if (r.status != 0) {
        throw std::runtime_error("pg_server: " + command_line(argv) + " failed:\n" + r.output);
      }
      fs::remove_all(tmpl);
      fs::rename(building, tmpl);
    }
  }

  std::string dir_template = (cache / "srv-XXXXXX").string();
  if (::mkdtemp(dir_template.data()) == nullptr) {
    throw std::runtime_error("pg_server: mkdtemp in " + cache.string() + ": " +
                             std::strerror(errno));
  }
  dir_ = dir_template;
  data_ = dir_ + "/data";
  chown_to(dir_, postgres);
  const Ran copied = run({"cp", "-a", (tmpl / "data").string(), data_});
  if (copied.status != 0) {
    throw std::runtime_error("pg_server: cp -a " + (tmpl / "data").string() + " " + data_ +
                             " failed: " + copied.output);
  }
  {
    std::ofstream conf(data_ + "/postgresql.conf", std::ios::app);
    const char* on_off = options_.durable ? "on" : "off";
    conf << "\n# taskjournal tests (tests/support/pg_server.cpp)\n"
         << "listen_addresses = ''\n"
         << "unix_socket_directories = '" << dir_ << "'\n"
         << "port = 5432\n"
         << "fsync = " << on_off << "\n"
         << "full_page_writes = " << on_off << "\n"
         << "max_connections = " << options_.max_connections << "\n"
         << "shared_buffers = 32MB\n"
         << "max_wal_size = 256MB\n";
    if (!conf) throw std::runtime_error("pg_server: cannot write " + data_ + "/postgresql.conf");
  }
  start();
}

void PgServer::release() noexcept {
  dir_.clear();
  data_.clear();
}

PgServer::PgServer(Adopt, const std::string& dir)
    : bindir_(find_bindir()),
      dir_(dir),
      data_(dir + "/data"),
      as_postgres_user_(::geteuid() == 0) {}

PgServer PgServer::adopt(const std::string& dir) { return PgServer(Adopt{}, dir); }

PgServer::~PgServer() {
  try {
    if (running()) stop_immediate();
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  } catch (...) {  // nothing is thrown from destructors
  }
}

std::string PgServer::conninfo(const std::string& extra) const {
  std::string out = "host=" + dir_ + " port=5432 dbname=postgres user=tj";
  if (!extra.empty()) out += " " + extra;
  return out;
}

int PgServer::postmaster_pid() const {
  std::ifstream pidfile(data_ + "/postmaster.pid");
  int pid = 0;
  if (!(pidfile >> pid)) return 0;
  return pid;
}

bool PgServer::running() const {
  const int pid = postmaster_pid();
  return pid > 0 && alive(pid);
}

void PgServer::start() {
  std::vector<std::string> argv = {
      bindir_ + "/pg_ctl", "-D", data_, "-l", dir_ + "/log", "-w", "-t", "60", "start"};
  if (as_postgres_user_) argv.insert(argv.begin(), {"runuser", "-u", "postgres", "--"});
  const Ran r = run(argv);
  if (r.status != 0) {
    throw std::runtime_error("pg_server: " + command_line(argv) + " failed:\n" + r.output +
                             "\nserver log " + dir_ + "/log:\n" + tail(dir_ + "/log"));
  }
}

void PgServer::stop_immediate() {
  if (!running()) return;
  std::vector<std::string> argv = {bindir_ + "/pg_ctl", "-D", data_, "-m",
                                   "immediate",         "-w", "stop"};
  if (as_postgres_user_) argv.insert(argv.begin(), {"runuser", "-u", "postgres", "--"});
  const Ran r = run(argv);
  if (r.status != 0 && running()) {
    throw std::runtime_error("pg_server: " + command_line(argv) + " failed:\n" + r.output);
  }
}

void PgServer::kill9() {
  const int pid = postmaster_pid();
  if (pid <= 0 || !alive(pid)) return;
  ::kill(pid, SIGSTOP);  // no new backend between listing the children and killing them
  std::vector<int> victims = children_of(pid);
  victims.push_back(pid);
  for (int v : victims) ::kill(v, SIGKILL);
  for (int v : victims) {
    while (alive(v)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // A killed postmaster may linger as a zombie nobody reaps, and PostgreSQL takes a lock file
  // naming a pid that still exists for a running server: remove the lock files, as a reboot
  // would. Recovery is driven by pg_control, not by these files.
  std::error_code ec;
  fs::remove(data_ + "/postmaster.pid", ec);
  fs::remove(dir_ + "/.s.PGSQL.5432.lock", ec);
  fs::remove(dir_ + "/.s.PGSQL.5432", ec);
}

}  // namespace taskjournal::testing
