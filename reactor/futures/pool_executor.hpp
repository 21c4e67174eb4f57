// PoolExecutor: the future / executor layer on a ReactorPool, one Executor per reactor
// (thread-per-core, as in Seastar). A task stays on the reactor it was spawned on for its whole
// life, so the single-threaded Executor, its Wakers and the leaf futures are reused unchanged.
//
// Design
// - The PoolExecutor starts one thread per reactor of the pool. That thread constructs an
//   ordinary Executor over its reactor, runs it until shutdown (Executor::block_on of a stop
//   signal; the reactor's loop is the executor's), then destroys it there. A leaf future a task
//   awaits registers with the reactor the task runs on: inside a task,
//   Executor::current()->reactor() is that reactor, and a factory passed to spawn receives the
//   reactor's Executor.
// - spawn(f) places the task on the next reactor round-robin, spawn_on(i, f) on reactor i. From
//   reactor i's own thread (inside a task there) the task is spawned directly; from any other
//   thread the spawn is one Reactor::post to reactor i, so no thread ever touches another
//   reactor's ready queue. Tasks posted to one reactor by one thread are first polled in spawn
//   order (posts are FIFO, and so is an executor's ready queue).
// - A PoolJoinHandle shares a small state with the task: a mutex, a condition variable, the
//   outcome and the Waker of the task awaiting the handle. When the task finishes on reactor A,
//   it stores the outcome and wakes the awaiting task, which may run on reactor B: that wake takes
//   B's thread-safe path (the hand-over list of B's executor under its lock, plus one
//   Reactor::post to B per batch), and the awaiting task resumes on B's thread. A thread that
//   runs no executor blocks in get() / wait_for() on the condition variable instead.
// - cancel() is a request from any thread: it sets a flag and wakes the task, which then drops
//   its future on its own thread at its next poll (so its registrations and timers are withdrawn
//   where they live) and completes with std::errc::operation_canceled. A task that finishes
//   before it sees the request keeps its result. Dropping the handle detaches the task (it runs
//   on; its result is then destroyed on its own reactor's thread).
//
// Threads
// - Construct the PoolExecutor on a thread that is not one of the pool's, with the pool not
//   running (std::system_error with errc::already_registered otherwise). While it exists its
//   threads are the reactors' loop threads: do not start()/run() the pool meanwhile (its
//   end_event_loop() does not stop these threads either), and keep the pool alive longer.
// - spawn, spawn_on, size, reactor, current_index, shutdown: any thread (shutdown and the
//   destructor: not from one of the pool's threads, which they join). block_on and the handle's
//   get / wait / wait_for block, so they refuse (errc::reentrant_call) on a thread that is running
//   an executor; from outside one they are fine (the test thread, main()). executor(i): reactor
//   i's thread only.
// - A PoolJoinHandle may be moved to and used on any thread, by one thread at a time. A value
//   that crosses reactors must be usable on the receiving thread: a Stream stays bound to the
//   reactor it was made on.
// - Shutdown (shutdown() or the destructor): spawns are refused from then on (their handles yield
//   operation_canceled at once); each reactor first starts what was posted to it before, then
//   drops every live task on its own thread, the handles of those tasks yield operation_canceled
//   and blocked get() calls return. If a reactor's loop fails (a backend error, or an exception
//   escaping a handler hook), that reactor drops its tasks the same way and refuses new spawns;
//   loop_error(i) tells what happened.
#pragma once

#include <atomic>
#include <concepts>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "reactor/futures/executor.hpp"
#include "reactor/futures/outcome.hpp"
#include "reactor/futures/waker.hpp"
#include "reactor/reactor_pool.hpp"

