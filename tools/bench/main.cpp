// taskjournal-bench: taskjournal against the raw SQLite limit and the snapshot design it replaces.
//
// Three contenders run identical workloads in one process, interleaved round by round; each
// figure is the median over the rounds. Writes a Markdown report (and a gnuplot PNG of open time
// and memory against journal size) — see README "Benchmarks" and docs/benchmarks.md.
//
//   taskjournal-bench [--quick] [--rounds R] [--out FILE.md] [--dir DIR] [--open-sizes a,b,c]
//                     [--only a|b|batch|c]
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <sqlite3.h>

#include "snapshot.hpp"
#include "taskjournal/taskjournal.hpp"
#include "workload.hpp"

namespace fs = std::filesystem;
namespace tj = taskjournal;
using Clock = std::chrono::steady_clock;

namespace {

using bench::kCallsPerLifecycle;
using bench::lifecycle;
using bench::median;
using bench::wall_now;

struct Settings {
  int rounds = 3;
  int full_tasks = 40;      // workload (a) with Durability::Full: tasks per round (17 calls each)
  int normal_tasks = 400;   // workload (a) with Durability::Normal
  int read_tasks = 10000;   // workload (b): registry size
  int read_ops = 20000;     // workload (b): keys per measurement, repeated for at least 0.3 s
  int batch_calls = 20000;  // batched appends, 1,000 per transaction
  std::vector<std::uint64_t> open_sizes{10'000, 100'000, 1'000'000};
  fs::path dir = fs::temp_directory_path() / "taskjournal-bench";
  fs::path out = "docs/benchmarks.md";
  std::string only;  // empty: every workload; else one of a, b, batch, c
  bool runs(const std::string& workload) const { return only.empty() || only == workload; }
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void remove_journal(const fs::path& p) {
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(p.string() + suffix);
}

// ---- workload (a): one task's lifecycle, 17 calls
// ------------------------------------------------

// The heading of docs/benchmarks.md's PostgreSQL section (tools/bench/pg_main.cpp), which this
// report leaves in place.
constexpr const char* kPostgresSection = "\n## PostgreSQL";

// (c): how far before the end of each journal its newest checkpoint is written.
constexpr std::uint64_t kCheckpointTail = 8'500;

// ---- raw: the same rows appended with bare SQLite
// ------------------------------------------------

struct Row {
  std::int64_t seq, version, recorded_at;
  std::string type, session_id, task_id, payload, hash;
};

std::vector<Row> read_rows(const fs::path& journal) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(journal.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db,
                     "SELECT seq, type, version, recorded_at, session_id, task_id, payload, hash "
                     "FROM events ORDER BY seq",
                     -1, &s, nullptr);
  std::vector<Row> rows;
  auto blob = [&](int i) {
    return std::string(static_cast<const char*>(sqlite3_column_blob(s, i)),
                       static_cast<std::size_t>(sqlite3_column_bytes(s, i)));
  };
  while (sqlite3_step(s) == SQLITE_ROW) {
    rows.push_back({sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 2),
                    sqlite3_column_int64(s, 3), blob(1), blob(4), blob(5), blob(6), blob(7)});
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return rows;
}

class RawJournal {
 public:
  RawJournal(const fs::path& path, tj::Durability durability) {
    sqlite3_open(path.c_str(), &db_);
    exec("PRAGMA journal_mode=WAL");
    exec(durability == tj::Durability::Full ? "PRAGMA synchronous=FULL"
                                            : "PRAGMA synchronous=NORMAL");
    exec(R"sql(CREATE TABLE IF NOT EXISTS events (
      seq INTEGER PRIMARY KEY CHECK (seq > 0), type TEXT NOT NULL, version INTEGER NOT NULL,
      recorded_at INTEGER NOT NULL, session_id TEXT NOT NULL, task_id TEXT NOT NULL,
      payload BLOB NOT NULL, hash BLOB NOT NULL);
      CREATE INDEX IF NOT EXISTS events_by_task ON events(task_id, seq);
      CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'immutable'); END;
      CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, 'immutable'); END;)sql");
    sqlite3_prepare_v2(db_, "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", -1, &insert_,
                       nullptr);
  }
  ~RawJournal() {
    sqlite3_finalize(insert_);
    sqlite3_close(db_);
  }
  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error(m);
    }
  }
  void append(const Row& r) {
    sqlite3_bind_int64(insert_, 1, r.seq);
    sqlite3_bind_text(insert_, 2, r.type.data(), int(r.type.size()), SQLITE_STATIC);
    sqlite3_bind_int64(insert_, 3, r.version);
    sqlite3_bind_int64(insert_, 4, r.recorded_at);
    sqlite3_bind_text(insert_, 5, r.session_id.data(), int(r.session_id.size()), SQLITE_STATIC);
    sqlite3_bind_text(insert_, 6, r.task_id.data(), int(r.task_id.size()), SQLITE_STATIC);
    sqlite3_bind_blob(insert_, 7, r.payload.data(), int(r.payload.size()), SQLITE_STATIC);
    sqlite3_bind_blob(insert_, 8, r.hash.data(), int(r.hash.size()), SQLITE_STATIC);
    if (sqlite3_step(insert_) != SQLITE_DONE) throw std::runtime_error(sqlite3_errmsg(db_));
    sqlite3_reset(insert_);
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
};

