// taskjournal-replay: inspect, audit, verify and export a taskjournal journal from the command
// line. FILE is a journal file or a PostgreSQL URI (postgresql://… or postgres://…). It opens the
// journal read-only (taskjournal::JournalReader) and never writes to it; only `copy` writes, to
// its DST.
//
// Each subcommand is a few lines over one public call (DESIGN habit 10): summary, tasks, show and
// export over JournalReader::replay, history over JournalReader::history (one task's events,
// streamed), verify over JournalReader::verify, digest over JournalReader::digest, follow over
// JournalReader::read, copy over copy_journal and then digest and verify. Every JSON output comes
// from the library's to_json functions; the tool writes only the brackets of arrays and of the
// copy's object. Output goes to stdout, errors to stderr (with --json also a JSON error object on
// stdout); exit status 0 = ok, 1 = failure (or a journal that does not verify), 2 = usage. A
// password in a URI is never printed: the library names a PostgreSQL journal by server, database
// and schema, and every message the tool prints has the URIs' passwords masked.
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "taskjournal/taskjournal.hpp"

namespace {

namespace tj = taskjournal;

constexpr std::string_view kProgram = "taskjournal-replay";

// --- Commands and their usage -----------------------------------------------------------------

struct OptionSpec {
  std::string_view name;  // "--as-of-seq"
  bool takes_value;
};

struct Command {
  std::string_view name;
  std::vector<std::string_view> positionals;  // "FILE", "TASK_ID"
  std::vector<OptionSpec> options;
  std::string_view usage;  // the synopsis line(s) and what it prints
};

const OptionSpec kAsOfSeq{"--as-of-seq", true};
const OptionSpec kAsOf{"--as-of", true};
const OptionSpec kJson{"--json", false};
const OptionSpec kBusy{"--busy-timeout", true};

const std::vector<Command>& commands() {
  static const std::vector<Command> list{
      {"summary",
       {"FILE"},
       {kAsOfSeq, kAsOf, kJson, kBusy},
       "usage: taskjournal-replay summary FILE [--as-of-seq N | --as-of TIME] [--json]\n"
       "  Events, sessions, tasks by state and by kind, messages, first and last event time, and\n"
       "  the schema and payload versions of the journal FILE.\n"},
      {"tasks",
       {"FILE"},
       {{"--session", true}, {"--state", true}, {"--kind", true}, kAsOfSeq, kAsOf, kJson, kBusy},
       "usage: taskjournal-replay tasks FILE [--session S] [--state STATE] [--kind K]\n"
       "                                [--as-of-seq N | --as-of TIME] [--json]\n"
       "  One line per task, in creation order: id, session, kind, state, attempt, updated_at,\n"
       "  display name. STATE is queued, running, awaiting_input, succeeded, failed or "
       "canceled.\n"},
      {"show",
       {"FILE", "TASK_ID"},
       {kAsOfSeq, kAsOf, kJson, kBusy},
       "usage: taskjournal-replay show FILE TASK_ID [--as-of-seq N | --as-of TIME] [--json]\n"
       "  The task's snapshot (its public JSON fields, spec secrets redacted) and its messages,\n"
       "  oldest first.\n"},
      {"history",
       {"FILE", "TASK_ID"},
       {kAsOfSeq, kAsOf, kJson, kBusy},
       "usage: taskjournal-replay history FILE TASK_ID [--as-of-seq N | --as-of TIME] [--json]\n"
       "  The task's audit trail: one line per event with its sequence number, time, type and the\n"
       "  fields it changed (before -> after; updated_at left out). DROPPED marks an update the\n"
       "  lifecycle rules dropped: fenced (expected_attempt mismatch) or terminal (another state\n"
       "  asked of a terminal task). Reads only that task's events and prints each line as it\n"
       "  comes.\n"},
      {"verify",
       {"FILE"},
       {{"--digest", true}, {"--archive", true}, kJson, kBusy},
       "usage: taskjournal-replay verify FILE [--digest SEQ:HASH] [--archive ARCHIVE] [--json]\n"
       "  Re-reads every event: gap-free sequence, hash chain, known versions and types, payloads\n"
       "  that decode, lifecycle invariants along the fold, and a registry opened on FILE giving\n"
       "  the same views as the fold. Prints a one-line verdict (and each problem after it);\n"
       "  exits 0 only when everything holds. With --digest (saved from `digest`), also that\n"
       "  event SEQ still has hash HASH: the journal holds exactly that prefix, so removed newest\n"
       "  events are caught, which the chain alone cannot see. An archived journal verifies\n"
       "  from its anchor; with --archive, also that ARCHIVE verifies on its own and that the\n"
       "  two chain into one unbroken history (the anchor's event and hash, and the archive's\n"
       "  fold equal to the anchor's checkpoint).\n"},
      {"digest",
       {"FILE"},
       {kJson, kBusy},
       "usage: taskjournal-replay digest FILE [--json]\n"
       "  The newest event's sequence number and hash as SEQ:HASH. Save it somewhere else; later\n"
       "  `verify FILE --digest SEQ:HASH` proves the journal still holds exactly those events.\n"},
      {"export",
       {"FILE"},
       {{"--format", true}, kBusy},
       "usage: taskjournal-replay export FILE [--format jsonl]\n"
       "  One JSON object per line and per task, in creation order:\n"
       "  {\"task\":{...},\"messages\":[...]} with the task in the public JSON form of "
       "docs/contract.md §6\n"
       "  (spec secrets redacted) and its messages oldest first.\n"},
      {"follow",
       {"FILE"},
       {{"--after-seq", true}, {"--interval-ms", true}, kJson, kBusy},
       "usage: taskjournal-replay follow FILE [--after-seq N] [--interval-ms MS] [--json]\n"
       "  Prints events as other processes append them, like tail -f, until interrupted\n"
       "  (SIGINT or SIGTERM; exit status 0). Starts after the newest event, or after event N\n"
       "  (waiting for it when the journal has not reached it yet).\n"
       "  Polls every MS milliseconds (default 250).\n"},
      {"copy",
       {"SRC", "DST"},
       {{"--batch", true}, kJson, kBusy},
       "usage: taskjournal-replay copy SRC DST [--batch N] [--json]\n"
       "  Copies the journal SRC to DST (each a file or a postgresql:// URI) event by\n"
       "  event, as stored: the same sequence numbers, payload bytes and hashes. Every\n"
       "  event read is checked (sequence, hash chain, payload). DST is created when\n"
       "  missing; if it holds events they must be a prefix of SRC (an interrupted copy),\n"
       "  and the copy resumes after them. Appends N events per transaction (default\n"
       "  10000). Checkpoints are not copied (a cache of the views; a registry opening DST\n"
       "  folds the events). Then checks that DST's digest equals SRC's and verifies DST\n"
       "  as `verify` does; exits 0 only if both hold.\n"},
      {"archive",
       {"FILE"},
       {{"--before-seq", true}, {"--to", true}, {"--no-compact", false}, kJson, kBusy},
       "usage: taskjournal-replay archive FILE --before-seq N --to ARCHIVE [--no-compact] "
       "[--json]\n"
       "  Moves the events 1..N (N at most the newest) of the journal FILE into ARCHIVE\n"
       "  (created, or an earlier archive of FILE, which they are appended to) and leaves in\n"
       "  FILE an anchor: the checkpoint of event N and its hash, from which FILE opens, folds\n"
       "  and verifies on its own. Then VACUUMs FILE (not with --no-compact) and verifies\n"
       "  FILE with --archive ARCHIVE; exits 0 only if that holds. Writers of FILE keep\n"
       "  working (they wait for the deletion and the VACUUM); a crash leaves FILE as it was\n"
       "  or archived, and running the command again finishes the work.\n"},
  };
  return list;
}

constexpr std::string_view kUsage =
    "usage: taskjournal-replay COMMAND FILE [ARGS] [OPTIONS]\n"
    "Inspect, audit, verify, export and copy a taskjournal journal. FILE is a journal\n"
    "file or a PostgreSQL URI, opened read-only:\n"
    "  postgresql://[user[:password]@][host][:port]/dbname[?options=-c%20search_path%3DSCHEMA]\n"
    "\n"
    "commands:\n"
    "  summary FILE          events, sessions, tasks by state and kind, messages, versions\n"
    "  tasks FILE            one line per task (--session S, --state STATE, --kind K)\n"
    "  show FILE TASK_ID     a task's snapshot and messages\n"
    "  history FILE TASK_ID  a task's audit trail: what each event changed\n"
    "  verify FILE           check sequence, hashes, payloads, invariants and views\n"
    "  digest FILE           the newest event as SEQ:HASH, for verify --digest\n"
    "  export FILE           every task with its messages as JSON lines\n"
    "  follow FILE           print events as they are appended, until interrupted\n"
    "  copy SRC DST          copy a journal event by event (files or URIs), then verify the copy\n"
    "  archive FILE          move the events up to --before-seq N into --to ARCHIVE\n"
    "\n"
    "summary, tasks, show and history take --as-of-seq N (the views after event N) and\n"
    "--as-of TIME (RFC 3339: the views after the last event recorded at or before TIME), one\n"
    "or the other. Listing commands take --json. Every command takes --busy-timeout MS (how\n"
    "long to wait for a lock another process holds; default 5000). Long commands show progress\n"
    "on stderr when it is a terminal. `taskjournal-replay COMMAND --help` describes one command.\n"
    "Exit status: 0 ok, 1 failure (message on stderr), 2 usage.\n";

struct UsageError {
  std::string message;
  const Command* command = nullptr;
};

struct Args {
  const Command* command = nullptr;
  std::vector<std::string> positionals;
  std::map<std::string, std::string, std::less<>> options;  // name → value ("" for flags)
  bool help = false;

