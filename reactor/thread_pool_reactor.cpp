// ThreadPoolReactor: leader/followers over one demultiplexer.
//
// One mutex guards everything below; it is never held while a hook runs or while the leader
// waits. Rules the code keeps:
// - Only the leader touches the demultiplexer while it waits. Other threads record kernel
//   changes in pending_ and wake it, except on epoll, whose epoll_ctl is safe during a wait.
// - A handle with an I/O job queued or running is out of the kernel's interest (queued), so one
//   readiness never becomes two jobs; it is watched again when the job ends.
// - busy_ holds every handler with work in the pool: one job in ready_ or running, the others
//   parked in order. A running one has a token: after a hook returns, the
//   code only touches the handler if its token is still there (the hook may have destroyed it),
//   and only touches a registration whose serial is unchanged (it may have been replaced).
// - A registration's events count only if it existed when the wait began (serial check), so a
//   reused descriptor number never gets its predecessor's event.
#include "reactor/thread_pool_reactor.hpp"

#include <algorithm>
#include <iterator>
#include <string>

#include "reactor/log.hpp"

namespace reactor {
namespace {

// What this thread is dispatching, so nested calls (remove_handler from a hook, `delete this`)
// know that the handler is "theirs".
thread_local const ThreadPoolReactor* tl_reactor = nullptr;
thread_local const EventHandler* tl_handler = nullptr;
// The reactor whose worker loop this thread runs (null on other threads).
thread_local const ThreadPoolReactor* tl_worker = nullptr;

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

EventMask side_of(EventMask kind) {
  return kind == EventMask::read ? read_side : kind == EventMask::write ? write_side : kind;
}

}  // namespace

ThreadPoolReactor::ThreadPoolReactor(const ThreadPoolReactorOptions& options)
    : ThreadPoolReactor(nullptr, options) {}

ThreadPoolReactor::ThreadPoolReactor(std::unique_ptr<Demultiplexer> demux,
                                     const ThreadPoolReactorOptions& options)
    : demux_(std::move(demux)), options_(options) {
  if (!demux_) {
    if (auto ec = make_demultiplexer(options.backend, demux_)) {
      throw std::system_error(ec, "thread pool reactor: cannot create the demultiplexer");
    }
    // `best` may pick io_uring through REACTOR_BACKEND; epoll serves a pool as well.
    if (options.backend == Backend::best && demux_->kind() == Backend::io_uring) {
      if (auto ec = make_demultiplexer(Backend::epoll, demux_)) {
        throw std::system_error(ec, "thread pool reactor: cannot create the demultiplexer");
      }
    }
  }
  // The ring is bound to the first thread that submits (IORING_SETUP_SINGLE_ISSUER), and here
  // whichever thread leads submits.
  if (demux_->kind() == Backend::io_uring) {
    throw std::system_error(make_error_code(errc::backend_unavailable),
                            "thread pool reactor: io_uring is bound to one thread");
  }
  direct_ctl_ = demux_->kind() == Backend::epoll;
  events_.resize(std::max<std::size_t>(1, options_.max_events_per_wait));
  if (auto ec = demux_->add(wakeup_.handle(), EventMask::read)) {
    throw std::system_error(ec, "thread pool reactor: cannot watch the wake-up descriptor");
  }
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
  for (Handle h = 0; h < static_cast<Handle>(table_.size()); ++h) {
    if (find(h) != nullptr) remove_bits(lock, h, EventMask::all_io, true);
  }
  // handle_close calls that were waiting for a busy handler still owe their call; the rest
  // (notifications, posts, timers) are dropped.
  for (Job& job : rest) {
    if (job.kind == JobKind::close) {
      call_close(lock, job.handler, job.handle, job.events);
    } else if (job.kind == JobKind::timer) {
      release_ref(timers_.finish_firing(job.timer, TimePoint::max(), false));
    }
  }
  TimerQueue::Expiry e{};
  while (timers_.pop_due(TimePoint::max(), e)) {
    if (e.handler != nullptr) {
      e.handler->registry_ = nullptr;
      e.handler->registrations_ = 0;
    }
    timers_.finish_firing(e.id, TimePoint::max(), false);
  }
}

// ---- bookkeeping (mutex held) -------------------------------------------------------------------

std::error_code ThreadPoolReactor::attach(EventHandler* handler) {
  if (handler == nullptr) return errc::invalid_argument;
  if (handler->registry_ != nullptr && handler->registry_ != this) {
    return errc::registered_elsewhere;
  }
  handler->registry_ = this;
  ++handler->registrations_;
  return {};
}

void ThreadPoolReactor::release_ref(EventHandler* handler) noexcept {
  if (handler != nullptr && handler->registrations_ > 0 && --handler->registrations_ == 0) {
    handler->registry_ = nullptr;
  }
}

ThreadPoolReactor::Registration* ThreadPoolReactor::find(Handle handle) noexcept {
  if (handle < 0 || static_cast<std::size_t>(handle) >= table_.size()) return nullptr;
  Registration& r = table_[handle];
  return r.serial != 0 ? &r : nullptr;
}

const ThreadPoolReactor::Registration* ThreadPoolReactor::find(Handle handle) const noexcept {
  return const_cast<ThreadPoolReactor*>(this)->find(handle);
}

bool ThreadPoolReactor::still_live(Handle handle, std::uint64_t serial) const noexcept {
  const Registration* r = find(handle);
  return r != nullptr && r->serial == serial;
}

Handle ThreadPoolReactor::handle_of(EventHandler* handler) const {
  if (handler == nullptr) return invalid_handle;
  const Handle h = handler->get_handle();
  const Registration* r = find(h);
  return r != nullptr && r->handler == handler ? h : invalid_handle;
}

void ThreadPoolReactor::wake_leader() noexcept {
  if (in_wait_ && !wake_pending_) {
    wake_pending_ = true;
    wakeup_.signal();
  }
}

void ThreadPoolReactor::sync(Handle handle) noexcept {
  if (in_wait_ && !direct_ctl_) {
    pending_.push_back(handle);
    wake_leader();
    return;
  }
  (void)apply_sync(handle);
}

// Brings the kernel in line with the registration (or its absence). A kernel entry left by an
// earlier registration of the same number is dropped first: that descriptor may be closed and
// the number reused, and epoll forgets closed descriptors by itself.
std::error_code ThreadPoolReactor::apply_sync(Handle handle) noexcept {
  if (static_cast<std::size_t>(handle) >= kernel_.size()) {
    kernel_.resize(std::max<std::size_t>(handle + 1, kernel_.size() * 2));
  }
  const Registration* r = find(handle);
  const EventMask want = r != nullptr && !r->queued ? readiness_of(r->interest) : EventMask::none;
  const std::uint64_t serial = r != nullptr ? r->serial : 0;
  KernelState& k = kernel_[handle];
  if (any(k.mask) && k.serial != serial) {
    (void)demux_->remove(handle);
    k.mask = EventMask::none;
  }
  if (want == k.mask) return {};
  std::error_code ec;
  if (!any(want)) {
    ec = demux_->remove(handle);
  } else if (!any(k.mask)) {
    ec = demux_->add(handle, want);
  } else {
    ec = demux_->modify(handle, want);
  }
  if (ec) {
    log_message(LogLevel::error, "thread pool reactor: demultiplexer update of handle " +
                                     std::to_string(handle) + " failed: " + ec.message());
    if (!any(want)) k.mask = EventMask::none;
    return ec;
  }
  k.mask = want;
  k.serial = serial;
  return {};
}

void ThreadPoolReactor::apply_pending() noexcept {
  std::vector<Handle> handles;
  handles.swap(pending_);
  for (Handle h : handles) (void)apply_sync(h);
}

void ThreadPoolReactor::end_registration(Handle handle) noexcept {
  Registration& r = table_[handle];
  EventHandler* handler = r.handler;
  r = Registration{};
  --user_registrations_;
  release_ref(handler);
  sync(handle);
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

// Calls handle_close under the one-thread-per-handler rule: directly when this thread is
// already the handler's (a hook removing itself) or the handler is idle; queued otherwise.
void ThreadPoolReactor::call_close(Lock& lock, EventHandler* handler, Handle handle,
                                   EventMask removed) {
  if (handler == nullptr) return;
  if (dispatching(handler)) {
    lock.unlock();
    hooks_called_.fetch_add(1, std::memory_order_relaxed);
    try {
      handler->handle_close(handle, removed);
    } catch (...) {
      lock.lock();
      throw;
    }
    lock.lock();
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
  lock.unlock();
  hooks_called_.fetch_add(1, std::memory_order_relaxed);
  try {
    CurrentHandler current(this, handler);
    handler->handle_close(handle, removed);
  } catch (...) {
    lock.lock();
    end_busy(handler, token);
    throw;
  }
  lock.lock();
  end_busy(handler, token);
}

void ThreadPoolReactor::remove_bits(Lock& lock, Handle handle, EventMask bits, bool close) {
  Registration& r = table_[handle];
  const EventMask removed =
      any(r.interest) ? r.interest & bits & EventMask::all_io : EventMask::none;
  EventHandler* handler = r.handler;
  r.interest &= ~removed;
  if (!any(r.interest)) {
    end_registration(handle);
  } else {
    sync(handle);
  }
  if (close) call_close(lock, handler, handle, removed);
}

void ThreadPoolReactor::forget_locked(EventHandler* handler) noexcept {
  for (Handle h = 0; h < static_cast<Handle>(table_.size()); ++h) {
    Registration* r = find(h);
    if (r != nullptr && r->handler == handler) end_registration(h);
  }
  timers_.forget(handler);
  for (auto it = ready_.begin(); it != ready_.end();) {
    if (it->handler != handler) {
      ++it;
      continue;
    }
    if (it->kind == JobKind::timer) {
      firing_.erase(it->timer);
      (void)timers_.finish_firing(it->timer, it->now, false);  // forgotten: frees the slot
    }
    it = ready_.erase(it);
  }
  // A running hook of this handler (the thread destroying it) must not touch it afterwards.
  if (auto it = busy_.find(handler); it != busy_.end()) {
    for (const Job& job : it->second.parked) {
      if (job.kind == JobKind::timer) {
        firing_.erase(job.timer);
        (void)timers_.finish_firing(job.timer, job.now, false);
      }
    }
    busy_.erase(it);
  }
  handler->registry_ = nullptr;
  handler->registrations_ = 0;
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
}

// ---- public API ---------------------------------------------------------------------------------

std::error_code ThreadPoolReactor::register_handler(EventHandler* handler, EventMask mask) {
  if (handler == nullptr) return errc::invalid_argument;
  return register_handler(handler->get_handle(), handler, mask);
}

std::error_code ThreadPoolReactor::register_handler(Handle handle, EventHandler* handler,
                                                    EventMask mask) {
  if (handle < 0) return errc::invalid_handle;
  if (handler == nullptr) return errc::invalid_argument;
  mask &= EventMask::all_io;
  if (!any(mask)) return errc::invalid_argument;
  Lock lock(mutex_);
  if (handle == wakeup_.handle() || find(handle) != nullptr) return errc::already_registered;
  if (static_cast<std::size_t>(handle) >= table_.size()) {
    table_.resize(std::max<std::size_t>(handle + 1, table_.size() * 2));
  }
  if (auto ec = attach(handler)) return ec;
  table_[handle] = Registration{handler, mask, next_serial_++, false};
  ++user_registrations_;
  if (in_wait_ && !direct_ctl_) {
    sync(handle);
    return {};
  }
  if (auto ec = apply_sync(handle)) {
    // The backend refused the descriptor (e.g. a regular file on epoll): report it.
    table_[handle] = Registration{};
    --user_registrations_;
    release_ref(handler);
    return ec;
  }
  return {};
}

std::error_code ThreadPoolReactor::remove_handler(EventHandler* handler, EventMask mask) {
  if (handler == nullptr) return errc::invalid_argument;
  Handle h = invalid_handle;
  {
    Lock lock(mutex_);
    h = handle_of(handler);
  }
  if (h == invalid_handle) return errc::not_registered;
  return remove_handler(h, mask);
}

std::error_code ThreadPoolReactor::remove_handler(Handle handle, EventMask mask) {
  if (handle < 0) return errc::invalid_handle;
  Lock lock(mutex_);
  Registration* r = find(handle);
  if (r == nullptr) return errc::not_registered;
  if (any(r->interest) && !any(r->interest & mask & EventMask::all_io)) {
    return errc::not_registered;
  }
  // A registration silenced with set_interest(none) is removed whole.
  const EventMask bits = any(r->interest) ? mask : EventMask::all_io;
  remove_bits(lock, handle, bits, !has(mask, EventMask::dont_call));
  return {};
}

std::error_code ThreadPoolReactor::set_interest(Handle handle, EventMask mask) {
  Lock lock(mutex_);
  Registration* r = find(handle);
  if (r == nullptr) return errc::not_registered;
  r->interest = mask & EventMask::all_io;
  sync(handle);
  return {};
}

EventMask ThreadPoolReactor::interest(Handle handle) const {
  Lock lock(mutex_);
  const Registration* r = find(handle);
  return r != nullptr ? r->interest : EventMask::none;
}

std::size_t ThreadPoolReactor::handler_count() const {
  Lock lock(mutex_);
  return user_registrations_;
}

Result<TimerId> ThreadPoolReactor::schedule_timer(EventHandler* handler, const void* arg,
                                                  Duration delay, Duration interval) {
  if (delay < Duration::zero() || interval < Duration::zero()) return errc::invalid_argument;
  Lock lock(mutex_);
  if (auto ec = attach(handler)) return ec;
  const TimePoint due = Clock::now() + delay;
  const auto earliest = timers_.earliest();
  const TimerId id = timers_.schedule(handler, arg, due, interval);
  // The leader's wait may end later than this timer is due.
  if (!earliest || due < *earliest) wake_leader();
  return id;
}

std::error_code ThreadPoolReactor::cancel_timer(TimerId id) {
  Lock lock(mutex_);
  bool found = false;
  EventHandler* released = timers_.cancel(id, found);
  if (!found) return errc::timer_not_found;
  if (auto it = firing_.find(id); it != firing_.end()) it->second = true;
  release_ref(released);
  return {};
}

std::size_t ThreadPoolReactor::cancel_timers(EventHandler* handler) {
  std::vector<TimerId> ids;
  {
    Lock lock(mutex_);
    ids = timers_.ids_of(handler);
  }
  std::size_t n = 0;
  for (TimerId id : ids) n += cancel_timer(id) ? 0 : 1;
  return n;
}

std::size_t ThreadPoolReactor::timer_count() const {
  Lock lock(mutex_);
  return timers_.size();
}

std::error_code ThreadPoolReactor::notify(EventHandler* handler, EventMask mask) {
  if (handler == nullptr || !any(mask & EventMask::all_io)) return errc::invalid_argument;
  Lock lock(mutex_);
  for (EventMask kind : {EventMask::except, EventMask::write, EventMask::read}) {
    if (!any(mask & side_of(kind))) continue;
    Job job;
    job.kind = JobKind::notify;
    job.handler = handler;
    job.events = kind;
    push_job(std::move(job));
  }
  return {};
}

std::error_code ThreadPoolReactor::post(std::function<void()> work) {
  if (!work) return errc::invalid_argument;
  Lock lock(mutex_);
  Job job;
  job.kind = JobKind::post;
  job.work = std::move(work);
  push_job(std::move(job));
  return {};
}

std::error_code ThreadPoolReactor::retire(EventHandler* handler) {
  if (handler == nullptr) return errc::invalid_argument;
  if (dispatching(handler)) return errc::reentrant_call;
  Lock lock(mutex_);
  ++retire_waiters_;
  idle_.wait(lock, [&] {
    auto it = busy_.find(handler);
    return it == busy_.end() || !it->second.running;
  });
  --retire_waiters_;
  if (handler->registry_ == this) forget_locked(handler);
  return {};
}

// ---- the loop -----------------------------------------------------------------------------------

std::error_code ThreadPoolReactor::run_event_loop(std::size_t threads) {
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
  const ThreadPoolReactor* const saved = tl_worker;
  tl_worker = this;
  Job job;
  while (!stop_) {
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
      lead(lock);
      continue;
    }
    ++idle_threads_;
    followers_.wait(lock);
    --idle_threads_;
  }
  tl_worker = saved;
}

// Takes the next runnable job: ready_ never holds a job of a running handler (see Busy).
bool ThreadPoolReactor::take_job(Job& out) {
  while (!ready_.empty()) {
    out = std::move(ready_.front());
    ready_.pop_front();
    if (out.kind == JobKind::timer) {
      auto f = firing_.find(out.timer);
      const bool cancelled = f == firing_.end() || f->second;
      if (cancelled) {
        if (f != firing_.end()) firing_.erase(f);
        release_ref(timers_.finish_firing(out.timer, out.now, false));
        advance(out.handler);
        continue;
      }
    }
    return true;
  }
  return false;
}

void ThreadPoolReactor::lead(Lock& lock) {
  leader_ = true;
  apply_pending();
  Duration timeout = Duration::max();
  if (auto due = timers_.earliest()) {
    timeout = std::max(*due - Clock::now(), Duration::zero());
  }
  const auto ns = timeout == Duration::max()
                      ? std::chrono::nanoseconds(-1)
                      : std::chrono::duration_cast<std::chrono::nanoseconds>(timeout);
  serial_at_wait_ = next_serial_;
  in_wait_ = true;
  lock.unlock();
  std::size_t count = 0;
  const std::error_code ec = demux_->wait(events_, ns, count);
  lock.lock();
  in_wait_ = false;
  leader_ = false;
  if (ec) {
    if (!error_) error_ = ec;
    stop_ = true;
    followers_.notify_all();
    return;
  }
  apply_pending();
  for (std::size_t i = 0; i < count; ++i) {
    const ReadyEvent& e = events_[i];
    if (e.fd == wakeup_.handle()) {
      wakeup_.drain();
      wake_pending_ = false;
      continue;
    }
    Registration* r = find(e.fd);
    // Registered after the wait began, or already in a job: not this event's owner.
    if (r == nullptr || r->serial >= serial_at_wait_ || r->queued) continue;
    r->queued = true;
    (void)apply_sync(e.fd);  // one-shot: out of the kernel until the job ends
    Job job;
    job.kind = JobKind::io;
    job.handler = r->handler;
    job.handle = e.fd;
    job.serial = r->serial;
    job.events = e.events;
    (void)enqueue(std::move(job));
  }
  if (timers_.size() > 0) {
    const TimePoint now = Clock::now();
    TimerQueue::Expiry x{};
    while (timers_.pop_due(now, x)) {
      Job job;
      job.kind = JobKind::timer;
      job.handler = x.handler;
      job.timer = x.id;
      job.arg = x.arg;
      job.now = now;
      firing_[x.id] = false;
      (void)enqueue(std::move(job));
    }
  }
  // Hand leadership on: one follower either leads next or takes a job.
  if (idle_threads_ > 0) followers_.notify_one();
}

void ThreadPoolReactor::run_job(Lock& lock, Job& job) {
  if (job.kind == JobKind::post) {
    lock.unlock();
    hooks_called_.fetch_add(1, std::memory_order_relaxed);
    try {
      job.work();
    } catch (...) {
      lock.lock();
      throw;
    }
    lock.lock();
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
      case JobKind::notify: {
        lock.unlock();
        hooks_called_.fetch_add(1, std::memory_order_relaxed);
        {
          CurrentHandler current(this, handler);
          if (job.events == EventMask::except) {
            handler->handle_exception(invalid_handle);
          } else if (job.events == EventMask::write) {
            handler->handle_output(invalid_handle);
          } else {
            handler->handle_input(invalid_handle);
          }
        }
        lock.lock();
        break;
      }
      case JobKind::close: call_close(lock, handler, job.handle, job.events); break;
      case JobKind::post: break;
    }
  } catch (...) {
    if (!lock.owns_lock()) lock.lock();
    end_busy(handler, token);
    throw;
  }
  end_busy(handler, token);
}

void ThreadPoolReactor::run_timer(Lock& lock, Job& job) {
  lock.unlock();
  hooks_called_.fetch_add(1, std::memory_order_relaxed);
  int rc = -1;
  try {
    CurrentHandler current(this, job.handler);
    rc = job.handler->handle_timeout(job.now, job.arg);
  } catch (...) {
    lock.lock();
    firing_.erase(job.timer);
    release_ref(timers_.finish_firing(job.timer, job.now, false));
    throw;
  }
  lock.lock();
  firing_.erase(job.timer);
  bool pending = false;
  // A handler destroyed by its hook was forgotten: finish_firing then returns nullptr.
  EventHandler* released = timers_.finish_firing(job.timer, job.now, rc >= 0, &pending);
  if (!pending) release_ref(released);
  if (pending) wake_leader();  // the leader's wait may not know this timer's next expiry
}

void ThreadPoolReactor::run_io(Lock& lock, Job& job) {
  const Handle handle = job.handle;
  const std::uint64_t serial = job.serial;
  EventHandler* handler = job.handler;
  if (has(job.events, EventMask::invalid)) {
    // The descriptor was closed behind our back (select / poll report it).
    if (still_live(handle, serial)) remove_bits(lock, handle, EventMask::all_io, true);
    return;
  }
  EventMask again = EventMask::none;
  for (EventMask kind : {EventMask::except, EventMask::write, EventMask::read}) {
    if (!any(job.events & kind)) continue;
    if (!still_live(handle, serial)) return;
    Registration& r = table_[handle];
    const EventMask bits = r.interest & side_of(kind);
    if (!any(bits) || r.handler != handler) continue;
    lock.unlock();
    hooks_called_.fetch_add(1, std::memory_order_relaxed);
    int rc = 0;
    try {
      CurrentHandler current(this, handler);
      rc = kind == EventMask::read    ? handler->handle_input(handle)
           : kind == EventMask::write ? handler->handle_output(handle)
                                      : handler->handle_exception(handle);
    } catch (...) {
      lock.lock();
      if (still_live(handle, serial)) {
        table_[handle].queued = false;
        sync(handle);
      }
      throw;
    }
    lock.lock();
    // The hook may have removed, re-registered or destroyed anything: look again.
    if (rc == 0 || !still_live(handle, serial)) continue;
    if (rc < 0) {
      // Still queued: what is left stays out of the kernel until this job ends.
      remove_bits(lock, handle, bits, true);
      continue;
    }
    again |= kind;
  }
  if (!still_live(handle, serial)) return;
  if (any(again)) {
    // Served again after the jobs already queued, still out of the kernel's interest.
    Job next;
    next.kind = JobKind::io;
    next.handler = handler;
    next.handle = handle;
    next.serial = serial;
    next.events = again;
    push_job(std::move(next));
    return;
  }
  table_[handle].queued = false;
  sync(handle);
}

}  // namespace reactor
