// The README's coroutine network example, compiled and run by tests/docs so it cannot go stale.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <reactor/futures/executor.hpp>
#include <reactor/futures/io_futures.hpp>
#include <reactor/futures/when.hpp>

// One task per client: every byte it sends comes back, until it closes or an error occurs.
reactor::Task<void> echo(reactor::Stream stream) {
  char buf[4096];
  for (;;) {
    auto n = co_await reactor::outcome_of(stream.read_some(buf));  // an error is a value here
    if (!n || *n == 0) co_return;                                  // error or end of stream
    if (!co_await reactor::outcome_of(stream.write_all({buf, *n}))) co_return;
  }
}

// Accepts forever, one task per connection; a failed accept (out of descriptors...) pauses.
reactor::Task<void> accept_all(reactor::Executor& ex, reactor::Listener& listener) {
  for (;;) {
    auto conn = co_await reactor::outcome_of(listener.accept());
    if (conn) ex.spawn(echo(std::move(*conn))).detach();  // the task runs on by itself
    if (!conn) co_await reactor::sleep_for(ex.reactor(), std::chrono::milliseconds(10));
  }
}

int main(int argc, char** argv) {  // hello_coro_echo [PORT]; port 0 (the default) picks a free one
  reactor::Reactor reactor;
  auto listener = reactor::Listener::bind_loopback(reactor, argc > 1 ? std::atoi(argv[1]) : 0);
  if (!listener) {
    std::fprintf(stderr, "cannot listen: %s\n", listener.error().message().c_str());
    return 1;
  }
  reactor::Executor ex(reactor);  // declared after the listener: its tasks end before it closes
  auto stop = ex.spawn(reactor::wait_signal(reactor, {SIGINT, SIGTERM}));
  ex.block_on(reactor::yield_now());  // one turn, so the signals are watched from here on
  std::printf("listening on 127.0.0.1:%u\n", listener.value().port());
  std::fflush(stdout);
  ex.block_on(reactor::when_any(accept_all(ex, listener.value()), std::move(stop)));
}  // ~Executor drops the connection tasks still running, which closes their Streams
