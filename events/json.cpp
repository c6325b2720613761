// JSON forms: the public JSON of tasks and messages (docs/contract.md §6), RFC 3339 timestamps, and
// the JSON of event payloads (JournalEntry::payload).
//
// Stored JSON (spec, expected, data) is embedded as a value by streaming it through RapidJSON's
// iterative reader straight into the writer: no DOM, no recursion, numbers copied verbatim.
#include "taskjournal/json.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "events/event.hpp"
#include "events/validate.hpp"
#include "taskjournal/error.hpp"
#include "taskjournal/reader.hpp"

namespace taskjournal {
namespace {

using rapidjson::SizeType;
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr unsigned kEmbedFlags = rapidjson::kParseIterativeFlag |
                                 rapidjson::kParseValidateEncodingFlag |
                                 rapidjson::kParseNumbersAsStringsFlag;

// Forwards the SAX events of one stored JSON value to a writer (or nowhere, when `out` is null).
// With `redact`, every object directly inside a top-level "push_configs" array that has a "secret"
// key gets `"has_secret": true` in the secret's place and loses any other "has_secret" member.
// Whether an object has a secret is only known at its end, so redaction takes two passes: a scan
// (out == null) fills `secrets`, one flag per push_configs object in document order; the write
// pass reads them back.
class Embed {
 public:
  Embed(JsonWriter* out, bool redact, std::vector<bool>* secrets)
      : out_(out), redact_(redact), secrets_(secrets) {}

  bool Null() {
    return scalar([&] { return out_->Null(); });
  }
  bool Bool(bool b) {
    return scalar([&] { return out_->Bool(b); });
  }
  bool Int(int i) {
    return scalar([&] { return out_->Int(i); });
  }
  bool Uint(unsigned u) {
    return scalar([&] { return out_->Uint(u); });
  }
  bool Int64(std::int64_t i) {
    return scalar([&] { return out_->Int64(i); });
  }
  bool Uint64(std::uint64_t u) {
    return scalar([&] { return out_->Uint64(u); });
  }
  bool Double(double d) {
    return scalar([&] { return out_->Double(d); });
  }
  bool RawNumber(const char* s, SizeType n, bool copy) {
    // RawValue, not Writer::RawNumber: RapidJSON 1.1.0's RawNumber writes a quoted string.
    (void)copy;
    return scalar([&] { return out_->RawValue(s, n, rapidjson::kNumberType); });
  }
  bool String(const char* s, SizeType n, bool copy) {
    if (!events::is_valid_utf8(std::string_view(s, n))) return false;
    return scalar([&] { return out_->String(s, n, copy); });
  }
  bool StartObject() {
    return open(true, [&] { return out_->StartObject(); });
  }
  bool StartArray() {
    return open(false, [&] { return out_->StartArray(); });
  }
  bool EndObject(SizeType n) {
    return close([&] { return out_->EndObject(n); });
  }
  bool EndArray(SizeType n) {
    return close([&] { return out_->EndArray(n); });
  }

  bool Key(const char* s, SizeType n, bool copy) {
    const std::string_view key(s, n);
    if (!events::is_valid_utf8(key)) return false;
    if (skip_depth_ > 0) return true;
    if (redact_ && depth_ == 1 && root_is_object_) push_key_ = key == "push_configs";
    if (redact_ && in_config_ && depth_ == 3) {
      if (!out_) {
        if (key == "secret") (*secrets_)[config_] = true;
      } else if ((*secrets_)[config_]) {
        if (key == "has_secret" || (key == "secret" && secret_written_)) {
          skip_next_ = true;
          return true;
        }
        if (key == "secret") {
          secret_written_ = true;
          skip_next_ = true;
          return out_->Key("has_secret") && out_->Bool(true);
        }
      }
    }
    return !out_ || out_->Key(s, n, copy);
  }

 private:
  template <class Emit>
  bool scalar(Emit emit) {
    if (skip_depth_ > 0) return true;
    if (skip_next_) {
      skip_next_ = false;
      return true;
    }
    value_starts(false, false);
    return !out_ || emit();
  }

  template <class Emit>
  bool open(bool object, Emit emit) {
    if (skip_depth_ > 0) {
      ++skip_depth_;
      return true;
    }
    if (skip_next_) {
      skip_next_ = false;
      skip_depth_ = 1;
      return true;
    }
    value_starts(true, object);
    ++depth_;
    return !out_ || emit();
  }