// Full scan of every column of every row: what the fold reads, without the fold.
double raw_scan_seconds(const fs::path& journal, std::uint64_t* rows_out) {
  const auto start = Clock::now();
  sqlite3* db = nullptr;
  sqlite3_open_v2(journal.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db,
                     "SELECT seq, type, version, recorded_at, session_id, task_id, payload, hash "
                     "FROM events WHERE seq > ? ORDER BY seq",
                     -1, &s, nullptr);
  sqlite3_bind_int64(s, 1, 0);
  std::uint64_t rows = 0, bytes = 0;
  while (sqlite3_step(s) == SQLITE_ROW) {
    for (int c : {1, 4, 5, 6, 7}) bytes += static_cast<std::uint64_t>(sqlite3_column_bytes(s, c));
    rows += static_cast<std::uint64_t>(sqlite3_column_int64(s, 0) > 0);
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  if (rows_out) *rows_out = rows + (bytes == 0);
  return seconds_since(start);
}

// Bytes of the events table's rows and of the newest checkpoint's chunks, as SQLite stores them.
std::pair<double, double> table_megabytes(const fs::path& journal) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(journal.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  auto sum = [&](const char* sql) {
    sqlite3_stmt* s = nullptr;
    double mb = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
      mb = sqlite3_column_double(s, 0) / 1e6;
    }
    sqlite3_finalize(s);
    return mb;
  };
  const double events =
      sum("SELECT sum(length(type) + length(session_id) + length(task_id) + length(payload) + "
          "length(hash) + 24) FROM events");
  const double checkpoint =
      sum("SELECT sum(length(data) + length(digest)) FROM checkpoint_chunks WHERE seq = "
          "(SELECT max(seq) FROM checkpoints)");
  sqlite3_close(db);
  return {events, checkpoint};
}

// ---- measurements in a child process (peak RSS of the open alone)
// --------------------------------

struct OpenFigures {
  double seconds = 0;
  double rss_mb = 0;
  double peak_mb = 0;
};

std::uint64_t status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::stoull(line.substr(std::strlen(key)));
  }
  return 0;
}

// Opens the journal in a freshly exec'd copy of this program (`--measure-open FILE`), so the RSS
// figures are the open's alone, not the benchmark's heap inherited through fork.
// `from_checkpoint`: with the default options (the newest checkpoint, then the events after
// it); otherwise Options::open_from_checkpoint = false (every event folded and verified).
OpenFigures open_in_child(const fs::path& journal, bool from_checkpoint) {
  const std::string command = "'" + fs::read_symlink("/proc/self/exe").string() + "' " +
                              (from_checkpoint ? "--measure-open" : "--measure-full-open") + " '" +
                              journal.string() + "'";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("popen failed");
  OpenFigures f;
  const int fields = std::fscanf(pipe, "%lf %lf %lf", &f.seconds, &f.rss_mb, &f.peak_mb);
  if (pclose(pipe) != 0 || fields != 3) throw std::runtime_error("open in child failed");
  return f;
}

int measure_open(const char* journal, bool from_checkpoint) {
  const auto start = Clock::now();
  auto registry = tj::Registry::open(journal, {.open_from_checkpoint = from_checkpoint});
  const double seconds = seconds_since(start);
  std::printf("%.6f %.1f %.1f\n", seconds, double(status_kb("VmRSS:")) / 1024.0,
              double(status_kb("VmHWM:")) / 1024.0);
  std::fflush(stdout);
  std::_Exit(0);  // the views' teardown is not part of open (and would blur a profile of it)
}

