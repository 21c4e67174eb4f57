// The framework's basic vocabulary of handles and time: what a descriptor is called, which clock
// every timer and deadline uses, and the identifiers of timers. Depends on nothing of ours.
//
// Time arithmetic saturates. Duration and TimePoint are 64-bit counts of nanoseconds, and the
// values callers pass (forever, Duration::max(), "a very long time") overflow a plain
// `Clock::now() + d`, which is undefined behaviour and in practice a deadline in the past. Every
// place that turns a duration into a deadline, or a deadline into a wait, goes through the
// helpers below instead: results are clamped to the representable range, so a deadline past the
// end of the clock becomes TimePoint::max(), which the steady clock (counting from boot) never
// reaches.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>

namespace reactor {

/// An OS handle (a file descriptor on POSIX).
using Handle = int;
/// The value of a missing handle.
inline constexpr Handle invalid_handle = -1;
/// The clock every timer uses: monotonic.
using Clock = std::chrono::steady_clock;
/// A point in time on Clock.
using TimePoint = Clock::time_point;
/// A span of time on Clock.
using Duration = Clock::duration;
/// Waits with no time limit when passed as a timeout.
inline constexpr Duration forever = Duration::max();

/// `a + b`, clamped to [Duration::min(), Duration::max()] instead of overflowing.
constexpr Duration saturating_add(Duration a, Duration b) noexcept {
  using Rep = Duration::rep;
  constexpr Rep hi = std::numeric_limits<Rep>::max();
  constexpr Rep lo = std::numeric_limits<Rep>::min();
  const Rep x = a.count();
  const Rep y = b.count();
  if (y > 0 && x > hi - y) return Duration::max();
  if (y < 0 && x < lo - y) return Duration::min();
  return Duration(x + y);
}

/// `d * n`, clamped to [Duration::min(), Duration::max()] instead of overflowing.
constexpr Duration saturating_mul(Duration d, std::int64_t n) noexcept {
  using Rep = Duration::rep;
  constexpr Rep hi = std::numeric_limits<Rep>::max();
  constexpr Rep lo = std::numeric_limits<Rep>::min();
  const Rep x = d.count();
  if (x == 0 || n == 0) return Duration::zero();
  if (n == -1) return x == lo ? Duration::max() : Duration(-x);  // lo / -1 would overflow below
  // Divide the limit instead of multiplying (division rounds towards zero, dividing by a
  // negative n flips the comparison).
  if ((x > 0) == (n > 0)) {
    if (n > 0 ? x > hi / n : x < hi / n) return Duration::max();
  } else {
    if (n > 0 ? x < lo / n : x > lo / n) return Duration::min();
  }
  return Duration(x * static_cast<Rep>(n));
}

/// The deadline `d` after `now`: now + d, clamped to [TimePoint::min(), TimePoint::max()].
/// A delay that reaches past the end of the clock (forever, Duration::max(), anything longer
/// than TimePoint::max() - now) gives TimePoint::max(): "never", as the clock cannot get there.
constexpr TimePoint deadline_after(TimePoint now, Duration d) noexcept {
  return TimePoint(saturating_add(now.time_since_epoch(), d));
}

/// How long from `now` until `deadline` (negative when it has passed), clamped to Duration's
/// range: the time left until TimePoint::max() from a negative reading is Duration::max(), not an
/// overflow.
constexpr Duration time_until(TimePoint deadline, TimePoint now) noexcept {
  const Duration::rep a = deadline.time_since_epoch().count();
  const Duration::rep b = now.time_since_epoch().count();
  if (b < 0 && a > std::numeric_limits<Duration::rep>::max() + b) return Duration::max();
  if (b > 0 && a < std::numeric_limits<Duration::rep>::min() + b) return Duration::min();
  return Duration(a - b);
}

/// Identifies a scheduled timer; never reused while the timer is pending.
using TimerId = std::uint64_t;
/// A TimerId no timer has.
inline constexpr TimerId invalid_timer = 0;

}  // namespace reactor