  bool has(std::string_view name) const { return options.find(name) != options.end(); }
  std::optional<std::string> get(std::string_view name) const {
    auto it = options.find(name);
    return it == options.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
};

Args parse(int argc, char** argv) {
  Args args;
  if (argc < 2) throw UsageError{"missing command"};
  const std::string_view name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    args.help = true;
    return args;
  }
  for (const auto& c : commands()) {
    if (c.name == name) args.command = &c;
  }
  if (!args.command) throw UsageError{"unknown command '" + std::string(name) + "'"};
  const Command& c = *args.command;
  bool options_done = false;
  for (int i = 2; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (!options_done && (arg == "--help" || arg == "-h")) {
      args.help = true;
      return args;
    }
    if (!options_done && arg == "--") {
      options_done = true;
      continue;
    }
    if (!options_done && arg.size() > 1 && arg[0] == '-') {
      std::string_view key = arg;
      std::optional<std::string> value;
      if (auto eq = arg.find('='); eq != std::string_view::npos) {
        key = arg.substr(0, eq);
        value = std::string(arg.substr(eq + 1));
      }
      auto spec = std::find_if(c.options.begin(), c.options.end(),
                               [&](const OptionSpec& o) { return o.name == key; });
      if (spec == c.options.end()) {
        throw UsageError{"unknown option '" + std::string(key) + "'", &c};
      }
      if (spec->takes_value && !value) {
        if (i + 1 >= argc) throw UsageError{"option " + std::string(key) + " needs a value", &c};
        value = argv[++i];
      }
      if (!spec->takes_value && value) {
        throw UsageError{"option " + std::string(key) + " takes no value", &c};
      }
      if (args.has(key)) throw UsageError{"option " + std::string(key) + " given twice", &c};
      args.options.emplace(std::string(key), value.value_or(""));
      continue;
    }
    args.positionals.emplace_back(arg);
  }
  if (args.positionals.size() < c.positionals.size()) {
    throw UsageError{"missing " + std::string(c.positionals[args.positionals.size()]), &c};
  }
  if (args.positionals.size() > c.positionals.size()) {
    throw UsageError{"unexpected argument '" + args.positionals[c.positionals.size()] + "'", &c};
  }
  return args;
}

std::uint64_t parse_count(std::string_view option, std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) {
    throw UsageError{"option " + std::string(option) + " needs a non-negative integer, not '" +
                     std::string(text) + "'"};
  }
  return value;
}