// ---- report
// ---------------------------------------------------------------------------------------

struct Report {
  std::ostringstream md;
  void line(const std::string& s) {
    md << s << "\n";
    std::cout << s << std::endl;
  }
};

std::string fmt(double v, int precision = 0) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", precision, v);
  std::string s = buf;
  // thousands separators for readability
  auto dot = s.find('.');
  int end = static_cast<int>(dot == std::string::npos ? s.size() : dot);
  for (int i = end - 3; i > (s[0] == '-' ? 1 : 0); i -= 3)
    s.insert(static_cast<std::size_t>(i), ",");
  return s;
}

std::string ratio(double a, double b) { return b > 0 ? fmt(a / b, 2) + "×" : "n/a"; }

std::string verdict(double r, double goal) { return r >= goal ? "met" : "**not met**"; }

std::string machine() {
  std::ifstream cpu("/proc/cpuinfo");
  std::string line, model;
  while (std::getline(cpu, line)) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  utsname u{};
  uname(&u);
  return model + ", " + std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + " cores, Linux " +
         u.release + ", SQLite " + sqlite3_libversion() + ", taskjournal " + tj::kVersion;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--measure-open") return measure_open(argv[2], true);
  if (argc == 3 && std::string(argv[1]) == "--measure-full-open") {
    return measure_open(argv[2], false);
  }
  Settings s;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "taskjournal-bench: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--quick") {
      s.rounds = 1;
      s.full_tasks = 10;
      s.normal_tasks = 60;
      s.read_tasks = 1000;
      s.read_ops = 2000;
      s.batch_calls = 4000;
      s.open_sizes = {10'000, 30'000};
    } else if (a == "--rounds") {
      s.rounds = std::stoi(next());
    } else if (a == "--out") {
      s.out = next();
    } else if (a == "--dir") {
      s.dir = next();
    } else if (a == "--open-sizes") {
      s.open_sizes.clear();
      std::stringstream list(next());
      std::string item;
      while (std::getline(list, item, ',')) s.open_sizes.push_back(std::stoull(item));
    } else if (a == "--only") {
      s.only = next();
      if (s.only != "a" && s.only != "b" && s.only != "batch" && s.only != "c") {
        std::cerr << "taskjournal-bench: --only takes a, b, batch or c\n";
        return 2;
      }
    } else {
      std::cerr << "usage: taskjournal-bench [--quick] [--rounds R] [--out FILE.md] [--dir DIR] "
                   "[--open-sizes N,N,...] [--only a|b|batch|c]\n";
      return a == "--help" ? 0 : 2;
    }
  }
  fs::create_directories(s.dir);
  if (s.out.has_parent_path()) fs::create_directories(s.out.parent_path());
  Report rep;
  const auto run_start = Clock::now();

  rep.line("# taskjournal benchmarks");
  rep.line("");
  rep.line("Machine: " + machine() + ". Journals in `" + s.dir.string() + "`. Median of " +
           std::to_string(s.rounds) + " interleaved rounds; regenerate with `" +
           "build/tools/bench/taskjournal-bench` (README, \"Performance and memory\").");
  rep.line("");

  // ---- (a) lifecycle writes -------------------------------------------------------------------
  rep.line("## (a) Task lifecycle writes");
  rep.line("");
  rep.line(
      "Per task: create, 10 progress updates with heartbeats, an input request answered by an "
      "inbound message, 3 outbound messages, a terminal update (17 calls, one transaction "
      "each). raw appends the very rows taskjournal wrote, one INSERT per transaction.");
  rep.line("");
  rep.line(
      "| durability | taskjournal calls/s | snapshot calls/s | raw appends/s | tj / raw | tj / "
      "snapshot |");
  rep.line("|---|---:|---:|---:|---:|---:|");
  std::map<std::string, double> figures;
  for (tj::Durability d : {tj::Durability::Full, tj::Durability::Normal}) {
    if (!s.runs("a")) break;
    const bool full = d == tj::Durability::Full;
    const int tasks = full ? s.full_tasks : s.normal_tasks;
    const double calls = double(tasks) * kCallsPerLifecycle;
    std::vector<double> tjr, snap, raw;
    for (int round = 0; round < s.rounds; ++round) {
      const fs::path tj_file = s.dir / "a-taskjournal.db";
      const fs::path snap_file = s.dir / "a-snapshot.db";
      const fs::path raw_file = s.dir / "a-raw.db";
      for (const auto& f : {tj_file, snap_file, raw_file}) remove_journal(f);
      {
        auto r = tj::Registry::open(tj_file, {.durability = d});
        const auto start = Clock::now();
        for (int i = 0; i < tasks; ++i) lifecycle(r, i);
        tjr.push_back(calls / seconds_since(start));
      }
      {
        bench::SnapshotRegistry r(snap_file, d);
        const auto start = Clock::now();
        for (int i = 0; i < tasks; ++i) lifecycle(r, i);
        snap.push_back(calls / seconds_since(start));
      }
      {
        const auto rows = read_rows(tj_file);
        RawJournal r(raw_file, d);
        const auto start = Clock::now();
        for (const auto& row : rows) r.append(row);
        raw.push_back(double(rows.size()) / seconds_since(start));
      }
    }
    const double t = median(tjr), sn = median(snap), rw = median(raw);
    const std::string name = full ? "Full" : "Normal";
    figures["a_tj_" + name] = t;
    figures["a_snap_" + name] = sn;
    figures["a_raw_" + name] = rw;
    rep.line("| " + name + " | " + fmt(t) + " | " + fmt(sn) + " | " + fmt(rw) + " | " +
             ratio(t, rw) + " | " + ratio(t, sn) + " |");
  }
  rep.line("");

  // ---- (b) reads
  // ---------------------------------------------------------------------------------
  rep.line("## (b) Reads on a registry of " + fmt(s.read_tasks) + " tasks");
  rep.line("");
  rep.line(
      "100 tasks per session; one task in ten has 40 messages. `get` of a random task, `list` "
      "of a 100-task session, `list_messages` with limit 20. taskjournal with default options "
      "checks for other writers on every read; `exclusive` opens the file with SQLite's "
      "exclusive locking and skips that check. Each measurement repeats one sequence of random "
      "keys (drawn before the clock starts, the same for every contender) for at least 0.3 s.");
  rep.line("");
  if (s.runs("b")) {
    const fs::path tj_file = s.dir / "b-taskjournal.db";
    const fs::path snap_file = s.dir / "b-snapshot.db";
    remove_journal(tj_file);
    remove_journal(snap_file);
    const int sessions = std::max(1, s.read_tasks / 100);
    auto populate = [&](auto& r) {
      for (int i = 0; i < s.read_tasks; ++i) {
        const std::string session = "sess_" + std::to_string(i % sessions);
        const std::string id = "task_read_" + std::to_string(i);
        r.create(tj::CreateSessionTask{.session_id = session,
                                       .id = id,
                                       .kind = i % 2 ? "subagent" : "monitor",
                                       .display_name = "Read task " + std::to_string(i),
                                       .spec = R"({"prompt":"watch the build"})"});
        r.update(session, id,
                 {.state = tj::SessionTaskState::Running,
                  .progress = tj::TaskProgress{.current = 1, .total = 2}});
        if (i % 10 == 0) {
          for (int m = 0; m < 40; ++m) {
            r.record_message(session, id,
                             tj::NewTaskMessage::outbound_text("line " + std::to_string(m)));
          }
        }
      }
    };
    {
      auto r = tj::Registry::open(tj_file, {.durability = tj::Durability::Normal});
      populate(r);
    }
    {
      bench::SnapshotRegistry r(snap_file, tj::Durability::Normal);
      populate(r);
    }
    std::mt19937 rng(42);
    auto pick = [&] {
      const int i = int(rng() % unsigned(s.read_tasks));
      return std::pair{"sess_" + std::to_string(i % sessions), "task_read_" + std::to_string(i)};
    };
    auto pick_with_messages = [&] {
      const int i = int(rng() % unsigned(s.read_tasks / 10)) * 10;
      return std::pair{"sess_" + std::to_string(i % sessions), "task_read_" + std::to_string(i)};
    };
    // The keys of one measurement, drawn before the clock starts (building them costs about
    // as much as a fast get) and the same for every contender.
    using Keys = std::vector<std::pair<std::string, std::string>>;
    auto keys_for = [&](const std::string& op) {
      const int ops = op == "list" ? std::max(100, s.read_ops / 20) : s.read_ops;
      rng.seed(42);
      Keys keys;
      for (int k = 0; k < ops; ++k) {
        if (op == "get") {
          keys.push_back(pick());
        } else if (op == "list") {
          keys.emplace_back("sess_" + std::to_string(k % sessions), "");
        } else {
          keys.push_back(pick_with_messages());
        }
      }
      return keys;
    };
    // Calls in steady state: passes over `keys` until at least kMinSeconds have passed (a
    // single pass of the fastest contender is over in milliseconds, cold caches and all).
    constexpr double kMinSeconds = 0.3;
    auto measure = [&](auto& r, const std::string& op, const Keys& keys) {
      std::size_t sink = 0;
      std::size_t ops = 0;
      const auto start = Clock::now();
      while (ops == 0 || seconds_since(start) < kMinSeconds) {
        for (const auto& [session, id] : keys) {
          if (op == "get") {
            sink += r.get(session, id).has_value();
          } else if (op == "list") {
            sink += r.list(session).size();
          } else {
            sink += r.list_messages(session, id, 20u).size();
          }
        }
        ops += keys.size();
      }
      const double rate = double(ops) / seconds_since(start);
      if (sink == 0) std::cerr << "bench: reads found nothing\n";
      return rate;
    };
    rep.line(
        "| call | taskjournal calls/s | taskjournal exclusive calls/s | snapshot calls/s | tj / "
        "snapshot | exclusive / snapshot |");
    rep.line("|---|---:|---:|---:|---:|---:|");
    for (std::string op : {"get", "list", "list_messages"}) {
      const Keys keys = keys_for(op);
      std::vector<double> t, x, sn;
      for (int round = 0; round < s.rounds; ++round) {
        {
          auto r = tj::Registry::open(tj_file);
          t.push_back(measure(r, op, keys));
        }
        {
          auto r = tj::Registry::open(tj_file, {.exclusive = true});
          x.push_back(measure(r, op, keys));
        }
        {
          bench::SnapshotRegistry r(snap_file, tj::Durability::Full);
          sn.push_back(measure(r, op, keys));
        }
      }
      const double tv = median(t), xv = median(x), sv = median(sn);
      figures["b_tj_" + op] = tv;
      figures["b_x_" + op] = xv;
      figures["b_snap_" + op] = sv;
      rep.line("| `" + op + "` | " + fmt(tv) + " | " + fmt(xv) + " | " + fmt(sv) + " | " +
               ratio(tv, sv) + " | " + ratio(xv, sv) + " |");
    }
  }
  rep.line("");

  // ---- batched appends
  // ---------------------------------------------------------------------------
  rep.line("## Batched appends (1,000 calls per transaction, Durability::Full)");
  rep.line("");
  if (s.runs("batch")) {
    std::vector<double> t, rw;
    for (int round = 0; round < s.rounds; ++round) {
      const fs::path tj_file = s.dir / "batch-taskjournal.db";
      const fs::path raw_file = s.dir / "batch-raw.db";
      remove_journal(tj_file);
      remove_journal(raw_file);
      {
        auto r = tj::Registry::open(tj_file);
        r.create({.session_id = "sess_batch", .id = "task_batch", .kind = "monitor"});
        const auto start = Clock::now();
        for (int done = 0; done < s.batch_calls; done += 1000) {
          r.batch([&](tj::Batch& b) {
            for (int k = 0; k < 1000; ++k) {
              b.update("sess_batch", "task_batch",
                       {.progress = tj::TaskProgress{.current = std::uint64_t(done + k)},
                        .heartbeat_at = wall_now()});
            }
          });
        }
        t.push_back(s.batch_calls / seconds_since(start));
      }
      {
        auto rows = read_rows(tj_file);
        RawJournal r(raw_file, tj::Durability::Full);
        const auto start = Clock::now();
        for (std::size_t done = 0; done < rows.size(); done += 1000) {
          r.exec("BEGIN IMMEDIATE");
          for (std::size_t k = done; k < std::min(rows.size(), done + 1000); ++k) r.append(rows[k]);
          r.exec("COMMIT");
        }
        rw.push_back(double(rows.size()) / seconds_since(start));
      }
    }
    figures["batch_tj"] = median(t);
    figures["batch_raw"] = median(rw);
    rep.line("| taskjournal calls/s | raw appends/s | tj / raw |");
    rep.line("|---:|---:|---:|");
    rep.line("| " + fmt(median(t)) + " | " + fmt(median(rw)) + " | " +
             ratio(median(t), median(rw)) + " |");
  }
  rep.line("");

  // ---- (c) open
  // ----------------------------------------------------------------------------------
  rep.line("## (c) Open: fold time and memory against journal size");
  rep.line("");
  rep.line(
      "Journals of lifecycle events (as in (a)); open in a fresh child process; RSS after "
      "open and peak RSS (VmHWM). *full fold*: `open_from_checkpoint = false`, every event "
      "folded and its hash checked. raw scan = reading every column of every row with bare "
      "SQLite (the page cache is warm for both). *checkpoint*: default options, with the "
      "newest checkpoint written " +
      fmt(double(kCheckpointTail)) +
      " events (or a tenth of the journal, if less) before the end, so open restores it and "
      "folds the events after it.");
  rep.line("");
  rep.line(
      "| events | full fold s | fold events/s | raw scan rows/s | fold / scan | RSS MB | peak MB "
      "| checkpoint open s | checkpoint / full | RSS MB | peak MB |");
  rep.line("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  std::ofstream plot_data(s.dir / "open.dat");
  std::vector<double> checkpoint_write_s;
  std::vector<std::string> size_lines;
  if (s.runs("c")) {
    const fs::path file = s.dir / "c-journal.db";
    remove_journal(file);
    std::uint64_t events = 0;
    int task = 0;
    for (std::uint64_t size : s.open_sizes) {
      {
        auto r =
            tj::Registry::open(file, {.durability = tj::Durability::Normal, .checkpoint_every = 0});
        // Grow in batches of whole lifecycles, up to `target`.
        auto grow = [&](std::uint64_t target) {
          while (events + kCallsPerLifecycle <= target) {
            r.batch([&](tj::Batch& b) {
              for (int k = 0; k < 50 && events + kCallsPerLifecycle <= target; ++k) {
                lifecycle(b, task++);
                events += kCallsPerLifecycle;
              }
            });
          }
        };
        grow(size - std::min<std::uint64_t>(kCheckpointTail, size / 10));
        const auto start = Clock::now();
        r.checkpoint();
        checkpoint_write_s.push_back(seconds_since(start));
        grow(size);
        events = r.last_seq();
      }
      std::vector<double> open_s, scan_s, checkpoint_s;
      OpenFigures last, last_checkpoint;
      for (int round = 0; round < s.rounds; ++round) {
        last = open_in_child(file, false);
        open_s.push_back(last.seconds);
        scan_s.push_back(raw_scan_seconds(file, nullptr));
        last_checkpoint = open_in_child(file, true);
        checkpoint_s.push_back(last_checkpoint.seconds);
      }
      const double o = median(open_s), sc = median(scan_s), cp = median(checkpoint_s);
      const double fold_rate = double(events) / o, scan_rate = double(events) / sc;
      figures["c_ratio_" + std::to_string(size)] = fold_rate / scan_rate;
      figures["c_checkpoint_" + std::to_string(size)] = cp / o;
      rep.line("| " + fmt(double(events)) + " | " + fmt(o, 3) + " | " + fmt(fold_rate) + " | " +
               fmt(scan_rate) + " | " + ratio(fold_rate, scan_rate) + " | " + fmt(last.rss_mb, 1) +
               " | " + fmt(last.peak_mb, 1) + " | " + fmt(cp, 3) + " | " + ratio(cp, o) + " | " +
               fmt(last_checkpoint.rss_mb, 1) + " | " + fmt(last_checkpoint.peak_mb, 1) + " |");
      plot_data << events << " " << o << " " << last.rss_mb << " " << cp << "\n";
      const auto [events_mb, checkpoint_mb] = table_megabytes(file);
      size_lines.push_back("| " + fmt(double(events)) + " | " + fmt(events_mb, 1) + " | " +
                           fmt(checkpoint_mb, 1) + " | " + fmt(checkpoint_write_s.back(), 3) +
                           " |");
    }
  }
  plot_data.close();
  rep.line("");
  if (!size_lines.empty()) {
    rep.line(
        "Checkpoint size and cost: the events' bytes as stored (columns plus 24 bytes of integers "
        "per row), the newest checkpoint's chunk bytes, and the time `Registry::checkpoint()` took "
        "to write it (with `Durability::Normal`).");
    rep.line("");
    rep.line("| events | events MB | checkpoint MB | checkpoint write s |");
    rep.line("|---:|---:|---:|---:|");
    for (const auto& line : size_lines) rep.line(line);
    rep.line("");
  }
  const fs::path png = s.out.parent_path() / (s.out.stem().string() + "-open.png");
  {
    std::ofstream gp(s.dir / "open.gp");
    gp << "set terminal pngcairo size 900,500\n"
       << "set output '" << png.string() << "'\n"
       << "set title 'taskjournal: open time and memory against journal size'\n"
       << "set logscale x\nset xrange [5000:2000000]\nset xlabel 'events in the journal'\n"
       << "set ylabel 'open time (s)'\nset y2label 'RSS after open (MB)'\n"
       << "set ytics nomirror\nset y2tics\nset key left top\nset grid\n"
       << "plot '" << (s.dir / "open.dat").string()
       << "' using 1:2 with linespoints title 'open, full fold (s)' axes x1y1, '' using 1:4 with "
          "linespoints title 'open from a checkpoint (s)' axes x1y1, '' using 1:3 with "
          "linespoints title 'RSS after the full fold (MB)' axes x1y2\n";
  }
  const std::string gnuplot = "gnuplot '" + (s.dir / "open.gp").string() + "' 2>/dev/null";
  if (!s.runs("c")) {
    rep.line("(open not measured: no plot)");
  } else if (std::system(gnuplot.c_str()) == 0) {
    rep.line("![open time and memory](" + png.filename().string() + ")");
  } else {
    rep.line("(gnuplot not found: no plot)");
  }
  rep.line("");

  // ---- goals
  // ---------------------------------------------------------------------------------------
  rep.line("## Goals (issue #6), from this run");
  rep.line("");
  rep.line("| goal | ratio | verdict |");
  rep.line("|---|---:|---|");
  auto goal = [&](const std::string& what, double r, double target) {
    if (!(r > 0)) return;  // a workload left out by --only
    rep.line("| " + what + " ≥ " + fmt(target, 1) + " | " + fmt(r, 2) + " | " + verdict(r, target) +
             " |");
  };
  goal("(a) Full: taskjournal / raw", figures["a_tj_Full"] / figures["a_raw_Full"], 0.9);
  goal("(a) Normal: taskjournal / raw", figures["a_tj_Normal"] / figures["a_raw_Normal"], 0.8);
  goal("(a) Normal: taskjournal / snapshot", figures["a_tj_Normal"] / figures["a_snap_Normal"], 2);
  goal("(b) get: taskjournal / snapshot", figures["b_tj_get"] / figures["b_snap_get"], 5);
  goal("(b) list_messages: taskjournal / snapshot",
       figures["b_tj_list_messages"] / figures["b_snap_list_messages"], 5);
  goal("(b) get, exclusive: taskjournal / snapshot", figures["b_x_get"] / figures["b_snap_get"],
       20);
  if (!s.open_sizes.empty()) {
    const std::string largest = std::to_string(s.open_sizes.back());
    goal("(c) open " + largest + ": fold / raw scan", figures["c_ratio_" + largest], 0.5);
    const double cp = figures["c_checkpoint_" + largest];
    if (cp > 0)
      rep.line("| (c) open " + largest + " from a checkpoint ≤ " + fmt(double(kCheckpointTail)) +
               " events from the end: time / full fold ≤ 0.10 | " + fmt(cp, 3) + " | " +
               (cp <= 0.10 ? "met" : "**not met**") + " |");
  }
  goal("batch of 1,000: taskjournal / raw", figures["batch_tj"] / figures["batch_raw"], 0.7);
  rep.line("");
  rep.line("Total benchmark time: " + fmt(seconds_since(run_start), 0) + " s.");

  // The PostgreSQL section (taskjournal-bench-pg's, and its notes) follows this report: keep it.
  std::string kept;
  if (std::ifstream previous(s.out); previous) {
    std::stringstream text;
    text << previous.rdbuf();
    const std::string old = text.str();
    if (const auto at = old.find(kPostgresSection); at != std::string::npos) {
      kept = old.substr(at);
    }
  }
  std::ofstream(s.out) << rep.md.str() << kept;
  std::cerr << "wrote " << s.out << "\n";
  return 0;
}
