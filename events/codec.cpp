// Binary encoding of event payloads, schema version 1.
//
// Primitives go through cereal's portable binary archive (fixed width, little-endian); the layout
// above them is written by hand so that a corrupt count or length can never size an allocation.
//
//   payload          = cancel_requested | task_pruned | marker, body
//   cancel_requested = (zero bytes)
//   task_pruned      = (zero bytes)            ; journal schema version 2 (store/engine.hpp)
//   marker           = u8 1                    ; cereal's byte-order flag: little-endian
//   body             = task_created | task_updated | message_recorded
//
//   task_created     = string kind, string display_name, json spec, state, links, wake_policy
//   task_updated     = opt<state> state, opt<string> state_detail, opt<progress> progress,
//                      opt<input_request> input_request, opt<string> summary,
//                      opt<string> result_path, opt<list<artifact>> artifacts,
//                      opt<artifact> append_artifact, opt<error> error, opt<links> links,
//                      opt<string> worker_id, opt<timestamp> heartbeat_at,
//                      opt<i32> expected_attempt, bool increment_attempt
//   message_recorded = string id, direction, list<part> content, opt<string> in_reply_to
//
//   progress         = opt<u64> current, opt<u64> total, opt<string> unit, opt<string> label
//   input_request    = string id, string prompt, opt<json> expected
//   artifact         = string name, string type, opt<string> path, opt<string> url
//   error            = string kind, string message
//   links            = opt<string> child_session_id, opt<string> remote_task_id,
//                      list<string> resource_ids
//   part             = u8 0, string text | u8 1, json data
//
//   state            = u8 0..5   ; queued running awaiting_input succeeded failed canceled
//   wake_policy      = u8 0..2   ; silent on_terminal on_activity
//   direction        = u8 0..1   ; inbound outbound
//   timestamp        = i64       ; microseconds since the Unix epoch
//   bool             = u8 0 | u8 1
//   opt<T>           = u8 0 | u8 1, T
//   list<T>          = u64 count, count * T
//   string           = u64 length, length bytes of UTF-8
//   json             = string holding exactly one JSON value
//
// The envelope (session id, task id, recorded_at) is not repeated: TaskCreated's input.id and
// input.session_id, MessageRecorded's message.task_id and created_at come from it on decode.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <sstream>
#include <streambuf>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <cereal/archives/portable_binary.hpp>

#include "events/checkpoint.hpp"
#include "events/event.hpp"
#include "events/validate.hpp"
#include "taskjournal/error.hpp"

namespace taskjournal::events {
namespace {

constexpr std::array<std::string_view, 5> kTypeNames{
    "task_created", "task_updated", "cancel_requested", "message_recorded", "task_pruned"};
constexpr std::uint8_t kLittleEndianMarker = 1;
constexpr std::size_t kChunk = 64 * 1024;  // strings are read in pieces of at most this size
constexpr std::uint8_t kMaxState = static_cast<std::uint8_t>(SessionTaskState::Canceled);
constexpr std::uint8_t kMaxPolicy = static_cast<std::uint8_t>(TaskWakePolicy::OnActivity);
constexpr std::uint8_t kMaxDirection = static_cast<std::uint8_t>(TaskMessageDirection::Outbound);

// ---- encoding ---------------------------------------------------------------------------------

// Appends to a string; cheaper than an ostringstream and no final copy.
struct StringSink : std::streambuf {
  std::string out;
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    out.append(s, static_cast<std::size_t>(n));
    return n;
  }
  int_type overflow(int_type c) override {
    if (c != traits_type::eof()) out.push_back(static_cast<char>(c));
    return c;
  }
};

// One ostream per thread, reused for every payload: constructing a std::ostream (locale and
// facets) cost about as much as encoding a typical payload.
struct EncodeStream {
  StringSink sink;
  std::ostream stream{&sink};
  std::ostream& fresh() {
    sink.out.clear();
    stream.clear();
    return stream;
  }
};
thread_local EncodeStream encode_stream;
constexpr std::size_t kKeptEncodeCapacity = 64 * 1024;

class Encoder {
 public:
  // Writes into `stream` (the thread's payload stream unless the caller owns one).
  explicit Encoder(EncodeStream& stream = encode_stream)
      : sink_(stream.sink),
        stream_(stream.fresh()),
        archive_(stream_, cereal::PortableBinaryOutputArchive::Options::LittleEndian()) {}

