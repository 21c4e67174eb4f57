// The Reactor: registration table, event loop and dispatch.
//
// Lifetime rules the dispatch code keeps (see DESIGN.md's promises):
// - Every registration has a serial number. After any hook returns, the code looks the handle
//   up again and compares serials before touching the registration or the handler, because the
//   hook may have removed or destroyed either (or registered a new handler on the same number).
// - A ready event belongs to a registration only if that registration existed when the wait
//   began (serial < serial_at_wait_): a handle closed and reopened inside one batch never gets
//   the old descriptor's event.
#include "reactor/reactor.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <string>

#include "reactor/detail/log.hpp"

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

// The reactor's own descriptors are served by these; they never reach user code.
constexpr EventHandler* internal_marker = nullptr;

}  // namespace

Reactor::Reactor(Backend backend) : Reactor(ReactorOptions{backend}) {}

Reactor::Reactor(const ReactorOptions& options) : Reactor(nullptr, options) {}

Reactor::Reactor(std::unique_ptr<Demultiplexer> demux, const ReactorOptions& options)
    : demux_(std::move(demux)), options_(options) {
  if (!demux_) {
    if (auto ec = make_demultiplexer(options.backend, demux_)) {
      throw std::system_error(ec, "reactor: cannot create the demultiplexer");
    }
  }
  ready_.resize(std::max<std::size_t>(1, options_.max_events_per_wait));
  if (options_.max_notifications_per_iteration == 0) options_.max_notifications_per_iteration = 1;
  if (auto ec = add_registration(notifications_.handle(), internal_marker, EventMask::read, true)) {
    throw std::system_error(ec, "reactor: cannot watch the wake-up descriptor");
  }
}

Reactor::~Reactor() {
  // Application registrations end with handle_close so their owners can release them.
  for (Handle h = 0; h < static_cast<Handle>(table_.size()); ++h) {
    Registration* r = find(h);
    if (r != nullptr && !r->internal) remove_bits(h, EventMask::all_io, true);
  }
  // Whatever is left (timers, signal watches) is dropped; detach the handlers so that their
  // destructors do not call back into a reactor that no longer exists.
  auto detach = [](EventHandler* handler) {
    if (handler != nullptr) {
      handler->registry_ = nullptr;
      handler->registrations_ = 0;
    }
  };
  TimerQueue::Expiry e{};
  while (timers_.pop_due(TimePoint::max(), e)) {
    detach(e.handler);
    timers_.finish_firing(e.id, TimePoint::max(), false);
  }
  for (const SignalWatches::Watch& w : signals_.watches()) detach(w.handler);
}

// ---- registration bookkeeping ------------------------------------------------------------------

std::error_code Reactor::attach(EventHandler* handler) {
  if (handler == nullptr) return errc::invalid_argument;
  if (handler->registry_ != nullptr && handler->registry_ != this) {
    return errc::registered_elsewhere;
  }
  handler->registry_ = this;
  ++handler->registrations_;
  return {};
}

void Reactor::release_ref(EventHandler* handler) noexcept {
  if (handler != nullptr && handler->registrations_ > 0 && --handler->registrations_ == 0) {
    handler->registry_ = nullptr;
  }
}

Reactor::Registration* Reactor::find(Handle handle) noexcept {
  if (handle < 0 || static_cast<std::size_t>(handle) >= table_.size()) return nullptr;
  Registration& r = table_[handle];
  return r.serial != 0 ? &r : nullptr;
}

const Reactor::Registration* Reactor::find(Handle handle) const noexcept {
  return const_cast<Reactor*>(this)->find(handle);
}

bool Reactor::still_live(Handle handle, std::uint64_t serial) const noexcept {
  const Registration* r = find(handle);
  return r != nullptr && r->serial == serial;
}

std::error_code Reactor::add_registration(Handle handle, EventHandler* handler, EventMask mask,
                                          bool internal) {
  if (handle < 0) return errc::invalid_handle;
  if (!internal && handler == nullptr) return errc::invalid_argument;
  mask &= EventMask::all_io;
  if (!any(mask)) return errc::invalid_argument;
  if (find(handle) != nullptr) return errc::already_registered;
  if (static_cast<std::size_t>(handle) >= table_.size()) {
    table_.resize(std::max<std::size_t>(handle + 1, table_.size() * 2));
  }
  if (!internal) {
    if (auto ec = attach(handler)) return ec;
  }
  Registration& r = table_[handle];
  r = Registration{handler,        mask,  EventMask::none, EventMask::none,
                   next_serial_++, false, internal};
  if (auto ec = sync_kernel(handle)) {
    table_[handle] = Registration{};
    if (!internal) release_ref(handler);
    return ec;
  }
  if (!internal) ++user_registrations_;
  return {};
}

