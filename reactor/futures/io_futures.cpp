// Leaf futures over the Reactor: the handlers that turn hooks and timer expiries into wakes, and
// the polls of the stream operations. See io_futures.hpp for the registration policy.
#include "reactor/futures/io_futures.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>

#include "base/no_sigpipe.hpp"
#include "reactor/futures/when.hpp"

namespace reactor {
namespace detail {

static bool would_block(int e) noexcept { return e == EAGAIN || e == EWOULDBLOCK; }

static void make_nonblocking(int fd) noexcept {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK) == 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static bool is_socket(int fd) noexcept {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

// ---- TimerSlot ---------------------------------------------------------------------------------

TimerSlot::TimerSlot(TimerSlot&& other) noexcept
    : EventHandler(), reactor_(other.reactor_), fired_(other.fired_) {
  // The reactor points at an armed slot: moving one would leave it dangling.
  assert(!other.armed());
}

std::error_code TimerSlot::arm(Reactor& reactor, TimePoint deadline) {
  disarm();
  reactor_ = &reactor;
  fired_ = false;
  auto id = reactor.schedule_timer(this, nullptr,
                                   std::max(time_until(deadline, Clock::now()), Duration{}));
  if (!id) return id.error();
  id_ = *id;
  return {};
}

void TimerSlot::disarm() noexcept {
  if (armed()) (void)reactor_->cancel_timer(std::exchange(id_, invalid_timer));
  waker_.reset();
}

int TimerSlot::handle_timeout(TimePoint, const void*) {
  id_ = invalid_timer;  // one-shot: the reactor frees it when this returns
  fired_ = true;
  if (waker_) waker_.wake_and_reset();
  return 0;
}

// ---- FdSlot ------------------------------------------------------------------------------------

FdSlot::FdSlot(FdSlot&& other) noexcept
    : EventHandler(),
      reactor_(other.reactor_),
      fd_(other.fd_),
      kind_(other.kind_),
      fired_(other.fired_),
      error_(other.error_) {
  assert(!other.registered_);
}

Poll<void> FdSlot::poll(const Waker& waker) {
  if (fired_) {
    if (error_) return Outcome<void>::failure(error_);
    return Outcome<void>();
  }
  if (!registered_) {
    if (auto ec = reactor_->register_handler(fd_, this, kind_)) {
      return Outcome<void>::failure(ec);
    }
    registered_ = true;
  }
  if (!waker_.will_wake(waker)) waker_ = waker;
  return std::nullopt;
}

int FdSlot::on_event() {
  fired_ = true;
  remove();  // one-shot: removing inside the hook is allowed and ends its batch for us
  if (waker_) waker_.wake_and_reset();
  return 0;
}

int FdSlot::handle_close(Handle, EventMask) {
  // The reactor ended the registration (descriptor found closed, or the reactor is going).
  registered_ = false;
  if (!fired_) {
    fired_ = true;
    error_ = std::make_error_code(std::errc::bad_file_descriptor);
  }
  if (waker_) waker_.wake_and_reset();
  return 0;
}

void FdSlot::remove() noexcept {
  if (!registered_) return;
  registered_ = false;
  (void)reactor_->remove_handler(fd_, EventMask::all_io, CloseHook::skip);
}

// ---- IoSlot ------------------------------------------------------------------------------------

IoSlot::~IoSlot() {
  if (registered_) (void)reactor_.remove_handler(fd_, EventMask::all_io, CloseHook::skip);
}

std::error_code IoSlot::set_watch(EventMask interest) {
  if (!registered_) {
    if (!any(interest)) return {};
    if (auto ec = reactor_.register_handler(fd_, this, interest)) return ec;
    registered_ = true;
    interest_ = interest;
    return {};
  }
  if (interest == interest_) return {};
  if (auto ec = reactor_.set_interest(fd_, interest)) return ec;
  interest_ = interest;
  return {};
}

std::error_code IoSlot::wait(Side side, const Waker& waker) {
  const EventMask bit = side == read_side ? EventMask::read : EventMask::write;
  if (auto ec = set_watch(interest_ | bit)) return ec;
  Direction& d = dirs_[side];
  if (!d.waker.will_wake(waker)) d.waker = waker;
  return {};
}

void IoSlot::cancel(Side side) noexcept {
  dirs_[side].waker.reset();
  const EventMask bit = side == read_side ? EventMask::read : EventMask::write;
  if (registered_ && any(interest_ & bit)) (void)set_watch(interest_ & ~bit);
}

int IoSlot::on_event(Side side) {
  Direction& d = dirs_[side];
  d.readiness = Readiness::ready;
  if (d.waker) {
    // Keep watching: the woken task usually waits again before the next wait, and then no
    // epoll_ctl is needed.
    d.waker.wake_and_reset();
  } else {
    // Nobody waits: stop watching, or a level-triggered backend would report it forever.
    const EventMask bit = side == read_side ? EventMask::read : EventMask::write;
    (void)set_watch(interest_ & ~bit);
  }
  return 0;
}

int IoSlot::handle_close(Handle, EventMask) {
  // Only when the reactor ends the registration itself (closed descriptor, reactor destroyed):
  // let the waiting operations retry their system call, which reports the error.
  registered_ = false;
  interest_ = EventMask::none;
  for (Direction& d : dirs_) {
    d.readiness = Readiness::maybe;
    if (d.waker) d.waker.wake_and_reset();
  }
  return 0;
}

}  // namespace detail

// ---- Sleep -------------------------------------------------------------------------------------

Poll<void> Sleep::poll(const Waker& waker) {
  if (timer_.fired()) return Outcome<void>();
  if (!timer_.armed()) {
    if (Clock::now() >= deadline_) return Outcome<void>();
    if (auto ec = timer_.arm(*reactor_, deadline_)) return Outcome<void>::failure(ec);
  }
  timer_.set_waker(waker);
  return std::nullopt;
}

// ---- stream operations -------------------------------------------------------------------------

using detail::IoSlot;
using Readiness = IoSlot::Readiness;

namespace {

// One read attempt: bytes (0 = end of stream), or nullopt after EAGAIN (side marked not ready).
Poll<std::size_t> try_read(IoSlot& slot, std::span<char> buffer) {
  for (;;) {
    const ssize_t n = ::read(slot.fd(), buffer.data(), buffer.size());
    if (n >= 0) {
      // A short read drained the kernel's buffer: the next read would fail with EAGAIN.
      if (n > 0 && static_cast<std::size_t>(n) < buffer.size()) {
        slot.set_readiness(IoSlot::read_side, Readiness::not_ready);
      }
      return static_cast<std::size_t>(n);
    }
    if (errno == EINTR) continue;
    if (detail::would_block(errno)) {
      slot.set_readiness(IoSlot::read_side, Readiness::not_ready);
      return std::nullopt;
    }
    return Outcome<std::size_t>::failure(last_system_error());
  }
}

// One write attempt: bytes written, or nullopt after EAGAIN (side marked not ready).
Poll<std::size_t> try_write(IoSlot& slot, std::span<const char> buffer) {
  for (;;) {
    // A reader that is gone (socket peer, pipe or FIFO) is EPIPE, never SIGPIPE.
    iovec iov{const_cast<char*>(buffer.data()), buffer.size()};
    bool is_socket = slot.is_socket();
    const ssize_t n = write_no_sigpipe(slot.fd(), &iov, 1, is_socket);
    if (n >= 0) {
      if (static_cast<std::size_t>(n) < buffer.size()) {
        slot.set_readiness(IoSlot::write_side, Readiness::not_ready);
      }
      return static_cast<std::size_t>(n);
    }
    if (errno == EINTR) continue;
    if (detail::would_block(errno)) {
      slot.set_readiness(IoSlot::write_side, Readiness::not_ready);
      return std::nullopt;
    }
    return Outcome<std::size_t>::failure(last_system_error());
  }
}

template <class T>
Poll<T> no_stream() {
  return Outcome<T>::failure(std::make_error_code(std::errc::bad_file_descriptor));
}

}  // namespace

Poll<void> SlotReady::poll(const Waker& waker) {
  if (slot_ == nullptr) return no_stream<void>();
  waiting_ = false;
  if (slot_->readiness(side_) == Readiness::ready) {
    slot_->set_readiness(side_, Readiness::maybe);  // consumed; a system call may still fail
    slot_->forget(side_);
    return Outcome<void>();
  }
  if (auto ec = slot_->wait(side_, waker)) return Outcome<void>::failure(ec);
  waiting_ = true;
  return std::nullopt;
}

Poll<std::size_t> ReadSome::poll(const Waker& waker) {
  if (slot_ == nullptr) return no_stream<std::size_t>();
  waiting_ = false;
  if (buffer_.empty()) return std::size_t{0};
  if (slot_->readiness(side_) != Readiness::not_ready) {
    if (!detail::coop_consume()) {
      waker.wake();  // budget spent: let the other tasks run first
      return std::nullopt;
    }
    if (auto r = try_read(*slot_, buffer_)) {
      slot_->forget(side_);
      return r;
    }
  }
  if (auto ec = slot_->wait(side_, waker)) return Outcome<std::size_t>::failure(ec);
  waiting_ = true;
  return std::nullopt;
}

// Repeats `attempt(done)` until `size` bytes moved, waiting for readiness in between and
// yielding when the task's cooperative budget is spent. An attempt answers nullopt for EAGAIN.
template <class Attempt>
Poll<std::size_t> transfer_all(IoSlot& slot, IoSlot::Side side, const Waker& waker, bool& waiting,
                               std::size_t& done, std::size_t size, Attempt&& attempt) {
  waiting = false;
  while (done < size) {
    if (slot.readiness(side) == Readiness::not_ready) {
      if (auto ec = slot.wait(side, waker)) return Outcome<std::size_t>::failure(ec);
      waiting = true;
      return std::nullopt;
    }
    if (!detail::coop_consume()) {
      waker.wake();
      return std::nullopt;
    }
    auto r = attempt(done);
    if (!r) continue;  // EAGAIN: wait above
    if (!*r) return r;
    done += **r;
  }
  slot.forget(side);
  return done;
}

Poll<std::size_t> ReadExact::poll(const Waker& waker) {
  if (slot_ == nullptr) return no_stream<std::size_t>();
  return transfer_all(*slot_, side_, waker, waiting_, done_, buffer_.size(),
                      [&](std::size_t offset) -> Poll<std::size_t> {
                        auto r = try_read(*slot_, buffer_.subspan(offset));
                        if (r && *r && **r == 0) {
                          return Outcome<std::size_t>::failure(async_errc::end_of_stream);
                        }
                        return r;
                      });
}

Poll<std::size_t> WriteAll::poll(const Waker& waker) {
  if (slot_ == nullptr) return no_stream<std::size_t>();
  return transfer_all(
      *slot_, side_, waker, waiting_, done_, buffer_.size(),
      [&](std::size_t offset) { return try_write(*slot_, buffer_.subspan(offset)); });
}

Poll<Stream> Accept::poll(const Waker& waker) {
  if (slot_ == nullptr) return no_stream<Stream>();
  waiting_ = false;
  if (slot_->readiness(side_) != Readiness::not_ready) {
    if (!detail::coop_consume()) {
      waker.wake();
      return std::nullopt;
    }
    for (;;) {
      const int c = ::accept4(slot_->fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c >= 0) {
        slot_->forget(side_);
        return Stream(slot_->reactor(), UniqueFd(c));
      }
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (detail::would_block(errno)) {
        slot_->set_readiness(side_, Readiness::not_ready);
        break;
      }
      // EMFILE and friends: the caller decides (back off, shed load); readiness stays "maybe".
      return Outcome<Stream>::failure(last_system_error());
    }
  }
  if (auto ec = slot_->wait(side_, waker)) return Outcome<Stream>::failure(ec);
  waiting_ = true;
  return std::nullopt;
}

// ---- Stream ------------------------------------------------------------------------------------

Stream::Stream(Reactor& reactor, UniqueFd fd) : fd_(std::move(fd)) {
  if (!fd_) return;
  detail::make_nonblocking(fd_.get());
  slot_ = std::make_unique<IoSlot>(reactor, fd_.get(), detail::is_socket(fd_.get()));
}

Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    slot_ = std::move(other.slot_);  // deregisters the old descriptor before it closes
    fd_ = std::move(other.fd_);
  }
  return *this;
}