  void u8(std::uint8_t v) { archive_(v); }
  void u64(std::uint64_t v) { archive_(v); }
  void i32(std::int32_t v) { archive_(v); }
  void i64(std::int64_t v) { archive_(v); }
  void boolean(bool v) { u8(v ? 1 : 0); }
  void string(std::string_view s) {
    u64(s.size());
    if (!s.empty()) archive_(cereal::binary_data(s.data(), s.size()));
  }
  void timestamp(Timestamp t) { i64(t.time_since_epoch().count()); }
  void state(SessionTaskState s) { u8(static_cast<std::uint8_t>(s)); }

  template <class T, class Put>
  void opt(const std::optional<T>& v, Put put) {
    boolean(v.has_value());
    if (v) put(*v);
  }
  void opt_string(const std::optional<std::string>& v) {
    opt(v, [&](const std::string& s) { string(s); });
  }
  template <class T, class Put>
  void list(const std::vector<T>& v, Put put) {
    u64(v.size());
    for (const auto& e : v) put(e);
  }

  // The bytes. A small buffer stays with the thread for the next payload (a copy of exactly the
  // bytes is returned); a large one leaves with the payload, so that one large call does not
  // keep its size in every thread that made one.
  std::string bytes() {
    if (sink_.out.capacity() <= kKeptEncodeCapacity) return sink_.out;
    std::string out = std::move(sink_.out);
    sink_.out = std::string();
    return out;
  }
  std::size_t size() const noexcept { return sink_.out.size(); }

 private:
  StringSink& sink_;
  std::ostream& stream_;
  cereal::PortableBinaryOutputArchive archive_;
};

void put_links(Encoder& e, const TaskLinks& l) {
  e.opt_string(l.child_session_id);
  e.opt_string(l.remote_task_id);
  e.list(l.resource_ids, [&](const std::string& s) { e.string(s); });
}

void put_artifact(Encoder& e, const TaskArtifact& a) {
  e.string(a.name);
  e.string(a.type);
  e.opt_string(a.path);
  e.opt_string(a.url);
}

void put_progress(Encoder& e, const TaskProgress& g) {
  e.opt(g.current, [&](std::uint64_t v) { e.u64(v); });
  e.opt(g.total, [&](std::uint64_t v) { e.u64(v); });
  e.opt_string(g.unit);
  e.opt_string(g.label);
}

void put_input_request(Encoder& e, const TaskInputRequest& r) {
  e.string(r.id);
  e.string(r.prompt);
  e.opt_string(r.expected);
}

void put_error(Encoder& e, const TaskError& err) {
  e.string(err.kind);
  e.string(err.message);
}

void put(Encoder& e, const TaskCreated& p) {
  const auto& in = p.input;
  e.string(in.kind);
  e.string(in.display_name);
  e.string(in.spec);
  e.state(in.state);
  put_links(e, in.links);
  e.u8(static_cast<std::uint8_t>(in.wake_policy));
}

void put(Encoder& e, const TaskUpdated& p) {
  const auto& u = p.update;
  e.opt(u.state, [&](SessionTaskState s) { e.state(s); });
  e.opt_string(u.state_detail);
  e.opt(u.progress, [&](const TaskProgress& g) { put_progress(e, g); });
  e.opt(u.input_request, [&](const TaskInputRequest& r) { put_input_request(e, r); });
  e.opt_string(u.summary);
  e.opt_string(u.result_path);
  e.opt(u.artifacts, [&](const std::vector<TaskArtifact>& list) {
    e.list(list, [&](const TaskArtifact& a) { put_artifact(e, a); });
  });
  e.opt(u.append_artifact, [&](const TaskArtifact& a) { put_artifact(e, a); });
  e.opt(u.error, [&](const TaskError& err) { put_error(e, err); });
  e.opt(u.links, [&](const TaskLinks& l) { put_links(e, l); });
  e.opt_string(u.worker_id);
  e.opt(u.heartbeat_at, [&](Timestamp t) { e.timestamp(t); });
  e.opt(u.expected_attempt, [&](std::int32_t v) { e.i32(v); });
  e.boolean(u.increment_attempt);
}

void put_content(Encoder& e, const std::vector<TaskMessagePart>& content) {
  e.list(content, [&](const TaskMessagePart& part) {
    if (const auto* text = std::get_if<TextPart>(&part)) {
      e.u8(0);
      e.string(text->text);
    } else {
      e.u8(1);
      e.string(std::get<DataPart>(part).data);
    }
  });
}

void put(Encoder& e, const MessageRecorded& p) {
  const auto& m = p.message;
  e.string(m.id);
  e.u8(static_cast<std::uint8_t>(m.direction));
  put_content(e, m.content);
  e.opt_string(m.in_reply_to);
}

// ---- decoding ---------------------------------------------------------------------------------

std::string trailing(std::size_t n) {
  return std::to_string(n) + " trailing byte" + (n == 1 ? "" : "s") + " after the payload";
}

// A read-only stream buffer over the payload bytes (no copy).
class ViewBuffer : public std::streambuf {
 public:
  void reset(std::string_view bytes) {
    auto* p = const_cast<char*>(bytes.data());  // never written: no putback area is used
    setg(p, p, p + bytes.size());
  }
  std::size_t remaining() const { return static_cast<std::size_t>(egptr() - gptr()); }
};

// One istream per thread, re-pointed at each payload: constructing a std::istream (locale and
// all) cost more than decoding a typical payload when a journal of a million events is folded.
struct PayloadStream {
  ViewBuffer buffer;
  std::istream stream{&buffer};
  std::istream& over(std::string_view bytes) {
    buffer.reset(bytes);
    stream.clear();
    return stream;
  }
};
thread_local PayloadStream payload_stream;

// The path of the field being read, for error messages; built only when one is thrown.
struct Field {
  static constexpr std::size_t kNoIndex = static_cast<std::size_t>(-1);
  std::string_view name;
  const Field* parent = nullptr;
  std::size_t index = kNoIndex;