// Brings the demultiplexer in line with the registration; a system call only when the readiness
// bits actually change, so steady-state dispatch never touches the kernel's interest set.
std::error_code Reactor::sync_kernel(Handle handle) noexcept {
  Registration& r = table_[handle];
  const EventMask want = r.suspended ? EventMask::none : readiness_of(r.interest);
  if (want == r.in_kernel) return {};
  std::error_code ec;
  if (!any(want)) {
    ec = demux_->remove(handle);
  } else if (!any(r.in_kernel)) {
    ec = demux_->add(handle, want);
  } else {
    ec = demux_->modify(handle, want);
  }
  if (!ec) r.in_kernel = want;
  return ec;
}

void Reactor::end_registration(Handle handle) noexcept {
  Registration& r = table_[handle];
  if (any(r.in_kernel)) {
    // Nobody to return this to: removal must go on, the registration is over either way.
    if (auto ec = demux_->remove(handle)) {
      log_message(LogLevel::error,
                  "demultiplexer remove(" + std::to_string(handle) + ") failed: " + ec.message());
    }
  }
  EventHandler* handler = r.handler;
  const bool internal = r.internal;
  r = Registration{};
  if (!internal) {
    --user_registrations_;
    release_ref(handler);
  }
}

void Reactor::remove_bits(Handle handle, EventMask bits, bool call_close) {
  Registration& r = table_[handle];
  const EventMask removed = r.interest & bits & EventMask::all_io;
  EventHandler* handler = r.handler;
  r.interest &= ~removed;
  r.again &= ~removed;
  if (!any(r.interest)) {
    end_registration(handle);
  } else if (auto ec = sync_kernel(handle)) {
    log_message(LogLevel::error, "demultiplexer update of handle " + std::to_string(handle) +
                                     " failed: " + ec.message());
  }
  // Last: handle_close may delete the handler or register anything anew.
  if (call_close && handler != nullptr) handler->handle_close(handle, removed);
}

Handle Reactor::handle_of(EventHandler* handler) const {
  if (handler == nullptr) return invalid_handle;
  const Handle h = handler->get_handle();
  const Registration* r = find(h);
  return r != nullptr && r->handler == handler ? h : invalid_handle;
}

void Reactor::forget_handler(EventHandler& handler) noexcept {
  for (Handle h = 0; h < static_cast<Handle>(table_.size()); ++h) {
    Registration* r = find(h);
    if (r != nullptr && r->handler == &handler) {
      r->handler = nullptr;  // no hook may run on a dying handler
      end_registration(h);
    }
  }
  timers_.forget(&handler);
  // remove_signal also gives the signal back to its old disposition when no watch is left.
  for (int signum : signals_.signals_of(&handler)) (void)remove_signal(signum, &handler);
  notifications_.purge(&handler);
  handler.registry_ = nullptr;
  handler.registrations_ = 0;
}

// ---- public registration API -------------------------------------------------------------------

std::error_code Reactor::register_handler(EventHandler* handler, EventMask mask) {
  if (handler == nullptr) return errc::invalid_argument;
  return register_handler(handler->get_handle(), handler, mask);
}

std::error_code Reactor::register_handler(Handle handle, EventHandler* handler, EventMask mask) {
  return add_registration(handle, handler, mask, false);
}

std::error_code Reactor::remove_handler(EventHandler* handler, EventMask mask) {
  if (handler == nullptr) return errc::invalid_argument;
  const Handle h = handle_of(handler);
  if (h == invalid_handle) return errc::not_registered;
  return remove_handler(h, mask);
}

std::error_code Reactor::remove_handler(Handle handle, EventMask mask) {
  if (handle < 0) return errc::invalid_handle;
  Registration* r = find(handle);
  if (r == nullptr || r->internal) return errc::not_registered;
  if (!any(r->interest & mask & EventMask::all_io) && any(r->interest)) {
    return errc::not_registered;
  }
  // A registration silenced with set_interest(none) is removed whole.
  const EventMask bits = any(r->interest) ? mask : EventMask::all_io;
  if (!any(r->interest)) {
    EventHandler* handler = r->handler;
    end_registration(handle);
    if (!has(mask, EventMask::dont_call)) handler->handle_close(handle, EventMask::none);
    return {};
  }
  remove_bits(handle, bits, !has(mask, EventMask::dont_call));
  return {};
}

