// Executor: runs futures as tasks on the reactor's thread. spawn() puts a task on the ready
// queue and returns a JoinHandle; the executor polls the ready tasks, and when none is ready it
// sleeps in Reactor::handle_events until a handler hook, a timer or another thread wakes one.
//
// Threads: an Executor, its tasks, its futures and JoinHandles belong to the reactor's loop
// thread; construct, spawn, block_on, run and destroy it there. Only Waker::wake() (and copying
// or dropping a Waker) may happen on any thread: such a wake is handed over under a short lock
// and one Reactor::post per batch, which also interrupts the reactor's wait.
//
// Lifetime: the Reactor must outlive the Executor. Destroying the Executor drops every task that
// is still live (their futures are destroyed, which cancels their registrations and timers);
// awaiting a JoinHandle of such a task yields std::errc::operation_canceled.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "reactor/futures/outcome.hpp"
#include "reactor/futures/waker.hpp"
#include "reactor/reactor.hpp"

namespace reactor {

namespace detail {

/// What wakers on other threads share with the executor; outlives it while wakers exist.
struct ExecutorCore : std::enable_shared_from_this<ExecutorCore> {
  ~ExecutorCore();
  /// Any thread: queues `task`, taking over one reference the caller holds.
  void schedule(TaskHeader* task) noexcept;
  /// Loop thread: moves the tasks woken by other threads onto the ready queue.
  void drain() noexcept;

  std::mutex mutex;
  Reactor* reactor = nullptr;       // guarded by mutex; null once the executor is gone
  std::vector<TaskHeader*> remote;  // guarded by mutex: woken by other threads
  bool drain_posted = false;        // guarded by mutex: a drain is on its way
  Executor* executor = nullptr;     // loop thread only
};

/// Loop thread: how many more immediately-ready I/O operations the task being polled may do
/// before it must yield (negative: no limit, outside the executor). Keeps one busy stream from
/// starving the other tasks, as a reactor hook returning > 0 does for handlers.
inline thread_local int coop_budget = -1;

/// Spends one unit of the budget; false when the task must yield (wake itself, return pending).
inline bool coop_consume() noexcept {
  if (coop_budget < 0) return true;
  if (coop_budget == 0) return false;
  --coop_budget;
  return true;
}

/// A task's result slot, shared with its JoinHandle.
template <class T>
class SpawnedResult : public TaskHeader {
 public:
  using TaskHeader::TaskHeader;
  std::optional<Outcome<T>> result_;  // loop thread

 private:
  void drop_result() noexcept override { result_.reset(); }
};

/// A spawned future and its result, in one allocation.
template <class F>
class SpawnedTask final : public SpawnedResult<future_value_t<F>> {
  using T = future_value_t<F>;

 public:
  SpawnedTask(std::shared_ptr<ExecutorCore> core, F&& future)
      : SpawnedResult<T>(std::move(core)), future_(std::move(future)) {}

 private:
  bool poll_future(const Waker& waker) override {
    Poll<T> r;
    try {
      r = future_->poll(waker);
    } catch (...) {
      r = Outcome<T>::failure(std::current_exception());
    }
    if (!r) return false;
    this->result_ = std::move(r);
    future_.reset();  // release registrations now, not when the last waker goes
    return true;
  }
  void cancel_future() noexcept override {
    future_.reset();
    this->result_ = Outcome<T>::failure(std::make_error_code(std::errc::operation_canceled));
  }

  std::optional<F> future_;
};

}  // namespace detail

/// The untyped part of JoinHandle.
class JoinHandleBase {
 public:
  JoinHandleBase(const JoinHandleBase&) = delete;
  JoinHandleBase& operator=(const JoinHandleBase&) = delete;

  /// Lets the task run on without anyone waiting for it (also what dropping the handle does).
  void detach() noexcept;
  /// Drops the task's future now (cancelling its registrations and timers); awaiting the
  /// handle then yields std::errc::operation_canceled. Called from inside the task itself, the
  /// cancellation happens when its current poll returns. No effect on a finished task.
  void cancel() noexcept;
  /// True when the task has finished (or was cancelled).
  [[nodiscard]] bool done() const noexcept;
  /// True while the handle refers to a task.
  [[nodiscard]] bool valid() const noexcept { return task_ != nullptr; }

 protected:
  JoinHandleBase() noexcept = default;
  /// Adopts one reference to `task`.
  explicit JoinHandleBase(detail::TaskHeader* task) noexcept : task_(task) {}
  /// Takes over `other`'s task, leaving it empty.
  JoinHandleBase(JoinHandleBase&& other) noexcept : task_(std::exchange(other.task_, nullptr)) {}
  /// Detaches from the task held (it keeps running), then takes over `other`'s.
  JoinHandleBase& operator=(JoinHandleBase&& other) noexcept {
    if (this != &other) {
      detach();
      task_ = std::exchange(other.task_, nullptr);
    }
    return *this;
  }
  ~JoinHandleBase() { detach(); }
  /// True when finished; otherwise remembers `waker` to be woken at completion.
  bool poll_done(const Waker& waker) noexcept;

