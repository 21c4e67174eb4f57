// UniqueFd: sole owner of a file descriptor; closes it exactly once. Every fd the library
// opens lives in one of these, so no error path can leak a descriptor.
#pragma once

#include <unistd.h>

#include <utility>

namespace reactor {

/// Move-only owner of a file descriptor (-1 when empty).
class UniqueFd {
 public:
  /// Holds no descriptor.
  UniqueFd() noexcept = default;
  /// Takes ownership of `fd` (may be -1).
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  /// Takes over `other`'s descriptor, leaving it empty.
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  /// Closes the held descriptor, then takes over `other`'s.
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  /// Closes the held descriptor, if any.
  ~UniqueFd() { reset(); }

  /// The descriptor, still owned.
  [[nodiscard]] int get() const noexcept { return fd_; }
  /// True when a descriptor is held.
  [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
  /// Same as valid().
  explicit operator bool() const noexcept { return valid(); }
  /// Gives up ownership without closing.
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
  /// Closes the held descriptor (if any) and takes `fd`. close() is not retried on EINTR:
  /// on Linux the descriptor is released even then, and a retry could close a reused number.
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace reactor
