// PollDemux: poll(2) backend. Keeps one pollfd array that is handed to the kernel as it is,
// plus an index by descriptor so add / modify / remove are O(1).
#include <fcntl.h>
#include <poll.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "base/error.hpp"
#include "demux/demultiplexer.hpp"

namespace reactor {
namespace {

short to_poll(EventMask interest) noexcept {
  short events = 0;
  if (any(interest & read_side)) events |= POLLIN;
  if (any(interest & write_side)) events |= POLLOUT;
  if (any(interest & EventMask::except)) events |= POLLPRI;
  return events;
}

EventMask from_poll(short revents, short asked) noexcept {
  if ((revents & POLLNVAL) != 0) return EventMask::invalid;
  EventMask ev = EventMask::none;
  if ((revents & POLLIN) != 0) ev |= EventMask::read;
  if ((revents & POLLOUT) != 0) ev |= EventMask::write;
  if ((revents & POLLPRI) != 0) ev |= EventMask::except;
  // An error or hang-up wakes whichever of read and write was asked for, so the handler's
  // next read or write sees the condition.
  if ((revents & (POLLERR | POLLHUP)) != 0) {
    if ((asked & POLLIN) != 0) ev |= EventMask::read;
    if ((asked & POLLOUT) != 0) ev |= EventMask::write;
    if ((asked & (POLLIN | POLLOUT)) == 0) ev |= EventMask::except;
  }
  return ev;
}

}  // namespace

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

std::unique_ptr<Demultiplexer> make_poll_demux() { return std::make_unique<PollDemux>(); }

std::error_code PollDemux::add(int fd, EventMask interest) {
  if (fd < 0) return errc::invalid_handle;
  // poll() would report POLLNVAL on every wait instead: refuse a closed descriptor now.
  if (::fcntl(fd, F_GETFD) == -1) return errc::invalid_handle;
  if (static_cast<std::size_t>(fd) >= slot_.size()) slot_.resize(fd + 1, -1);
  if (slot_[fd] >= 0) return errc::already_registered;
  slot_[fd] = static_cast<int>(fds_.size());
  fds_.push_back({fd, to_poll(interest), 0});
  return {};
}

std::error_code PollDemux::modify(int fd, EventMask interest) {
  if (fd < 0 || static_cast<std::size_t>(fd) >= slot_.size() || slot_[fd] < 0) {
    return errc::not_registered;
  }
  fds_[slot_[fd]].events = to_poll(interest);
  return {};
}

std::error_code PollDemux::remove(int fd) {
  if (fd < 0 || static_cast<std::size_t>(fd) >= slot_.size() || slot_[fd] < 0) {
    return errc::not_registered;
  }
  // Swap with the last entry so removal stays O(1).
  const int index = slot_[fd];
  const pollfd last = fds_.back();
  fds_[index] = last;
  slot_[last.fd] = index;
  fds_.pop_back();
  slot_[fd] = -1;
  return {};
}

std::error_code PollDemux::wait(std::span<ReadyEvent> ready, std::chrono::nanoseconds timeout,
                                std::size_t& count) {
  count = 0;
  int rc = ::poll(fds_.data(), fds_.size(), timeout_to_ms(timeout));
  if (rc < 0) return errno == EINTR ? std::error_code{} : last_system_error();
  const std::size_t n = fds_.size();
  if (rc == 0 || n == 0) return {};
  if (next_start_ >= n) next_start_ = 0;
  for (std::size_t i = 0; i < n && count < ready.size(); ++i) {
    const pollfd& p = fds_[(next_start_ + i) % n];
    if (p.revents != 0) ready[count++] = {p.fd, from_poll(p.revents, p.events)};
  }
  next_start_ = (next_start_ + 1) % n;
  return {};
}

}  // namespace reactor
