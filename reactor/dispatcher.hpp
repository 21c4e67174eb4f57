// Dispatcher: the interface of a reactor, as handlers and services see it: register and remove
// handlers, timers, cross-thread notify and post, signals, suspend/resume, the event loop and its
// counters. Two implementations: Reactor (one thread, reactor/reactor.hpp) and ThreadPoolReactor
// (leader/followers, reactor/thread_pool_reactor.hpp). The reusable handlers (Acceptor,
// Connector, StreamHandler, DatagramHandler) take a Dispatcher&, so a service written once runs
// on either; each implementation's header says which members any thread may call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <system_error>

#include "base/error.hpp"
#include "base/event_handler.hpp"
#include "base/event_mask.hpp"
#include "base/result.hpp"
#include "base/types.hpp"
#include "demux/demultiplexer.hpp"

namespace reactor {

/// Counters of one reactor, read with Dispatcher::stats(). Cheap enough to be always on: plain
/// counters on the single-threaded Reactor, updated under its lock on the ThreadPoolReactor.
struct ReactorStats {
  /// The backend the reactor blocks in.
  Backend backend = Backend::best;
  /// handle_events calls that reached the demultiplexer.
  std::uint64_t iterations = 0;
  /// Every hook called: I/O, timers, signals and notifications.
  std::uint64_t hooks_called = 0;
  /// handle_input calls for ready handles.
  std::uint64_t input_events = 0;
  /// handle_output calls for ready handles.
  std::uint64_t output_events = 0;
  /// handle_exception calls for ready handles.
  std::uint64_t exception_events = 0;
  /// handle_timeout calls.
  std::uint64_t timers_fired = 0;
  /// handle_signal calls.
  std::uint64_t signals_delivered = 0;
  /// notify() hooks and post() callables run.
  std::uint64_t notifications_run = 0;
  /// Time spent inside the demultiplexer's wait.
  Duration time_blocked{};
  /// Time spent dispatching (hooks, timers, notifications) after the waits.
  Duration time_dispatching{};
  /// The longest single dispatch pass: how late the loop can be for its next event.
  Duration longest_dispatch{};
  /// I/O registrations made by the application.
  std::size_t handles_registered = 0;
  /// Pending timers.
  std::size_t timers_pending = 0;
  /// notify / post items not yet run.
  std::size_t notifications_queued = 0;

  /// Share of measured time spent dispatching rather than blocked (0 when nothing measured).
  [[nodiscard]] double busy_ratio() const noexcept {
    const auto total = time_blocked + time_dispatching;
    return total.count() > 0
               ? static_cast<double>(time_dispatching.count()) / static_cast<double>(total.count())
               : 0.0;
  }
};

/// Writes the counters on one line (for logs and --stats output).
std::ostream& operator<<(std::ostream& os, const ReactorStats& stats);

/// The dynamic type of `handler`, demangled (for dump()).
std::string handler_type_name(const EventHandler& handler);
/// `m`'s I/O bits as "read|write" ("none" when empty), for dump().
std::string event_mask_name(EventMask m);

/// The Initiation Dispatcher's interface. The semantics of every member are Reactor's (see
/// reactor/reactor.hpp); ThreadPoolReactor adds only what running hooks on several threads needs.
class Dispatcher {
 public:
  virtual ~Dispatcher() = default;
  Dispatcher() = default;
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  /// The backend chosen at construction.
  [[nodiscard]] virtual Backend backend() const noexcept = 0;

  // ---- I/O registrations -------------------------------------------------------------------

  /// Registers `handler` for `mask` on handler->get_handle().
  virtual std::error_code register_handler(EventHandler* handler, EventMask mask) = 0;
  /// Registers `handler` for `mask` on `handle` (one registration per handle).
  virtual std::error_code register_handler(Handle handle, EventHandler* handler,
                                           EventMask mask) = 0;
  /// Removes `mask` from the registration of handler->get_handle(), then calls handle_close
  /// unless `hook` is CloseHook::skip.
  virtual std::error_code remove_handler(EventHandler* handler, EventMask mask, CloseHook hook) = 0;
  /// As above, by handle.
  virtual std::error_code remove_handler(Handle handle, EventMask mask, CloseHook hook) = 0;
  /// remove_handler(handler, mask, CloseHook::call); everything by default.
  std::error_code remove_handler(EventHandler* handler, EventMask mask = EventMask::all_io) {
    return remove_handler(handler, mask, CloseHook::call);
  }
  /// remove_handler(handle, mask, CloseHook::call); everything by default.
  std::error_code remove_handler(Handle handle, EventMask mask = EventMask::all_io) {
    return remove_handler(handle, mask, CloseHook::call);
  }
  /// Replaces the interest of a registered handle (none keeps it registered but silent).
  virtual std::error_code set_interest(Handle handle, EventMask mask) = 0;
  /// Adds `mask` to the interest of a registered handle.
  virtual std::error_code add_interest(Handle handle, EventMask mask) = 0;
  /// Removes `mask` from the interest of a registered handle; never calls handle_close.
  virtual std::error_code clear_interest(Handle handle, EventMask mask) = 0;
  /// The interest of `handle` (none when not registered).
  [[nodiscard]] virtual EventMask interest(Handle handle) const = 0;
  /// The handler registered on `handle`, or nullptr.
  [[nodiscard]] virtual EventHandler* handler(Handle handle) const = 0;
  /// Number of I/O registrations made by the application.
  [[nodiscard]] virtual std::size_t handler_count() const = 0;
  /// Stops dispatching events of `handle` until resume_handler (timers still fire).
  virtual std::error_code suspend_handler(Handle handle) = 0;
  /// By handler->get_handle().
  virtual std::error_code suspend_handler(EventHandler* handler) = 0;
  /// Resumes a suspended handle.
  virtual std::error_code resume_handler(Handle handle) = 0;
  /// By handler->get_handle().
  virtual std::error_code resume_handler(EventHandler* handler) = 0;
  /// True while `handle` is registered and suspended.
  [[nodiscard]] virtual bool is_suspended(Handle handle) const = 0;

