// TimerQueue on its own: ordering, cancellation, interval arithmetic.
#include "reactor/detail/timer_queue.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <tuple>
#include <utility>

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

// ---- lazy cancellation: a cancel leaves a dead heap entry behind --------------------------------

TEST(TimerQueue, CancellingTheEarliestMovesEarliestToTheNextLiveTimer) {
  TimerQueue q;
  Dummy h;
  const TimePoint t0{};
  const TimerId a = q.schedule(&h, nullptr, t0 + milliseconds(10), {});
  const TimerId b = q.schedule(&h, nullptr, t0 + milliseconds(20), {});
  const TimerId c = q.schedule(&h, nullptr, t0 + milliseconds(30), {});
  bool found = false;
  EXPECT_EQ(q.cancel(a, found), &h);
  EXPECT_TRUE(found);
  EXPECT_EQ(q.size(), 2U);
  EXPECT_EQ(q.earliest(), t0 + milliseconds(20));
  q.cancel(c, found);  // not the earliest: its entry may stay, but it is no longer counted
  EXPECT_TRUE(found);
  EXPECT_EQ(q.size(), 1U);
  EXPECT_EQ(q.earliest(), t0 + milliseconds(20));
  q.cancel(b, found);
  EXPECT_TRUE(found);
  EXPECT_EQ(q.size(), 0U);
  EXPECT_EQ(q.earliest(), std::nullopt);
  EXPECT_EQ(q.queued_entries(), 0U);
  TimerQueue::Expiry e{};
  EXPECT_FALSE(q.pop_due(TimePoint::max(), e));
}

TEST(TimerQueue, CancelledEarliestIsNotPoppedAndDoesNotHideTheNext) {
  TimerQueue q;
  Dummy h;
  const TimePoint t0{};
  const TimerId a = q.schedule(&h, nullptr, t0, {});
  const TimerId b = q.schedule(&h, nullptr, t0 + milliseconds(5), {});
  bool found = false;
  q.cancel(a, found);
  ASSERT_TRUE(found);
  TimerQueue::Expiry e{};
  EXPECT_FALSE(q.pop_due(t0, e));  // a was due, but it is cancelled; b is not due yet
  EXPECT_FALSE(q.pop_due(t0 + milliseconds(4), e));
  ASSERT_TRUE(q.pop_due(t0 + milliseconds(5), e));
  EXPECT_EQ(e.id, b);
  EXPECT_EQ(e.due, t0 + milliseconds(5));
}

TEST(TimerQueue, DeadEntryOfARecycledSlotNeverFiresItsNewTimer) {
  TimerQueue q;
  Dummy h;
  const TimePoint t0{};
  const TimerId first = q.schedule(&h, nullptr, t0 + milliseconds(1), {});
  q.schedule(&h, nullptr, t0 + milliseconds(1000), {});
  const TimerId a = q.schedule(&h, nullptr, t0 + milliseconds(100), {});
  bool found = false;
  q.cancel(a, found);
  ASSERT_TRUE(found);
  ASSERT_EQ(q.queued_entries(), 3U);  // a's entry (due at 100 ms) is still in the heap, dead
  const TimerId c = q.schedule(&h, nullptr, t0 + milliseconds(200), {});
  ASSERT_NE(c, a);
  // The test is only meaningful if c took a's slot (the low half of the id).
  ASSERT_EQ(static_cast<std::uint32_t>(c), static_cast<std::uint32_t>(a));
  TimerQueue::Expiry e{};
  ASSERT_TRUE(q.pop_due(t0 + milliseconds(150), e));
  EXPECT_EQ(e.id, first);
  q.finish_firing(e.id, t0, true);
  EXPECT_FALSE(q.pop_due(t0 + milliseconds(150), e));  // c is not due before 200 ms
  EXPECT_EQ(q.earliest(), t0 + milliseconds(200));
  ASSERT_TRUE(q.pop_due(t0 + milliseconds(200), e));
  EXPECT_EQ(e.id, c);
  EXPECT_EQ(e.due, t0 + milliseconds(200));
  q.finish_firing(e.id, t0, true);
  EXPECT_EQ(q.size(), 1U);
}

