// JournalReader: the journal read-only, event by event, folded through the registry's own views.
//
// Reading reuses store::Journal (one read-only engine connection; Engine::scan hands over raw
// rows) and checks each row with the one chain verifier (store/chain.hpp), collecting problems so
// that verify() can report them all and go on where read() and replay() stop. Folding goes
// through projections::Views::apply, the registry's only fold.
#include "taskjournal/reader.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <future>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "events/event.hpp"
#include "projections/views.hpp"
#include "store/chain.hpp"
#include "store/checkpoint_io.hpp"
#include "store/journal.hpp"
#include "store/open.hpp"
#include "store/parallel_chain.hpp"
#include "taskjournal/error.hpp"
#include "taskjournal/json.hpp"
#include "taskjournal/lifecycle.hpp"
#include "taskjournal/options.hpp"
#include "taskjournal/registry.hpp"

namespace taskjournal {
namespace {

using Row = store::EventRow;

struct Problem {
  std::uint64_t seq = 0;
  ErrorCode code = ErrorCode::Corrupt;
  std::string what;  // "event <seq>: …"
};

std::string event_prefix(std::uint64_t seq) { return "event " + std::to_string(seq) + ": "; }

Timestamp at(std::int64_t micros) { return Timestamp{std::chrono::microseconds{micros}}; }

// Collects the problems of the row being checked: verify() reports them all and goes on.
struct Collector final : store::ChainReporter {
  std::vector<Problem> problems;
  void problem(std::uint64_t seq, ErrorCode code, const std::string& what) override {
    problems.push_back(Problem{seq, code, what});
  }
};

// Follows the hash chain and the sequence row by row through the one verifier of store/chain.hpp.
// After a broken link it continues from the stored hash, so that one altered row is reported
// once, not once per later row.
class Chain {
 public:
  Chain(std::uint64_t after_seq, std::string prev_hash)
      : verifier_(after_seq, std::move(prev_hash), collector_, hasher_) {}

  using Sink = std::function<bool(const Row&, std::vector<Problem>&, events::Event*)>;
  // Reads the rows after the last one checked (Engine::scan) and checks each (sequence, hash,
  // version, type, payload), a large scan's hashes and payloads on worker threads
  // (store/parallel_chain.hpp): calls `before(row)`, whose false ends the scan there, then
  // `sink(row, problems, event)` with every problem of the row in order and, when none kept it
  // from decoding, the decoded event (else nullptr); the sink's false ends the scan.
  void scan(store::Engine& engine, std::function<bool(const Row&)> before, const Sink& sink) {
    store::ScanHooks hooks;
    hooks.before = std::move(before);
    store::verified_scan(engine, verifier_, hooks, [&](const Row& row, events::Event* event) {
      std::vector<Problem> problems = std::move(collector_.problems);
      collector_.problems.clear();
      return sink(row, problems, event);
    });
  }

 private:
  store::ChainHasher hasher_;
  Collector collector_;
  store::ChainVerifier verifier_;
};

JournalEvent to_public(const events::Event& e, std::uint32_t version) {
  return JournalEvent{.seq = e.seq,
                      .type = std::string(events::type_name(e.payload)),
                      .version = version,
                      .recorded_at = e.recorded_at,
                      .session_id = e.session_id,
                      .task_id = e.task_id,
                      .payload = events::payload_json(e.payload)};
}

DropReason drop_reason(const SessionTask& task, const events::Payload& payload) {
  const auto* updated = std::get_if<events::TaskUpdated>(&payload);
  if (!updated) return DropReason::None;
  const SessionTaskUpdate& u = updated->update;
  if (u.expected_attempt && *u.expected_attempt != task.attempt) return DropReason::Fenced;
  if (is_terminal(task.state) && u.state && *u.state != task.state) return DropReason::Terminal;
  return DropReason::None;
}

// "event 7: what" → "what": Views name the sequence number they were given.
std::string without_event_prefix(const std::string& what) {
  if (what.rfind("event ", 0) == 0) {
    if (auto colon = what.find(": "); colon != std::string::npos) return what.substr(colon + 2);
  }
  return what;
}

void add_version(std::vector<std::uint32_t>& versions, std::uint32_t v) {
  auto it = std::lower_bound(versions.begin(), versions.end(), v);
  if (it == versions.end() || *it != v) versions.insert(it, v);
}

// Task ids in creation order, grouped by session in order of first appearance.
std::vector<std::pair<std::string, std::vector<std::string>>> by_session(
    const projections::Views& views, const std::vector<std::string>& order) {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  std::unordered_map<std::string_view, std::size_t> index;
  for (const auto& id : order) {
    const SessionTask* task = views.find_any(id);
    if (!task) continue;
    auto [it, added] = index.try_emplace(task->session_id, out.size());
    if (added) out.push_back({task->session_id, {}});
    out[it->second].second.push_back(id);
  }
  return out;
}

std::string text_of(const std::optional<Timestamp>& t) {
  return t ? format_timestamp(*t) : std::string("(none)");
}

std::string hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  }
  return out;
}