  Field member(std::string_view child) const { return Field{child, this}; }
  Field element(std::size_t i) const { return Field{{}, this, i}; }
  std::string str() const {
    std::string out = parent ? parent->str() : std::string();
    if (index != kNoIndex) return out + "[" + std::to_string(index) + "]";
    if (!out.empty()) out += '.';
    return out.append(name);
  }
};

class Decoder {
 public:
  // The archive reads the byte-order marker when it is constructed, so the marker is checked
  // first, in the member initializers.
  Decoder(std::string_view type, std::string_view bytes)
      : type_(type),
        buffer_(payload_stream.buffer),
        stream_(payload_stream.over(checked_marker(type, bytes))),
        archive_(stream_, cereal::PortableBinaryInputArchive::Options::LittleEndian()) {}

  static std::string_view checked_marker(std::string_view type, std::string_view bytes) {
    auto refuse = [&](const std::string& what) {
      throw Error(ErrorCode::Corrupt, "payload of " + std::string(type) + ": " + what);
    };
    if (bytes.empty()) refuse("empty payload");
    if (static_cast<std::uint8_t>(bytes[0]) != kLittleEndianMarker) {
      refuse("bad byte-order marker " + std::to_string(static_cast<std::uint8_t>(bytes[0])) +
             " (expected 1)");
    }
    return bytes;
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(ErrorCode::Corrupt, "payload of " + std::string(type_) + ": " + what);
  }

  bool at_end() const { return buffer_.remaining() == 0; }

  void finish() const {
    if (const auto n = buffer_.remaining(); n != 0) fail(trailing(n));
  }

  template <class T>
  T primitive(const Field& f) {
    T v{};
    try {
      archive_(v);
    } catch (const cereal::Exception&) {
      truncated(f);
    }
    return v;
  }

  std::uint8_t u8_upto(const Field& f, std::uint8_t max, std::string_view what) {
    const auto v = primitive<std::uint8_t>(f);
    if (v > max)
      fail(f.str() + ": " + std::string(what) + " " + std::to_string(v) + " out of range");
    return v;
  }
  bool boolean(const Field& f) { return u8_upto(f, 1, "bool value") == 1; }
  bool present(const Field& f) { return u8_upto(f, 1, "optional tag") == 1; }