  // ---- timers ------------------------------------------------------------------------------

  /// Calls handler->handle_timeout(now, arg) after `delay`, then every `interval` if positive.
  /// At the edges of Duration's range (both reactors alike): a negative delay or interval is
  /// errc::invalid_argument; zero is due at once (at the next turn of the loop). Due times
  /// saturate (deadline_after): a delay or next expiry past the end of the clock's range
  /// (forever, Duration::max(), TimePoint::max() - now or more) is due at TimePoint::max(),
  /// which the clock never reaches. Such a timer never fires but stays pending, counted by
  /// timer_count() and cancellable; an interval of forever fires once, after `delay`, then never.
  virtual Result<TimerId> schedule_timer(EventHandler* handler, const void* arg, Duration delay,
                                         Duration interval) = 0;
  /// One-shot: schedule_timer(handler, arg, delay, zero).
  Result<TimerId> schedule_timer(EventHandler* handler, const void* arg, Duration delay) {
    return schedule_timer(handler, arg, delay, Duration::zero());
  }
  /// Cancels a pending timer.
  virtual std::error_code cancel_timer(TimerId id) = 0;
  /// Cancels every timer of `handler`; returns how many.
  virtual std::size_t cancel_timers(EventHandler* handler) = 0;
  /// Changes the interval of a timer from its next expiry on (zero makes it one-shot). Negative:
  /// errc::invalid_argument (checked before the id); past the end of the clock's range: the
  /// expiry after the next one never comes (see schedule_timer).
  virtual std::error_code reset_timer_interval(TimerId id, Duration interval) = 0;
  /// Number of pending timers.
  [[nodiscard]] virtual std::size_t timer_count() const = 0;

  // ---- cross-thread ------------------------------------------------------------------------

  /// Any thread: calls the hooks of `mask` on a loop thread with invalid_handle, once per call.
  virtual std::error_code notify(EventHandler* handler, EventMask mask) = 0;
  /// notify(handler, EventMask::read).
  std::error_code notify(EventHandler* handler) { return notify(handler, EventMask::read); }
  /// Any thread: runs `work` on a loop thread.
  virtual std::error_code post(std::function<void()> work) = 0;
  /// Withdraws pending notify() calls aimed at `handler`; returns how many.
  virtual std::size_t purge_notifications(EventHandler* handler) = 0;

  // ---- signals -----------------------------------------------------------------------------

  /// Calls handler->handle_signal(signum) from the loop whenever `signum` is delivered.
  virtual std::error_code register_signal(int signum, EventHandler* handler) = 0;
  /// Stops delivering `signum` to `handler`.
  virtual std::error_code remove_signal(int signum, EventHandler* handler) = 0;

  // ---- the loop ----------------------------------------------------------------------------

  /// Waits at most `timeout` for events, then dispatches what is ready; returns how many hooks
  /// were called. Zero or negative: polls without blocking. forever, or any timeout reaching past
  /// the end of the clock's range: waits without limit.
  virtual Result<std::size_t> handle_events(Duration timeout) = 0;
  /// handle_events(forever).
  Result<std::size_t> handle_events() { return handle_events(forever); }
  /// Runs the loop until end_event_loop is called or an error occurs (returned).
  virtual std::error_code run_event_loop() = 0;
  /// Any thread, any time: makes run_event_loop return after the current iteration.
  virtual void end_event_loop() noexcept = 0;
  /// True after end_event_loop until run_event_loop has returned.
  [[nodiscard]] virtual bool event_loop_done() const noexcept = 0;

  // ---- introspection ----------------------------------------------------------------------

  /// A snapshot of the counters.
  [[nodiscard]] virtual ReactorStats stats() const = 0;
  /// Writes the counters, then one line per registered handle.
  virtual void dump(std::ostream& os) const = 0;
};

}  // namespace reactor
