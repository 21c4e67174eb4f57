// TimerQueue: pending timers in a binary min-heap on the monotonic clock, with lazy
// cancellation. Schedule is O(log n) (O(1) when timers are scheduled in due order); cancel is
// O(1) amortized: it frees the timer's slot at once and leaves its heap entry behind, dead. Dead
// entries are dropped when they reach the top of the heap, and the whole heap is compacted
// (dead entries removed, the rest re-heapified in O(n)) as soon as dead entries outnumber live
// ones, so the heap never holds more than 2 * size() entries. Slots are recycled, so a
// steady load of timers allocates nothing.
//
// An interval timer's n-th expiry is due at first + n * interval, computed from the previous due
// time (never from "now"), so periods do not drift. Expiries missed while the loop was busy are
// skipped to the next multiple instead of firing in a burst. The arithmetic saturates: an expiry
// that would lie past the end of TimePoint's range is due at TimePoint::max(), i.e. never, and
// the timer stays pending (cancellable) there.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "base/event_handler.hpp"

namespace reactor {

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
  /// O(1) amortized: the id is dead at once, its heap entry is dropped later.
  EventHandler* cancel(TimerId id, bool& found) noexcept;
  /// Changes the interval of a pending or firing timer. False when `id` is unknown.
  bool reset_interval(TimerId id, Duration interval) noexcept;
  /// Ids of the pending or firing timers of `handler`.
  [[nodiscard]] std::vector<TimerId> ids_of(const EventHandler* handler) const;
  /// Drops every timer of a handler that is being destroyed; none of them is called again.
  void forget(const EventHandler* handler) noexcept;

  /// The earliest due time, if any timer is pending.
  [[nodiscard]] std::optional<TimePoint> earliest() const noexcept;
  /// Number of pending timers (not counting firing ones, nor cancelled entries not yet dropped).
  [[nodiscard]] std::size_t size() const noexcept { return heap_.size() - dead_; }
  /// Entries in the heap, dead (cancelled) ones included: never more than 2 * size().
  /// For tests and statistics.
  [[nodiscard]] std::size_t queued_entries() const noexcept { return heap_.size(); }

  /// Takes the earliest timer due at or before `now` out of the heap and marks it firing.
  /// Returns false when none is due. Must be followed by finish_firing(id, ...).
  bool pop_due(TimePoint now, Expiry& out) noexcept;
  /// Ends the firing of `id`: re-queues an interval timer (unless cancelled or `keep` is false)
  /// or frees it. `pending` (if given) tells whether it is queued again. Returns the handler of
  /// a freed timer (nullptr if it was forgotten meanwhile, or is still pending). Does nothing
  /// for an id that is not firing.
  EventHandler* finish_firing(TimerId id, TimePoint now, bool keep,
                              bool* pending = nullptr) noexcept;

 private:
  // The sequence number of a slot that has no entry in the heap.
  static constexpr std::uint64_t not_queued = ~std::uint64_t{0};

  struct Slot {
    EventHandler* handler = nullptr;
    const void* arg = nullptr;
    TimePoint due{};
    Duration interval{};
    // Sequence number of this slot's live heap entry (not_queued when it has none). Every push
    // takes a fresh 64-bit sequence, so an entry left behind by a cancel can never match a
    // later use of its slot, however often the slot is recycled.
    std::uint64_t queued = not_queued;
    std::uint32_t generation = 1;
    enum class State : std::uint8_t { free, pending, firing, cancelled } state = State::free;
  };

  // A heap entry carries its own sort key, so sifting compares within the heap array and
  // never touches the slots. An entry is live while its slot's `queued` equals its sequence.
  struct HeapEntry {
    TimePoint due;
    std::uint64_t sequence;  // insertion order, breaks ties in due time; unique
    std::uint32_t slot;
  };
  static bool less(const HeapEntry& a, const HeapEntry& b) noexcept {
    return a.due != b.due ? a.due < b.due : a.sequence < b.sequence;
  }
  // Field by field: a whole-struct copy of a value just built in registers is compiled to
  // 8-byte stores re-read as one 16-byte load, which cannot be forwarded and stalls.
  static void put(HeapEntry& to, const HeapEntry& from) noexcept {
    to.due = from.due;
    to.sequence = from.sequence;
    to.slot = from.slot;
  }
  bool is_live(const HeapEntry& e) const noexcept { return slots_[e.slot].queued == e.sequence; }

  // The helpers below are declared inline and defined (and used) only in timer_queue.cpp: the
  // library is built position-independent, where an out-of-line function with external
  // linkage may be interposed, so the compiler would not inline them into the hot paths.
  static inline TimerId make_id(std::uint32_t slot, std::uint32_t generation) noexcept;
  inline Slot* lookup(TimerId id) noexcept;
  inline std::uint32_t allocate_slot();
  inline void release(std::uint32_t slot) noexcept;
  // Makes the slot's heap entry dead (the slot must be pending).
  inline void unqueue(std::uint32_t slot) noexcept;
  // Queues the slot at its due time. Heap capacity must have been reserved.
  inline void push(std::uint32_t slot) noexcept;
  inline void reserve_entry();
  inline void pop_top() noexcept;
  // Restores the invariants after entries died or left: the top entry (if any) is live, and
  // dead entries do not outnumber live ones.
  inline void settle() noexcept;
  void compact() noexcept;
  // Put `entry` in the heap at `hole`, moving it towards the root / the leaves as far as its
  // key says. The entry comes by value rather than being read back from the heap, which
  // would stall on the store that just wrote it.
  inline void sift_up(std::size_t hole, HeapEntry entry) noexcept;
  inline void sift_down(std::size_t hole, HeapEntry entry) noexcept;

  std::vector<Slot> slots_;
  std::vector<HeapEntry> heap_;  // a min-heap by (due, sequence); dead entries included
  std::vector<std::uint32_t> free_slots_;
  std::uint64_t next_sequence_ = 0;
  std::size_t dead_ = 0;    // dead heap entries; the others are the pending timers
  std::size_t firing_ = 0;  // popped, not yet finished: heap capacity is kept for their return
};

}  // namespace reactor
