// idle_bench: one active handle among 0, 1,000 and 10,000 idle registered handles, on every
// backend. The active handle is a one-byte ping-pong over a socket pair (as in dispatch_bench);
// the idle ones are eventfds that never become readable. epoll keeps its interest set in the
// kernel and reports only what is ready, so its cost must stay flat; select and poll scan every
// registered descriptor on every wait, so theirs grows with the idle count. select cannot hold
// descriptors at or above FD_SETSIZE (1024): its 10,000 case is skipped.
#include <sys/eventfd.h>

#include <benchmark/benchmark.h>

#include "bench_common.hpp"

namespace {

void idle_ping_pong(benchmark::State& state, reactor::Backend backend) {
  bench::raise_fd_limit();
  reactor::Reactor r(backend);
  bench::SocketPair sp;        // made first: low descriptor numbers, so select can watch it
  reactor::EventHandler idle;  // one handler object may serve many handles
  std::vector<int> idle_fds;
  for (int i = 0; i < state.range(0); ++i) {
    const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0 || r.register_handler(fd, &idle, reactor::EventMask::read)) {
      if (fd >= 0) ::close(fd);
      state.SkipWithError("cannot register that many idle handles on this backend");
      break;
    }
    idle_fds.push_back(fd);
  }
  bench::reactor_ping_pong(state, r, sp);
  for (int fd : idle_fds) {
    (void)r.remove_handler(fd, reactor::EventMask::all_io, reactor::CloseHook::skip);
    ::close(fd);
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (auto backend : reactor::available_backends()) {
    benchmark::RegisterBenchmark(("BM_IdleScaling/" + bench::name_of(backend)).c_str(),
                                 idle_ping_pong, backend)
        ->Arg(0)
        ->Arg(1000)
        ->Arg(10000);
  }
  return bench::run_benchmarks(argc, argv);
}
