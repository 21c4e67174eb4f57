// ThreadPoolReactor: one reactor served by several threads (leader/followers), for handlers whose
// work is CPU-heavy enough that one thread per reactor is not enough. Same EventHandler contract
// and return convention as Reactor, plus one guarantee: a handler never runs on two threads at
// once (I/O hooks, timers, notifications and handle_close included). Different handlers run in
// parallel.
//
// How: one thread at a time (the leader) waits in the demultiplexer. When the wait returns it
// turns ready handles, due timers and queued notifications into jobs, takes each ready handle out
// of the kernel's interest (one-shot: no second thread can be woken for it), wakes one follower
// to lead next and dispatches a job itself. A job whose handler is busy on another thread waits
// in the queue until that handler's hook returns; then the handle is watched again.
//
// It implements Dispatcher, so the handlers of handlers/ (Acceptor, StreamHandler...) and the
// conformance suite run on it unchanged. handle_events(timeout) lets the calling thread take one
// turn in the pool (lead one wait or take queued work, then run what is runnable); run_event_loop
// runs options.threads threads.
//
// Threads: every public member may be called from any thread, including from hooks.
// A handler registered from inside a hook (or post) running on the pool counts as running on
// that thread until the hook returns: a service an acceptor starts is never dispatched on another
// thread while the acceptor's thread still initialises it (on_open). Registering from a thread
// outside the pool while the loop runs has no such grace: finish initialising first.
// Destroying a handler: inside one of its own hooks (e.g. `delete this` in handle_close), or
// from another thread after retire(handler) returned. Destroying a handler that is running on
// another thread is undefined behaviour (its derived part would be gone while the hook runs).
// Close a descriptor only after its registration ended (remove_handler or retire, which return
// only once the backend has dropped it): until then the leader may be changing the kernel's
// interest in it from another thread. A handler's destructor runs after its members' (a socket
// member is closed by then), so a handler owning its socket removes itself before `delete this`.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>
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

/// Construction-time settings of a ThreadPoolReactor.
struct ThreadPoolReactorOptions {
  /// Which demultiplexer to wait in; `best` honours REACTOR_BACKEND, then prefers epoll.
  Backend backend = Backend::best;
  /// Most ready handles taken from one wait.
  std::size_t max_events_per_wait = 128;
  /// Threads run_event_loop() runs (the caller included); 0 means one per hardware thread.
  std::size_t threads = 0;
};

/// A reactor whose event loop runs on a pool of threads (leader/followers).
class ThreadPoolReactor final : public Dispatcher, private HandlerRegistry {
 public:
  /// Throws std::system_error when the backend or the wake-up descriptor cannot be created.
  /// `best` never picks io_uring here; asking for it fails with errc::backend_unavailable (its
  /// ring accepts submissions from one thread only, and every leader submits).
  explicit ThreadPoolReactor(const ThreadPoolReactorOptions& options = {});
  /// Waits in `demux`, made by the caller (options.backend is ignored; io_uring is refused).
  explicit ThreadPoolReactor(std::unique_ptr<Demultiplexer> demux,
                             const ThreadPoolReactorOptions& options = {});
  /// Must not run while run_event_loop is running. Calls handle_close on every handler still
  /// registered for I/O, runs handle_close calls still queued, drops timers and notifications.
  ~ThreadPoolReactor() override;
  // The interface's shorthands (default masks, one-shot timers, waiting forever).
  using Dispatcher::handle_events;
  using Dispatcher::notify;
  using Dispatcher::remove_handler;
  using Dispatcher::schedule_timer;
  ThreadPoolReactor(const ThreadPoolReactor&) = delete;
  ThreadPoolReactor& operator=(const ThreadPoolReactor&) = delete;

  // The Dispatcher interface (documented there and in reactor/reactor.hpp); comments below
  // say only what differs on a pool.
  [[nodiscard]] Backend backend() const noexcept override;