Stream::~Stream() { slot_.reset(); }

std::error_code Stream::shutdown_write() noexcept {
  if (::shutdown(fd_.get(), SHUT_WR) != 0) return last_system_error();
  return {};
}

void Stream::close() noexcept {
  slot_.reset();
  fd_.reset();
}

// ---- Listener ----------------------------------------------------------------------------------

Listener::Listener(Reactor& reactor, UniqueFd fd) : fd_(std::move(fd)) {
  if (!fd_) return;
  detail::make_nonblocking(fd_.get());
  slot_ = std::make_unique<IoSlot>(reactor, fd_.get(), true);
  // A listening socket has nothing to accept until the reactor says so.
  slot_->set_readiness(IoSlot::read_side, Readiness::not_ready);
}

Listener& Listener::operator=(Listener&& other) noexcept {
  if (this != &other) {
    slot_ = std::move(other.slot_);
    fd_ = std::move(other.fd_);
  }
  return *this;
}

Listener::~Listener() { slot_.reset(); }

sockaddr_in loopback_address(std::uint16_t port) noexcept {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

Result<Listener> Listener::bind_loopback(Reactor& reactor, std::uint16_t port, int backlog) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return last_system_error();
  const int one = 1;
  (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const sockaddr_in addr = loopback_address(port);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd.get(), backlog) != 0) {
    return last_system_error();
  }
  return Listener(reactor, std::move(fd));
}

