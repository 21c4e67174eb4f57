// bench_common: helpers the Google Benchmark programs share: a non-blocking socket pair, a
// one-byte ping-pong partner and the timed ping-pong loop, a handler that counts its calls,
// raising the descriptor limit for the idle-handle benchmarks, and main()'s run of the
// registered benchmarks. Benchmark-only code.
#pragma once

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

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

/// The timed loop of every ping-pong here: writes a byte on `b`, lets `dispatch()` run the event
/// loop under test once (it echoes the byte) and reads the byte back. One item per iteration.
template <class Dispatch>
void ping_pong(benchmark::State& state, int b, Dispatch dispatch) {
  for (auto _ : state) {
    ping(b);
    dispatch();
    if (!pong(b)) state.SkipWithError("no echo");
  }
  state.SetItemsProcessed(state.iterations());
}

/// ping_pong through `r`, which echoes on `sp.a` for the length of the benchmark (unless the
/// benchmark has already failed).
inline void reactor_ping_pong(benchmark::State& state, reactor::Reactor& r, SocketPair& sp) {
  EchoOnce echo;
  (void)r.register_handler(sp.a, &echo, reactor::EventMask::read);
  if (!state.error_occurred()) ping_pong(state, sp.b, [&r] { (void)r.handle_events(); });
  (void)r.remove_handler(sp.a, reactor::EventMask::all_io, reactor::CloseHook::skip);
}

/// Counts the notifications and timer expiries it is given.
class Counter final : public reactor::EventHandler {
 public:
  int handle_input(reactor::Handle) override {
    ++count;
    return 0;
  }
  int handle_timeout(reactor::TimePoint, const void*) override {
    ++count;
    return 0;
  }
  int count = 0;
};

/// Runs `r` until `counter` has counted `n` calls, then starts it from zero again.
inline void run_until_counted(reactor::Reactor& r, Counter& counter, int n) {
  while (counter.count < n) (void)r.handle_events();
  counter.count = 0;
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

/// The rest of main() once the program has registered its benchmarks: what BENCHMARK_MAIN does.
inline int run_benchmarks(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace bench
