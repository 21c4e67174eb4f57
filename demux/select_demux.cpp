// SelectDemux: the portable fallback over select(2). Handles >= FD_SETSIZE are rejected with
// errc::handle_out_of_range instead of overflowing an fd_set.
#include <fcntl.h>
#include <sys/select.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <vector>

#include "base/error.hpp"
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

std::unique_ptr<Demultiplexer> make_select_demux() { return std::make_unique<SelectDemux>(); }

void SelectDemux::set_bits(int fd, EventMask interest) noexcept {
  FD_CLR(fd, &read_set_);
  FD_CLR(fd, &write_set_);
  FD_CLR(fd, &except_set_);
  if (any(interest & read_side)) FD_SET(fd, &read_set_);
  if (any(interest & write_side)) FD_SET(fd, &write_set_);
  if (any(interest & EventMask::except)) FD_SET(fd, &except_set_);
}

std::error_code SelectDemux::add(int fd, EventMask interest) {
  if (fd < 0) return errc::invalid_handle;
  if (fd >= FD_SETSIZE) return errc::handle_out_of_range;
  // select() itself would only fail later, for every handle at once: check now.
  if (::fcntl(fd, F_GETFD) == -1) return errc::invalid_handle;
  if (static_cast<std::size_t>(fd) >= interest_.size()) interest_.resize(fd + 1, EventMask::none);
  if (any(interest_[fd])) return errc::already_registered;
  interest_[fd] = interest;
  set_bits(fd, interest);
  if (fd > max_fd_) max_fd_ = fd;
  return {};
}

std::error_code SelectDemux::modify(int fd, EventMask interest) {
  if (fd < 0 || static_cast<std::size_t>(fd) >= interest_.size() || !any(interest_[fd])) {
    return errc::not_registered;
  }
  interest_[fd] = interest;
  set_bits(fd, interest);
  return {};
}

std::error_code SelectDemux::remove(int fd) {
  if (fd < 0 || static_cast<std::size_t>(fd) >= interest_.size() || !any(interest_[fd])) {
    return errc::not_registered;
  }
  interest_[fd] = EventMask::none;
  set_bits(fd, EventMask::none);
  while (max_fd_ >= 0 && !any(interest_[max_fd_])) --max_fd_;
  return {};
}

// select() fails as a whole with EBADF when any watched descriptor was closed; find those with
// fcntl and report them as invalid so the reactor can drop their registrations.
std::size_t SelectDemux::report_closed(std::span<ReadyEvent> ready) const noexcept {
  std::size_t n = 0;
  for (int fd = 0; fd <= max_fd_ && n < ready.size(); ++fd) {
    if (any(interest_[fd]) && ::fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
      ready[n++] = {fd, EventMask::invalid};
    }
  }
  return n;
}

std::error_code SelectDemux::wait(std::span<ReadyEvent> ready, std::chrono::nanoseconds timeout,
                                  std::size_t& count) {
  count = 0;
  fd_set rd = read_set_;
  fd_set wr = write_set_;
  fd_set ex = except_set_;
  timeval tv{};
  timeval* tvp = nullptr;
  if (timeout >= std::chrono::nanoseconds::zero()) {
    // Round up to whole microseconds so a timer is never woken early; at most max_wait.
    const auto us =
        std::chrono::ceil<std::chrono::microseconds>(std::min(timeout, max_wait)).count();
    tv.tv_sec = static_cast<time_t>(us / 1000000);
    tv.tv_usec = static_cast<suseconds_t>(us % 1000000);
    tvp = &tv;
  }
  int rc = ::select(max_fd_ + 1, &rd, &wr, &ex, tvp);
  if (rc < 0) {
    if (errno == EINTR) return {};
    if (errno == EBADF) {
      count = report_closed(ready);
      return {};
    }
    return last_system_error();
  }
  if (rc == 0 || max_fd_ < 0) return {};
  const int span = max_fd_ + 1;
  if (next_start_ > max_fd_) next_start_ = 0;
  for (int i = 0; i < span && count < ready.size(); ++i) {
    const int fd = (next_start_ + i) % span;
    EventMask ev = EventMask::none;
    if (FD_ISSET(fd, &rd)) ev |= EventMask::read;
    if (FD_ISSET(fd, &wr)) ev |= EventMask::write;
    if (FD_ISSET(fd, &ex)) ev |= EventMask::except;
    if (any(ev)) ready[count++] = {fd, ev};
  }
  next_start_ = (next_start_ + 1) % span;
  return {};
}

}  // namespace reactor
