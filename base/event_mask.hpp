// EventMask: the bits that say which events a handle is interested in or ready for.
// Shared vocabulary of the demultiplexers, the EventHandler contract and the Reactor.
#pragma once

#include <cstdint>

namespace reactor {

/// A set of readiness or interest bits; combine with |, test with any() or has(). Nothing else:
/// whether a removal calls handle_close is a CloseHook (base/event_handler.hpp).
enum class EventMask : std::uint32_t {
  none = 0,
  read = 1U << 0,     ///< data can be read (handle_input)
  write = 1U << 1,    ///< data can be written (handle_output)
  except = 1U << 2,   ///< out-of-band / priority data (handle_exception)
  accept = 1U << 3,   ///< a listening socket has a connection (handle_input)
  connect = 1U << 4,  ///< a non-blocking connect finished (handle_output)
  invalid = 1U << 7,  ///< demux only: the handle was found closed (POLLNVAL / EBADF)
  all_io = read | write | except | accept | connect,
};

/// Bitwise union of two masks.
constexpr EventMask operator|(EventMask a, EventMask b) noexcept {
  return static_cast<EventMask>(static_cast<std::uint32_t>(a) | static_cast<std::uint32_t>(b));
}
/// Bitwise intersection of two masks.
constexpr EventMask operator&(EventMask a, EventMask b) noexcept {
  return static_cast<EventMask>(static_cast<std::uint32_t>(a) & static_cast<std::uint32_t>(b));
}
/// Bitwise complement of a mask.
constexpr EventMask operator~(EventMask a) noexcept {
  return static_cast<EventMask>(~static_cast<std::uint32_t>(a));
}
/// In-place union.
constexpr EventMask& operator|=(EventMask& a, EventMask b) noexcept { return a = a | b; }
/// In-place intersection.
constexpr EventMask& operator&=(EventMask& a, EventMask b) noexcept { return a = a & b; }
/// True when at least one bit is set.
constexpr bool any(EventMask m) noexcept { return m != EventMask::none; }
/// True when every bit of `bits` is set in `m`.
constexpr bool has(EventMask m, EventMask bits) noexcept { return (m & bits) == bits; }

/// Read-side bits (what a demultiplexer watches as "readable").
inline constexpr EventMask read_side = EventMask::read | EventMask::accept;
/// Write-side bits (what a demultiplexer watches as "writable").
inline constexpr EventMask write_side = EventMask::write | EventMask::connect;

/// Collapses accept/connect into the three readiness kinds a demultiplexer knows.
constexpr EventMask readiness_of(EventMask m) noexcept {
  EventMask out = EventMask::none;
  if (any(m & read_side)) out |= EventMask::read;
  if (any(m & write_side)) out |= EventMask::write;
  if (any(m & EventMask::except)) out |= EventMask::except;
  return out;
}

}  // namespace reactor
