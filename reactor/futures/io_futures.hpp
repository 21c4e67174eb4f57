// Leaf futures over the Reactor: timers (sleep_for / sleep_until), one-shot readiness of a raw
// descriptor (readable / writable), and Stream / Listener objects whose operations (read_some,
// read_exact, write_all, accept, readable, writable) share one persistent registration per
// descriptor, plus connect with a timeout and wait_signal. Each leaf registers its waker with a
// handler; the handler's hook wakes it; dropping a pending leaf withdraws what it registered
// at once (timer cancelled, one-shot registration removed, stream waker forgotten).
//
// Hot path: a Stream registers its descriptor on the first operation that has to wait, and then
// keeps the registration for its whole life. Interest is added when an operation waits, and
// dropped only when an event arrives that nobody waits for, so an echo loop (read, write, read
// again) makes no epoll_ctl at all in the steady state. A short read or write marks that side
// not ready, so the next operation waits instead of making a system call that would fail with
// EAGAIN; this is safe because every backend here is level-triggered (data that arrived since is
// reported by the next wait).
//
// Rules: the Reactor must outlive every future and Stream made with it; at most one operation per
// direction may be pending on a Stream at a time; loop thread only.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <vector>

#include "reactor/futures/executor.hpp"
#include "reactor/futures/outcome.hpp"
#include "reactor/futures/task.hpp"
#include "reactor/futures/waker.hpp"
#include "reactor/reactor.hpp"

namespace reactor {

namespace detail {

/// One reactor timer that wakes a waker when it expires. Movable only while not armed.
class TimerSlot final : public EventHandler {
 public:
  TimerSlot() = default;
  TimerSlot(TimerSlot&& other) noexcept;
  TimerSlot& operator=(TimerSlot&&) = delete;
  ~TimerSlot() override { disarm(); }

  /// True while the timer is scheduled.
  [[nodiscard]] bool armed() const noexcept { return id_ != invalid_timer; }
  /// True once the timer has expired.
  [[nodiscard]] bool fired() const noexcept { return fired_; }
  /// Schedules the timer for `deadline` (at once if it has passed).
  std::error_code arm(Reactor& reactor, TimePoint deadline);
  /// Remembers who to wake at expiry.
  void set_waker(const Waker& waker) {
    if (!waker_.will_wake(waker)) waker_ = waker;
  }
  /// Cancels the timer if it is scheduled and forgets the waker.
  void disarm() noexcept;

  int handle_timeout(TimePoint now, const void* arg) override;

 private:
  Reactor* reactor_ = nullptr;
  TimerId id_ = invalid_timer;
  bool fired_ = false;
  Waker waker_;
};

/// A one-shot registration of a raw descriptor for one readiness kind.
class FdSlot final : public EventHandler {
 public:
  FdSlot(Reactor& reactor, Handle fd, EventMask kind) noexcept
      : reactor_(&reactor), fd_(fd), kind_(kind) {}
  FdSlot(FdSlot&& other) noexcept;
  FdSlot& operator=(FdSlot&&) = delete;
  ~FdSlot() override { remove(); }

  /// Ready (possibly with an error) after the event; else registers and keeps `waker`.
  Poll<void> poll(const Waker& waker);

  int handle_input(Handle) override { return on_event(); }
  int handle_output(Handle) override { return on_event(); }
  int handle_close(Handle, EventMask) override;

 private:
  int on_event();
  void remove() noexcept;

  Reactor* reactor_;
  Handle fd_;
  EventMask kind_;
  bool registered_ = false;
  bool fired_ = false;
  std::error_code error_;
  Waker waker_;
};

/// The persistent registration behind a Stream or Listener: readiness and one waker per
/// direction. Heap-allocated so futures can point at it while the owner moves.
class IoSlot final : public EventHandler {
 public:
  /// Direction index.
  enum Side : int { read_side = 0, write_side = 1 };
  /// What is known about one direction. `maybe`: try the system call; `ready`: the reactor has
  /// reported readiness since the last EAGAIN (what readable() / writable() wait for).
  enum class Readiness : std::uint8_t { not_ready, maybe, ready };

