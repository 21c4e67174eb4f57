// The README's callback network example, compiled and run by tests/docs so it cannot go stale.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <handlers/acceptor.hpp>
#include <reactor/reactor.hpp>

// One client connection: every byte it sends comes back. The Acceptor makes one per client.
struct Echo : reactor::StreamHandler {
  Echo(reactor::Dispatcher& d, reactor::UniqueFd socket) : StreamHandler(d, std::move(socket)) {}
  void on_data(reactor::Buffer& input) override {
    send(input.view());  // written at once, or queued until the socket takes it
    input.clear();       // consumed: what stays in `input` is offered again with the next bytes
  }
};

// SIGINT / SIGTERM end the loop; handle_signal runs on the loop thread, not in signal context.
struct Stop : reactor::EventHandler {
  explicit Stop(reactor::Reactor& r) : loop(r) {}
  int handle_signal(int) override { return loop.end_event_loop(), 0; }
  reactor::Reactor& loop;
};

int main(int argc, char** argv) {  // hello_echo [PORT]; port 0 (the default) picks a free one
  reactor::Reactor reactor;
  reactor::Acceptor<Echo> acceptor(reactor);  // owns every Echo it makes, deletes it after on_close
  const auto address = reactor::SocketAddress::loopback_v4(argc > 1 ? std::atoi(argv[1]) : 0);
  if (auto ec = acceptor.open(address)) {
    std::fprintf(stderr, "cannot listen: %s\n", ec.message().c_str());
    return 1;
  }
  Stop stop(reactor);
  (void)reactor.register_signal(SIGINT, &stop);
  (void)reactor.register_signal(SIGTERM, &stop);
  std::printf("listening on 127.0.0.1:%u\n", acceptor.local_address().port());
  std::fflush(stdout);
  return reactor.run_event_loop() ? 1 : 0;  // open connections get on_close as the reactor goes
}
