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
#include <cerrno>
#include <iterator>
#include <ostream>
#include <string>

#include "reactor/detail/log.hpp"

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
  for (const SignalWatches::Watch& w : signals_.watches()) {
    w.handler->registry_ = nullptr;
    w.handler->registrations_ = 0;
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
  const EventMask want =
      r != nullptr && !r->queued && !r->suspended ? readiness_of(r->interest) : EventMask::none;
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

// After ending a registration: where only the leader may touch the backend and it is waiting,
// wait until it has applied the change, so the caller may close the descriptor as soon as the
// call returns (the leader would otherwise touch a closed, maybe reused, descriptor number).
void ThreadPoolReactor::await_kernel(Lock& lock) {
  if (!in_wait_ || direct_ctl_ || pending_.empty()) return;  // nothing left for the leader
  wake_leader();
  const std::uint64_t round = apply_round_;
  applied_.wait(lock, [&] { return apply_round_ != round; });
}

void ThreadPoolReactor::apply_pending() noexcept {
  ++apply_round_;
  applied_.notify_all();
  if (signals_.read_handle() >= 0 && !signal_watched_) {
    if (auto ec = demux_->add(signals_.read_handle(), EventMask::read)) {
      log_message(LogLevel::error,
                  "thread pool reactor: cannot watch the signal pipe: " + ec.message());
    }
    signal_watched_ = true;
  }
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
    await_kernel(lock);
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
  for (int signum : signals_.signals_of(handler)) (void)remove_signal_locked(signum, handler);
  for (auto it = ready_.begin(); it != ready_.end();) {
    if (it->handler != handler) {
      ++it;
      continue;
    }
    if (it->kind == JobKind::notify) --notifications_queued_;
    if (it->kind == JobKind::timer) {
      firing_.erase(it->timer);
      (void)timers_.finish_firing(it->timer, it->now, false);  // forgotten: frees the slot
    }
    it = ready_.erase(it);
  }
  // A running hook of this handler (the thread destroying it) must not touch it afterwards.
  if (auto it = busy_.find(handler); it != busy_.end()) {
    for (const Job& job : it->second.parked) {
      if (job.kind == JobKind::notify) --notifications_queued_;
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
  await_kernel(lock);
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
  if (handle == wakeup_.handle() || handle == signals_.read_handle() || find(handle) != nullptr) {
    return errc::already_registered;
  }
  if (static_cast<std::size_t>(handle) >= table_.size()) {
    table_.resize(std::max<std::size_t>(handle + 1, table_.size() * 2));
  }
  if (auto ec = attach(handler)) return ec;
  table_[handle] = Registration{};
  table_[handle].handler = handler;
  table_[handle].interest = mask;
  table_[handle].serial = next_serial_++;
  ++user_registrations_;
  if (in_wait_ && !direct_ctl_) {
    sync(handle);
  } else if (auto ec = apply_sync(handle)) {
    // The backend refused the descriptor (e.g. a regular file on epoll): report it.
    table_[handle] = Registration{};
    --user_registrations_;
    release_ref(handler);
    return ec;
  }
  // Registered from a job on this pool (an acceptor starting a service): the new handler counts
  // as running on this thread until that job ends, so its first events wait for the job.
  if (tl_adopter == this && tl_adopted != nullptr && !busy_.contains(handler)) {
    tl_adopted->emplace_back(handler, begin_busy(handler));
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

std::error_code ThreadPoolReactor::add_interest(Handle handle, EventMask mask) {
  Lock lock(mutex_);
  Registration* r = find(handle);
  if (r == nullptr) return errc::not_registered;
  r->interest |= mask & EventMask::all_io;
  sync(handle);
  return {};
}

std::error_code ThreadPoolReactor::clear_interest(Handle handle, EventMask mask) {
  Lock lock(mutex_);
  Registration* r = find(handle);
  if (r == nullptr) return errc::not_registered;
  r->interest &= ~(mask & EventMask::all_io);
  sync(handle);
  return {};
}

EventHandler* ThreadPoolReactor::handler(Handle handle) const {
  Lock lock(mutex_);
  const Registration* r = find(handle);
  return r != nullptr ? r->handler : nullptr;
}

std::error_code ThreadPoolReactor::set_suspended(Handle handle, bool suspended) {
  if (handle < 0) return errc::invalid_handle;
  Lock lock(mutex_);
  Registration* r = find(handle);
  if (r == nullptr) return errc::not_registered;
  r->suspended = suspended;
  sync(handle);  // a queued job holds the handle; its end re-syncs with the new state
  return {};
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
    h = handle_of(handler);
  }
  return h == invalid_handle ? std::error_code(errc::not_registered) : suspend_handler(h);
}

std::error_code ThreadPoolReactor::resume_handler(EventHandler* handler) {
  Handle h = invalid_handle;
  {
    Lock lock(mutex_);
    h = handle_of(handler);
  }
  return h == invalid_handle ? std::error_code(errc::not_registered) : resume_handler(h);
}

bool ThreadPoolReactor::is_suspended(Handle handle) const {
  Lock lock(mutex_);
  const Registration* r = find(handle);
  return r != nullptr && r->suspended;
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
  const TimePoint due = deadline_after(Clock::now(), delay);
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

std::error_code ThreadPoolReactor::reset_timer_interval(TimerId id, Duration interval) {
  if (interval < Duration::zero()) return errc::invalid_argument;
  Lock lock(mutex_);
  if (!timers_.reset_interval(id, interval)) return errc::timer_not_found;
  wake_leader();  // a shorter period may make the next expiry earlier than the leader's wait
  return {};
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
    ++notifications_queued_;
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
  ++notifications_queued_;
  push_job(std::move(job));
  return {};
}

std::size_t ThreadPoolReactor::purge_notifications(EventHandler* handler) {
  Lock lock(mutex_);
  auto it = busy_.find(handler);
  if (it == busy_.end()) return 0;  // a handler with queued work is always in busy_
  auto is_notify = [&](const Job& job) { return job.kind == JobKind::notify; };
  std::size_t n = std::erase_if(it->second.parked, is_notify);
  if (!it->second.running) {
    // Its one runnable job is in ready_: if that is a notification, the next job takes its place.
    auto job = std::find_if(ready_.begin(), ready_.end(),
                            [&](const Job& j) { return j.handler == handler; });
    if (job != ready_.end() && is_notify(*job)) {
      ready_.erase(job);
      ++n;
      advance(handler);
      if (!ready_.empty() && idle_threads_ > 0) followers_.notify_one();
    }
  }
  notifications_queued_ -= n;
  return n;
}

// ---- signals ------------------------------------------------------------------------------------

std::error_code ThreadPoolReactor::register_signal(int signum, EventHandler* handler) {
  if (handler == nullptr) return errc::invalid_argument;
  Lock lock(mutex_);
  if (signals_.contains(signum, handler)) return errc::already_registered;
  bool created = false;
  if (auto ec = signals_.open_pipe(created)) return ec;
  if (created) signal_watched_ = false;
  if (!signal_watched_) {
    if (in_wait_ && !direct_ctl_) {
      wake_leader();  // the leader adds the pipe after its wait (apply_pending)
    } else {
      apply_pending();
    }
  }
  if (auto ec = attach(handler)) return ec;
  if (auto ec = signals_.add(signum, handler)) {
    release_ref(handler);
    return ec;
  }
  return {};
}

std::error_code ThreadPoolReactor::remove_signal(int signum, EventHandler* handler) {
  Lock lock(mutex_);
  return remove_signal_locked(signum, handler);
}

std::error_code ThreadPoolReactor::remove_signal_locked(int signum, EventHandler* handler) {
  if (!signals_.remove(signum, handler)) return errc::not_registered;
  release_ref(handler);
  return {};
}

// The leader drains the pipe and queues one job per watching handler and signal.
void ThreadPoolReactor::read_signals() {
  SignalWatches::Arrivals arrived{};
  signals_.drain(arrived);
  for (int signum = 1; signum < static_cast<int>(arrived.size()); ++signum) {
    if (!arrived[signum]) continue;
    for (const SignalWatches::Watch& w : signals_.watches()) {
      if (w.signum != signum) continue;
      Job job;
      job.kind = JobKind::signal;
      job.handler = w.handler;
      job.signum = signum;
      (void)enqueue(std::move(job));
    }
  }
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
  if (handler->registry_ == this) forget_locked(handler);
  await_kernel(lock);
  return {};
}

// ---- the loop -----------------------------------------------------------------------------------

void ThreadPoolReactor::count_hook() noexcept {
  hooks_called_.fetch_add(1, std::memory_order_relaxed);
  ++tl_hooks;
}

void ThreadPoolReactor::count_dispatch(Duration spent) noexcept {
  stats_.time_dispatching += spent;
  stats_.longest_dispatch = std::max(stats_.longest_dispatch, spent);
}

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
    if (out.kind == JobKind::notify || out.kind == JobKind::post) --notifications_queued_;
    ++jobs_since_wait_;
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

// The leader's part: one wait in the demultiplexer (at most `limit`, less if a timer is due
// sooner), then every ready handle, due timer and signal becomes a job.
std::error_code ThreadPoolReactor::wait_and_collect(Lock& lock, Duration limit) {
  leader_ = true;
  jobs_since_wait_ = 0;
  const TimePoint start = Clock::now();
  const TimePoint deadline = deadline_after(start, limit);  // Duration::max(): TimePoint::max()
  std::size_t count = 0;
  TimePoint after = start;
  std::error_code ec;
  for (;;) {
    apply_pending();
    Duration timeout = deadline == TimePoint::max() ? Duration::max() : deadline - after;
    if (auto due = timers_.earliest()) timeout = std::min(timeout, time_until(*due, after));
    timeout = std::max(timeout, Duration::zero());
    const auto ns = timeout == Duration::max()
                        ? std::chrono::nanoseconds(-1)
                        : std::chrono::duration_cast<std::chrono::nanoseconds>(timeout);
    serial_at_wait_ = next_serial_;
    in_wait_ = true;
    lock.unlock();
    ec = demux_->wait(events_, ns, count);
    after = Clock::now();
    lock.lock();
    in_wait_ = false;
    if (ec || count > 0 || timeout == Duration::zero() || stop_) break;
    // Nothing ready: a timer came due, the time is up, or the wait ended early (EINTR, or a
    // backend whose clock is coarser than ours). Only the last means wait more.
    if (auto due = timers_.earliest(); due && *due <= after) break;
    if (after >= deadline) break;
  }
  leader_ = false;
  ++stats_.iterations;
  stats_.time_blocked += after - start;
  if (ec) return ec;
  apply_pending();
  for (std::size_t i = 0; i < count; ++i) {
    const ReadyEvent& e = events_[i];
    if (e.fd == wakeup_.handle()) {
      wakeup_.drain();
      wake_pending_ = false;
      continue;
    }
    if (e.fd == signals_.read_handle()) {
      read_signals();
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
    TimerQueue::Expiry x{};
    while (timers_.pop_due(after, x)) {
      Job job;
      job.kind = JobKind::timer;
      job.handler = x.handler;
      job.timer = x.id;
      job.arg = x.arg;
      job.now = after;
      firing_[x.id] = false;
      (void)enqueue(std::move(job));
    }
  }
  jobs_in_round_ = ready_.size();
  // Hand leadership on: while this thread takes a job, one follower leads next or takes another.
  // With nothing queued this thread leads again itself; waking a follower would only spin it.
  if (idle_threads_ > 0 && !ready_.empty()) followers_.notify_one();
  return {};
}

void ThreadPoolReactor::run_job(Lock& lock, Job& job) {
  const TimePoint start = Clock::now();
  struct Timing {  // adds the job's duration to the counters however it ends (lock held then)
    ThreadPoolReactor& self;
    Lock& lock;
    TimePoint start;
    ~Timing() {
      if (lock.owns_lock()) self.count_dispatch(Clock::now() - start);
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
    ++stats_.notifications_run;
    lock.unlock();
    count_hook();
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
      case JobKind::signal: run_signal(lock, job); break;
      case JobKind::notify: {
        ++stats_.notifications_run;
        lock.unlock();
        count_hook();
        if (job.events == EventMask::except) {
          handler->handle_exception(invalid_handle);
        } else if (job.events == EventMask::write) {
          handler->handle_output(invalid_handle);
        } else {
          handler->handle_input(invalid_handle);
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

void ThreadPoolReactor::run_signal(Lock& lock, Job& job) {
  // The watch may have been removed since the signal was read.
  if (!signals_.contains(job.signum, job.handler)) return;
  ++stats_.signals_delivered;
  lock.unlock();
  count_hook();
  int rc = 0;
  try {
    rc = job.handler->handle_signal(job.signum);
  } catch (...) {
    lock.lock();
    throw;
  }
  lock.lock();
  if (rc < 0) (void)remove_signal_locked(job.signum, job.handler);
}

void ThreadPoolReactor::run_timer(Lock& lock, Job& job) {
  ++stats_.timers_fired;
  lock.unlock();
  count_hook();
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
    if (!any(bits) || r.handler != handler || r.suspended) continue;
    const int slot = kind == EventMask::read ? 0 : kind == EventMask::write ? 1 : 2;
    ++r.calls[slot];
    ++(slot == 0   ? stats_.input_events
       : slot == 1 ? stats_.output_events
                   : stats_.exception_events);
    lock.unlock();
    count_hook();
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

// ---- introspection ------------------------------------------------------------------------------

ReactorStats ThreadPoolReactor::stats() const {
  Lock lock(mutex_);
  ReactorStats s = stats_;
  s.backend = demux_->kind();
  s.hooks_called = hooks_called_.load(std::memory_order_relaxed);
  s.handles_registered = user_registrations_;
  s.timers_pending = timers_.size();
  s.notifications_queued = notifications_queued_;
  return s;
}

void ThreadPoolReactor::dump(std::ostream& os) const {
  os << "thread pool reactor: " << stats() << '\n';
  Lock lock(mutex_);
  for (Handle h = 0; h < static_cast<Handle>(table_.size()); ++h) {
    const Registration* r = find(h);
    if (r == nullptr || r->handler == nullptr) continue;
    os << "  handle " << h << ": " << handler_type_name(*r->handler)
       << " interest=" << event_mask_name(r->interest) << (r->suspended ? " suspended" : "")
       << " input=" << r->calls[0] << " output=" << r->calls[1] << " except=" << r->calls[2]
       << '\n';
  }
}

}  // namespace reactor
