// ThreadPoolReactor: leader/followers over one DispatchCore.
//
// One mutex guards everything below, the core included; it is never held while a hook runs or
// while the leader waits. What is particular to the pool:
// - Only the leader touches the backend while it waits, except on epoll, whose epoll_ctl is
//   safe during a wait. Elsewhere the core defers kernel changes to the leader (settle() waits
//   for them where the caller must know they are done).
// - A handle with an I/O job queued or running is held: out of the kernel's interest, so one
//   readiness never becomes two jobs. On epoll the kernel disarms it itself (EPOLLONESHOT) and
//   the job's end re-arms it with one epoll_ctl.
// - busy_ holds every handler with work in the pool: one job in ready_ or running, the others
//   parked in order. A running one has a token: after a hook returns, the code only touches the
//   handler if its token is still there (the hook may have destroyed it).
#include "reactor/thread_pool_reactor.hpp"

#include <algorithm>
#include <iterator>
#include <ostream>
#include <string>

#include "reactor/detail/dispatch_core.hpp"

namespace reactor {
namespace {

// What this thread is dispatching, so nested calls (remove_handler from a hook, `delete this`)
// know that the handler is "theirs".
thread_local const ThreadPoolReactor* tl_reactor = nullptr;
thread_local const EventHandler* tl_handler = nullptr;
// The reactor whose worker loop (or handle_events turn) this thread runs (null on others).
thread_local const ThreadPoolReactor* tl_worker = nullptr;
// Hooks this thread has called, for handle_events' count.
thread_local std::size_t tl_hooks = 0;
// Handlers registered by the job this thread is running (see register_handler): they count as
// running on this thread until the job ends. Null outside jobs.
thread_local std::vector<std::pair<EventHandler*, std::uint64_t>>* tl_adopted = nullptr;
thread_local const ThreadPoolReactor* tl_adopter = nullptr;

// Marks this thread as one of `reactor`'s workers for a scope.
class WorkerScope {
 public:
  explicit WorkerScope(const ThreadPoolReactor* reactor) : saved_(tl_worker) {
    tl_worker = reactor;
  }
  ~WorkerScope() { tl_worker = saved_; }
  WorkerScope(const WorkerScope&) = delete;
  WorkerScope& operator=(const WorkerScope&) = delete;

 private:
  const ThreadPoolReactor* saved_;
};

// Sets the thread's current handler for a scope.
class CurrentHandler {
 public:
  CurrentHandler(const ThreadPoolReactor* reactor, const EventHandler* handler)
      : saved_reactor_(tl_reactor), saved_handler_(tl_handler) {
    tl_reactor = reactor;
    tl_handler = handler;
  }
  ~CurrentHandler() {
    tl_reactor = saved_reactor_;
    tl_handler = saved_handler_;
  }
  CurrentHandler(const CurrentHandler&) = delete;
  CurrentHandler& operator=(const CurrentHandler&) = delete;