std::error_code Reactor::change_interest(Handle handle, EventMask mask) {
  if (handle < 0) return errc::invalid_handle;
  Registration* r = find(handle);
  if (r == nullptr || r->internal) return errc::not_registered;
  const EventMask old = r->interest;
  r->interest = mask & EventMask::all_io;
  r->again &= r->interest;
  if (auto ec = sync_kernel(handle)) {
    table_[handle].interest = old;
    return ec;
  }
  return {};
}

std::error_code Reactor::set_interest(Handle handle, EventMask mask) {
  return change_interest(handle, mask);
}

std::error_code Reactor::add_interest(Handle handle, EventMask mask) {
  return change_interest(handle, interest(handle) | mask);
}

std::error_code Reactor::clear_interest(Handle handle, EventMask mask) {
  return change_interest(handle, interest(handle) & ~mask);
}

EventMask Reactor::interest(Handle handle) const noexcept {
  const Registration* r = find(handle);
  return r != nullptr && !r->internal ? r->interest : EventMask::none;
}

EventHandler* Reactor::handler(Handle handle) const noexcept {
  const Registration* r = find(handle);
  return r != nullptr && !r->internal ? r->handler : nullptr;
}

std::error_code Reactor::set_suspended(Handle handle, bool suspended) {
  if (handle < 0) return errc::invalid_handle;
  Registration* r = find(handle);
  if (r == nullptr || r->internal) return errc::not_registered;
  r->suspended = suspended;
  if (auto ec = sync_kernel(handle)) {
    table_[handle].suspended = !suspended;
    return ec;
  }
  return {};
}

std::error_code Reactor::suspend_handler(Handle handle) { return set_suspended(handle, true); }
std::error_code Reactor::resume_handler(Handle handle) { return set_suspended(handle, false); }

std::error_code Reactor::suspend_handler(EventHandler* handler) {
  const Handle h = handle_of(handler);
  return h == invalid_handle ? std::error_code(errc::not_registered) : suspend_handler(h);
}

std::error_code Reactor::resume_handler(EventHandler* handler) {
  const Handle h = handle_of(handler);
  return h == invalid_handle ? std::error_code(errc::not_registered) : resume_handler(h);
}

bool Reactor::is_suspended(Handle handle) const noexcept {
  const Registration* r = find(handle);
  return r != nullptr && r->suspended;
}

// ---- timers ------------------------------------------------------------------------------------

Result<TimerId> Reactor::schedule_timer(EventHandler* handler, const void* arg, Duration delay,
                                        Duration interval) {
  if (delay < Duration::zero() || interval < Duration::zero()) return errc::invalid_argument;
  if (auto ec = attach(handler)) return ec;
  return timers_.schedule(handler, arg, deadline_after(Clock::now(), delay), interval);
}

std::error_code Reactor::cancel_timer(TimerId id) {
  bool found = false;
  EventHandler* released = timers_.cancel(id, found);
  if (!found) return errc::timer_not_found;
  release_ref(released);
  return {};
}

std::size_t Reactor::cancel_timers(EventHandler* handler) {
  std::size_t n = 0;
  for (TimerId id : timers_.ids_of(handler)) n += cancel_timer(id) ? 0 : 1;
  return n;
}

std::error_code Reactor::reset_timer_interval(TimerId id, Duration interval) {
  if (interval < Duration::zero()) return errc::invalid_argument;
  return timers_.reset_interval(id, interval) ? std::error_code{} : errc::timer_not_found;
}

void Reactor::expire_timers(TimePoint now, std::size_t& dispatched) {
  if (timers_.size() == 0) return;
  // Only timers due before this pass began run in it, so an interval shorter than the
  // callback cannot keep the loop here forever.
  TimerQueue::Expiry e{};
  while (timers_.pop_due(now, e)) {
    int rc = 0;
    try {
      rc = e.handler->handle_timeout(now, e.arg);
    } catch (...) {
      release_ref(timers_.finish_firing(e.id, now, false));
      throw;
    }
    ++dispatched;
    ++stats_.timers_fired;
    bool pending = false;
    EventHandler* released = timers_.finish_firing(e.id, now, rc >= 0, &pending);
    if (!pending) release_ref(released);
  }
}

// ---- notify / post -----------------------------------------------------------------------------

std::error_code Reactor::notify(EventHandler* handler, EventMask mask) {
  if (handler == nullptr || !any(mask & EventMask::all_io)) return errc::invalid_argument;
  // One item per hook, so a handler destroyed by its first hook is purged before the next.
  for (EventMask kind : {EventMask::except, EventMask::write, EventMask::read}) {
    const EventMask side = kind == EventMask::read    ? read_side
                           : kind == EventMask::write ? write_side
                                                      : EventMask::except;
    if (any(mask & side)) notifications_.push({handler, kind, {}});
  }
  return {};
}

