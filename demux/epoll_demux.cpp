// epoll(7) backend.
#include "demux/epoll_demux.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <system_error>

#include "base/error.hpp"
#include "demux/always_ready.hpp"

namespace reactor {
namespace {

std::uint32_t to_epoll(EventMask interest) noexcept {
  std::uint32_t events = 0;
  if (any(interest & read_side)) events |= EPOLLIN | EPOLLRDHUP;
  if (any(interest & write_side)) events |= EPOLLOUT;
  if (any(interest & EventMask::except)) events |= EPOLLPRI;
  return events;
}

EventMask from_epoll(std::uint32_t got, std::uint32_t asked) noexcept {
  EventMask ev = EventMask::none;
  if ((got & (EPOLLIN | EPOLLRDHUP)) != 0) ev |= EventMask::read;
  if ((got & EPOLLOUT) != 0) ev |= EventMask::write;
  if ((got & EPOLLPRI) != 0) ev |= EventMask::except;
  // EPOLLERR and EPOLLHUP are always reported; route them to what the handler asked for.
  if ((got & (EPOLLERR | EPOLLHUP)) != 0) {
    if ((asked & EPOLLIN) != 0) ev |= EventMask::read;
    if ((asked & EPOLLOUT) != 0) ev |= EventMask::write;
    if ((asked & (EPOLLIN | EPOLLOUT)) == 0) ev |= EventMask::except;
  }
  return ev;
}

// epoll_event.data is a union; the fd goes into the low half of u64 and the interest we asked
// for into the high half, so translating an event needs no lookup.
std::uint64_t pack(int fd, std::uint32_t asked) noexcept {
  return (static_cast<std::uint64_t>(asked) << 32) | static_cast<std::uint32_t>(fd);
}

// The data of the always-ready set's eventfd: fd -1, which no registration has.
constexpr std::uint64_t always_ready_tag = ~std::uint64_t{0};

}  // namespace

// The files epoll refuses. An eventfd in the epoll set is readable exactly while some entry
// wants read or write: every wait then returns at once, a wait already blocked on another
// thread wakes when an entry appears, and the hot path needs no lock (only a wait that sees the
// eventfd takes the mutex to report the entries).
struct EpollDemux::AlwaysReady {
  std::mutex mutex;
  AlwaysReadySet set;
  UniqueFd wake;
  bool signalled = false;

  // Makes the eventfd's readiness match the set's (mutex held).
  void sync_wake() noexcept {
    const bool want = set.any_ready();
    if (want == signalled) return;
    std::uint64_t value = 1;
    const ssize_t n =
        want ? ::write(wake.get(), &value, sizeof value) : ::read(wake.get(), &value, sizeof value);
    if (n == static_cast<ssize_t>(sizeof value)) signalled = want;
  }
};

EpollDemux::EpollDemux() : epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)), events_(256) {
  if (!epoll_fd_) throw std::system_error(last_system_error(), "epoll_create1");
}

EpollDemux::~EpollDemux() { delete always_.load(std::memory_order_acquire); }

// EPERM from epoll_ctl: the file has no poll method, and poll(2) would call it always ready.
std::error_code EpollDemux::keep_always_ready(int fd, EventMask interest) noexcept {
  AlwaysReady* a = always_.load(std::memory_order_acquire);
  if (a == nullptr) {
    auto made = std::unique_ptr<AlwaysReady>(new (std::nothrow) AlwaysReady);
    if (!made) return std::make_error_code(std::errc::not_enough_memory);
    made->wake.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!made->wake) return last_system_error();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = always_ready_tag;
    if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, made->wake.get(), &ev) != 0) {
      return last_system_error();
    }
    a = made.release();
    always_.store(a, std::memory_order_release);
  }
  std::lock_guard lock(a->mutex);
  try {
    a->set.set(fd, interest);
  } catch (const std::bad_alloc&) {
    return std::make_error_code(std::errc::not_enough_memory);
  }
  a->sync_wake();
  return {};
}

