// bench_common: helpers the Google Benchmark programs share: a non-blocking socket pair, a
// one-byte ping-pong partner, the list of backends to run on, and raising the descriptor limit
// for the idle-handle benchmarks. Benchmark-only code.
#pragma once

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "reactor/reactor.hpp"

namespace bench {

/// Both ends of a non-blocking Unix stream socket pair, closed on destruction.
struct SocketPair {
  int a = -1;  // the end the event loop under test watches
  int b = -1;  // the end the benchmark writes to and reads from
  SocketPair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
      throw std::runtime_error("socketpair");
    a = fds[0];
    b = fds[1];
  }
  ~SocketPair() {
    ::close(a);
    ::close(b);
  }
  SocketPair(const SocketPair&) = delete;
  SocketPair& operator=(const SocketPair&) = delete;
};

/// Reads what `a` has and writes it back: the server side of every ping-pong here.
class EchoOnce final : public reactor::EventHandler {
 public:
  int handle_input(reactor::Handle fd) override {
    char buf[64];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) (void)::write(fd, buf, static_cast<std::size_t>(n));
    return 0;
  }
};

/// Sends one byte on `b` and waits for it to come back, spinning on the non-blocking read (the
/// reply is already there when the event loop under test has dispatched once).
inline bool ping(int b) {
  const char c = 'x';
  return ::write(b, &c, 1) == 1;
}
inline bool pong(int b) {
  char c;
  return ::read(b, &c, 1) == 1;
}

/// Takes the hard descriptor limit (10,000 idle handles need that many descriptors).
inline void raise_fd_limit() {
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);
}

/// "epoll", "poll"... for benchmark names.
inline std::string name_of(reactor::Backend b) { return std::string(reactor::backend_name(b)); }

}  // namespace bench