// The processes that hold a write lock on `path` or on its `-shm` file (the locks a writer or a
// connection in locking_mode=EXCLUSIVE holds), from /proc/locks (Linux); empty if unknown.
// /proc/locks is read rather than asking fcntl(F_GETLK), which needs a descriptor of the file:
// closing it would drop every POSIX lock this process holds on the file (SQLite's included).
std::vector<long> lock_holders(const std::filesystem::path& path) {
  struct Key {
    unsigned major, minor;
    unsigned long long inode;
  };
  std::vector<Key> files;
  for (const auto& p : {path.string(), path.string() + "-shm"}) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) {
      files.push_back(
          Key{major(st.st_dev), minor(st.st_dev), static_cast<unsigned long long>(st.st_ino)});
    }
  }
  std::vector<long> out;
  std::ifstream locks("/proc/locks");
  std::string line;
  while (std::getline(locks, line)) {
    // "1: POSIX  ADVISORY  WRITE 1234 08:01:5678 1073741824 1073742335" ("->" marks a waiter)
    std::istringstream in(line);
    std::string id, kind, mode, rw, dev;
    long pid = 0;
    in >> id >> kind;
    if (kind == "->") continue;
    if (!(in >> mode >> rw >> pid >> dev) || rw != "WRITE" || pid <= 0) continue;
    unsigned major_no = 0, minor_no = 0;
    unsigned long long inode = 0;
    if (std::sscanf(dev.c_str(), "%x:%x:%llu", &major_no, &minor_no, &inode) != 3) continue;
    for (const auto& f : files) {
      if (f.major == major_no && f.minor == minor_no && f.inode == inode &&
          std::find(out.begin(), out.end(), pid) == out.end()) {
        out.push_back(pid);
      }
    }
  }
  return out;
}

// Error(Busy) with who holds the lock and what to do.
Error busy_error(const std::filesystem::path& path, const Error& e) {
  std::string what = e.what();
  const auto holders = lock_holders(path);
  if (holders.empty()) {
    what += " (another process holds the journal locked";
  } else {
    what += " (locked by process";
    if (holders.size() > 1) what += "es";
    for (std::size_t i = 0; i < holders.size(); ++i) {
      what += (i ? ", " : " ") + std::to_string(holders[i]);
      if (holders[i] == static_cast<long>(::getpid())) what += " (this process)";
    }
  }
  what +=
      ": a registry opened with Options::exclusive keeps it locked while open, a writer for the "
      "length of a write; wait until it is done or closed, or allow a longer busy_timeout)";
  return Error(ErrorCode::Busy, what);
}

}  // namespace

std::string_view to_string(DropReason reason) noexcept {
  switch (reason) {
    case DropReason::None:
      return "none";
    case DropReason::Fenced:
      return "fenced";
    case DropReason::Terminal:
      return "terminal";
  }
  return "none";
}

const TaskView* JournalSnapshot::find(std::string_view task_id) const noexcept {
  for (const auto& view : tasks) {
    if (view.task.id == task_id) return &view;
  }
  return nullptr;
}

struct JournalReader::Impl {
  store::EngineKind kind;
  std::string location;  // as given: a file path or a connection string (maybe with a password)
  store::Journal journal;
  std::filesystem::path path;  // for messages: the file, or the server, database and schema

  Impl(store::EngineKind k, const std::string& where, const ReaderOptions& options)
      : kind(k),
        location(where),
        journal(store::JournalConfig{
            .kind = k, .path = where, .read_only = true, .busy_timeout = options.busy_timeout}),
        path(journal.path()) {}

