// The README's example, compiled with the samples so it cannot go stale.
#include <unistd.h>

#include <cstdio>
#include <reactor/reactor.hpp>

// Echoes standard input to standard output with a heartbeat, until end of input.
struct StdinPrinter : reactor::EventHandler {
  explicit StdinPrinter(reactor::Reactor& r) : loop(r) {}
  reactor::Handle get_handle() const override { return STDIN_FILENO; }
  int handle_input(reactor::Handle fd) override {
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return -1;  // end of input: the reactor removes us and calls handle_close
    std::fwrite(buf, 1, static_cast<size_t>(n), stdout);
    return 0;  // keep the registration
  }
  int handle_timeout(reactor::TimePoint, const void*) override { return std::puts("tick"), 0; }
  int handle_close(reactor::Handle, reactor::EventMask) override {
    loop.end_event_loop();  // the last call this registration gets
    return 0;
  }
  reactor::Reactor& loop;
};

int main() {
  reactor::Reactor reactor;  // the best backend here, or the one REACTOR_BACKEND names
  StdinPrinter printer(reactor);
  if (auto ec = reactor.register_handler(&printer, reactor::EventMask::read)) {
    std::fprintf(stderr, "cannot watch stdin: %s\n", ec.message().c_str());
    return 1;
  }
  (void)reactor.schedule_timer(&printer, nullptr, std::chrono::seconds(1), std::chrono::seconds(1));
  return reactor.run_event_loop() ? 1 : 0;
}