  template <class Emit>
  bool close(Emit emit) {
    if (skip_depth_ > 0) {
      --skip_depth_;
      return true;
    }
    if (in_config_ && depth_ == 3) in_config_ = false;
    if (in_push_ && depth_ == 2) in_push_ = false;
    --depth_;
    return !out_ || emit();
  }

  // Bookkeeping for a value (not skipped) that starts at the current depth.
  void value_starts(bool container, bool object) {
    if (!redact_) return;
    if (depth_ == 0) root_is_object_ = container && object;
    if (depth_ == 1 && root_is_object_) {
      in_push_ = push_key_ && container && !object;
      push_key_ = false;
    }
    if (depth_ == 2 && in_push_ && container && object) {
      in_config_ = true;
      secret_written_ = false;
      config_ = next_config_++;
      if (!out_) secrets_->push_back(false);
    }
  }

  JsonWriter* out_;
  bool redact_;
  std::vector<bool>* secrets_;
  int depth_ = 0;           // containers open (not counting skipped ones)
  int skip_depth_ = 0;      // > 0 while inside a skipped container
  bool skip_next_ = false;  // the next value is dropped
  bool root_is_object_ = false;
  bool push_key_ = false;   // the last top-level key was "push_configs"
  bool in_push_ = false;    // directly inside the top-level push_configs array
  bool in_config_ = false;  // directly inside one object of that array
  bool secret_written_ = false;
  std::size_t config_ = 0;
  std::size_t next_config_ = 0;
};

class Out {
 public:
  explicit Out(std::string context) : context_(std::move(context)), writer_(buffer_) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(ErrorCode::Corrupt, context_ + ": " + what);
  }

  void key(const char* k) { writer_.Key(k); }
  void begin() { writer_.StartObject(); }
  void end() { writer_.EndObject(); }
  void begin_array() { writer_.StartArray(); }
  void end_array() { writer_.EndArray(); }

  void value(std::string_view field, std::string_view s) {
    if (!events::is_valid_utf8(s)) fail(std::string(field) + " is not valid UTF-8");
    if (s.size() > std::numeric_limits<SizeType>::max()) fail(std::string(field) + " is too long");
    writer_.String(s.data(), static_cast<SizeType>(s.size()));
  }
  void string(const char* k, std::string_view s) {
    key(k);
    value(k, s);
  }
  void opt_string(const char* k, const std::optional<std::string>& s) {
    if (s) string(k, *s);
  }
  void timestamp(const char* k, Timestamp t) {
    key(k);
    const auto text = format_timestamp(t);
    writer_.String(text.data(), static_cast<SizeType>(text.size()));
  }
  void opt_timestamp(const char* k, const std::optional<Timestamp>& t) {
    if (t) timestamp(k, *t);
  }
  void name(const char* k, std::string_view v) {
    key(k);
    writer_.String(v.data(), static_cast<SizeType>(v.size()));
  }
  void u64(const char* k, std::uint64_t v) {
    key(k);
    writer_.Uint64(v);
  }
  void i32(const char* k, std::int32_t v) {
    key(k);
    writer_.Int(v);
  }
  void boolean(const char* k, bool v) {
    key(k);
    writer_.Bool(v);
  }

  // Embeds stored JSON text as a value; with `redact`, push_configs secrets are hidden.
  void json(const char* k, std::string_view text, bool redact = false) {
    key(k);
    std::vector<bool> secrets;
    if (redact) parse(text, Embed(nullptr, true, &secrets), k);
    parse(text, Embed(&writer_, redact, &secrets), k);
  }

  std::string str() const { return std::string(buffer_.GetString(), buffer_.GetSize()); }

 private:
  void parse(std::string_view text, Embed handler, const char* field) {
    rapidjson::MemoryStream stream(text.data(), text.size());
    rapidjson::Reader reader;
    if (reader.Parse<kEmbedFlags>(stream, handler).IsError() || stream.Tell() != text.size()) {
      fail(std::string(field) + " is not valid JSON");
    }
  }

