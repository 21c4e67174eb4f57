// eventfd / pipe wake-up channel.
#include "reactor/detail/wakeup.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

#include "base/error.hpp"

#if REACTOR_HAVE_EVENTFD
#include <sys/eventfd.h>
#endif

namespace reactor {

Wakeup::Wakeup() {
#if REACTOR_HAVE_EVENTFD
  read_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!read_) throw std::system_error(last_system_error(), "eventfd");
#else
  int fds[2];
  if (::pipe(fds) != 0) throw std::system_error(last_system_error(), "pipe");
  read_.reset(fds[0]);
  write_.reset(fds[1]);
  for (int fd : fds) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
#endif
}

void Wakeup::signal() const noexcept {
  const int fd = write_ ? write_.get() : read_.get();
  const std::uint64_t one = 1;
  // EAGAIN: the counter / pipe is full, so the reader is already due to wake.
  while (::write(fd, &one, write_ ? 1 : sizeof one) < 0 && errno == EINTR) {
  }
}

void Wakeup::drain() const noexcept {
  std::uint64_t buffer[16];
  for (;;) {
    const ssize_t n = ::read(read_.get(), buffer, write_ ? sizeof buffer : sizeof(std::uint64_t));
    if (n > 0 && write_) continue;  // a pipe may hold more
    if (n < 0 && errno == EINTR) continue;
    return;
  }
}

}  // namespace reactor
