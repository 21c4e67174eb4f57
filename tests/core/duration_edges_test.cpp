// Durations at the edges of their range (issue 13), on every backend and on both reactors: the
// delay and interval of schedule_timer, reset_timer_interval and the timeout of handle_events,
// each called with every value of duration_edges(), and the backends' wait with the same values.
// Properties, for every value: nothing overflows (the ASan+UBSan build halts on signed
// overflow), nothing fires before its time, a negative delay or interval is refused with
// errc::invalid_argument, a delay or interval that reaches past the end of the clock's range
// means "not in this program's life", a negative or zero timeout of handle_events is a poll, and
// the loop stays responsive: cancel_timer and end_event_loop still work with such timers pending.
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sys/timerfd.h>
#endif

#include "conformance.hpp"
#include "duration_edges.hpp"

namespace reactor::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using DurationEdges = Conformance;

// A hook that keeps firing stops its timer after this many calls, so a timer that would fire
// without end (an overflowed interval) fails the test instead of hanging it.
constexpr int runaway_cap = 4;

// A probe that records when each of its expiries was handled.
struct TimedProbe : Probe {
  TimedProbe() {
    on_timeout = [this](TimePoint now, const void*) {
      fired.push_back(now);
      return static_cast<int>(fired.size()) >= runaway_cap ? -1 : 0;
    };
  }
  std::vector<TimePoint> fired;
};

// Turns the loop until a witness timer `window` from now has fired and `also()` holds (bounded).
bool run_window(Dispatcher& r, milliseconds window, const std::function<bool()>& also = {}) {
  Probe witness;
  if (!r.schedule_timer(&witness, nullptr, window)) return false;
  return run_until(r, [&] { return witness.timeouts > 0 && (!also || also()); });
}

// Delays: negative ones are refused, zero and 1 ns fire once, the rest (hours and more, up to
// past the end of the clock) stay pending, can be cancelled, and never fire early.
TEST_P(DurationEdges, ScheduleTimerDelay) {
  const auto edges = duration_edges();
  std::deque<TimedProbe> probes;
  std::vector<TimePoint> start;
  std::vector<TimerId> ids;
  for (const DurationEdge& e : edges) {
    TimedProbe& p = probes.emplace_back();
    start.push_back(Clock::now());
    auto id = r().schedule_timer(&p, nullptr, e.value);
    if (e.value < Duration::zero()) {
      ASSERT_FALSE(id) << e;
      EXPECT_EQ(id.error(), errc::invalid_argument) << e;
      ids.push_back(invalid_timer);
    } else {
      ASSERT_TRUE(id) << e;
      ids.push_back(*id);
    }
  }
  ASSERT_TRUE(run_window(r(), milliseconds(20)));
  std::size_t pending = 0;
  for (std::size_t i = 0; i < edges.size(); ++i) {
    const DurationEdge& e = edges[i];
    const TimedProbe& p = probes[i];
    if (due_within_window(e.value)) {
      EXPECT_EQ(p.fired.size(), 1U) << e;
    } else {
      EXPECT_TRUE(p.fired.empty()) << e << " fired";
    }
    for (TimePoint t : p.fired) EXPECT_GE(t - start[i], e.value) << e << " fired early";
    if (ids[i] != invalid_timer && p.fired.empty()) ++pending;
  }
  EXPECT_EQ(r().timer_count(), pending);
  // Timers due past the end of time are ordinary pending timers: they can be cancelled.
  for (std::size_t i = 0; i < edges.size(); ++i) {
    if (ids[i] != invalid_timer && probes[i].fired.empty()) {
      EXPECT_FALSE(r().cancel_timer(ids[i])) << edges[i];
    }
  }
  EXPECT_EQ(r().timer_count(), 0U);
}