std::error_code Reactor::post(std::function<void()> work) {
  if (!work) return errc::invalid_argument;
  notifications_.push({nullptr, EventMask::none, std::move(work)});
  return {};
}

std::size_t Reactor::purge_notifications(EventHandler* handler) {
  return notifications_.purge(handler);
}

void Reactor::run_notifications(std::size_t& dispatched) {
  Notification n;
  for (std::size_t i = 0; i < options_.max_notifications_per_iteration && notifications_.pop(n);
       ++i) {
    ++dispatched;
    ++stats_.notifications_run;
    if (n.work) {
      n.work();
      continue;
    }
    if (n.mask == EventMask::except) {
      n.handler->handle_exception(invalid_handle);
    } else if (n.mask == EventMask::write) {
      n.handler->handle_output(invalid_handle);
    } else {
      n.handler->handle_input(invalid_handle);
    }
  }
}

// ---- signals -----------------------------------------------------------------------------------

std::error_code Reactor::register_signal(int signum, EventHandler* handler) {
  if (handler == nullptr) return errc::invalid_argument;
  if (signals_.contains(signum, handler)) return errc::already_registered;
  bool created = false;
  if (auto ec = signals_.open_pipe(created)) return ec;
  if (created) {
    if (auto ec =
            add_registration(signals_.read_handle(), internal_marker, EventMask::read, true)) {
      signals_.close_pipe();
      return ec;
    }
  }
  if (auto ec = attach(handler)) return ec;
  if (auto ec = signals_.add(signum, handler)) {
    release_ref(handler);
    return ec;
  }
  return {};
}

std::error_code Reactor::remove_signal(int signum, EventHandler* handler) {
  if (!signals_.remove(signum, handler)) return errc::not_registered;
  release_ref(handler);
  return {};
}

void Reactor::read_signals(std::size_t& dispatched) {
  SignalWatches::Arrivals arrived{};
  signals_.drain(arrived);
  for (int signum = 1; signum < static_cast<int>(arrived.size()); ++signum) {
    if (!arrived[signum]) continue;
    // Hooks may add or remove watches (or destroy handlers): call a snapshot, re-checking
    // that each watch still exists right before its call.
    std::vector<SignalWatches::Watch> snapshot;
    for (const SignalWatches::Watch& w : signals_.watches()) {
      if (w.signum == signum) snapshot.push_back(w);
    }
    for (const SignalWatches::Watch& w : snapshot) {
      if (!signals_.contains(w.signum, w.handler)) continue;
      ++dispatched;
      ++stats_.signals_delivered;
      if (w.handler->handle_signal(signum) < 0) (void)remove_signal(signum, w.handler);
    }
  }
}

// ---- the loop ----------------------------------------------------------------------------------

Duration Reactor::next_timeout(Duration limit) const noexcept {
  if (!again_.empty() || notifications_.has_batch()) {
    return Duration::zero();
  }
  Duration timeout = limit;
  if (auto due = timers_.earliest()) {
    const Duration until = time_until(*due, Clock::now());
    timeout = std::min(timeout, std::max(until, Duration::zero()));
  }
  return timeout;
}

std::error_code Reactor::wait(Duration timeout, std::size_t& ready) {
  const TimePoint deadline = deadline_after(Clock::now(), timeout);  // forever: TimePoint::max()
  Duration remaining = timeout;
  for (;;) {
    serial_at_wait_ = next_serial_;
    const Duration t = next_timeout(remaining);
    const auto ns = t == forever ? std::chrono::nanoseconds(-1)
                                 : std::chrono::duration_cast<std::chrono::nanoseconds>(t);
    if (auto ec = demux_->wait(ready_, ns, ready)) return ec;
    if (ready > 0 || t == Duration::zero()) return {};
    // Nothing ready: a timer came due, the caller's time is up, or the wait ended early
    // (EINTR, or a backend whose clock is coarser than ours). Only the last means wait more.
    const TimePoint now = Clock::now();
    if (auto due = timers_.earliest(); due && *due <= now) return {};
    if (now >= deadline) return {};
    if (timeout != forever) remaining = deadline - now;
  }
}