  // Where the stored events begin: the views of the anchor's checkpoint and its seq and hash, or
  // empty views after event 0 (README "Archiving").
  struct Start {
    projections::Views views;
    std::uint64_t seq = 0;
    std::string hash = store::genesis_hash();
  };
  Start start() {
    Start out;
    const auto& anchor = journal.anchor();
    if (!anchor) return out;
    const auto info = store::checkpoint_at(journal, anchor->seq);
    if (!info) {
      throw Error(ErrorCode::Corrupt, path.string() + ": its events up to " +
                                          std::to_string(anchor->seq) + " were archived (to " +
                                          anchor->archive +
                                          ") and the checkpoint of that event is missing");
    }
    out.views = store::read_views_checkpoint(journal, *info);
    out.seq = anchor->seq;
    out.hash = anchor->hash;
    return out;
  }
  // Refuses a limit inside the archived prefix.
  // A time limit before the first stored event (or any, when none is stored) may lie in the
  // archived prefix, which only the archive can answer.
  void check_not_archived(const ReplayLimit& limit) {
    const auto& anchor = journal.anchor();
    if (!anchor) return;
    const std::string where = path.string() + ": events up to " + std::to_string(anchor->seq) +
                              " were archived (to " + anchor->archive + "); ";
    if (limit.seq && *limit.seq < anchor->seq) {
      throw Error(ErrorCode::InvalidArgument,
                  where + "read event " + std::to_string(*limit.seq) + " there");
    }
    if (limit.time) {
      std::optional<std::int64_t> first;
      journal.engine().scan(anchor->seq, [&](const store::EventRow& row) {
        first = row.recorded_at;
        return false;
      });
      if (!first || *limit.time < Timestamp(std::chrono::microseconds(*first))) {
        throw Error(ErrorCode::InvalidArgument,
                    where +
                        "the journal cannot tell what was before its first stored event: "
                        "read that time in the archive");
      }
    }
  }

  // A read-only Registry on the same journal.
  Registry open_registry() const {
    if (kind == store::EngineKind::Postgresql) {
      return Registry::open_postgresql(location, Options{.read_only = true});
    }
    return Registry::open(location, Options{.read_only = true});
  }

  [[noreturn]] void fail(const Problem& p) const {
    throw Error(p.code, path.string() + ": " + p.what);
  }

  // Runs `body`; an Error(Busy) from it says who holds the lock.
  template <class F>
  auto guard(F&& body) -> decltype(body()) {
    try {
      journal.reload_anchor();  // every call reads the journal anew, its anchor included
      return body();
    } catch (const Error& e) {
      if (e.code() == ErrorCode::Busy && kind == store::EngineKind::Sqlite) {
        throw busy_error(path, e);
      }
      throw;
    }
  }
};

JournalReader::JournalReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JournalReader::JournalReader(JournalReader&&) noexcept = default;
JournalReader& JournalReader::operator=(JournalReader&&) noexcept = default;
JournalReader::~JournalReader() = default;

JournalReader JournalReader::open(const std::filesystem::path& path) {
  return open(path, ReaderOptions{});
}

JournalReader JournalReader::open(const std::filesystem::path& path, const ReaderOptions& options) {
  const std::string name = path.string();
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (status.type() == std::filesystem::file_type::not_found) {
    throw Error(ErrorCode::ReadOnly, name + ": no such journal");
  }
  if (ec) throw Error(ErrorCode::Storage, name + ": " + ec.message());
  if (status.type() != std::filesystem::file_type::regular) {
    throw Error(ErrorCode::Storage, name + ": not a regular file");
  }
  if (std::filesystem::file_size(path, ec) == 0 && !ec) {
    throw Error(ErrorCode::Corrupt, name + ": not a taskjournal journal (empty file)");
  }
  try {
    return JournalReader(std::make_unique<Impl>(store::EngineKind::Sqlite, name, options));
  } catch (const Error& e) {
    if (e.code() == ErrorCode::Busy) throw busy_error(path, e);
    // store::Journal refuses an empty database opened read-only as ReadOnly; here it is just
    // not a journal.
    if (e.code() == ErrorCode::ReadOnly) {
      throw Error(ErrorCode::Corrupt, name + ": not a taskjournal journal (empty database)");
    }
    throw;
  }
}

