// The Reactor: DispatchCore run on one thread. Hooks are called inline, in the order the core
// prescribes; what is particular here is the "call again" list (hooks that returned > 0) and
// the bounded batch of notifications per iteration.
#include "reactor/reactor.hpp"

#include <algorithm>
#include <ostream>

#include "reactor/detail/dispatch_core.hpp"

namespace reactor {
namespace {

// Sets `flag` for the scope; also when a hook throws.
class ScopedFlag {
 public:
  explicit ScopedFlag(bool& flag) : flag_(flag) { flag_ = true; }
  ~ScopedFlag() { flag_ = false; }
  ScopedFlag(const ScopedFlag&) = delete;
  ScopedFlag& operator=(const ScopedFlag&) = delete;

 private:
  bool& flag_;
};

// The blocking call runs as it is: nothing to release around it on one thread.
constexpr auto in_place = [](auto&& call) { call(); };

}  // namespace

Reactor::Reactor(Backend backend) : Reactor(ReactorOptions{backend}) {}

Reactor::Reactor(const ReactorOptions& options) : Reactor(nullptr, options) {}

Reactor::Reactor(std::unique_ptr<Demultiplexer> demux, const ReactorOptions& options)
    : core_(std::make_unique<detail::DispatchCore>(std::move(demux), options.backend,
                                                   static_cast<HandlerRegistry&>(*this),
                                                   options.max_events_per_wait, "reactor")),
      options_(options) {
  if (options_.max_notifications_per_iteration == 0) options_.max_notifications_per_iteration = 1;
}

Reactor::~Reactor() {
  // Application registrations end with handle_close so their owners can release them; the
  // core's destructor drops timers and signal watches without calling them.
  core_->remove_all([](EventHandler* handler, Handle h, EventMask removed) {
    if (handler != nullptr) handler->handle_close(h, removed);
  });
}

Backend Reactor::backend() const noexcept { return core_->backend(); }

void Reactor::forget_handler(EventHandler& handler) noexcept { core_->forget(handler); }

// Last: handle_close may delete the handler or register anything anew.
void Reactor::close_removed(Handle handle, EventHandler* handler, EventMask removed) {
  if (handler != nullptr) handler->handle_close(handle, removed);
}

// ---- registrations -----------------------------------------------------------------------------

std::error_code Reactor::register_handler(EventHandler* handler, EventMask mask) {
  if (handler == nullptr) return errc::invalid_argument;
  return register_handler(handler->get_handle(), handler, mask);
}

std::error_code Reactor::register_handler(Handle handle, EventHandler* handler, EventMask mask) {
  return core_->add(handle, handler, mask);
}

std::error_code Reactor::remove_handler(EventHandler* handler, EventMask mask, CloseHook hook) {
  if (handler == nullptr) return errc::invalid_argument;
  const Handle h = core_->handle_of(handler);
  if (h == invalid_handle) return errc::not_registered;
  return remove_handler(h, mask, hook);
}

std::error_code Reactor::remove_handler(Handle handle, EventMask mask, CloseHook hook) {
  auto gone = core_->remove(handle, mask);
  if (!gone) return gone.error();
  if (hook == CloseHook::call) close_removed(handle, gone.value().handler, gone.value().removed);
  return {};
}

std::error_code Reactor::set_interest(Handle handle, EventMask mask) {
  return core_->change_interest(handle, mask);
}

std::error_code Reactor::add_interest(Handle handle, EventMask mask) {
  return core_->change_interest(handle, interest(handle) | mask);
}

std::error_code Reactor::clear_interest(Handle handle, EventMask mask) {
  return core_->change_interest(handle, interest(handle) & ~mask);
}

EventMask Reactor::interest(Handle handle) const noexcept {
  const detail::Registration* r = core_->find(handle);
  return r != nullptr ? r->interest : EventMask::none;
}

EventHandler* Reactor::handler(Handle handle) const noexcept {
  const detail::Registration* r = core_->find(handle);
  return r != nullptr ? r->handler : nullptr;
}

std::size_t Reactor::handler_count() const noexcept { return core_->handler_count(); }

std::error_code Reactor::suspend_handler(Handle handle) {
  return core_->set_suspended(handle, true);
}

std::error_code Reactor::resume_handler(Handle handle) {
  return core_->set_suspended(handle, false);
}

std::error_code Reactor::suspend_handler(EventHandler* handler) {
  const Handle h = core_->handle_of(handler);
  return h == invalid_handle ? std::error_code(errc::not_registered) : suspend_handler(h);
}

std::error_code Reactor::resume_handler(EventHandler* handler) {
  const Handle h = core_->handle_of(handler);
  return h == invalid_handle ? std::error_code(errc::not_registered) : resume_handler(h);
}

bool Reactor::is_suspended(Handle handle) const noexcept {
  const detail::Registration* r = core_->find(handle);
  return r != nullptr && r->suspended;
}

// ---- timers ------------------------------------------------------------------------------------

Result<TimerId> Reactor::schedule_timer(EventHandler* handler, const void* arg, Duration delay,
                                        Duration interval) {
  return core_->schedule(handler, arg, delay, interval);
}

std::error_code Reactor::cancel_timer(TimerId id) { return core_->cancel(id); }

std::size_t Reactor::cancel_timers(EventHandler* handler) { return core_->cancel_all(handler); }

std::error_code Reactor::reset_timer_interval(TimerId id, Duration interval) {
  return core_->reset_interval(id, interval);
}

std::size_t Reactor::timer_count() const noexcept { return core_->timers().size(); }

void Reactor::expire_timers(TimePoint now, std::size_t& dispatched) {
  TimerQueue& timers = core_->timers();
  if (timers.size() == 0) return;
  // Only timers due before this pass began run in it, so an interval shorter than the
  // callback cannot keep the loop here forever.
  TimerQueue::Expiry e{};
  while (timers.pop_due(now, e)) {
    int rc = 0;
    try {
      rc = e.handler->handle_timeout(now, e.arg);
    } catch (...) {
      (void)core_->finish_timer(e.id, now, false);
      throw;
    }
    ++dispatched;
    ++core_->counters().timers_fired;
    (void)core_->finish_timer(e.id, now, rc >= 0);
  }
}

// ---- notify / post / signals -------------------------------------------------------------------

std::error_code Reactor::notify(EventHandler* handler, EventMask mask) {
  return core_->notify(handler, mask);
}

std::error_code Reactor::post(std::function<void()> work) { return core_->post(std::move(work)); }

std::size_t Reactor::purge_notifications(EventHandler* handler) {
  return core_->notifications().purge(handler);
}

void Reactor::run_notifications(std::size_t& dispatched) {
  NotificationQueue& queue = core_->notifications();
  Notification n;
  for (std::size_t i = 0; i < options_.max_notifications_per_iteration && queue.pop(n); ++i) {
    ++dispatched;
    ++core_->counters().notifications_run;
    if (n.work) {
      n.work();
    } else {
      (void)detail::call_hook(*n.handler, invalid_handle, n.mask);
    }
  }
}

std::error_code Reactor::register_signal(int signum, EventHandler* handler) {
  return core_->register_signal(signum, handler);
}

std::error_code Reactor::remove_signal(int signum, EventHandler* handler) {
  return core_->remove_signal(signum, handler);
}

void Reactor::run_signals(std::size_t& dispatched) {
  for (const SignalWatches::Watch& w : core_->arrived_signals()) {
    // An earlier hook may have removed this watch or destroyed its handler.
    if (!core_->watching(w.signum, w.handler)) continue;
    ++dispatched;
    ++core_->counters().signals_delivered;
    if (w.handler->handle_signal(w.signum) < 0) (void)remove_signal(w.signum, w.handler);
  }
}

// ---- the loop ----------------------------------------------------------------------------------

Result<std::size_t> Reactor::handle_events(Duration timeout) {
  if (dispatching_) return errc::reentrant_call;
  ScopedFlag busy(dispatching_);
  // Work already waiting (hooks to call again, a notification batch) must not wait for I/O.
  if (!again_.empty() || core_->notifications().has_batch()) timeout = Duration::zero();
  ReactorStats& stats = core_->counters();
  TimePoint before_wait{};
  TimePoint after_wait{};
  if (auto ec = core_->wait(timeout, in_place, before_wait, after_wait)) return ec;
  ++stats.iterations;
  stats.time_blocked += after_wait - before_wait;
  std::size_t dispatched = 0;
  for (const ReadyEvent& event : core_->ready()) dispatch_ready(event, dispatched);
  dispatch_again(dispatched);
  expire_timers(after_wait, dispatched);
  run_notifications(dispatched);
  stats.hooks_called += dispatched;
  if (options_.collect_timing) {
    core_->count_dispatch(Clock::now() - after_wait);
  }
  return dispatched;
}

std::error_code Reactor::run_event_loop() {
  std::error_code ec;
  while (!stop_.load(std::memory_order_acquire)) {
    auto r = handle_events();
    if (!r) {
      ec = r.error();
      break;
    }
  }
  stop_.store(false, std::memory_order_release);
  return ec;
}

void Reactor::end_event_loop() noexcept {
  stop_.store(true, std::memory_order_release);
  core_->notifications().wake();
}

void Reactor::dispatch_ready(const ReadyEvent& event, std::size_t& dispatched) {
  if (core_->is_wakeup(event.fd)) {
    core_->notifications().collect();
    return;
  }
  if (core_->is_signal_pipe(event.fd)) {
    run_signals(dispatched);
    return;
  }
  detail::Registration* r = core_->owner_of(event.fd);
  if (r == nullptr) return;
  if (has(event.events, EventMask::invalid)) {
    // The descriptor was closed behind the reactor's back (select / poll report it).
    const detail::Removal gone = core_->remove_bits(event.fd, EventMask::all_io);
    close_removed(event.fd, gone.handler, gone.removed);
    return;
  }
  const EventMask events = event.events | std::exchange(r->again, EventMask::none);
  dispatch_io(event.fd, r->serial, events, dispatched);
}

void Reactor::dispatch_io(Handle handle, std::uint64_t serial, EventMask events,
                          std::size_t& dispatched) {
  const EventMask again = core_->run_hooks(
      handle, serial, events,
      [&](EventHandler& h, EventMask kind) {
        ++dispatched;
        return detail::call_hook(h, handle, kind);
      },
      [&](const detail::Removal& gone) { close_removed(handle, gone.handler, gone.removed); });
  if (!any(again) || !core_->still_live(handle, serial)) return;
  detail::Registration& r = *core_->find(handle);
  if (!any(r.again)) again_.push_back({handle, serial});
  r.again |= again;
}

void Reactor::dispatch_again(std::size_t& dispatched) {
  if (again_.empty()) return;
  again_batch_.swap(again_);
  std::size_t i = 0;
  try {
    for (; i < again_batch_.size(); ++i) {
      const AgainEntry e = again_batch_[i];
      detail::Registration* r = core_->find(e.handle);
      if (r == nullptr || r->serial != e.serial || !any(r->again)) continue;
      dispatch_io(e.handle, e.serial, std::exchange(r->again, EventMask::none), dispatched);
    }
  } catch (...) {
    // A hook threw: keep the requests not yet served for the next iteration.
    again_.insert(again_.end(), again_batch_.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                  again_batch_.end());
    again_batch_.clear();
    throw;
  }
  again_batch_.clear();
}

// ---- introspection -----------------------------------------------------------------------------

ReactorStats Reactor::stats() const { return core_->stats(core_->notifications().size()); }

void Reactor::dump(std::ostream& os) const {
  os << "reactor: " << stats() << '\n';
  core_->dump_handles(os);
}

}  // namespace reactor
