// A program of a separate project built against reactor (tests/consumer): another thread posts
// work to the loop, which starts an interval timer; the third expiry ends the loop. Exits 0 and
// prints "consumer: ok" only when all of that happened, so a build that links but misbehaves fails.
#include <chrono>
#include <cstdio>
#include <reactor/reactor.hpp>
#include <thread>

namespace {

// Counts expiries of one interval timer and stops the loop at the third.
class Countdown : public reactor::EventHandler {
 public:
  explicit Countdown(reactor::Reactor& r) : reactor_(r) {}

  int handle_timeout(reactor::TimePoint, const void*) override {
    if (++fired_ < 3) return 0;
    reactor_.end_event_loop();
    return -1;  // cancels the timer
  }
  int fired() const { return fired_; }

 private:
  reactor::Reactor& reactor_;
  int fired_ = 0;
};

}  // namespace

int main() {
  using namespace std::chrono_literals;
  reactor::Reactor reactor;
  Countdown countdown(reactor);
  std::error_code timer_error;

  // post() is the one way in from another thread; the work runs on the loop thread.
  std::thread sender([&] {
    (void)reactor.post([&] {
      timer_error = reactor.schedule_timer(&countdown, nullptr, 1ms, 1ms).error();
      if (timer_error) reactor.end_event_loop();
    });
  });
  const std::error_code loop_error = reactor.run_event_loop();
  sender.join();

  if (loop_error || timer_error || countdown.fired() != 3) {
    std::fprintf(stderr, "consumer: failed (loop: %s, timer: %s, expiries: %d)\n",
                 loop_error.message().c_str(), timer_error.message().c_str(), countdown.fired());
    return 1;
  }
  const std::string_view backend = reactor::backend_name(reactor.backend());
  std::printf("consumer: ok (%d expiries on %.*s)\n", countdown.fired(),
              static_cast<int>(backend.size()), backend.data());
  return 0;
}
