// DispatchCore: the part of a reactor that Reactor and ThreadPoolReactor share, written once: the
// registration table and its kernel-interest sync, the hook call with its return rules, the
// deadline-aware wait, timers, signal watches, the cross-thread queue, counters and dump().
// What stays in each reactor is only how it runs hooks: inline on one thread, or as jobs on a
// pool (leader/followers). Not thread-safe: Reactor uses it from its loop thread,
// ThreadPoolReactor under its mutex. Internal: not installed.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "base/error.hpp"
#include "base/event_handler.hpp"
#include "base/event_mask.hpp"
#include "base/result.hpp"
#include "base/types.hpp"
#include "demux/demultiplexer.hpp"
#include "reactor/detail/notification_queue.hpp"
#include "reactor/detail/signal_watches.hpp"
#include "reactor/detail/timer_queue.hpp"
#include "reactor/dispatcher.hpp"

namespace reactor::detail {

/// One handle's registration.
struct Registration {
  EventHandler* handler = nullptr;
  EventMask interest = EventMask::none;  // user bits, including accept / connect
  EventMask again = EventMask::none;     // kinds whose hook returned > 0, not yet called again
  std::uint64_t serial = 0;              // 0: free; else unique per registration
  bool suspended = false;
  bool held = false;            // a pool job serves the handle: out of the kernel's interest
  std::uint64_t calls[3] = {};  // hooks called: input, output, exception
};

/// What a removal took away: the owner calls handler->handle_close(handle, removed) after it.
struct Removal {
  EventHandler* handler = nullptr;
  EventMask removed = EventMask::none;
};

/// The read / write / except side of the interest a hook kind serves.
constexpr EventMask side_of(EventMask kind) noexcept {
  return kind == EventMask::read ? read_side : kind == EventMask::write ? write_side : kind;
}

/// Calls the hook of `kind` (read, write or except) on `handler`.
int call_hook(EventHandler& handler, Handle handle, EventMask kind);

/// The shared state and rules of one reactor.
class DispatchCore {
 public:
  /// Blocks in `demux`, or in a new backend of kind `backend` when it is null. `owner` is the
  /// reactor handlers point back to (their destructors call its forget_handler). Throws
  /// std::system_error when the backend or the wake-up descriptor cannot be set up.
  DispatchCore(std::unique_ptr<Demultiplexer> demux, Backend backend, HandlerRegistry& owner,
               std::size_t max_events, std::string_view who);
  /// Detaches the handlers still holding timers or signal watches (without calling them).
  ~DispatchCore();
  DispatchCore(const DispatchCore&) = delete;
  DispatchCore& operator=(const DispatchCore&) = delete;

  [[nodiscard]] Demultiplexer& demux() noexcept { return *demux_; }
  [[nodiscard]] Backend backend() const noexcept { return demux_->kind(); }

  // ---- registrations ------------------------------------------------------------------------

  /// Counts one more registration of `handler` with this reactor.
  std::error_code attach(EventHandler* handler);
  /// Counts one registration less; the handler is free of this reactor after its last one.
  void release(EventHandler* handler) noexcept;
  [[nodiscard]] Registration* find(Handle handle) noexcept;
  [[nodiscard]] const Registration* find(Handle handle) const noexcept;
  /// True while the registration `serial` still holds `handle`.
  [[nodiscard]] bool still_live(Handle handle, std::uint64_t serial) const noexcept;
  /// The handle `handler` is registered on (its get_handle()), or invalid_handle.
  [[nodiscard]] Handle handle_of(const EventHandler* handler) const;
  [[nodiscard]] std::size_t handler_count() const noexcept { return registrations_; }
  /// True while `handler` has a registration, timer or signal watch with this reactor.
  [[nodiscard]] bool holds(const EventHandler& handler) const noexcept {
    return handler.registry_ == &owner_;
  }
  /// The registration that owns a ready event: it existed when the wait began (a descriptor
  /// closed and reopened within one batch never gets its predecessor's event). Null if none.
  [[nodiscard]] Registration* owner_of(Handle handle) noexcept;

