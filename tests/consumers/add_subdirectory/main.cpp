// A minimal taskjournal program: exits with 0 only if a task it created reads back succeeded.
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
    std::cout << "taskjournal " << tj::kVersion << ": " << tj::to_json(*stored) << "\n";
    return 0;
  } catch (const tj::Error& e) {
    std::cerr << "consumer: " << e.what() << "\n";
    return 1;
  }
}
