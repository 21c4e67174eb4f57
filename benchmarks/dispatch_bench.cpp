// dispatch_bench: the cost of one event dispatch, as a one-byte ping-pong over a socket pair:
// write on one end, let the event loop under test wake up for the other end and echo the byte,
// read it back. Through our Reactor on every backend, through Boost.Asio (single-threaded
// io_context, async_read_some), and through a raw epoll loop (the floor: the same system calls
// with nothing around them).
#include <sys/epoll.h>

#include <benchmark/benchmark.h>

#include <boost/asio.hpp>

#include "bench_common.hpp"

namespace {

void reactor_ping_pong(benchmark::State& state, reactor::Backend backend) {
  reactor::Reactor r(backend);
  bench::SocketPair sp;
  bench::reactor_ping_pong(state, r, sp);
}

// Asio: the echo re-arms its read from the completion handler, as any Asio server does.
class AsioEcho {
 public:
  AsioEcho(boost::asio::io_context& io, int fd) : socket_(io) {
    socket_.assign(boost::asio::local::stream_protocol(), fd);
  }
  ~AsioEcho() { (void)socket_.release(); }  // the SocketPair owns the descriptor
  void arm() {
    socket_.async_read_some(boost::asio::buffer(buf_),
                            [this](boost::system::error_code ec, std::size_t n) {
                              if (ec) return;
                              boost::system::error_code wec;
                              socket_.write_some(boost::asio::buffer(buf_, n), wec);
                              arm();
                            });
  }

 private:
  boost::asio::local::stream_protocol::socket socket_;
  char buf_[64];
};

void BM_AsioPingPong(benchmark::State& state) {
  boost::asio::io_context io(1);
  bench::SocketPair sp;
  AsioEcho echo(io, sp.a);
  echo.arm();
  bench::ping_pong(state, sp.b, [&io] { io.run_one(); });
}

void BM_RawEpollPingPong(benchmark::State& state) {
  bench::SocketPair sp;
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = sp.a;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, sp.a, &ev);
  epoll_event ready[16];
  char buf[64];
  bench::ping_pong(state, sp.b, [&] {
    const int n = ::epoll_wait(ep, ready, 16, -1);
    for (int i = 0; i < n; ++i) {
      const ssize_t got = ::read(ready[i].data.fd, buf, sizeof buf);
      if (got > 0) (void)::write(ready[i].data.fd, buf, static_cast<std::size_t>(got));
    }
  });
  ::close(ep);
}

}  // namespace

BENCHMARK(BM_RawEpollPingPong);
BENCHMARK(BM_AsioPingPong);

int main(int argc, char** argv) {
  for (auto backend : reactor::available_backends()) {
    benchmark::RegisterBenchmark(("BM_ReactorPingPong/" + bench::name_of(backend)).c_str(),
                                 reactor_ping_pong, backend);
  }
  return bench::run_benchmarks(argc, argv);
}
