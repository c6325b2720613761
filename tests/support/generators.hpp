// RapidCheck generators and readable printing for taskjournal's public value types (issue 3).
//
// Strings come mostly from small ASCII pools, so that the collisions the lifecycle rules care
// about actually happen: the same task id in two sessions, a resource id merged twice, an inbound
// message whose in_reply_to names the pending input request. A few are arbitrary printable ASCII
// or arbitrary UTF-8 (NUL, U+2028, emoji, U+10FFFF). Every generated string is valid UTF-8 and
// every generated Json is valid JSON text, so the registry accepts everything generated here;
// tests that want bad input make it themselves.
//
// Printing: operator<< for every public type (found by ADL from RapidCheck's counterexamples and
// from gtest), in the designated-initializer form a test would write, present fields only.
// Header-only; needs rapidcheck and taskjournal's public headers (names.cpp for to_string).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <rapidcheck.h>

#include "taskjournal/error.hpp"
#include "taskjournal/journal.hpp"
#include "taskjournal/notifications.hpp"
#include "taskjournal/types.hpp"

// ---- Printing -----------------------------------------------------------------------------------

namespace taskjournal {
namespace print_detail {

/// A quoted string literal: printable ASCII and UTF-8 as is, other bytes escaped.
void quoted(std::ostream& os, std::string_view s);

/// RFC 3339 UTC with microseconds; years outside 0000..9999 in ISO 8601's expanded form
/// ("+131072-01-01T…"). Exact over the whole range (H. Hinnant's civil_from_days, 64-bit).
void time(std::ostream& os, Timestamp t);

void value(std::ostream& os, const std::string& v);
void value(std::ostream& os, Timestamp v);
void value(std::ostream& os, bool v);
void value(std::ostream& os, std::int32_t v);
void value(std::ostream& os, std::uint64_t v);
template <class T>
void value(std::ostream& os, const T& v) {
  os << v;
}
template <class T>
void value(std::ostream& os, const std::optional<T>& v) {
  if (v) {
    value(os, *v);
  } else {
    os << "nullopt";
  }
}
template <class T>
void value(std::ostream& os, const std::vector<T>& v) {
  os << '{';
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) os << ", ";
    value(os, v[i]);
  }
  os << '}';
}

/// `Type{.a = 1, .b = "x"}` with only the fields that are present (non-default).
class Fields {
 public:
  Fields(std::ostream& os, const char* type) : os_(os) { os_ << type << '{'; }
  ~Fields() { os_ << '}'; }
  Fields(const Fields&) = delete;
  Fields& operator=(const Fields&) = delete;

  template <class T>
  Fields& operator()(const char* name, const T& v) {
    os_ << (first_ ? "." : ", .") << name << " = ";
    value(os_, v);
    first_ = false;
    return *this;
  }
  template <class T>
  Fields& opt(const char* name, const std::optional<T>& v) {
    if (v) (*this)(name, *v);
    return *this;
  }
  template <class T>
  Fields& nonempty(const char* name, const std::vector<T>& v) {
    if (!v.empty()) (*this)(name, v);
    return *this;
  }

 private:
  std::ostream& os_;
  bool first_ = true;
};

}  // namespace print_detail

std::ostream& operator<<(std::ostream& os, SessionTaskState s);
std::ostream& operator<<(std::ostream& os, TaskWakePolicy p);
std::ostream& operator<<(std::ostream& os, TaskMessageDirection d);
std::ostream& operator<<(std::ostream& os, ErrorCode c);
std::ostream& operator<<(std::ostream& os, TaskTransition t);

std::ostream& operator<<(std::ostream& os, const TaskProgress& v);
std::ostream& operator<<(std::ostream& os, const TaskInputRequest& v);
std::ostream& operator<<(std::ostream& os, const TaskError& v);
std::ostream& operator<<(std::ostream& os, const TaskArtifact& v);
std::ostream& operator<<(std::ostream& os, const TaskLinks& v);
std::ostream& operator<<(std::ostream& os, const SessionTask& v);
std::ostream& operator<<(std::ostream& os, const CreateSessionTask& v);
std::ostream& operator<<(std::ostream& os, const SessionTaskUpdate& v);
std::ostream& operator<<(std::ostream& os, const SessionTaskFilter& v);
std::ostream& operator<<(std::ostream& os, const TextPart& v);
std::ostream& operator<<(std::ostream& os, const DataPart& v);
std::ostream& operator<<(std::ostream& os, const TaskMessagePart& v);
std::ostream& operator<<(std::ostream& os, const TaskMessage& v);
std::ostream& operator<<(std::ostream& os, const NewTaskMessage& v);
std::ostream& operator<<(std::ostream& os, const JournalEntry& v);
std::ostream& operator<<(std::ostream& os, const RegistryEvent& v);
std::ostream& operator<<(std::ostream& os, const WakeNotice& v);

}  // namespace taskjournal

