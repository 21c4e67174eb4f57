// AcceptorBase: listening socket set-up, the batched accept loop, and back-off when the process
// runs out of descriptors.
#include "handlers/acceptor.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <string>

namespace reactor {
namespace {

constexpr char backoff_tag = 'b';

// Errors that mean "out of a resource": retrying at once would fail again, and the listening
// socket stays readable, so a loop that just returned would spin at 100% CPU.
bool resource_exhausted(int error) noexcept {
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

}  // namespace

AcceptorBase::AcceptorBase(Dispatcher& reactor, const AcceptorOptions& options)
    : reactor_(reactor), options_(options), slots_(std::make_shared<Slots>()) {
  options_.max_accepts_per_event = std::max<std::size_t>(1, options_.max_accepts_per_event);
  slots_->owner = this;
}

AcceptorBase::~AcceptorBase() {
  close();
  {
    std::lock_guard lock(slots_->owner_mutex);
    slots_->owner = nullptr;  // connections that outlive us only count down
  }
  (void)reactor_.purge_notifications(this);  // one may have been sent before the line above
}

std::error_code AcceptorBase::open(const SocketAddress& address) {
  if (listener_.valid()) return errc::already_registered;
  const int family = address.family();
  if (family != AF_INET && family != AF_INET6 && family != AF_UNIX) return errc::invalid_argument;
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return last_system_error();
  const int one = 1;
  if (family != AF_UNIX) {
    // Restarting a server must not wait for the old connections' TIME_WAIT to expire.
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
      return last_system_error();
    }
    if (family == AF_INET6)
      (void)::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (options_.reuse_port &&
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
      return last_system_error();
    }
  } else if (options_.unlink_unix_path) {
    const std::string path = address.to_string().substr(5);  // drop "unix:"
    (void)::unlink(path.c_str());
  }
  if (::bind(fd.get(), address.native(), address.length()) != 0) return last_system_error();
  if (::listen(fd.get(), options_.backlog) != 0) return last_system_error();
  auto local = SocketAddress::local_of(fd.get());
  if (!local) return local.error();
  listener_ = std::move(fd);
  local_ = *local;
  if (auto ec = reactor_.register_handler(this, EventMask::accept)) {
    listener_.reset();
    return ec;
  }
  registered_ = true;
  return {};
}

void AcceptorBase::close() {
  if (!listener_.valid()) return;
  if (registered_) {
    (void)reactor_.remove_handler(listener_.get(), EventMask::all_io, CloseHook::skip);
    registered_ = false;
  }
  if (backing_off_) (void)reactor_.cancel_timers(this);
  backing_off_ = false;
  slots_->at_limit = false;
  listener_.reset();
  if (local_.family() == AF_UNIX && options_.unlink_unix_path) {
    (void)::unlink(local_.to_string().substr(5).c_str());
  }
}

int AcceptorBase::handle_input(Handle /*handle*/) {
  for (std::size_t i = 0; i < options_.max_accepts_per_event; ++i) {
    if (options_.max_connections > 0 && slots_->live.load() >= options_.max_connections) {
      // Full: stop watching the listener (it stays readable while clients wait in the backlog,
      // so watching it would spin) until connection_gone() makes room.
      if (!slots_->at_limit && !backing_off_) (void)reactor_.suspend_handler(listener_.get());
      slots_->at_limit = true;
      // A connection ending on another thread decrements `live`, then reads `at_limit`; we set
      // `at_limit`, then read `live` (both sequentially consistent): one of us sees the other,
      // so a slot freed right now is not lost.
      if (slots_->live.load() < options_.max_connections) {
        connection_gone();
        continue;
      }
      break;
    }
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    const int c = ::accept4(listener_.get(), reinterpret_cast<sockaddr*>(&peer), &len,
                            SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) {
      const int error = errno;
      if (error == EAGAIN || error == EWOULDBLOCK) break;
      if (resource_exhausted(error)) {
        back_off();
        break;
      }
      // ECONNABORTED, EPROTO, EINTR...: that one connection is gone; keep accepting.
      continue;
    }
    backoff_ = Duration::zero();
    ++accepted_;
    UniqueFd socket(c);
    if (options_.tcp_nodelay && local_.family() != AF_UNIX) {
      const int one = 1;
      (void)::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    auto handler = make_handler(
        std::move(socket), SocketAddress::from_native(reinterpret_cast<sockaddr*>(&peer), len));
    if (handler) {
      // The token's deleter runs when the handler is destroyed, however its connection ends.
      ++slots_->live;
      handler->acceptor_slot_ = std::shared_ptr<void>(nullptr, [slots = slots_](void*) {
        --slots->live;
        if (!slots->at_limit) return;
        std::lock_guard lock(slots->owner_mutex);
        if (slots->owner != nullptr)
          (void)slots->owner->reactor_.notify(slots->owner, EventMask::write);
      });
      (void)StreamHandler::start(std::move(handler));  // failure deletes it
    }
  }
  return 0;
}

void AcceptorBase::back_off() {
  // Stop watching the listener (it stays readable while connections wait) and look again
  // after a pause that grows while the shortage lasts. Pending clients wait in the backlog.
  // Doubling saturates, and a pause is never negative (the timer would be refused and the loop
  // would spin on the readable listener): zero or less pauses for one turn of the loop.
  const Duration next = backoff_ == Duration::zero()
                            ? options_.backoff_initial
                            : std::min(saturating_mul(backoff_, 2), options_.backoff_max);
  backoff_ = std::max(next, Duration::zero());
  if (!reactor_.schedule_timer(this, &backoff_tag, backoff_)) return;  // keep accepting then
  (void)reactor_.suspend_handler(listener_.get());
  backing_off_ = true;
  ++backoffs_;
}

int AcceptorBase::handle_output(Handle /*handle*/) {
  connection_gone();
  return 0;
}

void AcceptorBase::connection_gone() {
  if (!slots_->at_limit || slots_->live.load() >= options_.max_connections) return;
  slots_->at_limit = false;
  if (registered_ && !backing_off_ && listener_.valid()) {
    (void)reactor_.resume_handler(listener_.get());
  }
}

int AcceptorBase::handle_timeout(TimePoint /*now*/, const void* arg) {
  if (arg == &backoff_tag && backing_off_ && listener_.valid()) {
    backing_off_ = false;
    if (!slots_->at_limit) (void)reactor_.resume_handler(listener_.get());
  }
  return 0;
}

int AcceptorBase::handle_close(Handle /*handle*/, EventMask /*removed*/) {
  // The reactor went away or dropped us: the listener is ours to close, not to re-register.
  // Cancel the back-off timer now, while the reactor surely exists.
  registered_ = false;
  if (backing_off_) (void)reactor_.cancel_timers(this);
  backing_off_ = false;
  slots_->at_limit = false;
  return 0;
}

}  // namespace reactor
