// Reactor: the Initiation Dispatcher. Handlers register for events on handles; the reactor blocks
// in one demultiplexer and calls their hooks when events arrive. Also timers, cross-thread notify
// and post, signals, suspend/resume, and the event loop. Including this header brings in the
// core API: EventHandler, EventMask, the error codes, Result and the backends' names.
//
// Threads: every member must be called on the thread that runs the loop, except notify(), post()
// and end_event_loop(), which any thread may call at any time.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <system_error>
#include <utility>
#include <vector>

#include "base/error.hpp"
#include "base/event_handler.hpp"
#include "base/event_mask.hpp"
#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "demux/demultiplexer.hpp"
#include "reactor/dispatcher.hpp"

namespace reactor {
namespace detail {
class DispatchCore;
}  // namespace detail

/// Construction-time settings of a Reactor.
struct ReactorOptions {
  /// Which demultiplexer to block in; `best` honours REACTOR_BACKEND, then prefers epoll.
  Backend backend = Backend::best;
  /// Most ready handles taken from one wait (the rest are reported by the next one).
  std::size_t max_events_per_wait = 256;
  /// Most notify/post items run per loop iteration, so a flood cannot starve I/O.
  std::size_t max_notifications_per_iteration = 1024;
  /// Measure time blocked vs dispatching (two clock reads per iteration, vDSO, no syscall).
  bool collect_timing = true;
};

/// The event dispatcher. Non-copyable, non-movable: handlers and timers point at it.
class Reactor final : public Dispatcher, private HandlerRegistry {
 public:
  /// Throws std::system_error when the backend or the wake-up descriptor cannot be created
  /// (errc::unknown_backend for a bad REACTOR_BACKEND, errc::backend_unavailable, EMFILE...).
  explicit Reactor(Backend backend = Backend::best);
  /// As above, with every option.
  explicit Reactor(const ReactorOptions& options);
  /// Blocks in `demux`, a backend made by the caller (options.backend is ignored). This is how
  /// tests run the suite on a backend the factory does not build here, e.g. emulated kqueue.
  Reactor(std::unique_ptr<Demultiplexer> demux, const ReactorOptions& options = {});
  /// Calls handle_close on every handler still registered for I/O (so owners can release
  /// them), drops timers, signals and pending notifications without calling them.
  ~Reactor() override;
  // The interface's shorthands (default masks, one-shot timers, waiting forever).
  using Dispatcher::handle_events;
  using Dispatcher::notify;
  using Dispatcher::remove_handler;
  using Dispatcher::schedule_timer;
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  /// The backend chosen at construction.
  [[nodiscard]] Backend backend() const noexcept override;

  // ---- I/O registrations -------------------------------------------------------------------

  /// Registers `handler` for `mask` on handler->get_handle().
  std::error_code register_handler(EventHandler* handler, EventMask mask) override;
  /// Registers `handler` for `mask` on `handle`. One registration per handle:
  /// errc::already_registered if the handle has one; use add_interest to widen it.
  std::error_code register_handler(Handle handle, EventHandler* handler, EventMask mask) override;
  /// Removes `mask` from the registration of handler->get_handle() and calls
  /// handle_close(handle, removed) unless `hook` is CloseHook::skip. When nothing is left the
  /// registration ends. errc::not_registered if `handler` is not registered there.
  std::error_code remove_handler(EventHandler* handler, EventMask mask, CloseHook hook) override;
  /// As above, by handle.
  std::error_code remove_handler(Handle handle, EventMask mask, CloseHook hook) override;

  /// Replaces the interest of a registered handle (none keeps it registered but silent).
  std::error_code set_interest(Handle handle, EventMask mask) override;
  /// Adds `mask` to the interest of a registered handle.
  std::error_code add_interest(Handle handle, EventMask mask) override;
  /// Removes `mask` from the interest of a registered handle; never calls handle_close.
  std::error_code clear_interest(Handle handle, EventMask mask) override;
  /// The interest of `handle` (none when not registered).
  [[nodiscard]] EventMask interest(Handle handle) const noexcept override;
  /// The handler registered on `handle`, or nullptr.
  [[nodiscard]] EventHandler* handler(Handle handle) const noexcept override;
  /// Number of I/O registrations made by the application.
  [[nodiscard]] std::size_t handler_count() const noexcept override;