  /// register_handler's rules: one registration per handle, the reactor's own descriptors are
  /// taken, a backend refusal is returned and leaves nothing behind.
  std::error_code add(Handle handle, EventHandler* handler, EventMask mask);
  /// remove_handler's rules: the bits of `mask` leave the interest (a silenced registration
  /// leaves whole); the registration ends when nothing is left.
  Result<Removal> remove(Handle handle, EventMask mask);
  /// Takes `bits` out of a live registration, ending it when nothing is left.
  Removal remove_bits(Handle handle, EventMask bits) noexcept;
  /// set_interest's rules: a backend refusal restores the old interest and is returned.
  std::error_code change_interest(Handle handle, EventMask mask);
  /// suspend_handler / resume_handler: a backend refusal restores the old state.
  std::error_code set_suspended(Handle handle, bool suspended);
  /// Every I/O registration of `handler` ends, its timers and signal watches are dropped and
  /// its pending notifications purged; nothing of it is called.
  void forget(EventHandler& handler) noexcept;
  /// Ends every I/O registration, calling `close(handler, handle, removed)` for each.
  template <class Close>
  void remove_all(Close&& close) {
    for (Handle h = 0; h < static_cast<Handle>(table_.size()); ++h) {
      if (find(h) == nullptr) continue;
      const Removal gone = remove_bits(h, EventMask::all_io);
      close(gone.handler, h, gone.removed);
    }
  }

  // ---- the kernel's interest ----------------------------------------------------------------

  /// Brings the backend in line with the registration of `handle` (or its absence); a system
  /// call only when the readiness bits change. While deferring, the change is queued instead.
  std::error_code sync(Handle handle) noexcept;
  /// Defer kernel changes (another thread waits in a backend that only it may touch).
  void set_deferring(bool deferring) noexcept { deferring_ = deferring; }
  [[nodiscard]] bool has_deferred() const noexcept {
    return !deferred_.empty() || signal_pipe_unwatched_;
  }
  /// Applies the queued changes (the waiting thread, after its wait). Counts rounds.
  void apply_deferred() noexcept;
  /// Rounds of apply_deferred() so far (a caller waits for the next one to know its change
  /// reached the kernel).
  [[nodiscard]] std::uint64_t apply_rounds() const noexcept { return apply_rounds_; }
  /// The error the last deferred change of `handle` met, cleared.
  std::error_code take_deferred_error(Handle handle) noexcept;
  /// The backend reports a handle once per arming (EPOLLONESHOT): a reported handle is
  /// disarmed by the kernel itself, and re-arming is one modify. False where unsupported.
  bool use_one_shot() noexcept;
  /// Pool: the registration that owns a reported handle, now held (out of the kernel's
  /// interest until unhold(), so one readiness never becomes two jobs); null when the event has
  /// no owner or its owner is already held.
  Registration* hold_reported(Handle handle) noexcept;
  /// Pool: the job serving a held handle ended; it is watched again.
  void unhold(Handle handle) noexcept;

  // ---- hooks --------------------------------------------------------------------------------

  /// Calls the hooks of `events` on the registration (handle, serial) in the fixed order
  /// (urgent data first, then room to write, then read), each while the registration lives and
  /// still wants it; `invoke(handler, kind)` makes the call (a pool unlocks around it). A hook
  /// returning < 0 loses its side of the interest: `removed(removal)` is called to deliver
  /// handle_close. Returns the kinds whose hook returned > 0 (to be called again).
  template <class Invoke, class Removed>
  EventMask run_hooks(Handle handle, std::uint64_t serial, EventMask events, Invoke&& invoke,
                      Removed&& removed) {
    EventMask again = EventMask::none;
    for (EventMask kind : {EventMask::except, EventMask::write, EventMask::read}) {
      if (!any(events & kind)) continue;
      Registration* r = find(handle);
      if (r == nullptr || r->serial != serial) break;
      const EventMask bits = r->interest & side_of(kind);
      if (!any(bits) || r->suspended || r->handler == nullptr) continue;
      count_call(*r, kind);
      const int rc = invoke(*r->handler, kind);
      // The hook may have removed, re-registered or destroyed anything: look again.
      if (rc == 0 || !still_live(handle, serial)) continue;
      if (rc < 0) {
        removed(remove_bits(handle, bits));
      } else {
        again |= kind;
      }
    }
    return again;
  }

  // ---- the wait -----------------------------------------------------------------------------

  /// Waits at most `limit` (less when a timer is due sooner) and fills ready(). A wait that
  /// returns early with nothing (EINTR, a backend clock coarser than ours) is resumed until
  /// something is ready, a timer is due or the time is up. `blocking(f)` runs the blocking
  /// call f() (a pool unlocks around it). `started` and `woke` tell when the wait began and
  /// ended (one clock read each).
  template <class Blocking>
  std::error_code wait(Duration limit, Blocking&& blocking, TimePoint& started, TimePoint& woke) {
    started = Clock::now();
    const TimePoint deadline = deadline_after(started, std::max(limit, Duration::zero()));
    TimePoint now = started;
    std::error_code ec;
    for (;;) {
      const auto ns = next_wait(deadline, now);
      serial_at_wait_ = next_serial_;
      blocking([&] { ec = demux_->wait(ready_, ns, ready_count_); });
      now = Clock::now();
      if (ec || ready_count_ > 0 || ns.count() == 0 || !wait_again(deadline, now)) break;
    }
    woke = now;
    return ec;
  }
  /// The events the last wait reported.
  [[nodiscard]] std::span<const ReadyEvent> ready() const noexcept {
    return {ready_.data(), ready_count_};
  }
  /// True for the reactor's own descriptors (the wake-up and the signal pipe).
  [[nodiscard]] bool is_wakeup(Handle fd) const noexcept { return fd == notifications_.handle(); }
  [[nodiscard]] bool is_signal_pipe(Handle fd) const noexcept {
    return fd >= 0 && fd == signals_.read_handle();
  }

