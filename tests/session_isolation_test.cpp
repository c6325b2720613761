// Session isolation as a security property (issue 5, item 6): no call made with session A can
// read, change, cancel, message or list anything of session B's, nor learn whether a task id
// exists there. The property compares two registries that differ only in B's task X (present in
// the first, absent from the second): every call with session A on X — reads, updates, cancels,
// messages, lists, history, valid and invalid input — must give identical answers in both,
// values, nullopt, error codes and error messages alike; the one documented difference is
// create's Conflict (CONTRACT §4). And no call with A, on X or on A's own tasks, changes anything
// B sees.
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "support/fake_clock.hpp"
#include "support/generators.hpp"
#include "support/journals.hpp"
#include "support/processes.hpp"
#include "taskjournal/taskjournal.hpp"

using namespace taskjournal;
using namespace taskjournal::testing;

namespace {

const std::string kB = "sess-b";

// Everything a caller can observe of one call: its value or its error, as text.
template <class F>
std::string answer(F&& call) {
  try {
    return call();
  } catch (const Error& e) {
    return "error " + std::string(to_string(e.code())) + ": " + e.what();
  }
}
std::string show(const std::optional<SessionTask>& t) { return t ? to_json(*t) : "nullopt"; }
std::string show(const SessionTask& t) { return to_json(t); }
std::string show(const TaskMessage& m) { return to_json(m); }
template <class T>
std::string show(const std::vector<T>& v) {
  std::string out = "[";
  for (const auto& x : v) out += show(x) + ",";
  return out + "]";
}
std::string show(const std::vector<JournalEntry>& v) {
  std::string out = "[";
  for (const auto& e : v) out += std::to_string(e.seq) + " " + e.type + " " + e.payload + ",";
  return out + "]";
}

// Invalid input of every kind the registry checks, for the probes.
const std::string kBadUtf8 = "bad \xc3\x28 utf-8";

}  // namespace