  std::string context_;
  rapidjson::StringBuffer buffer_;
  JsonWriter writer_;
};

void write_links(Out& o, const TaskLinks& l) {
  o.begin();
  o.opt_string("child_session_id", l.child_session_id);
  o.opt_string("remote_task_id", l.remote_task_id);
  if (!l.resource_ids.empty()) {
    o.key("resource_ids");
    o.begin_array();
    for (const auto& id : l.resource_ids) o.value("resource_ids", id);
    o.end_array();
  }
  o.end();
}

void write_progress(Out& o, const TaskProgress& p) {
  o.begin();
  if (p.current) o.u64("current", *p.current);
  if (p.total) o.u64("total", *p.total);
  o.opt_string("unit", p.unit);
  o.opt_string("label", p.label);
  o.end();
}

void write_input_request(Out& o, const TaskInputRequest& r) {
  o.begin();
  o.string("id", r.id);
  o.string("prompt", r.prompt);
  if (r.expected) o.json("expected", *r.expected);
  o.end();
}

void write_artifact(Out& o, const TaskArtifact& a) {
  o.begin();
  o.string("name", a.name);
  o.string("type", a.type);
  o.opt_string("path", a.path);
  o.opt_string("url", a.url);
  o.end();
}

void write_artifacts(Out& o, const std::vector<TaskArtifact>& list) {
  o.begin_array();
  for (const auto& a : list) write_artifact(o, a);
  o.end_array();
}

void write_error(Out& o, const TaskError& e) {
  o.begin();
  o.string("kind", e.kind);
  o.string("message", e.message);
  o.end();
}

void write_content(Out& o, const std::vector<TaskMessagePart>& parts) {
  o.key("content");
  o.begin_array();
  for (const auto& part : parts) {
    o.begin();
    if (const auto* text = std::get_if<TextPart>(&part)) {
      o.name("type", "text");
      o.string("text", text->text);
    } else {
      o.name("type", "data");
      o.json("data", std::get<DataPart>(part).data);
    }
    o.end();
  }
  o.end_array();
}

bool links_empty(const TaskLinks& l) {
  return !l.child_session_id && !l.remote_task_id && l.resource_ids.empty();
}

void write_payload(Out& o, const events::TaskCreated& p) {
  const auto& in = p.input;
  o.string("kind", in.kind);
  o.string("display_name", in.display_name);
  o.json("spec", in.spec, true);
  o.name("state", to_string(in.state));
  o.key("links");
  write_links(o, in.links);
  o.name("wake_policy", to_string(in.wake_policy));
}

void write_payload(Out& o, const events::TaskUpdated& p) {
  const auto& u = p.update;
  if (u.state) o.name("state", to_string(*u.state));
  o.opt_string("state_detail", u.state_detail);
  if (u.progress) {
    o.key("progress");
    write_progress(o, *u.progress);
  }
  if (u.input_request) {
    o.key("input_request");
    write_input_request(o, *u.input_request);
  }
  o.opt_string("summary", u.summary);
  o.opt_string("result_path", u.result_path);
  if (u.artifacts) {
    o.key("artifacts");
    write_artifacts(o, *u.artifacts);
  }
  if (u.append_artifact) {
    o.key("append_artifact");
    write_artifact(o, *u.append_artifact);
  }
  if (u.error) {
    o.key("error");
    write_error(o, *u.error);
  }
  if (u.links) {
    o.key("links");
    write_links(o, *u.links);
  }
  o.opt_string("worker_id", u.worker_id);
  o.opt_timestamp("heartbeat_at", u.heartbeat_at);
  if (u.expected_attempt) o.i32("expected_attempt", *u.expected_attempt);
  if (u.increment_attempt) o.boolean("increment_attempt", true);
}

void write_payload(Out&, const events::CancelRequested&) {}
void write_payload(Out&, const events::TaskPruned&) {}

void write_payload(Out& o, const events::MessageRecorded& p) {
  const auto& m = p.message;
  o.string("id", m.id);
  o.name("direction", to_string(m.direction));
  write_content(o, m.content);
  o.opt_string("in_reply_to", m.in_reply_to);
}

// Parses exactly `n` ASCII digits at text[pos]; advances pos.
std::optional<int> digits(std::string_view text, std::size_t& pos, std::size_t n) {
  if (text.size() < pos + n) return std::nullopt;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = text[pos + i];
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  pos += n;
  return v;
}

bool expect(std::string_view text, std::size_t& pos, std::string_view chars) {
  if (pos >= text.size() || chars.find(text[pos]) == std::string_view::npos) return false;
  ++pos;
  return true;
}

}  // namespace