JournalReader JournalReader::open_postgresql(const std::string& conninfo) {
  return open_postgresql(conninfo, ReaderOptions{});
}

JournalReader JournalReader::open_postgresql(const std::string& conninfo,
                                             const ReaderOptions& options) {
  return JournalReader(std::make_unique<Impl>(store::EngineKind::Postgresql, conninfo, options));
}

const std::filesystem::path& JournalReader::path() const noexcept { return impl_->path; }

int JournalReader::schema_version() {
  return impl_->guard([&] { return impl_->journal.schema_version(); });
}

std::uint64_t JournalReader::newest_seq() {
  return impl_->guard([&] { return impl_->journal.newest_seq(); });
}

void JournalReader::read(std::uint64_t after_seq,
                         const std::function<bool(const JournalEvent&)>& sink) {
  impl_->guard([&] {
    Impl& r = *impl_;
    std::string prev = store::genesis_hash();
    after_seq = std::max(after_seq, r.journal.base_seq());  // the archived prefix is elsewhere
    if (after_seq > 0) {
      prev = r.journal.stored_hash(after_seq);
      if (prev.empty()) {
        r.fail(Problem{after_seq, ErrorCode::Corrupt, event_prefix(after_seq) + "missing"});
      }
    }
    Chain chain(after_seq, std::move(prev));
    chain.scan(r.journal.engine(), {},
               [&](const Row& row, std::vector<Problem>& problems, events::Event* event) {
                 if (!problems.empty()) r.fail(problems.front());
                 return sink(to_public(*event, static_cast<std::uint32_t>(row.version)));
               });
  });
}

JournalSnapshot JournalReader::replay(const ReplayLimit& limit,
                                      const std::function<void(const ReplayStep&)>& on_step,
                                      std::optional<std::string> step_task) {
  return impl_->guard([&] {
    Impl& r = *impl_;
    r.check_not_archived(limit);
    Impl::Start start = r.start();
    projections::Views views = std::move(start.views);
    std::vector<std::string> order;
    {
      // The anchor's tasks in creation order (the checkpoint holds them session by session).
      std::vector<const SessionTask*> restored;
      views.for_each_task(
          [&](const SessionTask& task, const auto&, std::uint64_t) { restored.push_back(&task); });
      std::stable_sort(
          restored.begin(), restored.end(),
          [](const SessionTask* a, const SessionTask* b) { return a->created_at < b->created_at; });
      for (const SessionTask* task : restored) order.push_back(task->id);
    }
    JournalSnapshot snap;
    snap.last_seq = start.seq;
    Chain chain(start.seq, start.hash);
    std::uint64_t total = 0;
    if (limit.progress) {
      total = r.journal.newest_seq();
      if (limit.seq) total = std::min(total, *limit.seq);
    }
    auto within_limit = [&](const Row& row) {
      if (limit.seq && row.seq > *limit.seq) return false;
      if (limit.progress && row.seq % 8192 == 0) limit.progress(row.seq, std::max(total, row.seq));
      return !(limit.time && at(row.recorded_at) > *limit.time);
    };
    chain.scan(r.journal.engine(), within_limit,
               [&](const Row& row, std::vector<Problem>& problems, events::Event* event) {
                 if (!problems.empty()) r.fail(problems.front());

                 const bool report = on_step && (!step_task || *step_task == event->task_id);
                 std::optional<SessionTask> before;
                 DropReason dropped = DropReason::None;
                 if (report && !std::holds_alternative<events::TaskCreated>(event->payload)) {
                   if (const SessionTask* task = views.find(event->session_id, event->task_id)) {
                     before = *task;
                     dropped = drop_reason(*task, event->payload);
                   }
                 }
                 projections::Applied applied;
                 try {
                   applied = views.apply(*event);
                 } catch (const Error& e) {
                   r.fail(Problem{row.seq, e.code(), e.what()});
                 }
                 if (applied.created) order.push_back(event->task_id);
                 const auto version = static_cast<std::uint32_t>(row.version);
                 add_version(snap.payload_versions, version);
                 if (!snap.first_event_at) snap.first_event_at = event->recorded_at;
                 snap.last_event_at = event->recorded_at;
                 snap.last_seq = row.seq;
                 if (report) {
                   // task_pruned: the task as it was when it left the views (taken before `before`
                   // moves)
                   SessionTask after =
                       applied.task ? *applied.task : before.value_or(SessionTask{});
                   on_step(ReplayStep{.event = to_public(*event, version),
                                      .before = std::move(before),
                                      .after = std::move(after),
                                      .dropped = dropped,
                                      .message = applied.message
                                                     ? std::optional<TaskMessage>(*applied.message)
                                                     : std::nullopt});
                 }
                 return true;
               });
    snap.tasks.reserve(order.size());
    for (const auto& id : order) {
      const SessionTask* task = views.find_any(id);
      if (!task) continue;  // pruned
      snap.tasks.push_back(
          TaskView{*task, views.messages(task->session_id, id, std::nullopt, std::nullopt)});
    }
    if (limit.progress) limit.progress(snap.last_seq, snap.last_seq);
    return snap;
  });
}