  std::string string(const Field& f) {
    auto left = primitive<std::uint64_t>(f);
    std::string s;  // grows with the bytes actually read, whatever the length prefix claims
    while (left > 0) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, kChunk));
      const auto old = s.size();
      s.resize(old + n);
      try {
        archive_(cereal::binary_data(s.data() + old, n));
      } catch (const cereal::Exception&) {
        truncated(f);
      }
      left -= n;
    }
    if (!is_valid_utf8(s)) fail(f.str() + " is not valid UTF-8");
    return s;
  }

  std::string json(const Field& f) {
    auto s = string(f);
    if (!is_valid_json(s)) fail(f.str() + " is not valid JSON");
    return s;
  }

  Timestamp timestamp(const Field& f) {
    return Timestamp{std::chrono::microseconds{primitive<std::int64_t>(f)}};
  }
  SessionTaskState state(const Field& f) {
    return static_cast<SessionTaskState>(u8_upto(f, kMaxState, "enum value"));
  }

  template <class T, class Get>
  std::optional<T> opt(const Field& f, Get get) {
    if (!present(f)) return std::nullopt;
    return std::optional<T>(get(f));
  }
  std::optional<std::string> opt_string(const Field& f) {
    return opt<std::string>(f, [&](const Field& g) { return string(g); });
  }
  // One element at a time: the count is never trusted to size anything, and every element
  // consumes at least one byte, so a corrupt count ends at the end of the bytes.
  template <class T, class Get>
  std::vector<T> list(const Field& f, Get get) {
    const auto count = primitive<std::uint64_t>(f);
    std::vector<T> out;
    for (std::uint64_t i = 0; i < count; ++i)
      out.push_back(get(f.element(static_cast<std::size_t>(i))));
    return out;
  }

 private:
  [[noreturn]] void truncated(const Field& f) const { fail("truncated while reading " + f.str()); }

  std::string_view type_;
  ViewBuffer& buffer_;
  std::istream& stream_;
  cereal::PortableBinaryInputArchive archive_;
};

TaskLinks get_links(Decoder& d, const Field& f) {
  TaskLinks l;
  l.child_session_id = d.opt_string(f.member("child_session_id"));
  l.remote_task_id = d.opt_string(f.member("remote_task_id"));
  l.resource_ids =
      d.list<std::string>(f.member("resource_ids"), [&](const Field& g) { return d.string(g); });
  return l;
}

TaskArtifact get_artifact(Decoder& d, const Field& f) {
  TaskArtifact a;
  a.name = d.string(f.member("name"));
  a.type = d.string(f.member("type"));
  a.path = d.opt_string(f.member("path"));
  a.url = d.opt_string(f.member("url"));
  return a;
}

TaskProgress get_progress(Decoder& d, const Field& f) {
  TaskProgress g;
  const auto u64 = [&](const Field& h) { return d.primitive<std::uint64_t>(h); };
  g.current = d.opt<std::uint64_t>(f.member("current"), u64);
  g.total = d.opt<std::uint64_t>(f.member("total"), u64);
  g.unit = d.opt_string(f.member("unit"));
  g.label = d.opt_string(f.member("label"));
  return g;
}

TaskInputRequest get_input_request(Decoder& d, const Field& f) {
  TaskInputRequest r;
  r.id = d.string(f.member("id"));
  r.prompt = d.string(f.member("prompt"));
  r.expected = d.opt<Json>(f.member("expected"), [&](const Field& g) { return d.json(g); });
  return r;
}

TaskError get_error(Decoder& d, const Field& f) {
  TaskError e;
  e.kind = d.string(f.member("kind"));
  e.message = d.string(f.member("message"));
  return e;
}

std::vector<TaskMessagePart> get_content(Decoder& d, const Field& f) {
  return d.list<TaskMessagePart>(f, [&](const Field& g) -> TaskMessagePart {
    if (d.u8_upto(g, 1, "part tag") == 0) return TextPart{d.string(g.member("text"))};
    return DataPart{d.json(g.member("data"))};
  });
}

TaskCreated get_task_created(Decoder& d) {
  TaskCreated p;
  auto& in = p.input;
  in.kind = d.string(Field{"kind"});
  in.display_name = d.string(Field{"display_name"});
  in.spec = d.json(Field{"spec"});
  in.state = d.state(Field{"state"});
  in.links = get_links(d, Field{"links"});
  in.wake_policy =
      static_cast<TaskWakePolicy>(d.u8_upto(Field{"wake_policy"}, kMaxPolicy, "enum value"));
  return p;
}