std::string to_json(const SessionTask& task) {
  Out o("task " + task.id);
  o.begin();
  o.string("id", task.id);
  o.string("session_id", task.session_id);
  o.string("kind", task.kind);
  o.string("display_name", task.display_name);
  o.json("spec", task.spec, true);
  o.name("state", to_string(task.state));
  o.opt_string("state_detail", task.state_detail);
  if (task.progress) {
    o.key("progress");
    write_progress(o, *task.progress);
  }
  if (task.input_request) {
    o.key("input_request");
    write_input_request(o, *task.input_request);
  }
  o.opt_timestamp("cancel_requested_at", task.cancel_requested_at);
  o.opt_string("summary", task.summary);
  o.opt_string("result_path", task.result_path);
  if (!task.artifacts.empty()) {
    o.key("artifacts");
    write_artifacts(o, task.artifacts);
  }
  if (task.error) {
    o.key("error");
    write_error(o, *task.error);
  }
  o.i32("attempt", task.attempt);
  o.opt_string("worker_id", task.worker_id);
  o.opt_timestamp("heartbeat_at", task.heartbeat_at);
  if (!links_empty(task.links)) {
    o.key("links");
    write_links(o, task.links);
  }
  o.name("wake_policy", to_string(task.wake_policy));
  o.timestamp("created_at", task.created_at);
  o.opt_timestamp("started_at", task.started_at);
  o.opt_timestamp("finished_at", task.finished_at);
  o.timestamp("updated_at", task.updated_at);
  o.end();
  return o.str();
}

std::string to_json(const TaskMessage& message) {
  Out o("message " + message.id);
  o.begin();
  o.string("id", message.id);
  o.string("task_id", message.task_id);
  o.name("direction", to_string(message.direction));
  write_content(o, message.content);
  o.opt_string("in_reply_to", message.in_reply_to);
  o.timestamp("created_at", message.created_at);
  o.end();
  return o.str();
}

std::string format_timestamp(Timestamp t) {
  using namespace std::chrono;
  constexpr std::int64_t kPerDay = 86'400'000'000;
  constexpr std::int64_t kDaysPer400Years = 146'097;
  // Split into days and time of day with integer floor division (chrono's floor would overflow
  // near the ends of the int64 range when converting the day back to microseconds).
  const std::int64_t us = t.time_since_epoch().count();
  std::int64_t day = us / kPerDay;
  std::int64_t rem = us % kPerDay;
  if (rem < 0) {
    rem += kPerDay;
    --day;
  }
  // chrono::year stops at ±32767; shift whole 400-year cycles (same calendar) into its range.
  std::int64_t cycles = day / kDaysPer400Years;
  if (day % kDaysPer400Years < 0) --cycles;
  const year_month_day ymd{sys_days{days{day - cycles * kDaysPer400Years}}};
  const std::int64_t y = static_cast<int>(ymd.year()) + cycles * 400;
  const hh_mm_ss<microseconds> hms{microseconds{rem}};

  // Years outside 0000..9999 (not representable in RFC 3339) use ISO 8601's expanded form.
  char year[32];
  if (y >= 0 && y <= 9999) {
    std::snprintf(year, sizeof year, "%04lld", static_cast<long long>(y));
  } else {
    std::snprintf(year, sizeof year, "%c%04lld", y < 0 ? '-' : '+',
                  static_cast<long long>(y < 0 ? -y : y));
  }
  char rest[64];
  std::snprintf(rest, sizeof rest, "-%02u-%02uT%02d:%02d:%02lld.%06lldZ",
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<long long>(hms.seconds().count()),
                static_cast<long long>(hms.subseconds().count()));
  return std::string(year) + rest;
}

