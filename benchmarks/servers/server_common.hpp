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

namespace bench {

/// Command-line settings of a comparison server.
struct ServerArgs {
  int port = 7000;
  std::string_view backend;  // empty: the server's only backend
};

/// Parses --port N and --backend NAME; a backend other than `only` is refused, so a driver
/// that asks for something a server cannot do fails loudly instead of measuring the wrong thing.
inline bool parse_server_args(int argc, char** argv, std::string_view only, ServerArgs& out) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--port") {
      out.port = std::atoi(argv[i + 1]);
    } else if (flag == "--backend") {
      out.backend = argv[i + 1];
      if (out.backend != only) return false;
    } else {
      return false;
    }
  }
  return (argc % 2) == 1 && out.port >= 0 && out.port <= 65535;
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
