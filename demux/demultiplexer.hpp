// Demultiplexer: the synchronous event demultiplexer the Reactor blocks in. One small interface,
// one backend per file (select, poll, epoll, kqueue, io_uring). A backend knows descriptors and
// readiness bits only: it never calls a handler. Semantics are level-triggered whatever the
// backend uses inside (io_uring re-arms one-shot polls; kqueue knotes are level by default).
// Files the kernel calls always ready (regular files) are reported ready on every wait by every
// backend; see Demultiplexer.
#pragma once

#include <time.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <system_error>
#include <vector>

#include "base/event_mask.hpp"

namespace reactor {

/// One ready descriptor: `events` holds read / write / except, or `invalid` when the backend
/// found the descriptor closed. Errors and hang-ups are reported as read and write readiness
/// (whichever was asked for), so the next read or write returns the error or end of file.
struct ReadyEvent {
  /// The descriptor the backend reported.
  int fd = -1;
  /// What it is ready for (see above).
  EventMask events = EventMask::none;
};

/// The backends this library knows. `best` picks the best one available (see
/// make_demultiplexer); the others may or may not be compiled in (see backend_available).
enum class Backend { best, select, poll, epoll, kqueue, io_uring };

/// "select", "poll", "epoll", "kqueue", "io_uring" or "best".
std::string_view backend_name(Backend backend) noexcept;

/// Parses a backend name as written in REACTOR_BACKEND; errc::unknown_backend when unknown.
std::error_code parse_backend(std::string_view name, Backend& out) noexcept;

/// True when `backend` is compiled into this build and usable on this kernel.
bool backend_available(Backend backend) noexcept;

/// Every concrete backend that backend_available() accepts, best first.
std::vector<Backend> available_backends();

/// The interface every backend implements. Interest masks may contain any of EventMask's
/// read-side, write-side and except bits; add() never sees an empty mask.
///
/// Always-ready files: a regular file (on Linux also any file without a poll method, which
/// poll(2) calls always ready) is accepted by every backend and reported readable and writable, for
/// the interest asked, on every wait, so a wait with such a file interested never blocks; except
/// interest is never reported for it. epoll, which refuses such files (EPERM), and kqueue, which
/// reports a regular file readable only up to its end, keep them in the backend to agree with
/// select, poll and io_uring. modify() and remove() work on them like on any descriptor.
class Demultiplexer {
 public:
  virtual ~Demultiplexer() = default;
  Demultiplexer() = default;
  Demultiplexer(const Demultiplexer&) = delete;
  Demultiplexer& operator=(const Demultiplexer&) = delete;

  /// Starts watching `fd` for `interest`.
  virtual std::error_code add(int fd, EventMask interest) = 0;
  /// Replaces the interest of a watched `fd`.
  virtual std::error_code modify(int fd, EventMask interest) = 0;
  /// Stops watching `fd`. A descriptor already closed is not an error here.
  virtual std::error_code remove(int fd) = 0;
  /// Blocks until a watched descriptor is ready or `timeout` passes (negative: no limit;
  /// zero: just poll), then fills `ready` and sets `count`. EINTR returns with count 0, and so
  /// does a wait longer than max_wait once max_wait has passed: callers wait again.
  virtual std::error_code wait(std::span<ReadyEvent> ready, std::chrono::nanoseconds timeout,
                               std::size_t& count) = 0;
  /// Which backend this is.
  [[nodiscard]] virtual Backend kind() const noexcept = 0;
  /// True when arm_once() is more than modify(): the backend then reports a descriptor armed
  /// with it once and disarms it by itself, so a thread pool that serves one event per handle
  /// at a time re-arms with one call instead of removing and adding the descriptor.
  [[nodiscard]] virtual bool arms_once() const noexcept { return false; }
  /// Watches `fd` (added or not) for `interest` until it is next reported.
  virtual std::error_code arm_once(int fd, EventMask interest) { return modify(fd, interest); }
};

/// Creates a backend. `best` means: REACTOR_BACKEND if set, else epoll, poll, select in that
/// order of preference. Errors: errc::unknown_backend, errc::backend_unavailable, or the errno
/// of the failed system call.
std::error_code make_demultiplexer(Backend backend, std::unique_ptr<Demultiplexer>& out);

/// The portable backends, as make_demultiplexer builds them (each class lives in its own file).
std::unique_ptr<Demultiplexer> make_select_demux();
/// See make_select_demux.
std::unique_ptr<Demultiplexer> make_poll_demux();

/// The longest single wait a backend makes: INT_MAX milliseconds (about 24.8 days, the most
/// poll() and epoll_wait() take). Longer timeouts, however large, are cut to it, so no kernel is
/// handed a value it rejects or overflows in its own deadline arithmetic.
inline constexpr std::chrono::nanoseconds max_wait = std::chrono::milliseconds(2147483647);

/// Milliseconds for poll-style calls: -1 (no limit) when `timeout` is negative, else rounded up
/// so a timer is never woken early, and at most max_wait.
int timeout_to_ms(std::chrono::nanoseconds timeout) noexcept;

/// A `timeout` that is not negative as a timespec (kevent, io_uring), at most max_wait.
timespec timeout_to_timespec(std::chrono::nanoseconds timeout) noexcept;

}  // namespace reactor