  // ---- timers -------------------------------------------------------------------------------

  /// schedule_timer's rules; `earliest` tells whether it is now the first timer due.
  Result<TimerId> schedule(EventHandler* handler, const void* arg, Duration delay,
                           Duration interval, bool* earliest = nullptr);
  std::error_code cancel(TimerId id);
  std::size_t cancel_all(EventHandler* handler);
  std::error_code reset_interval(TimerId id, Duration interval);
  /// Ends the firing of a timer popped from timers(): re-queued when `keep` and periodic.
  /// Returns true when it is pending again.
  bool finish_timer(TimerId id, TimePoint now, bool keep) noexcept;
  [[nodiscard]] TimerQueue& timers() noexcept { return timers_; }
  [[nodiscard]] const TimerQueue& timers() const noexcept { return timers_; }

  // ---- signals ------------------------------------------------------------------------------

  std::error_code register_signal(int signum, EventHandler* handler);
  std::error_code remove_signal(int signum, EventHandler* handler);
  /// Drains the signal pipe and lists the watches to call, in signal order (a snapshot: hooks
  /// may change the watches, so re-check with watching() right before each call).
  std::vector<SignalWatches::Watch> arrived_signals();
  [[nodiscard]] bool watching(int signum, const EventHandler* handler) const noexcept {
    return signals_.contains(signum, handler);
  }

  // ---- notify / post ------------------------------------------------------------------------

  std::error_code notify(EventHandler* handler, EventMask mask);
  std::error_code post(std::function<void()> work);
  [[nodiscard]] NotificationQueue& notifications() noexcept { return notifications_; }
  [[nodiscard]] const NotificationQueue& notifications() const noexcept { return notifications_; }

  // ---- counters -----------------------------------------------------------------------------

  [[nodiscard]] ReactorStats& counters() noexcept { return stats_; }
  /// Adds one dispatch pass (a loop iteration's hooks, or one pool job) to the timing counters.
  void count_dispatch(Duration spent) noexcept {
    stats_.time_dispatching += spent;
    stats_.longest_dispatch = std::max(stats_.longest_dispatch, spent);
  }
  /// A snapshot, with the live sizes filled in (`queued`: notifications not yet run).
  [[nodiscard]] ReactorStats stats(std::size_t queued) const;
  /// One line per registered handle.
  void dump_handles(std::ostream& os) const;

 private:
  struct KernelEntry {
    EventMask armed = EventMask::none;  // readiness bits the backend reports now
    bool present = false;               // the backend knows the descriptor
    std::uint64_t serial = 0;           // for which registration
  };

  void count_call(Registration& r, EventMask kind) noexcept;
  std::error_code apply(Handle handle) noexcept;
  std::error_code watch_signal_pipe() noexcept;
  [[nodiscard]] std::chrono::nanoseconds next_wait(TimePoint deadline,
                                                   TimePoint now) const noexcept;
  [[nodiscard]] bool wait_again(TimePoint deadline, TimePoint now) const noexcept;

  std::unique_ptr<Demultiplexer> demux_;
  HandlerRegistry& owner_;
  std::vector<Registration> table_;  // by handle
  std::vector<KernelEntry> kernel_;  // by handle: what the backend watches
  std::vector<Handle> deferred_;
  std::vector<std::pair<Handle, std::error_code>> deferred_errors_;
  std::vector<ReadyEvent> ready_;
  std::size_t ready_count_ = 0;
  std::size_t registrations_ = 0;
  std::uint64_t next_serial_ = 1;
  std::uint64_t serial_at_wait_ = 1;
  std::uint64_t apply_rounds_ = 0;
  bool deferring_ = false;
  bool one_shot_ = false;
  bool signal_pipe_unwatched_ = false;
  TimerQueue timers_;
  NotificationQueue notifications_;
  SignalWatches signals_;
  ReactorStats stats_;
};

}  // namespace reactor::detail
