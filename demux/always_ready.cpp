// AlwaysReadySet: see the header.
#include "demux/always_ready.hpp"

#include <fcntl.h>

#include <algorithm>

namespace reactor {
namespace {

EventMask reported(EventMask interest) noexcept {
  return readiness_of(interest) & (EventMask::read | EventMask::write);
}

}  // namespace

bool AlwaysReadySet::contains(int fd) const noexcept {
  return std::any_of(entries_.begin(), entries_.end(), [fd](const Entry& e) { return e.fd == fd; });
}

void AlwaysReadySet::set(int fd, EventMask interest) {
  const EventMask events = reported(interest);
  for (Entry& e : entries_) {
    if (e.fd != fd) continue;
    ready_entries_ +=
        static_cast<std::size_t>(any(events)) - static_cast<std::size_t>(any(e.events));
    e.events = events;
    return;
  }
  entries_.push_back({fd, events});
  if (any(events)) ++ready_entries_;
}

bool AlwaysReadySet::erase(int fd) noexcept {
  auto it =
      std::find_if(entries_.begin(), entries_.end(), [fd](const Entry& e) { return e.fd == fd; });
  if (it == entries_.end()) return false;
  if (any(it->events)) --ready_entries_;
  *it = entries_.back();
  entries_.pop_back();
  return true;
}

void AlwaysReadySet::report(std::span<ReadyEvent> ready, std::size_t& count) noexcept {
  const std::size_t n = entries_.size();
  if (n == 0) return;
  if (next_ >= n) next_ = 0;
  for (std::size_t i = 0; i < n && count < ready.size(); ++i) {
    const Entry& e = entries_[(next_ + i) % n];
    if (!any(e.events)) continue;
    // A closed descriptor would otherwise be "ready" for ever; the reactor ends its
    // registration on invalid, as with poll's POLLNVAL.
    const bool open = ::fcntl(e.fd, F_GETFD) != -1;
    ready[count++] = {e.fd, open ? e.events : EventMask::invalid};
  }
  next_ = (next_ + 1) % n;
}

}  // namespace reactor
