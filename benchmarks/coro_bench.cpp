// coro_bench: what a coroutine costs over a plain callback for one I/O round trip. Two ends of a
// socket pair ping-pong one byte, each side waiting in the Reactor for the other's write:
//   Callback: two EventHandlers whose handle_input reads and writes back;
//   Coroutine: two Tasks on an Executor, each `co_await read_some` then `co_await write_all` on a
//     Stream (the coro_echo_server's code path).
// Both make the same system calls (one wait, one read and one write per hop), so the difference
// is the executor, the wakers and the coroutine frames.
#include <benchmark/benchmark.h>

#include <array>

#include "bench_common.hpp"
#include "reactor/futures/executor.hpp"
#include "reactor/futures/io_futures.hpp"
#include "reactor/futures/task.hpp"

namespace {

// Echoes on `a`; on `b` counts a round trip and either serves again or stops the loop.
class PingHandler final : public reactor::EventHandler {
 public:
  PingHandler(reactor::Reactor& r, benchmark::State& s, bool echo) : r_(r), s_(s), echo_(echo) {}
  int handle_input(reactor::Handle fd) override {
    char c;
    if (::read(fd, &c, 1) != 1) return 0;
    if (!echo_ && !s_.KeepRunning()) {
      r_.end_event_loop();
      return 0;
    }
    (void)::write(fd, &c, 1);
    return 0;
  }

 private:
  reactor::Reactor& r_;
  benchmark::State& s_;
  bool echo_;
};

void BM_CallbackRoundTrip(benchmark::State& state) {
  reactor::Reactor r;
  bench::SocketPair sp;
  PingHandler server(r, state, true), client(r, state, false);
  (void)r.register_handler(sp.a, &server, reactor::EventMask::read);
  (void)r.register_handler(sp.b, &client, reactor::EventMask::read);
  if (state.KeepRunning()) {
    bench::ping(sp.b);
    (void)r.run_event_loop();
  }
  state.SetItemsProcessed(state.iterations());
  (void)r.remove_handler(sp.a, reactor::EventMask::all_io, reactor::CloseHook::skip);
  (void)r.remove_handler(sp.b, reactor::EventMask::all_io, reactor::CloseHook::skip);
}

reactor::Task<void> echo_task(reactor::Stream& s) {
  std::array<char, 64> buf;
  for (;;) {
    const std::size_t n = co_await s.read_some(buf);
    if (n == 0) co_return;
    co_await s.write_all({buf.data(), n});
  }
}

reactor::Task<void> ping_task(reactor::Stream& s, benchmark::State& state) {
  const std::array<char, 1> ping{'x'};
  // A read buffer larger than the reply: a short read tells the Stream the socket is drained, so
  // it waits for the next report instead of trying a read that would fail with EAGAIN.
  std::array<char, 64> pong;
  while (state.KeepRunning()) {
    co_await s.write_all(ping);
    co_await s.read_some(pong);
  }
}

void BM_CoroutineRoundTrip(benchmark::State& state) {
  reactor::Reactor r;
  bench::SocketPair sp;
  reactor::Stream a(r, reactor::UniqueFd(::dup(sp.a)));
  reactor::Stream b(r, reactor::UniqueFd(::dup(sp.b)));
  reactor::Executor ex(r);
  auto server = ex.spawn(echo_task(a));
  ex.block_on(ping_task(b, state));
  server.cancel();
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(BM_CallbackRoundTrip);
BENCHMARK(BM_CoroutineRoundTrip);
BENCHMARK_MAIN();
