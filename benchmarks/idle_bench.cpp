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
  bench::SocketPair sp;  // made first: low descriptor numbers, so select can watch it
  bench::EchoOnce echo;
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
  (void)r.register_handler(sp.a, &echo, reactor::EventMask::read);
  if (!state.error_occurred()) {
    for (auto _ : state) {
      bench::ping(sp.b);
      (void)r.handle_events();
      if (!bench::pong(sp.b)) state.SkipWithError("no echo");
    }
  }
  state.SetItemsProcessed(state.iterations());
  (void)r.remove_handler(sp.a, reactor::EventMask::all_io, reactor::CloseHook::skip);
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
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