TEST(TimerQueue, ManyCancelsCompactTheHeapAndKeepOrderAndIds) {
  TimerQueue q;
  Dummy h;
  const TimePoint t0{};
  std::mt19937 rng(7);
  struct Timer {
    TimerId id;
    TimePoint due;
    int order;  // schedule order, which breaks ties in due time
  };
  std::vector<Timer> timers;
  for (int i = 0; i < 3000; ++i) {
    const TimePoint due = t0 + milliseconds(rng() % 200);  // many ties
    timers.push_back({q.schedule(&h, nullptr, due, {}), due, i});
  }
  std::shuffle(timers.begin(), timers.end(), rng);
  // Cancel 2/3 of them in random order: dead entries come to outnumber live ones many times.
  const std::size_t keep = timers.size() / 3;
  std::size_t largest = 0;
  for (std::size_t i = keep; i < timers.size(); ++i) {
    bool found = false;
    EXPECT_EQ(q.cancel(timers[i].id, found), &h);
    ASSERT_TRUE(found);
    ASSERT_EQ(q.size(), timers.size() - 1 - i + keep);
    ASSERT_LE(q.queued_entries(), 2 * q.size());
    largest = std::max(largest, q.queued_entries());
  }
  timers.resize(keep);
  EXPECT_LT(q.queued_entries(), 2 * keep + 1);
  // Cancelled ids stay dead; the others are all still known.
  std::vector<TimerId> expected_ids;
  for (const Timer& t : timers) {
    EXPECT_TRUE(q.reset_interval(t.id, {}));
    expected_ids.push_back(t.id);
  }
  std::vector<TimerId> ids = q.ids_of(&h);
  std::sort(ids.begin(), ids.end());
  std::sort(expected_ids.begin(), expected_ids.end());
  EXPECT_EQ(ids, expected_ids);
  // They pop in (due, schedule order), exactly.
  std::sort(timers.begin(), timers.end(), [](const Timer& a, const Timer& b) {
    return std::tie(a.due, a.order) < std::tie(b.due, b.order);
  });
  TimerQueue::Expiry e{};
  for (const Timer& t : timers) {
    ASSERT_EQ(q.earliest(), t.due);
    ASSERT_TRUE(q.pop_due(TimePoint::max(), e));
    EXPECT_EQ(e.id, t.id);
    EXPECT_EQ(e.due, t.due);
    q.finish_firing(e.id, t0, true);
  }
  EXPECT_FALSE(q.pop_due(TimePoint::max(), e));
  EXPECT_EQ(q.size(), 0U);
  EXPECT_EQ(q.queued_entries(), 0U);
}

TEST(TimerQueue, ScheduleCancelLoopKeepsTheHeapBounded) {
  TimerQueue q;
  Dummy h;
  const TimePoint t0{};
  // 100 long-lived timers stay at the top; each loop timer is due later, so its cancelled entry
  // never reaches the top and can only go by compaction.
  for (int i = 0; i < 100; ++i) q.schedule(&h, nullptr, t0 + milliseconds(i), {});
  std::size_t largest = 0;
  for (int i = 0; i < 100000; ++i) {
    const TimerId id = q.schedule(&h, nullptr, t0 + milliseconds(1000 + i), {});
    bool found = false;
    q.cancel(id, found);
    ASSERT_TRUE(found);
    ASSERT_EQ(q.size(), 100U);
    largest = std::max(largest, q.queued_entries());
  }
  EXPECT_LE(largest, 2U * 100U + 1U);  // 100,000 cancels, at most 101 dead entries at a time
  EXPECT_LE(q.queued_entries(), 2U * 100U);
  // Alone, a schedule/cancel loop leaves nothing behind at all.
  TimerQueue alone;
  for (int i = 0; i < 1000; ++i) {
    bool found = false;
    alone.cancel(alone.schedule(&h, nullptr, t0 + milliseconds(i), {}), found);
    ASSERT_TRUE(found);
    ASSERT_EQ(alone.queued_entries(), 0U);
  }
}

