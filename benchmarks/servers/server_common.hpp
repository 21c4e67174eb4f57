// server_common: what the comparison echo servers (Asio, raw epoll, libevent) share, so that the
// comparison driver starts them exactly like samples/echo_server: the same flags (--port N,
// --backend NAME) and the same banner on stdout, "<name> listening on 127.0.0.1:<port>
// (backend <backend>)". Benchmark-only code: the library never includes this.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "../flag_pairs.hpp"

namespace bench {

/// Command-line settings of a comparison server.
struct ServerArgs {
  int port = 7000;
  std::string_view backend;  // empty: the server's only backend
  int threads = 1;           // --threads, for the servers that take it
};

/// Parses --port N and --backend NAME, and --threads N (1..256) when `threads_too`; a backend
/// other than `only` is refused, so a driver that asks for something a server cannot do fails
/// loudly instead of measuring the wrong thing. On any error prints the usage and returns false
/// (exit status 2).
inline bool parse_server_args(int argc, char** argv, std::string_view only, ServerArgs& out,
                              bool threads_too = false) {
  const auto backend = [&](const char* value) {
    out.backend = value;
    return out.backend == only;
  };
  const auto threads = [&](const char* value) {
    char* end = nullptr;
    const long n = std::strtol(value, &end, 10);
    out.threads = static_cast<int>(n);
    return threads_too && *end == '\0' && n >= 1 && n <= 256;
  };
  if (parse_flag_pairs(
          argc, argv,
          {{"--port", into(out.port)}, {"--backend", backend}, {"--threads", threads}}) &&
      out.port >= 0 && out.port <= 65535) {
    return true;
  }
  std::fprintf(stderr, "usage: %s [--port N] [--backend %.*s]%s\n", argv[0],
               static_cast<int>(only.size()), only.data(), threads_too ? " [--threads N]" : "");
  return false;
}

/// A non-blocking listening socket on 127.0.0.1:port (0: any free port), or -1 with errno set.
inline int listen_loopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd, SOMAXCONN) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

/// The port a bound socket got (for --port 0).
inline int local_port(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  return ntohs(addr.sin_port);
}

/// Prints the banner the driver waits for.
inline void print_banner(const char* name, int port, const char* backend) {
  std::printf("%s listening on 127.0.0.1:%d (backend %s)\n", name, port, backend);
  std::fflush(stdout);
}

/// TCP_NODELAY, as our Acceptor sets it: every server in the comparison sends small echoes at once.
inline void set_nodelay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace bench
