// Executor: the ready queue, task polling, completion and the hand-over of wakes from other
// threads. See executor.hpp and waker.hpp for the model.
#include "reactor/futures/executor.hpp"

namespace reactor {
namespace {

// The executor inside block_on / run on this thread: wakes issued here go straight onto its
// queue, without a lock.
thread_local Executor* tl_executor = nullptr;

class AsyncCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "reactor.async"; }
  std::string message(int code) const override {
    switch (static_cast<async_errc>(code)) {
      case async_errc::end_of_stream: return "end of stream before the buffer was full";
      case async_errc::broken_promise: return "promise destroyed without a result";
      case async_errc::no_state: return "future has no state";
    }
    return "unknown async error";
  }
};

}  // namespace

const std::error_category& async_category() noexcept {
  static const AsyncCategory category;
  return category;
}

// ---- wakes
// ---------------------------------------------------------------------------------------

void detail::TaskHeader::wake() noexcept {
  const std::uint32_t old = state_.fetch_or(queued, std::memory_order_acq_rel);
  if ((old & (queued | done)) != 0) return;  // already on its way, or finished
  add_ref();                                 // the queue's reference
  core_->schedule(this);
}

detail::ExecutorCore::~ExecutorCore() {
  for (TaskHeader* t : remote) t->release();
}

void detail::ExecutorCore::schedule(TaskHeader* task) noexcept {
  if (tl_executor != nullptr && tl_executor->core_.get() == this) {
    tl_executor->enqueue(task);
    return;
  }
  // Another thread, or the loop thread outside the executor: hand over under the lock, and post
  // one drain per batch so that the reactor's wait is interrupted exactly when needed.
  std::unique_lock lock(mutex);
  if (reactor == nullptr) {
    lock.unlock();
    task->release();
    return;
  }
  remote.push_back(task);
  if (drain_posted) return;
  drain_posted = true;
  (void)reactor->post([self = shared_from_this()] { self->drain(); });
}

void detail::ExecutorCore::drain() noexcept {
  std::vector<TaskHeader*> batch;
  {
    std::lock_guard lock(mutex);
    batch.swap(remote);
    drain_posted = false;
  }
  for (TaskHeader* t : batch) {
    if (executor != nullptr) {
      executor->enqueue(t);
    } else {
      t->release();
    }
  }
}

// ---- join handles ------------------------------------------------------------------------------

void JoinHandleBase::detach() noexcept {
  detail::TaskHeader* t = std::exchange(task_, nullptr);
  if (t == nullptr) return;
  t->detached_ = true;
  if (t->joiner_ != nullptr) std::exchange(t->joiner_, nullptr)->release();
  if ((t->state_.load(std::memory_order_acquire) & detail::TaskHeader::done) != 0) {
    t->drop_result();
  }
  t->release();
}

void JoinHandleBase::cancel() noexcept {
  if (task_ == nullptr || done()) return;
  if (task_->polling_) {
    task_->cancel_requested_ = true;
    return;
  }
  Executor* e = task_->core_->executor;
  if (e != nullptr) e->cancel(task_);
}

bool JoinHandleBase::done() const noexcept {
  return task_ != nullptr &&
         (task_->state_.load(std::memory_order_acquire) & detail::TaskHeader::done) != 0;
}

bool JoinHandleBase::poll_done(const Waker& waker) noexcept {
  if (done()) return true;
  detail::TaskHeader* w = waker.task();
  if (task_->joiner_ != w) {
    if (w != nullptr) w->add_ref();
    if (task_->joiner_ != nullptr) task_->joiner_->release();
    task_->joiner_ = w;
  }
  return false;
}

// ---- the executor ------------------------------------------------------------------------------

Executor::Executor(Reactor& reactor)
    : reactor_(reactor), core_(std::make_shared<detail::ExecutorCore>()) {
  core_->reactor = &reactor;
  core_->executor = this;
}