TEST(TimerQueue, RandomOperationsMatchAModel) {
  TimerQueue q;
  Dummy h;
  const TimePoint t0{};
  std::mt19937 rng(1234);
  // The model: pending timers by (due, schedule order).
  std::map<std::pair<TimePoint, int>, TimerId> model;
  std::map<TimerId, std::pair<TimePoint, int>> key_of;
  std::set<TimerId> dead;
  TimePoint now = t0;
  int order = 0;
  for (int step = 0; step < 50000; ++step) {
    const unsigned op = rng() % 10;
    if (op < 5) {
      const TimePoint due = now + milliseconds(rng() % 50);
      const TimerId id = q.schedule(&h, nullptr, due, {});
      ASSERT_EQ(key_of.count(id), 0U);  // never the id of a pending timer
      model[{due, order}] = id;
      key_of[id] = {due, order};
      dead.erase(id);
      ++order;
    } else if (op < 8 && !key_of.empty()) {
      auto it = key_of.begin();
      std::advance(it, static_cast<long>(rng() % std::min<std::size_t>(key_of.size(), 64)));
      const TimerId id = it->first;
      bool found = false;
      EXPECT_EQ(q.cancel(id, found), &h);
      ASSERT_TRUE(found);
      model.erase(it->second);
      key_of.erase(it);
      dead.insert(id);
    } else if (op < 9 && !dead.empty()) {
      bool found = true;
      EXPECT_EQ(q.cancel(*dead.begin(), found), nullptr);  // cancelled ids stay dead
      EXPECT_FALSE(found);
    } else {
      now += milliseconds(rng() % 5);
      TimerQueue::Expiry e{};
      while (q.pop_due(now, e)) {
        ASSERT_FALSE(model.empty());
        const auto first = model.begin();
        ASSERT_EQ(e.id, first->second);
        ASSERT_EQ(e.due, first->first.first);
        ASSERT_LE(e.due, now);  // never early
        key_of.erase(e.id);
        model.erase(first);
        dead.insert(e.id);
        q.finish_firing(e.id, now, true);
      }
      ASSERT_TRUE(model.empty() || model.begin()->first.first > now);
    }
    ASSERT_EQ(q.size(), model.size());
    ASSERT_LE(q.queued_entries(), 2 * q.size());
    if (model.empty()) {
      ASSERT_EQ(q.earliest(), std::nullopt);
    } else {
      ASSERT_EQ(q.earliest(), model.begin()->first.first);
    }
  }
}

TEST(TimerQueue, ForgetCountsOnlyTheOthersAndKeepsTheirOrder) {
  TimerQueue q;
  Dummy h;
  Dummy other;
  const TimePoint t0{};
  std::vector<TimerId> others;
  for (int i = 0; i < 300; ++i) {
    q.schedule(&h, nullptr, t0 + milliseconds(i), {});
    if (i % 3 == 0) others.push_back(q.schedule(&other, nullptr, t0 + milliseconds(i), {}));
  }
  q.forget(&h);
  EXPECT_EQ(q.size(), others.size());
  EXPECT_LE(q.queued_entries(), 2 * q.size());
  EXPECT_TRUE(q.ids_of(&h).empty());
  TimerQueue::Expiry e{};
  for (const TimerId id : others) {
    ASSERT_TRUE(q.pop_due(TimePoint::max(), e));
    EXPECT_EQ(e.id, id);
    EXPECT_EQ(e.handler, &other);
    q.finish_firing(e.id, t0, true);
  }
  EXPECT_FALSE(q.pop_due(TimePoint::max(), e));
}

TEST(TimerQueue, FiringIntervalTimerReturnsAfterItsHookScheduledAndCancelledMany) {
  TimerQueue q;
  Dummy h;
  const TimePoint t0{};
  const TimerId tick = q.schedule(&h, nullptr, t0, milliseconds(10));
  TimerQueue::Expiry e{};
  ASSERT_TRUE(q.pop_due(t0, e));
  ASSERT_EQ(e.id, tick);
  EXPECT_EQ(q.size(), 0U);  // a firing timer is not pending
  // What a hook may do meanwhile: schedule many (the heap grows) and cancel some.
  std::vector<TimerId> ids;
  for (int i = 0; i < 1000; ++i) ids.push_back(q.schedule(&h, nullptr, t0 + milliseconds(5), {}));
  for (int i = 0; i < 1000; i += 2) {
    bool found = false;
    q.cancel(ids[i], found);
    ASSERT_TRUE(found);
  }
  bool pending = false;
  EXPECT_EQ(q.finish_firing(tick, t0, true, &pending), nullptr);
  EXPECT_TRUE(pending);
  EXPECT_EQ(q.size(), 501U);
  // Finishing it again (not firing any more) changes nothing.
  EXPECT_EQ(q.finish_firing(tick, t0, true, &pending), nullptr);
  EXPECT_FALSE(pending);
  EXPECT_EQ(q.size(), 501U);
  std::size_t before_tick = 0;
  while (q.pop_due(t0 + milliseconds(10), e) && e.id != tick) {
    EXPECT_EQ(e.due, t0 + milliseconds(5));
    q.finish_firing(e.id, t0, true);
    ++before_tick;
  }
  EXPECT_EQ(before_tick, 500U);
  EXPECT_EQ(e.id, tick);
  EXPECT_EQ(e.due, t0 + milliseconds(10));
}