TaskUpdated get_task_updated(Decoder& d) {
  TaskUpdated p;
  auto& u = p.update;
  u.state = d.opt<SessionTaskState>(Field{"state"}, [&](const Field& f) { return d.state(f); });
  u.state_detail = d.opt_string(Field{"state_detail"});
  u.progress =
      d.opt<TaskProgress>(Field{"progress"}, [&](const Field& f) { return get_progress(d, f); });
  u.input_request = d.opt<TaskInputRequest>(
      Field{"input_request"}, [&](const Field& f) { return get_input_request(d, f); });
  u.summary = d.opt_string(Field{"summary"});
  u.result_path = d.opt_string(Field{"result_path"});
  u.artifacts = d.opt<std::vector<TaskArtifact>>(Field{"artifacts"}, [&](const Field& f) {
    return d.list<TaskArtifact>(f, [&](const Field& g) { return get_artifact(d, g); });
  });
  u.append_artifact = d.opt<TaskArtifact>(Field{"append_artifact"},
                                          [&](const Field& f) { return get_artifact(d, f); });
  u.error = d.opt<TaskError>(Field{"error"}, [&](const Field& f) { return get_error(d, f); });
  u.links = d.opt<TaskLinks>(Field{"links"}, [&](const Field& f) { return get_links(d, f); });
  u.worker_id = d.opt_string(Field{"worker_id"});
  u.heartbeat_at =
      d.opt<Timestamp>(Field{"heartbeat_at"}, [&](const Field& f) { return d.timestamp(f); });
  u.expected_attempt = d.opt<std::int32_t>(
      Field{"expected_attempt"}, [&](const Field& f) { return d.primitive<std::int32_t>(f); });
  u.increment_attempt = d.boolean(Field{"increment_attempt"});
  return p;
}

MessageRecorded get_message_recorded(Decoder& d) {
  MessageRecorded p;
  auto& m = p.message;
  m.id = d.string(Field{"id"});
  m.direction =
      static_cast<TaskMessageDirection>(d.u8_upto(Field{"direction"}, kMaxDirection, "enum value"));
  m.content = get_content(d, Field{"content"});
  m.in_reply_to = d.opt_string(Field{"in_reply_to"});
  return p;
}

}  // namespace

std::string_view type_name(const Payload& payload) noexcept {
  return payload.valueless_by_exception() ? "valueless" : kTypeNames[payload.index()];
}

bool is_known_type(std::string_view type) noexcept {
  return std::find(kTypeNames.begin(), kTypeNames.end(), type) != kTypeNames.end();
}

std::string encode(const Payload& payload) {
  if (std::holds_alternative<CancelRequested>(payload) ||
      std::holds_alternative<TaskPruned>(payload)) {
    return {};
  }
  try {
    Encoder e;
    std::visit(
        [&](const auto& p) {
          using P = std::decay_t<decltype(p)>;
          if constexpr (!std::is_same_v<P, CancelRequested> && !std::is_same_v<P, TaskPruned>) {
            put(e, p);
          }
        },
        payload);
    return e.bytes();
  } catch (const cereal::Exception& e) {  // a failed write to the string stream
    throw Error(ErrorCode::Storage,
                "encoding payload of " + std::string(type_name(payload)) + ": " + e.what());
  }
}

Payload decode(std::string_view type, std::uint32_t version, std::string_view bytes,
               std::string_view session_id, std::string_view task_id, Timestamp recorded_at) {
  if (version == 0 || version > kPayloadVersion) {
    throw Error(ErrorCode::Unsupported, "payload version " + std::to_string(version) + " of " +
                                            std::string(type) + " is not supported (this build " +
                                            "reads versions 1 to " +
                                            std::to_string(kPayloadVersion) + ")");
  }
  if (!is_known_type(type)) {
    throw Error(ErrorCode::Corrupt, "unknown event type \"" + std::string(type) + "\"");
  }
  try {
    if (type == "cancel_requested" || type == "task_pruned") {
      if (!bytes.empty()) {
        throw Error(ErrorCode::Corrupt,
                    "payload of " + std::string(type) + ": " + trailing(bytes.size()));
      }
      if (type == "task_pruned") return TaskPruned{};
      return CancelRequested{};
    }
    Decoder d(type, bytes);
    Payload out;
    if (type == "task_created") {
      auto p = get_task_created(d);
      p.input.session_id = std::string(session_id);
      p.input.id = std::string(task_id);
      out = std::move(p);
    } else if (type == "task_updated") {
      out = get_task_updated(d);
    } else {
      auto p = get_message_recorded(d);
      p.message.task_id = std::string(task_id);
      p.message.created_at = recorded_at;
      out = std::move(p);
    }
    d.finish();
    return out;
  } catch (const Error&) {
    throw;
  } catch (const cereal::Exception& e) {
    throw Error(ErrorCode::Corrupt, "payload of " + std::string(type) + ": " + e.what());
  } catch (const std::exception& e) {
    throw Error(ErrorCode::Corrupt, "payload of " + std::string(type) + ": " + e.what());
  }
}

