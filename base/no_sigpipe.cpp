// write_no_sigpipe: see the header.
#include "base/no_sigpipe.hpp"

#include <pthread.h>
#include <signal.h>  // NOLINT(modernize-deprecated-headers): sigset_t, sigtimedwait are POSIX
#include <sys/socket.h>

#include <cerrno>
#include <ctime>

namespace reactor {
namespace {

// writev with SIGPIPE held off: a write to a widowed pipe makes the kernel send SIGPIPE to this
// thread. Blocked, it stays pending instead of killing the process; if it is ours, it is taken
// back with a zero-timeout sigtimedwait before the old mask returns.
ssize_t writev_blocking_sigpipe(int fd, const iovec* iov, std::size_t count) noexcept {
  sigset_t pipe_only;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  sigset_t old;
  if (pthread_sigmask(SIG_BLOCK, &pipe_only, &old) != 0) {
    // Cannot happen with a valid set; writing unprotected would risk the process, so fail.
    errno = EINVAL;
    return -1;
  }
  // A SIGPIPE already pending (the application's own, with SIGPIPE blocked) must survive: only a
  // signal this write raised is consumed. Standard signals do not queue, so "pending after" alone
  // could not tell the two apart.
  sigset_t pending;
  sigemptyset(&pending);
  const bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
  const ssize_t n = ::writev(fd, iov, static_cast<int>(count));
  const int saved = errno;
  if (n < 0 && saved == EPIPE && !was_pending) {
    const timespec zero{};
    while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved;
  return n;
}

}  // namespace

ssize_t write_no_sigpipe(int fd, const iovec* iov, std::size_t count, bool& is_socket) noexcept {
  if (is_socket) {
    // MSG_NOSIGNAL: the socket layer reports EPIPE without raising anything; no mask changes,
    // so the common case costs one system call.
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(iov);
    msg.msg_iovlen = count;
    const ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n >= 0 || errno != ENOTSOCK) return n;
    is_socket = false;
  }
  return writev_blocking_sigpipe(fd, iov, count);
}

}  // namespace reactor