Executor::~Executor() {
  closing_ = true;
  std::vector<detail::TaskHeader*> remote;
  {
    std::lock_guard lock(core_->mutex);
    core_->reactor = nullptr;
    remote.swap(core_->remote);
  }
  core_->executor = nullptr;
  for (detail::TaskHeader* t : remote) t->release();
  // One at a time from the head: dropping a future may finish or cancel other tasks.
  while (live_head_ != nullptr) cancel(live_head_);
  for (detail::TaskHeader* t : ready_) t->release();
  ready_.clear();
}

Executor* Executor::current() noexcept { return tl_executor; }

void Executor::adopt(detail::TaskHeader* task) {
  // The live list owns the initial reference; the queue gets one more.
  task->next_ = live_head_;
  if (live_head_ != nullptr) live_head_->prev_ = task;
  live_head_ = task;
  ++live_count_;
  task->state_.fetch_or(detail::TaskHeader::queued, std::memory_order_relaxed);
  task->add_ref();
  enqueue(task);
}

void Executor::enqueue(detail::TaskHeader* task) noexcept {
  if (closing_) {
    task->release();
    return;
  }
  ready_.push_back(task);
}

void Executor::run_ready() {
  // Only what is queued now: a task that keeps waking itself cannot keep the reactor waiting.
  for (std::size_t n = ready_.size(); n > 0 && !ready_.empty(); --n) {
    detail::TaskHeader* t = ready_.front();
    ready_.pop_front();
    poll_task(t);
  }
}

void Executor::poll_task(detail::TaskHeader* task) {
  const Waker waker = Waker::adopt(task);  // the queue's reference
  // Cleared before the poll: a wake during the poll (or from another thread meanwhile) queues
  // the task again, so it is never lost.
  const std::uint32_t old =
      task->state_.fetch_and(~detail::TaskHeader::queued, std::memory_order_acq_rel);
  if ((old & detail::TaskHeader::done) != 0) return;
  ++polls_;
  task->polling_ = true;
  detail::coop_budget = budget_per_poll;
  const bool finished = task->poll_future(waker);
  detail::coop_budget = -1;
  task->polling_ = false;
  if (finished) {
    finish(task, false);
  } else if (task->cancel_requested_) {
    cancel(task);
  }
}

void Executor::cancel(detail::TaskHeader* task) noexcept { finish(task, true); }

void Executor::finish(detail::TaskHeader* task, bool cancelled) noexcept {
  const std::uint32_t old =
      task->state_.fetch_or(detail::TaskHeader::done, std::memory_order_acq_rel);
  if ((old & detail::TaskHeader::done) != 0) return;
  if (task->prev_ != nullptr) {
    task->prev_->next_ = task->next_;
  } else {
    live_head_ = task->next_;
  }
  if (task->next_ != nullptr) task->next_->prev_ = task->prev_;
  task->prev_ = task->next_ = nullptr;
  --live_count_;
  // Dropping the future runs arbitrary destructors; the task is unlinked and done by now.
  if (cancelled) task->cancel_future();
  if (task->joiner_ != nullptr) Waker::adopt(std::exchange(task->joiner_, nullptr)).wake();
  if (task->detached_) task->drop_result();
  task->release();  // the live list's reference
}

std::error_code Executor::drive(bool (*until)(void*), void* context) {
  if (tl_executor != nullptr) return errc::reentrant_call;
  struct Running {
    explicit Running(Executor* e) { tl_executor = e; }
    ~Running() { tl_executor = nullptr; }
    Running(const Running&) = delete;
    Running& operator=(const Running&) = delete;
  } running(this);
  while (!until(context)) {
    run_ready();
    if (until(context)) break;
    auto n = reactor_.handle_events(ready_.empty() ? forever : Duration::zero());
    if (!n) return n.error();
  }
  return {};
}

std::error_code Executor::run() {
  return drive([](void* self) { return static_cast<Executor*>(self)->live_count_ == 0; }, this);
}

}  // namespace reactor
