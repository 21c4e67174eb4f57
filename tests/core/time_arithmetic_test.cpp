// The saturating time arithmetic of base/types.hpp (issue 13): saturating_add, saturating_mul,
// deadline_after and time_until, checked against exact 128-bit arithmetic clamped to the 64-bit
// range, for every pair of a set of edge values, and at compile time for the cases the reactors
// rely on; and the backends' conversions of a wait's timeout (demux/demultiplexer.hpp).
#include "base/types.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <vector>

#include "demux/demultiplexer.hpp"

namespace reactor {
namespace {

__extension__ using Wide = __int128;  // exact for any sum or product of two 64-bit values

constexpr Duration::rep lo = std::numeric_limits<Duration::rep>::min();
constexpr Duration::rep hi = std::numeric_limits<Duration::rep>::max();

Duration::rep clamp(Wide v) {
  if (v > hi) return hi;
  if (v < lo) return lo;
  return static_cast<Duration::rep>(v);
}

// Edge values of a 64-bit count, and ordinary ones between them.
std::vector<Duration::rep> values() {
  std::vector<Duration::rep> out = {
      0,
      1,
      -1,
      2,
      -2,
      3,
      -3,
      1000,
      -1000,
      1'000'000'007,
      -1'000'000'007,
      3'037'000'499,  // floor(sqrt(max)): its square fits, the next one does not
      3'037'000'500,
      -3'037'000'500,
      lo,
      lo + 1,
      lo + 2,
      lo / 2,
      lo / 2 - 1,
      lo / 3,
      hi,
      hi - 1,
      hi - 2,
      hi / 2,
      hi / 2 + 1,
      hi / 3,
      hi / 3 + 1,
  };
  const Duration::rep now = Clock::now().time_since_epoch().count();
  for (Duration::rep v : {now, -now, hi - now, lo + now, hi - now + 1, lo + now - 1}) {
    out.push_back(v);
  }
  return out;
}

TEST(TimeArithmetic, SaturatingAddIsTheClampedExactSum) {
  for (Duration::rep a : values()) {
    for (Duration::rep b : values()) {
      EXPECT_EQ(saturating_add(Duration(a), Duration(b)).count(), clamp(Wide(a) + b))
          << a << " + " << b;
    }
  }
}

TEST(TimeArithmetic, SaturatingMulIsTheClampedExactProduct) {
  for (Duration::rep a : values()) {
    for (Duration::rep b : values()) {
      EXPECT_EQ(saturating_mul(Duration(a), b).count(), clamp(Wide(a) * b)) << a << " * " << b;
    }
  }
}

TEST(TimeArithmetic, DeadlineAfterAndTimeUntilAreClampedExactly) {
  for (Duration::rep a : values()) {
    for (Duration::rep b : values()) {
      const TimePoint t{Duration(a)};
      EXPECT_EQ(deadline_after(t, Duration(b)).time_since_epoch().count(), clamp(Wide(a) + b))
          << a << " + " << b;
      EXPECT_EQ(time_until(t, TimePoint{Duration(b)}).count(), clamp(Wide(a) - b))
          << a << " - " << b;
    }
  }
}

// Poll-style milliseconds: negative is "no limit", the rest rounds up (never wakes a timer
// early) and stops at max_wait, INT_MAX ms.
TEST(TimeArithmetic, TimeoutToMsRoundsUpAndSaturates) {
  using std::chrono::milliseconds;
  using std::chrono::nanoseconds;
  EXPECT_EQ(timeout_to_ms(nanoseconds(-1)), -1);
  EXPECT_EQ(timeout_to_ms(nanoseconds::min()), -1);
  EXPECT_EQ(timeout_to_ms(nanoseconds::zero()), 0);
  EXPECT_EQ(timeout_to_ms(nanoseconds(1)), 1);
  EXPECT_EQ(timeout_to_ms(milliseconds(1)), 1);
  EXPECT_EQ(timeout_to_ms(milliseconds(1) + nanoseconds(1)), 2);
  EXPECT_EQ(timeout_to_ms(max_wait - nanoseconds(1)), std::numeric_limits<int>::max());
  EXPECT_EQ(timeout_to_ms(max_wait), std::numeric_limits<int>::max());
  EXPECT_EQ(timeout_to_ms(max_wait + nanoseconds(1)), std::numeric_limits<int>::max());
  EXPECT_EQ(timeout_to_ms(nanoseconds::max() - nanoseconds(1)), std::numeric_limits<int>::max());
  EXPECT_EQ(timeout_to_ms(nanoseconds::max()), std::numeric_limits<int>::max());
}

// timespec for kevent / io_uring: exact up to max_wait, then max_wait; never negative.
TEST(TimeArithmetic, TimeoutToTimespecIsExactThenSaturates) {
  using std::chrono::nanoseconds;
  auto check = [](nanoseconds t, long long sec, long nsec) {
    const timespec ts = timeout_to_timespec(t);
    EXPECT_EQ(static_cast<long long>(ts.tv_sec), sec) << t.count();
    EXPECT_EQ(ts.tv_nsec, nsec) << t.count();
  };
  check(nanoseconds::zero(), 0, 0);
  check(nanoseconds(1), 0, 1);
  check(nanoseconds(1'999'999'999), 1, 999'999'999);
  check(nanoseconds(-1), 0, 0);
  check(nanoseconds::min(), 0, 0);
  check(max_wait, 2'147'483, 647'000'000);
  check(max_wait + nanoseconds(1), 2'147'483, 647'000'000);
  check(nanoseconds::max(), 2'147'483, 647'000'000);
}

// What the reactors rely on, checked by the compiler.
static_assert(deadline_after(TimePoint{} + std::chrono::hours(1), forever) == TimePoint::max());
static_assert(deadline_after(TimePoint::max(), Duration(1)) == TimePoint::max());
static_assert(deadline_after(TimePoint{}, Duration::min()) == TimePoint{} + Duration::min());
static_assert(deadline_after(TimePoint{} - std::chrono::hours(1), Duration::min()) ==
              TimePoint::min());
static_assert(deadline_after(TimePoint{}, std::chrono::seconds(2)) ==
              TimePoint{} + std::chrono::seconds(2));
static_assert(time_until(TimePoint::max(), TimePoint{} - std::chrono::hours(1)) == Duration::max());
static_assert(time_until(TimePoint::min(), TimePoint{} + std::chrono::hours(1)) == Duration::min());
static_assert(saturating_mul(Duration::max(), 2) == Duration::max());
static_assert(saturating_mul(Duration::min(), -1) == Duration::max());
static_assert(saturating_mul(Duration(-3), 4) == Duration(-12));

}  // namespace
}  // namespace reactor
