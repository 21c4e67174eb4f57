// libevent_echo: the libevent (Debian's libevent 2.1) echo server of the comparison, the way a
// libevent user writes one: an evconnlistener, one bufferevent per connection, and a read
// callback that moves the whole input buffer to the output buffer. Benchmark-only: the library
// never links libevent.
//
//   libevent_echo [--port N] [--backend libevent]
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>

#include <cstdio>

#include "server_common.hpp"

namespace {

void on_read(bufferevent* bev, void*) {
  evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

void on_event(bufferevent* bev, short what, void*) {
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) bufferevent_free(bev);
}

void on_accept(evconnlistener* listener, evutil_socket_t fd, sockaddr*, int, void*) {
  event_base* base = evconnlistener_get_base(listener);
  bench::set_nodelay(fd);
  bufferevent* bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
  if (bev == nullptr) return;
  bufferevent_setcb(bev, on_read, nullptr, on_event, nullptr);
  bufferevent_enable(bev, EV_READ | EV_WRITE);
}

}  // namespace

int main(int argc, char** argv) {
  bench::ServerArgs args;
  if (!bench::parse_server_args(argc, argv, "libevent", args)) return 2;
  ::signal(SIGPIPE, SIG_IGN);
  event_base* base = event_base_new();
  const int fd = bench::listen_loopback(args.port);
  if (base == nullptr || fd < 0) {
    std::perror("libevent_echo: listen");
    return 1;
  }
  // LEV_OPT_CLOSE_ON_FREE only: the socket is already bound, non-blocking and listening.
  evconnlistener* listener =
      evconnlistener_new(base, on_accept, nullptr, LEV_OPT_CLOSE_ON_FREE, -1, fd);
  if (listener == nullptr) return 1;
  bench::print_banner("libevent_echo", bench::local_port(fd), event_base_get_method(base));
  event_base_dispatch(base);
  evconnlistener_free(listener);
  event_base_free(base);
  return 0;
}
