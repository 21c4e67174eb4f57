// SelectDemux: the portable fallback over select(2). Handles >= FD_SETSIZE are rejected with
// errc::handle_out_of_range instead of overflowing an fd_set.
#pragma once

#include <sys/select.h>

#include <vector>

#include "demux/demultiplexer.hpp"

namespace reactor {

/// select(2) backend.
class SelectDemux final : public Demultiplexer {
 public:
  std::error_code add(int fd, EventMask interest) override;
  std::error_code modify(int fd, EventMask interest) override;
  std::error_code remove(int fd) override;
  std::error_code wait(std::span<ReadyEvent> ready, std::chrono::nanoseconds timeout,
                       std::size_t& count) override;
  [[nodiscard]] Backend kind() const noexcept override { return Backend::select; }

 private:
  void set_bits(int fd, EventMask interest) noexcept;
  std::size_t report_closed(std::span<ReadyEvent> ready) const noexcept;

  fd_set read_set_{};
  fd_set write_set_{};
  fd_set except_set_{};
  std::vector<EventMask> interest_;  // by fd; none = not watched
  int max_fd_ = -1;
  int next_start_ = 0;  // where the next scan starts, so no fd is always reported last
};

}  // namespace reactor
