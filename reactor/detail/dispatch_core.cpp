// DispatchCore: registration table, kernel-interest sync, timers, signals, notifications.
//
// Rules the code keeps (docs/design.md, "one event's path"):
// - Every registration has a serial number. After a hook returns, the callers look the handle
//   up again and compare serials before touching the registration or the handler: the hook may
//   have removed or destroyed either, or registered a new handler on the same number.
// - A ready event belongs to a registration only if it existed when the wait began
//   (serial < serial_at_wait_).
// - The kernel's view of each handle (kernel_) is kept apart from the registration: a
//   registration may end while its kernel entry is still to be dropped (deferred changes), and
//   an entry left by an earlier registration of the same number is dropped before a new one.
#include "reactor/detail/dispatch_core.hpp"

#include <algorithm>
#include <ostream>
#include <string>

#include "reactor/log.hpp"

namespace reactor::detail {

int call_hook(EventHandler& handler, Handle handle, EventMask kind) {
  if (kind == EventMask::except) return handler.handle_exception(handle);
  if (kind == EventMask::write) return handler.handle_output(handle);
  return handler.handle_input(handle);
}

DispatchCore::DispatchCore(std::unique_ptr<Demultiplexer> demux, Backend backend,
                           HandlerRegistry& owner, std::size_t max_events, std::string_view who)
    : demux_(std::move(demux)), owner_(owner), ready_(std::max<std::size_t>(1, max_events)) {
  const std::string prefix(who);
  if (!demux_) {
    if (auto ec = make_demultiplexer(backend, demux_)) {
      throw std::system_error(ec, prefix + ": cannot create the demultiplexer");
    }
  }
  if (auto ec = demux_->add(notifications_.handle(), EventMask::read)) {
    throw std::system_error(ec, prefix + ": cannot watch the wake-up descriptor");
  }
}

DispatchCore::~DispatchCore() {
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

// ---- registrations ---------------------------------------------------------------------------

std::error_code DispatchCore::attach(EventHandler* handler) {
  if (handler == nullptr) return errc::invalid_argument;
  if (handler->registry_ != nullptr && handler->registry_ != &owner_) {
    return errc::registered_elsewhere;
  }
  handler->registry_ = &owner_;
  ++handler->registrations_;
  return {};
}

void DispatchCore::release(EventHandler* handler) noexcept {
  if (handler != nullptr && handler->registrations_ > 0 && --handler->registrations_ == 0) {
    handler->registry_ = nullptr;
  }
}

Registration* DispatchCore::find(Handle handle) noexcept {
  if (handle < 0 || static_cast<std::size_t>(handle) >= table_.size()) return nullptr;
  Registration& r = table_[handle];
  return r.serial != 0 ? &r : nullptr;
}

const Registration* DispatchCore::find(Handle handle) const noexcept {
  return const_cast<DispatchCore*>(this)->find(handle);
}

bool DispatchCore::still_live(Handle handle, std::uint64_t serial) const noexcept {
  const Registration* r = find(handle);
  return r != nullptr && r->serial == serial;
}

Handle DispatchCore::handle_of(const EventHandler* handler) const {
  if (handler == nullptr) return invalid_handle;
  const Handle h = handler->get_handle();
  const Registration* r = find(h);
  return r != nullptr && r->handler == handler ? h : invalid_handle;
}

Registration* DispatchCore::owner_of(Handle handle) noexcept {
  Registration* r = find(handle);
  return r != nullptr && r->serial < serial_at_wait_ ? r : nullptr;
}

std::error_code DispatchCore::add(Handle handle, EventHandler* handler, EventMask mask) {
  if (handle < 0) return errc::invalid_handle;
  if (handler == nullptr) return errc::invalid_argument;
  mask &= EventMask::all_io;
  if (!any(mask)) return errc::invalid_argument;
  if (find(handle) != nullptr || is_wakeup(handle) || is_signal_pipe(handle)) {
    return errc::already_registered;
  }
  if (static_cast<std::size_t>(handle) >= table_.size()) {
    table_.resize(std::max<std::size_t>(handle + 1, table_.size() * 2));
  }
  if (auto ec = attach(handler)) return ec;
  Registration& r = table_[handle];
  r = Registration{};
  r.handler = handler;
  r.interest = mask;
  r.serial = next_serial_++;
  ++registrations_;
  if (deferring_) {
    (void)sync(handle);  // the waiting thread applies it; a refusal is logged there
    return {};
  }
  if (auto ec = apply(handle)) {
    // The backend refused the descriptor: nothing of the registration stays.
    table_[handle] = Registration{};
    --registrations_;
    release(handler);
    return ec;
  }
  return {};
}

Result<Removal> DispatchCore::remove(Handle handle, EventMask mask) {
  if (handle < 0) return errc::invalid_handle;
  const Registration* r = find(handle);
  if (r == nullptr) return errc::not_registered;
  if (any(r->interest) && !any(r->interest & mask & EventMask::all_io)) {
    return errc::not_registered;
  }
  // A registration silenced with set_interest(none) is removed whole.
  return remove_bits(handle, any(r->interest) ? mask : EventMask::all_io);
}

Removal DispatchCore::remove_bits(Handle handle, EventMask bits) noexcept {
  Registration& r = table_[handle];
  const Removal gone{r.handler, r.interest & bits & EventMask::all_io};
  r.interest &= ~gone.removed;
  r.again &= r.interest;
  if (any(r.interest)) {
    if (auto ec = sync(handle)) {
      log_message(LogLevel::error, "demultiplexer update of handle " + std::to_string(handle) +
                                       " failed: " + ec.message());
    }
    return gone;
  }
  r = Registration{};
  --registrations_;
  release(gone.handler);
  // Nobody to return an error to: the registration is over either way (apply logs it).
  (void)sync(handle);
  return gone;
}

std::error_code DispatchCore::change_interest(Handle handle, EventMask mask) {
  if (handle < 0) return errc::invalid_handle;
  Registration* r = find(handle);
  if (r == nullptr) return errc::not_registered;
  const EventMask old = r->interest;
  r->interest = mask & EventMask::all_io;
  r->again &= r->interest;
  if (auto ec = sync(handle)) {
    table_[handle].interest = old;
    return ec;
  }
  return {};
}

std::error_code DispatchCore::set_suspended(Handle handle, bool suspended) {
  if (handle < 0) return errc::invalid_handle;
  Registration* r = find(handle);
  if (r == nullptr) return errc::not_registered;
  const bool old = r->suspended;
  r->suspended = suspended;
  if (auto ec = sync(handle)) {
    table_[handle].suspended = old;
    return ec;
  }
  return {};
}

void DispatchCore::forget(EventHandler& handler) noexcept {
  for (Handle h = 0; h < static_cast<Handle>(table_.size()); ++h) {
    Registration* r = find(h);
    if (r == nullptr || r->handler != &handler) continue;
    r->handler = nullptr;  // no hook may run on a dying handler
    (void)remove_bits(h, EventMask::all_io);
  }
  timers_.forget(&handler);
  // remove_signal also gives the signal back to its old disposition when no watch is left.
  for (int signum : signals_.signals_of(&handler)) (void)remove_signal(signum, &handler);
  notifications_.purge(&handler);
  handler.registry_ = nullptr;
  handler.registrations_ = 0;
}

// ---- the kernel's interest -------------------------------------------------------------------

std::error_code DispatchCore::sync(Handle handle) noexcept {
  if (!deferring_) return apply(handle);
  deferred_.push_back(handle);
  return {};
}

std::error_code DispatchCore::apply(Handle handle) noexcept {
  if (static_cast<std::size_t>(handle) >= kernel_.size()) {
    kernel_.resize(std::max<std::size_t>(handle + 1, kernel_.size() * 2));
  }
  const Registration* r = find(handle);
  KernelEntry& k = kernel_[handle];
  const std::uint64_t serial = r != nullptr ? r->serial : 0;
  if (k.present && k.serial != serial) {
    (void)demux_->remove(handle);
    k = KernelEntry{};
  }
  // One-shot: the kernel disarmed a held handle when it reported it; the job's end re-arms it.
  if (r != nullptr && r->held && one_shot_) return {};
  const EventMask want =
      r != nullptr && !r->held && !r->suspended ? readiness_of(r->interest) : EventMask::none;
  if (!any(want)) {
    if (!k.present) return {};
    if (auto ec = demux_->remove(handle)) {
      if (r != nullptr) return ec;
      log_message(LogLevel::error,
                  "demultiplexer remove(" + std::to_string(handle) + ") failed: " + ec.message());
    }
    k = KernelEntry{};
    return {};
  }
  if (k.present && want == k.armed) return {};
  const std::error_code ec = one_shot_   ? demux_->arm_once(handle, want)
                             : k.present ? demux_->modify(handle, want)
                                         : demux_->add(handle, want);
  if (ec) return ec;
  k = KernelEntry{want, true, serial};
  return {};
}

void DispatchCore::apply_deferred() noexcept {
  ++apply_rounds_;
  if (signal_pipe_unwatched_) {
    if (auto ec = watch_signal_pipe()) {
      log_message(LogLevel::error, "cannot watch the signal pipe: " + ec.message());
    }
  }
  std::vector<Handle> handles;
  handles.swap(deferred_);
  for (Handle h : handles) {
    // Only the latest outcome of a handle counts: settle() asks for it, other changes don't, and
    // their refusals must not pile up.
    (void)take_deferred_error(h);
    if (auto ec = apply(h)) {
      log_message(LogLevel::error, "demultiplexer update of handle " + std::to_string(h) +
                                       " failed: " + ec.message());
      deferred_errors_.emplace_back(h, ec);
    }
  }
}

std::error_code DispatchCore::take_deferred_error(Handle handle) noexcept {
  std::error_code ec;
  std::erase_if(deferred_errors_, [&](const auto& e) {
    if (e.first != handle) return false;
    ec = e.second;
    return true;
  });
  return ec;
}

bool DispatchCore::use_one_shot() noexcept {
  one_shot_ = demux_->arms_once();
  return one_shot_;
}

Registration* DispatchCore::hold_reported(Handle handle) noexcept {
  if (one_shot_ && static_cast<std::size_t>(handle) < kernel_.size()) {
    kernel_[handle].armed = EventMask::none;  // the kernel disarmed it when it reported it
  }
  Registration* r = owner_of(handle);
  if (r == nullptr || r->held) {
    // Not this event's owner (registered after the wait began): keep the new one armed.
    if (one_shot_) (void)sync(handle);
    return nullptr;
  }
  r->held = true;
  if (!one_shot_) (void)sync(handle);
  return r;
}

void DispatchCore::unhold(Handle handle) noexcept {
  table_[handle].held = false;
  (void)sync(handle);
}

// ---- the wait --------------------------------------------------------------------------------

std::chrono::nanoseconds DispatchCore::next_wait(TimePoint deadline, TimePoint now) const noexcept {
  TimePoint until = deadline;
  if (auto due = timers_.earliest()) until = std::min(until, *due);
  if (until == TimePoint::max()) return std::chrono::nanoseconds(-1);
  if (until <= now) return std::chrono::nanoseconds(0);
  return std::chrono::duration_cast<std::chrono::nanoseconds>(time_until(until, now));
}

// Nothing was ready: a timer came due, the time is up, or the wait ended early (EINTR, or a
// backend whose clock is coarser than ours). Only the last means wait more.
bool DispatchCore::wait_again(TimePoint deadline, TimePoint now) const noexcept {
  if (auto due = timers_.earliest(); due && *due <= now) return false;
  return now < deadline;
}

// ---- timers ----------------------------------------------------------------------------------

Result<TimerId> DispatchCore::schedule(EventHandler* handler, const void* arg, Duration delay,
                                       Duration interval, bool* earliest) {
  if (delay < Duration::zero() || interval < Duration::zero()) return errc::invalid_argument;
  if (auto ec = attach(handler)) return ec;
  const TimePoint due = deadline_after(Clock::now(), delay);
  if (earliest != nullptr) {
    const auto first = timers_.earliest();
    *earliest = !first || due < *first;
  }
  return timers_.schedule(handler, arg, due, interval);
}

std::error_code DispatchCore::cancel(TimerId id) {
  bool found = false;
  EventHandler* released = timers_.cancel(id, found);
  if (!found) return errc::timer_not_found;
  release(released);
  return {};
}

std::size_t DispatchCore::cancel_all(EventHandler* handler) {
  std::size_t n = 0;
  for (TimerId id : timers_.ids_of(handler)) n += cancel(id) ? 0 : 1;
  return n;
}

std::error_code DispatchCore::reset_interval(TimerId id, Duration interval) {
  if (interval < Duration::zero()) return errc::invalid_argument;
  return timers_.reset_interval(id, interval) ? std::error_code{} : errc::timer_not_found;
}

bool DispatchCore::finish_timer(TimerId id, TimePoint now, bool keep) noexcept {
  bool pending = false;
  // A handler destroyed by its hook was forgotten: finish_firing then returns nullptr.
  EventHandler* released = timers_.finish_firing(id, now, keep, &pending);
  if (!pending) release(released);
  return pending;
}

// ---- signals ---------------------------------------------------------------------------------

std::error_code DispatchCore::watch_signal_pipe() noexcept {
  signal_pipe_unwatched_ = false;
  return demux_->add(signals_.read_handle(), EventMask::read);
}

std::error_code DispatchCore::register_signal(int signum, EventHandler* handler) {
  if (handler == nullptr) return errc::invalid_argument;
  if (signals_.contains(signum, handler)) return errc::already_registered;
  bool created = false;
  if (auto ec = signals_.open_pipe(created)) return ec;
  if (created) {
    if (deferring_) {
      signal_pipe_unwatched_ = true;  // the waiting thread adds it after its wait
    } else if (auto ec = watch_signal_pipe()) {
      signals_.close_pipe();
      return ec;
    }
  }
  if (auto ec = attach(handler)) return ec;
  if (auto ec = signals_.add(signum, handler)) {
    release(handler);
    return ec;
  }
  return {};
}

std::error_code DispatchCore::remove_signal(int signum, EventHandler* handler) {
  if (!signals_.remove(signum, handler)) return errc::not_registered;
  release(handler);
  return {};
}

std::vector<SignalWatches::Watch> DispatchCore::arrived_signals() {
  SignalWatches::Arrivals arrived{};
  signals_.drain(arrived);
  std::vector<SignalWatches::Watch> due;
  for (int signum = 1; signum < static_cast<int>(arrived.size()); ++signum) {
    if (!arrived[signum]) continue;
    for (const SignalWatches::Watch& w : signals_.watches()) {
      if (w.signum == signum) due.push_back(w);
    }
  }
  return due;
}

// ---- notify / post ---------------------------------------------------------------------------

std::error_code DispatchCore::notify(EventHandler* handler, EventMask mask) {
  if (handler == nullptr || !any(mask & EventMask::all_io)) return errc::invalid_argument;
  // One item per hook, so a handler destroyed by its first hook is purged before the next.
  for (EventMask kind : {EventMask::except, EventMask::write, EventMask::read}) {
    if (any(mask & side_of(kind))) notifications_.push({handler, kind, {}});
  }
  return {};
}

std::error_code DispatchCore::post(std::function<void()> work) {
  if (!work) return errc::invalid_argument;
  notifications_.push({nullptr, EventMask::none, std::move(work)});
  return {};
}

// ---- counters --------------------------------------------------------------------------------

void DispatchCore::count_call(Registration& r, EventMask kind) noexcept {
  const int slot = kind == EventMask::read ? 0 : kind == EventMask::write ? 1 : 2;
  ++r.calls[slot];
  ++(slot == 0 ? stats_.input_events : slot == 1 ? stats_.output_events : stats_.exception_events);
}

ReactorStats DispatchCore::stats(std::size_t queued) const {
  ReactorStats s = stats_;
  s.backend = demux_->kind();
  s.handles_registered = registrations_;
  s.timers_pending = timers_.size();
  s.notifications_queued = queued;
  return s;
}

void DispatchCore::dump_handles(std::ostream& os) const {
  for (Handle h = 0; h < static_cast<Handle>(table_.size()); ++h) {
    const Registration* r = find(h);
    if (r == nullptr || r->handler == nullptr) continue;
    os << "  handle " << h << ": " << handler_type_name(*r->handler)
       << " interest=" << event_mask_name(r->interest) << (r->suspended ? " suspended" : "")
       << " input=" << r->calls[0] << " output=" << r->calls[1] << " except=" << r->calls[2]
       << '\n';
  }
}

}  // namespace reactor::detail
