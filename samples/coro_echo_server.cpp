// coro_echo_server: the echo_server sample written with coroutines. One task accepts, one task
// per connection reads and writes back; the Executor sleeps in the Reactor in between.
//
//   coro_echo_server [--port N] [--backend select|poll|epoll]     (port 0: pick a free one)
#include <signal.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "reactor/executor.hpp"
#include "reactor/io_futures.hpp"
#include "reactor/task.hpp"
#include "reactor/when.hpp"
#include "sample_stats.hpp"

namespace {

using namespace std::chrono_literals;
using reactor::Executor;
using reactor::Listener;
using reactor::Stream;
using reactor::Task;

// Echoes until the client closes or an error occurs; errors end only this connection.
Task<void> serve(Stream stream) {
  std::array<char, 16384> buffer;
  for (;;) {
    auto n = co_await reactor::outcome_of(stream.read_some(buffer));
    if (!n || *n == 0) co_return;
    auto written = co_await reactor::outcome_of(stream.write_all({buffer.data(), *n}));
    if (!written) co_return;
  }
}

// Accepts forever; a failed accept (EMFILE...) backs off instead of spinning.
Task<void> accept_loop(Executor& executor, Listener& listener) {
  for (;;) {
    auto conn = co_await reactor::outcome_of(listener.accept());
    if (!conn) {
      co_await reactor::sleep_for(executor.reactor(), 10ms);
      continue;
    }
    executor.spawn(serve(std::move(*conn))).detach();
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool show_stats = sample::take_stats_flag(argc, argv);
  int port = 7000;
  reactor::Backend backend = reactor::Backend::best;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--port") {
      port = std::atoi(argv[i + 1]);
    } else if (flag == "--backend" && !reactor::parse_backend(argv[i + 1], backend)) {
    } else {
      std::fprintf(stderr, "usage: %s [--port N] [--backend select|poll|epoll]\n", argv[0]);
      return 2;
    }
  }
  ::signal(SIGPIPE, SIG_IGN);

  try {
    reactor::Reactor r(backend);
    sample::StatsReporter stats(r, show_stats);
    auto listener = Listener::bind_loopback(r, static_cast<std::uint16_t>(port), SOMAXCONN);
    if (!listener) {
      std::fprintf(stderr, "coro_echo_server: cannot listen on port %d: %s\n", port,
                   listener.error().message().c_str());
      return 1;
    }
    Executor executor(r);
    // Watch the signals before the banner, so a signal sent right after it is not fatal.
    auto stop = executor.spawn(reactor::wait_signal(r, {SIGINT, SIGTERM}));
    executor.block_on(reactor::yield_now());
    std::printf("coro_echo_server listening on 127.0.0.1:%d (backend %s)\n",
                listener.value().port(), std::string(reactor::backend_name(r.backend())).c_str());
    std::fflush(stdout);
    auto first = executor.block_on(
        reactor::when_any(accept_loop(executor, listener.value()), std::move(stop)));
    std::printf("coro_echo_server: signal %d, stopping\n", std::get<1>(first));
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "coro_echo_server: %s\n", e.what());
    return 1;
  }
  return 0;
}