// RFC 3339 date-time: YYYY-MM-DD, 'T'/'t'/' ', hh:mm:ss, optional '.' and 1-9 digits (truncated
// to microseconds), then 'Z'/'z' or ±hh:mm. A leap second (ss = 60) is rejected: Timestamp has no
// way to represent it.
std::optional<Timestamp> parse_timestamp(std::string_view text) {
  using namespace std::chrono;
  std::size_t pos = 0;
  const auto y = digits(text, pos, 4);
  if (!y || !expect(text, pos, "-")) return std::nullopt;
  const auto mo = digits(text, pos, 2);
  if (!mo || !expect(text, pos, "-")) return std::nullopt;
  const auto d = digits(text, pos, 2);
  if (!d || !expect(text, pos, "Tt ")) return std::nullopt;
  const auto h = digits(text, pos, 2);
  if (!h || !expect(text, pos, ":")) return std::nullopt;
  const auto mi = digits(text, pos, 2);
  if (!mi || !expect(text, pos, ":")) return std::nullopt;
  const auto s = digits(text, pos, 2);
  if (!s) return std::nullopt;

  std::int64_t micros = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    std::size_t n = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (++n > 9) return std::nullopt;
      if (n <= 6) micros = micros * 10 + (text[pos] - '0');
      ++pos;
    }
    if (n == 0) return std::nullopt;
    for (; n < 6; ++n) micros *= 10;
  }

  int offset_minutes = 0;
  if (!expect(text, pos, "Zz")) {
    if (pos >= text.size() || (text[pos] != '+' && text[pos] != '-')) return std::nullopt;
    const int sign = text[pos++] == '-' ? -1 : 1;
    const auto oh = digits(text, pos, 2);
    if (!oh || !expect(text, pos, ":")) return std::nullopt;
    const auto om = digits(text, pos, 2);
    if (!om || *oh > 23 || *om > 59) return std::nullopt;
    offset_minutes = sign * (*oh * 60 + *om);
  }
  if (pos != text.size()) return std::nullopt;

  const year_month_day ymd{year{*y}, month{static_cast<unsigned>(*mo)},
                           day{static_cast<unsigned>(*d)}};
  if (!ymd.ok() || *h > 23 || *mi > 59 || *s > 59) return std::nullopt;
  return Timestamp{sys_days{ymd}} + hours{*h} + minutes{*mi} + seconds{*s} + microseconds{micros} -
         minutes{offset_minutes};
}

