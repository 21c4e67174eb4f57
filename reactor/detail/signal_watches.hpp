// SignalWatches: the (signal, handler) pairs one dispatcher delivers, and the self-pipe through
// which signal_router hands it their signals. Reactor and ThreadPoolReactor share it; it is not
// thread-safe (each owner guards it in its own way) and never calls a handler itself.
#pragma once

#include <array>
#include <system_error>
#include <vector>

#include "base/event_handler.hpp"
#include "base/unique_fd.hpp"

namespace reactor {

/// A dispatcher's signal watches and their self-pipe.
class SignalWatches {
 public:
  /// One handler watching one signal.
  struct Watch {
    /// The signal number.
    int signum;
    /// Whose handle_signal to call.
    EventHandler* handler;
  };
  /// Which signal numbers arrived since the last drain (indexed by number).
  using Arrivals = std::array<bool, 256>;

  SignalWatches() = default;
  /// Stops routing every signal still watched to the pipe (restoring their dispositions).
  ~SignalWatches();
  SignalWatches(const SignalWatches&) = delete;
  SignalWatches& operator=(const SignalWatches&) = delete;

  /// Creates the pipe on first use; `created` tells whether this call made it (the owner then
  /// watches read_handle()).
  std::error_code open_pipe(bool& created);
  /// Throws the pipe away again (the owner could not watch it).
  void close_pipe() noexcept;
  /// The pipe's read end (-1 before open_pipe).
  [[nodiscard]] int read_handle() const noexcept { return read_.get(); }

  /// Adds a watch, routing `signum` to the pipe on its first watch. errc::already_registered for
  /// a pair already watched; errc::invalid_argument for a signal that cannot be caught.
  std::error_code add(int signum, EventHandler* handler);
  /// Removes a watch, routing `signum` back to its old disposition after its last one. False
  /// when the pair was not watched.
  bool remove(int signum, EventHandler* handler) noexcept;
  /// True when `handler` watches `signum`.
  [[nodiscard]] bool contains(int signum, const EventHandler* handler) const noexcept;
  /// The signals `handler` watches.
  [[nodiscard]] std::vector<int> signals_of(const EventHandler* handler) const;
  /// Every watch, in the order they were added.
  [[nodiscard]] const std::vector<Watch>& watches() const noexcept { return watches_; }

  /// Reads everything in the pipe and marks the signals that arrived (several deliveries of one
  /// signal coalesce, as POSIX signals do).
  void drain(Arrivals& arrived) noexcept;

 private:
  std::vector<Watch> watches_;
  UniqueFd read_;
  UniqueFd write_;
};

}  // namespace reactor