  IoSlot(Reactor& reactor, Handle fd, bool is_socket) noexcept
      : reactor_(reactor), fd_(fd), is_socket_(is_socket) {}
  /// Removes the registration (without handle_close) before the owner closes the descriptor.
  ~IoSlot() override;
  IoSlot(const IoSlot&) = delete;
  IoSlot& operator=(const IoSlot&) = delete;

  [[nodiscard]] Handle get_handle() const override { return fd_; }
  [[nodiscard]] Handle fd() const noexcept { return fd_; }
  [[nodiscard]] Reactor& reactor() const noexcept { return reactor_; }
  [[nodiscard]] bool is_socket() const noexcept { return is_socket_; }
  [[nodiscard]] Readiness readiness(Side side) const noexcept { return dirs_[side].readiness; }
  void set_readiness(Side side, Readiness r) noexcept { dirs_[side].readiness = r; }
  /// Keeps `waker` for `side` and makes sure the reactor watches it.
  std::error_code wait(Side side, const Waker& waker);
  /// Forgets the waker of `side` (the operation completed).
  void forget(Side side) noexcept { dirs_[side].waker.reset(); }
  /// Forgets the waker of `side` and stops watching it (the operation was dropped).
  void cancel(Side side) noexcept;

  int handle_input(Handle) override { return on_event(read_side); }
  int handle_output(Handle) override { return on_event(write_side); }
  int handle_close(Handle, EventMask) override;

 private:
  struct Direction {
    Readiness readiness = Readiness::maybe;
    Waker waker;
  };
  int on_event(Side side);
  std::error_code set_watch(EventMask interest);

  Reactor& reactor_;
  Handle fd_;
  bool is_socket_;
  bool registered_ = false;
  EventMask interest_ = EventMask::none;
  Direction dirs_[2];
};

/// Base of the futures of one Stream / Listener operation: withdraws the waker when dropped.
class SlotOp {
 public:
  SlotOp(IoSlot* slot, IoSlot::Side side) noexcept : slot_(slot), side_(side) {}
  SlotOp(SlotOp&& other) noexcept
      : slot_(std::exchange(other.slot_, nullptr)),
        side_(other.side_),
        waiting_(std::exchange(other.waiting_, false)) {}
  SlotOp& operator=(SlotOp&&) = delete;
  ~SlotOp() {
    if (waiting_ && slot_ != nullptr) slot_->cancel(side_);
  }

 protected:
  IoSlot* slot_;
  IoSlot::Side side_;
  bool waiting_ = false;
};

}  // namespace detail

/// Completes at `deadline` (value: void). Dropping it cancels the timer.
class [[nodiscard]] Sleep {
 public:
  /// What the future completes with.
  using value_type = void;
  /// Due at `deadline`; the timer is armed by the first poll.
  Sleep(Reactor& reactor, TimePoint deadline) noexcept : reactor_(&reactor), deadline_(deadline) {}
  /// Ready at the deadline; otherwise keeps `waker` for the timer to wake.
  Poll<void> poll(const Waker& waker);

 private:
  Reactor* reactor_;
  TimePoint deadline_;
  detail::TimerSlot timer_;
};

/// A future that completes `delay` from now. Zero or less has passed already (it completes at
/// its first poll); a delay past the end of the clock's range never ends (deadline_after).
inline Sleep sleep_for(Reactor& reactor, Duration delay) {
  return Sleep(reactor, deadline_after(Clock::now(), delay));
}
/// A future that completes at `deadline` (TimePoint::max(): never).
inline Sleep sleep_until(Reactor& reactor, TimePoint deadline) { return Sleep(reactor, deadline); }

/// Pending on its first poll (after waking itself), ready on the second: lets other tasks run.
class [[nodiscard]] YieldNow {
 public:
  /// What the future completes with.
  using value_type = void;
  /// Wakes `waker` and is pending the first time; ready the next.
  Poll<void> poll(const Waker& waker) {
    if (yielded_) return Outcome<void>();
    yielded_ = true;
    waker.wake();
    return std::nullopt;
  }