// ---- checkpoints (grammar in checkpoint.hpp) ----------------------------------------------------

namespace {

void put_timestamp_opt(Encoder& e, const std::optional<Timestamp>& t) {
  e.opt(t, [&](Timestamp v) { e.timestamp(v); });
}

void put_task(Encoder& e, const SessionTask& t) {
  e.string(t.id);
  e.string(t.session_id);
  e.string(t.kind);
  e.string(t.display_name);
  e.string(t.spec);
  e.state(t.state);
  e.opt_string(t.state_detail);
  e.opt(t.progress, [&](const TaskProgress& g) { put_progress(e, g); });
  e.opt(t.input_request, [&](const TaskInputRequest& r) { put_input_request(e, r); });
  put_timestamp_opt(e, t.cancel_requested_at);
  e.opt_string(t.summary);
  e.opt_string(t.result_path);
  e.list(t.artifacts, [&](const TaskArtifact& a) { put_artifact(e, a); });
  e.opt(t.error, [&](const TaskError& err) { put_error(e, err); });
  e.i32(t.attempt);
  e.opt_string(t.worker_id);
  put_timestamp_opt(e, t.heartbeat_at);
  put_links(e, t.links);
  e.u8(static_cast<std::uint8_t>(t.wake_policy));
  e.timestamp(t.created_at);
  put_timestamp_opt(e, t.started_at);
  put_timestamp_opt(e, t.finished_at);
  e.timestamp(t.updated_at);
}

void put_message(Encoder& e, const TaskMessage& m) {
  e.string(m.id);
  e.u8(static_cast<std::uint8_t>(m.direction));
  put_content(e, m.content);
  e.opt_string(m.in_reply_to);
  e.timestamp(m.created_at);
}

std::optional<Timestamp> get_timestamp_opt(Decoder& d, const Field& f) {
  return d.opt<Timestamp>(f, [&](const Field& g) { return d.timestamp(g); });
}

// Fills `t` in place: a SessionTask is some 850 bytes, and a restore moves each one once only.
void get_task(Decoder& d, const Field& f, SessionTask& t) {
  t.id = d.string(f.member("id"));
  t.session_id = d.string(f.member("session_id"));
  t.kind = d.string(f.member("kind"));
  t.display_name = d.string(f.member("display_name"));
  t.spec = d.json(f.member("spec"));
  t.state = d.state(f.member("state"));
  t.state_detail = d.opt_string(f.member("state_detail"));
  t.progress =
      d.opt<TaskProgress>(f.member("progress"), [&](const Field& g) { return get_progress(d, g); });
  t.input_request = d.opt<TaskInputRequest>(
      f.member("input_request"), [&](const Field& g) { return get_input_request(d, g); });
  t.cancel_requested_at = get_timestamp_opt(d, f.member("cancel_requested_at"));
  t.summary = d.opt_string(f.member("summary"));
  t.result_path = d.opt_string(f.member("result_path"));
  t.artifacts = d.list<TaskArtifact>(f.member("artifacts"),
                                     [&](const Field& g) { return get_artifact(d, g); });
  t.error = d.opt<TaskError>(f.member("error"), [&](const Field& g) { return get_error(d, g); });
  t.attempt = d.primitive<std::int32_t>(f.member("attempt"));
  t.worker_id = d.opt_string(f.member("worker_id"));
  t.heartbeat_at = get_timestamp_opt(d, f.member("heartbeat_at"));
  t.links = get_links(d, f.member("links"));
  t.wake_policy =
      static_cast<TaskWakePolicy>(d.u8_upto(f.member("wake_policy"), kMaxPolicy, "enum value"));
  t.created_at = d.timestamp(f.member("created_at"));
  t.started_at = get_timestamp_opt(d, f.member("started_at"));
  t.finished_at = get_timestamp_opt(d, f.member("finished_at"));
  t.updated_at = d.timestamp(f.member("updated_at"));
}

TaskMessage get_message(Decoder& d, const Field& f, const std::string& task_id) {
  TaskMessage m;
  m.id = d.string(f.member("id"));
  m.task_id = task_id;
  m.direction = static_cast<TaskMessageDirection>(
      d.u8_upto(f.member("direction"), kMaxDirection, "enum value"));
  m.content = get_content(d, f.member("content"));
  m.in_reply_to = d.opt_string(f.member("in_reply_to"));
  m.created_at = d.timestamp(f.member("created_at"));
  return m;
}

}  // namespace

