// echo_server: every byte a client sends comes back to it. The smallest complete service built
// on the Reactor: a listening handler that accepts, and one handler per connection.
//
//   echo_server [--port N] [--backend select|poll|epoll]     (port 0: pick a free one)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "reactor/reactor.hpp"

namespace {

using reactor::EventMask;
using reactor::Handle;

// One client connection. Owned by itself: it deletes itself in handle_close.
class EchoConnection final : public reactor::EventHandler {
 public:
  EchoConnection(reactor::Reactor& r, int fd) : reactor_(r), fd_(fd) {}
  Handle get_handle() const override { return fd_.get(); }

  int handle_input(Handle) override {
    char buf[16384];
    const ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n == 0) return -1;
    if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
    pending_.append(buf, static_cast<std::size_t>(n));
    return flush();
  }

  int handle_output(Handle) override { return flush(); }

  int handle_close(Handle, EventMask) override {
    if (!any(reactor_.interest(fd_.get()))) delete this;
    return 0;
  }

 private:
  // Writes what is pending; asks for write readiness only while something is left, and stops
  // reading meanwhile so a client that does not read cannot grow our buffer without bound.
  int flush() {
    while (!pending_.empty()) {
      const ssize_t n = ::send(fd_.get(), pending_.data(), pending_.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return -1;
        (void)reactor_.set_interest(fd_.get(), EventMask::write);
        return 0;
      }
      pending_.erase(0, static_cast<std::size_t>(n));
    }
    (void)reactor_.set_interest(fd_.get(), EventMask::read);
    return 0;
  }

  reactor::Reactor& reactor_;
  reactor::UniqueFd fd_;
  std::string pending_;
};

class Listener final : public reactor::EventHandler {
 public:
  Listener(reactor::Reactor& r, int fd) : reactor_(r), fd_(fd) {}
  Handle get_handle() const override { return fd_.get(); }

  int handle_input(Handle) override {
    for (int i = 0; i < 64; ++i) {
      const int c = ::accept4(fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c < 0) return 0;  // EAGAIN, or a transient error: try again on the next event
      auto* conn = new EchoConnection(reactor_, c);
      if (reactor_.register_handler(conn, EventMask::read)) delete conn;
    }
    return 0;
  }

  int handle_signal(int signum) override {
    std::printf("echo_server: signal %d, stopping\n", signum);
    reactor_.end_event_loop();
    return 0;
  }

 private:
  reactor::Reactor& reactor_;
  reactor::UniqueFd fd_;
};

}  // namespace

int main(int argc, char** argv) {
  int port = 7000;
  reactor::Backend backend = reactor::Backend::best;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--port") {
      port = std::atoi(argv[i + 1]);
    } else if (flag == "--backend" && !reactor::parse_backend(argv[i + 1], backend)) {
    } else {
      std::fprintf(stderr, "usage: %s [--port N] [--backend select|poll|epoll]\n", argv[0]);
      return 2;
    }
  }
  ::signal(SIGPIPE, SIG_IGN);

  reactor::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd.get(), SOMAXCONN) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::fprintf(stderr, "echo_server: cannot listen on port %d: %s\n", port, std::strerror(errno));
    return 1;
  }

  try {
    reactor::Reactor r(backend);
    Listener listener(r, fd.release());
    if (auto ec = r.register_handler(&listener, EventMask::accept)) {
      std::fprintf(stderr, "echo_server: %s\n", ec.message().c_str());
      return 1;
    }
    (void)r.register_signal(SIGINT, &listener);
    (void)r.register_signal(SIGTERM, &listener);
    std::printf("echo_server listening on 127.0.0.1:%d (backend %s)\n", ntohs(addr.sin_port),
                std::string(reactor::backend_name(r.backend())).c_str());
    std::fflush(stdout);
    if (auto ec = r.run_event_loop()) {
      std::fprintf(stderr, "echo_server: %s\n", ec.message().c_str());
      return 1;
    }
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "echo_server: %s\n", e.what());
    return 1;
  }
  return 0;
}