 private:
  bool yielded_ = false;
};

/// A future that yields once to the other ready tasks.
inline YieldNow yield_now() noexcept { return {}; }

/// One-shot readiness of a raw descriptor: registers on the first poll, removes the registration
/// when it fires or is dropped. For repeated waits on one descriptor use a Stream.
class [[nodiscard]] FdReady {
 public:
  /// What the future completes with.
  using value_type = void;
  /// Waits for `kind` (read or write) on `fd`, which the caller keeps open meanwhile.
  FdReady(Reactor& reactor, Handle fd, EventMask kind) noexcept : slot_(reactor, fd, kind) {}
  /// Registers on the first call; ready once the reactor has reported `kind`.
  Poll<void> poll(const Waker& waker) { return slot_.poll(waker); }

 private:
  detail::FdSlot slot_;
};

/// Completes when `fd` is readable (or at end of file / error).
inline FdReady readable(Reactor& reactor, Handle fd) {
  return FdReady(reactor, fd, EventMask::read);
}
/// Completes when `fd` is writable (or a non-blocking connect finished).
inline FdReady writable(Reactor& reactor, Handle fd) {
  return FdReady(reactor, fd, EventMask::write);
}

/// Readiness of one direction of a Stream / Listener (value: void). Consumes the readiness the
/// reactor reported, so awaiting twice waits for a new report; keeps the registration.
class [[nodiscard]] SlotReady : detail::SlotOp {
 public:
  /// What the future completes with.
  using value_type = void;
  using SlotOp::SlotOp;
  /// Ready once done; otherwise keeps `waker` to wake when progress is possible.
  Poll<void> poll(const Waker& waker);
};

/// read_some: at least one byte (value: bytes read; 0 means end of stream or an empty buffer).
class [[nodiscard]] ReadSome : detail::SlotOp {
 public:
  /// What the future completes with.
  using value_type = std::size_t;
  /// Made by Stream::read_some.
  ReadSome(detail::IoSlot* slot, std::span<char> buffer) noexcept
      : SlotOp(slot, detail::IoSlot::read_side), buffer_(buffer) {}
  /// Ready once done; otherwise keeps `waker` to wake when progress is possible.
  Poll<std::size_t> poll(const Waker& waker);

 private:
  std::span<char> buffer_;
};

/// read_exact: fills the whole buffer (value: its size); async_errc::end_of_stream if the peer
/// closes first.
class [[nodiscard]] ReadExact : detail::SlotOp {
 public:
  /// What the future completes with.
  using value_type = std::size_t;
  /// Made by Stream::read_exact.
  ReadExact(detail::IoSlot* slot, std::span<char> buffer) noexcept
      : SlotOp(slot, detail::IoSlot::read_side), buffer_(buffer) {}
  /// Ready once done; otherwise keeps `waker` to wake when progress is possible.
  Poll<std::size_t> poll(const Waker& waker);

 private:
  std::span<char> buffer_;
  std::size_t done_ = 0;
};

/// write_all: writes the whole buffer (value: its size). A reader that is gone (socket peer,
/// pipe or FIFO) yields std::errc::broken_pipe, never SIGPIPE, with no change to its disposition.
class [[nodiscard]] WriteAll : detail::SlotOp {
 public:
  /// What the future completes with.
  using value_type = std::size_t;
  /// Made by Stream::write_all.
  WriteAll(detail::IoSlot* slot, std::span<const char> buffer) noexcept
      : SlotOp(slot, detail::IoSlot::write_side), buffer_(buffer) {}
  /// Ready once done; otherwise keeps `waker` to wake when progress is possible.
  Poll<std::size_t> poll(const Waker& waker);

 private:
  std::span<const char> buffer_;
  std::size_t done_ = 0;
};

/// A connected, non-blocking byte stream (socket or pipe end) that owns its descriptor.
class Stream {
 public:
  /// An empty stream.
  Stream() noexcept = default;
  /// Takes `fd` (made non-blocking here); registers it with `reactor` on the first wait.
  Stream(Reactor& reactor, UniqueFd fd);
  /// Takes over `other`'s descriptor and registration, leaving it empty.
  Stream(Stream&& other) noexcept = default;
  /// Deregisters and closes the descriptor held, then takes over `other`'s.
  Stream& operator=(Stream&& other) noexcept;
  ~Stream();

  /// The descriptor (-1 when empty).
  [[nodiscard]] Handle fd() const noexcept { return fd_.get(); }
  /// True when a descriptor is held.
  [[nodiscard]] bool valid() const noexcept { return fd_.valid(); }