  /// Stops dispatching events of `handle` until resume_handler (timers still fire).
  std::error_code suspend_handler(Handle handle) override;
  /// By handler->get_handle().
  std::error_code suspend_handler(EventHandler* handler) override;
  /// Resumes a suspended handle.
  std::error_code resume_handler(Handle handle) override;
  /// By handler->get_handle().
  std::error_code resume_handler(EventHandler* handler) override;
  /// True while `handle` is registered and suspended.
  [[nodiscard]] bool is_suspended(Handle handle) const noexcept override;

  // ---- timers ------------------------------------------------------------------------------

  /// Calls handler->handle_timeout(now, arg) after `delay`, then every `interval` if it is
  /// positive. Returns the timer's id. Negative, zero and huge durations: see Dispatcher.
  Result<TimerId> schedule_timer(EventHandler* handler, const void* arg, Duration delay,
                                 Duration interval) override;
  /// Cancels a pending timer; it will not fire, even if it is due in this very iteration.
  std::error_code cancel_timer(TimerId id) override;
  /// Cancels every timer of `handler`; returns how many.
  std::size_t cancel_timers(EventHandler* handler) override;
  /// Changes the interval of a timer from its next expiry on (zero makes it one-shot; negative:
  /// errc::invalid_argument; huge: see Dispatcher::schedule_timer).
  std::error_code reset_timer_interval(TimerId id, Duration interval) override;
  /// Number of pending timers.
  [[nodiscard]] std::size_t timer_count() const noexcept override;

  // ---- cross-thread ------------------------------------------------------------------------

  /// Any thread: calls the hooks of `mask` (read → handle_input, write → handle_output,
  /// except → handle_exception) on the loop thread with invalid_handle. Never blocks, never
  /// coalesces: each call is delivered once, in order per sender. The hooks' return value is
  /// ignored. The target must stay alive until delivery, or be registered with this reactor
  /// (destroying a registered handler withdraws its notifications).
  std::error_code notify(EventHandler* handler, EventMask mask) override;
  /// Any thread: runs `work` on the loop thread, in order per sender.
  std::error_code post(std::function<void()> work) override;
  /// Loop thread: withdraws pending notify() calls aimed at `handler`; returns how many.
  std::size_t purge_notifications(EventHandler* handler) override;

  // ---- signals -----------------------------------------------------------------------------

  /// Calls handler->handle_signal(signum) from the loop whenever `signum` is delivered to the
  /// process. Several handlers (and reactors) may watch one signal.
  std::error_code register_signal(int signum, EventHandler* handler) override;
  /// Stops delivering `signum` to `handler`.
  std::error_code remove_signal(int signum, EventHandler* handler) override;

  // ---- the loop ----------------------------------------------------------------------------

  /// Waits at most `timeout` for events, then dispatches ready handles, due timers, signals and
  /// a bounded batch of notifications. Returns how many hooks were called. EINTR is retried.
  /// Zero or negative: polls; forever or longer than the clock's range: no limit.
  Result<std::size_t> handle_events(Duration timeout) override;
  /// Runs handle_events until end_event_loop is called or an error occurs (returned).
  std::error_code run_event_loop() override;
  /// Any thread, any time (also before run_event_loop starts): makes run_event_loop return
  /// after the current iteration.
  void end_event_loop() noexcept override;
  // ---- introspection ----------------------------------------------------------------------

  /// A snapshot of the counters (loop thread).
  [[nodiscard]] ReactorStats stats() const override;
  /// Writes the counters, then one line per registered handle: handle, handler type, interest,
  /// suspension and the hooks called for it (loop thread).
  void dump(std::ostream& os) const override;

  /// True after end_event_loop until run_event_loop has returned.
  [[nodiscard]] bool event_loop_done() const noexcept override {
    return stop_.load(std::memory_order_acquire);
  }

 private:
  struct AgainEntry {
    Handle handle;
    std::uint64_t serial;
  };

  void forget_handler(EventHandler& handler) noexcept override;
  void close_removed(Handle handle, EventHandler* handler, EventMask removed);
  void dispatch_ready(const ReadyEvent& event, std::size_t& dispatched);
  void dispatch_io(Handle handle, std::uint64_t serial, EventMask events, std::size_t& dispatched);
  void dispatch_again(std::size_t& dispatched);
  void expire_timers(TimePoint now, std::size_t& dispatched);
  void run_notifications(std::size_t& dispatched);
  void run_signals(std::size_t& dispatched);

  std::unique_ptr<detail::DispatchCore> core_;
  ReactorOptions options_;
  std::vector<AgainEntry> again_;  // handles whose hooks returned > 0, called before blocking
  std::vector<AgainEntry> again_batch_;
  std::atomic<bool> stop_{false};
  bool dispatching_ = false;
};

}  // namespace reactor