  std::error_code register_handler(EventHandler* handler, EventMask mask) override;
  /// Where another thread waits in a backend only it may change (select, poll), returns once
  /// that thread has applied the registration, with the backend's error if it refused it.
  std::error_code register_handler(Handle handle, EventHandler* handler, EventMask mask) override;
  /// Removes `mask` from the registration and calls handle_close(handle, removed) unless `hook`
  /// is CloseHook::skip. If the handler is running on another thread at that moment,
  /// handle_close is queued and runs on a pool thread right after its current hook returns.
  std::error_code remove_handler(EventHandler* handler, EventMask mask, CloseHook hook) override;
  std::error_code remove_handler(Handle handle, EventMask mask, CloseHook hook) override;
  std::error_code set_interest(Handle handle, EventMask mask) override;
  std::error_code add_interest(Handle handle, EventMask mask) override;
  std::error_code clear_interest(Handle handle, EventMask mask) override;
  [[nodiscard]] EventMask interest(Handle handle) const override;
  [[nodiscard]] EventHandler* handler(Handle handle) const override;
  [[nodiscard]] std::size_t handler_count() const override;
  /// Stops dispatching events of `handle` until resume_handler (timers still fire). A hook
  /// already running finishes; a queued event of the handle is held until it is resumed.
  std::error_code suspend_handler(Handle handle) override;
  std::error_code suspend_handler(EventHandler* handler) override;
  std::error_code resume_handler(Handle handle) override;
  std::error_code resume_handler(EventHandler* handler) override;
  [[nodiscard]] bool is_suspended(Handle handle) const override;

  /// Calls handler->handle_timeout(now, arg) after `delay`, then every `interval` if positive.
  /// A timer never fires while another hook of the same handler runs. Negative, zero and huge
  /// durations as on Reactor: see Dispatcher.
  Result<TimerId> schedule_timer(EventHandler* handler, const void* arg, Duration delay,
                                 Duration interval) override;
  /// Cancels a timer; it will not fire unless its hook has already started.
  std::error_code cancel_timer(TimerId id) override;
  std::size_t cancel_timers(EventHandler* handler) override;
  std::error_code reset_timer_interval(TimerId id, Duration interval) override;
  [[nodiscard]] std::size_t timer_count() const override;

  /// Calls the hooks of `mask` with invalid_handle on a pool thread, once per call, in order
  /// per sender, never while another hook of `handler` runs. Return values are ignored.
  std::error_code notify(EventHandler* handler, EventMask mask) override;
  /// Runs `work` on a pool thread. Posts start in FIFO order but may run in parallel.
  std::error_code post(std::function<void()> work) override;
  /// Withdraws queued notify() calls aimed at `handler` (not one already running).
  std::size_t purge_notifications(EventHandler* handler) override;
  /// Calls handler->handle_signal(signum) on a pool thread whenever `signum` is delivered (never
  /// in signal context, never while another hook of `handler` runs).
  std::error_code register_signal(int signum, EventHandler* handler) override;
  std::error_code remove_signal(int signum, EventHandler* handler) override;

  /// Withdraws every registration, timer and queued notification of `handler` without calling
  /// it, after waiting until no hook of it is running. Afterwards no hook of it will run and
  /// it may be destroyed. errc::reentrant_call from one of its own hooks.
  std::error_code retire(EventHandler* handler);

  /// Runs the loop on `threads` threads (the caller and threads - 1 new ones) until
  /// end_event_loop; returns the first demultiplexer error. A hook's exception stops the loop
  /// and is rethrown here.
  std::error_code run_event_loop(std::size_t threads);
  /// run_event_loop(options.threads).
  std::error_code run_event_loop() override;
  /// One turn of the calling thread in the pool: if no work is queued, waits at most `timeout`
  /// (leading the demultiplexer's wait, or as a follower while another thread leads), then runs
  /// the jobs runnable at that moment (work they queue is left for the next turn). Returns how
  /// many hooks this thread called. errc::reentrant_call from a hook or inside run_event_loop.
  /// A hook's exception propagates to the caller. Zero or negative `timeout`: no waiting (as a
  /// follower too); forever or longer than the clock's range: no limit.
  Result<std::size_t> handle_events(Duration timeout) override;
  /// Any thread, any time (also before run_event_loop): makes every thread of run_event_loop
  /// return promptly (each finishes the hook it is running).
  void end_event_loop() noexcept override;
  /// True after end_event_loop until run_event_loop has returned.
  [[nodiscard]] bool event_loop_done() const noexcept override {
    return stop_.load(std::memory_order_acquire);
  }
  /// A snapshot of the counters. time_dispatching and longest_dispatch add up the jobs of all
  /// threads, so busy_ratio() can exceed 1/threads' share only with several threads busy.
  [[nodiscard]] ReactorStats stats() const override;
  /// Writes the counters, then one line per registered handle.
  void dump(std::ostream& os) const override;