namespace reactor {

class PoolExecutor;

/// A callable that makes the task's future on the reactor's thread, given that reactor's
/// Executor (for leaf futures that need the Reactor: `[](Executor& e) { return serve(e); }`).
template <class Fn>
concept PoolTaskFactory = !Pollable<Fn> && std::invocable<std::remove_cvref_t<Fn>&, Executor&> &&
                          Pollable<std::invoke_result_t<std::remove_cvref_t<Fn>&, Executor&>>;

/// What spawn accepts: a future, or a factory of one.
template <class S>
concept PoolTaskSource = Pollable<S> || PoolTaskFactory<S>;

namespace detail {

template <class S>
struct PoolSourceFuture {
  using type = std::remove_cvref_t<S>;
};
template <PoolTaskFactory S>
struct PoolSourceFuture<S> {
  using type = std::invoke_result_t<std::remove_cvref_t<S>&, Executor&>;
};

/// The future a spawn source runs (the source itself, or what the factory returns).
template <class S>
using pool_source_future_t = typename PoolSourceFuture<S>::type;
/// The value of a spawn source's task.
template <class S>
using pool_source_value_t = future_value_t<pool_source_future_t<S>>;

/// What a pool task shares with its PoolJoinHandle. Every field is guarded by `mutex`, except
/// cancel_flag, an unlocked mirror of cancel_requested for the task's polls.
template <class T>
class PoolTaskState {
 public:
  /// The state of a task placed on reactor `home`.
  explicit PoolTaskState(std::size_t home) noexcept : home_(home) {}

  /// The reactor the task runs on.
  [[nodiscard]] std::size_t home() const noexcept { return home_; }

  /// Task side, any thread: stores the outcome (once; later calls are no-ops), wakes the
  /// awaiting task through its own executor's path and releases blocked waiters.
  void complete(Outcome<T>&& outcome) {
    Waker joiner;
    Waker runner;
    std::optional<Outcome<T>> dropped;  // a detached handle's result, destroyed here
    {
      std::lock_guard lock(mutex_);
      if (ready_) return;
      ready_ = true;
      if (detached_) {
        dropped.emplace(std::move(outcome));
      } else {
        result_.emplace(std::move(outcome));
      }
      joiner = std::move(joiner_);
      runner = std::move(runner_);
    }
    completed_.notify_all();
    joiner.wake();
  }

  /// Task side, at its first poll: remembers the task's waker (for cancel()); false when a
  /// cancellation was requested before.
  bool attach_runner(const Waker& waker) {
    Waker old;
    std::lock_guard lock(mutex_);
    if (cancel_requested_) return false;
    old = std::exchange(runner_, waker);
    return true;
  }

  /// Task side, without the lock: true once cancel() was called.
  [[nodiscard]] bool cancel_requested() const noexcept {
    return cancel_flag_.load(std::memory_order_acquire);
  }

  /// Handle side: the outcome once ready (the state is then spent), else remembers `waker`.
  Poll<T> poll(const Waker& waker) {
    Waker old;
    std::lock_guard lock(mutex_);
    if (ready_) {
      Poll<T> out = std::move(result_);
      result_.reset();
      if (!out) return Outcome<T>::failure(async_errc::no_state);
      return out;
    }
    if (!joiner_.will_wake(waker)) old = std::exchange(joiner_, waker);
    return std::nullopt;
  }

  /// Handle side: blocks until ready or `limit` passes; true when ready.
  bool wait_for(Duration limit) {
    std::unique_lock lock(mutex_);
    // Not condition_variable::wait_for: it adds `limit` to the clock without saturating.
    return completed_.wait_until(lock, deadline_after(Clock::now(), limit),
                                 [this] { return ready_; });
  }

  /// Handle side: blocks until ready, then takes the outcome.
  Outcome<T> take() {
    std::unique_lock lock(mutex_);
    completed_.wait(lock, [this] { return ready_; });
    Poll<T> out = std::move(result_);
    result_.reset();
    if (!out) return Outcome<T>::failure(async_errc::no_state);
    return std::move(*out);
  }

  /// Handle side: true once the outcome is stored.
  [[nodiscard]] bool ready() const {
    std::lock_guard lock(mutex_);
    return ready_;
  }

  /// Handle side, any thread: asks the task to drop its future on its own thread.
  void request_cancel() {
    Waker runner;
    {
      std::lock_guard lock(mutex_);
      if (ready_ || cancel_requested_) return;
      cancel_requested_ = true;
      cancel_flag_.store(true, std::memory_order_release);
      runner = runner_;
    }
    runner.wake();  // queues the task on its own executor (its thread-safe path from here)
  }

  /// Handle side: nobody will take the result; forgets the awaiting task.
  void detach() noexcept {
    Waker joiner;
    std::optional<Outcome<T>> result;
    std::lock_guard lock(mutex_);
    detached_ = true;
    joiner = std::move(joiner_);
    result = std::move(result_);
    result_.reset();
  }

