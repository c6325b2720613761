// JSON forms of the reader's results (reader.hpp) and of errors (json.hpp), for tools such as
// taskjournal-replay: written with RapidJSON, never quoted by hand. Text that is not UTF-8 (a file
// name) has each invalid byte replaced by U+FFFD, so that every output is valid JSON.
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "taskjournal/json.hpp"
#include "taskjournal/reader.hpp"

namespace taskjournal {
namespace {

// The length of the well-formed UTF-8 sequence at s[i] (no overlongs, no surrogates, nothing
// above U+10FFFF), or 0 if the byte there does not start one.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return n;
}

// `text` with every byte that is not part of well-formed UTF-8 replaced by U+FFFD.
std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = utf8_sequence(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

class Writer {
 public:
  Writer() : writer_(buffer_) {}

  Writer& key(const char* k) {
    writer_.Key(k);
    return *this;
  }
  void string(std::string_view s) {
    const std::string text = valid_utf8(s);
    writer_.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  }
  void u64(std::uint64_t v) { writer_.Uint64(v); }
  void i64(std::int64_t v) { writer_.Int64(v); }
  void boolean(bool v) { writer_.Bool(v); }
  void null() { writer_.Null(); }
  void time(Timestamp t) { string(format_timestamp(t)); }
  // A complete JSON value the library wrote itself (payload_json, to_json(task), a field).
  void raw(std::string_view json, rapidjson::Type type) {
    writer_.RawValue(json.data(), json.size(), type);
  }
  void begin() { writer_.StartObject(); }
  void end() { writer_.EndObject(); }
  void begin_array() { writer_.StartArray(); }
  void end_array() { writer_.EndArray(); }

  std::string str() const { return std::string(buffer_.GetString(), buffer_.GetSize()); }

 private:
  rapidjson::StringBuffer buffer_;
  rapidjson::Writer<rapidjson::StringBuffer> writer_;
};

rapidjson::Type type_of(std::string_view json) {
  switch (json.empty() ? 'n' : json.front()) {
    case '{':
      return rapidjson::kObjectType;
    case '[':
      return rapidjson::kArrayType;
    case '"':
      return rapidjson::kStringType;
    case 't':
      return rapidjson::kTrueType;
    case 'f':
      return rapidjson::kFalseType;
    case 'n':
      return rapidjson::kNullType;
    default:
      return rapidjson::kNumberType;
  }
}

void write_digest(Writer& w, const JournalDigest& d) {
  w.begin();
  w.key("seq").u64(d.seq);
  w.key("hash").string(d.hash);
  w.key("digest").string(to_string(d));
  w.end();
}

}  // namespace

std::string json_string(std::string_view text) {
  Writer w;
  w.string(text);
  return w.str();
}

std::string to_json(const Error& error) {
  Writer w;
  w.begin();
  w.key("error").begin();
  w.key("code").string(to_string(error.code()));
  w.key("message").string(error.what());
  w.end();
  w.end();
  return w.str();
}

std::string to_json(const JournalEvent& e) {
  Writer w;
  w.begin();
  w.key("seq").u64(e.seq);
  w.key("type").string(e.type);
  w.key("version").u64(e.version);
  w.key("recorded_at").time(e.recorded_at);
  w.key("session_id").string(e.session_id);
  w.key("task_id").string(e.task_id);
  w.key("payload").raw(e.payload, rapidjson::kObjectType);
  w.end();
  return w.str();
}

std::string to_json(const TaskHistoryStep& step) {
  const auto& e = step.event;
  Writer w;
  w.begin();
  w.key("seq").u64(e.seq);
  w.key("recorded_at").time(e.recorded_at);
  w.key("type").string(e.type);
  w.key("version").u64(e.version);
  w.key("payload").raw(e.payload, rapidjson::kObjectType);
  if (step.dropped != DropReason::None) w.key("dropped").string(to_string(step.dropped));
  w.key("changes").begin_array();
  for (const auto& c : step.changes) {
    w.begin();
    w.key("field").string(c.field);
    w.key("before");
    if (c.before) {
      w.raw(*c.before, type_of(*c.before));
    } else {
      w.null();
    }
    w.key("after");
    if (c.after) {
      w.raw(*c.after, type_of(*c.after));
    } else {
      w.null();
    }
    w.end();
  }
  w.end_array();
  w.end();
  return w.str();
}

std::string to_json(const VerifyReport& r) {
  Writer w;
  w.begin();
  w.key("ok").boolean(r.ok());
  w.key("events").u64(r.events);
  w.key("last_seq").u64(r.last_seq);
  w.key("tasks").u64(r.tasks);
  w.key("messages").u64(r.messages);
  w.key("problems").begin_array();
  for (const auto& p : r.problems) {
    w.begin();
    w.key("seq").u64(p.seq);
    w.key("what").string(p.what);
    w.end();
  }
  w.end_array();
  w.key("truncated").boolean(r.truncated);
  if (!r.comparison_skipped.empty()) w.key("comparison_skipped").string(r.comparison_skipped);
  w.key("checkpoint_seq").u64(r.checkpoint_seq);
  if (r.archived_through != 0) w.key("archived_through").u64(r.archived_through);
  w.key("ignored_checkpoints").begin_array();
  for (const auto& why : r.ignored_checkpoints) w.string(why);
  w.end_array();
  if (r.digest) {
    w.key("digest");
    write_digest(w, *r.digest);
  }
  w.end();
  return w.str();
}

std::string to_json(const JournalDigest& digest) {
  Writer w;
  write_digest(w, digest);
  return w.str();
}

std::string to_json(const JournalSummary& s) {
  constexpr SessionTaskState kStates[] = {
      SessionTaskState::Queued,    SessionTaskState::Running, SessionTaskState::AwaitingInput,
      SessionTaskState::Succeeded, SessionTaskState::Failed,  SessionTaskState::Canceled};
  Writer w;
  w.begin();
  w.key("file").string(s.file);
  if (s.as_of_seq) w.key("as_of_seq").u64(*s.as_of_seq);
  w.key("schema_version").i64(s.schema_version);
  w.key("payload_versions").begin_array();
  for (auto v : s.payload_versions) w.u64(v);
  w.end_array();
  w.key("events").u64(s.events);
  if (s.first_event_at) w.key("first_event_at").time(*s.first_event_at);
  if (s.last_event_at) w.key("last_event_at").time(*s.last_event_at);
  w.key("sessions").u64(s.sessions);
  w.key("tasks").u64(s.tasks);
  w.key("tasks_by_state").begin();
  for (auto state : kStates) {
    const auto i = static_cast<std::size_t>(state);
    w.key(std::string(to_string(state)).c_str())
        .u64(i < s.tasks_by_state.size() ? s.tasks_by_state[i] : 0);
  }
  w.end();
  w.key("tasks_by_kind").begin();
  for (const auto& [kind, n] : s.tasks_by_kind) {
    const std::string k = valid_utf8(kind);
    w.key(k.c_str()).u64(n);
  }
  w.end();
  w.key("messages").u64(s.messages);
  w.end();
  return w.str();
}

std::string to_json(const TaskView& view) {
  Writer w;
  w.begin();
  w.key("task").raw(to_json(view.task), rapidjson::kObjectType);
  w.key("messages").begin_array();
  for (const auto& m : view.messages) w.raw(to_json(m), rapidjson::kObjectType);
  w.end_array();
  w.end();
  return w.str();
}

}  // namespace taskjournal
