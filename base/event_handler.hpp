// EventHandler: the contract between the Reactor and application code, in the ACE tradition.
// Subclass it, override the hooks for the events you register, and register it with a Reactor.
//
// Return convention of the I/O hooks (handle_input / handle_output / handle_exception):
//   < 0  the reactor removes this handler for that event and calls handle_close(handle, event);
//   = 0  keep the registration as it is;
//   > 0  call this hook again before the reactor next blocks (after other ready handlers had
//        their turn, so one busy handler cannot starve the rest).
// handle_timeout: < 0 cancels that timer (an interval timer stops); handle_close is not called.
// handle_signal:  < 0 removes this handler for that signal; handle_close is not called.
//
// Ownership: the application owns its handlers; the reactor only points at them.
// handle_close is the last call a handler receives for an I/O registration and the natural place
// to release it (even `delete this`). Destroying a handler that is still registered is safe on
// the reactor's thread: its destructor removes every registration, timer, signal and pending
// notification it has, without calling handle_close.
#pragma once

#include <chrono>
#include <cstdint>

#include "base/event_mask.hpp"
#include "base/types.hpp"

namespace reactor {

/// Whether remove_handler calls the handler's handle_close for the events it removes.
enum class CloseHook : bool {
  call,  ///< the usual way: handle_close(handle, removed) follows the removal
  skip,  ///< the caller is tearing the handler down itself and wants no call back
};

class EventHandler;
namespace detail {
class DispatchCore;
}  // namespace detail

/// What a reactor must do when a handler it knows about is destroyed. Implemented by Reactor;
/// the handler keeps a pointer so its destructor can withdraw every registration.
class HandlerRegistry {
 public:
  /// Drops every registration, timer, signal and notification of `handler`, calling no hook.
  virtual void forget_handler(EventHandler& handler) noexcept = 0;

 protected:
  ~HandlerRegistry() = default;
};

/// Base class of everything the reactor dispatches to.
class EventHandler {
 public:
  EventHandler() = default;
  EventHandler(const EventHandler&) = delete;
  EventHandler& operator=(const EventHandler&) = delete;
  /// Withdraws any registration still held (see the ownership note above).
  virtual ~EventHandler();

  /// The handle this handler serves; used by the register/remove overloads without a handle.
  [[nodiscard]] virtual Handle get_handle() const { return invalid_handle; }

  /// `handle` is readable, or a listening socket has a connection (read / accept).
  virtual int handle_input(Handle handle);
  /// `handle` is writable, or a non-blocking connect finished (write / connect).
  virtual int handle_output(Handle handle);
  /// `handle` has out-of-band / priority data (except).
  virtual int handle_exception(Handle handle);
  /// A timer scheduled with `arg` expired; `now` is when the reactor noticed.
  virtual int handle_timeout(TimePoint now, const void* arg);
  /// Signal `signum` was delivered (called from the event loop, never in signal context).
  virtual int handle_signal(int signum);
  /// The registration of `handle` lost the events in `removed` (see the return convention).
  virtual int handle_close(Handle handle, EventMask removed);

 private:
  friend class detail::DispatchCore;     // the one place that counts registrations
  HandlerRegistry* registry_ = nullptr;  // the reactor holding registrations, if any
  std::uint32_t registrations_ = 0;      // I/O registrations + timers + signal subscriptions
};

}  // namespace reactor
