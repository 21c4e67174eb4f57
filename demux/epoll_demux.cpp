// epoll(7) backend.
#include "demux/epoll_demux.hpp"

#include <sys/epoll.h>

#include <cerrno>
#include <system_error>

#include "base/error.hpp"

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

}  // namespace

EpollDemux::EpollDemux() : epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)), events_(256) {
  if (!epoll_fd_) throw std::system_error(last_system_error(), "epoll_create1");
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

// Tries `first_op`, then the other one when the kernel's idea of the entry differs from ours:
// - ADD fails with EEXIST for a descriptor closed without EPOLL_CTL_DEL while a dup() kept its
//   file open: the entry stays in the set and the number now names a new registration.
// - MOD fails with ENOENT when the kernel dropped the entry as the last reference to the file
//   was closed and a new file got the number (the same recovery libevent's epoll.c makes).
std::error_code EpollDemux::control(int fd, EventMask interest, std::uint32_t flags, int first_op) {
  if (fd < 0) return errc::invalid_handle;
  epoll_event ev{};
  ev.events = to_epoll(interest) | flags;
  ev.data.u64 = pack(fd, to_epoll(interest));
  if (::epoll_ctl(epoll_fd_.get(), first_op, fd, &ev) == 0) return {};
  const int other = first_op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  const int recoverable = first_op == EPOLL_CTL_ADD ? EEXIST : ENOENT;
  if (errno == recoverable && ::epoll_ctl(epoll_fd_.get(), other, fd, &ev) == 0) return {};
  if (errno == EBADF) return errc::invalid_handle;
  return last_system_error();
}

std::error_code EpollDemux::remove(int fd) {
  if (fd < 0) return errc::invalid_handle;
  // Always delete explicitly: a dup()ed or inherited descriptor would otherwise keep the entry
  // alive after close. EBADF / ENOENT mean the kernel already forgot it, which is what we want.
  if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, fd, nullptr) == 0) return {};
  if (errno == EBADF || errno == ENOENT) return {};
  return last_system_error();
}

std::error_code EpollDemux::wait(std::span<ReadyEvent> ready, std::chrono::nanoseconds timeout,
                                 std::size_t& count) {
  count = 0;
  if (events_.size() < ready.size()) events_.resize(ready.size());
  const int max = static_cast<int>(ready.size() < events_.size() ? ready.size() : events_.size());
  int rc = ::epoll_wait(epoll_fd_.get(), events_.data(), max, timeout_to_ms(timeout));
  if (rc < 0) return errno == EINTR ? std::error_code{} : last_system_error();
  for (int i = 0; i < rc; ++i) {
    const std::uint64_t data = events_[i].data.u64;
    const auto fd = static_cast<int>(static_cast<std::uint32_t>(data));
    const auto asked = static_cast<std::uint32_t>(data >> 32);
    ready[count++] = {fd, from_epoll(events_[i].events, asked)};
  }
  return {};
}

}  // namespace reactor