namespace taskjournal::testing {

/// "<a-text> == <b-text>" with both values printed by print_detail (which, unlike RapidCheck's
/// own expansion, prints std::chrono timestamps and optionals of them).
template <class A, class B>
std::string describe_inequality(const char* a_text, const char* b_text, const A& a, const B& b) {
  std::ostringstream os;
  os << a_text << " == " << b_text << "\nExpands to:\n";
  print_detail::value(os, a);
  os << "\n  !=\n";
  print_detail::value(os, b);
  return os.str();
}

}  // namespace taskjournal::testing

/// RC_ASSERT(a == b) that prints both sides readably, timestamps included.
#define TJ_RC_ASSERT_EQ(a, b)                                                           \
  do {                                                                                  \
    const auto& tj_rc_a_ = (a);                                                         \
    const auto& tj_rc_b_ = (b);                                                         \
    if (!(tj_rc_a_ == tj_rc_b_)) {                                                      \
      RC_FAIL(::taskjournal::testing::describe_inequality(#a, #b, tj_rc_a_, tj_rc_b_)); \
    }                                                                                   \
  } while (false)

// ---- Generators ---------------------------------------------------------------------------------

namespace taskjournal::testing {

/// An integer in [min, max), uniform at every size (rc::gen::inRange scales with the size, so it
/// would only ever give `min` in the first cases); still shrinks towards `min`.
template <class T>
rc::Gen<T> uniform(T min, T max) {
  return rc::gen::resize(100, rc::gen::inRange<T>(min, max));
}

/// Absent or present; `percent` is the chance of present. Shrinks towards absent.
template <class T>
rc::Gen<std::optional<T>> opt(rc::Gen<T> gen, std::size_t percent = 50) {
  return rc::gen::weightedOneOf<std::optional<T>>(
      {{100 - percent, rc::gen::just(std::optional<T>())},
       {percent,
        rc::gen::map(std::move(gen), [](T v) { return std::optional<T>(std::move(v)); })}});
}

/// A timestamp as print_detail::time writes it.
std::string print_time(Timestamp t);

/// `count` values in [0, max_count) of `gen`.
template <class T>
rc::Gen<std::vector<T>> small_vector(rc::Gen<T> gen, int max_count) {
  return rc::gen::mapcat(uniform<int>(0, max_count), [gen = std::move(gen)](int n) {
    return rc::gen::container<std::vector<T>>(static_cast<std::size_t>(n), gen);
  });
}

// Pools. Ids and names are plain ASCII (plus one non-ASCII entry each) so that they collide.
const std::vector<std::string>& session_pool();
const std::vector<std::string>& task_id_pool();
const std::vector<std::string>& resource_pool();
const std::vector<std::string>& request_id_pool();
const std::vector<std::string>& kind_pool();

rc::Gen<std::string> session_id();
rc::Gen<std::string> task_id();
rc::Gen<std::string> resource_id();
rc::Gen<std::string> request_id();
rc::Gen<std::string> kind();

/// Code point → UTF-8.
std::string utf8(std::uint32_t cp);

/// Free text: mostly a small pool, sometimes printable ASCII, sometimes arbitrary valid UTF-8.
rc::Gen<std::string> text();

// Arbitrary valid JSON text, a few levels deep, with escapes, big numbers and duplicate keys.
inline rc::Gen<std::string> json_value(int depth);

rc::Gen<std::string> json_scalar();

rc::Gen<std::string> json_array(int depth);

rc::Gen<std::string> json_object(int depth);

rc::Gen<std::string> json_value(int depth);

/// One complete JSON value, sometimes surrounded by whitespace.
rc::Gen<Json> json();

/// A task spec: an object, sometimes with push_configs carrying secrets.
rc::Gen<Json> spec();

rc::Gen<SessionTaskState> state();
rc::Gen<SessionTaskState> nonterminal_state();
/// The state an update asks for: live states twice as likely, so walks stay alive for a while.
rc::Gen<SessionTaskState> update_state();
rc::Gen<TaskWakePolicy> wake_policy();
rc::Gen<TaskMessageDirection> direction();

/// Mostly near the fake clock's start, sometimes far away or at the ends of the range.
rc::Gen<Timestamp> timestamp();

rc::Gen<std::uint64_t> count();

rc::Gen<TaskProgress> progress();

rc::Gen<TaskInputRequest> input_request();

rc::Gen<TaskError> task_error();

rc::Gen<TaskArtifact> artifact();

/// Links whose resource ids repeat (inside one list and across lists).
rc::Gen<TaskLinks> links();

/// `v` clamped to the range of std::int32_t.
std::int32_t saturated(std::int64_t v);

/// An expected_attempt near `attempt`: mostly equal, else one or two off either way (and, now and
/// then, something absurd).
rc::Gen<std::int32_t> attempt_near(std::int32_t attempt);

/// An attempt fence chosen before the attempt it is compared with is known: mostly relative to
/// the task's attempt at the time of the call (equal, or one or two off), sometimes absolute.
struct AttemptFence {
  bool relative = true;
  std::int32_t value = 0;  ///< the offset when relative, else the expected attempt itself
  std::int32_t resolve(std::int32_t attempt) const {
    return relative ? saturated(std::int64_t{attempt} + value) : value;
  }
  bool operator==(const AttemptFence&) const = default;
};
std::ostream& operator<<(std::ostream& os, const AttemptFence& f);
rc::Gen<AttemptFence> attempt_fence();

/// Any mix of fields. `expected_attempt`, when present, is near `attempt` (the task's current one).
rc::Gen<SessionTaskUpdate> update(std::int32_t attempt = 1);

/// A create input; `id` from the pool (or absent), initial state mostly queued.
rc::Gen<CreateSessionTask> create_input();

rc::Gen<TaskMessagePart> message_part();

rc::Gen<std::vector<TaskMessagePart>> message_content();

/// A message; `in_reply_to` from the request-id pool, so it often names the pending request;
/// `expected_attempt`, when present, is near `attempt`.
rc::Gen<NewTaskMessage> new_message(std::int32_t attempt = 1);

/// How far a clock moves between two calls, in microseconds: a forward clock stands still or
/// moves up to 5 s; a clock that jumps back also moves back by up to a day, a third of the time.
rc::Gen<std::int64_t> clock_step(bool jumps_back = false);

/// Clock readings for a sequence of calls, from the fake clock's start.
struct ClockTicks {
  std::vector<Timestamp> ticks;
};
std::ostream& operator<<(std::ostream& os, const ClockTicks& c);

/// `n` readings of a clock that only moves forward (or stands still).
rc::Gen<ClockTicks> forward_clock(int n, bool jumps_back = false);

/// `n` readings of a clock that mostly moves forward but now and then jumps back.
rc::Gen<ClockTicks> jumpy_clock(int n);

}  // namespace taskjournal::testing

// ---- rc::Arbitrary ------------------------------------------------------------------------------

namespace rc {

template <>
struct Arbitrary<taskjournal::SessionTaskState> {
  static Gen<taskjournal::SessionTaskState> arbitrary() { return taskjournal::testing::state(); }
};
template <>
struct Arbitrary<taskjournal::TaskWakePolicy> {
  static Gen<taskjournal::TaskWakePolicy> arbitrary() {
    return taskjournal::testing::wake_policy();
  }
};
template <>
struct Arbitrary<taskjournal::TaskMessageDirection> {
  static Gen<taskjournal::TaskMessageDirection> arbitrary() {
    return taskjournal::testing::direction();
  }
};
template <>
struct Arbitrary<taskjournal::TaskProgress> {
  static Gen<taskjournal::TaskProgress> arbitrary() { return taskjournal::testing::progress(); }
};
template <>
struct Arbitrary<taskjournal::TaskInputRequest> {
  static Gen<taskjournal::TaskInputRequest> arbitrary() {
    return taskjournal::testing::input_request();
  }
};
template <>
struct Arbitrary<taskjournal::TaskError> {
  static Gen<taskjournal::TaskError> arbitrary() { return taskjournal::testing::task_error(); }
};
template <>
struct Arbitrary<taskjournal::TaskArtifact> {
  static Gen<taskjournal::TaskArtifact> arbitrary() { return taskjournal::testing::artifact(); }
};
template <>
struct Arbitrary<taskjournal::TaskLinks> {
  static Gen<taskjournal::TaskLinks> arbitrary() { return taskjournal::testing::links(); }
};
template <>
struct Arbitrary<taskjournal::SessionTaskUpdate> {
  static Gen<taskjournal::SessionTaskUpdate> arbitrary() { return taskjournal::testing::update(1); }
};
template <>
struct Arbitrary<taskjournal::CreateSessionTask> {
  static Gen<taskjournal::CreateSessionTask> arbitrary() {
    return taskjournal::testing::create_input();
  }
};
template <>
struct Arbitrary<taskjournal::TaskMessagePart> {
  static Gen<taskjournal::TaskMessagePart> arbitrary() {
    return taskjournal::testing::message_part();
  }
};
template <>
struct Arbitrary<taskjournal::NewTaskMessage> {
  static Gen<taskjournal::NewTaskMessage> arbitrary() {
    return taskjournal::testing::new_message(1);
  }
};

}  // namespace rc
