// epoll_echo: the physical limit the comparison measures against. A minimal hand-written,
// single-threaded, level-triggered epoll echo server: one epoll_wait per batch, one read and
// one write per ready connection, write interest only while a reply is queued. No framework, no
// virtual calls, no allocation per message. Benchmark-only.
//
//   epoll_echo [--port N] [--backend epoll]
#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "server_common.hpp"

namespace {

constexpr std::size_t read_chunk = 16384;

// What a connection could not write yet; empty for nearly every connection nearly always.
struct Pending {
  std::string bytes;
};

class EpollEcho {
 public:
  EpollEcho(int epfd, int listen_fd) : epfd_(epfd), listen_fd_(listen_fd) {}

  void run() {
    epoll_event events[256];
    for (;;) {
      const int n = ::epoll_wait(epfd_, events, 256, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return std::perror("epoll_echo: epoll_wait");
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == listen_fd_) {
          accept_all();
        } else if (events[i].events & EPOLLOUT) {
          flush(fd);
        } else {
          echo(fd);
        }
      }
    }
  }

 private:
  void accept_all() {
    for (;;) {
      const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c < 0) return;  // EAGAIN, or EMFILE: the next wait retries (good enough here)
      bench::set_nodelay(c);
      if (static_cast<std::size_t>(c) >= pending_.size()) pending_.resize(c + 1024);
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = c;
      ::epoll_ctl(epfd_, EPOLL_CTL_ADD, c, &ev);
    }
  }

  void echo(int fd) {
    const ssize_t n = ::read(fd, buffer_, sizeof buffer_);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return drop(fd);
    if (n < 0) return;
    const ssize_t w = ::send(fd, buffer_, static_cast<std::size_t>(n), MSG_NOSIGNAL);
    if (w == n) return;
    if (w < 0 && errno != EAGAIN) return drop(fd);
    // The peer is not reading fast enough: keep the rest and stop reading until it is sent.
    const std::size_t sent = w < 0 ? 0 : static_cast<std::size_t>(w);
    pending_[fd].bytes.assign(buffer_ + sent, static_cast<std::size_t>(n) - sent);
    watch(fd, EPOLLOUT);
  }

  void flush(int fd) {
    std::string& rest = pending_[fd].bytes;
    const ssize_t w = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN) return drop(fd);
    if (w > 0) rest.erase(0, static_cast<std::size_t>(w));
    if (rest.empty()) watch(fd, EPOLLIN);
  }

  void watch(int fd, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
  }

  void drop(int fd) {
    pending_[fd].bytes.clear();
    ::close(fd);  // the last reference: epoll forgets it
  }

  int epfd_;
  int listen_fd_;
  std::vector<Pending> pending_;
  char buffer_[read_chunk];
};

}  // namespace

int main(int argc, char** argv) {
  bench::ServerArgs args;
  if (!bench::parse_server_args(argc, argv, "epoll", args)) return 2;
  const int listen_fd = bench::listen_loopback(args.port);
  const int epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (listen_fd < 0 || epfd < 0) {
    std::perror("epoll_echo: listen");
    return 1;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listen_fd;
  ::epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &ev);
  bench::print_banner("epoll_echo", bench::local_port(listen_fd), "epoll");
  EpollEcho server(epfd, listen_fd);
  server.run();
  return 1;
}