// Drops `fd` from the always-ready set, if there: removed, or its number now names a file epoll
// took (the old one was closed without remove).
void EpollDemux::forget_always_ready(int fd) noexcept {
  AlwaysReady* a = always_.load(std::memory_order_acquire);
  if (a == nullptr) return;
  std::lock_guard lock(a->mutex);
  if (a->set.erase(fd)) a->sync_wake();
}

std::error_code EpollDemux::add(int fd, EventMask interest) {
  return control(fd, interest, 0, EPOLL_CTL_ADD);
}

std::error_code EpollDemux::modify(int fd, EventMask interest) {
  return control(fd, interest, 0, EPOLL_CTL_MOD);
}

std::error_code EpollDemux::arm_once(int fd, EventMask interest) {
  return control(fd, interest, EPOLLONESHOT, EPOLL_CTL_MOD);
}

// Tries `op`, then the other one when the kernel's idea of the entry differs from ours:
// - ADD fails with EEXIST for a descriptor closed without EPOLL_CTL_DEL while a dup() kept its
//   file open: the entry stays in the set and the number now names a new registration.
// - MOD fails with ENOENT when the kernel dropped the entry as the last reference to the file
//   was closed and a new file got the number (the same recovery libevent's epoll.c makes).
// EPERM: a file epoll refuses (poll(2) calls it always ready), kept in the always-ready set.
std::error_code EpollDemux::control(int fd, EventMask interest, std::uint32_t flags, int op) {
  if (fd < 0) return errc::invalid_handle;
  epoll_event ev{};
  ev.events = to_epoll(interest) | flags;
  ev.data.u64 = pack(fd, to_epoll(interest));
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (::epoll_ctl(epoll_fd_.get(), op, fd, &ev) == 0) {
      if (op == EPOLL_CTL_ADD) forget_always_ready(fd);  // its number now names a pollable file
      return {};
    }
    if (errno == EPERM) return keep_always_ready(fd, interest);
    if (errno != (op == EPOLL_CTL_ADD ? EEXIST : ENOENT)) break;
    op = op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  }
  if (errno == EBADF) return errc::invalid_handle;
  return last_system_error();
}

std::error_code EpollDemux::remove(int fd) {
  if (fd < 0) return errc::invalid_handle;
  forget_always_ready(fd);
  // Always delete explicitly: a dup()ed or inherited descriptor would otherwise keep the entry
  // alive after close. EBADF / ENOENT mean the kernel already forgot it, which is what we want;
  // EPERM that the file was one epoll never takes (kept in the always-ready set, dropped above).
  if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, fd, nullptr) == 0) return {};
  if (errno == EBADF || errno == ENOENT || errno == EPERM) return {};
  return last_system_error();
}

std::error_code EpollDemux::wait(std::span<ReadyEvent> ready, std::chrono::nanoseconds timeout,
                                 std::size_t& count) {
  count = 0;
  if (events_.size() < ready.size()) events_.resize(ready.size());
  const int max = static_cast<int>(ready.size() < events_.size() ? ready.size() : events_.size());
  int rc = ::epoll_wait(epoll_fd_.get(), events_.data(), max, timeout_to_ms(timeout));
  if (rc < 0) return errno == EINTR ? std::error_code{} : last_system_error();
  bool always = false;
  for (int i = 0; i < rc; ++i) {
    const std::uint64_t data = events_[i].data.u64;
    if (data == always_ready_tag) {
      always = true;  // its slot stays free, so at least one entry below has room
      continue;
    }
    const auto fd = static_cast<int>(static_cast<std::uint32_t>(data));
    const auto asked = static_cast<std::uint32_t>(data >> 32);
    ready[count++] = {fd, from_epoll(events_[i].events, asked)};
  }
  if (always) {
    AlwaysReady* a = always_.load(std::memory_order_acquire);
    std::lock_guard lock(a->mutex);
    a->set.report(ready, count);
  }
  return {};
}

}  // namespace reactor