namespace {

// The members of to_json(SessionTask), in its order, one by one: whether the task has it, whether
// two tasks hold the same value (comparing the C++ values, so that an unchanged 512 KB spec is
// never serialised), and its JSON (written as the only member of an object, then cut out, with
// the writers to_json(SessionTask) uses).
struct TaskField {
  const char* name;
  bool (*present)(const SessionTask&);
  bool (*same)(const SessionTask&, const SessionTask&);
  void (*write)(Out&, const SessionTask&);
};

bool always(const SessionTask&) { return true; }

#define TJ_SAME(member) \
  [](const SessionTask& a, const SessionTask& b) { return a.member == b.member; }
#define TJ_HAS(member) [](const SessionTask& t) { return t.member.has_value(); }

const TaskField kTaskFields[] = {
    {"id", always, TJ_SAME(id), [](Out& o, const SessionTask& t) { o.string("id", t.id); }},
    {"session_id", always, TJ_SAME(session_id),
     [](Out& o, const SessionTask& t) { o.string("session_id", t.session_id); }},
    {"kind", always, TJ_SAME(kind), [](Out& o, const SessionTask& t) { o.string("kind", t.kind); }},
    {"display_name", always, TJ_SAME(display_name),
     [](Out& o, const SessionTask& t) { o.string("display_name", t.display_name); }},
    {"spec", always, TJ_SAME(spec),
     [](Out& o, const SessionTask& t) { o.json("spec", t.spec, true); }},
    {"state", always, TJ_SAME(state),
     [](Out& o, const SessionTask& t) { o.name("state", to_string(t.state)); }},
    {"state_detail", TJ_HAS(state_detail), TJ_SAME(state_detail),
     [](Out& o, const SessionTask& t) { o.opt_string("state_detail", t.state_detail); }},
    {"progress", TJ_HAS(progress), TJ_SAME(progress),
     [](Out& o, const SessionTask& t) {
       o.key("progress");
       write_progress(o, *t.progress);
     }},
    {"input_request", TJ_HAS(input_request), TJ_SAME(input_request),
     [](Out& o, const SessionTask& t) {
       o.key("input_request");
       write_input_request(o, *t.input_request);
     }},
    {"cancel_requested_at", TJ_HAS(cancel_requested_at), TJ_SAME(cancel_requested_at),
     [](Out& o, const SessionTask& t) {
       o.opt_timestamp("cancel_requested_at", t.cancel_requested_at);
     }},
    {"summary", TJ_HAS(summary), TJ_SAME(summary),
     [](Out& o, const SessionTask& t) { o.opt_string("summary", t.summary); }},
    {"result_path", TJ_HAS(result_path), TJ_SAME(result_path),
     [](Out& o, const SessionTask& t) { o.opt_string("result_path", t.result_path); }},
    {"artifacts", [](const SessionTask& t) { return !t.artifacts.empty(); }, TJ_SAME(artifacts),
     [](Out& o, const SessionTask& t) {
       o.key("artifacts");
       write_artifacts(o, t.artifacts);
     }},
    {"error", TJ_HAS(error), TJ_SAME(error),
     [](Out& o, const SessionTask& t) {
       o.key("error");
       write_error(o, *t.error);
     }},
    {"attempt", always, TJ_SAME(attempt),
     [](Out& o, const SessionTask& t) { o.i32("attempt", t.attempt); }},
    {"worker_id", TJ_HAS(worker_id), TJ_SAME(worker_id),
     [](Out& o, const SessionTask& t) { o.opt_string("worker_id", t.worker_id); }},
    {"heartbeat_at", TJ_HAS(heartbeat_at), TJ_SAME(heartbeat_at),
     [](Out& o, const SessionTask& t) { o.opt_timestamp("heartbeat_at", t.heartbeat_at); }},
    {"links", [](const SessionTask& t) { return !links_empty(t.links); }, TJ_SAME(links),
     [](Out& o, const SessionTask& t) {
       o.key("links");
       write_links(o, t.links);
     }},
    {"wake_policy", always, TJ_SAME(wake_policy),
     [](Out& o, const SessionTask& t) { o.name("wake_policy", to_string(t.wake_policy)); }},
    {"created_at", always, TJ_SAME(created_at),
     [](Out& o, const SessionTask& t) { o.timestamp("created_at", t.created_at); }},
    {"started_at", TJ_HAS(started_at), TJ_SAME(started_at),
     [](Out& o, const SessionTask& t) { o.opt_timestamp("started_at", t.started_at); }},
    {"finished_at", TJ_HAS(finished_at), TJ_SAME(finished_at),
     [](Out& o, const SessionTask& t) { o.opt_timestamp("finished_at", t.finished_at); }},
    {"updated_at", always, TJ_SAME(updated_at),
     [](Out& o, const SessionTask& t) { o.timestamp("updated_at", t.updated_at); }},
};

#undef TJ_SAME
#undef TJ_HAS

// The JSON of one member's value: {"name":VALUE} written, VALUE cut out.
Json field_json(const TaskField& field, const SessionTask& task) {
  Out o("task " + task.id);
  o.begin();
  field.write(o, task);
  o.end();
  std::string text = o.str();
  const std::size_t prefix = std::char_traits<char>::length(field.name) + 4;  // {"name":
  return text.substr(prefix, text.size() - prefix - 1);
}

}  // namespace

std::vector<std::pair<std::string, Json>> task_fields(const SessionTask& task) {
  std::vector<std::pair<std::string, Json>> out;
  for (const auto& field : kTaskFields) {
    if (field.present(task)) out.emplace_back(field.name, field_json(field, task));
  }
  return out;
}

std::vector<FieldChange> task_changes(const SessionTask& before, const SessionTask& after) {
  std::vector<FieldChange> out;
  for (const auto& field : kTaskFields) {
    const bool b = field.present(before);
    const bool a = field.present(after);
    if (!b && !a) continue;
    if (b && a && field.same(before, after)) continue;
    FieldChange change{.field = field.name};
    if (b) change.before = field_json(field, before);
    if (a) change.after = field_json(field, after);
    if (change.before == change.after) continue;  // other text, same JSON (spacing of a spec)
    out.push_back(std::move(change));
  }
  return out;
}

namespace events {

std::string payload_json(const Payload& payload) {
  Out o("payload of " + std::string(type_name(payload)));
  o.begin();
  std::visit([&](const auto& p) { write_payload(o, p); }, payload);
  o.end();
  return o.str();
}

}  // namespace events
}  // namespace taskjournal
