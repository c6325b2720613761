// taskjournal-replay: inspect, audit, verify and export a taskjournal journal from the command
// line. It opens the journal read-only (taskjournal::JournalReader) and never writes to it.
//
// Each subcommand is a few lines over one public call (DESIGN habit 10): summary, tasks, show and
// export over JournalReader::replay, history over replay's steps, verify over
// JournalReader::verify, follow over JournalReader::read. Output goes to stdout, errors to stderr;
// exit status 0 = ok, 1 = failure (or a journal that does not verify), 2 = usage.
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

const std::vector<Command>& commands() {
  static const std::vector<Command> list{
      {"summary",
       {"FILE"},
       {kAsOfSeq, kAsOf, kJson},
       "usage: taskjournal-replay summary FILE [--as-of-seq N | --as-of TIME] [--json]\n"
       "  Events, sessions, tasks by state and by kind, messages, first and last event time, and\n"
       "  the schema and payload versions of the journal FILE.\n"},
      {"tasks",
       {"FILE"},
       {{"--session", true}, {"--state", true}, {"--kind", true}, kAsOfSeq, kAsOf, kJson},
       "usage: taskjournal-replay tasks FILE [--session S] [--state STATE] [--kind K]\n"
       "                                [--as-of-seq N | --as-of TIME] [--json]\n"
       "  One line per task, in creation order: id, session, kind, state, attempt, updated_at,\n"
       "  display name. STATE is queued, running, awaiting_input, succeeded, failed or "
       "canceled.\n"},
      {"show",
       {"FILE", "TASK_ID"},
       {kAsOfSeq, kAsOf, kJson},
       "usage: taskjournal-replay show FILE TASK_ID [--as-of-seq N | --as-of TIME] [--json]\n"
       "  The task's snapshot (its public JSON fields, spec secrets redacted) and its messages,\n"
       "  oldest first.\n"},
      {"history",
       {"FILE", "TASK_ID"},
       {kAsOfSeq, kAsOf, kJson},
       "usage: taskjournal-replay history FILE TASK_ID [--as-of-seq N | --as-of TIME] [--json]\n"
       "  The task's audit trail: one line per event with its sequence number, time, type and the\n"
       "  fields it changed (before -> after; updated_at left out). DROPPED marks an update the\n"
       "  lifecycle rules dropped: fenced (expected_attempt mismatch) or terminal (another state\n"
       "  asked of a terminal task).\n"},
      {"verify",
       {"FILE"},
       {kJson},
       "usage: taskjournal-replay verify FILE [--json]\n"
       "  Re-reads every event: gap-free sequence, hash chain, known versions and types, payloads\n"
       "  that decode, lifecycle invariants along the fold, and a registry opened on FILE giving\n"
       "  the same views as the fold. Prints a one-line verdict (and each problem after it);\n"
       "  exits 0 only when everything holds. Shows progress on stderr when it is a terminal.\n"},
      {"export",
       {"FILE"},
       {{"--format", true}},
       "usage: taskjournal-replay export FILE [--format jsonl]\n"
       "  One JSON object per line and per task, in creation order:\n"
       "  {\"task\":{...},\"messages\":[...]} with the task in the public JSON form of CONTRACT "
       "§6\n"
       "  (spec secrets redacted) and its messages oldest first.\n"},
      {"follow",
       {"FILE"},
       {{"--after-seq", true}, {"--interval-ms", true}, kJson},
       "usage: taskjournal-replay follow FILE [--after-seq N] [--interval-ms MS] [--json]\n"
       "  Prints events as other processes append them, like tail -f, until interrupted\n"
       "  (SIGINT or SIGTERM; exit status 0). Starts after the newest event, or after event N.\n"
       "  Polls every MS milliseconds (default 250).\n"},
  };
  return list;
}