VerifyReport JournalReader::verify(const VerifyOptions& options) {
  return impl_->guard([&] {
    Impl& r = *impl_;
    VerifyReport report;
    Impl::Start start = r.start();  // an archived journal verifies from its anchor
    projections::Views views = std::move(start.views);
    std::vector<std::string> order;
    std::uint64_t total = r.journal.newest_seq();
    Chain chain(start.seq, start.hash);
    report.last_seq = start.seq;
    report.archived_through = start.seq;

    auto problem = [&](std::uint64_t seq, std::string what) {
      if (report.problems.size() < std::max<std::size_t>(options.max_problems, 1)) {
        report.problems.push_back(JournalProblem{seq, std::move(what)});
      } else {
        report.truncated = true;
      }
    };
    auto progress = [&] {
      if (options.progress) options.progress(report.events, std::max(total, report.events));
    };

    // The lifecycle invariants of one task across one folded event.
    auto check_step = [&](std::uint64_t seq, const SessionTask* before_ptr,
                          const std::optional<SessionTask>& full_before, DropReason dropped,
                          bool increments, const SessionTask& after) {
      const std::string p = event_prefix(seq) + "task " + after.id + ": ";
      if (before_ptr) {
        const SessionTask& before = *before_ptr;
        if (dropped != DropReason::None && full_before && after != *full_before) {
          problem(seq, p + "update dropped (" + std::string(to_string(dropped)) +
                           ") but the task changed");
        }
        if (is_terminal(before.state) && after.state != before.state) {
          problem(seq, p + "terminal state " + std::string(to_string(before.state)) +
                           " changed to " + std::string(to_string(after.state)));
        }
        auto once = [&](const char* field, const std::optional<Timestamp>& x,
                        const std::optional<Timestamp>& y) {
          if (x && x != y) {
            problem(seq, p + field + " stamped again: " + text_of(x) + " -> " + text_of(y));
          }
        };
        once("started_at", before.started_at, after.started_at);
        once("finished_at", before.finished_at, after.finished_at);
        once("cancel_requested_at", before.cancel_requested_at, after.cancel_requested_at);
        if (after.created_at != before.created_at) problem(seq, p + "created_at changed");
        if (after.attempt < before.attempt) {
          problem(seq, p + "attempt went down from " + std::to_string(before.attempt) + " to " +
                           std::to_string(after.attempt));
        }
        if (increments && dropped == DropReason::None &&
            before.attempt == std::numeric_limits<std::int32_t>::max()) {
          problem(seq, p + "increment_attempt past INT32_MAX (the registry refuses to write it)");
        }
      }
      if (is_terminal(after.state) && !after.finished_at) {
        problem(seq, p + std::string(to_string(after.state)) + " without finished_at");
      }
      if (after.state != SessionTaskState::Queued && !after.started_at) {
        problem(seq, p + std::string(to_string(after.state)) + " without started_at");
      }
    };

    auto count = [&](const Row& row) {
      ++report.events;
      report.last_seq = row.seq;
      if (report.events % 8192 == 0) progress();
      return true;
    };
    auto visit = [&](const Row& row, std::vector<Problem>& problems, events::Event* event) {
      for (auto& p : problems) problem(p.seq, std::move(p.what));
      if (!event) return true;

      // Fold under the views' own numbering, so that one bad event does not stop the fold.
      event->seq = views.last_seq() + 1;
      const SessionTask* current = views.find(event->session_id, event->task_id);
      const bool created = std::holds_alternative<events::TaskCreated>(event->payload);
      std::optional<SessionTask> before_copy;  // the whole task, only when the rules drop the event
      SessionTask before_facts;
      DropReason dropped = DropReason::None;
      bool increments = false;
      if (current && !created) {
        dropped = drop_reason(*current, event->payload);
        if (dropped != DropReason::None) before_copy = *current;
        before_facts.state = current->state;
        before_facts.attempt = current->attempt;
        before_facts.started_at = current->started_at;
        before_facts.finished_at = current->finished_at;
        before_facts.cancel_requested_at = current->cancel_requested_at;
        before_facts.created_at = current->created_at;
        if (const auto* u = std::get_if<events::TaskUpdated>(&event->payload)) {
          increments = u->update.increment_attempt;
        }
      }
      try {
        const auto applied = views.apply(*event);
        if (applied.created) order.push_back(event->task_id);
        if (applied.task) {  // not a task_pruned (which Views::apply checked)
          check_step(row.seq, (current && !created) ? &before_facts : nullptr, before_copy, dropped,
                     increments, *applied.task);
        }
      } catch (const Error& e) {
        problem(row.seq, event_prefix(row.seq) + without_event_prefix(e.what()));
      }
      return true;
    };

    // A registry opened on the file must give the views of this fold. A writer may append
    // meanwhile: fold on up to what the registry sees, compare, and compare again if it moved on.
    auto compare_with = [&](Registry& registry) {
      for (int round = 0; round < 5; ++round) {
        const std::uint64_t seen = registry.last_seq();
        if (seen > report.last_seq) {
          chain.scan(
              r.journal.engine(), [&](const Row& row) { return row.seq <= seen && count(row); },
              visit);
          total = std::max(total, report.last_seq);
          if (!report.problems.empty()) return;
        }
        if (seen < report.last_seq) {
          problem(0, "a registry sees " + std::to_string(seen) + " events, the fold " +
                         std::to_string(report.last_seq));
          return;
        }
        std::optional<std::string> differs;
        for (const auto& [session, ids] : by_session(views, order)) {
          if (registry.list(session) != views.list(session, {})) {
            differs = "a registry's list of session " + session + " differs from the fold";
            break;
          }
          for (const auto& id : ids) {
            if (registry.get(session, id) != *views.find(session, id)) {
              differs = "a registry's task " + id + " differs from the fold";
            } else if (registry.list_messages(session, id) !=
                       views.messages(session, id, std::nullopt, std::nullopt)) {
              differs = "a registry's messages of task " + id + " differ from the fold";
            }
            if (differs) break;
          }
          if (differs) break;
        }
        if (registry.last_seq() != seen) continue;  // appended meanwhile
        if (differs) problem(0, *differs + " (as of event " + std::to_string(seen) + ")");
        return;
      }
    };

    // The registry folds the file on another thread while this one reads it.
    auto opening = std::async(std::launch::async, [&r] { return r.open_registry(); });
    chain.scan(r.journal.engine(), count, visit);
    total = report.events;
    progress();
    if (report.problems.empty()) {
      std::optional<Registry> registry;
      try {
        registry.emplace(opening.get());
      } catch (const Error& e) {
        // Storage: the registry refuses the path itself (a symlink, a file of another user), which
        // says nothing about the journal in it.
        if (e.code() == ErrorCode::Storage) {
          report.comparison_skipped = e.what();
        } else {
          problem(0, std::string("a registry cannot open the journal: ") + e.what());
        }
      }
      try {
        if (registry) {
          report.checkpoint_seq = registry->open_report().checkpoint_seq;
          report.ignored_checkpoints = registry->open_report().ignored_checkpoints;
          compare_with(*registry);
        }
      } catch (const Error& e) {
        problem(0, std::string("comparing with a registry's views failed: ") + e.what());
      }
    }
    if (options.digest) {
      const JournalDigest& d = *options.digest;
      report.digest = d;
      const std::string what = "digest " + to_string(d) + ": ";
      if (d.seq > report.last_seq) {
        problem(0, what + "event " + std::to_string(d.seq) +
                       " missing: the journal ends at event " + std::to_string(report.last_seq) +
                       " (its newest events were removed, or it is another file)");
      } else {
        const std::string stored =
            d.seq == 0 ? store::genesis_hash() : r.journal.stored_hash(d.seq);
        if (stored.empty()) {
          problem(0, what + "event " + std::to_string(d.seq) + " missing");
        } else if (hex(stored) != d.hash) {
          problem(0, what + "event " + std::to_string(d.seq) + " has hash " + hex(stored) +
                         ": the journal up to it was rewritten, or it is another file");
        }
      }
    }
    if (options.archive) check_archive(*options.archive, options, problem);
    report.tasks = views.task_count();
    report.messages = views.message_count();
    progress();
    return report;
  });
}