 private:
  const std::size_t home_;
  mutable std::mutex mutex_;
  std::condition_variable completed_;  // notified when ready_ turns true
  bool ready_ = false;
  bool detached_ = false;
  bool cancel_requested_ = false;
  std::atomic<bool> cancel_flag_{false};
  std::optional<Outcome<T>> result_;
  Waker joiner_;  // the task awaiting the handle, on any executor
  Waker runner_;  // the pool task itself, woken by request_cancel
};

/// The future a pool task runs on its executor: the source's future, reporting to the state.
template <class S>
class PoolTask {
  using Fut = pool_source_future_t<S>;
  using T = future_value_t<Fut>;
  static constexpr bool is_factory = PoolTaskFactory<S>;

 public:
  using value_type = void;

  PoolTask(S&& source, std::shared_ptr<PoolTaskState<T>> state)
      : source_(std::move(source)), state_(std::move(state)) {}
  PoolTask(PoolTask&& other) noexcept(std::is_nothrow_move_constructible_v<S>)
      : source_(std::move(other.source_)),
        state_(std::move(other.state_)),
        attached_(other.attached_) {
    other.source_.reset();
  }
  PoolTask& operator=(PoolTask&&) = delete;
  ~PoolTask() { drop(); }

  Poll<void> poll(const Waker& waker) {
    if (!state_) return Outcome<void>();
    if (!attached_) {
      attached_ = true;
      if (!state_->attach_runner(waker)) return cancelled();
    } else if (state_->cancel_requested()) {
      return cancelled();
    }
    Poll<T> r;
    try {
      r = future().poll(waker);
    } catch (...) {
      r = Outcome<T>::failure(std::current_exception());
    }
    if (!r) return std::nullopt;
    release_future();  // registrations go before the result is published
    auto state = std::move(state_);
    state->complete(std::move(*r));
    return Outcome<void>();
  }

 private:
  Fut& future() {
    if constexpr (is_factory) {
      // Made here, on the task's reactor, and never moved afterwards.
      if (!made_) made_.emplace(std::invoke(*source_, *Executor::current()));
      return *made_;
    } else {
      return *source_;
    }
  }
  void release_future() noexcept {
    if constexpr (is_factory) made_.reset();
    source_.reset();
  }
  Poll<void> cancelled() {
    drop();
    return Outcome<void>();
  }
  // Drops the future on this thread, then fails the state with operation_canceled (a no-op
  // when the task already completed it).
  void drop() noexcept {
    release_future();
    if (auto state = std::move(state_)) {
      state->complete(Outcome<T>::failure(std::make_error_code(std::errc::operation_canceled)));
    }
  }

  std::optional<std::remove_cvref_t<S>> source_;
  std::optional<Fut> made_;  // factories only
  std::shared_ptr<PoolTaskState<T>> state_;
  bool attached_ = false;
};

/// A spawn on its way to another reactor (held by the posted closure). If it is never started,
/// its destruction fails the handle with operation_canceled.
template <class S>
class PoolSpawn {
  using T = pool_source_value_t<S>;

 public:
  PoolSpawn(S&& source, std::shared_ptr<PoolTaskState<T>> state)
      : source_(std::move(source)), state_(std::move(state)) {}
  PoolSpawn(const PoolSpawn&) = delete;
  PoolSpawn& operator=(const PoolSpawn&) = delete;
  ~PoolSpawn() { cancel(); }

  /// On the target reactor's thread: spawns the task on `executor` (which is that thread's).
  void start(Executor& executor) noexcept {
    if (!source_) return;
    try {
      executor.spawn(PoolTask<S>(std::move(*source_), std::move(state_))).detach();
    } catch (...) {  // out of memory: the task's destruction reported operation_canceled
    }
    source_.reset();
    state_.reset();
  }
  /// Drops the source and fails the handle with operation_canceled.
  void cancel() noexcept {
    source_.reset();
    if (auto state = std::move(state_)) {
      state->complete(Outcome<T>::failure(std::make_error_code(std::errc::operation_canceled)));
    }
  }