constexpr std::string_view kUsage =
    "usage: taskjournal-replay COMMAND FILE [ARGS] [OPTIONS]\n"
    "Inspect, audit, verify and export a taskjournal journal. FILE is opened read-only.\n"
    "\n"
    "commands:\n"
    "  summary FILE          events, sessions, tasks by state and kind, messages, versions\n"
    "  tasks FILE            one line per task (--session S, --state STATE, --kind K)\n"
    "  show FILE TASK_ID     a task's snapshot and messages\n"
    "  history FILE TASK_ID  a task's audit trail: what each event changed\n"
    "  verify FILE           check sequence, hashes, payloads, invariants and views\n"
    "  export FILE           every task with its messages as JSON lines\n"
    "  follow FILE           print events as they are appended, until interrupted\n"
    "\n"
    "summary, tasks, show and history take --as-of-seq N (the views after event N) and\n"
    "--as-of TIME (RFC 3339: the views after the last event recorded at or before TIME).\n"
    "Listing commands take --json. `taskjournal-replay COMMAND --help` describes one command.\n"
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

// A JSON string literal.
std::string quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string opt_json_time(const std::optional<tj::Timestamp>& t) {
  return t ? quote(tj::format_timestamp(*t)) : "null";
}

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

// Aligned columns separated by two spaces; the last column is not padded. Rows have the same
// number of cells; a header is just the first row. A cell with a control character (a newline in
// a display name) is shown as a JSON string, so that every row stays one line.
class Table {
 public:
  explicit Table(std::vector<bool> right = {}) : right_(std::move(right)) {}
  void add(std::vector<std::string> row) {
    for (auto& cell : row) {
      if (std::any_of(cell.begin(), cell.end(), [](unsigned char c) { return c < 0x20; })) {
        cell = quote(cell);
      }
    }
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
        const std::string pad(width[i] - display_width(row[i]), ' ');
        const bool last = i + 1 == row.size();
        if (i > 0) line += "  ";
        if (i < right_.size() && right_[i]) {
          line += pad + row[i];
        } else {
          line += row[i];
          if (!last) line += pad;
        }
      }
      out << line << '\n';
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
  std::vector<bool> right_;
};

std::string message_json_array(const std::vector<tj::TaskMessage>& messages) {
  std::string out = "[";
  for (std::size_t i = 0; i < messages.size(); ++i) {
    if (i > 0) out += ',';
    out += tj::to_json(messages[i]);
  }
  return out + "]";
}

// {"task":{…},"messages":[…]}: one line of export, and show --json.
std::string task_with_messages_json(const tj::TaskView& view) {
  return "{\"task\":" + tj::to_json(view.task) +
         ",\"messages\":" + message_json_array(view.messages) + "}";
}

// The text of a message for one table cell: text parts joined by " / ", data parts as JSON.
std::string message_content(const tj::TaskMessage& m) {
  std::string out;
  for (const auto& part : m.content) {
    if (!out.empty()) out += " / ";
    if (const auto* t = std::get_if<tj::TextPart>(&part)) {
      out += t->text.find_first_of("\n\r\t") == std::string::npos ? t->text : quote(t->text);
    } else {
      out += std::get<tj::DataPart>(part).data;
    }
  }
  return out;
}

std::string as_of_text(const tj::ReplayLimit& limit, const tj::JournalSnapshot& snap) {
  std::string out;
  if (limit.time) out = tj::format_timestamp(*limit.time) + ", ";
  return out + "event " + std::to_string(snap.last_seq);
}

struct Context {
  std::string file;
  tj::JournalReader reader;
};

Context open_journal(const Args& args) {
  return Context{args.positionals.at(0), tj::JournalReader::open(args.positionals.at(0))};
}

[[noreturn]] void fail(const std::string& message) {
  throw tj::Error(tj::ErrorCode::NotFound, message);
}

// --- Subcommands ------------------------------------------------------------------------------