struct CheckpointEncoder::State {
  EncodeStream stream;  // its own: payloads may be encoded on this thread between two add()s
  std::optional<Encoder> encoder;
  std::uint64_t pruned_events = 0;  // for the first chunk
  bool taken = false;               // a chunk was taken
  void start() {
    encoder.emplace(stream);
    encoder->u64(taken ? 0 : pruned_events);
  }
};

CheckpointEncoder::CheckpointEncoder(std::uint64_t pruned_events)
    : state_(std::make_unique<State>()) {
  state_->pruned_events = pruned_events;
}
CheckpointEncoder::~CheckpointEncoder() = default;

void CheckpointEncoder::add(const SessionTask& task, const std::vector<TaskMessage>& messages,
                            std::uint64_t events) {
  try {
    if (!state_->encoder) state_->start();
    Encoder& e = *state_->encoder;
    put_task(e, task);
    e.list(messages, [&](const TaskMessage& m) { put_message(e, m); });
    e.u64(events);
  } catch (const cereal::Exception& e) {  // a failed write to the string stream
    throw Error(ErrorCode::Storage, std::string("encoding checkpoint: ") + e.what());
  }
}

std::size_t CheckpointEncoder::size() const noexcept {
  return state_->encoder ? state_->encoder->size() : 0;
}

std::string CheckpointEncoder::take() {
  if (!state_->encoder) return {};
  std::string bytes = state_->encoder->bytes();
  state_->encoder.reset();
  state_->taken = true;
  return bytes;
}

std::string CheckpointEncoder::finish() {
  try {
    if (!state_->encoder && !state_->taken) state_->start();
  } catch (const cereal::Exception& e) {
    throw Error(ErrorCode::Storage, std::string("encoding checkpoint: ") + e.what());
  }
  return take();
}

CheckpointChunk decode_checkpoint_chunk(std::string_view bytes, std::uint32_t format) {
  constexpr std::string_view kWhat = "checkpoint chunk";
  if (format < kOldestCheckpointFormat || format > kCheckpointFormat) {
    throw Error(ErrorCode::Unsupported, "checkpoint format " + std::to_string(format) +
                                            " (this build reads formats " +
                                            std::to_string(kOldestCheckpointFormat) + " to " +
                                            std::to_string(kCheckpointFormat) + ")");
  }
  try {
    Decoder d(kWhat, bytes);
    CheckpointChunk chunk;
    if (format == 1) {
      if (d.at_end()) d.fail("no task");
    } else {
      chunk.pruned_events = d.primitive<std::uint64_t>(Field{"pruned"});
    }
    std::vector<CheckpointEntry>& out = chunk.entries;
    out.reserve(bytes.size() / 512 + 1);  // entries take a few hundred bytes: grows rarely
    const Field entries{"entries"};
    for (std::size_t i = 0; !d.at_end(); ++i) {
      const Field entry = entries.element(i);
      CheckpointEntry& e = out.emplace_back();
      get_task(d, entry.member("task"), e.task);
      e.messages = d.list<TaskMessage>(
          entry.member("messages"), [&](const Field& f) { return get_message(d, f, e.task.id); });
      e.events = d.primitive<std::uint64_t>(entry.member("events"));
    }
    return chunk;
  } catch (const Error&) {
    throw;
  } catch (const cereal::Exception& e) {
    throw Error(ErrorCode::Corrupt, std::string(kWhat) + ": " + e.what());
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::Corrupt, std::string(kWhat) + ": " + e.what());
  }
}

}  // namespace taskjournal::events

namespace taskjournal::events::testing {

std::size_t encode_buffer_capacity() { return encode_stream.sink.out.capacity(); }

}  // namespace taskjournal::events::testing