tj::ReplayLimit limit_of(const Args& args) {
  tj::ReplayLimit limit;
  if (args.has("--as-of-seq") && args.has("--as-of")) {
    throw UsageError{"options --as-of-seq and --as-of are alternatives: give one of them",
                     args.command};
  }
  if (auto seq = args.get("--as-of-seq")) limit.seq = parse_count("--as-of-seq", *seq);
  if (auto time = args.get("--as-of")) {
    limit.time = tj::parse_timestamp(*time);
    if (!limit.time) {
      throw UsageError{"option --as-of needs an RFC 3339 time such as 2026-01-02T03:04:05Z, not '" +
                       *time + "'"};
    }
  }
  return limit;
}

// --- Output helpers ---------------------------------------------------------------------------

// A JSON value for people: a string without escapes is shown bare (quoted inline when it is empty
// or has a space, so that "a → b" stays readable); anything else as JSON.
std::string human(std::string_view json, bool inline_value) {
  if (json.size() >= 2 && json.front() == '"' && json.find('\\') == std::string_view::npos) {
    std::string_view s = json.substr(1, json.size() - 2);
    if (!inline_value && !s.empty()) return std::string(s);
    if (inline_value && !s.empty() && s.find(' ') == std::string_view::npos) return std::string(s);
  }
  return std::string(json);
}

std::size_t display_width(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;  // count UTF-8 code points
  return n;
}

bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20; });
}

// A cell with a control character (a newline in a display name) is shown as a JSON string, so
// that every row stays one line.
std::string cell(std::string text) { return has_control(text) ? tj::json_string(text) : text; }

// `text` padded with spaces to `width` code points (left-aligned, or right-aligned).
std::string pad(std::string text, std::size_t width, bool right = false) {
  const std::size_t w = display_width(text);
  if (w >= width) return text;
  const std::string fill(width - w, ' ');
  return right ? fill + text : text + fill;
}

