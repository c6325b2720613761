// Model-based test of the Registry with rc::state (issue 3, item 3).
//
// Commands: create (without an id, with a pool id, with the id of an existing task of this or
// another session, with bad input), update, get, list with filters, request_cancel,
// record_message (replies to the pending request, stale fences, unknown and foreign tasks, bad
// input), list_messages (limits and cursors), history, and close-and-reopen. The model
// (support/registry_model.hpp) is a map driven by apply_task_update; after every command the
// registry's answer (value, nothing, or error code) and its last_seq() equal the model's.
// Case counts: RC_PARAMS; a case runs up to max_size + 1 commands on a journal file.
#include "support/registry_model.hpp"

#include <string>

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

namespace tjm = taskjournal::testing::model;

RC_GTEST_PROP(RegistryModelProps, AnswersEqualTheModel, ()) {
  tjm::Sut sut;
  sut.checks = {.writes = true, .notifications = false};
  const tjm::Model m = tjm::run_commands(sut);

  // The final state, seen through list and list_messages, equals the model's.
  const std::string diff = tjm::compare_views(m, sut, 0);
  if (!diff.empty()) RC_FAIL(diff);
}