int cmd_summary(const Args& args) {
  const auto limit = limit_of(args);
  auto ctx = open_journal(args);
  const auto snap = ctx.reader.replay(limit);

  std::map<std::string, std::size_t> sessions, kinds;
  std::map<tj::SessionTaskState, std::size_t> states;
  std::size_t messages = 0;
  for (const auto& v : snap.tasks) {
    ++sessions[v.task.session_id];
    ++kinds[v.task.kind];
    ++states[v.task.state];
    messages += v.messages.size();
  }
  constexpr tj::SessionTaskState kStates[] = {
      tj::SessionTaskState::Queued,        tj::SessionTaskState::Running,
      tj::SessionTaskState::AwaitingInput, tj::SessionTaskState::Succeeded,
      tj::SessionTaskState::Failed,        tj::SessionTaskState::Canceled};
  std::string versions;
  for (auto v : snap.payload_versions)
    versions += (versions.empty() ? "" : ", ") + std::to_string(v);

  if (args.has("--json")) {
    std::string out = "{\"file\":" + quote(ctx.file);
    if (limit.seq || limit.time) out += ",\"as_of_seq\":" + std::to_string(snap.last_seq);
    out += ",\"schema_version\":" + std::to_string(ctx.reader.schema_version());
    out += ",\"payload_versions\":[" + versions + "]";
    out += ",\"events\":" + std::to_string(snap.last_seq);
    if (snap.first_event_at) out += ",\"first_event_at\":" + opt_json_time(snap.first_event_at);
    if (snap.last_event_at) out += ",\"last_event_at\":" + opt_json_time(snap.last_event_at);
    out += ",\"sessions\":" + std::to_string(sessions.size());
    out += ",\"tasks\":" + std::to_string(snap.tasks.size()) + ",\"tasks_by_state\":{";
    for (auto s : kStates) {
      out +=
          (s == kStates[0] ? "" : ",") + quote(tj::to_string(s)) + ":" + std::to_string(states[s]);
    }
    out += "},\"tasks_by_kind\":{";
    bool first = true;
    for (const auto& [kind, n] : kinds) {
      out += (first ? "" : ",") + quote(kind) + ":" + std::to_string(n);
      first = false;
    }
    out += "},\"messages\":" + std::to_string(messages) + "}";
    std::cout << out << '\n';
    return 0;
  }

  auto time = [](const std::optional<tj::Timestamp>& t) {
    return t ? tj::format_timestamp(*t) : std::string("-");
  };
  Table t;
  t.add({"file", ctx.file});
  if (limit.seq || limit.time) t.add({"as of", as_of_text(limit, snap)});
  t.add({"schema version", std::to_string(ctx.reader.schema_version())});
  t.add({"payload versions", versions.empty() ? "-" : versions});
  t.add({"events", std::to_string(snap.last_seq)});
  t.add({"first event", time(snap.first_event_at)});
  t.add({"last event", time(snap.last_event_at)});
  t.add({"sessions", std::to_string(sessions.size())});
  t.add({"tasks", std::to_string(snap.tasks.size())});
  for (auto s : kStates) t.add({"  " + std::string(tj::to_string(s)), std::to_string(states[s])});
  t.add({"tasks by kind", std::to_string(kinds.size()) + (kinds.size() == 1 ? " kind" : " kinds")});
  for (const auto& [kind, n] : kinds) t.add({"  " + kind, std::to_string(n)});
  t.add({"messages", std::to_string(messages)});
  t.print(std::cout);
  return 0;
}