// Intervals, first expiry at once: negative refused, zero one-shot, 1 ns repeats (once per
// turn of the loop), the huge ones fire once and then never again, but stay cancellable.
TEST_P(DurationEdges, ScheduleTimerInterval) {
  const auto edges = duration_edges();
  std::deque<TimedProbe> probes;
  std::vector<TimePoint> start;
  std::vector<TimerId> ids;
  for (const DurationEdge& e : edges) {
    TimedProbe& p = probes.emplace_back();
    start.push_back(Clock::now());
    auto id = r().schedule_timer(&p, nullptr, Duration::zero(), e.value);
    if (e.value < Duration::zero()) {
      ASSERT_FALSE(id) << e;
      EXPECT_EQ(id.error(), errc::invalid_argument) << e;
      ids.push_back(invalid_timer);
    } else {
      ASSERT_TRUE(id) << e;
      ids.push_back(*id);
    }
  }
  auto repeating_done = [&] {
    for (std::size_t i = 0; i < edges.size(); ++i) {
      const Duration d = edges[i].value;
      if (d > Duration::zero() && d <= milliseconds(1) &&
          static_cast<int>(probes[i].fired.size()) < runaway_cap) {
        return false;
      }
    }
    return true;
  };
  ASSERT_TRUE(run_window(r(), milliseconds(20), repeating_done));
  std::size_t pending = 0;
  for (std::size_t i = 0; i < edges.size(); ++i) {
    const DurationEdge& e = edges[i];
    const TimedProbe& p = probes[i];
    if (e.value < Duration::zero()) {
      EXPECT_TRUE(p.fired.empty()) << e;
    } else if (e.value == Duration::zero()) {
      EXPECT_EQ(p.fired.size(), 1U) << e << " is one-shot";
    } else if (e.value <= milliseconds(1)) {
      EXPECT_EQ(static_cast<int>(p.fired.size()), runaway_cap) << e;
      // The k-th expiry is never before start + k * interval.
      for (std::size_t k = 0; k < p.fired.size(); ++k) {
        EXPECT_GE(p.fired[k] - start[i], e.value * static_cast<Duration::rep>(k)) << e;
      }
    } else {
      EXPECT_EQ(p.fired.size(), 1U) << e << ": the next expiry is past the end of the clock";
      ++pending;
    }
  }
  EXPECT_EQ(r().timer_count(), pending);
  for (std::size_t i = 0; i < edges.size(); ++i) {
    if (edges[i].value > milliseconds(1)) {
      EXPECT_FALSE(r().cancel_timer(ids[i])) << edges[i];
    }
  }
  EXPECT_EQ(r().timer_count(), 0U);
}

// reset_timer_interval on a 1 ms interval timer: a negative interval is refused and changes
// nothing; zero makes it one-shot; a huge one lets it fire once more at most, then never.
TEST_P(DurationEdges, ResetTimerInterval) {
  const auto edges = duration_edges();
  std::deque<TimedProbe> probes;
  std::vector<TimePoint> start;
  std::vector<TimerId> ids;
  for (const DurationEdge& e : edges) {
    EXPECT_EQ(r().reset_timer_interval(invalid_timer, e.value),
              e.value < Duration::zero() ? errc::invalid_argument : errc::timer_not_found)
        << e;
    TimedProbe& p = probes.emplace_back();
    start.push_back(Clock::now());
    auto id = r().schedule_timer(&p, nullptr, Duration::zero(), milliseconds(1));
    ASSERT_TRUE(id) << e;
    ids.push_back(*id);
    const std::error_code ec = r().reset_timer_interval(*id, e.value);
    if (e.value < Duration::zero()) {
      EXPECT_EQ(ec, errc::invalid_argument) << e;
    } else {
      EXPECT_FALSE(ec) << e;
    }
  }
  // The ones that keep a short interval (negative: unchanged 1 ms; 1 ns) run up to the cap.
  auto keeps_short = [&](Duration d) { return d < Duration::zero() || d == Duration(1); };
  auto repeating_done = [&] {
    for (std::size_t i = 0; i < edges.size(); ++i) {
      if (keeps_short(edges[i].value) && static_cast<int>(probes[i].fired.size()) < runaway_cap) {
        return false;
      }
    }
    return true;
  };
  ASSERT_TRUE(run_window(r(), milliseconds(20), repeating_done));
  std::size_t pending = 0;
  for (std::size_t i = 0; i < edges.size(); ++i) {
    const DurationEdge& e = edges[i];
    const TimedProbe& p = probes[i];
    if (keeps_short(e.value)) {
      EXPECT_EQ(static_cast<int>(p.fired.size()), runaway_cap) << e;
      if (e.value < Duration::zero()) {
        for (std::size_t k = 0; k < p.fired.size(); ++k) {
          EXPECT_GE(p.fired[k] - start[i], milliseconds(1) * static_cast<int>(k)) << e;
        }
      }
    } else if (e.value == Duration::zero()) {
      EXPECT_EQ(p.fired.size(), 1U) << e << " is one-shot now";
    } else {
      EXPECT_EQ(p.fired.size(), 1U) << e << ": the next expiry is past the end of the clock";
      ++pending;
    }
  }
  EXPECT_EQ(r().timer_count(), pending);
  for (std::size_t i = 0; i < edges.size(); ++i) {
    if (edges[i].value > milliseconds(1)) {
      EXPECT_FALSE(r().cancel_timer(ids[i])) << edges[i];
    }
  }
  EXPECT_EQ(r().timer_count(), 0U);
}

