#include "support/generators.hpp"

namespace taskjournal {

namespace print_detail {

void quoted(std::ostream& os, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  os << '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        os << "\\\"";
        break;
      case '\\':
        os << "\\\\";
        break;
      case '\n':
        os << "\\n";
        break;
      case '\t':
        os << "\\t";
        break;
      case '\r':
        os << "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          os << "\\x" << kHex[c >> 4] << kHex[c & 0xF];
        } else {
          os << ch;
        }
    }
  }
  os << '"';
}

void time(std::ostream& os, Timestamp t) {
  constexpr std::int64_t kPerDay = 86'400'000'000;
  const std::int64_t us = t.time_since_epoch().count();
  std::int64_t day = us / kPerDay;
  std::int64_t rem = us % kPerDay;
  if (rem < 0) {
    rem += kPerDay;
    --day;
  }
  const std::int64_t z = day + 719'468;
  const std::int64_t era = (z >= 0 ? z : z - 146'096) / 146'097;
  const std::int64_t doe = z - era * 146'097;
  const std::int64_t yoe = (doe - doe / 1'460 + doe / 36'524 - doe / 146'096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  char buf[64];
  const char* sign = y < 0 ? "-" : (y > 9999 ? "+" : "");
  std::snprintf(
      buf, sizeof buf, "%s%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%06lldZ", sign,
      static_cast<long long>(y < 0 ? -y : y), static_cast<long long>(m), static_cast<long long>(d),
      static_cast<long long>(rem / 3'600'000'000), static_cast<long long>(rem / 60'000'000 % 60),
      static_cast<long long>(rem / 1'000'000 % 60), static_cast<long long>(rem % 1'000'000));
  os << buf;
}

void value(std::ostream& os, const std::string& v) { quoted(os, v); }

void value(std::ostream& os, Timestamp v) { time(os, v); }

void value(std::ostream& os, bool v) { os << (v ? "true" : "false"); }

void value(std::ostream& os, std::int32_t v) { os << v; }

void value(std::ostream& os, std::uint64_t v) { os << v; }
}  // namespace print_detail

std::ostream& operator<<(std::ostream& os, SessionTaskState s) { return os << to_string(s); }

std::ostream& operator<<(std::ostream& os, TaskWakePolicy p) { return os << to_string(p); }

std::ostream& operator<<(std::ostream& os, TaskMessageDirection d) { return os << to_string(d); }

std::ostream& operator<<(std::ostream& os, ErrorCode c) { return os << to_string(c); }

std::ostream& operator<<(std::ostream& os, TaskTransition t) {
  switch (t) {
    case TaskTransition::Terminal:
      return os << "terminal";
    case TaskTransition::AwaitingInput:
      return os << "awaiting_input";
    case TaskTransition::Message:
      return os << "message";
  }
  return os << "transition?";
}

std::ostream& operator<<(std::ostream& os, const TaskProgress& v) {
  print_detail::Fields(os, "TaskProgress")
      .opt("current", v.current)
      .opt("total", v.total)
      .opt("unit", v.unit)
      .opt("label", v.label);
  return os;
}

std::ostream& operator<<(std::ostream& os, const TaskInputRequest& v) {
  print_detail::Fields(os, "TaskInputRequest")("id", v.id)("prompt", v.prompt)
      .opt("expected", v.expected);
  return os;
}

std::ostream& operator<<(std::ostream& os, const TaskError& v) {
  print_detail::Fields(os, "TaskError")("kind", v.kind)("message", v.message);
  return os;
}

std::ostream& operator<<(std::ostream& os, const TaskArtifact& v) {
  print_detail::Fields(os, "TaskArtifact")("name", v.name)("type", v.type)
      .opt("path", v.path)
      .opt("url", v.url);
  return os;
}

std::ostream& operator<<(std::ostream& os, const TaskLinks& v) {
  print_detail::Fields(os, "TaskLinks")
      .opt("child_session_id", v.child_session_id)
      .opt("remote_task_id", v.remote_task_id)
      .nonempty("resource_ids", v.resource_ids);
  return os;
}

std::ostream& operator<<(std::ostream& os, const SessionTask& v) {
  print_detail::Fields f(os, "SessionTask");
  f("id", v.id)("session_id", v.session_id)("kind", v.kind)("display_name", v.display_name);
  f("spec", v.spec)("state", v.state).opt("state_detail", v.state_detail);
  f.opt("progress", v.progress).opt("input_request", v.input_request);
  f.opt("cancel_requested_at", v.cancel_requested_at).opt("summary", v.summary);
  f.opt("result_path", v.result_path).nonempty("artifacts", v.artifacts).opt("error", v.error);
  f("attempt", v.attempt).opt("worker_id", v.worker_id).opt("heartbeat_at", v.heartbeat_at);
  if (v.links != TaskLinks{}) f("links", v.links);
  f("wake_policy", v.wake_policy)("created_at", v.created_at);
  f.opt("started_at", v.started_at).opt("finished_at", v.finished_at)("updated_at", v.updated_at);
  return os;
}

std::ostream& operator<<(std::ostream& os, const CreateSessionTask& v) {
  print_detail::Fields f(os, "CreateSessionTask");
  f("session_id", v.session_id).opt("id", v.id)("kind", v.kind)("display_name", v.display_name);
  f("spec", v.spec);
  if (v.state != SessionTaskState::Queued) f("state", v.state);
  if (v.links != TaskLinks{}) f("links", v.links);
  if (v.wake_policy != TaskWakePolicy::Silent) f("wake_policy", v.wake_policy);
  return os;
}

std::ostream& operator<<(std::ostream& os, const SessionTaskUpdate& v) {
  print_detail::Fields f(os, "SessionTaskUpdate");
  f.opt("state", v.state).opt("state_detail", v.state_detail).opt("progress", v.progress);
  f.opt("input_request", v.input_request).opt("summary", v.summary);
  f.opt("result_path", v.result_path).opt("artifacts", v.artifacts);
  f.opt("append_artifact", v.append_artifact).opt("error", v.error).opt("links", v.links);
  f.opt("worker_id", v.worker_id).opt("heartbeat_at", v.heartbeat_at);
  f.opt("expected_attempt", v.expected_attempt);
  if (v.increment_attempt) f("increment_attempt", true);
  return os;
}

std::ostream& operator<<(std::ostream& os, const SessionTaskFilter& v) {
  print_detail::Fields(os, "SessionTaskFilter").opt("kind", v.kind).opt("state", v.state);
  return os;
}

std::ostream& operator<<(std::ostream& os, const TextPart& v) {
  print_detail::Fields(os, "TextPart")("text", v.text);
  return os;
}

std::ostream& operator<<(std::ostream& os, const DataPart& v) {
  print_detail::Fields(os, "DataPart")("data", v.data);
  return os;
}

std::ostream& operator<<(std::ostream& os, const TaskMessagePart& v) {
  std::visit([&](const auto& part) { os << part; }, v);
  return os;
}

std::ostream& operator<<(std::ostream& os, const TaskMessage& v) {
  print_detail::Fields f(os, "TaskMessage");
  f("id", v.id)("task_id", v.task_id)("direction", v.direction)("content", v.content);
  f.opt("in_reply_to", v.in_reply_to)("created_at", v.created_at);
  return os;
}

std::ostream& operator<<(std::ostream& os, const NewTaskMessage& v) {
  print_detail::Fields f(os, "NewTaskMessage");
  f("direction", v.direction)("content", v.content).opt("in_reply_to", v.in_reply_to);
  f.opt("expected_attempt", v.expected_attempt);
  return os;
}

std::ostream& operator<<(std::ostream& os, const JournalEntry& v) {
  print_detail::Fields f(os, "JournalEntry");
  f("seq", v.seq)("type", v.type)("recorded_at", v.recorded_at)("session_id", v.session_id);
  f("task_id", v.task_id)("payload", v.payload);
  return os;
}

std::ostream& operator<<(std::ostream& os, const RegistryEvent& v) {
  print_detail::Fields f(os, "RegistryEvent");
  f("type", v.type)("seq", v.seq)("session_id", v.session_id)("task_id", v.task_id);
  f.opt("task", v.task).opt("message", v.message);
  return os;
}

std::ostream& operator<<(std::ostream& os, const WakeNotice& v) {
  print_detail::Fields f(os, "WakeNotice");
  f("session_id", v.session_id)("task_id", v.task_id)("transition", v.transition)("text", v.text);
  return os;
}
}  // namespace taskjournal

namespace taskjournal::testing {}  // namespace taskjournal::testing

namespace taskjournal::testing {

std::string print_time(Timestamp t) {
  std::ostringstream os;
  print_detail::time(os, t);
  return os.str();
}

const std::vector<std::string>& session_pool() {
  static const std::vector<std::string> v{"s1", "s2", "s3", "s\xc3\xa9"};
  return v;
}

const std::vector<std::string>& task_id_pool() {
  static const std::vector<std::string> v{"t1", "t2", "t3", "t4", "t\xc3\xa4sk"};
  return v;
}

const std::vector<std::string>& resource_pool() {
  static const std::vector<std::string> v{"r1", "r2", "r3", "r4"};
  return v;
}

const std::vector<std::string>& request_id_pool() {
  static const std::vector<std::string> v{"q1", "q2", "q3"};
  return v;
}

const std::vector<std::string>& kind_pool() {
  static const std::vector<std::string> v{"subagent", "tool", "monitor", "k\xc3\xa9"};
  return v;
}

rc::Gen<std::string> session_id() { return rc::gen::elementOf(session_pool()); }

rc::Gen<std::string> task_id() { return rc::gen::elementOf(task_id_pool()); }

rc::Gen<std::string> resource_id() { return rc::gen::elementOf(resource_pool()); }

rc::Gen<std::string> request_id() { return rc::gen::elementOf(request_id_pool()); }

rc::Gen<std::string> kind() { return rc::gen::elementOf(kind_pool()); }

std::string utf8(std::uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

rc::Gen<std::string> text() {
  static const auto gen = rc::gen::weightedOneOf<std::string>({
      {6, rc::gen::element<std::string>("", "a", "b", "hello", "x y", "done", "line\nbreak", " ")},
      {3, rc::gen::mapcat(uniform<int>(0, 9),
                          [](int n) {
                            return rc::gen::container<std::string>(static_cast<std::size_t>(n),
                                                                   rc::gen::inRange<char>(32, 127));
                          })},
      {1, rc::gen::map(small_vector(rc::gen::element<std::uint32_t>(0x00, 0x41, 0x7F, 0xE9, 0x3B1,
                                                                    0x2028, 0x65E5, 0xFEFF, 0xFFFD,
                                                                    0x1F642, 0x10FFFF),
                                    6),
                       [](const std::vector<std::uint32_t>& cps) {
                         std::string s;
                         for (auto cp : cps) s += utf8(cp);
                         return s;
                       })},
  });
  return gen;
}

rc::Gen<std::string> json_scalar() {
  return rc::gen::element<std::string>(
      "null", "true", "false", "0", "-1", "42", "3.25", "-0.5e-3", "1E300", "1e-400",
      "12345678901234567890", "-9223372036854775809", R"("")", R"("a")", R"("secret")",
      R"("line\nbreak \"q\" \\ \/")", R"("\u00e9\u65e5")", R"("\ud83d\ude42")",
      "\"\xc3\xa9\xf0\x9f\x99\x82\"", R"("\u0000")");
}

rc::Gen<std::string> json_array(int depth) {
  return rc::gen::map(small_vector(json_value(depth), 4), [](const std::vector<std::string>& xs) {
    std::string s = "[";
    for (std::size_t i = 0; i < xs.size(); ++i) s += (i ? "," : "") + xs[i];
    return s + "]";
  });
}

rc::Gen<std::string> json_object(int depth) {
  const auto key =
      rc::gen::element<std::string>(R"("a")", R"("b")", R"("secret")", R"("has_secret")",
                                    R"("push_configs")", R"("\u00e9")", R"("")");
  return rc::gen::map(small_vector(rc::gen::pair(key, json_value(depth)), 4),
                      [](const std::vector<std::pair<std::string, std::string>>& kvs) {
                        std::string s = "{";
                        for (std::size_t i = 0; i < kvs.size(); ++i) {
                          s += (i ? "," : "") + kvs[i].first + ":" + kvs[i].second;
                        }
                        return s + "}";
                      });
}

rc::Gen<std::string> json_value(int depth) {
  if (depth <= 0) return json_scalar();
  return rc::gen::weightedOneOf<std::string>(
      {{3, json_scalar()}, {1, json_array(depth - 1)}, {1, json_object(depth - 1)}});
}

rc::Gen<Json> json() {
  static const auto gen = rc::gen::weightedOneOf<std::string>(
      {{6, json_value(3)},
       {1, rc::gen::map(json_value(2), [](std::string v) { return " \n\t" + v + "\r\n "; })}});
  return gen;
}

rc::Gen<Json> spec() {
  return rc::gen::weightedOneOf<std::string>(
      {{2, rc::gen::just<std::string>("{}")},
       {3, json()},
       {1, rc::gen::element<std::string>(
               R"({"push_configs":[{"url":"https://x","secret":"hunter2"},{"url":"u"}]})",
               R"({"push_configs":[{"secret":1,"has_secret":false}],"secret":"top"})")}});
}

rc::Gen<SessionTaskState> state() {
  return rc::gen::element(SessionTaskState::Queued, SessionTaskState::Running,
                          SessionTaskState::AwaitingInput, SessionTaskState::Succeeded,
                          SessionTaskState::Failed, SessionTaskState::Canceled);
}

rc::Gen<SessionTaskState> nonterminal_state() {
  return rc::gen::element(SessionTaskState::Queued, SessionTaskState::Running,
                          SessionTaskState::AwaitingInput);
}

rc::Gen<SessionTaskState> update_state() {
  return rc::gen::weightedElement<SessionTaskState>({{2, SessionTaskState::Queued},
                                                     {3, SessionTaskState::Running},
                                                     {2, SessionTaskState::AwaitingInput},
                                                     {1, SessionTaskState::Succeeded},
                                                     {1, SessionTaskState::Failed},
                                                     {1, SessionTaskState::Canceled}});
}

rc::Gen<TaskWakePolicy> wake_policy() {
  return rc::gen::element(TaskWakePolicy::Silent, TaskWakePolicy::OnTerminal,
                          TaskWakePolicy::OnActivity);
}

rc::Gen<TaskMessageDirection> direction() {
  return rc::gen::element(TaskMessageDirection::Inbound, TaskMessageDirection::Outbound);
}

rc::Gen<Timestamp> timestamp() {
  using std::chrono::microseconds;
  const Timestamp base =
      Timestamp{std::chrono::sys_days{std::chrono::year{2026} / std::chrono::January / 2}};
  return rc::gen::weightedOneOf<Timestamp>(
      {{6, rc::gen::map(uniform<std::int64_t>(-3'600'000'000, 3'600'000'000),
                        [base](std::int64_t d) { return base + microseconds{d}; })},
       {1, rc::gen::element(Timestamp{}, Timestamp{microseconds{-1}}, Timestamp::min(),
                            Timestamp::max(), Timestamp{microseconds{253'402'300'800'000'000}})},
       {1, rc::gen::map(uniform<std::int64_t>(std::numeric_limits<std::int64_t>::min(),
                                              std::numeric_limits<std::int64_t>::max()),
                        [](std::int64_t us) { return Timestamp{microseconds{us}}; })}});
}

rc::Gen<std::uint64_t> count() {
  return rc::gen::weightedOneOf<std::uint64_t>(
      {{4, uniform<std::uint64_t>(0, 101)},
       {1, rc::gen::element<std::uint64_t>(0, 1, std::numeric_limits<std::uint64_t>::max())},
       {1, rc::gen::arbitrary<std::uint64_t>()}});
}

rc::Gen<TaskProgress> progress() {
  return rc::gen::build<TaskProgress>(
      rc::gen::set(&TaskProgress::current, opt(count(), 70)),
      rc::gen::set(&TaskProgress::total, opt(count(), 50)),
      rc::gen::set(&TaskProgress::unit,
                   opt(rc::gen::element<std::string>("steps", "bytes", ""), 40)),
      rc::gen::set(&TaskProgress::label, opt(text(), 40)));
}

rc::Gen<TaskInputRequest> input_request() {
  return rc::gen::build<TaskInputRequest>(rc::gen::set(&TaskInputRequest::id, request_id()),
                                          rc::gen::set(&TaskInputRequest::prompt, text()),
                                          rc::gen::set(&TaskInputRequest::expected, opt(json())));
}

rc::Gen<TaskError> task_error() {
  return rc::gen::build<TaskError>(
      rc::gen::set(
          &TaskError::kind,
          rc::gen::weightedOneOf<std::string>(
              {{4, rc::gen::element<std::string>("timeout", "rejected", "orphaned", "crash")},
               {1, text()}})),
      rc::gen::set(&TaskError::message, text()));
}

rc::Gen<TaskArtifact> artifact() {
  return rc::gen::build<TaskArtifact>(
      rc::gen::set(&TaskArtifact::name,
                   rc::gen::element<std::string>("out", "log", "", "r\xc3\xa9")),
      rc::gen::set(&TaskArtifact::type,
                   rc::gen::element<std::string>("file", "url", "text/plain", "")),
      rc::gen::set(&TaskArtifact::path, opt(rc::gen::element<std::string>("/tmp/a", "b/c"), 40)),
      rc::gen::set(&TaskArtifact::url, opt(rc::gen::element<std::string>("https://x/y"), 30)));
}

rc::Gen<TaskLinks> links() {
  return rc::gen::build<TaskLinks>(
      rc::gen::set(&TaskLinks::child_session_id, opt(session_id(), 30)),
      rc::gen::set(&TaskLinks::remote_task_id,
                   opt(rc::gen::element<std::string>("remote-1", "remote-2"), 30)),
      rc::gen::set(&TaskLinks::resource_ids, small_vector(resource_id(), 5)));
}

std::int32_t saturated(std::int64_t v) {
  return static_cast<std::int32_t>(std::clamp<std::int64_t>(
      v, std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max()));
}

rc::Gen<std::int32_t> attempt_near(std::int32_t attempt) {
  return rc::gen::weightedOneOf<std::int32_t>(
      {{4, rc::gen::just(attempt)},
       {3, rc::gen::map(rc::gen::element(-2, -1, 1, 2),
                        [attempt](int d) { return saturated(std::int64_t{attempt} + d); })},
       {1, rc::gen::element<std::int32_t>(0, -1, std::numeric_limits<std::int32_t>::min(),
                                          std::numeric_limits<std::int32_t>::max())}});
}

std::ostream& operator<<(std::ostream& os, const AttemptFence& f) {
  if (!f.relative) return os << "expected_attempt = " << f.value;
  os << "expected_attempt = attempt";
  if (f.value != 0) os << (f.value > 0 ? "+" : "") << f.value;
  return os;
}

rc::Gen<AttemptFence> attempt_fence() {
  return rc::gen::weightedOneOf<AttemptFence>(
      {{4, rc::gen::just(AttemptFence{})},
       {3, rc::gen::map(rc::gen::element(-2, -1, 1, 2),
                        [](int d) {
                          return AttemptFence{true, static_cast<std::int32_t>(d)};
                        })},
       {1,
        rc::gen::map(rc::gen::element<std::int32_t>(0, -1, std::numeric_limits<std::int32_t>::min(),
                                                    std::numeric_limits<std::int32_t>::max()),
                     [](std::int32_t v) {
                       return AttemptFence{false, v};
                     })}});
}

rc::Gen<SessionTaskUpdate> update(std::int32_t attempt) {
  return rc::gen::build<SessionTaskUpdate>(
      rc::gen::set(&SessionTaskUpdate::state, opt(update_state(), 50)),
      rc::gen::set(&SessionTaskUpdate::state_detail, opt(text(), 25)),
      rc::gen::set(&SessionTaskUpdate::progress, opt(progress(), 20)),
      rc::gen::set(&SessionTaskUpdate::input_request, opt(input_request(), 20)),
      rc::gen::set(&SessionTaskUpdate::summary, opt(text(), 20)),
      rc::gen::set(&SessionTaskUpdate::result_path,
                   opt(rc::gen::element<std::string>("/out/r.json", "", "res"), 15)),
      rc::gen::set(&SessionTaskUpdate::artifacts, opt(small_vector(artifact(), 3), 15)),
      rc::gen::set(&SessionTaskUpdate::append_artifact, opt(artifact(), 15)),
      rc::gen::set(&SessionTaskUpdate::error, opt(task_error(), 15)),
      rc::gen::set(&SessionTaskUpdate::links, opt(links(), 25)),
      rc::gen::set(&SessionTaskUpdate::worker_id,
                   opt(rc::gen::element<std::string>("w1", "w2"), 20)),
      rc::gen::set(&SessionTaskUpdate::heartbeat_at, opt(timestamp(), 20)),
      rc::gen::set(&SessionTaskUpdate::expected_attempt, opt(attempt_near(attempt), 30)),
      rc::gen::set(&SessionTaskUpdate::increment_attempt,
                   rc::gen::weightedElement<bool>({{4, false}, {1, true}})));
}

rc::Gen<CreateSessionTask> create_input() {
  return rc::gen::build<CreateSessionTask>(
      rc::gen::set(&CreateSessionTask::session_id, session_id()),
      rc::gen::set(&CreateSessionTask::id, opt(task_id(), 60)),
      rc::gen::set(&CreateSessionTask::kind, kind()),
      rc::gen::set(&CreateSessionTask::display_name, text()),
      rc::gen::set(&CreateSessionTask::spec, spec()),
      rc::gen::set(&CreateSessionTask::state,
                   rc::gen::weightedOneOf<SessionTaskState>(
                       {{3, rc::gen::just(SessionTaskState::Queued)}, {2, state()}})),
      rc::gen::set(&CreateSessionTask::links, rc::gen::weightedOneOf<TaskLinks>(
                                                  {{1, rc::gen::just(TaskLinks{})}, {1, links()}})),
      rc::gen::set(&CreateSessionTask::wake_policy, wake_policy()));
}

rc::Gen<TaskMessagePart> message_part() {
  return rc::gen::weightedOneOf<TaskMessagePart>(
      {{3, rc::gen::map(text(), [](std::string t) { return TaskMessagePart{TextPart{t}}; })},
       {1, rc::gen::map(json(), [](std::string d) { return TaskMessagePart{DataPart{d}}; })}});
}

rc::Gen<std::vector<TaskMessagePart>> message_content() { return small_vector(message_part(), 4); }

rc::Gen<NewTaskMessage> new_message(std::int32_t attempt) {
  return rc::gen::build<NewTaskMessage>(
      rc::gen::set(&NewTaskMessage::direction, direction()),
      rc::gen::set(&NewTaskMessage::content, message_content()),
      rc::gen::set(&NewTaskMessage::in_reply_to, opt(request_id(), 50)),
      rc::gen::set(&NewTaskMessage::expected_attempt, opt(attempt_near(attempt), 30)));
}

rc::Gen<std::int64_t> clock_step(bool jumps_back) {
  if (!jumps_back) {
    return rc::gen::weightedOneOf<std::int64_t>(
        {{1, rc::gen::just<std::int64_t>(0)}, {4, uniform<std::int64_t>(1, 5'000'000)}});
  }
  return rc::gen::weightedOneOf<std::int64_t>({{1, rc::gen::just<std::int64_t>(0)},
                                               {3, uniform<std::int64_t>(1, 5'000'000)},
                                               {2, uniform<std::int64_t>(-86'400'000'000, 0)}});
}

std::ostream& operator<<(std::ostream& os, const ClockTicks& c) {
  print_detail::value(os, c.ticks);
  return os;
}

rc::Gen<ClockTicks> forward_clock(int n, bool jumps_back) {
  return rc::gen::map(rc::gen::container<std::vector<std::int64_t>>(static_cast<std::size_t>(n),
                                                                    clock_step(jumps_back)),
                      [](const std::vector<std::int64_t>& steps) {
                        ClockTicks c;
                        Timestamp t = Timestamp{std::chrono::sys_days{std::chrono::year{2026} /
                                                                      std::chrono::January / 2}};
                        for (auto s : steps) c.ticks.push_back(t += std::chrono::microseconds{s});
                        return c;
                      });
}

rc::Gen<ClockTicks> jumpy_clock(int n) { return forward_clock(n, true); }
}  // namespace taskjournal::testing

namespace rc {}  // namespace rc
