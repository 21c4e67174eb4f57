// Waker: what a pending future keeps so that whoever can make progress for it (a handler hook, a
// timer, another thread) puts the waiting task back on its executor's queue.
//
// Design: a Waker is a counted reference to the task itself (not a task id). Waking is one atomic
// fetch_or on the task's state: only the wake that sets the "queued" bit enqueues, so a task woken
// many times before it runs is queued once, and a wake that arrives while the task is being
// polled (the bit is cleared before each poll) queues it again, so no wake is ever lost. The
// reference keeps the task's header alive, so a wake from any thread, at any time, even after the
// task finished or its executor is gone, is safe and needs no table lookup. See executor.hpp.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>

namespace reactor {

class Executor;
class JoinHandleBase;
class Waker;

namespace detail {

struct ExecutorCore;

/// The executor-facing part of a spawned task; what wakers point at. Reference-counted.
class TaskHeader {
 public:
  /// Bit of state_: the task sits in a ready queue (local or remote).
  static constexpr std::uint32_t queued = 1U;
  /// Bit of state_: finished, cancelled or closed; never polled again.
  static constexpr std::uint32_t done = 2U;

  explicit TaskHeader(std::shared_ptr<ExecutorCore> core) noexcept : core_(std::move(core)) {}
  TaskHeader(const TaskHeader&) = delete;
  TaskHeader& operator=(const TaskHeader&) = delete;

  /// Takes one more reference.
  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  /// Drops a reference; the last one frees the task.
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  /// Any thread: queues the task unless it is queued already or done.
  void wake() noexcept;

 protected:
  virtual ~TaskHeader() = default;

 private:
  friend class reactor::Executor;
  friend struct ExecutorCore;

  // Polls the future once; true when it finished (the result is stored by the override).
  virtual bool poll_future(const Waker& waker) = 0;
  // Drops the future (cancelling what it waits for) and stores operation_canceled.
  virtual void cancel_future() noexcept = 0;
  // Drops a result nobody can take any more (detached task), on the loop thread.
  virtual void drop_result() noexcept = 0;

  std::atomic<std::uint32_t> refs_{1};
  std::atomic<std::uint32_t> state_{0};
  const std::shared_ptr<ExecutorCore> core_;

 protected:
  // Loop-thread fields, used by Executor and JoinHandle.
  friend class reactor::JoinHandleBase;
  TaskHeader* prev_ = nullptr;  // in the executor's list of live tasks
  TaskHeader* next_ = nullptr;
  bool polling_ = false;           // inside poll_future
  bool cancel_requested_ = false;  // cancel() called while polling
  bool detached_ = false;          // no JoinHandle any more
  TaskHeader* joiner_ = nullptr;   // the task awaiting this one's JoinHandle (a reference)
};

}  // namespace detail

/// Puts one task back on its executor's queue. Copyable, cheap (one atomic increment), and
/// usable from any thread; an empty Waker does nothing.
class Waker {
 public:
  /// An empty waker.
  Waker() noexcept = default;
  /// Adopts a reference the caller already holds (executor internals).
  static Waker adopt(detail::TaskHeader* task) noexcept {
    Waker w;
    w.task_ = task;
    return w;
  }
  /// Another reference to the same task.
  Waker(const Waker& other) noexcept : task_(other.task_) {
    if (task_ != nullptr) task_->add_ref();
  }
  /// Takes over `other`'s reference, leaving it empty.
  Waker(Waker&& other) noexcept : task_(std::exchange(other.task_, nullptr)) {}
  /// Refers to `other`'s task instead, dropping the old reference.
  Waker& operator=(Waker other) noexcept {
    std::swap(task_, other.task_);
    return *this;
  }
  ~Waker() {
    if (task_ != nullptr) task_->release();
  }

  /// Queues the task once (a no-op while it is already queued, or when it is finished).
  void wake() const noexcept {
    if (task_ != nullptr) task_->wake();
  }
  /// True when both wake the same task; lets a future skip re-storing an identical waker.
  [[nodiscard]] bool will_wake(const Waker& other) const noexcept { return task_ == other.task_; }
  /// True when the waker points at a task.
  explicit operator bool() const noexcept { return task_ != nullptr; }
  /// Drops the reference.
  void reset() noexcept { Waker().swap(*this); }
  /// Exchanges with `other`.
  void swap(Waker& other) noexcept { std::swap(task_, other.task_); }
  /// Wakes and drops the reference in one step (what a completing event does).
  void wake_and_reset() noexcept {
    wake();
    reset();
  }
  /// The task, for executor internals.
  [[nodiscard]] detail::TaskHeader* task() const noexcept { return task_; }

 private:
  detail::TaskHeader* task_ = nullptr;
};

}  // namespace reactor