RC_GTEST_PROP(SessionIsolation, CallsWithSessionANeverTellWhetherBsTaskExistsNorChangeB, ()) {
  // A: another session, or one that is nearly B's name.
  const std::string a = *rc::gen::element<std::string>("sess-a", "", "sess-b ", "SESS-B",
                                                       "sess-\xc3\xa9", "sess-b\n", "sess");
  const std::string x = *rc::gen::element<std::string>("x", "task-x", "t\xc3\xa4sk", "task_0");

  FakeClock clock1, clock2;
  auto with_x = open_registry(fresh_journal(), Options{.clock = clock1.fn()});
  auto without_x = open_registry(fresh_journal(), Options{.clock = clock2.fn()});

  // What both have: a task of A's (when A is a valid session) and another task of B's.
  for (Registry* r : {&with_x, &without_x}) {
    if (!a.empty()) r->create({.session_id = a, .id = "a-own", .kind = "k"});
    r->create({.session_id = kB, .id = "b-other", .kind = "k"});
    r->record_message(kB, "b-other", NewTaskMessage::outbound_text("other"));
  }
  // B's task X, with a history of its own, in the first registry only.
  auto input = *create_input();
  input.session_id = kB;
  input.id = x;
  with_x.create(input);
  std::vector<std::string> b_message_ids;
  const int b_ops = *rc::gen::inRange(0, 8);
  for (int i = 0; i < b_ops; ++i) {
    const auto task = with_x.get(kB, x);
    RC_ASSERT(task.has_value());
    switch (*rc::gen::inRange(0, 3)) {
      case 0:
        try {
          with_x.update(kB, x, *taskjournal::testing::update(task->attempt));
        } catch (const Error& e) {
          RC_ASSERT(e.code() == ErrorCode::InvalidArgument);  // e.g. a heartbeat out of range
        }
        break;
      case 1:
        with_x.request_cancel(kB, x);
        break;
      default: {
        auto m = *new_message(task->attempt);
        if (task->input_request && *rc::gen::arbitrary<bool>()) {
          m.in_reply_to = task->input_request->id;
        }
        try {
          b_message_ids.push_back(with_x.record_message(kB, x, m).id);
        } catch (const Error& e) {
          RC_ASSERT(e.code() == ErrorCode::StaleAttempt);
        }
      }
    }
  }
  b_message_ids.push_back("tmsg_unknown");
  const std::vector<std::string> all{kB};
  const std::string b_before = dump_sessions(with_x, all);

  const int probes = *rc::gen::inRange(1, 12);
  for (int i = 0; i < probes; ++i) {
    const auto seq1 = with_x.last_seq();
    const auto seq2 = without_x.last_seq();
    const int probe = *rc::gen::inRange(0, 13);
    std::string r1, r2;
    auto both = [&](auto&& call) {
      r1 = answer([&] { return call(with_x); });
      r2 = answer([&] { return call(without_x); });
    };
    bool writes_nothing = true;
    switch (probe) {
      case 0:
        both([&](Registry& r) { return show(r.get(a, x)); });
        break;
      case 1: {
        const auto u = *taskjournal::testing::update(*rc::gen::inRange(-1, 4));
        both([&](Registry& r) { return show(r.update(a, x, u)); });
        break;
      }
      case 2:
        both([&](Registry& r) { return show(r.request_cancel(a, x)); });
        break;
      case 3: {
        auto m = *new_message(*rc::gen::inRange(-1, 4));
        if (*rc::gen::arbitrary<bool>()) m.in_reply_to = *request_id();
        both([&](Registry& r) { return show(r.record_message(a, x, m)); });
        break;
      }
      case 4: {
        const auto limit = *opt(rc::gen::inRange<std::uint32_t>(0, 5));
        const auto after = *opt(rc::gen::elementOf(b_message_ids));
        both([&](Registry& r) {
          return show(after ? r.list_messages(a, x, limit, std::string_view(*after))
                            : r.list_messages(a, x, limit));
        });
        break;
      }
      case 5:
        both([&](Registry& r) { return show(r.history(a, x)); });
        break;
      case 6: {
        const SessionTaskFilter filter{.kind = *opt(kind()), .state = *opt(state())};
        both([&](Registry& r) { return show(r.list(a, filter)); });
        break;
      }
      case 7:  // invalid input: rejected the same way whether X exists or not
        both([&](Registry& r) { return show(r.update(a, x, {.summary = kBadUtf8})); });
        break;
      case 8:
        both([&](Registry& r) {
          return show(r.record_message(a, x, NewTaskMessage::outbound_text(kBadUtf8)));
        });
        break;
      case 9:
        both([&](Registry& r) {
          return show(r.record_message(a, x, {.content = {DataPart{"{nope"}}}));
        });
        break;
      case 10:
        both([&](Registry& r) {
          return show(r.update(a, x, {.expected_attempt = 1, .increment_attempt = true}));
        });
        break;
      case 11: {
        // A's own task, with references to B's ids: may write, never touches B.
        writes_nothing = false;
        if (a.empty()) break;
        const auto after = *rc::gen::elementOf(b_message_ids);
        for (Registry* r : {&with_x, &without_x}) {  // the same writes in both
          RC_ASSERT(r->list_messages(a, "a-own", std::nullopt, std::string_view(after)).empty());
          r->record_message(a, "a-own", {.content = {TextPart{x}}, .in_reply_to = after});
          r->update(a, "a-own",
                    {.links = TaskLinks{
                         .child_session_id = kB, .remote_task_id = x, .resource_ids = {x}}});
          r->request_cancel(a, "a-own");
        }
        break;
      }
      default: {
        // create with X's id: the documented difference (Conflict only where X exists in B).
        writes_nothing = false;
        if (a.empty()) break;
        const std::string conflict =
            answer([&] { return show(with_x.create({.session_id = a, .id = x, .kind = "k"})); });
        RC_ASSERT(conflict ==
                  "error conflict: task id " + x + " already exists under a different session");
        RC_ASSERT(with_x.last_seq() == seq1);
        break;
      }
    }
    RC_ASSERT(r1 == r2);
    if (writes_nothing) {
      RC_ASSERT(with_x.last_seq() == seq1);
      RC_ASSERT(without_x.last_seq() == seq2);
    }
    RC_ASSERT(dump_sessions(with_x, all) == b_before);
  }
}

TEST(SessionIsolation, EveryCallOnAForeignTaskAnswersAsForAMissingOne) {
  // The table of the property, written out once: B's task "x" seen from session "a".
  auto r = open_registry(fresh_journal());
  r.create({.session_id = "b", .id = "x", .kind = "k"});
  r.update("b", "x", {.input_request = TaskInputRequest{.id = "q", .prompt = "?"}});
  const auto m = r.record_message("b", "x", NewTaskMessage::outbound_text("secret"));
  const auto seq = r.last_seq();
  for (const std::string id : {"x", "missing"}) {
    SCOPED_TRACE(id);
    EXPECT_EQ(r.get("a", id), std::nullopt);
    EXPECT_EQ(r.update("a", id, {.state = SessionTaskState::Canceled}), std::nullopt);
    EXPECT_EQ(r.request_cancel("a", id), std::nullopt);
    EXPECT_TRUE(r.list_messages("a", id).empty());
    EXPECT_TRUE(r.list_messages("a", id, 1, std::string_view(m.id)).empty());
    EXPECT_TRUE(r.history("a", id).empty());
    EXPECT_TRUE(r.list("a").empty());
    EXPECT_EQ(answer([&] {
                return show(r.record_message(
                    "a", id, {.content = {TextPart{"answer"}}, .in_reply_to = std::string("q")}));
              }),
              "error not_found: no task " + id + " in session a");
    EXPECT_EQ(answer([&] { return show(r.record_message("a", id, {.expected_attempt = 1})); }),
              "error not_found: no task " + id + " in session a");
  }
  EXPECT_EQ(r.last_seq(), seq);
  EXPECT_EQ(r.get("b", "x")->state, SessionTaskState::AwaitingInput);
  EXPECT_EQ(r.list_messages("b", "x").size(), 1u);
}
