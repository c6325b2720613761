// JournalReader: the journal read-only, event by event, folded through the registry's own views.
//
// Reading reuses store::Journal (one read-only connection; Journal::scan hands over raw rows) and
// checks each row here, so that verify() can report a problem and go on where read() and replay()
// stop. Folding goes through projections::Views::apply, the registry's only fold.
#include "taskjournal/reader.hpp"

#include <algorithm>
#include <future>
#include <limits>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "events/event.hpp"
#include "projections/views.hpp"
#include "store/journal.hpp"
#include "taskjournal/error.hpp"
#include "taskjournal/json.hpp"
#include "taskjournal/options.hpp"
#include "taskjournal/registry.hpp"

namespace taskjournal {
namespace {

using Row = store::Journal::Row;

struct Problem {
  std::uint64_t seq = 0;
  ErrorCode code = ErrorCode::Corrupt;
  std::string what;  // "event <seq>: …"
};

std::string event_prefix(std::uint64_t seq) { return "event " + std::to_string(seq) + ": "; }

Timestamp at(std::int64_t micros) { return Timestamp{std::chrono::microseconds{micros}}; }

// Follows the hash chain and the sequence row by row. After a broken link it continues from the
// stored hash, so that one altered row is reported once, not once per later row.
class Chain {
 public:
  Chain(store::Journal& journal, std::uint64_t after_seq, std::string prev_hash)
      : journal_(journal), expected_(after_seq + 1), prev_(std::move(prev_hash)) {}

  std::uint64_t expected() const noexcept { return expected_; }

  // Every problem of `row` in order (sequence, hash, version, type, payload); when there is none
  // that keeps it from decoding, `event` holds the decoded event.
  std::vector<Problem> check(const Row& row, std::optional<events::Event>& event) {
    std::vector<Problem> out;
    auto add = [&](std::uint64_t seq, std::string what, ErrorCode code = ErrorCode::Corrupt) {
      out.push_back(Problem{seq, code, event_prefix(seq) + what});
    };
    bool linked = true;
    if (row.seq != expected_) {
      if (row.seq > expected_) {
        const std::uint64_t last_missing = row.seq - 1;
        add(expected_, last_missing == expected_
                           ? "missing (sequence gap: event " + std::to_string(row.seq) +
                                 " follows event " + std::to_string(expected_ - 1) + ")"
                           : "missing, up to event " + std::to_string(last_missing) +
                                 " (sequence gap: event " + std::to_string(row.seq) +
                                 " follows event " + std::to_string(expected_ - 1) + ")");
      } else {
        add(row.seq, "out of sequence (expected event " + std::to_string(expected_) + ")");
      }
      linked = false;  // the predecessor's hash is unknown
    }
    const bool version_fits = row.version >= 0 && row.version <= UINT32_MAX;
    std::string hash;
    if (version_fits) hash = journal_.chain_hash(prev_, row);
    if (linked && (!version_fits || hash != row.hash)) {
      add(row.seq, "hash mismatch (row altered, removed or reordered)");
    }
    expected_ = row.seq + 1;
    prev_ = (version_fits && hash == row.hash) ? std::move(hash) : std::string(row.hash);

    if (row.version < 1 || row.version > events::kPayloadVersion) {
      add(row.seq,
          "unknown payload version " + std::to_string(row.version) + " (this build reads 1 to " +
              std::to_string(events::kPayloadVersion) + ")",
          ErrorCode::Unsupported);
      return out;
    }
    if (!events::is_known_type(row.type)) {
      add(row.seq, "unknown event type \"" + std::string(row.type) + "\"");
      return out;
    }
    try {
      events::Event e{.seq = row.seq,
                      .recorded_at = at(row.recorded_at),
                      .session_id = std::string(row.session_id),
                      .task_id = std::string(row.task_id)};
      e.payload = events::decode(row.type, static_cast<std::uint32_t>(row.version), row.payload,
                                 row.session_id, row.task_id, e.recorded_at);
      event = std::move(e);
    } catch (const Error& e) {
      add(row.seq, e.what(), e.code());
    }
    return out;
  }

 private:
  store::Journal& journal_;
  std::uint64_t expected_;
  std::string prev_;
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

// The top-level members of a compact JSON object (as to_json writes it), raw text, in order.
std::vector<std::pair<std::string, std::string>> members(std::string_view json) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t i = 1;  // after '{'
  auto skip_string = [&](std::size_t& p) {
    for (++p; p < json.size() && json[p] != '"'; ++p) {
      if (json[p] == '\\') ++p;
    }
    ++p;
  };
  while (i < json.size() && json[i] == '"') {
    const std::size_t key_start = i;
    skip_string(i);
    std::string key(json.substr(key_start + 1, i - key_start - 2));
    ++i;  // ':'
    const std::size_t value_start = i;
    int depth = 0;
    while (i < json.size()) {
      const char c = json[i];
      if (c == '"') {
        skip_string(i);
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (depth == 0) break;
        --depth;
      }
      if (c == ',' && depth == 0) break;
      ++i;
    }
    out.emplace_back(std::move(key), std::string(json.substr(value_start, i - value_start)));
    if (i < json.size() && json[i] == ',') ++i;
  }
  return out;
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

std::vector<std::pair<std::string, Json>> task_fields(const SessionTask& task) {
  return members(to_json(task));
}

std::vector<FieldChange> task_changes(const SessionTask& before, const SessionTask& after) {
  const auto b = task_fields(before);
  const auto a = task_fields(after);
  auto find = [](const auto& list, const std::string& key) -> const std::string* {
    for (const auto& [k, v] : list) {
      if (k == key) return &v;
    }
    return nullptr;
  };
  // Field order: after's, with fields only `before` has inserted after their predecessor there.
  std::vector<std::string> order;
  for (const auto& [k, v] : a) order.push_back(k);
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (find(a, b[i].first)) continue;
    auto pos = order.begin();
    for (std::size_t j = i; j > 0; --j) {
      auto it = std::find(order.begin(), order.end(), b[j - 1].first);
      if (it != order.end()) {
        pos = it + 1;
        break;
      }
    }
    order.insert(pos, b[i].first);
  }
  std::vector<FieldChange> out;
  for (const auto& key : order) {
    const std::string* x = find(b, key);
    const std::string* y = find(a, key);
    if (x && y && *x == *y) continue;
    out.push_back(FieldChange{.field = key,
                              .before = x ? std::optional<Json>(*x) : std::nullopt,
                              .after = y ? std::optional<Json>(*y) : std::nullopt});
  }
  return out;
}

struct JournalReader::Impl {
  std::filesystem::path path;
  store::Journal journal;