void JournalReader::check_archive(const std::string& location, const VerifyOptions& options,
                                  const std::function<void(std::uint64_t, std::string)>& problem) {
  Impl& r = *impl_;
  const auto& anchor = r.journal.anchor();
  if (!anchor) {
    problem(0, "archive " + location + " given, but this journal's prefix was never archived");
    return;
  }
  const std::string s = std::to_string(anchor->seq);
  JournalReader archive =
      store::is_postgresql_uri(location) ? open_postgresql(location) : open(location);
  const std::string name = archive.path().string();
  VerifyOptions own{.max_problems = options.max_problems};
  const VerifyReport report = archive.verify(own);
  for (const auto& p : report.problems) problem(p.seq, "archive: " + name + ": " + p.what);
  if (!report.problems.empty()) return;
  // The row itself, not an anchor's record of it: a journal archived past N is no archive of N.
  const std::string hash = archive.impl_->journal.engine().stored_hash(anchor->seq);
  if (hash.empty()) {
    problem(0, "archive: " + name + " ends at event " + std::to_string(report.last_seq) +
                   ", before the anchor's event " + s + ": it is not this journal's archive");
    return;
  }
  if (hash != anchor->hash) {
    problem(0, "archive: " + name + ": event " + s + " has hash " + hex(hash) +
                   ", the anchor says " + hex(anchor->hash) +
                   ": the archive and this journal are not one history");
    return;
  }
  // The anchor's checkpoint is what the live journal folds from: it must be the archive's fold.
  auto by_id = [](JournalSnapshot snap) {
    std::sort(snap.tasks.begin(), snap.tasks.end(),
              [](const TaskView& a, const TaskView& b) { return a.task.id < b.task.id; });
    return snap.tasks;
  };
  const auto ours = by_id(replay({.seq = anchor->seq}));
  const auto theirs = by_id(archive.replay({.seq = anchor->seq}));
  if (ours != theirs) {
    std::string which;
    for (std::size_t i = 0; i < std::max(ours.size(), theirs.size()); ++i) {
      if (i >= ours.size() || i >= theirs.size() || !(ours[i] == theirs[i])) {
        which = i < theirs.size() ? theirs[i].task.id : ours[i].task.id;
        break;
      }
    }
    problem(0, "archive: " + name + ": its fold up to event " + s +
                   " differs from the anchor's checkpoint (" + std::to_string(theirs.size()) +
                   " tasks against " + std::to_string(ours.size()) + ", first at task " + which +
                   ")");
  }
}

