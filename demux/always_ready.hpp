// AlwaysReadySet: descriptors a backend keeps to itself because the kernel calls them always
// ready (regular files, and for epoll every file without a poll method). poll(2) and select(2)
// report such a file readable and writable on every call; epoll refuses it (EPERM) and kqueue
// reports a regular file readable only up to its end, so those backends keep it here instead and
// report it the same way. Internal to those backends (their headers only forward-declare it),
// not installed. Not thread-safe: the owning backend serialises.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "base/event_mask.hpp"
#include "demux/demultiplexer.hpp"

namespace reactor {

/// The always-ready descriptors of one backend and the interest asked for each.
class AlwaysReadySet {
 public:
  /// True when `fd` is kept here.
  [[nodiscard]] bool contains(int fd) const noexcept;
  /// Keeps `fd` with `interest`, or replaces the interest it has. Throws std::bad_alloc.
  void set(int fd, EventMask interest);
  /// Forgets `fd`; true when it was kept here.
  bool erase(int fd) noexcept;
  /// True when some entry wants read or write: a wait must not block then. Except interest
  /// alone never counts (such files have no priority data; poll reports none either).
  [[nodiscard]] bool any_ready() const noexcept { return ready_entries_ > 0; }
  /// Appends an event per entry that wants read or write to `ready` from `count` on, as far as
  /// it has room, starting one entry later each call so a small span serves all in turn. A
  /// descriptor found closed is reported `invalid`, as poll reports POLLNVAL.
  void report(std::span<ReadyEvent> ready, std::size_t& count) noexcept;

 private:
  struct Entry {
    int fd;
    EventMask events;  // read / write to report; none when only except (or nothing) is asked
  };
  std::vector<Entry> entries_;
  std::size_t ready_entries_ = 0;  // entries whose events are not none
  std::size_t next_ = 0;           // where the next report starts
};

}  // namespace reactor