std::uint16_t Listener::port() const noexcept {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  return ntohs(addr.sin_port);
}

// ---- connect -----------------------------------------------------------------------------------

Task<Stream> connect(Reactor& reactor, sockaddr_in address, Duration limit) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) co_return Outcome<Stream>::failure(last_system_error());
  int rc = 0;
  do {
    rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0 && errno != EINPROGRESS) co_return Outcome<Stream>::failure(last_system_error());
  Stream stream(reactor, std::move(fd));
  if (rc != 0) {
    // The registration made here for writability is the one the stream keeps afterwards.
    auto done = co_await outcome_of(timeout(reactor, stream.writable(), limit));
    if (!done) co_return Outcome<Stream>::failure_of(done);
    int error = 0;
    socklen_t len = sizeof error;
    if (::getsockopt(stream.fd(), SOL_SOCKET, SO_ERROR, &error, &len) != 0) {
      co_return Outcome<Stream>::failure(last_system_error());
    }
    if (error != 0)
      co_return Outcome<Stream>::failure(std::error_code(error, std::system_category()));
  }
  co_return std::move(stream);
}

// ---- SignalWait --------------------------------------------------------------------------------

// Watches the signals through the reactor from the first poll until it is dropped.
class SignalWait::Slot final : public EventHandler {
 public:
  Slot(Reactor& reactor, std::initializer_list<int> signals)
      : reactor_(reactor), signals_(signals) {}
  ~Slot() override { unwatch(); }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

