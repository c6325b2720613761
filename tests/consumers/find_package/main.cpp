// A minimal taskjournal program: exits with 0 only if a task it created reads back succeeded and
// an Error the library throws is caught by its type. Also built through pkg-config
// (tests/cmake/pkg_config_consumer.cmake).
#include <iostream>

#include <taskjournal/taskjournal.hpp>

int main() {
  namespace tj = taskjournal;
  try {
    auto registry = tj::Registry::open(":memory:");
    const tj::SessionTask task = registry.create({.session_id = "sess_consumer",
                                                  .kind = "background_tool",
                                                  .display_name = "consumer check"});
    registry.update("sess_consumer", task.id,
                    {.state = tj::SessionTaskState::Succeeded, .summary = "done"});
    const auto stored = registry.get("sess_consumer", task.id);
    if (!stored || stored->state != tj::SessionTaskState::Succeeded) {
      std::cerr << "consumer: task " << task.id << " is not succeeded\n";
      return 1;
    }
    // An Error thrown inside the library is caught here by its type: with a shared
    // libtaskjournal, its RTTI must be exported.
    try {
      registry.create({.session_id = "", .kind = "background_tool"});
      std::cerr << "consumer: create without a session id did not throw\n";
      return 1;
    } catch (const tj::Error& e) {
      if (e.code() != tj::ErrorCode::InvalidArgument) {
        std::cerr << "consumer: create without a session id threw " << tj::to_string(e.code())
                  << ", not invalid_argument\n";
        return 1;
      }
    }
    if (tj::parse_session_task_state(tj::to_string(stored->state)) != stored->state ||
        !tj::is_terminal(stored->state)) {
      std::cerr << "consumer: state " << tj::to_string(stored->state) << " does not round-trip\n";
      return 1;
    }
    std::cout << "taskjournal " << tj::kVersion << ": " << tj::to_json(*stored) << "\n";
    return 0;
  } catch (const tj::Error& e) {
    std::cerr << "consumer: " << e.what() << "\n";
    return 1;
  }
}