JournalDigest JournalReader::digest() {
  return impl_->guard([&] {
    Impl& r = *impl_;
    const std::uint64_t seq = r.journal.newest_seq();
    const std::string hash = seq == 0 ? store::genesis_hash() : r.journal.stored_hash(seq);
    return JournalDigest{.seq = seq, .hash = hex(hash)};
  });
}

TaskHistory JournalReader::history(std::string_view task_id, const ReplayLimit& limit,
                                   const std::function<void(const TaskHistoryStep&)>& sink) {
  return impl_->guard([&] {
    Impl& r = *impl_;
    r.check_not_archived(limit);
    TaskHistory out;
    std::uint64_t up_to = r.journal.newest_seq();
    if (limit.seq) up_to = std::min(up_to, *limit.seq);
    if (limit.time) {
      // The prefix ends before the first event recorded after `time`, wherever it is.
      std::uint64_t last = 0;
      r.journal.engine().scan(0, [&](const Row& row) {
        if (row.seq > up_to || at(row.recorded_at) > *limit.time) return false;
        last = row.seq;
        return true;
      });
      up_to = last;
    }
    out.last_seq = up_to;

    std::optional<SessionTask> task;  // the fold so far
    std::string spec;  // task->spec, kept apart while folding (no event after the first changes it)
    SessionTask before;
    const std::string id(task_id);
    store::ThrowingReporter reporter(r.path.string());
    store::ChainHasher hasher;
    store::ChainVerifier verifier(0, store::genesis_hash(), reporter, hasher);
    // A task created before an archived prefix's end starts from the anchor's checkpoint.
    if (r.journal.anchor()) {
      Impl::Start start = r.start();
      if (const SessionTask* known = start.views.find_any(task_id)) {
        task = *known;
        spec.swap(task->spec);
        out.archived_through = start.seq;
      }
    }
    r.journal.engine().scan_task(task_id, up_to, [&](const Row& row, std::string_view prev) {
      auto fail = [&](const std::string& what) {
        r.fail(Problem{row.seq, ErrorCode::Corrupt, event_prefix(row.seq) + what});
      };
      std::optional<events::Event> event(std::in_place);
      verifier.check_linked(row, r.journal.linked(row, prev), *event);  // throws at the first one

      TaskHistoryStep step;
      step.event = to_public(*event, static_cast<std::uint32_t>(row.version));
      if (const auto* created = std::get_if<events::TaskCreated>(&event->payload)) {
        if (task) fail("task " + id + " created twice");
        task = new_session_task(created->input, event->recorded_at);
        for (auto& [field, json] : task_fields(*task)) {
          step.changes.push_back(FieldChange{.field = field, .after = std::move(json)});
        }
        step.task = &*task;
        sink(step);
        spec.swap(task->spec);
      } else {
        if (!task) fail("event for task " + id + ", which no earlier event created");
        if (event->session_id != task->session_id) {
          fail("task " + id + " is of session " + task->session_id + ", not " + event->session_id);
        }
        step.dropped = drop_reason(*task, event->payload);
        if (const auto* u = std::get_if<events::TaskUpdated>(&event->payload)) {
          step.asked_state = u->update.state;
          step.expected_attempt = u->update.expected_attempt;
        }
        before = *task;  // without its spec: a copy of the small fields
        projections::fold_into_task(*task, *event);
        step.changes = task_changes(before, *task);
        if (auto* m = std::get_if<events::MessageRecorded>(&event->payload)) {
          step.message = std::move(m->message);
        }
        task->spec.swap(spec);
        step.task = &*task;
        sink(step);
        task->spec.swap(spec);
      }
      ++out.events;
      if (limit.progress && out.events % 8192 == 0) limit.progress(row.seq, up_to);
      return true;
    });
    out.found = task.has_value();
    if (limit.progress) limit.progress(up_to, up_to);
    return out;
  });
}