Result<std::size_t> Reactor::handle_events(Duration timeout) {
  if (dispatching_) return errc::reentrant_call;
  if (timeout < Duration::zero()) timeout = Duration::zero();
  ScopedFlag busy(dispatching_);
  const bool timing = options_.collect_timing;
  const TimePoint before_wait = timing ? Clock::now() : TimePoint{};
  std::size_t ready = 0;
  if (auto ec = wait(timeout, ready)) return ec;
  ++stats_.iterations;
  // One clock read serves both the statistics and the timers.
  const TimePoint after_wait = timing || timers_.size() > 0 ? Clock::now() : TimePoint{};
  if (timing) stats_.time_blocked += after_wait - before_wait;
  std::size_t dispatched = 0;
  for (std::size_t i = 0; i < ready; ++i) dispatch_ready(ready_[i], dispatched);
  dispatch_again(dispatched);
  expire_timers(after_wait, dispatched);
  run_notifications(dispatched);
  stats_.hooks_called += dispatched;
  if (timing) {
    const Duration spent = Clock::now() - after_wait;
    stats_.time_dispatching += spent;
    stats_.longest_dispatch = std::max(stats_.longest_dispatch, spent);
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
  notifications_.wake();
}

// ---- dispatch ----------------------------------------------------------------------------------

void Reactor::dispatch_ready(const ReadyEvent& event, std::size_t& dispatched) {
  Registration* r = find(event.fd);
  // Registered after the wait began: the event belongs to a descriptor that is gone.
  if (r == nullptr || r->serial >= serial_at_wait_) return;
  if (r->internal) {
    if (event.fd == notifications_.handle()) {
      notifications_.collect();
    } else {
      read_signals(dispatched);
    }
    return;
  }
  if (has(event.events, EventMask::invalid)) {
    // The descriptor was closed behind the reactor's back (select / poll report it).
    remove_bits(event.fd, EventMask::all_io, true);
    return;
  }
  const EventMask events = event.events | std::exchange(r->again, EventMask::none);
  dispatch_io(event.fd, r->serial, events, dispatched);
}

void Reactor::dispatch_io(Handle handle, std::uint64_t serial, EventMask events,
                          std::size_t& dispatched) {
  // Fixed order: urgent data first, then make room to write, then read.
  for (EventMask kind : {EventMask::except, EventMask::write, EventMask::read}) {
    if (!any(events & kind)) continue;
    if (!still_live(handle, serial)) return;
    call_hook(handle, serial, kind, dispatched);
  }
}

void Reactor::call_hook(Handle handle, std::uint64_t serial, EventMask kind,
                        std::size_t& dispatched) {
  Registration& r = table_[handle];
  const EventMask side = kind == EventMask::read    ? read_side
                         : kind == EventMask::write ? write_side
                                                    : EventMask::except;
  const EventMask bits = r.interest & side;
  if (!any(bits) || r.suspended || r.handler == nullptr) return;
  EventHandler* h = r.handler;
  const int slot = kind == EventMask::read ? 0 : kind == EventMask::write ? 1 : 2;
  ++r.calls[slot];
  ++(slot == 0 ? stats_.input_events : slot == 1 ? stats_.output_events : stats_.exception_events);
  const int rc = slot == 0   ? h->handle_input(handle)
                 : slot == 1 ? h->handle_output(handle)
                             : h->handle_exception(handle);
  ++dispatched;
  // The hook may have removed, re-registered or destroyed anything: look again.
  if (rc == 0 || !still_live(handle, serial)) return;
  if (rc < 0) {
    remove_bits(handle, bits, true);
    return;
  }
  Registration& again = table_[handle];
  if (!any(again.again)) again_.push_back({handle, serial});
  again.again |= kind;
}

void Reactor::dispatch_again(std::size_t& dispatched) {
  if (again_.empty()) return;
  again_batch_.swap(again_);
  std::size_t i = 0;
  try {
    for (; i < again_batch_.size(); ++i) {
      const AgainEntry e = again_batch_[i];
      Registration* r = find(e.handle);
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

ReactorStats Reactor::stats() const {
  ReactorStats s = stats_;
  s.backend = demux_->kind();
  s.handles_registered = user_registrations_;
  s.timers_pending = timers_.size();
  s.notifications_queued = notifications_.size();
  return s;
}

void Reactor::dump(std::ostream& os) const {
  os << "reactor: " << stats() << '\n';
  for (Handle h = 0; h < static_cast<Handle>(table_.size()); ++h) {
    const Registration* r = find(h);
    if (r == nullptr || r->internal || r->handler == nullptr) continue;
    os << "  handle " << h << ": " << handler_type_name(*r->handler)
       << " interest=" << event_mask_name(r->interest) << (r->suspended ? " suspended" : "")
       << " input=" << r->calls[0] << " output=" << r->calls[1] << " except=" << r->calls[2]
       << '\n';
  }
}

}  // namespace reactor
