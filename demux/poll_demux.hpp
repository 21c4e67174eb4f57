// PollDemux: poll(2) backend. Keeps one pollfd array that is handed to the kernel as it is,
// plus an index by descriptor so add / modify / remove are O(1).
#pragma once

#include <poll.h>

#include <vector>

#include "demux/demultiplexer.hpp"

namespace reactor {

/// poll(2) backend.
class PollDemux final : public Demultiplexer {
 public:
  std::error_code add(int fd, EventMask interest) override;
  std::error_code modify(int fd, EventMask interest) override;
  std::error_code remove(int fd) override;
  std::error_code wait(std::span<ReadyEvent> ready, std::chrono::nanoseconds timeout,
                       std::size_t& count) override;
  [[nodiscard]] Backend kind() const noexcept override { return Backend::poll; }

 private:
  std::vector<pollfd> fds_;
  std::vector<int> slot_;  // by fd: index into fds_, or -1
  std::size_t next_start_ = 0;
};

}  // namespace reactor