// Aligned columns separated by two spaces; the last column is not padded. Rows have the same
// number of cells; a header is just the first row.
class Table {
 public:
  explicit Table(std::vector<bool> right = {}) : right_(std::move(right)) {}
  void add(std::vector<std::string> row) {
    for (auto& c : row) c = cell(std::move(c));
    rows_.push_back(std::move(row));
  }
  void print(std::ostream& out) const {
    if (rows_.empty()) return;
    std::vector<std::size_t> width(rows_.front().size(), 0);
    for (const auto& row : rows_) {
      for (std::size_t i = 0; i < row.size(); ++i) {
        width[i] = std::max(width[i], display_width(row[i]));
      }
    }
    for (const auto& row : rows_) {
      std::string line;
      for (std::size_t i = 0; i < row.size(); ++i) {
        const bool last = i + 1 == row.size();
        const bool right = i < right_.size() && right_[i];
        if (i > 0) line += "  ";
        line += (last && !right) ? row[i] : pad(row[i], width[i], right);
      }
      out << line << '\n';
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
  std::vector<bool> right_;
};

// The text of a message for one table cell: text parts joined by " / ", data parts as JSON.
std::string message_content(const tj::TaskMessage& m) {
  std::string out;
  for (const auto& part : m.content) {
    if (!out.empty()) out += " / ";
    if (const auto* t = std::get_if<tj::TextPart>(&part)) {
      out +=
          t->text.find_first_of("\n\r\t") == std::string::npos ? t->text : tj::json_string(t->text);
    } else {
      out += std::get<tj::DataPart>(part).data;
    }
  }
  return out;
}

std::string as_of_text(const tj::ReplayLimit& limit, std::uint64_t last_seq) {
  std::string out;
  if (limit.time) out = tj::format_timestamp(*limit.time) + ", ";
  return out + "event " + std::to_string(last_seq);
}

// Progress of a long command on stderr, only when stderr is a terminal: "\rWHAT: done/total
// events (p%)" at most every 100 ms, erased when the command is done with it.
class Progress {
 public:
  explicit Progress(std::string what, bool enabled = true)
      : what_(std::move(what)), enabled_(enabled && ::isatty(STDERR_FILENO) == 1) {}
  ~Progress() { clear(); }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // The callback for the library, or an empty one when nothing is shown.
  tj::ProgressCallback callback(std::string at_end = "") {
    if (!enabled_) return {};
    return [this, at_end = std::move(at_end)](std::uint64_t done, std::uint64_t total) {
      const auto now = std::chrono::steady_clock::now();
      if (done < total && now - last_ < std::chrono::milliseconds(100)) return;
      last_ = now;
      shown_ = true;
      std::cerr << "\r" << what_ << ": " << done << "/" << total << " events ("
                << (total ? done * 100 / total : 100) << "%)" << (done >= total ? at_end : "")
                << "\033[K" << std::flush;
    };
  }
  void clear() {
    if (shown_) std::cerr << "\r\033[K" << std::flush;
    shown_ = false;
  }

 private:
  std::string what_;
  bool enabled_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point last_{};
};

// The same prefix test as the library's: a location of this form is a PostgreSQL journal,
// anything else a file.
bool is_postgresql_uri(std::string_view location) {
  return location.starts_with("postgresql://") || location.starts_with("postgres://");
}

// %XX decoded, as libpq decodes a URI (a malformed escape stays as it is).
std::string percent_decoded(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 3 <= text.size()) {
      const char* from = text.data() + i + 1;
      unsigned value = 0;
      const auto [end, ec] = std::from_chars(from, from + 2, value, 16);
      if (ec == std::errc{} && end == from + 2) {
        out += static_cast<char>(value);
        i += 2;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

// The passwords of the URIs on the command line (user:PASSWORD@ and ?password=PASSWORD), as
// written and decoded: every message the tool prints has them masked.
std::vector<std::string>& secrets() {
  static std::vector<std::string> list;
  return list;
}

void collect_secrets(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view uri = argv[i];
    if (!is_postgresql_uri(uri)) continue;
    std::vector<std::string_view> found;
    // As libpq reads it: user information ends at the first '@' before any '/'.
    std::size_t start = uri.find("://") + 3;
    if (const auto at = uri.find_first_of("@/", start);
        at != std::string_view::npos && uri[at] == '@') {
      const std::string_view userinfo = uri.substr(start, at - start);
      if (const auto colon = userinfo.find(':'); colon != std::string_view::npos) {
        found.push_back(userinfo.substr(colon + 1));
      }
      start = at + 1;
    }
    for (std::size_t from = uri.find('?', start);
         from != std::string_view::npos && from < uri.size();) {
      const std::size_t end = uri.find('&', from + 1);
      const std::string_view param = uri.substr(from + 1, end - from - 1);
      if (param.starts_with("password=")) found.push_back(param.substr(9));
      from = end;
    }
    for (const auto secret : found) {
      if (secret.empty()) continue;
      secrets().emplace_back(secret);
      secrets().push_back(percent_decoded(secret));
    }
  }
  // Longest first, so that a password containing another is masked whole.
  std::sort(secrets().begin(), secrets().end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

// `text` with every password of the command line replaced by "***".
std::string masked(std::string text) {
  for (const auto& secret : secrets()) {
    if (secret.empty()) continue;
    for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3)) {
      text.replace(at, secret.size(), "***");
    }
  }
  return text;
}

std::chrono::milliseconds busy_timeout_of(const Args& args) {
  std::chrono::milliseconds timeout{5000};
  if (auto text = args.get("--busy-timeout")) {
    timeout = std::chrono::milliseconds(parse_count("--busy-timeout", *text));
  }
  return timeout;
}

tj::JournalReader open_reader(const std::string& location, std::chrono::milliseconds timeout) {
  const tj::ReaderOptions options{.busy_timeout = timeout};
  return is_postgresql_uri(location) ? tj::JournalReader::open_postgresql(location, options)
                                     : tj::JournalReader::open(location, options);
}

struct Context {
  std::string file;  // for messages: the file as given, or the server, database and schema
  tj::JournalReader reader;
};

Context context_of(const std::string& location, tj::JournalReader reader) {
  std::string file = is_postgresql_uri(location) ? reader.path().string() : location;
  return Context{std::move(file), std::move(reader)};
}

// Opens the journal. When another process holds a file locked, says so (and who) before waiting
// up to --busy-timeout, instead of waiting in silence. (A PostgreSQL reader takes no lock that
// writers hold: it waits only for schema changes, up to --busy-timeout.)
Context open_journal(const Args& args) {
  const std::string& location = args.positionals.at(0);
  const auto timeout = busy_timeout_of(args);
  if (is_postgresql_uri(location)) return context_of(location, open_reader(location, timeout));
  try {
    return context_of(location, open_reader(location, std::chrono::milliseconds(0)));
  } catch (const tj::Error& e) {
    if (e.code() != tj::ErrorCode::Busy || timeout.count() == 0) throw;
    std::cerr << kProgram << ": waiting up to " << timeout.count()
              << " ms (--busy-timeout): " << masked(e.what()) << '\n';
  }
  return context_of(location, open_reader(location, timeout));
}

[[noreturn]] void fail(const std::string& message) {
  throw tj::Error(tj::ErrorCode::NotFound, message);
}

// --- Subcommands ------------------------------------------------------------------------------

int cmd_summary(const Args& args) {
  auto limit = limit_of(args);
  auto ctx = open_journal(args);
  Progress progress("summary");
  limit.progress = progress.callback();
  const auto snap = ctx.reader.replay(limit);
  progress.clear();

  auto summary = tj::summarize(snap);
  summary.file = ctx.file;
  if (limit.seq || limit.time) summary.as_of_seq = snap.last_seq;
  summary.schema_version = ctx.reader.schema_version();
  if (args.has("--json")) {
    std::cout << tj::to_json(summary) << '\n';
    return 0;
  }
  std::string versions;
  for (auto v : summary.payload_versions)
    versions += (versions.empty() ? "" : ", ") + std::to_string(v);
  auto time = [](const std::optional<tj::Timestamp>& t) {
    return t ? tj::format_timestamp(*t) : std::string("-");
  };
  constexpr tj::SessionTaskState kStates[] = {
      tj::SessionTaskState::Queued,        tj::SessionTaskState::Running,
      tj::SessionTaskState::AwaitingInput, tj::SessionTaskState::Succeeded,
      tj::SessionTaskState::Failed,        tj::SessionTaskState::Canceled};
  const std::size_t kinds = summary.tasks_by_kind.size();
  Table t;
  t.add({"file", summary.file});
  if (summary.as_of_seq) t.add({"as of", as_of_text(limit, snap.last_seq)});
  t.add({"schema version", std::to_string(summary.schema_version)});
  t.add({"payload versions", versions.empty() ? "-" : versions});
  t.add({"events", std::to_string(summary.events)});
  t.add({"first event", time(summary.first_event_at)});
  t.add({"last event", time(summary.last_event_at)});
  t.add({"sessions", std::to_string(summary.sessions)});
  t.add({"tasks", std::to_string(summary.tasks)});
  for (auto s : kStates) {
    t.add({"  " + std::string(tj::to_string(s)),
           std::to_string(summary.tasks_by_state[static_cast<std::size_t>(s)])});
  }
  t.add({"tasks by kind", std::to_string(kinds) + (kinds == 1 ? " kind" : " kinds")});
  for (const auto& [kind, n] : summary.tasks_by_kind) t.add({"  " + kind, std::to_string(n)});
  t.add({"messages", std::to_string(summary.messages)});
  t.print(std::cout);
  return 0;
}

int cmd_tasks(const Args& args) {
  auto limit = limit_of(args);
  std::optional<tj::SessionTaskState> state;
  if (auto text = args.get("--state")) {
    state = tj::parse_session_task_state(*text);
    if (!state) {
      throw UsageError{"unknown state '" + *text +
                       "' (queued, running, awaiting_input, succeeded, failed, canceled)"};
    }
  }
  const auto session = args.get("--session");
  const auto kind = args.get("--kind");
  auto ctx = open_journal(args);
  Progress progress("tasks");
  limit.progress = progress.callback();
  const auto snap = ctx.reader.replay(limit);
  progress.clear();

  std::vector<const tj::SessionTask*> tasks;
  for (const auto& v : snap.tasks) {
    if (session && v.task.session_id != *session) continue;
    if (state && v.task.state != *state) continue;
    if (kind && v.task.kind != *kind) continue;
    tasks.push_back(&v.task);
  }
  if (args.has("--json")) {
    std::cout << "[";
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      std::cout << (i ? ",\n " : "\n ") << tj::to_json(*tasks[i]);
    }
    std::cout << (tasks.empty() ? "]\n" : "\n]\n");
    return 0;
  }
  Table t({false, false, false, false, true});
  t.add({"ID", "SESSION", "KIND", "STATE", "ATTEMPT", "UPDATED_AT", "DISPLAY_NAME"});
  for (const auto* task : tasks) {
    t.add({task->id, task->session_id, task->kind, std::string(tj::to_string(task->state)),
           std::to_string(task->attempt), tj::format_timestamp(task->updated_at),
           task->display_name});
  }
  t.print(std::cout);
  return 0;
}

int cmd_show(const Args& args) {
  auto limit = limit_of(args);
  auto ctx = open_journal(args);
  const std::string& id = args.positionals[1];
  Progress progress("show");
  limit.progress = progress.callback();
  const auto snap = ctx.reader.replay(limit);
  progress.clear();
  const tj::TaskView* view = snap.find(id);
  if (!view) {
    fail("no task " + id + " in " + ctx.file +
         (limit.seq || limit.time ? " as of " + as_of_text(limit, snap.last_seq) : ""));
  }
  if (args.has("--json")) {
    std::cout << tj::to_json(*view) << '\n';
    return 0;
  }
  Table fields;
  for (const auto& [name, value] : tj::task_fields(view->task)) {
    fields.add({name, human(value, false)});
  }
  fields.print(std::cout);
  std::cout << "\nmessages: " << view->messages.size()
            << (view->messages.empty() ? "\n" : ", oldest first\n");
  if (!view->messages.empty()) {
    Table m;
    m.add({"CREATED_AT", "DIRECTION", "ID", "IN_REPLY_TO", "CONTENT"});
    for (const auto& msg : view->messages) {
      m.add({tj::format_timestamp(msg.created_at), std::string(tj::to_string(msg.direction)),
             msg.id, msg.in_reply_to.value_or("-"), message_content(msg)});
    }
    m.print(std::cout);
  }
  return 0;
}

// What one step changed, for people: "state running → succeeded, attempt 1 → 2".
std::string describe_step(const tj::TaskHistoryStep& step) {
  const tj::SessionTask& task = *step.task;
  if (step.dropped == tj::DropReason::Fenced) {
    return "DROPPED fenced (expected_attempt " +
           (step.expected_attempt ? std::to_string(*step.expected_attempt) : "?") +
           ", task at attempt " + std::to_string(task.attempt) + ")";
  }
  if (step.dropped == tj::DropReason::Terminal) {
    return "DROPPED terminal (asked " +
           std::string(step.asked_state ? tj::to_string(*step.asked_state) : "?") + ", task is " +
           std::string(tj::to_string(task.state)) + ")";
  }
  std::vector<std::string> parts;
  if (step.event.type == "task_created") {
    parts.push_back("created: kind " + human(tj::json_string(task.kind), true) + ", state " +
                    std::string(tj::to_string(task.state)));
  } else {
    for (const auto& c : step.changes) {
      if (c.field == "updated_at") continue;
      parts.push_back(c.field + " " + (c.before ? human(*c.before, true) : "(none)") + " → " +
                      (c.after ? human(*c.after, true) : "(none)"));
    }
  }
  if (step.message) {
    parts.insert(parts.begin(), "message " + std::string(tj::to_string(step.message->direction)) +
                                    " " + step.message->id + ": " + message_content(*step.message));
  }
  if (parts.empty()) return "(no change)";
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

// Set once a command has started a JSON document on stdout: an error then closes it itself.
bool g_json_started = false;

int cmd_history(const Args& args) {
  auto limit = limit_of(args);
  const bool json = args.has("--json");
  auto ctx = open_journal(args);
  const std::string& id = args.positionals[1];
  // Lines are printed as they come: progress only when they do not go to the same terminal.
  Progress progress("history", ::isatty(STDOUT_FILENO) != 1);
  limit.progress = progress.callback();

  // Fixed columns, so that nothing waits for the widest row: SEQ as wide as the newest sequence
  // number (at least 3), TIME as a timestamp, EVENT as the longest event type (16).
  const std::size_t seq_width =
      std::max<std::size_t>(3, std::to_string(ctx.reader.newest_seq()).size());
  constexpr std::size_t kTimeWidth = 27, kEventWidth = 16;
  std::uint64_t printed = 0;
  const auto sink = [&](const tj::TaskHistoryStep& step) {
    progress.clear();
    if (json) {
      std::cout << (printed ? ",\n " : "[\n ") << tj::to_json(step);
      g_json_started = true;
    } else {
      if (printed == 0) {
        std::cout << pad("SEQ", seq_width, true) << "  " << pad("TIME", kTimeWidth) << "  "
                  << pad("EVENT", kEventWidth) << "  CHANGES\n";
      }
      std::cout << pad(std::to_string(step.event.seq), seq_width, true) << "  "
                << pad(tj::format_timestamp(step.event.recorded_at), kTimeWidth) << "  "
                << pad(cell(step.event.type), kEventWidth) << "  " << cell(describe_step(step))
                << '\n';
    }
    ++printed;
  };
  const auto history = ctx.reader.history(id, limit, sink);
  progress.clear();
  if (!history.found) {
    fail("no task " + id + " in " + ctx.file +
         (limit.seq || limit.time ? " as of " + as_of_text(limit, history.last_seq) : ""));
  }
  if (json) {
    std::cout << (printed ? "\n]\n" : "[]\n");
    g_json_started = false;
  } else if (history.archived_through != 0) {
    std::cout << "(the events up to " << history.archived_through
              << " are archived: the task is shown from the anchor's checkpoint on)\n";
  }
  return 0;
}

int print_verify(const tj::VerifyReport& report);

int cmd_verify(const Args& args) {
  tj::VerifyOptions options;
  if (auto text = args.get("--digest")) {
    options.digest = tj::parse_digest(*text);
    if (!options.digest) {
      throw UsageError{
          "option --digest needs SEQ:HASH as `digest` prints it (a sequence number, "
          "a colon and 64 hex digits), not '" +
          *text + "'"};
    }
  }
  if (auto archive = args.get("--archive")) options.archive = std::string(*archive);
  auto ctx = open_journal(args);
  Progress progress("verify");
  options.progress = progress.callback(", comparing with a registry's views");
  const auto report = ctx.reader.verify(options);
  progress.clear();

  if (args.has("--json")) {
    std::cout << tj::to_json(report) << '\n';
    return report.ok() ? 0 : 1;
  }
  return print_verify(report);
}

// The verdict of `verify` and the lines after it; 0 if the journal verified, 1 otherwise.
int print_verify(const tj::VerifyReport& report) {
  auto count = [](std::uint64_t n, const char* what) {
    return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
  };
  const std::string counts = count(report.events, "event") + ", " + count(report.tasks, "task") +
                             ", " + count(report.messages, "message");
  // After the verdict: what the registry's views were built from, and checkpoints it passed over.
  auto checkpoint_lines = [&] {
    if (report.ok() && report.comparison_skipped.empty() && report.checkpoint_seq != 0) {
      std::cout << "checkpoint of event " << report.checkpoint_seq
                << ": the registry's views restored from it equal the fold\n";
    }
    for (const auto& why : report.ignored_checkpoints) std::cout << "warning: " << why << '\n';
    if (report.ok() && report.archived_through != 0) {
      std::cout << "anchor: the events up to " << report.archived_through
                << " are archived; the fold began from the anchor's checkpoint\n";
    }
  };
  auto digest_line = [&] {
    if (report.ok() && report.digest) {
      std::cout << "digest " << tj::to_string(*report.digest)
                << ": the journal holds exactly the events up to it, and "
                << (report.last_seq - report.digest->seq) << " after it\n";
    }
  };
  if (report.ok() && !report.comparison_skipped.empty()) {
    std::cout << "ok: " << counts
              << "; sequence, hash chain, payloads and lifecycle invariants hold (registry views "
                 "not compared: "
              << report.comparison_skipped << ")\n";
    digest_line();
    checkpoint_lines();
    return 0;
  }
  if (report.ok()) {
    std::cout << "ok: " << counts
              << "; sequence, hash chain, payloads, lifecycle invariants and registry views hold\n";
    digest_line();
    checkpoint_lines();
    return 0;
  }
  const std::size_t n = report.problems.size();
  std::cout << "FAILED: " << report.problems.front().what << " ("
            << (report.truncated ? "more than " : "") << count(n, "problem") << " in " << counts
            << ")\n";
  if (n > 1) {
    for (const auto& p : report.problems) std::cout << "  " << p.what << '\n';
    if (report.truncated) std::cout << "  ...\n";
  }
  if (report.checkpoint_seq != 0) {
    std::cout << "note: the registry restored its views from the checkpoint of event "
              << report.checkpoint_seq << '\n';
  }
  checkpoint_lines();
  return 1;
}

int cmd_digest(const Args& args) {
  auto ctx = open_journal(args);
  const auto digest = ctx.reader.digest();
  std::cout << (args.has("--json") ? tj::to_json(digest) : tj::to_string(digest)) << '\n';
  return 0;
}

int cmd_export(const Args& args) {
  if (auto format = args.get("--format"); format && *format != "jsonl") {
    throw UsageError{"unknown format '" + *format + "' (only jsonl)"};
  }
  auto ctx = open_journal(args);
  Progress progress("export");
  const auto snap = ctx.reader.replay({.progress = progress.callback()});
  progress.clear();
  for (const auto& view : snap.tasks) std::cout << tj::to_json(view) << '\n';
  return 0;
}

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop_signal(int) { g_stop = 1; }

int cmd_follow(const Args& args) {
  std::optional<std::uint64_t> after;
  if (auto text = args.get("--after-seq")) after = parse_count("--after-seq", *text);
  std::uint64_t interval_ms = 250;
  if (auto text = args.get("--interval-ms"))
    interval_ms = std::max<std::uint64_t>(1, parse_count("--interval-ms", *text));
  const bool json = args.has("--json");
  auto ctx = open_journal(args);

  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  std::uint64_t last = after ? *after : ctx.reader.newest_seq();
  while (!g_stop) {
    // After an event the journal has not reached yet: wait for it, then go on after it.
    if (ctx.reader.newest_seq() >= last) {
      ctx.reader.read(last, [&](const tj::JournalEvent& e) {
        if (json) {
          std::cout << tj::to_json(e) << '\n';
        } else {
          std::cout << e.seq << "  " << tj::format_timestamp(e.recorded_at) << "  "
                    << pad(cell(e.type), 16) << "  " << cell(e.session_id) << "  "
                    << cell(e.task_id) << "  " << e.payload << '\n';
        }
        last = e.seq;
        return !g_stop;
      });
      std::cout << std::flush;
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(interval_ms);
    while (!g_stop && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(
          std::chrono::milliseconds(20), std::chrono::milliseconds(interval_ms)));
    }
  }
  return 0;
}

// The copy, then the checks of it: DST's newest event is the one the copy ended with (SRC's
// newest when it began), SRC still ends there (or has grown since), and DST verifies up to it.
int cmd_copy(const Args& args) {
  tj::CopyOptions options{.busy_timeout = busy_timeout_of(args)};
  if (auto text = args.get("--batch")) {
    options.batch_events = parse_count("--batch", *text);
    if (options.batch_events == 0) {
      throw UsageError{"option --batch needs at least 1 (events per transaction)", args.command};
    }
  }
  const std::string& src = args.positionals[0];
  const std::string& dst = args.positionals[1];
  Progress progress("copy");
  options.progress = progress.callback();
  const auto copy = tj::copy_journal(src, dst, options);
  progress.clear();

  auto dst_reader = open_reader(dst, options.busy_timeout);
  auto src_reader = open_reader(src, options.busy_timeout);
  const auto dst_digest = dst_reader.digest();
  const auto src_digest = src_reader.digest();
  Progress verify_progress("verify");
  const auto report = dst_reader.verify(
      {.progress = verify_progress.callback(", comparing with a registry's views"),
       .digest = copy.digest});
  verify_progress.clear();
  const bool dst_equal = dst_digest == copy.digest;
  const bool src_equal = src_digest == copy.digest;
  const bool src_grew = !src_equal && src_digest.seq > copy.digest.seq;
  const bool ok = dst_equal && (src_equal || src_grew) && report.ok();

  if (args.has("--json")) {
    std::cout << R"({"ok":)" << (ok ? "true" : "false") << R"(,"source":)"
              << tj::json_string(copy.source) << R"(,"destination":)"
              << tj::json_string(copy.destination) << R"(,"kept":)" << copy.kept << R"(,"copied":)"
              << copy.copied << R"(,"transactions":)" << copy.transactions << R"(,"digest":)"
              << tj::to_json(copy.digest) << R"(,"source_digest":)" << tj::to_json(src_digest)
              << R"(,"destination_digest":)" << tj::to_json(dst_digest) << R"(,"verify":)"
              << tj::to_json(report) << "}\n";
    return ok ? 0 : 1;
  }
  auto events = [](std::uint64_t n) { return std::to_string(n) + (n == 1 ? " event" : " events"); };
  std::cout << "copied " << events(copy.copied) << " in " << copy.transactions
            << (copy.transactions == 1 ? " transaction" : " transactions");
  if (copy.kept != 0) {
    std::cout << ", after the " << events(copy.kept) << " DST held (a prefix of SRC)";
  }
  std::cout << "\n  from " << copy.source << "\n  to   " << copy.destination << '\n';
  if (dst_equal && src_equal) {
    std::cout << "digest " << tj::to_string(copy.digest)
              << ": SRC and DST end with the same event and hash\n";
  } else if (dst_equal && src_grew) {
    std::cout << "digest " << tj::to_string(copy.digest)
              << ": DST ends with the event SRC ended with when the copy began; SRC has "
              << events(src_digest.seq - copy.digest.seq)
              << " more now (run copy again to add them)\n";
  } else {
    std::cout << "MISMATCH: the copy ended with " << tj::to_string(copy.digest)
              << ", SRC now ends with " << tj::to_string(src_digest) << ", DST with "
              << tj::to_string(dst_digest) << '\n';
  }
  std::cout << "DST: ";
  print_verify(report);
  std::cout << "checkpoints are not copied (a cache of the views): a registry opening DST folds "
               "its events and writes checkpoints of its own\n";
  return ok ? 0 : 1;
}

// The archive, then `verify FILE --archive ARCHIVE`.
int cmd_archive(const Args& args) {
  tj::ArchiveOptions options{.busy_timeout = busy_timeout_of(args)};
  const auto before = args.get("--before-seq");
  const auto to = args.get("--to");
  if (!before || !to) {
    throw UsageError{"archive needs --before-seq N and --to ARCHIVE", args.command};
  }
  options.before_seq = parse_count("--before-seq", *before);
  if (options.before_seq == 0) {
    throw UsageError{"option --before-seq needs at least 1 (the last event to archive)",
                     args.command};
  }
  options.compact = !args.has("--no-compact");
  const std::string& file = args.positionals[0];
  Progress progress("archive");
  options.progress = progress.callback();
  const auto result = tj::archive_journal(file, std::string(*to), options);
  progress.clear();

  auto reader = open_reader(file, options.busy_timeout);
  Progress verify_progress("verify");
  const auto report =
      reader.verify({.progress = verify_progress.callback(", comparing with a registry's views"),
                     .archive = std::string(*to)});
  verify_progress.clear();
  if (args.has("--json")) {
    std::cout << R"({"ok":)" << (report.ok() ? "true" : "false") << R"(,"journal":)"
              << tj::json_string(result.journal) << R"(,"archive":)"
              << tj::json_string(result.archive) << R"(,"archived_through":)"
              << result.archived_through << R"(,"events_archived":)" << result.events_archived
              << R"(,"bytes_before":)" << result.bytes_before << R"(,"bytes_after":)"
              << result.bytes_after << R"(,"verify":)" << tj::to_json(report) << "}\n";
    return report.ok() ? 0 : 1;
  }
  std::cout << "archived " << result.events_archived << " events; the events up to "
            << result.archived_through << " are in " << result.archive << "\n  " << result.journal
            << ": " << result.bytes_before << " -> " << result.bytes_after << " bytes\n";
  std::cout << "FILE with --archive: ";
  return print_verify(report);
}

int run(const Args& args) {
  const std::string_view name = args.command->name;
  if (name == "summary") return cmd_summary(args);
  if (name == "tasks") return cmd_tasks(args);
  if (name == "show") return cmd_show(args);
  if (name == "history") return cmd_history(args);
  if (name == "verify") return cmd_verify(args);
  if (name == "digest") return cmd_digest(args);
  if (name == "export") return cmd_export(args);
  if (name == "copy") return cmd_copy(args);
  if (name == "archive") return cmd_archive(args);
  return cmd_follow(args);
}

// With --json, a failure is also a JSON error object on stdout: on its own, or as the last
// element of the array a command had started.
void json_error(const Args& args, const tj::Error& error) {
  if (!args.command || !args.has("--json")) return;
  const tj::Error shown(error.code(), masked(error.what()));
  if (g_json_started) {
    std::cout << ",\n " << tj::to_json(shown) << "\n]\n";
  } else {
    std::cout << tj::to_json(shown) << '\n';
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  Args args;
  collect_secrets(argc, argv);
  try {
    args = parse(argc, argv);
    if (args.help) {
      std::cout << (args.command ? args.command->usage : kUsage);
      return 0;
    }
    return run(args);
  } catch (const UsageError& e) {
    const Command* command = e.command ? e.command : args.command;
    std::cout << std::flush;
    std::cerr << kProgram << ": " << masked(e.message) << '\n'
              << (command ? command->usage : kUsage);
    return 2;
  } catch (const tj::Error& e) {
    json_error(args, e);
    std::cout << std::flush;
    std::cerr << kProgram << ": " << masked(e.what()) << '\n';
    if (e.code() == tj::ErrorCode::Busy) {
      std::cerr << kProgram
                << ": try again once that process is done, or wait longer with "
                   "--busy-timeout MS\n";
    }
    return 1;
  } catch (const std::exception& e) {
    json_error(args, tj::Error(tj::ErrorCode::Storage, e.what()));
    std::cout << std::flush;
    std::cerr << kProgram << ": " << masked(e.what()) << '\n';
    return 1;
  }
}
