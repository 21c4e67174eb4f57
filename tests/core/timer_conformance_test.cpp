// Timers through the Reactor, on every backend: order, one-shot and interval, cancellation and
// rescheduling from inside handle_timeout, and never firing early.
#include "conformance.hpp"

namespace reactor::test {
namespace {

using TimerConformance = Conformance;

TEST_P(TimerConformance, FireInDueOrderWithTheirArguments) {
  Probe h;
  std::vector<int> order;
  int args[3] = {0, 1, 2};
  h.on_timeout = [&](TimePoint, const void* arg) {
    order.push_back(*static_cast<const int*>(arg));
    return 0;
  };
  // Warm up first: the order below holds only if the three calls take less than the 20 ms
  // between their due times, and a first call can be slow (valgrind translates code on first use).
  auto warm = r().schedule_timer(&h, nullptr, milliseconds(1000));
  ASSERT_TRUE(warm);
  ASSERT_FALSE(r().cancel_timer(*warm));
  ASSERT_TRUE(r().schedule_timer(&h, &args[2], milliseconds(60)));
  ASSERT_TRUE(r().schedule_timer(&h, &args[0], milliseconds(20)));
  ASSERT_TRUE(r().schedule_timer(&h, &args[1], milliseconds(40)));
  ASSERT_TRUE(run_until(r(), [&] { return order.size() == 3; }));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(r().timer_count(), 0U);
}

TEST_P(TimerConformance, NeverFiresEarly) {
  Probe h;
  TimePoint fired_at{};
  h.on_timeout = [&](TimePoint now, const void*) {
    fired_at = now;
    return 0;
  };
  const TimePoint start = Clock::now();
  ASSERT_TRUE(r().schedule_timer(&h, nullptr, milliseconds(25)));
  ASSERT_TRUE(run_until(r(), [&] { return h.timeouts == 1; }));
  EXPECT_GE(fired_at - start, milliseconds(25));
  EXPECT_GE(Clock::now() - start, milliseconds(25));
}

TEST_P(TimerConformance, BlockingWaitWakesForTheTimer) {
  Probe h;
  ASSERT_TRUE(r().schedule_timer(&h, nullptr, milliseconds(10)));
  // No descriptor is ready: the reactor must compute its wait from the timer, not block forever.
  auto n = r().handle_events();
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1U);
  EXPECT_EQ(h.timeouts, 1);
}

TEST_P(TimerConformance, IntervalRepeatsUntilCancelledInsideItsCallback) {
  Probe h;
  TimerId id = invalid_timer;
  h.on_timeout = [&](TimePoint, const void*) {
    if (h.timeouts == 3) {
      EXPECT_FALSE(r().cancel_timer(id));
    }
    return 0;
  };
  auto scheduled = r().schedule_timer(&h, nullptr, milliseconds(1), milliseconds(2));
  ASSERT_TRUE(scheduled);
  id = *scheduled;
  ASSERT_TRUE(run_until(r(), [&] { return h.timeouts == 3; }));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(r().handle_events(milliseconds(3)));
  EXPECT_EQ(h.timeouts, 3);
  EXPECT_EQ(r().timer_count(), 0U);
  EXPECT_EQ(r().cancel_timer(id), errc::timer_not_found);
}

TEST_P(TimerConformance, NegativeReturnStopsAnInterval) {
  Probe h;
  h.on_timeout = [&](TimePoint, const void*) { return h.timeouts == 2 ? -1 : 0; };
  ASSERT_TRUE(r().schedule_timer(&h, nullptr, milliseconds(1), milliseconds(1)));
  ASSERT_TRUE(run_until(r(), [&] { return h.timeouts == 2; }));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(r().handle_events(milliseconds(2)));
  EXPECT_EQ(h.timeouts, 2);
  EXPECT_EQ(h.closes, 0);  // timers never call handle_close
  EXPECT_EQ(r().timer_count(), 0U);
}

TEST_P(TimerConformance, CancelledBeforeDueNeverFires) {
  Probe h;
  auto id = r().schedule_timer(&h, nullptr, milliseconds(5));
  ASSERT_TRUE(id);
  EXPECT_FALSE(r().cancel_timer(*id));
  EXPECT_EQ(r().cancel_timer(*id), errc::timer_not_found);
  Probe witness;
  ASSERT_TRUE(r().schedule_timer(&witness, nullptr, milliseconds(15)));
  ASSERT_TRUE(run_until(r(), [&] { return witness.timeouts == 1; }));
  EXPECT_EQ(h.timeouts, 0);
}

TEST_P(TimerConformance, CancelledInTheIterationItBecameDueNeverFires) {
  Probe a;
  Probe b;
  TimerId b_id = invalid_timer;
  // Both due at once; whichever runs first cancels the other, already due in the same pass.
  a.on_timeout = [&](TimePoint, const void*) {
    EXPECT_FALSE(r().cancel_timer(b_id));
    return 0;
  };
  auto a_id = r().schedule_timer(&a, nullptr, milliseconds(2));
  auto scheduled = r().schedule_timer(&b, nullptr, milliseconds(2));
  ASSERT_TRUE(a_id && scheduled);
  b_id = *scheduled;
  ASSERT_TRUE(run_until(r(), [&] { return a.timeouts == 1; }));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(r().handle_events(milliseconds(3)));
  EXPECT_EQ(b.timeouts, 0);
}

TEST_P(TimerConformance, RescheduleFromInsideCallback) {
  Probe h;
  TimerId id = invalid_timer;
  h.on_timeout = [&](TimePoint, const void*) {
    if (h.timeouts == 1) {
      // Slow the interval down and add a one-shot, both from inside the hook.
      EXPECT_FALSE(r().reset_timer_interval(id, milliseconds(3)));
      EXPECT_TRUE(r().schedule_timer(&h, nullptr, Duration::zero()));
    }
    if (h.timeouts == 4) {
      EXPECT_FALSE(r().cancel_timer(id));
    }
    return 0;
  };
  auto scheduled = r().schedule_timer(&h, nullptr, milliseconds(1), milliseconds(1));
  ASSERT_TRUE(scheduled);
  id = *scheduled;
  ASSERT_TRUE(run_until(r(), [&] { return h.timeouts == 4; }));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(r().handle_events(milliseconds(4)));
  EXPECT_EQ(h.timeouts, 4);
  EXPECT_EQ(r().timer_count(), 0U);
}

TEST_P(TimerConformance, IntervalExpiriesStayOnTheirGrid) {
  Probe h;
  std::vector<TimePoint> seen;
  const auto interval = milliseconds(5);
  h.on_timeout = [&](TimePoint now, const void*) {
    seen.push_back(now);
    return seen.size() == 10 ? -1 : 0;
  };
  const TimePoint start = Clock::now();
  ASSERT_TRUE(r().schedule_timer(&h, nullptr, interval, interval));
  ASSERT_TRUE(run_until(r(), [&] { return seen.size() == 10; }));
  // The n-th expiry is never before start + n * interval (lower bound only: a loaded machine
  // may run late, but the grid itself must not slip; TimerQueue's unit tests pin the arithmetic).
  for (std::size_t n = 0; n < seen.size(); ++n) {
    EXPECT_GE(seen[n] - start, interval * static_cast<int>(n + 1)) << "expiry " << n;
  }
}

TEST_P(TimerConformance, CancelAllTimersOfAHandler) {
  Probe h;
  Probe other;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(r().schedule_timer(&h, nullptr, milliseconds(1)));
  ASSERT_TRUE(r().schedule_timer(&other, nullptr, milliseconds(1)));
  EXPECT_EQ(r().cancel_timers(&h), 5U);
  ASSERT_TRUE(run_until(r(), [&] { return other.timeouts == 1; }));
  EXPECT_EQ(h.timeouts, 0);
}

TEST_P(TimerConformance, ManyTimersAllFireOnce) {
  std::vector<std::unique_ptr<Probe>> probes;
  int fired = 0;
  for (int i = 0; i < 5000; ++i) {
    probes.push_back(std::make_unique<Probe>());
    probes.back()->on_timeout = [&](TimePoint, const void*) { return ++fired, 0; };
    ASSERT_TRUE(r().schedule_timer(probes.back().get(), nullptr, milliseconds(i % 20)));
  }
  ASSERT_TRUE(run_until(r(), [&] { return fired == 5000; }));
  for (auto& p : probes) EXPECT_EQ(p->timeouts, 1);
  EXPECT_EQ(r().timer_count(), 0U);
}

TEST_P(TimerConformance, InvalidArgumentsAreRefused) {
  Probe h;
  EXPECT_EQ(r().schedule_timer(nullptr, nullptr, milliseconds(1)).error(), errc::invalid_argument);
  EXPECT_EQ(r().schedule_timer(&h, nullptr, milliseconds(-1)).error(), errc::invalid_argument);
  EXPECT_EQ(r().cancel_timer(invalid_timer), errc::timer_not_found);
  EXPECT_EQ(r().reset_timer_interval(12345, milliseconds(1)), errc::timer_not_found);
}

INSTANTIATE_TEST_SUITE_P(Backends, TimerConformance, ::testing::ValuesIn(conformance_targets()),
                         backend_param_name);

}  // namespace
}  // namespace reactor::test
