// Wakeup: a descriptor another thread can make readable to interrupt the reactor's wait.
// eventfd on Linux (one descriptor, a counter that never fills), a non-blocking pipe elsewhere.
#pragma once

#include "base/unique_fd.hpp"

namespace reactor {

/// Cross-thread wake-up channel. signal() is safe from any thread and never blocks.
class Wakeup {
 public:
  /// Throws std::system_error when the descriptor cannot be created (e.g. EMFILE).
  Wakeup();
  /// The descriptor to watch for readability.
  [[nodiscard]] int handle() const noexcept { return read_.get(); }
  /// Makes handle() readable. Never blocks: a full pipe already means "readable".
  void signal() const noexcept;
  /// Consumes every pending signal() so handle() is no longer readable.
  void drain() const noexcept;

 private:
  UniqueFd read_;
  UniqueFd write_;  // empty with eventfd: read_ serves both ends
};

}  // namespace reactor
