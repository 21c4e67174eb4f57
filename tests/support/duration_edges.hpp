// The durations at the edges of their range that every function taking a Duration is tested
// with (issue 13): zero, one tick either side of it, the extremes, one tick inside them, and
// values whose sum with the current clock reading lands exactly on, or just past, the end of
// TimePoint's range.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/types.hpp"

namespace reactor::test {

/// One edge value with a name for failure messages.
struct DurationEdge {
  std::string name;
  Duration value;
};

/// Prints an edge by name and value in test output.
inline std::ostream& operator<<(std::ostream& os, const DurationEdge& e) {
  return os << e.name << " (" << e.value.count() << " ns)";
}

/// The edges. Those near the clock's range are computed from the clock's reading now, so by the
/// time they are used the sum with "now" has moved past TimePoint::max() by a few microseconds:
/// exactly the case a careless addition overflows in.
inline std::vector<DurationEdge> duration_edges() {
  const Duration one(1);
  const Duration since_epoch = Clock::now().time_since_epoch();  // the steady clock's uptime
  const Duration to_end = TimePoint::max() - Clock::now();       // the longest delay that fits
  return {
      {"zero", Duration::zero()},
      {"1ns", one},
      {"-1ns", -one},
      {"min", Duration::min()},
      {"min+1ns", Duration::min() + one},
      {"max", Duration::max()},
      {"max-1ns", Duration::max() - one},
      {"forever", forever},
      {"to_end", to_end},
      {"to_end-1s", to_end - std::chrono::seconds(1)},
      {"since_epoch", since_epoch},
      {"-since_epoch", -since_epoch},
      {"max-since_epoch", Duration::max() - since_epoch},
      {"min+since_epoch", Duration::min() + since_epoch},
  };
}

/// True for the edges short enough to come due within a test's window of a few milliseconds.
inline bool due_within_window(Duration d) {
  return d >= Duration::zero() && d <= std::chrono::milliseconds(1);
}

/// Bounds a test that a bug could trap inside one call (a hook loop that never gives control
/// back): unless stop() comes within `limit`, it runs `on_expiry` (say, end_event_loop) and
/// records that it did; if the test is still stuck `limit` later, it aborts the process with a
/// message, which is a failure in bounded time rather than a hang.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit, std::function<void()> on_expiry = {})
      : on_expiry_(std::move(on_expiry)) {
    thread_ = std::thread([this, limit] {
      std::unique_lock lock(mutex_);
      if (cv_.wait_for(lock, limit, [this] { return stopped_; })) return;
      expired_ = true;
      lock.unlock();
      if (on_expiry_) on_expiry_();
      lock.lock();
      if (cv_.wait_for(lock, limit, [this] { return stopped_; })) return;
      std::fprintf(stderr, "watchdog: test stuck for %lld s, aborting\n",
                   static_cast<long long>(2 * limit.count()));
      std::abort();
    });
  }
  ~Watchdog() { stop(); }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  /// The test is done (or past the part that could hang).
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopped_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  /// True when the limit passed before stop(): the guarded part hung.
  bool expired() {
    std::lock_guard lock(mutex_);
    return expired_;
  }

 private:
  std::function<void()> on_expiry_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopped_ = false;
  bool expired_ = false;
  std::thread thread_;
};

}  // namespace reactor::test
