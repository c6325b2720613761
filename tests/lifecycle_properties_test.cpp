// Properties of apply_task_update (CONTRACT §3), one RC_GTEST_PROP per rule (issue 3, item 2).
//
// Every property walks one task through a generated sequence of updates: a CreateSessionTask,
// then up to 15 calls, each an update (any mix of fields, expected_attempt near the attempt the
// task has at that moment) and how far the clock moved. A failing case prints the shrunk walk.
// Case counts: RC_PARAMS (ctest passes TASKJOURNAL_RC_PARAMS).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "support/fake_clock.hpp"
#include "support/generators.hpp"
#include "taskjournal/taskjournal.hpp"

namespace tj = taskjournal;
namespace tjt = taskjournal::testing;
using tj::SessionTask;
using tj::SessionTaskState;
using tj::SessionTaskUpdate;
using tj::Timestamp;

namespace {

/// One call of apply_task_update: the update, its attempt fence (relative to the attempt the task
/// has when the call is made), and how far the clock moved before it. Calls are generated as one
/// list, so shrinking can drop any of them.
struct Call {
  SessionTaskUpdate update;  // expected_attempt comes from `fence`
  std::optional<tjt::AttemptFence> fence;
  std::int64_t advance_us = 0;
};

std::ostream& operator<<(std::ostream& os, const Call& c) {
  os << "apply " << c.update;
  if (c.fence) os << " with " << *c.fence;
  return os << " after " << c.advance_us << "us";
}

/// Whether the generated task already carries cancel_requested_at (and when).
struct CancelRequested {
  std::optional<Timestamp> at;
};

std::ostream& operator<<(std::ostream& os, const CancelRequested& c) {
  os << "cancel_requested_at = ";
  tj::print_detail::value(os, c.at);
  return os;
}

struct Step {
  SessionTaskUpdate update;
  Timestamp at;
  SessionTask before;
  SessionTask after;
};

struct Walk {
  SessionTask initial;
  std::vector<Step> steps;
};

enum class ClockKind { Forward, JumpsBack };

struct WalkOptions {
  ClockKind clock = ClockKind::Forward;
  bool distinct_resource_ids = false;   ///< the created task starts without duplicate resource ids
  bool maybe_cancel_requested = false;  ///< the task may already carry cancel_requested_at
};

/// Generates a task and walks it through a list of calls (up to the size, 100 by default),
/// recording every step; the steps are logged for the counterexample.
Walk walk(const WalkOptions& options = {}) {
  tj::CreateSessionTask input = *tjt::create_input();
  if (!input.id) input.id = "t1";
  if (options.distinct_resource_ids) {
    auto& ids = input.links.resource_ids;
    std::vector<std::string> distinct;
    for (const auto& id : ids) {
      if (std::find(distinct.begin(), distinct.end(), id) == distinct.end()) distinct.push_back(id);
    }
    ids = distinct;
  }
  Timestamp now = tjt::fake_clock_start();
  Walk w{tj::new_session_task(input, now), {}};
  if (options.maybe_cancel_requested) {
    const CancelRequested cancel = *rc::gen::build<CancelRequested>(
        rc::gen::set(&CancelRequested::at, tjt::opt(tjt::timestamp())));
    w.initial.cancel_requested_at = cancel.at;
  }
  const auto calls = *rc::gen::container<std::vector<Call>>(rc::gen::build<Call>(
      rc::gen::set(&Call::update, rc::gen::map(tjt::update(),
                                               [](SessionTaskUpdate u) {
                                                 u.expected_attempt.reset();
                                                 return u;
                                               })),
      rc::gen::set(&Call::fence, tjt::opt(tjt::attempt_fence(), 30)),
      rc::gen::set(&Call::advance_us, tjt::clock_step(options.clock == ClockKind::JumpsBack))));
  RC_LOG() << "created: " << w.initial << "\n";
  SessionTask task = w.initial;
  for (const auto& call : calls) {
    now += std::chrono::microseconds{call.advance_us};
    SessionTaskUpdate update = call.update;
    if (call.fence) update.expected_attempt = call.fence->resolve(task.attempt);
    Step s{update, now, task, task};
    tj::apply_task_update(s.after, update, now);
    task = s.after;
    RC_LOG() << "apply " << update << " at " << tjt::print_time(now) << "\n  -> " << task << "\n";
    w.steps.push_back(std::move(s));
  }
  return w;
}

bool fenced(const SessionTask& before, const SessionTaskUpdate& u) {
  return u.expected_attempt && *u.expected_attempt != before.attempt;
}

bool asks_terminal_for_other_state(const SessionTask& before, const SessionTaskUpdate& u) {
  return tj::is_terminal(before.state) && u.state && *u.state != before.state;
}

/// Rules 1 and 2 let the update through.
bool survives(const SessionTask& before, const SessionTaskUpdate& u) {
  return !fenced(before, u) && !asks_terminal_for_other_state(before, u);
}

bool has_duplicates(const std::vector<std::string>& ids) {
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (std::find(ids.begin() + static_cast<std::ptrdiff_t>(i) + 1, ids.end(), ids[i]) !=
        ids.end()) {
      return true;
    }
  }
  return false;
}

