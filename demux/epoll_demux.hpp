// EpollDemux: Linux epoll(7) backend, level-triggered. The interest set lives in the kernel, so
// a wait costs O(ready) however many descriptors are idle. Files epoll refuses (EPERM: regular
// files and others without a poll method, which poll(2) calls always ready) are kept by the
// backend itself and reported ready on every wait, as the other backends do.
//
// Threads: add, modify and remove are serialised by the caller; wait may run on another thread
// at the same time (the ThreadPoolReactor changes interest while its leader waits), as epoll_ctl
// allows.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "base/unique_fd.hpp"
#include "demux/demultiplexer.hpp"

namespace reactor {

/// epoll(7) backend.
class EpollDemux final : public Demultiplexer {
 public:
  /// Throws std::system_error when epoll_create1 fails (e.g. EMFILE).
  EpollDemux();
  ~EpollDemux() override;
  std::error_code add(int fd, EventMask interest) override;
  std::error_code modify(int fd, EventMask interest) override;
  std::error_code remove(int fd) override;
  std::error_code wait(std::span<ReadyEvent> ready, std::chrono::nanoseconds timeout,
                       std::size_t& count) override;
  [[nodiscard]] Backend kind() const noexcept override { return Backend::epoll; }
  [[nodiscard]] bool arms_once() const noexcept override { return true; }
  /// EPOLLONESHOT: modified in place (added when the kernel has no entry).
  std::error_code arm_once(int fd, EventMask interest) override;

 private:
  std::error_code control(int fd, EventMask interest, std::uint32_t flags, int op);
  struct AlwaysReady;  // the files epoll refuses; see epoll_demux.cpp
  std::error_code keep_always_ready(int fd, EventMask interest) noexcept;
  void forget_always_ready(int fd) noexcept;

  UniqueFd epoll_fd_;
  std::vector<epoll_event> events_;
  // Made at the first file epoll refuses, freed by the destructor; wait() reads it from another
  // thread, hence atomic.
  std::atomic<AlwaysReady*> always_{nullptr};
};

}  // namespace reactor