  /// The task, holding one reference to it (null when empty).
  detail::TaskHeader* task_ = nullptr;
};

/// The caller's side of a spawned task: await it (it is a future of the task's value), detach
/// it, or cancel it. Move-only; loop thread only.
template <class T>
class JoinHandle final : public JoinHandleBase {
 public:
  /// The task's value type.
  using value_type = T;

  /// An empty handle (poll fails with async_errc::no_state).
  JoinHandle() noexcept = default;
  /// Takes over the other handle's task, leaving it empty.
  JoinHandle(JoinHandle&&) noexcept = default;
  /// Detaches from the task held (it keeps running), then takes over the other's.
  JoinHandle& operator=(JoinHandle&&) noexcept = default;
  ~JoinHandle() = default;

  /// Ready with the task's outcome once it has finished; the handle is then empty.
  Poll<T> poll(const Waker& waker) {
    if (task_ == nullptr) return Outcome<T>::failure(async_errc::no_state);
    if (!poll_done(waker)) return std::nullopt;
    auto* t = static_cast<detail::SpawnedResult<T>*>(task_);
    Poll<T> out = std::move(t->result_);
    t->result_.reset();
    detach();
    if (!out) return Outcome<T>::failure(async_errc::no_state);
    return out;
  }

 private:
  friend class Executor;
  explicit JoinHandle(detail::TaskHeader* task) noexcept : JoinHandleBase(task) {}
};

/// Polls tasks on the reactor's thread; see the header comment for threads and lifetime.
class Executor {
 public:
  /// Polls at most this many immediately-ready I/O operations per task poll.
  static constexpr int budget_per_poll = 128;

  /// An executor driving `reactor`, which must outlive it.
  explicit Executor(Reactor& reactor);
  /// Drops every live task (see the header comment).
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  /// The reactor this executor waits in.
  [[nodiscard]] Reactor& reactor() const noexcept { return reactor_; }

  /// Queues `future` as a new task; it first runs on the next poll of the ready queue.
  template <Pollable F>
  [[nodiscard]] JoinHandle<future_value_t<F>> spawn(F&& future) {
    static_assert(!std::is_lvalue_reference_v<F>, "spawn takes ownership: pass an rvalue");
    auto* task = new detail::SpawnedTask<std::remove_cvref_t<F>>(core_, std::move(future));
    adopt(task);
    task->add_ref();  // the handle's reference
    return JoinHandle<future_value_t<F>>(task);
  }

  /// Runs tasks and the reactor until `future` is ready, then returns its value (or throws its
  /// error as Outcome::value does). Throws std::system_error when the reactor fails, or
  /// errc::reentrant_call when called from inside a task or a hook of this reactor.
  template <Pollable F>
  future_value_t<F> block_on(F&& future) {
    auto handle = spawn(std::forward<F>(future));
    auto until = [](void* h) { return static_cast<JoinHandleBase*>(h)->done(); };
    if (auto ec = drive(until, &handle)) {
      handle.cancel();
      throw std::system_error(ec, "Executor::block_on");
    }
    auto out = handle.poll(Waker());
    return std::move(*out).value();
  }

  /// Runs tasks and the reactor until no task is live.
  std::error_code run();

  /// Number of tasks spawned and not yet finished.
  [[nodiscard]] std::size_t task_count() const noexcept { return live_count_; }
  /// Number of task polls so far (for tests and statistics).
  [[nodiscard]] std::uint64_t poll_count() const noexcept { return polls_; }
  /// The executor running on this thread (inside block_on / run), or nullptr.
  [[nodiscard]] static Executor* current() noexcept;

 private:
  friend struct detail::ExecutorCore;
  friend class JoinHandleBase;

  void adopt(detail::TaskHeader* task);
  void enqueue(detail::TaskHeader* task) noexcept;
  void run_ready();
  void poll_task(detail::TaskHeader* task);
  void finish(detail::TaskHeader* task, bool cancelled) noexcept;
  void cancel(detail::TaskHeader* task) noexcept;
  std::error_code drive(bool (*until)(void*), void* context);

  Reactor& reactor_;
  std::shared_ptr<detail::ExecutorCore> core_;
  std::deque<detail::TaskHeader*> ready_;  // each entry holds one reference
  detail::TaskHeader* live_head_ = nullptr;
  std::size_t live_count_ = 0;
  std::uint64_t polls_ = 0;
  bool closing_ = false;
};

}  // namespace reactor
