// IoUringDemux: Linux io_uring backend (liburing) that keeps the reactor's readiness model. Each
// watched descriptor has one one-shot IORING_OP_POLL_ADD in flight; a completion is reported and
// the poll is re-armed at the start of the next wait, after the handler has run, so a descriptor
// that is still ready completes again at once: level-triggered, like the other backends.
//
// Threads: the ring is set up for a single issuer with deferred task work (the measured fast
// configuration): the kernel refuses (EEXIST) every thread but the one the ring is bound to. The
// ring starts disabled and is bound by the first submission, so a Reactor may be built on one
// thread and run on another. One thread at a time may use the backend; when a different thread
// takes over (a ReactorPool started again, a PoolExecutor after the pool's own threads), the
// ring is replaced by a fresh one bound to that thread and every watched descriptor is re-armed.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <system_error>
#include <vector>

#include "demux/demultiplexer.hpp"

namespace reactor {

/// io_uring(7) backend built on poll requests.
class IoUringDemux final : public Demultiplexer {
 public:
  /// Throws std::system_error when the kernel or a seccomp policy refuses io_uring (ENOSYS,
  /// EPERM) or lacks the poll opcodes (errc::backend_unavailable), or on ENOMEM / EMFILE.
  IoUringDemux();
  ~IoUringDemux() override;
  std::error_code add(int fd, EventMask interest) override;
  std::error_code modify(int fd, EventMask interest) override;
  std::error_code remove(int fd) override;
  std::error_code wait(std::span<ReadyEvent> ready, std::chrono::nanoseconds timeout,
                       std::size_t& count) override;
  [[nodiscard]] Backend kind() const noexcept override { return Backend::io_uring; }

  /// The setup flags the ring got (IORING_SETUP_*), for tests and diagnostics.
  [[nodiscard]] unsigned setup_flags() const noexcept { return ring_.flags; }

 private:
  // Per descriptor: what is asked for, and which generation the poll in flight carries. A
  // completion whose generation differs belongs to a poll that was cancelled or replaced.
  struct Slot {
    std::uint32_t events = 0;  // poll bits asked for; 0 when not watched
    std::uint32_t generation = 1;
    bool armed = false;   // a poll with this generation is in the kernel
    bool queued = false;  // listed in to_arm_
  };

  Slot* slot(int fd) noexcept;
  std::error_code own() noexcept;
  std::error_code replace_ring() noexcept;
  std::error_code next_sqe(io_uring_sqe*& sqe) noexcept;
  void queue_arm(int fd) noexcept;
  std::error_code cancel(int fd, Slot& s) noexcept;
  std::error_code arm_queued() noexcept;
  std::error_code submit_and_wait(std::chrono::nanoseconds timeout) noexcept;
  std::error_code enter_result(int rc) noexcept;
  std::size_t harvest(std::span<ReadyEvent> ready) noexcept;

  io_uring ring_{};
  std::uint64_t issuer_ = 0;  // token of the thread the ring is bound to; 0: not bound yet
  std::vector<Slot> slots_;   // by fd
  std::vector<int> to_arm_;   // descriptors whose poll must be (re)submitted
};

/// True when this kernel lets the process set up an io_uring with the poll opcodes. Probed once
/// and cached; `why` (optional) receives the refusal (e.g. EPERM under a seccomp policy).
bool io_uring_usable(std::error_code* why = nullptr) noexcept;

}  // namespace reactor