// handle_events(timeout): zero, negative and 1 ns poll and return at once; every longer timeout
// waits for the next event (a timer 3 ms away), neither returning before it nor treating the
// timeout as a poll. Timers due past the end of time are pending throughout and never fire.
TEST_P(DurationEdges, HandleEventsTimeout) {
  std::deque<TimedProbe> far;
  std::vector<TimerId> far_ids;
  for (Duration d : {forever, Duration::max() - Duration(1), TimePoint::max() - Clock::now()}) {
    for (Duration interval : {Duration::zero(), d}) {
      auto id = r().schedule_timer(&far.emplace_back(), nullptr, d, interval);
      ASSERT_TRUE(id);
      far_ids.push_back(*id);
    }
  }
  for (const DurationEdge& e : duration_edges()) {
    if (e.value <= Duration(1)) {
      const TimePoint start = Clock::now();
      auto n = r().handle_events(e.value);
      ASSERT_TRUE(n) << e;
      EXPECT_EQ(*n, 0U) << e;
      EXPECT_LT(Clock::now() - start, seconds(2)) << e << " did not poll";
    } else {
      TimedProbe soon;
      const TimePoint start = Clock::now();
      ASSERT_TRUE(r().schedule_timer(&soon, nullptr, milliseconds(3)));
      auto n = r().handle_events(e.value);
      ASSERT_TRUE(n) << e;
      EXPECT_EQ(*n, 1U) << e;
      ASSERT_EQ(soon.fired.size(), 1U) << e;
      EXPECT_GE(soon.fired[0] - start, milliseconds(3)) << e;
    }
  }
  for (const TimedProbe& p : far) EXPECT_TRUE(p.fired.empty());
  EXPECT_EQ(r().timer_count(), far_ids.size());
  for (TimerId id : far_ids) EXPECT_FALSE(r().cancel_timer(id));
  EXPECT_EQ(r().timer_count(), 0U);
}

// run_event_loop with a timer due past the end of time and one whose interval is: the loop
// sleeps, a near timer still fires, cancels both and ends the loop.
TEST_P(DurationEdges, LoopStaysResponsiveWithTimersPastTheEndOfTime) {
  TimedProbe never;
  TimedProbe once;
  auto never_id = r().schedule_timer(&never, nullptr, forever);
  auto once_id = r().schedule_timer(&once, nullptr, Duration::zero(), forever);
  ASSERT_TRUE(never_id && once_id);
  std::error_code cancel_never;
  std::error_code cancel_once;
  Probe stopper;
  stopper.on_timeout = [&](TimePoint, const void*) {
    cancel_never = r().cancel_timer(*never_id);
    cancel_once = r().cancel_timer(*once_id);
    r().end_event_loop();
    return 0;
  };
  ASSERT_TRUE(r().schedule_timer(&stopper, nullptr, milliseconds(10)));
  Watchdog dog(seconds(20), [&] { r().end_event_loop(); });
  EXPECT_FALSE(r().run_event_loop());
  dog.stop();
  EXPECT_FALSE(dog.expired()) << "end_event_loop from a timer did not end the loop";
  EXPECT_EQ(stopper.timeouts, 1);
  EXPECT_FALSE(cancel_never);
  EXPECT_FALSE(cancel_once);
  EXPECT_TRUE(never.fired.empty());
  EXPECT_EQ(once.fired.size(), 1U);
  EXPECT_EQ(r().timer_count(), 0U);
}

INSTANTIATE_TEST_SUITE_P(Targets, DurationEdges, ::testing::ValuesIn(conformance_targets()),
                         backend_param_name);

// ---- ThreadPoolReactor: handle_events as a follower ---------------------------------------------

std::vector<BackendParam> pool_targets() {
  std::vector<BackendParam> out;
  for (BackendParam& p : conformance_targets()) {
    if (p.thread_pool) out.push_back(std::move(p));
  }
  return out;
}

using DurationEdgesFollower = Conformance;