 private:
  const ThreadPoolReactor* saved_reactor_;
  const EventHandler* saved_handler_;
};

// The backend a pool can wait in: io_uring's ring accepts submissions from one thread only
// (IORING_SETUP_SINGLE_ISSUER) and here whichever thread leads submits.
std::unique_ptr<Demultiplexer> pool_backend(std::unique_ptr<Demultiplexer> demux, Backend backend) {
  auto make = [&](Backend kind) {
    if (auto ec = make_demultiplexer(kind, demux)) {
      throw std::system_error(ec, "thread pool reactor: cannot create the demultiplexer");
    }
  };
  if (!demux) {
    make(backend);
    // `best` may pick io_uring through REACTOR_BACKEND; epoll serves a pool as well.
    if (backend == Backend::best && demux->kind() == Backend::io_uring) make(Backend::epoll);
  }
  if (demux->kind() == Backend::io_uring) {
    throw std::system_error(make_error_code(errc::backend_unavailable),
                            "thread pool reactor: io_uring is bound to one thread");
  }
  return demux;
}

}  // namespace

ThreadPoolReactor::ThreadPoolReactor(const ThreadPoolReactorOptions& options)
    : ThreadPoolReactor(nullptr, options) {}

ThreadPoolReactor::ThreadPoolReactor(std::unique_ptr<Demultiplexer> demux,
                                     const ThreadPoolReactorOptions& options)
    : core_(std::make_unique<detail::DispatchCore>(
          pool_backend(std::move(demux), options.backend), options.backend,
          static_cast<HandlerRegistry&>(*this), options.max_events_per_wait,
          "thread pool reactor")),
      options_(options) {
  direct_ctl_ = core_->backend() == Backend::epoll;
  (void)core_->use_one_shot();
}

ThreadPoolReactor::~ThreadPoolReactor() {
  Lock lock(mutex_);
  // No thread runs now: every queued job comes out, and handlers count as idle again.
  std::deque<Job> rest;
  rest.swap(ready_);
  for (auto& [handler, busy] : busy_) {
    for (Job& job : busy.parked) rest.push_back(std::move(job));
  }
  busy_.clear();
  core_->remove_all([&](EventHandler* handler, Handle h, EventMask removed) {
    call_close(lock, handler, h, removed);
  });
  // handle_close calls that were waiting for a busy handler still owe their call; the rest
  // (notifications, posts, timers) are dropped.
  for (Job& job : rest) {
    if (job.kind == JobKind::close) {
      call_close(lock, job.handler, job.handle, job.events);
    } else if (job.kind == JobKind::timer) {
      (void)core_->finish_timer(job.timer, TimePoint::max(), false);
    }
  }
}

Backend ThreadPoolReactor::backend() const noexcept { return core_->backend(); }

// ---- the kernel's interest (mutex held) --------------------------------------------------------

void ThreadPoolReactor::wake_leader() noexcept {
  if (in_wait_ && !wake_pending_) {
    wake_pending_ = true;
    core_->notifications().wake();
  }
}

// Deferred kernel changes reach the leader at its next wake-up.
void ThreadPoolReactor::kick() noexcept {
  if (core_->has_deferred()) wake_leader();
}

// Where only the leader may touch the backend and it is waiting, hands it the deferred changes
// and waits until they are applied: the caller may then close a removed descriptor at once
// (the leader would otherwise touch a closed, maybe reused, number), and learns whether the
// backend refused a change of `handle`.
std::error_code ThreadPoolReactor::settle(Lock& lock, Handle handle) {
  while (core_->has_deferred() && in_wait_) {
    wake_leader();
    const std::uint64_t round = core_->apply_rounds();
    applied_.wait(lock, [&] { return core_->apply_rounds() != round || !in_wait_; });
  }
  if (core_->has_deferred()) core_->apply_deferred();  // nobody waits in the backend now
  return core_->take_deferred_error(handle);
}

// Queues a job behind the handler's earlier ones; true when it went to ready_ (runnable now).
bool ThreadPoolReactor::enqueue(Job&& job) {
  if (job.handler != nullptr) {
    auto [it, fresh] = busy_.try_emplace(job.handler);
    if (!fresh) {
      it->second.parked.push_back(std::move(job));
      return false;
    }
  }
  ready_.push_back(std::move(job));
  return true;
}

// The handler's current job is over: its next one becomes runnable (behind the other handlers'
// jobs, so one handler cannot starve the rest), or it leaves busy_.
void ThreadPoolReactor::advance(EventHandler* handler) {
  auto it = busy_.find(handler);
  if (it == busy_.end()) return;
  it->second.running = false;
  if (it->second.parked.empty()) {
    busy_.erase(it);
    return;
  }
  ready_.push_back(std::move(it->second.parked.front()));
  it->second.parked.pop_front();
}

void ThreadPoolReactor::push_job(Job&& job) {
  if (!enqueue(std::move(job))) return;  // runs after the handler's current job
  if (idle_threads_ > 0) {
    followers_.notify_one();
  } else {
    wake_leader();  // everyone is busy or waiting in the demultiplexer
  }
}

std::uint64_t ThreadPoolReactor::begin_busy(EventHandler* handler) {
  const std::uint64_t token = next_token_++;
  Busy& b = busy_[handler];
  b.running = true;
  b.token = token;
  b.thread = std::this_thread::get_id();
  return token;
}

void ThreadPoolReactor::end_busy(EventHandler* handler, std::uint64_t token) noexcept {
  auto it = busy_.find(handler);
  if (it != busy_.end() && it->second.token == token) advance(handler);
  if (retire_waiters_ > 0) idle_.notify_all();
  // Jobs this handler held back may be runnable now. A worker takes them itself when it loops;
  // another thread (remove_handler from outside the pool) must hand them to the pool.
  if (tl_worker != this && !ready_.empty()) {
    if (idle_threads_ > 0) {
      followers_.notify_one();
    } else {
      wake_leader();
    }
  }
}

bool ThreadPoolReactor::dispatching(const EventHandler* handler) const noexcept {
  return tl_reactor == this && tl_handler == handler;
}

// Calls `hook` with the lock released, counting it (handle_events counts the hooks it
// dispatched, not handle_close); the lock is held again afterwards, also when the hook throws.
template <class Hook>
auto ThreadPoolReactor::unlocked(Lock& lock, Hook&& hook, bool dispatched) {
  struct Relock {
    Lock& lock;
    ~Relock() { lock.lock(); }
  };
  hooks_called_.fetch_add(1, std::memory_order_relaxed);
  if (dispatched) ++tl_hooks;
  lock.unlock();
  Relock relock{lock};
  return hook();
}

// Calls handle_close under the one-thread-per-handler rule: directly when this thread is
// already the handler's (a hook removing itself) or the handler is idle; queued otherwise.
void ThreadPoolReactor::call_close(Lock& lock, EventHandler* handler, Handle handle,
                                   EventMask removed) {
  if (handler == nullptr) return;
  auto close = [&] { return handler->handle_close(handle, removed); };
  if (dispatching(handler)) {
    (void)unlocked(lock, close, false);
    return;
  }
  if (busy_.contains(handler)) {
    Job job;
    job.kind = JobKind::close;
    job.handler = handler;
    job.handle = handle;
    job.events = removed;
    push_job(std::move(job));
    return;
  }
  const std::uint64_t token = begin_busy(handler);
  try {
    CurrentHandler current(this, handler);
    (void)unlocked(lock, close, false);
  } catch (...) {
    end_busy(handler, token);
    throw;
  }
  end_busy(handler, token);
}

// A job that will not run: its bookkeeping goes (a forgotten timer's slot is freed).
void ThreadPoolReactor::drop_job(const Job& job) noexcept {
  if (job.kind == JobKind::notify) --jobs_queued_;
  if (job.kind == JobKind::timer) {
    firing_.erase(job.timer);
    (void)core_->timers().finish_firing(job.timer, job.now, false);
  }
}

void ThreadPoolReactor::forget_locked(EventHandler* handler) noexcept {
  core_->forget(*handler);
  for (auto it = ready_.begin(); it != ready_.end();) {
    if (it->handler != handler) {
      ++it;
      continue;
    }
    drop_job(*it);
    it = ready_.erase(it);
  }
  // A running hook of this handler (the thread destroying it) must not touch it afterwards.
  if (auto it = busy_.find(handler); it != busy_.end()) {
    for (const Job& job : it->second.parked) drop_job(job);
    busy_.erase(it);
  }
}

void ThreadPoolReactor::forget_handler(EventHandler& handler) noexcept {
  Lock lock(mutex_);
  // Destroying a handler that runs on another thread breaks the documented rule; waiting for
  // its hook to return at least keeps this reactor's own state consistent.
  auto running_elsewhere = [&] {
    auto it = busy_.find(&handler);
    return it != busy_.end() && it->second.running &&
           it->second.thread != std::this_thread::get_id();
  };
  if (running_elsewhere()) {
    ++retire_waiters_;
    idle_.wait(lock, [&] { return !running_elsewhere(); });
    --retire_waiters_;
  }
  forget_locked(&handler);
  (void)settle(lock, invalid_handle);
}

// ---- registrations ------------------------------------------------------------------------------

std::error_code ThreadPoolReactor::register_handler(EventHandler* handler, EventMask mask) {
  if (handler == nullptr) return errc::invalid_argument;
  return register_handler(handler->get_handle(), handler, mask);
}

std::error_code ThreadPoolReactor::register_handler(Handle handle, EventHandler* handler,
                                                    EventMask mask) {
  Lock lock(mutex_);
  if (auto ec = core_->add(handle, handler, mask)) return ec;
  // Registered from a job on this pool (an acceptor starting a service): the new handler counts
  // as running on this thread until that job ends, so its first events wait for the job. Before
  // settle(), which may let the leader collect the new handle's first event.
  if (tl_adopter == this && tl_adopted != nullptr && !busy_.contains(handler)) {
    tl_adopted->emplace_back(handler, begin_busy(handler));
  }
  if (auto ec = settle(lock, handle)) {
    // The leader's backend refused the descriptor: nothing of the registration stays (the
    // adoption ends with the job, harmlessly, as for a handler that unregistered itself).
    (void)core_->remove_bits(handle, EventMask::all_io);
    (void)settle(lock, handle);
    return ec;
  }
  return {};
}

std::error_code ThreadPoolReactor::remove_handler(EventHandler* handler, EventMask mask,
                                                  CloseHook hook) {
  if (handler == nullptr) return errc::invalid_argument;
  Handle h = invalid_handle;
  {
    Lock lock(mutex_);
    h = core_->handle_of(handler);
  }
  if (h == invalid_handle) return errc::not_registered;
  return remove_handler(h, mask, hook);
}

std::error_code ThreadPoolReactor::remove_handler(Handle handle, EventMask mask, CloseHook hook) {
  Lock lock(mutex_);
  auto gone = core_->remove(handle, mask);
  if (!gone) return gone.error();
  (void)settle(lock, handle);
  if (hook == CloseHook::call) call_close(lock, gone.value().handler, handle, gone.value().removed);
  return {};
}

// Interest and suspension changes of a handle held by a job reach the kernel when the job ends;
// deferred ones when the leader next wakes (not awaited: nothing is closed by them).
std::error_code ThreadPoolReactor::change_interest(Handle handle, EventMask set, EventMask clear) {
  Lock lock(mutex_);
  const detail::Registration* r = core_->find(handle);
  const EventMask now = r != nullptr ? r->interest : EventMask::none;
  const std::error_code ec = core_->change_interest(handle, (now & ~clear) | set);
  kick();
  return ec;
}

std::error_code ThreadPoolReactor::set_interest(Handle handle, EventMask mask) {
  return change_interest(handle, mask, EventMask::all_io);
}

std::error_code ThreadPoolReactor::add_interest(Handle handle, EventMask mask) {
  return change_interest(handle, mask, EventMask::none);
}

std::error_code ThreadPoolReactor::clear_interest(Handle handle, EventMask mask) {
  return change_interest(handle, EventMask::none, mask);
}

std::error_code ThreadPoolReactor::set_suspended(Handle handle, bool suspended) {
  Lock lock(mutex_);
  const std::error_code ec = core_->set_suspended(handle, suspended);
  kick();
  return ec;
}

std::error_code ThreadPoolReactor::suspend_handler(Handle handle) {
  return set_suspended(handle, true);
}

std::error_code ThreadPoolReactor::resume_handler(Handle handle) {
  return set_suspended(handle, false);
}

std::error_code ThreadPoolReactor::suspend_handler(EventHandler* handler) {
  Handle h = invalid_handle;
  {
    Lock lock(mutex_);
    h = core_->handle_of(handler);
  }
  return h == invalid_handle ? std::error_code(errc::not_registered) : suspend_handler(h);
}

std::error_code ThreadPoolReactor::resume_handler(EventHandler* handler) {
  Handle h = invalid_handle;
  {
    Lock lock(mutex_);
    h = core_->handle_of(handler);
  }
  return h == invalid_handle ? std::error_code(errc::not_registered) : resume_handler(h);
}

bool ThreadPoolReactor::is_suspended(Handle handle) const {
  Lock lock(mutex_);
  const detail::Registration* r = core_->find(handle);
  return r != nullptr && r->suspended;
}

EventMask ThreadPoolReactor::interest(Handle handle) const {
  Lock lock(mutex_);
  const detail::Registration* r = core_->find(handle);
  return r != nullptr ? r->interest : EventMask::none;
}

EventHandler* ThreadPoolReactor::handler(Handle handle) const {
  Lock lock(mutex_);
  const detail::Registration* r = core_->find(handle);
  return r != nullptr ? r->handler : nullptr;
}

std::size_t ThreadPoolReactor::handler_count() const {
  Lock lock(mutex_);
  return core_->handler_count();
}

// ---- timers, notifications, signals -------------------------------------------------------------

Result<TimerId> ThreadPoolReactor::schedule_timer(EventHandler* handler, const void* arg,
                                                  Duration delay, Duration interval) {
  Lock lock(mutex_);
  bool earliest = false;
  auto id = core_->schedule(handler, arg, delay, interval, &earliest);
  if (id && earliest) wake_leader();  // the leader's wait may end later than this is due
  return id;
}

std::error_code ThreadPoolReactor::cancel_locked(TimerId id) {
  if (auto ec = core_->cancel(id)) return ec;
  // Already queued as a job: the job is dropped when taken.
  if (auto it = firing_.find(id); it != firing_.end()) it->second = true;
  return {};
}

std::error_code ThreadPoolReactor::cancel_timer(TimerId id) {
  Lock lock(mutex_);
  return cancel_locked(id);
}

std::size_t ThreadPoolReactor::cancel_timers(EventHandler* handler) {
  Lock lock(mutex_);
  std::size_t n = 0;
  for (TimerId id : core_->timers().ids_of(handler)) n += cancel_locked(id) ? 0 : 1;
  return n;
}

std::error_code ThreadPoolReactor::reset_timer_interval(TimerId id, Duration interval) {
  Lock lock(mutex_);
  const std::error_code ec = core_->reset_interval(id, interval);
  if (!ec) wake_leader();  // a shorter period may make the next expiry earlier than the wait
  return ec;
}

std::size_t ThreadPoolReactor::timer_count() const {
  Lock lock(mutex_);
  return core_->timers().size();
}

// The queue is thread-safe and wakes the leader, which turns its items into jobs.
std::error_code ThreadPoolReactor::notify(EventHandler* handler, EventMask mask) {
  return core_->notify(handler, mask);
}

std::error_code ThreadPoolReactor::post(std::function<void()> work) {
  return core_->post(std::move(work));
}

std::size_t ThreadPoolReactor::purge_notifications(EventHandler* handler) {
  Lock lock(mutex_);
  std::size_t n = core_->notifications().purge(handler);
  auto it = busy_.find(handler);
  if (it == busy_.end()) return n;  // a handler with queued jobs is always in busy_
  auto is_notify = [&](const Job& job) { return job.kind == JobKind::notify; };
  std::size_t jobs = std::erase_if(it->second.parked, is_notify);
  if (!it->second.running) {
    // Its one runnable job is in ready_: if that is a notification, the next job takes its place.
    auto job = std::find_if(ready_.begin(), ready_.end(),
                            [&](const Job& j) { return j.handler == handler; });
    if (job != ready_.end() && is_notify(*job)) {
      ready_.erase(job);
      ++jobs;
      advance(handler);
      if (!ready_.empty() && idle_threads_ > 0) followers_.notify_one();
    }
  }
  jobs_queued_ -= jobs;
  return n + jobs;
}

std::error_code ThreadPoolReactor::register_signal(int signum, EventHandler* handler) {
  Lock lock(mutex_);
  if (auto ec = core_->register_signal(signum, handler)) return ec;
  kick();  // the leader watches a new signal pipe after its wait
  return {};
}

std::error_code ThreadPoolReactor::remove_signal(int signum, EventHandler* handler) {
  Lock lock(mutex_);
  return core_->remove_signal(signum, handler);
}

std::error_code ThreadPoolReactor::retire(EventHandler* handler) {
  if (handler == nullptr) return errc::invalid_argument;
  if (dispatching(handler)) return errc::reentrant_call;
  Lock lock(mutex_);
  ++retire_waiters_;
  idle_.wait(lock, [&] {
    auto it = busy_.find(handler);
    // Running on this very thread: adopted by the job this thread runs (see register_handler).
    return it == busy_.end() || !it->second.running ||
           it->second.thread == std::this_thread::get_id();
  });
  --retire_waiters_;
  if (core_->holds(*handler)) forget_locked(handler);
  (void)settle(lock, invalid_handle);
  return {};
}

// ---- the loop -----------------------------------------------------------------------------------

std::error_code ThreadPoolReactor::run_event_loop() {
  std::size_t threads = options_.threads;
  if (threads == 0) threads = std::max(1U, std::thread::hardware_concurrency());
  return run_event_loop(threads);
}

std::error_code ThreadPoolReactor::run_event_loop(std::size_t threads) {
  if (tl_worker == this) return errc::reentrant_call;
  threads = std::max<std::size_t>(threads, 1);
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (std::size_t i = 1; i < threads; ++i) {
    pool.emplace_back([this] {
      Lock lock(mutex_);
      worker(lock);
    });
  }
  {
    Lock lock(mutex_);
    worker(lock);
  }
  for (std::thread& t : pool) t.join();
  Lock lock(mutex_);
  stop_ = false;
  const std::error_code ec = std::exchange(error_, {});
  if (auto e = std::exchange(exception_, nullptr)) {
    lock.unlock();
    std::rethrow_exception(e);
  }
  return ec;
}

void ThreadPoolReactor::end_event_loop() noexcept {
  Lock lock(mutex_);
  stop_ = true;
  followers_.notify_all();  // stopping: every thread must see it
  wake_leader();
}

void ThreadPoolReactor::worker(Lock& lock) {
  WorkerScope scope(this);
  Job job;
  while (!stop_) {
    // Once the jobs of the last wait have been taken, look at the kernel again (without
    // blocking) before taking more, so handlers that keep asking to be called again (> 0) or a
    // flood of notifications cannot starve I/O.
    if (!leader_ && !ready_.empty() && jobs_since_wait_ >= jobs_in_round_) {
      if (auto ec = wait_and_collect(lock, Duration::zero())) {
        if (!error_) error_ = ec;
        stop_ = true;
        followers_.notify_all();
      }
      continue;
    }
    if (take_job(job)) {
      // Chain promotion: wake one more thread only when there is something for it to do
      // (another job, or nobody waiting in the demultiplexer). Never all: no thundering herd.
      if (idle_threads_ > 0 && (!ready_.empty() || !leader_)) followers_.notify_one();
      try {
        run_job(lock, job);
      } catch (...) {
        if (!exception_) exception_ = std::current_exception();
        stop_ = true;
        followers_.notify_all();
        wake_leader();
      }
      job = Job{};
      continue;
    }
    if (!leader_) {
      if (auto ec = wait_and_collect(lock, Duration::max())) {
        if (!error_) error_ = ec;
        stop_ = true;
        followers_.notify_all();
      }
      continue;
    }
    ++idle_threads_;
    followers_.wait(lock);
    --idle_threads_;
  }
}

Result<std::size_t> ThreadPoolReactor::handle_events(Duration timeout) {
  if (tl_worker == this) return errc::reentrant_call;
  timeout = std::max(timeout, Duration::zero());
  WorkerScope scope(this);
  const std::size_t hooks_before = tl_hooks;
  Lock lock(mutex_);
  if (!leader_) {
    // Like Reactor: every turn looks at the kernel, without blocking when work is queued.
    if (auto ec = wait_and_collect(lock, ready_.empty() ? timeout : Duration::zero())) return ec;
    // This turn ends after its jobs: a follower waiting for the lead may take it now.
    if (idle_threads_ > 0 && ready_.empty()) followers_.notify_one();
  } else if (ready_.empty()) {
    // Another thread leads: wait as a follower for work it hands out.
    auto woken = [&] { return !ready_.empty() || stop_ || !leader_; };
    ++idle_threads_;
    if (timeout == forever) {
      followers_.wait(lock, woken);
    } else {
      followers_.wait_until(lock, deadline_after(Clock::now(), timeout), woken);
    }
    --idle_threads_;
  }
  // Only what is runnable now: a handler that always asks to be called again (> 0) must not
  // keep this turn going forever; its next job waits for the next turn, which does not block.
  for (std::size_t budget = ready_.size(); budget > 0; --budget) {
    Job job;
    if (!take_job(job)) break;
    if (idle_threads_ > 0 && !ready_.empty()) followers_.notify_one();
    run_job(lock, job);  // a hook's exception leaves the pool consistent and reaches the caller
  }
  return tl_hooks - hooks_before;
}

// Takes the next runnable job: ready_ never holds a job of a running handler (see Busy).
bool ThreadPoolReactor::take_job(Job& out) {
  while (!ready_.empty()) {
    out = std::move(ready_.front());
    ready_.pop_front();
    if (out.kind == JobKind::notify || out.kind == JobKind::post) --jobs_queued_;
    ++jobs_since_wait_;
    if (out.kind == JobKind::timer) {
      auto f = firing_.find(out.timer);
      if (f == firing_.end() || f->second) {  // cancelled since it was queued
        if (f != firing_.end()) firing_.erase(f);
        (void)core_->finish_timer(out.timer, out.now, false);
        advance(out.handler);
        continue;
      }
    }
    return true;
  }
  return false;
}

// The leader's part: one wait in the backend (at most `limit`, less if a timer is due sooner),
// then every ready handle, due timer, signal and notification becomes a job.
std::error_code ThreadPoolReactor::wait_and_collect(Lock& lock, Duration limit) {
  leader_ = true;
  jobs_since_wait_ = 0;
  auto blocking = [&](auto&& call) {
    core_->apply_deferred();
    applied_.notify_all();
    in_wait_ = true;
    core_->set_deferring(!direct_ctl_);
    lock.unlock();
    call();
    lock.lock();
    in_wait_ = false;
    core_->set_deferring(false);
  };
  TimePoint started{};
  TimePoint woke{};
  const std::error_code ec = core_->wait(limit, blocking, started, woke);
  leader_ = false;
  ReactorStats& stats = core_->counters();
  ++stats.iterations;
  stats.time_blocked += woke - started;
  core_->apply_deferred();
  applied_.notify_all();
  if (ec) return ec;
  for (const ReadyEvent& e : core_->ready()) collect(e);
  TimerQueue::Expiry x{};
  while (core_->timers().pop_due(woke, x)) {
    Job job;
    job.kind = JobKind::timer;
    job.handler = x.handler;
    job.timer = x.id;
    job.arg = x.arg;
    job.now = woke;
    firing_[x.id] = false;
    (void)enqueue(std::move(job));
  }
  jobs_in_round_ = ready_.size();
  // Hand leadership on: while this thread takes a job, one follower leads next or takes another.
  // With nothing queued this thread leads again itself; waking a follower would only spin it.
  if (idle_threads_ > 0 && !ready_.empty()) followers_.notify_one();
  return {};
}

// Turns one reported event into jobs.
void ThreadPoolReactor::collect(const ReadyEvent& e) {
  if (core_->is_wakeup(e.fd)) {
    NotificationQueue& queue = core_->notifications();
    queue.collect();
    wake_pending_ = false;
    Notification n;
    while (queue.pop(n)) {
      Job job;
      job.kind = n.work ? JobKind::post : JobKind::notify;
      job.handler = n.handler;
      job.events = n.mask;
      job.work = std::move(n.work);
      ++jobs_queued_;
      (void)enqueue(std::move(job));
    }
    return;
  }
  if (core_->is_signal_pipe(e.fd)) {
    for (const SignalWatches::Watch& w : core_->arrived_signals()) {
      Job job;
      job.kind = JobKind::signal;
      job.handler = w.handler;
      job.signum = w.signum;
      (void)enqueue(std::move(job));
    }
    return;
  }
  const detail::Registration* r = core_->hold_reported(e.fd);
  if (r == nullptr) return;
  Job job;
  job.kind = JobKind::io;
  job.handler = r->handler;
  job.handle = e.fd;
  job.serial = r->serial;
  job.events = e.events;
  (void)enqueue(std::move(job));
}

void ThreadPoolReactor::run_job(Lock& lock, Job& job) {
  const TimePoint start = Clock::now();
  struct Timing {  // adds the job's duration to the counters however it ends (lock held then)
    ThreadPoolReactor& self;
    Lock& lock;
    TimePoint start;
    ~Timing() {
      if (lock.owns_lock()) self.core_->count_dispatch(Clock::now() - start);
    }
  } timing{*this, lock, start};
  // Handlers this job registers stay "running here" until it ends (lock held then), so a
  // service started from a hook (an acceptor's on_open) is never dispatched on another thread
  // while this one still initialises it.
  std::vector<std::pair<EventHandler*, std::uint64_t>> adopted;
  struct Adoption {
    ThreadPoolReactor& self;
    std::vector<std::pair<EventHandler*, std::uint64_t>>& adopted;
    decltype(tl_adopted) saved_list;
    const ThreadPoolReactor* saved_owner;
    ~Adoption() {
      tl_adopted = saved_list;
      tl_adopter = saved_owner;
      for (auto [handler, token] : adopted) self.end_busy(handler, token);
    }
  } adoption{*this, adopted, tl_adopted, tl_adopter};
  tl_adopted = &adopted;
  tl_adopter = this;
  if (job.kind == JobKind::post) {
    ++core_->counters().notifications_run;
    unlocked(lock, job.work);
    return;
  }
  EventHandler* handler = job.handler;
  const std::uint64_t token = begin_busy(handler);
  // For the whole job, so that handle_close after a hook's -1 runs here, not queued behind us.
  CurrentHandler current(this, handler);
  try {
    switch (job.kind) {
      case JobKind::io: run_io(lock, job); break;
      case JobKind::timer: run_timer(lock, job); break;
      case JobKind::signal: run_signal(lock, job); break;
      case JobKind::notify:
        ++core_->counters().notifications_run;
        (void)unlocked(lock,
                       [&] { return detail::call_hook(*handler, invalid_handle, job.events); });
        break;
      case JobKind::close: call_close(lock, handler, job.handle, job.events); break;
      case JobKind::post: break;
    }
  } catch (...) {
    end_busy(handler, token);
    throw;
  }
  end_busy(handler, token);
}

void ThreadPoolReactor::run_signal(Lock& lock, Job& job) {
  // The watch may have been removed since the signal was read.
  if (!core_->watching(job.signum, job.handler)) return;
  ++core_->counters().signals_delivered;
  const int rc = unlocked(lock, [&] { return job.handler->handle_signal(job.signum); });
  if (rc < 0) (void)core_->remove_signal(job.signum, job.handler);
}

void ThreadPoolReactor::run_timer(Lock& lock, Job& job) {
  ++core_->counters().timers_fired;
  int rc = -1;
  try {
    rc = unlocked(lock, [&] { return job.handler->handle_timeout(job.now, job.arg); });
  } catch (...) {
    firing_.erase(job.timer);
    (void)core_->finish_timer(job.timer, job.now, false);
    throw;
  }
  firing_.erase(job.timer);
  // Pending again: the leader's wait may not know this timer's next expiry.
  if (core_->finish_timer(job.timer, job.now, rc >= 0)) wake_leader();
}

void ThreadPoolReactor::run_io(Lock& lock, Job& job) {
  const Handle handle = job.handle;
  const std::uint64_t serial = job.serial;
  if (!core_->still_live(handle, serial)) return;
  auto close_removed = [&](const detail::Removal& gone) {
    // Still held: what is left stays out of the kernel until this job ends.
    (void)settle(lock, handle);
    call_close(lock, gone.handler, handle, gone.removed);
  };
  if (has(job.events, EventMask::invalid)) {
    // The descriptor was closed behind our back (select / poll report it).
    close_removed(core_->remove_bits(handle, EventMask::all_io));
    return;
  }
  EventMask again = EventMask::none;
  try {
    again = core_->run_hooks(
        handle, serial, job.events,
        [&](EventHandler& h, EventMask kind) {
          return unlocked(lock, [&] { return detail::call_hook(h, handle, kind); });
        },
        close_removed);
  } catch (...) {
    if (core_->still_live(handle, serial)) core_->unhold(handle);
    kick();
    throw;
  }
  if (!core_->still_live(handle, serial)) return;
  if (any(again)) {
    // Served again after the jobs already queued, still out of the kernel's interest.
    Job next;
    next.kind = JobKind::io;
    next.handler = job.handler;
    next.handle = handle;
    next.serial = serial;
    next.events = again;
    push_job(std::move(next));
    return;
  }
  core_->unhold(handle);
  kick();
}

// ---- introspection ------------------------------------------------------------------------------

ReactorStats ThreadPoolReactor::stats() const {
  Lock lock(mutex_);
  ReactorStats s = core_->stats(core_->notifications().size() + jobs_queued_);
  s.hooks_called = hooks_called_.load(std::memory_order_relaxed);
  return s;
}

void ThreadPoolReactor::dump(std::ostream& os) const {
  os << "thread pool reactor: " << stats() << '\n';
  Lock lock(mutex_);
  core_->dump_handles(os);
}

}  // namespace reactor
