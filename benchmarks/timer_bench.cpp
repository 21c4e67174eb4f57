// timer_bench: 10,000 timers per iteration, ours (Reactor::schedule_timer, a binary heap) against
// Boost.Asio's steady_timer (one timer object per timer, as Asio requires).
//   ScheduleCancel: schedule 10,000 timers 1..10 s out, then cancel them all. Asio completes a
//     cancelled wait by running its handler with operation_aborted, so its iteration also runs
//     those handlers (io_context::poll): that is the price of a cancel there.
//   ScheduleFire: schedule 10,000 timers with a zero delay and run the loop until all fired.
// Both sides schedule by delay, so both read the clock once per timer.
#include <benchmark/benchmark.h>

#include <boost/asio.hpp>
#include <chrono>
#include <vector>

#include "bench_common.hpp"

namespace {

constexpr int timer_count = 10000;

reactor::Duration spread(int i) { return std::chrono::milliseconds(1000 + i % 9000); }

// Asio needs one timer object per timer: made once, outside the timed loop.
std::vector<boost::asio::steady_timer> asio_timers(boost::asio::io_context& io) {
  std::vector<boost::asio::steady_timer> timers;
  timers.reserve(timer_count);
  for (int i = 0; i < timer_count; ++i) timers.emplace_back(io);
  return timers;
}

void BM_ReactorTimersScheduleCancel(benchmark::State& state) {
  reactor::Reactor r;
  bench::Counter sink;  // every timer shares it, told apart by nothing (as in a server)
  std::vector<reactor::TimerId> ids(timer_count);
  for (auto _ : state) {
    for (int i = 0; i < timer_count; ++i)
      ids[i] = r.schedule_timer(&sink, nullptr, spread(i)).value();
    for (auto id : ids) (void)r.cancel_timer(id);
  }
  state.SetItemsProcessed(state.iterations() * timer_count);
}

void BM_AsioTimersScheduleCancel(benchmark::State& state) {
  boost::asio::io_context io(1);
  auto timers = asio_timers(io);
  int aborted = 0;
  for (auto _ : state) {
    for (int i = 0; i < timer_count; ++i) {
      timers[i].expires_after(spread(i));
      timers[i].async_wait([&aborted](boost::system::error_code ec) { aborted += ec ? 1 : 0; });
    }
    for (auto& t : timers) t.cancel();
    io.restart();
    io.poll();
  }
  benchmark::DoNotOptimize(aborted);
  state.SetItemsProcessed(state.iterations() * timer_count);
}

void BM_ReactorTimersScheduleFire(benchmark::State& state) {
  reactor::Reactor r;
  bench::Counter sink;
  for (auto _ : state) {
    for (int i = 0; i < timer_count; ++i)
      (void)r.schedule_timer(&sink, nullptr, reactor::Duration::zero());
    bench::run_until_counted(r, sink, timer_count);
  }
  state.SetItemsProcessed(state.iterations() * timer_count);
}

void BM_AsioTimersScheduleFire(benchmark::State& state) {
  boost::asio::io_context io(1);
  auto timers = asio_timers(io);
  for (auto _ : state) {
    int fired = 0;
    for (auto& t : timers) {
      t.expires_after(std::chrono::nanoseconds(0));  // reads the clock, as schedule_timer does
      t.async_wait([&fired](boost::system::error_code) { ++fired; });
    }
    io.restart();
    io.run();
    if (fired != timer_count) state.SkipWithError("not every timer fired");
  }
  state.SetItemsProcessed(state.iterations() * timer_count);
}

}  // namespace

BENCHMARK(BM_ReactorTimersScheduleCancel);
BENCHMARK(BM_AsioTimersScheduleCancel);
BENCHMARK(BM_ReactorTimersScheduleFire);
BENCHMARK(BM_AsioTimersScheduleFire);
BENCHMARK_MAIN();