  /// Reads what is available, waiting for at least one byte.
  ReadSome read_some(std::span<char> buffer) noexcept { return {slot_.get(), buffer}; }
  /// Reads exactly buffer.size() bytes.
  ReadExact read_exact(std::span<char> buffer) noexcept { return {slot_.get(), buffer}; }
  /// Writes all of `buffer`.
  WriteAll write_all(std::span<const char> buffer) noexcept { return {slot_.get(), buffer}; }
  /// Waits until the reactor reports the stream readable.
  SlotReady readable() noexcept { return {slot_.get(), detail::IoSlot::read_side}; }
  /// Waits until the reactor reports the stream writable.
  SlotReady writable() noexcept { return {slot_.get(), detail::IoSlot::write_side}; }
  /// Half-closes the sending side (sockets): the peer reads end of stream.
  std::error_code shutdown_write() noexcept;
  /// Removes the registration and closes the descriptor.
  void close() noexcept;

 private:
  UniqueFd fd_;
  std::unique_ptr<detail::IoSlot> slot_;  // destroyed first: deregisters before fd_ closes
};

/// accept: the next connection, as a Stream.
class [[nodiscard]] Accept : detail::SlotOp {
 public:
  /// What the future completes with.
  using value_type = Stream;
  /// Made by Listener::accept.
  explicit Accept(detail::IoSlot* slot) noexcept : SlotOp(slot, detail::IoSlot::read_side) {}
  /// Ready once done; otherwise keeps `waker` to wake when progress is possible.
  Poll<Stream> poll(const Waker& waker);
};

/// A listening socket whose accept() futures share one registration.
class Listener {
 public:
  /// An empty listener.
  Listener() noexcept = default;
  /// Takes a listening socket (made non-blocking here).
  Listener(Reactor& reactor, UniqueFd fd);
  /// Takes over the other listener's socket and registration, leaving it empty.
  Listener(Listener&&) noexcept = default;
  /// Deregisters and closes the socket held, then takes over `other`'s.
  Listener& operator=(Listener&& other) noexcept;
  ~Listener();

  /// Listens on 127.0.0.1:`port` (0 picks a free port) with SO_REUSEADDR.
  static Result<Listener> bind_loopback(Reactor& reactor, std::uint16_t port, int backlog = 1024);

  /// The descriptor (-1 when empty).
  [[nodiscard]] Handle fd() const noexcept { return fd_.get(); }
  /// The local port (0 when unknown).
  [[nodiscard]] std::uint16_t port() const noexcept;
  /// The next connection.
  Accept accept() noexcept { return Accept(slot_.get()); }

 private:
  UniqueFd fd_;
  std::unique_ptr<detail::IoSlot> slot_;
};

/// Connects a TCP socket to `address`, failing with std::errc::timed_out after `limit`
/// (the half-open socket is closed at once). `limit` as in timeout(): zero or less expires at
/// the first chance, past the end of the clock's range never.
Task<Stream> connect(Reactor& reactor, sockaddr_in address, Duration limit);

/// The IPv4 loopback address with `port`.
sockaddr_in loopback_address(std::uint16_t port) noexcept;

/// Completes with the number of the first of `signals` delivered after its first poll.
class [[nodiscard]] SignalWait {
 public:
  /// What the future completes with.
  using value_type = int;
  /// Will wait for `signals`; they are watched from the first poll on.
  SignalWait(Reactor& reactor, std::initializer_list<int> signals);
  /// Takes over `other`'s watch, leaving it empty.
  SignalWait(SignalWait&& other) noexcept;
  SignalWait& operator=(SignalWait&&) = delete;
  ~SignalWait();
  /// Ready once done; otherwise keeps `waker` to wake when progress is possible.
  Poll<int> poll(const Waker& waker);

 private:
  class Slot;
  std::unique_ptr<Slot> slot_;
};

/// Waits for one of `signals` (SIGINT, SIGTERM...) through the reactor's signal pipe.
inline SignalWait wait_signal(Reactor& reactor, std::initializer_list<int> signals) {
  return SignalWait(reactor, signals);
}

}  // namespace reactor