// ---- the end of the clock's range (issue 13) ----------------------------------------------------

// An interval timer whose next expiry would lie past the end of TimePoint's range is parked at
// TimePoint::max(): pending (cancellable) but never due, instead of overflowing into the past.
TEST(TimerQueue, NextExpiryPastTheEndOfTimeIsParkedAtTimePointMax) {
  const TimePoint hour_in = TimePoint{} + std::chrono::hours(1);
  const TimePoint hour_left = TimePoint::max() - std::chrono::hours(1);
  const std::pair<TimePoint, Duration> cases[] = {
      {hour_in, Duration::max()},
      {hour_in, Duration::max() - Duration(1)},
      {hour_left, std::chrono::hours(2)},
      {hour_left, std::chrono::hours(1) + Duration(1)},
  };
  for (const auto& [first, interval] : cases) {
    TimerQueue q;
    Dummy h;
    const TimerId id = q.schedule(&h, nullptr, first, interval);
    TimerQueue::Expiry e{};
    ASSERT_TRUE(q.pop_due(first, e));
    bool pending = false;
    q.finish_firing(id, first, true, &pending);
    EXPECT_TRUE(pending) << interval.count();
    ASSERT_TRUE(q.earliest()) << interval.count();
    EXPECT_EQ(*q.earliest(), TimePoint::max()) << interval.count();
    EXPECT_FALSE(q.pop_due(TimePoint::max() - Duration(1), e)) << interval.count();
    bool found = false;
    EXPECT_EQ(q.cancel(id, found), &h);
    EXPECT_TRUE(found);
  }
}

// Skipping missed periods multiplies the interval: near the end of the range the product must
// saturate too. On the grid 0, 1000, 2000... ns the next point after max - 10 ns is not
// representable, so the timer is parked; with a 100 ns grid it is, and is kept exact.
TEST(TimerQueue, SkippingMissedPeriodsNearTheEndOfTimeNeverOverflows) {
  const TimePoint late = TimePoint::max() - Duration(10);
  {
    TimerQueue q;
    Dummy h;
    const TimerId id = q.schedule(&h, nullptr, TimePoint{}, Duration(1000));
    TimerQueue::Expiry e{};
    ASSERT_TRUE(q.pop_due(late, e));
    q.finish_firing(id, late, true);
    EXPECT_EQ(*q.earliest(), TimePoint::max());
    EXPECT_FALSE(q.pop_due(late, e));
  }
  {
    TimerQueue q;
    Dummy h;
    const TimerId id = q.schedule(&h, nullptr, TimePoint{}, Duration(100));
    TimerQueue::Expiry e{};
    ASSERT_TRUE(q.pop_due(late, e));
    q.finish_firing(id, late, true);
    EXPECT_EQ(q.earliest()->time_since_epoch().count(), 9223372036854775800);
  }
}

// A timer due at TimePoint::max(), or whose interval is reset to Duration::max(), never comes due
// before the end of time, and is still an ordinary pending timer.
TEST(TimerQueue, TimerAtTheEndOfTimeStaysPendingAndCancellable) {
  TimerQueue q;
  Dummy h;
  const TimePoint t0 = TimePoint{} + std::chrono::hours(1);
  const TimerId at_end = q.schedule(&h, nullptr, TimePoint::max(), Duration::max());
  const TimerId reset = q.schedule(&h, nullptr, t0, milliseconds(1));
  ASSERT_TRUE(q.reset_interval(reset, Duration::max()));
  TimerQueue::Expiry e{};
  ASSERT_TRUE(q.pop_due(t0 + milliseconds(5), e));
  EXPECT_EQ(e.id, reset);
  q.finish_firing(reset, t0 + milliseconds(5), true);
  EXPECT_FALSE(q.pop_due(TimePoint::max() - Duration(1), e));
  EXPECT_EQ(q.size(), 2U);
  bool found = false;
  EXPECT_EQ(q.cancel(at_end, found), &h);
  EXPECT_EQ(q.cancel(reset, found), &h);
  EXPECT_EQ(q.size(), 0U);
}

}  // namespace
}  // namespace reactor
