// kqueue(2) backend.
#include "demux/kqueue_demux.hpp"

#include <sys/types.h>

#include <sys/event.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <cerrno>
#include <cstdint>
#include <new>
#include <system_error>

#include "base/error.hpp"
#include "demux/always_ready.hpp"

namespace reactor {
namespace {

// One kqueue filter and the readiness bits it stands for.
struct Filter {
  short filter;
  unsigned fflags;
  EventMask bits;
};

// macOS, OpenBSD, NetBSD and DragonFly report out-of-band data with EVFILT_EXCEPT / NOTE_OOB.
// FreeBSD has no such filter: there except interest rides on EVFILT_READ and is reported as
// except when read was not asked for (see to_bits).
#ifdef EVFILT_EXCEPT
constexpr Filter filters[] = {{EVFILT_READ, 0, EventMask::read},
                              {EVFILT_WRITE, 0, EventMask::write},
                              {EVFILT_EXCEPT, NOTE_OOB, EventMask::except}};
#else
constexpr Filter filters[] = {{EVFILT_READ, 0, EventMask::read | EventMask::except},
                              {EVFILT_WRITE, 0, EventMask::write}};
#endif
constexpr int filter_count = sizeof filters / sizeof filters[0];

// The readiness bits `filter` watches.
EventMask bits_of(short filter) noexcept {
  for (const Filter& f : filters) {
    if (f.filter == filter) return f.bits;
  }
  return EventMask::none;
}

// The readiness an event of `filter` means for a registration that asked for `asked`.
EventMask to_bits(short filter, EventMask asked) noexcept {
  const EventMask bits = bits_of(filter) & asked;
  // A shared read/except filter fires for plain data too: only an except-only watcher hears it
  // as except (it will find the urgent byte, or nothing, with MSG_OOB).
  if (has(bits, EventMask::read | EventMask::except)) return EventMask::read;
  return bits;
}

// A regular file or directory: a vnode, whose EVFILT_READ fires only before end of file.
bool is_vnode(int fd) noexcept {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode));
}

}  // namespace

KqueueDemux::KqueueDemux()
    : kq_(::kqueue()), events_(256), always_(std::make_unique<AlwaysReadySet>()) {
  if (!kq_) throw std::system_error(last_system_error(), "kqueue");
}

KqueueDemux::~KqueueDemux() = default;

// Adds the filters `to` needs and `from` lacks, deletes the reverse, in one kevent call.
// EV_RECEIPT makes the kernel answer every change with an EV_ERROR entry (data 0 on success)
// instead of stopping at the first failure, so each result is known.
std::error_code KqueueDemux::apply(int fd, EventMask from, EventMask to) noexcept {
  struct kevent changes[filter_count];
  int n = 0;
  for (const Filter& f : filters) {
    const bool had = any(from & f.bits);
    const bool wants = any(to & f.bits);
    if (had == wants) continue;
    const unsigned short op = wants ? EV_ADD : EV_DELETE;
    EV_SET(&changes[n], static_cast<uintptr_t>(fd), f.filter, op | EV_RECEIPT, f.fflags, 0, 0);
    ++n;
  }
  if (n == 0) return {};
  struct kevent results[filter_count];
  const int got = ::kevent(kq_.get(), changes, n, results, n, nullptr);
  if (got < 0) return errno == EBADF ? std::error_code(errc::invalid_handle) : last_system_error();
  std::error_code ec;
  for (int i = 0; i < got; ++i) {
    if ((results[i].flags & EV_ERROR) == 0 || results[i].data == 0) continue;
    const auto err = static_cast<int>(results[i].data);
    // A knote disappears with its descriptor's close(): deleting it then is not an error.
    if (!any(to & bits_of(results[i].filter)) && (err == ENOENT || err == EBADF)) continue;
    if (!ec)
      ec = err == EBADF ? make_error_code(errc::invalid_handle)
                        : std::error_code(err, std::system_category());
  }
  return ec;
}