 private:
  std::optional<std::remove_cvref_t<S>> source_;
  std::shared_ptr<PoolTaskState<T>> state_;
};

/// What the closures posted to one reactor share with its loop thread (loop thread only).
struct PoolHome {
  Executor* executor = nullptr;  // while the reactor's thread runs its executor
  bool stop = false;             // set by the stop request posted at shutdown
  Waker stop_waker;              // the task waiting for `stop`
};

}  // namespace detail

/// The caller's side of a task spawned on a PoolExecutor: a future of the task's value that can
/// be awaited from a task on any reactor, or waited for with get() on a thread that runs no
/// executor. Move-only; dropping it detaches the task.
template <class T>
class [[nodiscard]] PoolJoinHandle {
 public:
  /// The task's value type.
  using value_type = T;

  /// An empty handle (poll and get fail with async_errc::no_state).
  PoolJoinHandle() noexcept = default;
  /// Takes over `other`'s task, leaving it empty.
  PoolJoinHandle(PoolJoinHandle&& other) noexcept = default;
  /// Detaches from the task held, then takes over `other`'s.
  PoolJoinHandle& operator=(PoolJoinHandle&& other) noexcept {
    if (this != &other) {
      detach();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  PoolJoinHandle(const PoolJoinHandle&) = delete;
  PoolJoinHandle& operator=(const PoolJoinHandle&) = delete;
  ~PoolJoinHandle() { detach(); }

  /// From a task on any executor: ready with the task's outcome once it has finished (the
  /// handle is then empty); otherwise the finishing task wakes `waker`.
  Poll<T> poll(const Waker& waker) {
    if (!state_) return Outcome<T>::failure(async_errc::no_state);
    Poll<T> out = state_->poll(waker);
    if (out) state_.reset();
    return out;
  }

  /// Blocks until the task has finished and returns its value (throws its error as
  /// Outcome::value does). errc::reentrant_call from a thread that is running an executor.
  T get() { return outcome().value(); }

  /// Blocks like get(), returning the outcome instead of throwing it; the handle is then empty
  /// (except after a refusal, which leaves it as it was).
  Outcome<T> outcome() {
    if (Executor::current() != nullptr) {
      return Outcome<T>::failure(make_error_code(errc::reentrant_call));
    }
    if (!state_) return Outcome<T>::failure(async_errc::no_state);
    auto state = std::move(state_);
    return state->take();
  }

  /// Blocks until the task has finished or `limit` has passed; true when finished (or empty).
  /// A limit of zero or less only looks; one past the end of the clock's range waits without
  /// limit. Throws std::system_error (errc::reentrant_call) from a thread running an executor.
  bool wait_for(Duration limit) {
    if (Executor::current() != nullptr) {
      throw std::system_error(make_error_code(errc::reentrant_call), "PoolJoinHandle::wait_for");
    }
    return !state_ || state_->wait_for(limit);
  }

  /// Asks the task to stop: it drops its future on its own reactor's thread and finishes with
  /// std::errc::operation_canceled, unless it finished first. Any thread; returns at once.
  void cancel() {
    if (state_) state_->request_cancel();
  }
  /// Lets the task run on without anyone waiting for it (also what dropping the handle does).
  void detach() noexcept {
    if (auto state = std::move(state_)) state->detach();
  }
  /// True when the task has finished (or was cancelled).
  [[nodiscard]] bool done() const { return state_ && state_->ready(); }
  /// True while the handle refers to a task.
  [[nodiscard]] bool valid() const noexcept { return state_ != nullptr; }
  /// The index of the reactor the task runs on (valid handles only).
  [[nodiscard]] std::size_t reactor_index() const noexcept { return state_->home(); }

 private:
  friend class PoolExecutor;
  explicit PoolJoinHandle(std::shared_ptr<detail::PoolTaskState<T>> state) noexcept
      : state_(std::move(state)) {}

  std::shared_ptr<detail::PoolTaskState<T>> state_;
};

/// One Executor per reactor of a ReactorPool, each on the reactor's own thread; see the header
/// comment for the design, the thread rules and shutdown.
class PoolExecutor {
 public:
  /// Starts one thread per reactor of `pool`, each running an Executor over its reactor, and
  /// returns once all of them are ready. `pool` must not be running and must outlive this.
  explicit PoolExecutor(ReactorPool& pool);
  /// shutdown().
  ~PoolExecutor();
  PoolExecutor(const PoolExecutor&) = delete;
  PoolExecutor& operator=(const PoolExecutor&) = delete;

  /// Number of reactors (and executors).
  [[nodiscard]] std::size_t size() const noexcept { return workers_.size(); }
  /// The pool.
  [[nodiscard]] ReactorPool& pool() const noexcept { return pool_; }
  /// Reactor `i` (i < size()).
  [[nodiscard]] Reactor& reactor(std::size_t i) const noexcept { return pool_.at(i); }
  /// The executor of reactor `i` (until shutdown); use it on that reactor's thread only (inside
  /// a task there), e.g. to spawn a local task with a plain JoinHandle.
  [[nodiscard]] Executor& executor(std::size_t i) const noexcept { return *workers_[i]->executor; }
  /// The index of the reactor whose thread calls this, or nullopt on any other thread.
  [[nodiscard]] std::optional<std::size_t> current_index() const noexcept;

  /// Any thread: places `source` (a future, or a factory `Executor& -> future`) on the next
  /// reactor, round-robin.
  template <PoolTaskSource S>
  PoolJoinHandle<detail::pool_source_value_t<S>> spawn(S&& source) {
    return spawn_on(next_index(), std::forward<S>(source));
  }

  /// Any thread: places `source` on reactor `i`. The handle fails with errc::invalid_argument
  /// for a bad index, and with std::errc::operation_canceled after shutdown.
  template <PoolTaskSource S>
  PoolJoinHandle<detail::pool_source_value_t<S>> spawn_on(std::size_t i, S&& source) {
    static_assert(!std::is_lvalue_reference_v<S>, "spawn takes ownership: pass an rvalue");
    using T = detail::pool_source_value_t<S>;
    using Source = std::remove_cvref_t<S>;
    auto state = std::make_shared<detail::PoolTaskState<T>>(i);
    PoolJoinHandle<T> handle(state);
    if (i >= size()) {
      state->complete(Outcome<T>::failure(make_error_code(errc::invalid_argument)));
      return handle;
    }
    if (Executor* here = local_executor(i)) {
      // On reactor i's thread inside its executor: its own queue, no hop.
      here->spawn(detail::PoolTask<Source>(std::forward<S>(source), std::move(state))).detach();
      return handle;
    }
    auto job =
        std::make_shared<detail::PoolSpawn<Source>>(std::forward<S>(source), std::move(state));
    post_spawn(i, [job, home = workers_[i]->home] {
      if (home->executor != nullptr) {
        job->start(*home->executor);
      } else {
        job->cancel();
      }
    });
    return handle;  // if the post was refused, dropping the closure cancelled the job
  }

  /// From a thread that runs no executor: runs `source` on the next reactor and blocks until it
  /// has finished; returns its value or throws its error. errc::reentrant_call (as
  /// std::system_error) from a thread running an executor.
  template <PoolTaskSource S>
  detail::pool_source_value_t<S> block_on(S&& source) {
    if (Executor::current() != nullptr) {
      throw std::system_error(make_error_code(errc::reentrant_call), "PoolExecutor::block_on");
    }
    return spawn(std::forward<S>(source)).get();
  }

  /// Stops accepting spawns, lets every reactor start what was posted to it, drops every live
  /// task on its own thread and joins the threads. Idempotent; any thread but the pool's.
  void shutdown() noexcept;

  /// Why reactor `i`'s loop ended early (null while it runs, and after a normal shutdown).
  [[nodiscard]] std::exception_ptr loop_error(std::size_t i) const;

 private:
  struct Worker {
    std::size_t index = 0;
    std::shared_ptr<detail::PoolHome> home = std::make_shared<detail::PoolHome>();
    Executor* executor = nullptr;  // set by the thread before the constructor returns
    std::thread thread;
    bool closed = false;       // guarded by gate_: no more spawns are posted here
    std::exception_ptr error;  // guarded by gate_
  };

  std::size_t next_index() noexcept;
  Executor* local_executor(std::size_t i) const noexcept;
  void post_spawn(std::size_t i, std::function<void()> start);
  void worker_main(Worker& worker, std::latch& ready);

  ReactorPool& pool_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<std::size_t> next_{0};
  mutable std::shared_mutex gate_;  // spawns post under a shared lock; closing takes it whole
  bool closed_ = false;             // guarded by gate_
  std::once_flag shutdown_once_;
};

}  // namespace reactor
