// The framework's basic vocabulary of handles and time: what a descriptor is called, which clock
// every timer and deadline uses, and the identifiers of timers. Depends on nothing of ours.
#pragma once

#include <chrono>
#include <cstdint>

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

/// Identifies a scheduled timer; never reused while the timer is pending.
using TimerId = std::uint64_t;
/// A TimerId no timer has.
inline constexpr TimerId invalid_timer = 0;

}  // namespace reactor