std::string to_string(const JournalDigest& digest) {
  return std::to_string(digest.seq) + ":" + digest.hash;
}

std::optional<JournalDigest> parse_digest(std::string_view text) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  JournalDigest d;
  const auto seq = text.substr(0, colon);
  const auto [end, ec] = std::from_chars(seq.data(), seq.data() + seq.size(), d.seq);
  if (ec != std::errc{} || end != seq.data() + seq.size()) return std::nullopt;
  const auto hash = text.substr(colon + 1);
  if (hash.size() != 64) return std::nullopt;
  for (char c : hash) {
    if (c >= '0' && c <= '9') {
      d.hash += c;
    } else if ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
      d.hash += static_cast<char>(c | 0x20);
    } else {
      return std::nullopt;
    }
  }
  return d;
}

JournalSummary summarize(const JournalSnapshot& snapshot) {
  JournalSummary s;
  s.payload_versions = snapshot.payload_versions;
  s.events = snapshot.last_seq;
  s.first_event_at = snapshot.first_event_at;
  s.last_event_at = snapshot.last_event_at;
  s.tasks = snapshot.tasks.size();
  std::set<std::string_view> sessions;
  std::map<std::string_view, std::size_t> kinds;
  for (const auto& v : snapshot.tasks) {
    sessions.insert(v.task.session_id);
    ++kinds[v.task.kind];
    ++s.tasks_by_state[static_cast<std::size_t>(v.task.state)];
    s.messages += v.messages.size();
  }
  s.sessions = sessions.size();
  for (const auto& [kind, n] : kinds) s.tasks_by_kind.emplace_back(std::string(kind), n);
  return s;
}

}  // namespace taskjournal
