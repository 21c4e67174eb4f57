// EpollDemux: Linux epoll(7) backend, level-triggered. The interest set lives in the kernel, so
// a wait costs O(ready) however many descriptors are idle.
#pragma once

#include <sys/epoll.h>

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
  std::error_code control(int fd, EventMask interest, std::uint32_t flags, int first_op);

  UniqueFd epoll_fd_;
  std::vector<epoll_event> events_;
};

}  // namespace reactor
