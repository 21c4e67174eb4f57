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

#include "bench_common.hpp"

namespace {

constexpr int timer_count = 10000;

// Counts expiries; every timer of a benchmark shares it, told apart by nothing (as in a server).
class TimerSink final : public reactor::EventHandler {
 public:
  int handle_timeout(reactor::TimePoint, const void*) override {
    ++fired;
    return 0;
  }
  int fired = 0;
};

reactor::Duration spread(int i) { return std::chrono::milliseconds(1000 + i % 9000); }

void BM_ReactorTimersScheduleCancel(benchmark::State& state) {
  reactor::Reactor r;
  TimerSink sink;
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
  std::vector<boost::asio::steady_timer> timers;
  timers.reserve(timer_count);
  for (int i = 0; i < timer_count; ++i) timers.emplace_back(io);
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
  TimerSink sink;
  for (auto _ : state) {
    sink.fired = 0;
    for (int i = 0; i < timer_count; ++i)
      (void)r.schedule_timer(&sink, nullptr, reactor::Duration::zero());
    while (sink.fired < timer_count) (void)r.handle_events();
  }
  state.SetItemsProcessed(state.iterations() * timer_count);
}

void BM_AsioTimersScheduleFire(benchmark::State& state) {
  boost::asio::io_context io(1);
  std::vector<boost::asio::steady_timer> timers;
  timers.reserve(timer_count);
  for (int i = 0; i < timer_count; ++i) timers.emplace_back(io);
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