  Poll<int> poll(const Waker& waker) {
    if (received_ != 0) {
      unwatch();
      return received_;
    }
    if (!watching_) {
      watching_ = true;
      for (int s : signals_) {
        if (auto ec = reactor_.register_signal(s, this)) {
          unwatch();
          return Outcome<int>::failure(ec);
        }
      }
    }
    if (!waker_.will_wake(waker)) waker_ = waker;
    return std::nullopt;
  }

  int handle_signal(int signum) override {
    if (received_ == 0) received_ = signum;
    if (waker_) waker_.wake_and_reset();
    return 0;
  }

 private:
  void unwatch() noexcept {
    if (!watching_) return;
    watching_ = false;
    for (int s : signals_) (void)reactor_.remove_signal(s, this);
    waker_.reset();
  }

  Reactor& reactor_;
  std::vector<int> signals_;
  bool watching_ = false;
  int received_ = 0;
  Waker waker_;
};

SignalWait::SignalWait(Reactor& reactor, std::initializer_list<int> signals)
    : slot_(std::make_unique<Slot>(reactor, signals)) {}
SignalWait::SignalWait(SignalWait&& other) noexcept = default;
SignalWait::~SignalWait() = default;

Poll<int> SignalWait::poll(const Waker& waker) {
  if (!slot_) return Outcome<int>::failure(async_errc::no_state);
  return slot_->poll(waker);
}

}  // namespace reactor
