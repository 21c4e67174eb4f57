// Binary-heap timer queue.
#include "reactor/timer_queue.hpp"

namespace reactor {

TimerId TimerQueue::make_id(std::uint32_t slot, std::uint32_t generation) noexcept {
  return (static_cast<TimerId>(generation) << 32) | slot;
}

TimerQueue::Slot* TimerQueue::lookup(TimerId id) noexcept {
  const auto slot = static_cast<std::uint32_t>(id);
  const auto generation = static_cast<std::uint32_t>(id >> 32);
  if (slot >= slots_.size()) return nullptr;
  Slot& s = slots_[slot];
  if (s.generation != generation || s.state == Slot::State::free) return nullptr;
  return &s;
}

TimerId TimerQueue::schedule(EventHandler* handler, const void* arg, TimePoint due,
                             Duration interval) {
  std::uint32_t slot = 0;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& s = slots_[slot];
  s.handler = handler;
  s.arg = arg;
  s.due = due;
  s.interval = interval > Duration::zero() ? interval : Duration::zero();
  s.state = Slot::State::pending;
  push(slot);
  return make_id(slot, s.generation);
}

void TimerQueue::release(std::uint32_t slot) noexcept {
  Slot& s = slots_[slot];
  s.state = Slot::State::free;
  s.handler = nullptr;
  // Generation 0 is never handed out, so invalid_timer (0) can never match a slot.
  if (++s.generation == 0) s.generation = 1;
  free_slots_.push_back(slot);
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
  erase_at(s->heap_index);
  release(static_cast<std::uint32_t>(id));
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
      erase_at(s.heap_index);
      release(i);
    } else if (s.state == Slot::State::firing || s.state == Slot::State::cancelled) {
      s.state = Slot::State::cancelled;
      s.handler = nullptr;  // finish_firing must not report a destroyed handler
    }
  }
}

std::optional<TimePoint> TimerQueue::earliest() const noexcept {
  if (heap_.empty()) return std::nullopt;
  return heap_.front().due;
}

bool TimerQueue::pop_due(TimePoint now, Expiry& out) noexcept {
  if (heap_.empty()) return false;
  if (heap_.front().due > now) return false;
  const std::uint32_t slot = heap_.front().slot;
  Slot& s = slots_[slot];
  erase_at(0);
  s.state = Slot::State::firing;
  out = {make_id(slot, s.generation), s.handler, s.arg, s.due};
  return true;
}

EventHandler* TimerQueue::finish_firing(TimerId id, TimePoint now, bool keep,
                                        bool* pending) noexcept {
  if (pending != nullptr) *pending = false;
  Slot* s = lookup(id);
  if (s == nullptr) return nullptr;
  const auto slot = static_cast<std::uint32_t>(id);
  if (!keep || s->state == Slot::State::cancelled || s->interval == Duration::zero()) {
    EventHandler* handler = s->handler;
    release(slot);
    return handler;
  }
  // Next due time is a whole number of intervals after the previous one: no cumulative drift.
  s->due += s->interval;
  if (s->due <= now) {
    const auto behind = (now - s->due) / s->interval + 1;
    s->due += behind * s->interval;
  }
  s->state = Slot::State::pending;
  push(slot);
  if (pending != nullptr) *pending = true;
  return nullptr;
}

void TimerQueue::place(std::uint32_t index, const HeapEntry& entry) noexcept {
  heap_[index] = entry;
  slots_[entry.slot].heap_index = index;
}

void TimerQueue::push(std::uint32_t slot) {
  heap_.push_back({slots_[slot].due, next_sequence_++, slot});
  sift_up(static_cast<std::uint32_t>(heap_.size() - 1));
}

void TimerQueue::erase_at(std::uint32_t index) noexcept {
  const auto last = static_cast<std::uint32_t>(heap_.size() - 1);
  if (index != last) {
    const HeapEntry moved = heap_[last];
    heap_.pop_back();
    place(index, moved);
    sift_up(index);
    sift_down(slots_[moved.slot].heap_index);
  } else {
    heap_.pop_back();
  }
}

void TimerQueue::sift_up(std::uint32_t index) noexcept {
  const HeapEntry entry = heap_[index];
  while (index > 0) {
    const std::uint32_t parent = (index - 1) / 2;
    if (!less(entry, heap_[parent])) break;
    place(index, heap_[parent]);
    index = parent;
  }
  place(index, entry);
}

void TimerQueue::sift_down(std::uint32_t index) noexcept {
  const auto n = static_cast<std::uint32_t>(heap_.size());
  const HeapEntry entry = heap_[index];
  for (;;) {
    std::uint32_t child = 2 * index + 1;
    if (child >= n) break;
    if (child + 1 < n && less(heap_[child + 1], heap_[child])) ++child;
    if (!less(heap_[child], entry)) break;
    place(index, heap_[child]);
    index = child;
  }
  place(index, entry);
}

}  // namespace reactor