int cmd_tasks(const Args& args) {
  const auto limit = limit_of(args);
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
  const auto snap = ctx.reader.replay(limit);

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
  const auto limit = limit_of(args);
  auto ctx = open_journal(args);
  const std::string& id = args.positionals[1];
  const auto snap = ctx.reader.replay(limit);
  const tj::TaskView* view = snap.find(id);
  if (!view) {
    fail("no task " + id + " in " + ctx.file +
         (limit.seq || limit.time ? " as of " + as_of_text(limit, snap) : ""));
  }
  if (args.has("--json")) {
    std::cout << task_with_messages_json(*view) << '\n';
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
// In an update's payload JSON, "state" is the first member and "expected_attempt" the last but
// one, after any user JSON: their text can be read without a parser.
std::string asked_state(std::string_view payload) {
  constexpr std::string_view kKey = "{\"state\":\"";
  if (payload.substr(0, kKey.size()) != kKey) return "?";
  const auto end = payload.find('"', kKey.size());
  return std::string(payload.substr(kKey.size(), end - kKey.size()));
}
std::string expected_attempt(std::string_view payload) {
  constexpr std::string_view kKey = "\"expected_attempt\":";
  const auto at = payload.rfind(kKey);
  if (at == std::string_view::npos) return "?";
  const auto begin = at + kKey.size();
  return std::string(payload.substr(begin, payload.find_first_of(",}", begin) - begin));
}

std::string describe_step(const tj::ReplayStep& step) {
  if (step.dropped == tj::DropReason::Fenced) {
    return "DROPPED fenced (expected_attempt " + expected_attempt(step.event.payload) +
           ", task at attempt " + std::to_string(step.after.attempt) + ")";
  }
  if (step.dropped == tj::DropReason::Terminal) {
    return "DROPPED terminal (asked " + asked_state(step.event.payload) + ", task is " +
           std::string(tj::to_string(step.after.state)) + ")";
  }
  std::vector<std::string> parts;
  if (!step.before) {
    parts.push_back("created: kind " + human(quote(step.after.kind), true) + ", state " +
                    std::string(tj::to_string(step.after.state)));
  } else {
    for (const auto& c : tj::task_changes(*step.before, step.after)) {
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

std::string step_json(const tj::ReplayStep& step) {
  const auto& e = step.event;
  std::string out = "{\"seq\":" + std::to_string(e.seq) +
                    ",\"recorded_at\":" + quote(tj::format_timestamp(e.recorded_at)) +
                    ",\"type\":" + quote(e.type) + ",\"version\":" + std::to_string(e.version) +
                    ",\"payload\":" + e.payload;
  if (step.dropped != tj::DropReason::None) {
    out += ",\"dropped\":" + quote(tj::to_string(step.dropped));
  }
  out += ",\"changes\":[";
  bool first = true;
  auto change = [&](const std::string& field, const std::optional<std::string>& before,
                    const std::optional<std::string>& after) {
    out += (first ? "" : ",") + std::string("{\"field\":") + quote(field) +
           ",\"before\":" + before.value_or("null") + ",\"after\":" + after.value_or("null") + "}";
    first = false;
  };
  if (step.before) {
    for (const auto& c : tj::task_changes(*step.before, step.after))
      change(c.field, c.before, c.after);
  } else {
    for (const auto& [field, value] : tj::task_fields(step.after))
      change(field, std::nullopt, value);
  }
  return out + "]}";
}

int cmd_history(const Args& args) {
  const auto limit = limit_of(args);
  auto ctx = open_journal(args);
  const std::string& id = args.positionals[1];
  std::vector<tj::ReplayStep> steps;
  const auto snap = ctx.reader.replay(
      limit, [&](const tj::ReplayStep& s) { steps.push_back(s); }, id);
  if (!snap.find(id)) {
    fail("no task " + id + " in " + ctx.file +
         (limit.seq || limit.time ? " as of " + as_of_text(limit, snap) : ""));
  }
  if (args.has("--json")) {
    std::cout << "[";
    for (std::size_t i = 0; i < steps.size(); ++i) {
      std::cout << (i ? ",\n " : "\n ") << step_json(steps[i]);
    }
    std::cout << "\n]\n";
    return 0;
  }
  Table t({true});
  t.add({"SEQ", "TIME", "EVENT", "CHANGES"});
  for (const auto& s : steps) {
    t.add({std::to_string(s.event.seq), tj::format_timestamp(s.event.recorded_at), s.event.type,
           describe_step(s)});
  }
  t.print(std::cout);
  return 0;
}

int cmd_verify(const Args& args) {
  auto ctx = open_journal(args);
  tj::VerifyOptions options;
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  auto last_shown = std::chrono::steady_clock::time_point{};
  if (tty) {
    options.progress = [&](std::uint64_t done, std::uint64_t total) {
      const auto now = std::chrono::steady_clock::now();
      if (done < total && now - last_shown < std::chrono::milliseconds(100)) return;
      last_shown = now;
      std::cerr << "\rverify: " << done << "/" << total << " events ("
                << (total ? done * 100 / total : 100) << "%)"
                << (done == total ? ", comparing with a registry's views" : "") << std::flush;
    };
  }
  const auto report = ctx.reader.verify(options);
  if (tty) std::cerr << "\r\033[K" << std::flush;

  if (args.has("--json")) {
    std::string out = std::string("{\"ok\":") + (report.ok() ? "true" : "false") +
                      ",\"events\":" + std::to_string(report.events) +
                      ",\"last_seq\":" + std::to_string(report.last_seq) +
                      ",\"tasks\":" + std::to_string(report.tasks) +
                      ",\"messages\":" + std::to_string(report.messages) + ",\"problems\":[";
    for (std::size_t i = 0; i < report.problems.size(); ++i) {
      out += (i ? "," : "") + std::string("{\"seq\":") + std::to_string(report.problems[i].seq) +
             ",\"what\":" + quote(report.problems[i].what) + "}";
    }
    out += std::string("],\"truncated\":") + (report.truncated ? "true" : "false");
    if (!report.comparison_skipped.empty()) {
      out += ",\"comparison_skipped\":" + quote(report.comparison_skipped);
    }
    out += ",\"checkpoint_seq\":" + std::to_string(report.checkpoint_seq) +
           ",\"ignored_checkpoints\":[";
    for (std::size_t i = 0; i < report.ignored_checkpoints.size(); ++i) {
      out += (i ? "," : "") + quote(report.ignored_checkpoints[i]);
    }
    out += "]}";
    std::cout << out << '\n';
    return report.ok() ? 0 : 1;
  }
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
  };
  if (report.ok() && !report.comparison_skipped.empty()) {
    std::cout << "ok: " << counts
              << "; sequence, hash chain, payloads and lifecycle invariants hold (registry views "
                 "not compared: "
              << report.comparison_skipped << ")\n";
    checkpoint_lines();
    return 0;
  }
  if (report.ok()) {
    std::cout << "ok: " << counts
              << "; sequence, hash chain, payloads, lifecycle invariants and registry views hold\n";
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

int cmd_export(const Args& args) {
  if (auto format = args.get("--format"); format && *format != "jsonl") {
    throw UsageError{"unknown format '" + *format + "' (only jsonl)"};
  }
  auto ctx = open_journal(args);
  for (const auto& view : ctx.reader.replay().tasks)
    std::cout << task_with_messages_json(view) << '\n';
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
    ctx.reader.read(last, [&](const tj::JournalEvent& e) {
      if (json) {
        std::cout << "{\"seq\":" << e.seq << ",\"type\":" << quote(e.type)
                  << ",\"version\":" << e.version
                  << ",\"recorded_at\":" << quote(tj::format_timestamp(e.recorded_at))
                  << ",\"session_id\":" << quote(e.session_id)
                  << ",\"task_id\":" << quote(e.task_id) << ",\"payload\":" << e.payload << "}\n";
      } else {
        std::string type = e.type;
        type.resize(std::max<std::size_t>(type.size(), 16), ' ');
        std::cout << e.seq << "  " << tj::format_timestamp(e.recorded_at) << "  " << type << "  "
                  << e.session_id << "  " << e.task_id << "  " << e.payload << '\n';
      }
      last = e.seq;
      return !g_stop;
    });
    std::cout << std::flush;
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(interval_ms);
    while (!g_stop && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(
          std::chrono::milliseconds(20), std::chrono::milliseconds(interval_ms)));
    }
  }
  return 0;
}

int run(const Args& args) {
  const std::string_view name = args.command->name;
  if (name == "summary") return cmd_summary(args);
  if (name == "tasks") return cmd_tasks(args);
  if (name == "show") return cmd_show(args);
  if (name == "history") return cmd_history(args);
  if (name == "verify") return cmd_verify(args);
  if (name == "export") return cmd_export(args);
  return cmd_follow(args);
}

}  // namespace

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  Args args;
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
    std::cerr << kProgram << ": " << e.message << '\n' << (command ? command->usage : kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::cout << std::flush;
    std::cerr << kProgram << ": " << e.what() << '\n';
    return 1;
  }
}