/// Labels of the interesting situations a walk went through, reported once per case (RC_TAG), so
/// the distribution printed on success shows that the generators reach them.
class Tally {
 public:
  void see(bool condition, const char* label) {
    if (condition && std::find(labels_.begin(), labels_.end(), label) == labels_.end()) {
      labels_.push_back(label);
    }
  }
  void report() const {
    for (const auto* label : labels_) RC_TAG(std::string(label));
  }

 private:
  std::vector<const char*> labels_;
};

}  // namespace

// Rule 2: a terminal state is final; asking a terminal task for another state changes nothing.
RC_GTEST_PROP(ApplyTaskUpdateProps, TerminalStateIsFinal, ()) {
  const Walk w = walk();
  Tally tally;
  for (const auto& s : w.steps) {
    if (!tj::is_terminal(s.before.state)) continue;
    tally.see(asks_terminal_for_other_state(s.before, s.update), "terminal task asked to move");
    TJ_RC_ASSERT_EQ(s.after.state, s.before.state);
    if (s.update.state && *s.update.state != s.before.state) TJ_RC_ASSERT_EQ(s.after, s.before);
  }
  tally.report();
}

// Rule 5: leaving queued stamps started_at once; it is never cleared or changed afterwards, and it
// is set exactly when the task has ever been out of queued.
RC_GTEST_PROP(ApplyTaskUpdateProps, StartedAtIsStampedOnceWhenLeavingQueued, ()) {
  const Walk w = walk();
  Tally tally;
  bool ever_left_queued = w.initial.state != SessionTaskState::Queued;
  TJ_RC_ASSERT_EQ(w.initial.started_at.has_value(), ever_left_queued);
  if (w.initial.started_at) TJ_RC_ASSERT_EQ(*w.initial.started_at, w.initial.created_at);
  for (const auto& s : w.steps) {
    tally.see(s.before.started_at && s.after.state == SessionTaskState::Queued, "re-queued");
    ever_left_queued = ever_left_queued || s.after.state != SessionTaskState::Queued;
    TJ_RC_ASSERT_EQ(s.after.started_at.has_value(), ever_left_queued);
    if (s.before.started_at) {
      TJ_RC_ASSERT_EQ(s.after.started_at, s.before.started_at);
    } else if (s.after.started_at) {
      TJ_RC_ASSERT_EQ(*s.after.started_at, s.at);
    }
  }
  tally.report();
}

// Rule 5: finished_at is set exactly when the task is terminal, stamped when it got there, and
// never changes after.
RC_GTEST_PROP(ApplyTaskUpdateProps, FinishedAtIsStampedExactlyOnReachingTerminal, ()) {
  const Walk w = walk();
  Tally tally;
  TJ_RC_ASSERT_EQ(w.initial.finished_at.has_value(), tj::is_terminal(w.initial.state));
  for (const auto& s : w.steps) {
    TJ_RC_ASSERT_EQ(s.after.finished_at.has_value(), tj::is_terminal(s.after.state));
    if (s.before.finished_at) {
      TJ_RC_ASSERT_EQ(s.after.finished_at, s.before.finished_at);
    } else if (s.after.finished_at) {
      TJ_RC_ASSERT_EQ(*s.after.finished_at, s.at);
    }
  }
  tally.report();
}

// Rules 4 and 5: input_request is present only in awaiting_input (entering any other state clears
// it), and a surviving request on a live task forces awaiting_input with exactly that request.
RC_GTEST_PROP(ApplyTaskUpdateProps, InputRequestOnlyWhileAwaitingInput, ()) {
  const Walk w = walk();
  Tally tally;
  for (const auto& s : w.steps) {
    if (s.after.input_request) TJ_RC_ASSERT_EQ(s.after.state, SessionTaskState::AwaitingInput);
    tally.see(s.before.input_request && s.after.state != SessionTaskState::AwaitingInput,
              "left awaiting_input");
    if (s.update.input_request && survives(s.before, s.update) &&
        !tj::is_terminal(s.before.state)) {
      TJ_RC_ASSERT_EQ(s.after.state, SessionTaskState::AwaitingInput);
      TJ_RC_ASSERT_EQ(s.after.input_request, s.update.input_request);
    }
  }
  tally.report();
}

