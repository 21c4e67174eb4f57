// TimerQueue: pending timers in a binary min-heap on the monotonic clock. Schedule and cancel are
// O(log n); slots are recycled, so a steady load of timers allocates nothing.
//
// An interval timer's n-th expiry is due at first + n * interval, computed from the previous due
// time (never from "now"), so periods do not drift. Expiries missed while the loop was busy are
// skipped to the next multiple instead of firing in a burst.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "handlers/event_handler.hpp"

namespace reactor {

/// Identifies a scheduled timer; never reused while the timer is pending.
using TimerId = std::uint64_t;
/// A TimerId no timer has.
inline constexpr TimerId invalid_timer = 0;

/// Heap of timers. Not thread-safe: owned by one Reactor.
class TimerQueue {
 public:
  /// What expire() hands back for one due timer.
  struct Expiry {
    /// The timer's id.
    TimerId id;
    /// Whose handle_timeout to call.
    EventHandler* handler;
    /// The argument given to schedule().
    const void* arg;
    /// When it was due (not when it was noticed).
    TimePoint due;
  };

  /// Adds a timer due at `due`, repeating every `interval` when interval > 0.
  TimerId schedule(EventHandler* handler, const void* arg, TimePoint due, Duration interval);
  /// Cancels `id`. `found` tells whether it was pending or firing. Returns the handler whose
  /// timer was freed now (a firing timer is freed by finish_firing instead), else nullptr.
  EventHandler* cancel(TimerId id, bool& found) noexcept;
  /// Changes the interval of a pending or firing timer. False when `id` is unknown.
  bool reset_interval(TimerId id, Duration interval) noexcept;
  /// Ids of the pending or firing timers of `handler`.
  [[nodiscard]] std::vector<TimerId> ids_of(const EventHandler* handler) const;
  /// Drops every timer of a handler that is being destroyed; none of them is called again.
  void forget(const EventHandler* handler) noexcept;

  /// The earliest due time, if any timer is pending.
  [[nodiscard]] std::optional<TimePoint> earliest() const noexcept;
  /// Number of pending timers.
  [[nodiscard]] std::size_t size() const noexcept { return heap_.size(); }

  /// Takes the earliest timer due at or before `now` out of the heap and marks it firing.
  /// Returns false when none is due. Must be followed by finish_firing(id, ...).
  bool pop_due(TimePoint now, Expiry& out) noexcept;
  /// Ends the firing of `id`: re-queues an interval timer (unless cancelled or `keep` is false)
  /// or frees it. `pending` (if given) tells whether it is queued again. Returns the handler of
  /// a freed timer (nullptr if it was forgotten meanwhile, or is still pending).
  EventHandler* finish_firing(TimerId id, TimePoint now, bool keep,
                              bool* pending = nullptr) noexcept;

 private:
  struct Slot {
    EventHandler* handler = nullptr;
    const void* arg = nullptr;
    TimePoint due{};
    Duration interval{};
    std::uint32_t generation = 1;
    std::uint32_t heap_index = 0;
    enum class State : std::uint8_t { free, pending, firing, cancelled } state = State::free;
  };

  static TimerId make_id(std::uint32_t slot, std::uint32_t generation) noexcept;
  Slot* lookup(TimerId id) noexcept;
  void release(std::uint32_t slot) noexcept;
  void push(std::uint32_t slot);
  void erase_at(std::uint32_t index) noexcept;
  // A heap entry carries its own sort key, so sifting compares within the heap array instead
  // of reaching into two other arrays per comparison (the cost that dominated schedule/cancel).
  struct HeapEntry {
    TimePoint due;
    std::uint64_t sequence;  // insertion order, breaks ties in due time
    std::uint32_t slot;
  };
  static bool less(const HeapEntry& a, const HeapEntry& b) noexcept {
    return a.due != b.due ? a.due < b.due : a.sequence < b.sequence;
  }
  void sift_up(std::uint32_t index) noexcept;
  void sift_down(std::uint32_t index) noexcept;
  void place(std::uint32_t index, const HeapEntry& entry) noexcept;

  std::vector<Slot> slots_;
  std::vector<HeapEntry> heap_;  // ordered by (due, sequence)
  std::vector<std::uint32_t> free_slots_;
  std::uint64_t next_sequence_ = 0;
};

}  // namespace reactor