  explicit Impl(const std::filesystem::path& p)
      : path(p), journal(store::JournalConfig{.path = p.string(), .read_only = true}) {}

  [[noreturn]] void fail(const Problem& p) const {
    throw Error(p.code, path.string() + ": " + p.what);
  }
};

JournalReader::JournalReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JournalReader::JournalReader(JournalReader&&) noexcept = default;
JournalReader& JournalReader::operator=(JournalReader&&) noexcept = default;
JournalReader::~JournalReader() = default;

JournalReader JournalReader::open(const std::filesystem::path& path) {
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
    return JournalReader(std::make_unique<Impl>(path));
  } catch (const Error& e) {
    // store::Journal refuses an empty database opened read-only as ReadOnly; here it is just
    // not a journal.
    if (e.code() == ErrorCode::ReadOnly) {
      throw Error(ErrorCode::Corrupt, name + ": not a taskjournal journal (empty database)");
    }
    throw;
  }
}

const std::filesystem::path& JournalReader::path() const noexcept { return impl_->path; }

int JournalReader::schema_version() { return impl_->journal.schema_version(); }

std::uint64_t JournalReader::newest_seq() { return impl_->journal.newest_seq(); }

void JournalReader::read(std::uint64_t after_seq,
                         const std::function<bool(const JournalEvent&)>& sink) {
  Impl& r = *impl_;
  std::string prev = store::Journal::genesis_hash();
  if (after_seq > 0) {
    prev = r.journal.stored_hash(after_seq);
    if (prev.empty()) {
      r.fail(Problem{after_seq, ErrorCode::Corrupt, event_prefix(after_seq) + "missing"});
    }
  }
  Chain chain(r.journal, after_seq, std::move(prev));
  r.journal.scan(after_seq, [&](const Row& row) {
    std::optional<events::Event> event;
    auto problems = chain.check(row, event);
    if (!problems.empty()) r.fail(problems.front());
    return sink(to_public(*event, static_cast<std::uint32_t>(row.version)));
  });
}

JournalSnapshot JournalReader::replay(const ReplayLimit& limit,
                                      const std::function<void(const ReplayStep&)>& on_step,
                                      std::optional<std::string> step_task) {
  Impl& r = *impl_;
  projections::Views views;
  std::vector<std::string> order;
  JournalSnapshot snap;
  Chain chain(r.journal, 0, store::Journal::genesis_hash());
  r.journal.scan(0, [&](const Row& row) {
    if (limit.seq && row.seq > *limit.seq) return false;
    if (limit.time && at(row.recorded_at) > *limit.time) return false;
    std::optional<events::Event> event;
    auto problems = chain.check(row, event);
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
      on_step(ReplayStep{.event = to_public(*event, version),
                         .before = std::move(before),
                         .after = *applied.task,
                         .dropped = dropped,
                         .message = applied.message ? std::optional<TaskMessage>(*applied.message)
                                                    : std::nullopt});
    }
    return true;
  });
  snap.tasks.reserve(order.size());
  for (const auto& id : order) {
    const SessionTask* task = views.find_any(id);
    snap.tasks.push_back(
        TaskView{*task, views.messages(task->session_id, id, std::nullopt, std::nullopt)});
  }
  return snap;
}

VerifyReport JournalReader::verify(const VerifyOptions& options) {
  Impl& r = *impl_;
  VerifyReport report;
  projections::Views views;
  std::vector<std::string> order;
  std::uint64_t total = r.journal.newest_seq();
  Chain chain(r.journal, 0, store::Journal::genesis_hash());

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
        problem(seq, p + "terminal state " + std::string(to_string(before.state)) + " changed to " +
                         std::string(to_string(after.state)));
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

  auto visit = [&](const Row& row) {
    ++report.events;
    report.last_seq = row.seq;
    if (report.events % 8192 == 0) progress();
    std::optional<events::Event> event;
    for (auto& p : chain.check(row, event)) problem(p.seq, std::move(p.what));
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
      check_step(row.seq, (current && !created) ? &before_facts : nullptr, before_copy, dropped,
                 increments, *applied.task);
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
        r.journal.scan(report.last_seq,
                       [&](const Row& row) { return row.seq <= seen && visit(row); });
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
  auto opening = std::async(std::launch::async, [path = r.path] {
    return Registry::open(path, Options{.read_only = true});
  });
  r.journal.scan(0, visit);
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
  report.tasks = views.task_count();
  report.messages = views.message_count();
  progress();
  return report;
}

}  // namespace taskjournal
