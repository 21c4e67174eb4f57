// Binary-heap timer queue with lazy cancellation.
//
// Invariants between public calls:
// - dead_ <= size() (the live entries), so the heap holds at most 2 * size() entries;
// - the top entry, if any, is live, so earliest() and pop_due() look at one entry only;
// - heap_.capacity() >= heap_.size() + firing_, so finish_firing (noexcept) can re-queue an
//   interval timer without allocating.
#include "reactor/detail/timer_queue.hpp"

#include <algorithm>

#include "base/types.hpp"

namespace reactor {

inline TimerId TimerQueue::make_id(std::uint32_t slot, std::uint32_t generation) noexcept {
  return (static_cast<TimerId>(generation) << 32) | slot;
}

inline TimerQueue::Slot* TimerQueue::lookup(TimerId id) noexcept {
  const auto slot = static_cast<std::uint32_t>(id);
  const auto generation = static_cast<std::uint32_t>(id >> 32);
  if (slot >= slots_.size()) return nullptr;
  Slot& s = slots_[slot];
  if (s.generation != generation || s.state == Slot::State::free) return nullptr;
  return &s;
}

inline void TimerQueue::reserve_entry() {
  // Room for this entry and for every firing timer's return.
  if (heap_.size() + firing_ + 1 > heap_.capacity()) {
    heap_.reserve(std::max<std::size_t>(64, 2 * (heap_.size() + firing_ + 1)));
  }
}

inline std::uint32_t TimerQueue::allocate_slot() {
  if (!free_slots_.empty()) {
    const std::uint32_t slot = free_slots_.back();
    free_slots_.pop_back();
    return slot;
  }
  // release() is noexcept: the free list has room for every slot before the slot exists.
  if (free_slots_.capacity() < slots_.size() + 1) {
    free_slots_.reserve(std::max<std::size_t>(16, 2 * (slots_.size() + 1)));
  }
  slots_.emplace_back();
  return static_cast<std::uint32_t>(slots_.size() - 1);
}

TimerId TimerQueue::schedule(EventHandler* handler, const void* arg, TimePoint due,
                             Duration interval) {
  // Everything that may throw comes first, so a failed schedule changes nothing.
  reserve_entry();
  const std::uint32_t slot = allocate_slot();
  Slot& s = slots_[slot];
  s.handler = handler;
  s.arg = arg;
  s.due = due;
  s.interval = interval > Duration::zero() ? interval : Duration::zero();
  s.state = Slot::State::pending;
  push(slot);
  return make_id(slot, s.generation);
}

inline void TimerQueue::release(std::uint32_t slot) noexcept {
  Slot& s = slots_[slot];
  s.state = Slot::State::free;
  s.handler = nullptr;
  s.queued = not_queued;
  // Generation 0 is never handed out, so invalid_timer (0) can never match a slot.
  if (++s.generation == 0) s.generation = 1;
  free_slots_.push_back(slot);  // never reallocates: see allocate_slot
}

inline void TimerQueue::unqueue(std::uint32_t slot) noexcept {
  slots_[slot].queued = not_queued;
  ++dead_;
}

EventHandler* TimerQueue::cancel(TimerId id, bool& found) noexcept {
  Slot* s = lookup(id);
  found = s != nullptr && s->state != Slot::State::cancelled;
  if (!found) return nullptr;
  if (s->state == Slot::State::firing) {
    // Its hook is running; finish_firing frees it.
    s->state = Slot::State::cancelled;
    return nullptr;
  }
  EventHandler* handler = s->handler;
  const auto slot = static_cast<std::uint32_t>(id);
  unqueue(slot);
  release(slot);
  settle();
  return handler;
}

bool TimerQueue::reset_interval(TimerId id, Duration interval) noexcept {
  Slot* s = lookup(id);
  if (s == nullptr || s->state == Slot::State::cancelled) return false;
  s->interval = interval > Duration::zero() ? interval : Duration::zero();
  return true;
}

std::vector<TimerId> TimerQueue::ids_of(const EventHandler* handler) const {
  std::vector<TimerId> ids;
  for (std::uint32_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (s.handler == handler &&
        (s.state == Slot::State::pending || s.state == Slot::State::firing)) {
      ids.push_back(make_id(i, s.generation));
    }
  }
  return ids;
}

void TimerQueue::forget(const EventHandler* handler) noexcept {
  for (std::uint32_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (s.handler != handler) continue;
    if (s.state == Slot::State::pending) {
      unqueue(i);
      release(i);
    } else if (s.state == Slot::State::firing || s.state == Slot::State::cancelled) {
      s.state = Slot::State::cancelled;
      s.handler = nullptr;  // finish_firing must not report a destroyed handler
    }
  }
  settle();
}

std::optional<TimePoint> TimerQueue::earliest() const noexcept {
  if (heap_.empty()) return std::nullopt;
  return heap_.front().due;  // live: settle() never leaves a dead entry on top
}

bool TimerQueue::pop_due(TimePoint now, Expiry& out) noexcept {
  if (heap_.empty() || heap_.front().due > now) return false;
  const std::uint32_t slot = heap_.front().slot;
  pop_top();
  ++firing_;
  Slot& s = slots_[slot];
  s.queued = not_queued;
  s.state = Slot::State::firing;
  out = {make_id(slot, s.generation), s.handler, s.arg, s.due};
  settle();
  return true;
}

EventHandler* TimerQueue::finish_firing(TimerId id, TimePoint now, bool keep,
                                        bool* pending) noexcept {
  if (pending != nullptr) *pending = false;
  Slot* s = lookup(id);
  // Only a popped timer can finish firing (a pending one is left alone).
  if (s == nullptr || s->state == Slot::State::pending) return nullptr;
  const auto slot = static_cast<std::uint32_t>(id);
  --firing_;
  if (!keep || s->state == Slot::State::cancelled || s->interval == Duration::zero()) {
    EventHandler* handler = s->handler;
    release(slot);
    return handler;
  }
  // Next due time is a whole number of intervals after the previous one: no cumulative drift.
  // Saturating: a next expiry past the end of the clock's range parks the timer at
  // TimePoint::max() (never due) instead of overflowing into the past and firing at once.
  s->due = deadline_after(s->due, s->interval);
  if (s->due <= now) {
    // Skip the missed expiries: the next one is the first on the grid after `now`.
    const auto missed = time_until(now, s->due) / s->interval;
    s->due = deadline_after(s->due, saturating_mul(s->interval, missed));
    s->due = deadline_after(s->due, s->interval);
  }
  s->state = Slot::State::pending;
  push(slot);  // capacity was kept for it (see reserve_entry)
  if (pending != nullptr) *pending = true;
  return nullptr;
}

inline void TimerQueue::push(std::uint32_t slot) noexcept {
  Slot& s = slots_[slot];
  s.queued = next_sequence_++;
  const HeapEntry entry{s.due, s.queued, slot};
  heap_.push_back(entry);
  sift_up(heap_.size() - 1, entry);
}

inline void TimerQueue::pop_top() noexcept {
  const HeapEntry last = heap_.back();
  heap_.pop_back();
  const std::size_t n = heap_.size();
  if (n == 0) return;
  // Bottom-up: move the hole at the root down to a leaf along the smaller children (one
  // comparison per level), then let `last` rise from there. `last` is usually among the latest
  // timers, so it rises little: about half the comparisons of a plain sift_down from the root.
  std::size_t hole = 0;
  for (std::size_t child = 1; child < n; child = 2 * hole + 1) {
    if (child + 1 < n && less(heap_[child + 1], heap_[child])) ++child;
    heap_[hole] = heap_[child];
    hole = child;
  }
  sift_up(hole, last);
}

inline void TimerQueue::settle() noexcept {
  if (dead_ > heap_.size() - dead_) {
    compact();
    return;
  }
  while (!heap_.empty() && !is_live(heap_.front())) {
    pop_top();
    --dead_;
  }
}

void TimerQueue::compact() noexcept {
  std::size_t kept = 0;
  for (std::size_t i = 0; i < heap_.size(); ++i) {
    if (is_live(heap_[i])) heap_[kept++] = heap_[i];
  }
  heap_.erase(heap_.begin() + static_cast<std::ptrdiff_t>(kept), heap_.end());
  dead_ = 0;
  // Bottom-up heap construction: O(n). Keys are unique, so the order of later pops is the same
  // whatever shape the heap takes.
  for (std::size_t i = kept / 2; i-- > 0;) sift_down(i, heap_[i]);
}

inline void TimerQueue::sift_up(std::size_t hole, HeapEntry entry) noexcept {
  while (hole > 0) {
    const std::size_t parent = (hole - 1) / 2;
    if (!less(entry, heap_[parent])) break;
    heap_[hole] = heap_[parent];
    hole = parent;
  }
  put(heap_[hole], entry);
}

inline void TimerQueue::sift_down(std::size_t hole, HeapEntry entry) noexcept {
  const std::size_t n = heap_.size();
  for (;;) {
    std::size_t child = 2 * hole + 1;
    if (child >= n) break;
    if (child + 1 < n && less(heap_[child + 1], heap_[child])) ++child;
    if (!less(heap_[child], entry)) break;
    heap_[hole] = heap_[child];
    hole = child;
  }
  put(heap_[hole], entry);
}

}  // namespace reactor
