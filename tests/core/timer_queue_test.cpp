// TimerQueue on its own: ordering, cancellation, interval arithmetic.
#include "reactor/timer_queue.hpp"

#include <gtest/gtest.h>

#include <random>

namespace reactor {
namespace {

using std::chrono::milliseconds;

class Dummy : public EventHandler {};

TEST(TimerQueue, PopsInDueOrderWithTiesInScheduleOrder) {
  TimerQueue q;
  Dummy h;
  const TimePoint t0{};
  std::vector<TimerId> ids;
  ids.push_back(q.schedule(&h, nullptr, t0 + milliseconds(30), {}));
  ids.push_back(q.schedule(&h, nullptr, t0 + milliseconds(10), {}));
  ids.push_back(q.schedule(&h, nullptr, t0 + milliseconds(20), {}));
  ids.push_back(q.schedule(&h, nullptr, t0 + milliseconds(10), {}));
  std::vector<TimerId> order;
  TimerQueue::Expiry e{};
  while (q.pop_due(t0 + milliseconds(100), e)) {
    order.push_back(e.id);
    q.finish_firing(e.id, t0, true);
  }
  EXPECT_EQ(order, (std::vector<TimerId>{ids[1], ids[3], ids[2], ids[0]}));
  EXPECT_EQ(q.size(), 0U);
}

TEST(TimerQueue, NothingDueBeforeItsTime) {
  TimerQueue q;
  Dummy h;
  const TimePoint t0{};
  q.schedule(&h, nullptr, t0 + milliseconds(10), {});
  TimerQueue::Expiry e{};
  EXPECT_FALSE(q.pop_due(t0 + milliseconds(9), e));
  EXPECT_TRUE(q.pop_due(t0 + milliseconds(10), e));
}

TEST(TimerQueue, CancelledTimerNeverPops) {
  TimerQueue q;
  Dummy h;
  const TimePoint t0{};
  const TimerId a = q.schedule(&h, nullptr, t0 + milliseconds(1), {});
  const TimerId b = q.schedule(&h, nullptr, t0 + milliseconds(2), {});
  bool found = false;
  EXPECT_EQ(q.cancel(a, found), &h);
  EXPECT_TRUE(found);
  EXPECT_EQ(q.cancel(a, found), nullptr);
  EXPECT_FALSE(found);
  TimerQueue::Expiry e{};
  ASSERT_TRUE(q.pop_due(t0 + milliseconds(5), e));
  EXPECT_EQ(e.id, b);
  EXPECT_FALSE(q.pop_due(t0 + milliseconds(5), e));
}

TEST(TimerQueue, IntervalAdvancesFromDueTimeNotFromNow) {
  TimerQueue q;
  Dummy h;
  const TimePoint t0{};
  const TimerId id = q.schedule(&h, nullptr, t0 + milliseconds(10), milliseconds(10));
  TimerQueue::Expiry e{};
  ASSERT_TRUE(q.pop_due(t0 + milliseconds(13), e));  // noticed 3 ms late
  bool pending = false;
  q.finish_firing(id, t0 + milliseconds(13), true, &pending);
  EXPECT_TRUE(pending);
  EXPECT_EQ(*q.earliest(), t0 + milliseconds(20));  // not 23
}

TEST(TimerQueue, MissedPeriodsAreSkippedOnTheGrid) {
  TimerQueue q;
  Dummy h;
  const TimePoint t0{};
  const TimerId id = q.schedule(&h, nullptr, t0 + milliseconds(10), milliseconds(10));
  TimerQueue::Expiry e{};
  ASSERT_TRUE(q.pop_due(t0 + milliseconds(55), e));
  q.finish_firing(id, t0 + milliseconds(55), true);
  EXPECT_EQ(*q.earliest(), t0 + milliseconds(60));
}

TEST(TimerQueue, CancelWhileFiringStopsTheInterval) {
  TimerQueue q;
  Dummy h;
  const TimePoint t0{};
  const TimerId id = q.schedule(&h, nullptr, t0, milliseconds(10));
  TimerQueue::Expiry e{};
  ASSERT_TRUE(q.pop_due(t0, e));
  bool found = false;
  EXPECT_EQ(q.cancel(id, found), nullptr);  // freed by finish_firing, not here
  EXPECT_TRUE(found);
  bool pending = true;
  EXPECT_EQ(q.finish_firing(id, t0, true, &pending), &h);
  EXPECT_FALSE(pending);
  EXPECT_EQ(q.size(), 0U);
}

TEST(TimerQueue, StaleIdDoesNotCancelARecycledSlot) {
  TimerQueue q;
  Dummy h;
  const TimePoint t0{};
  const TimerId old_id = q.schedule(&h, nullptr, t0, {});
  bool found = false;
  q.cancel(old_id, found);
  const TimerId new_id = q.schedule(&h, nullptr, t0, {});
  EXPECT_NE(old_id, new_id);
  EXPECT_EQ(q.cancel(old_id, found), nullptr);
  EXPECT_FALSE(found);
  EXPECT_EQ(q.size(), 1U);
}

TEST(TimerQueue, RandomScheduleAndCancelKeepsHeapOrder) {
  TimerQueue q;
  Dummy h;
  const TimePoint t0{};
  std::mt19937 rng(42);
  std::vector<TimerId> live;
  for (int i = 0; i < 20000; ++i) {
    if (!live.empty() && rng() % 3 == 0) {
      const std::size_t k = rng() % live.size();
      bool found = false;
      q.cancel(live[k], found);
      ASSERT_TRUE(found);
      live[k] = live.back();
      live.pop_back();
    } else {
      live.push_back(q.schedule(&h, nullptr, t0 + milliseconds(rng() % 1000), {}));
    }
  }
  EXPECT_EQ(q.size(), live.size());
  TimePoint last = t0;
  TimerQueue::Expiry e{};
  std::size_t popped = 0;
  while (q.pop_due(TimePoint::max(), e)) {
    EXPECT_LE(last, e.due);
    last = e.due;
    q.finish_firing(e.id, t0, true);
    ++popped;
  }
  EXPECT_EQ(popped, live.size());
}

TEST(TimerQueue, ForgetDropsPendingAndDisarmsFiring) {
  TimerQueue q;
  Dummy h;
  Dummy other;
  const TimePoint t0{};
  const TimerId firing = q.schedule(&h, nullptr, t0, milliseconds(1));
  q.schedule(&h, nullptr, t0 + milliseconds(5), {});
  q.schedule(&other, nullptr, t0 + milliseconds(5), {});
  TimerQueue::Expiry e{};
  ASSERT_TRUE(q.pop_due(t0, e));
  ASSERT_EQ(e.id, firing);
  q.forget(&h);
  EXPECT_EQ(q.size(), 1U);
  bool pending = true;
  EXPECT_EQ(q.finish_firing(firing, t0, true, &pending), nullptr);
  EXPECT_FALSE(pending);
  EXPECT_EQ(q.ids_of(&h).size(), 0U);
  EXPECT_EQ(q.ids_of(&other).size(), 1U);
}

}  // namespace
}  // namespace reactor