// While a pool thread leads, handle_events(timeout) on another thread waits as a follower (a
// condition variable). Every timeout longer than the test must keep it there until work comes:
// here a timer 30 ms away, whose hook ends the loop.
TEST_P(DurationEdgesFollower, HugeTimeoutWaitsForWork) {
  auto& pool = static_cast<ThreadPoolReactor&>(r());
  for (const DurationEdge& e : duration_edges()) {
    if (e.value <= milliseconds(1) || e.value == forever) continue;
    Probe stopper;
    stopper.on_timeout = [&](TimePoint, const void*) {
      r().end_event_loop();
      return 0;
    };
    const TimePoint start = Clock::now();
    ASSERT_TRUE(r().schedule_timer(&stopper, nullptr, milliseconds(30)));
    std::error_code loop_ec;
    std::thread loop([&] { loop_ec = pool.run_event_loop(1); });
    // Wait (bounded) until the loop has run a job: from then on its thread leads.
    std::mutex m;
    std::condition_variable cv;
    bool running = false;
    ASSERT_FALSE(r().post([&] {
      std::lock_guard lock(m);
      running = true;
      cv.notify_all();
    }));
    {
      std::unique_lock lock(m);
      ASSERT_TRUE(cv.wait_for(lock, seconds(10), [&] { return running; }));
    }
    // Should the loop end before this thread waits, it leads itself with nothing to wait for:
    // the watchdog's post then ends the wait (correct behaviour, and still bounded).
    Watchdog dog(seconds(10), [&] { (void)r().post([] {}); });
    auto n = r().handle_events(e.value);
    dog.stop();
    EXPECT_TRUE(n) << e;
    EXPECT_GE(Clock::now() - start, milliseconds(30)) << e << ": returned before any work came";
    loop.join();
    EXPECT_FALSE(loop_ec) << e;
    EXPECT_EQ(stopper.timeouts, 1) << e;
  }
}

INSTANTIATE_TEST_SUITE_P(PoolTargets, DurationEdgesFollower, ::testing::ValuesIn(pool_targets()),
                         backend_param_name);

// ---- the backends' wait ------------------------------------------------------------------------

class DurationEdgesDemux : public ::testing::TestWithParam<BackendParam> {};

// Waits until something is reported, at most `tries` waits (one may end early with nothing:
// EINTR, or the spurious wake-up of a thread that tore down an io_uring ring).
std::size_t wait_reported(Demultiplexer& d, Duration timeout, int tries = 3) {
  std::vector<ReadyEvent> ready(8);
  for (int i = 0; i < tries; ++i) {
    std::size_t n = 0;
    if (d.wait(ready, timeout, n)) return 0;
    if (n > 0) return n;
  }
  return 0;
}

// Every timeout is one the kernel accepts: with a descriptor ready, each wait reports it.
TEST_P(DurationEdgesDemux, EveryTimeoutIsAcceptedWhenSomethingIsReady) {
  auto demux = GetParam().make();
  Pipe p;
  ASSERT_TRUE(put(p.w.get(), "x"));
  ASSERT_FALSE(demux->add(p.r.get(), EventMask::read));
  for (const DurationEdge& e : duration_edges()) {
    std::vector<ReadyEvent> ready(8);
    std::size_t n = 0;
    EXPECT_FALSE(demux->wait(ready, e.value, n)) << e;
    if (n == 0) n = wait_reported(*demux, e.value);  // one early return allowed
    EXPECT_EQ(n, 1U) << e;
  }
  EXPECT_FALSE(demux->remove(p.r.get()));
}

// With nothing ready but a timer descriptor 20 ms away, a negative ("no limit") or huge timeout
// waits for it: it neither fails nor returns at once as if it had expired.
TEST_P(DurationEdgesDemux, HugeOrNegativeTimeoutWaitsForTheEvent) {
#if defined(__linux__)
  auto demux = GetParam().make();
  UniqueFd tfd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  ASSERT_TRUE(tfd.valid());
  ASSERT_FALSE(demux->add(tfd.get(), EventMask::read));
  for (const DurationEdge& e : duration_edges()) {
    if (e.value >= Duration::zero() && e.value <= seconds(1)) continue;
    const TimePoint start = Clock::now();
    itimerspec its{};
    its.it_value.tv_nsec = 20'000'000;
    ASSERT_EQ(::timerfd_settime(tfd.get(), 0, &its, nullptr), 0);
    EXPECT_EQ(wait_reported(*demux, e.value), 1U) << e;
    EXPECT_GE(Clock::now() - start, milliseconds(20)) << e << ": returned before the event";
    std::uint64_t expirations = 0;
    EXPECT_EQ(::read(tfd.get(), &expirations, sizeof expirations),
              static_cast<ssize_t>(sizeof expirations))
        << e;
  }
  EXPECT_FALSE(demux->remove(tfd.get()));
#else
  GTEST_SKIP() << "needs timerfd";
#endif
}

INSTANTIATE_TEST_SUITE_P(Backends, DurationEdgesDemux, ::testing::ValuesIn(conformance_backends()),
                         backend_param_name);

}  // namespace
}  // namespace reactor::test