// Rule 1: an update whose expected_attempt differs from attempt (lower or higher) leaves the task
// exactly as it was, updated_at included. Checked on the generated updates and, at every step, on
// the same update fenced one below and one above the current attempt.
RC_GTEST_PROP(ApplyTaskUpdateProps, FencedUpdateChangesNothing, ()) {
  const Walk w = walk();
  Tally tally;
  for (const auto& s : w.steps) {
    tally.see(fenced(s.before, s.update), "generated update fenced");
    if (fenced(s.before, s.update)) TJ_RC_ASSERT_EQ(s.after, s.before);
    for (const std::int32_t off : {-1, 1}) {
      SessionTaskUpdate u = s.update;
      u.expected_attempt = s.before.attempt + off;
      SessionTask copy = s.before;
      tj::apply_task_update(copy, u, s.at);
      TJ_RC_ASSERT_EQ(copy, s.before);
    }
  }
  tally.report();
}

// Rule 3: attempt never decreases and grows by exactly one per increment_attempt that survives
// rules 1 and 2.
RC_GTEST_PROP(ApplyTaskUpdateProps, AttemptGrowsByOnePerSurvivingIncrement, ()) {
  const Walk w = walk();
  Tally tally;
  TJ_RC_ASSERT_EQ(w.initial.attempt, 1);
  for (const auto& s : w.steps) {
    const int bump = s.update.increment_attempt && survives(s.before, s.update) ? 1 : 0;
    tally.see(bump == 1, "attempt bumped");
    TJ_RC_ASSERT_EQ(s.after.attempt, s.before.attempt + bump);
  }
  tally.report();
}

// Rule 6: resource ids merge: the old list stays a prefix, each incoming id is appended once in
// order unless present, so a list without duplicates never gets one and never loses an id.
RC_GTEST_PROP(ApplyTaskUpdateProps, ResourceIdsNeverDuplicateNorLose, ()) {
  const Walk w = walk({.distinct_resource_ids = true});
  Tally tally;
  for (const auto& s : w.steps) {
    const auto& before = s.before.links.resource_ids;
    const auto& after = s.after.links.resource_ids;
    tally.see(s.update.links && has_duplicates(s.update.links->resource_ids),
              "incoming duplicates");
    RC_ASSERT(!has_duplicates(after));
    std::vector<std::string> expected = before;
    if (s.update.links && survives(s.before, s.update)) {
      for (const auto& id : s.update.links->resource_ids) {
        if (std::find(expected.begin(), expected.end(), id) == expected.end()) {
          expected.push_back(id);
        }
      }
    }
    TJ_RC_ASSERT_EQ(after, expected);
  }
  tally.report();
}

// §3: id, session_id, kind, display_name, spec, wake_policy, created_at and cancel_requested_at
// never change; updated_at is the time of the last update that survived rules 1 and 2 (or
// created_at), also with a clock that jumps backwards.
RC_GTEST_PROP(ApplyTaskUpdateProps, IdentityNeverChangesAndUpdatedAtIsLastSurvivingTime, ()) {
  const Walk w = walk({.clock = ClockKind::JumpsBack, .maybe_cancel_requested = true});
  Tally tally;
  const SessionTask& t0 = w.initial;
  Timestamp last = t0.created_at;
  TJ_RC_ASSERT_EQ(t0.updated_at, t0.created_at);
  for (const auto& s : w.steps) {
    const SessionTask& t = s.after;
    TJ_RC_ASSERT_EQ(t.id, t0.id);
    TJ_RC_ASSERT_EQ(t.session_id, t0.session_id);
    TJ_RC_ASSERT_EQ(t.kind, t0.kind);
    TJ_RC_ASSERT_EQ(t.display_name, t0.display_name);
    TJ_RC_ASSERT_EQ(t.spec, t0.spec);
    TJ_RC_ASSERT_EQ(t.wake_policy, t0.wake_policy);
    TJ_RC_ASSERT_EQ(t.created_at, t0.created_at);
    TJ_RC_ASSERT_EQ(t.cancel_requested_at, t0.cancel_requested_at);
    tally.see(s.at < s.before.updated_at, "clock went back");
    if (survives(s.before, s.update)) last = s.at;
    TJ_RC_ASSERT_EQ(t.updated_at, last);
  }
  tally.report();
}
