// PoolExecutor: one thread per reactor of the pool, each running an ordinary Executor until
// shutdown; spawns from other threads reach a reactor through Reactor::post. See the header.
#include "reactor/futures/pool_executor.hpp"

#include <cstdio>
#include <exception>

namespace reactor {
namespace {

// The worker (of some PoolExecutor) whose thread this is, for its whole life; null elsewhere.
thread_local const void* tl_worker = nullptr;
thread_local std::size_t tl_worker_index = 0;
thread_local const PoolExecutor* tl_worker_owner = nullptr;

// What a worker's executor runs until shutdown: ready once the stop request has been posted.
class StopSignal {
 public:
  using value_type = void;
  explicit StopSignal(detail::PoolHome& home) noexcept : home_(&home) {}
  Poll<void> poll(const Waker& waker) {
    if (home_->stop) return Outcome<void>();
    if (!home_->stop_waker.will_wake(waker)) home_->stop_waker = waker;
    return std::nullopt;
  }

 private:
  detail::PoolHome* home_;
};

}  // namespace

PoolExecutor::PoolExecutor(ReactorPool& pool) : pool_(pool) {
  if (pool.running()) {
    throw std::system_error(make_error_code(errc::already_registered),
                            "PoolExecutor: the pool is running already");
  }
  const std::size_t n = pool.size();
  workers_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<Worker>());
    workers_.back()->index = i;
  }
  std::latch ready(static_cast<std::ptrdiff_t>(n));
  std::size_t started = 0;
  try {
    for (; started < n; ++started) {
      Worker& w = *workers_[started];
      w.thread = std::thread([this, &w, &ready] { worker_main(w, ready); });
    }
  } catch (...) {
    // The threads already started stop at once; the missing ones never count down.
    shutdown();
    throw;
  }
  ready.wait();
}

PoolExecutor::~PoolExecutor() { shutdown(); }

std::optional<std::size_t> PoolExecutor::current_index() const noexcept {
  if (tl_worker_owner != this) return std::nullopt;
  return tl_worker_index;
}

std::size_t PoolExecutor::next_index() noexcept {
  return next_.fetch_add(1, std::memory_order_relaxed) % workers_.size();
}

Executor* PoolExecutor::local_executor(std::size_t i) const noexcept {
  // Only reactor i's own thread sees its worker here, and while it is inside its executor
  // (during a task's poll or a hook), Executor::current() is that executor.
  if (tl_worker != workers_[i].get()) return nullptr;
  return Executor::current();
}

void PoolExecutor::post_spawn(std::size_t i, std::function<void()> start) {
  // Under the shared lock, so that shutdown (which takes it exclusively before posting the stop
  // requests) can never see a spawn posted behind its stop request.
  std::shared_lock lock(gate_);
  if (closed_ || workers_[i]->closed) return;  // `start` is dropped: its job cancels the handle
  (void)pool_.post_to(i, std::move(start));
}

void PoolExecutor::worker_main(Worker& worker, std::latch& ready) {
  tl_worker = &worker;
  tl_worker_index = worker.index;
  tl_worker_owner = this;
  detail::PoolHome& home = *worker.home;
  std::exception_ptr error;
  {
    Executor executor(pool_.at(worker.index));
    worker.executor = &executor;
    home.executor = &executor;
    ready.count_down();
    try {
      executor.block_on(StopSignal(home));
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::unique_lock lock(gate_);
      worker.closed = true;  // an early end: nothing more is posted here
      worker.error = error;
    }
    home.executor = nullptr;
    home.stop_waker.reset();
    // Leaving the scope destroys the executor here, on the reactor's thread: every live task's
    // future is dropped where its registrations and timers live, and its handle fails with
    // operation_canceled.
  }
  if (error) {
    // An early end: run what was posted here already, so that those spawns fail their handles
    // now (home.executor is null) instead of when the pool is destroyed. Bounded, and given up
    // if the reactor keeps failing.
    try {
      for (int round = 0; round < 1000; ++round) {
        auto n = pool_.at(worker.index).handle_events(Duration::zero());
        if (!n || *n == 0) break;
      }
    } catch (...) {
    }
  }
  tl_worker = nullptr;
  tl_worker_owner = nullptr;
}

void PoolExecutor::shutdown() noexcept {
  if (tl_worker_owner == this) {
    std::fputs("PoolExecutor::shutdown called from one of its own threads\n", stderr);
    std::terminate();
  }
  std::call_once(shutdown_once_, [this] {
    {
      std::unique_lock lock(gate_);
      closed_ = true;
    }
    // Behind every spawn posted so far (a reactor's posts run in order): each reactor starts
    // those, then stops.
    for (auto& w : workers_) {
      (void)pool_.post_to(w->index, [home = w->home] {
        home->stop = true;
        home->stop_waker.wake();
      });
    }
    for (auto& w : workers_) {
      if (w->thread.joinable()) w->thread.join();
    }
  });
}

std::exception_ptr PoolExecutor::loop_error(std::size_t i) const {
  std::shared_lock lock(gate_);
  return i < workers_.size() ? workers_[i]->error : nullptr;
}

}  // namespace reactor