std::error_code KqueueDemux::add(int fd, EventMask interest) {
  if (fd < 0) return errc::invalid_handle;
  if (static_cast<std::size_t>(fd) >= interest_.size()) {
    interest_.resize(fd + 1, EventMask::none);
    position_.resize(fd + 1, -1);
  }
  if (any(interest_[fd])) return errc::already_registered;
  const EventMask want = readiness_of(interest);
  if (is_vnode(fd)) {
    try {
      always_->set(fd, want);
    } catch (const std::bad_alloc&) {
      return std::make_error_code(std::errc::not_enough_memory);
    }
    interest_[fd] = want;
    return {};
  }
  if (auto ec = apply(fd, EventMask::none, want)) {
    (void)apply(fd, want, EventMask::none);  // drop whichever filter did get added
    return ec;
  }
  interest_[fd] = want;
  return {};
}

std::error_code KqueueDemux::modify(int fd, EventMask interest) {
  if (fd < 0 || static_cast<std::size_t>(fd) >= interest_.size() || !any(interest_[fd])) {
    return errc::not_registered;
  }
  const EventMask want = readiness_of(interest);
  if (always_->contains(fd)) {
    if (any(want)) {
      always_->set(fd, want);  // replaces an entry: no allocation
    } else {
      always_->erase(fd);  // as apply() deletes every knote
    }
    interest_[fd] = want;
    return {};
  }
  if (auto ec = apply(fd, interest_[fd], want)) return ec;
  interest_[fd] = want;
  return {};
}

std::error_code KqueueDemux::remove(int fd) {
  if (fd < 0 || static_cast<std::size_t>(fd) >= interest_.size() || !any(interest_[fd])) {
    return errc::not_registered;
  }
  const EventMask had = interest_[fd];
  interest_[fd] = EventMask::none;
  if (always_->erase(fd)) return {};
  return apply(fd, had, EventMask::none);
}

// Folds one kevent into the output: the read and write filters of a descriptor arrive as two
// events, the reactor wants one entry per descriptor.
void KqueueDemux::merge(const struct kevent& ev, std::span<ReadyEvent> ready,
                        std::size_t& count) noexcept {
  const auto fd = static_cast<int>(ev.ident);
  if (fd < 0 || static_cast<std::size_t>(fd) >= interest_.size() || !any(interest_[fd])) return;
  EventMask bits = to_bits(ev.filter, interest_[fd]);
  // EV_ERROR in the output of a wait: the knote could not be evaluated; a closed descriptor is
  // reported as invalid so the reactor drops it, anything else wakes the handler to find out.
  if ((ev.flags & EV_ERROR) != 0) bits = ev.data == EBADF ? EventMask::invalid : interest_[fd];
  // EV_EOF needs no translation: read() returns 0 and write() fails, which is what handlers do.
  if (!any(bits)) return;
  if (position_[fd] >= 0) {
    ready[position_[fd]].events |= bits;
  } else if (count < ready.size()) {
    position_[fd] = static_cast<int>(count);
    ready[count++] = {fd, bits};
  }
}

std::error_code KqueueDemux::wait(std::span<ReadyEvent> ready, std::chrono::nanoseconds timeout,
                                  std::size_t& count) {
  count = 0;
  if (events_.size() < ready.size()) events_.resize(ready.size());
  // An always-ready file means the wait must not block, and one slot is kept for the set so
  // busy knotes cannot crowd it out (it rotates, so every entry gets its turn).
  const bool always = always_->any_ready();
  const std::size_t room = always && ready.size() > 1 ? ready.size() - 1 : ready.size();
  const int max = static_cast<int>(room < events_.size() ? room : events_.size());
  timespec ts{};
  const timespec* tsp = nullptr;
  if (always) {
    tsp = &ts;
  } else if (timeout >= std::chrono::nanoseconds::zero()) {
    ts = timeout_to_timespec(timeout);
    tsp = &ts;
  }
  const int rc = ::kevent(kq_.get(), nullptr, 0, events_.data(), max, tsp);
  if (rc < 0) return errno == EINTR ? std::error_code{} : last_system_error();
  for (int i = 0; i < rc; ++i) merge(events_[i], ready, count);
  for (std::size_t i = 0; i < count; ++i) position_[ready[i].fd] = -1;
  if (always) always_->report(ready, count);
  return {};
}

}  // namespace reactor
