// What the registry tells in-process subscribers after a change is durable (docs/contract.md §5).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "taskjournal/export.hpp"
#include "taskjournal/types.hpp"

namespace taskjournal {

enum class TaskTransition { Terminal, AwaitingInput, Message };

/// "terminal", "awaiting_input", "message".
TASKJOURNAL_API std::string_view to_string(TaskTransition transition) noexcept;

/// One notification. `type` is "task.created", "task.updated", "task.message.sent" (inbound) or
/// "task.message.received" (outbound); `seq` is the journal sequence number of the event that
/// caused it. `task` is set for task.* types, `message` for message types.
struct RegistryEvent {
  std::string type;
  std::uint64_t seq = 0;
  std::string session_id;
  std::string task_id;
  std::optional<SessionTask> task;
  std::optional<TaskMessage> message;
  bool operator==(const RegistryEvent&) const = default;
};

/// A wake-up for the task's session, sent by the task's wake policy with docs/contract.md §5's
/// text.
struct WakeNotice {
  std::string session_id;
  std::string task_id;
  TaskTransition transition = TaskTransition::Terminal;
  std::string text;
  bool operator==(const WakeNotice&) const = default;
};

/// A connected subscriber. Move-only; disconnects when destroyed or on disconnect(). It may
/// outlive its Registry (disconnecting is then a no-op). Not safe to use from two threads at once.
class Subscription {
 public:
  Subscription() = default;
  explicit Subscription(std::function<void()> disconnect) : disconnect_(std::move(disconnect)) {}
  Subscription(Subscription&& other) noexcept : disconnect_(std::exchange(other.disconnect_, {})) {}
  Subscription& operator=(Subscription&& other) noexcept {
    if (this != &other) {
      disconnect();
      disconnect_ = std::exchange(other.disconnect_, {});
    }
    return *this;
  }
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  ~Subscription() { disconnect(); }

  /// Stops further calls of the slot; calling it again does nothing. Never throws.
  void disconnect() noexcept {
    if (disconnect_) {
      auto f = std::exchange(disconnect_, {});
      try {
        f();
      } catch (...) {
      }
    }
  }
  /// True until disconnect() (or a move away).
  bool connected() const noexcept { return static_cast<bool>(disconnect_); }

 private:
  std::function<void()> disconnect_;
};

}  // namespace taskjournal
