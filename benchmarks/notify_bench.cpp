// notify_bench: cross-thread hand-off throughput. Another thread sends 10,000 items per
// iteration while the loop thread runs them: our Reactor::post (a std::function each) and
// Reactor::notify (a handler pointer each) against Boost.Asio's post to an io_context. The
// sender starts and joins per iteration, the same for both.
#include <benchmark/benchmark.h>

#include <boost/asio.hpp>
#include <thread>

#include "bench_common.hpp"

namespace {

constexpr int item_count = 10000;

void BM_ReactorPost(benchmark::State& state) {
  reactor::Reactor r;
  int count = 0;
  for (auto _ : state) {
    count = 0;
    std::thread sender([&r, &count] {
      for (int i = 0; i < item_count; ++i) (void)r.post([&count] { ++count; });
    });
    while (count < item_count) (void)r.handle_events();
    sender.join();
  }
  state.SetItemsProcessed(state.iterations() * item_count);
}

void BM_ReactorNotify(benchmark::State& state) {
  reactor::Reactor r;
  bench::Counter sink;
  for (auto _ : state) {
    std::thread sender([&r, &sink] {
      for (int i = 0; i < item_count; ++i) (void)r.notify(&sink);
    });
    bench::run_until_counted(r, sink, item_count);
    sender.join();
  }
  state.SetItemsProcessed(state.iterations() * item_count);
}

void BM_AsioPost(benchmark::State& state) {
  boost::asio::io_context io;  // default concurrency hint: posting from threads needs locks
  auto guard = boost::asio::make_work_guard(io);
  int count = 0;
  for (auto _ : state) {
    count = 0;
    std::thread sender([&io, &count] {
      for (int i = 0; i < item_count; ++i) boost::asio::post(io, [&count] { ++count; });
    });
    while (count < item_count) io.run_one();
    sender.join();
  }
  state.SetItemsProcessed(state.iterations() * item_count);
}

}  // namespace

BENCHMARK(BM_ReactorPost)->UseRealTime();
BENCHMARK(BM_ReactorNotify)->UseRealTime();
BENCHMARK(BM_AsioPost)->UseRealTime();
BENCHMARK_MAIN();
