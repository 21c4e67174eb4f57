// The client side of the tests that talk to a server over 127.0.0.1 from the test's own thread:
// a blocking TCP connection whose every receive is bounded by a deadline, a non-blocking one for
// a caller's own poll loop, and the pseudo-random payloads they send. Header-only and independent
// of the library under test.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace loopback {

using namespace std::chrono_literals;

/// 127.0.0.1:port.
inline sockaddr_in address(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

/// A blocking TCP connection to 127.0.0.1:port, or none (connected() false).
class Client {
 public:
  Client() = default;
  explicit Client(int port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    const sockaddr_in a = address(port);
    if (fd_ >= 0 && ::connect(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) close();
  }
  ~Client() { close(); }
  Client(Client&& o) noexcept : fd_(o.fd_), eof_(o.eof_) { o.fd_ = -1; }
  Client& operator=(Client&& o) noexcept {
    if (this != &o) {
      close();
      fd_ = o.fd_;
      eof_ = o.eof_;
      o.fd_ = -1;
    }
    return *this;
  }

  [[nodiscard]] bool connected() const { return fd_ >= 0; }
  /// The socket (for a caller's own poll loop).
  [[nodiscard]] int fd() const { return fd_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  /// Closes with SO_LINGER {on, 0}: the kernel sends RST instead of FIN.
  void reset() {
    if (fd_ < 0) return;
    const linger l{1, 0};
    (void)::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close();
  }
  /// Closes our sending side (the server reads EOF).
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }

  /// Sends all of `bytes`; false on error.
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  /// Receives until `done(received)` holds, EOF or a reset, an error, or the time limit; reads
  /// no more than `most` bytes in all. Returns what came.
  template <class Done>
  std::string receive_until(Done done, std::chrono::milliseconds limit = 10s,
                            std::size_t most = std::string::npos) {
    std::string got;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    char buf[65536];
    while (got.size() < most && !done(got)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, std::max<int>(0, static_cast<int>(left.count()))) <= 0) break;
      const ssize_t n = ::recv(fd_, buf, std::min(sizeof buf, most - got.size()), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        eof_ = true;
        break;
      }
      got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
  }
  /// Receives exactly `want` bytes, or less on EOF, an error or the time limit.
  std::string receive(std::size_t want, std::chrono::milliseconds limit = 10s) {
    return receive_until([](const std::string&) { return false; }, limit, want);
  }
  /// Receives until the peer closes (or the time limit); eof() tells which.
  std::string receive_all(std::chrono::milliseconds limit = 10s) {
    return receive_until([](const std::string&) { return false; }, limit);
  }
  /// True once a receive saw the end of the stream (EOF or a reset).
  [[nodiscard]] bool eof() const { return eof_; }

 private:
  int fd_ = -1;
  bool eof_ = false;
};

/// A non-blocking TCP socket connecting to 127.0.0.1:port (the connect may still be in
/// progress), or -1.
inline int connect_nonblocking(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const sockaddr_in a = address(port);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

/// Raises this process's descriptor limit to its hard limit (a thousand clients need it).
inline void raise_fd_limit() {
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);
}

/// `n` deterministic pseudo-random bytes (xorshift32), a different run for every `seed`.
inline std::string random_bytes(std::size_t n, std::uint32_t seed) {
  std::string s(n, '\0');
  std::uint32_t x = seed * 2654435761U + 1;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return s;
}

}  // namespace loopback