  /// Hooks called so far (I/O, timers, notifications, posts, handle_close).
  [[nodiscard]] std::uint64_t hooks_called() const noexcept {
    return hooks_called_.load(std::memory_order_relaxed);
  }

 private:
  enum class JobKind : std::uint8_t { io, timer, notify, post, close, signal };
  struct Job {
    JobKind kind = JobKind::post;
    EventHandler* handler = nullptr;
    Handle handle = invalid_handle;
    std::uint64_t serial = 0;
    EventMask events = EventMask::none;
    TimerId timer = invalid_timer;
    const void* arg = nullptr;
    TimePoint now{};
    int signum = 0;
    std::function<void()> work;
  };
  // Present while a handler has work in the pool: exactly one of its jobs is in ready_ or
  // running, the rest wait here in order. So no thread ever skips over a handler's jobs.
  struct Busy {
    std::uint64_t token = 0;
    std::thread::id thread;
    bool running = false;
    std::deque<Job> parked;
  };
  using Lock = std::unique_lock<std::mutex>;

  void forget_handler(EventHandler& handler) noexcept override;
  void forget_locked(EventHandler* handler) noexcept;
  void drop_job(const Job& job) noexcept;
  std::error_code settle(Lock& lock, Handle handle);
  void kick() noexcept;
  void wake_leader() noexcept;
  std::error_code change_interest(Handle handle, EventMask set, EventMask clear);
  std::error_code set_suspended(Handle handle, bool suspended);
  std::error_code cancel_locked(TimerId id);
  void call_close(Lock& lock, EventHandler* handler, Handle handle, EventMask removed);
  template <class Hook>
  auto unlocked(Lock& lock, Hook&& hook, bool dispatched = true);
  bool enqueue(Job&& job);
  void push_job(Job&& job);
  void advance(EventHandler* handler);
  std::uint64_t begin_busy(EventHandler* handler);
  void end_busy(EventHandler* handler, std::uint64_t token) noexcept;
  bool dispatching(const EventHandler* handler) const noexcept;

  void worker(Lock& lock);
  bool take_job(Job& out);
  void run_job(Lock& lock, Job& job);
  void run_io(Lock& lock, Job& job);
  void run_timer(Lock& lock, Job& job);
  void run_signal(Lock& lock, Job& job);
  std::error_code wait_and_collect(Lock& lock, Duration limit);
  void collect(const ReadyEvent& event);

  std::unique_ptr<detail::DispatchCore> core_;  // guarded by mutex_
  ThreadPoolReactorOptions options_;
  bool direct_ctl_ = false;  // the backend may be changed during a wait (epoll)

  mutable std::mutex mutex_;
  std::condition_variable followers_;  // threads without work and with a leader
  std::condition_variable idle_;       // retire() waiting for a handler to return
  std::condition_variable applied_;    // settle() waiting for the leader's kernel changes
  std::deque<Job> ready_;
  std::unordered_map<EventHandler*, Busy> busy_;
  std::unordered_map<TimerId, bool> firing_;  // timers queued or running: cancelled?
  std::uint64_t next_token_ = 1;
  std::size_t idle_threads_ = 0;
  std::size_t retire_waiters_ = 0;
  std::size_t jobs_queued_ = 0;      // notify / post jobs not run yet
  std::size_t jobs_in_round_ = 0;    // jobs the last wait queued
  std::size_t jobs_since_wait_ = 0;  // jobs taken since then
  bool leader_ = false;              // a thread is leading (waiting or collecting)
  bool in_wait_ = false;             // the leader is inside the backend's wait
  bool wake_pending_ = false;        // the wake-up descriptor has been signalled
  std::atomic<bool> stop_{false};
  std::error_code error_;
  std::exception_ptr exception_;
  std::atomic<std::uint64_t> hooks_called_{0};
};

}  // namespace reactor
